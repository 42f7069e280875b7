/*
 * test_unwind.c — preload/record/unwind.c against libunwind's unw_backtrace, the
 * unwinder it replaced, and against the true stack where libunwind cannot
 * know it. Both unwinders are asked from the same function (take_both);
 * from our second frame on (the first are two different call sites) the
 * stacks must be the same, frame for frame and to the end, wherever the
 * code has unwind tables or frame pointers:
 *  - deep -O2 recursion, alloca and -O0 frames (CFA through rbp, the
 *    caller's rbp reloaded from where the callee saved it), a thread's
 *    outermost frame;
 *  - one C call chain (unwind_chain.c) built seven ways: with unwind tables
 *    at -O0, -O2, -O2 with and without frame pointers; without them
 *    (-fno-asynchronous-unwind-tables) at -O0 and -O2 with frame pointers
 *    (followed by the frame-pointer fallback) and -O2 without (where the
 *    walk must stop, never guess: a prefix of the true stack, which the
 *    chain's functions record themselves);
 *  - C++ (unwind_cxx.cc at -O0, -O2, -O2 -fomit-frame-pointer): a lambda
 *    called through std::function inside a catch handler;
 *  - signal handlers, on the thread's stack and on an alternate one: the
 *    walk goes through the sigreturn trampoline to the interrupted code;
 *  - a module unloaded and another with a different frame loaded at the
 *    same address (unwind_probe.S, built twice), with the first one's rules
 *    cached: the second one's frames must be right;
 *  - code outside every object (a copy of a call, mapped by hand where the
 *    module was): the walk stops there and does not remember it, so the
 *    module loaded there again gets its full stack;
 *  - unwind tables that lead to a data word (unwind_bad.S): never kept;
 *  - a stack kept from before a dlclose: its frames in the unloaded module
 *    are forgotten (what the report does, lw_unwind_forget_unloaded);
 *  - threads unwinding through a module while another thread loads and
 *    unloads another: every stack a prefix of the whole one;
 *  - truncation (max frames).
 * It ends by printing what a warm walk costs per frame (information only).
 *
 * argv[1], argv[2]: the two builds of unwind_probe.S (0x100- and
 * 0x1000-byte frames).
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "record/unwind.h"
#include "check.h"

#define MAX 64

struct both {
    uint64_t ours[MAX];
    void *theirs[MAX];
    int nours, ntheirs;
};

static __attribute__((noinline)) void take_both(struct both *b)
{
    b->nours = lw_unwind(b->ours, MAX);
    b->ntheirs = unw_backtrace(b->theirs, MAX);
    __asm__ volatile("" ::: "memory");
}

/* ---- comparing ---- */

static void print_frame(const char *side, int i, uint64_t pc)
{
    Dl_info info;
    const char *name = NULL, *module = "?";
    if (dladdr((void *)(uintptr_t)pc, &info)) {
        name = info.dli_sname;
        module = info.dli_fname ? strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname
                                : "?";
    }
    fprintf(stderr, "    %s[%2d] %#14llx %s %s\n", side, i, (unsigned long long)pc, module, name ? name : "");
}

static void print_both(const struct both *b)
{
    for (int i = 0; i < b->nours; i++)
        print_frame("ours  ", i, b->ours[i]);
    for (int i = 0; i < b->ntheirs; i++)
        print_frame("theirs", i, (uint64_t)(uintptr_t)b->theirs[i]);
}

/* Where our second frame is in libunwind's stack (the first frames are two
 * different call sites in take_both); -1 if it is not there. */
static int theirs_index(const struct both *b, uint64_t pc)
{
    for (int i = 0; i < b->ntheirs; i++)
        if ((uint64_t)(uintptr_t)b->theirs[i] == pc)
            return i;
    return -1;
}

/* Ours from the second frame on is libunwind's stack from that frame to
 * its end. */
static bool same_stack(const struct both *b)
{
    int start = b->nours >= 2 ? theirs_index(b, b->ours[1]) : -1;
    if (start < 0 || b->nours - 1 != b->ntheirs - start)
        return false;
    for (int k = 1; k < b->nours; k++)
        if ((uint64_t)(uintptr_t)b->theirs[start + k - 1] != b->ours[k])
            return false;
    return true;
}

static void expect_same_stack(const struct both *b, const char *what, int at_least)
{
    bool same = same_stack(b);
    CHECK(same && b->nours >= at_least, "%s: our %d frames and libunwind's %d differ (or fewer than %d)", what,
          b->nours, b->ntheirs, at_least);
    if (!same || b->nours < at_least)
        print_both(b);
}

/* Ours is exactly ref's (ours too, checked against libunwind before). */
static void expect_same_pcs(const struct both *b, const struct both *ref, const char *what)
{
    bool same = b->nours == ref->nours && memcmp(b->ours, ref->ours, sizeof(uint64_t) * (size_t)b->nours) == 0;
    CHECK(same, "%s: our %d frames differ from the %d expected", what, b->nours, ref->nours);
    if (!same) {
        print_both(b);
        for (int i = 0; i < ref->nours; i++)
            print_frame("wanted", i, ref->ours[i]);
    }
}

/* ---- deep -O2 recursion ---- */

static __attribute__((noinline)) int recurse(struct both *b, int depth)
{
    if (depth == 0) {
        take_both(b);
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
    expect_same_stack(&b, "40-deep recursion", 42);
}

/* ---- a CFA through rbp: alloca makes the frame size dynamic ---- */

static __attribute__((noinline)) void with_alloca(struct both *b, size_t n)
{
    volatile char *p = alloca(n);
    p[0] = 1;
    take_both(b);
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
    expect_same_stack(&b, "alloca and -O0 frames", 5);
}

/* ---- a thread: the outermost frame ends the walk ---- */

static void *thread_body(void *arg)
{
    recurse(arg, 3);
    return NULL;
}

static void test_thread(void)
{
    struct both b;
    pthread_t t;
    pthread_create(&t, NULL, thread_body, &b);
    pthread_join(t, NULL);
    expect_same_stack(&b, "a thread", 7);
}

/* ---- one C chain, built seven ways ---- */

struct chain_truth {
    uint64_t ra[4];
};
typedef void (*chain_cb_fn)(void *arg, struct chain_truth *truth);
typedef int (*chain_fn)(chain_cb_fn cb, void *arg, struct chain_truth *truth, int n);

#define CHAIN_VARIANTS(X) \
    X(cfi_o0, 1) X(cfi_o2, 1) X(cfi_o2_fp, 1) X(cfi_o2_nofp, 1) X(nocfi_o0, 1) X(nocfi_o2_fp, 1) X(nocfi_o2_nofp, 0)
#define DECLARE_CHAIN(name, followable) int chain_##name##_outer(chain_cb_fn, void *, struct chain_truth *, int);
CHAIN_VARIANTS(DECLARE_CHAIN)

struct chain_run {
    struct both b;
    struct chain_truth truth;
    void *tail[MAX];   /* libunwind's stack from the function that called the chain */
    int ntail;
};

static void chain_cb(void *arg, struct chain_truth *truth)
{
    struct chain_run *r = arg;
    truth->ra[0] = (uint64_t)(uintptr_t)__builtin_return_address(0);
    take_both(&r->b);
    __asm__ volatile("" ::: "memory");   /* not a tail call: a frame of its own */
}

/* Stale return addresses in the memory the chain's frames will use would
 * make the frame-pointer fallback stop early (it refuses a frame holding
 * one): clear it first, so that the frame-pointer variants get their whole
 * stack here. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[32768];
    memset((char *)junk, 0, sizeof junk);
    __asm__ volatile("" : : "r"(junk) : "memory");
}

static __attribute__((noinline)) void call_chain(chain_fn fn, struct chain_run *r)
{
    r->ntail = unw_backtrace(r->tail, MAX);
    fn(chain_cb, r, &r->truth, 40);
    __asm__ volatile("" ::: "memory");
}

/* followable: the chain has unwind tables or frame pointers, so ours must
 * be the whole true stack (and libunwind's); else a prefix of it that
 * reaches inner (the callback has CFI) and stops there. */
static void test_chain(const char *what, chain_fn fn, bool followable)
{
    struct chain_run r;
    memset(&r, 0, sizeof r);
    scrub_stack();
    call_chain(fn, &r);
    /* The true stack from the return address into inner: the chain's four,
     * then call_chain's callers as libunwind saw them from call_chain. */
    uint64_t truth[MAX];
    int ntruth = 0;
    for (int i = 0; i < 4; i++)
        truth[ntruth++] = r.truth.ra[i];
    for (int i = 1; i < r.ntail && ntruth < MAX; i++)
        truth[ntruth++] = (uint64_t)(uintptr_t)r.tail[i];
    int k = 0;
    while (k < r.b.nours && r.b.ours[k] != truth[0])
        k++;
    bool prefix = k < r.b.nours && r.b.nours - k <= ntruth;
    for (int i = k; prefix && i < r.b.nours; i++)
        prefix = r.b.ours[i] == truth[i - k];
    CHECK(k == 2 && prefix, "%s: ours is not a prefix of the true stack reaching inner (inner's frame at %d)", what,
          k);
    if (followable) {
        CHECK(r.b.nours - k == ntruth, "%s: ours stops after %d of the %d true frames", what, r.b.nours - k, ntruth);
        expect_same_stack(&r.b, what, 8);
    } else if (!(k == 2 && prefix)) {
        print_both(&r.b);
    }
    if (!(k == 2 && prefix) || (followable && r.b.nours - k != ntruth))
        for (int i = 0; i < ntruth; i++)
            print_frame("truth ", i, truth[i]);
}

static void test_chains(void)
{
#define RUN_CHAIN(name, followable) test_chain("C chain " #name, chain_##name##_outer, followable);
    CHAIN_VARIANTS(RUN_CHAIN)
}

/* ---- C++: exceptions, lambdas, std::function ---- */

typedef int (*cxx_fn)(void (*cb)(void *), void *arg, int n);
int cxx_o0_run(void (*cb)(void *), void *arg, int n);
int cxx_o2_run(void (*cb)(void *), void *arg, int n);
int cxx_o2_nofp_run(void (*cb)(void *), void *arg, int n);

static void cxx_cb(void *arg)
{
    take_both(arg);
    __asm__ volatile("" ::: "memory");
}

static void test_cxx(void)
{
    static const struct {
        const char *what;
        cxx_fn fn;
    } cases[] = {
        { "C++ -O0", cxx_o0_run }, { "C++ -O2", cxx_o2_run }, { "C++ -O2 -fomit-frame-pointer", cxx_o2_nofp_run }
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct both b;
        memset(&b, 0, sizeof b);
        cases[i].fn(cxx_cb, &b, 5);
        expect_same_stack(&b, cases[i].what, 7);
    }
}

/* ---- signal handlers: through the sigreturn trampoline ---- */

static struct both in_handler;

static void handler(int sig)
{
    (void)sig;
    recurse(&in_handler, 2);
}

static void test_signal_handler(bool alternate)
{
    static char alt[65536] __attribute__((aligned(16)));
    stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt }, old_ss;
    if (alternate)
        CHECK(sigaltstack(&ss, &old_ss) == 0, "sigaltstack");
    struct sigaction sa, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = alternate ? SA_ONSTACK : 0;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR1, NULL, &now);
    memset(&in_handler, 0, sizeof in_handler);
    raise(SIGUSR1);
    if (alternate)
        sigaltstack(&old_ss, NULL);
    const char *what = alternate ? "a handler on an alternate stack" : "a signal handler";
    expect_same_stack(&in_handler, what, 10);
    int tramp = -1;
    for (int i = 0; i < in_handler.nours; i++)
        if (in_handler.ours[i] == (uint64_t)(uintptr_t)now.sa_restorer)
            tramp = i;
    CHECK(tramp > 0 && tramp + 3 < in_handler.nours, "%s: the trampoline %p at our frame %d of %d", what,
          (void *)now.sa_restorer, tramp, in_handler.nours);
}

/* ---- modules unloaded, loaded again, code where they were ---- */

typedef void (*probe_fn)(void (*cb)(void *), void *arg);

struct probe_run {
    probe_fn fn;
    struct both b;
    uint64_t ra;   /* the return address into probe_call */
};

static void probe_cb(void *arg)
{
    struct probe_run *r = arg;
    r->ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
    take_both(&r->b);
    __asm__ volatile("" ::: "memory");
}

static void note_return_address(void *arg)
{
    ((struct probe_run *)arg)->ra = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

static void *probe_thread(void *arg)
{
    struct probe_run *r = arg;
    r->fn(probe_cb, r);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

/* In a new thread each time: libunwind's trace cache is per thread, so its
 * answer is a cold one, whatever our process-wide cache holds. */
static void run_probe(probe_fn fn, struct probe_run *r)
{
    pthread_t t;
    memset(r, 0, sizeof *r);
    r->fn = fn;
    pthread_create(&t, NULL, probe_thread, r);
    pthread_join(t, NULL);
}

static probe_fn open_probe(const char *path, void **handle)
{
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(*handle != NULL, "dlopen %s: %s", path, dlerror());
    return *handle ? (probe_fn)(uintptr_t)dlsym(*handle, "probe_call") : NULL;
}

static void test_reload(const char *path_a, const char *path_b)
{
    void *ha, *hb;
    struct probe_run r;
    probe_fn a = open_probe(path_a, &ha);
    if (!a)
        return;
    for (int i = 0; i < 2; i++) {   /* the second from our cache */
        run_probe(a, &r);
        expect_same_stack(&r.b, "module A", 6);
    }
    struct probe_run first = r;
    dlclose(ha);
    probe_fn b = open_probe(path_b, &hb);
    if (!b)
        return;
    CHECK(b == a, "module B was loaded at %p, not where A was (%p): the case is not made", (void *)b, (void *)a);
    run_probe(b, &r);
    CHECK(r.ra == first.ra, "B's call site %#llx, A's %#llx", (unsigned long long)r.ra,
          (unsigned long long)first.ra);
    /* libunwind keeps A's rule too (its answer here stops at probe_call),
     * so the reference is A's stack: the same call sites, a frame apart. */
    expect_same_pcs(&r.b, &first.b, "module B where A was (A's rules cached)");
    dlclose(hb);
}

static void test_late_mapped(const char *path_a)
{
    void *ha;
    struct probe_run r;
    probe_fn a = open_probe(path_a, &ha);
    if (!a)
        return;
    /* Where probe_call's call returns to, learnt without unwinding there:
     * no rule for that address may be cached before the code outside
     * every object is met there. */
    r.fn = a;
    r.ra = 0;
    a(note_return_address, &r);
    uint64_t ra = r.ra;
    dlclose(ha);

    /* The same call, at the same return address, in memory no object owns
     * (as a JIT's code is): sub $8,%rsp; mov %rdi,%rax; mov %rsi,%rdi;
     * call *%rax; then add $8,%rsp; ret. */
    static const uint8_t code[] = { 0x48, 0x83, 0xec, 0x08, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0xff, 0xd0,
                                    0x48, 0x83, 0xc4, 0x08, 0xc3 };
    const uint64_t call_end = 12;
    uint64_t entry = ra - call_end, lo = entry & ~4095ull, hi = (entry + sizeof code + 4095) & ~4095ull;
    void *map = mmap((void *)(uintptr_t)lo, hi - lo, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(map == (void *)(uintptr_t)lo, "mapping code where module A was: %p", map);
    if (map != (void *)(uintptr_t)lo) {
        if (map != MAP_FAILED)
            munmap(map, hi - lo);
        return;
    }
    memcpy((void *)(uintptr_t)entry, code, sizeof code);
    mprotect(map, hi - lo, PROT_READ | PROT_EXEC);
    run_probe((probe_fn)(uintptr_t)entry, &r);
    bool kept = false;
    for (int i = 0; i < r.b.nours; i++)
        kept |= r.b.ours[i] == ra;
    CHECK(r.ra == ra && !kept && r.b.nours == 2, "code outside every object: %d frames, its return address %s",
          r.b.nours, kept ? "kept" : "not kept");
    munmap(map, hi - lo);

    probe_fn again = open_probe(path_a, &ha);
    if (!again)
        return;
    CHECK(again == a, "module A came back at %p, not %p: the case is not made", (void *)again, (void *)a);
    run_probe(again, &r);
    expect_same_stack(&r.b, "module A mapped again where code outside every object was", 6);
    dlclose(ha);
}

/* A stack kept from before a dlclose: its frames in what was unloaded are
 * forgotten (zeroed), the others kept; nothing, while no dlclose came. */
static void test_forget_unloaded(const char *path_a, const char *path_b)
{
    void *ha, *hb;
    struct probe_run r;
    probe_fn a = open_probe(path_a, &ha), b = open_probe(path_b, &hb);
    if (!a || !b)
        return;
    run_probe(a, &r);
    uint32_t gen = lw_unwind_generation();
    uint64_t pcs[MAX + 1];
    memcpy(pcs, r.b.ours, sizeof(uint64_t) * (size_t)r.b.nours);
    pcs[r.b.nours] = (uint64_t)(uintptr_t)b;   /* code of a module that stays */
    uint32_t n = (uint32_t)r.b.nours + 1;
    lw_unwind_forget_unloaded(pcs, n, gen);
    CHECK(memcmp(pcs, r.b.ours, sizeof(uint64_t) * (size_t)r.b.nours) == 0, "a frame forgotten with no dlclose");
    dlclose(ha);
    lw_unwind_forget_unloaded(pcs, n, gen);
    int zeroed = 0, kept = 0;
    for (int i = 0; i < r.b.nours; i++) {
        zeroed += pcs[i] == 0;
        kept += pcs[i] == r.b.ours[i];
    }
    CHECK(r.b.nours >= 6 && pcs[2] == 0 && zeroed == 1 && kept == r.b.nours - 1 && pcs[n - 1] == (uint64_t)(uintptr_t)b,
          "after module A's dlclose: %d of %d frames zeroed (want the one in A), module B's code %s", zeroed,
          r.b.nours, pcs[n - 1] ? "kept" : "zeroed");
    dlclose(hb);
}

/* ---- unwind tables that lead to a data word ---- */

void bad_ra_call(void (*cb)(void *), void *arg);
void bad_rbp_call(void (*cb)(void *), void *arg);
extern uint64_t bad_data_word;

static void test_bad_cfi(void)
{
    static const struct {
        const char *what;
        probe_fn fn;
    } cases[] = { { "CFI placing the return address on a data word", bad_ra_call },
                  { "rbp changed without CFI", bad_rbp_call } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct probe_run r;
        run_probe(cases[i].fn, &r);
        bool kept = false;
        for (int k = 0; k < r.b.nours; k++)
            kept |= r.b.ours[k] == (uint64_t)(uintptr_t)&bad_data_word;
        CHECK(!kept && r.b.nours == 3 && r.b.ours[2] == r.ra, "%s: %d frames, the data word %s", cases[i].what,
              r.b.nours, kept ? "kept" : "not kept");
        if (kept || r.b.nours != 3)
            print_both(&r.b);
    }
}

/* ---- threads unwinding while modules come and go ---- */

/* Threads walk again and again through probe_call of module A while the
 * main thread loads and unloads module B: every dlclose makes A's rules
 * stale, and while one runs A may not be read (only objects loaded before
 * us may), so a walk may stop at A; but every walk must be a prefix of the
 * one taken before the dlcloses began, never a different stack. */
#define STRESS_THREADS 3

static int stress_stop;

struct stress {
    probe_fn fn;
    pthread_barrier_t *ready;
    uint64_t first[MAX];
    int nfirst, walks, wrong, whole;
};

static __attribute__((noinline)) int one_walk(uint64_t *pcs)
{
    int n = lw_unwind(pcs, MAX);
    __asm__ volatile("" ::: "memory");
    return n;
}

/* Our frames but the second (the loop's call site, which the compiler may
 * have copied) are the first walk's, as far as they go. */
static bool prefix_of_first(const struct stress *s, const uint64_t *pcs, int n)
{
    if (n > s->nfirst)
        return false;
    for (int i = 0; i < n; i++)
        if (i != 1 && pcs[i] != s->first[i])
            return false;
    return true;
}

static __attribute__((noinline)) void stress_walks(void *arg)
{
    struct stress *s = arg;
    s->nfirst = one_walk(s->first);
    pthread_barrier_wait(s->ready);
    while (!__atomic_load_n(&stress_stop, __ATOMIC_ACQUIRE)) {
        uint64_t pcs[MAX];
        int n = one_walk(pcs);
        __atomic_store_n(&s->walks, s->walks + 1, __ATOMIC_RELAXED);   /* (main reads it meanwhile) */
        s->wrong += !prefix_of_first(s, pcs, n);
        s->whole += n == s->nfirst;
    }
    __asm__ volatile("" ::: "memory");
}

static void *stress_thread(void *arg)
{
    struct stress *s = arg;
    s->fn(stress_walks, s);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

/* Every walker walked at least once while modules came and went (on a
 * busy machine a thread may not run at all during 300 quick cycles). */
static bool all_walked(const struct stress *s, int n)
{
    for (int i = 0; i < n; i++)
        if (__atomic_load_n(&s[i].walks, __ATOMIC_RELAXED) == 0)
            return false;
    return true;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_concurrent_dlclose(const char *path_a, const char *path_b)
{
    void *ha;
    probe_fn a = open_probe(path_a, &ha);
    if (!a)
        return;
    pthread_t t[STRESS_THREADS];
    struct stress s[STRESS_THREADS];
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, STRESS_THREADS + 1);
    memset(s, 0, sizeof s);
    for (int i = 0; i < STRESS_THREADS; i++) {
        s[i].fn = a;
        s[i].ready = &ready;
        pthread_create(&t[i], NULL, stress_thread, &s[i]);
    }
    __atomic_store_n(&stress_stop, 0, __ATOMIC_RELEASE);
    pthread_barrier_wait(&ready);
    double give_up = seconds_now() + 30;
    int cycles = 0;
    for (; cycles < 300 || (!all_walked(s, STRESS_THREADS) && seconds_now() < give_up); cycles++) {
        void *h = dlopen(path_b, RTLD_NOW | RTLD_LOCAL);
        if (h)
            dlclose(h);
    }
    __atomic_store_n(&stress_stop, 1, __ATOMIC_RELEASE);
    int walks = 0, whole = 0;
    for (int i = 0; i < STRESS_THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(s[i].wrong == 0 && s[i].nfirst >= 5 && s[i].walks > 0, "thread %d: %d of %d walks were not a prefix "
              "of the first (%d frames)", i, s[i].wrong, s[i].walks, s[i].nfirst);
        walks += s[i].walks;
        whole += s[i].whole;
    }
    printf("walks during %d dlopen+dlclose: %d, %d of them whole, the others a prefix\n", cycles, walks, whole);
    pthread_barrier_destroy(&ready);
    dlclose(ha);
}

/* ---- truncation ---- */

static __attribute__((noinline)) void truncated(int *counts, uint64_t (*pcs)[MAX])
{
    static const int maxes[] = { MAX, 3, 1, 0 };
    for (int i = 0; i < 4; i++)   /* one call site: the same first frame */
        counts[i] = lw_unwind(pcs[i], maxes[i]);
}

static void test_truncation(void)
{
    int counts[4];
    uint64_t pcs[4][MAX];
    truncated(counts, pcs);
    CHECK(counts[0] > 3 && counts[1] == 3 && counts[2] == 1 && counts[3] == 0, "max 64/3/1/0 gave %d/%d/%d/%d",
          counts[0], counts[1], counts[2], counts[3]);
    CHECK(memcmp(pcs[1], pcs[0], 3 * sizeof(uint64_t)) == 0 && pcs[2][0] == pcs[0][0],
          "a truncated stack is not the start of the whole one");
}

/* ---- what a warm walk costs ---- */

static __attribute__((noinline)) double time_walks(int n)
{
    uint64_t pcs[MAX];
    int frames = 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        frames += lw_unwind(pcs, MAX);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / frames;
}

static __attribute__((noinline)) double timed_at_depth(int depth)
{
    if (depth == 0)
        return time_walks(100000);
    double r = timed_at_depth(depth - 1);
    __asm__ volatile("" ::: "memory");
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_unwind PROBE_A.so PROBE_B.so\n");
        return 2;
    }
    lw_unwind_init();
    for (int round = 0; round < 2; round++) {   /* cold, then from the rule cache */
        test_deep();
        test_rbp_frames();
        test_thread();
        test_chains();
        test_cxx();
        test_signal_handler(false);
        test_signal_handler(true);
        test_bad_cfi();
        test_truncation();
    }
    test_late_mapped(argv[1]);   /* first: nothing cached for module A yet */
    test_reload(argv[1], argv[2]);
    test_forget_unloaded(argv[1], argv[2]);
    test_concurrent_dlclose(argv[1], argv[2]);
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double ns = timed_at_depth(20);
        best = ns < best ? ns : best;
    }
    printf("a warm walk: %.1f ns a frame (best of 5, 100,000 walks of 20+ frames)\n", best);
    return checks_result("unwind");
}
