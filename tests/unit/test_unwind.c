/*
 * test_unwind.c — preload/unwind.c against libunwind's unw_backtrace, the
 * unwinder it replaced, on the shapes of stack a hook sees: deep -O2 call
 * chains, frames that address their CFA through rbp (alloca, -O0 style),
 * a new thread's outermost frame, a signal handler (we stop at the
 * trampoline: a prefix of libunwind's stack, never a different one), and
 * truncation. Both are asked from the same function; the stacks must agree
 * frame for frame from our first frame on.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "unwind.h"
#include "check.h"

#define MAX 64


struct both {
    uint64_t ours[MAX];
    void *theirs[MAX];
    int nours, ntheirs;
};

static __attribute__((noinline)) void take_both(struct both *b, int max)
{
    b->nours = lw_unwind(b->ours, max);
    b->ntheirs = unw_backtrace(b->theirs, MAX);
    __asm__ volatile("" ::: "memory");
}

/* How many of our frames, from the second on, match libunwind's, aligned
 * at that frame (the first frames are two different call sites in
 * take_both); -1 if it is not in theirs at all. */
static int agreeing_frames(const struct both *b)
{
    if (b->nours < 2)
        return -1;
    for (int start = 0; start < b->ntheirs; start++) {
        if ((uint64_t)(uintptr_t)b->theirs[start] != b->ours[1])
            continue;
        int k = 1;
        while (k < b->nours && start + k - 1 < b->ntheirs && (uint64_t)(uintptr_t)b->theirs[start + k - 1] == b->ours[k])
            k++;
        return k;
    }
    return -1;
}

static void expect_same_stack(const struct both *b, const char *what)
{
    int k = agreeing_frames(b);
    CHECK(b->nours >= 2 && k == b->nours, "%s: %d of our %d frames agree with libunwind's %d", what, k, b->nours,
          b->ntheirs);
}

/* ---- deep -O2 recursion ---- */

static __attribute__((noinline)) int recurse(struct both *b, int depth)
{
    if (depth == 0) {
        take_both(b, MAX);
        return 0;
    }
    int r = recurse(b, depth - 1);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

static void test_deep(void)
{
    struct both b;
    recurse(&b, 40);
    expect_same_stack(&b, "40-deep recursion");
    CHECK(b.nours == b.ntheirs && b.nours > 40, "a 40-deep chain: %d frames, libunwind %d", b.nours, b.ntheirs);
}

/* ---- a CFA through rbp: alloca makes the frame size dynamic ---- */

static __attribute__((noinline)) void with_alloca(struct both *b, size_t n)
{
    volatile char *p = alloca(n);
    p[0] = 1;
    take_both(b, MAX);
    __asm__ volatile("" : : "r"(p) : "memory");
}

static __attribute__((noinline, optimize("no-omit-frame-pointer", "O0"))) void at_o0(struct both *b, int n)
{
    char vla[n];
    vla[0] = 0;
    with_alloca(b, (size_t)n * 3);
    __asm__ volatile("" : : "r"(vla) : "memory");
}

static void test_rbp_frames(void)
{
    struct both b;
    at_o0(&b, 100);
    expect_same_stack(&b, "alloca and -O0 frames");
}

/* ---- a thread: the outermost frame ends the walk ---- */

static void *thread_body(void *arg)
{
    struct both *b = arg;
    recurse(b, 3);
    return NULL;
}

static void test_thread(void)
{
    struct both b;
    pthread_t t;
    pthread_create(&t, NULL, thread_body, &b);
    pthread_join(t, NULL);
    expect_same_stack(&b, "a thread");
    CHECK(b.nours == b.ntheirs && b.nours >= 6, "a thread's stack: %d frames, libunwind %d", b.nours, b.ntheirs);
}

/* ---- a signal handler: stop at the trampoline ---- */

static struct both in_handler;

static void handler(int sig)
{
    (void)sig;
    recurse(&in_handler, 2);
}

static void test_signal_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    int k = agreeing_frames(&in_handler);
    CHECK(k == in_handler.nours && k >= 4, "in a handler: %d of our %d frames agree", k, in_handler.nours);
    CHECK(in_handler.nours < in_handler.ntheirs, "we went through the trampoline (%d frames, libunwind %d)",
          in_handler.nours, in_handler.ntheirs);
}

static void test_truncation(void)
{
    struct both b;
    recurse(&b, 10);
    struct both c;
    recurse(&c, 10);
    (void)c;
    uint64_t few[3];
    int n = lw_unwind(few, 3);
    CHECK(n == 3, "max 3 gave %d", n);
    CHECK(lw_unwind(few, 0) == 0, "max 0");
}

int main(void)
{
    lw_unwind_init();
    for (int round = 0; round < 2; round++) {   /* cold, then from the rule cache */
        test_deep();
        test_rbp_frames();
        test_thread();
        test_signal_handler();
        test_truncation();
    }
    return checks_result("unwind");
}
