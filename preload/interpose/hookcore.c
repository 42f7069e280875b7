/*
 * hookcore.c — the pieces every hook shares (see hookcore.h): binding,
 * deadlines, recording and clearing a wait.
 */
#include "interpose/hookcore.h"
#include "record/stacks.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

/* ---- binding the real functions ---- */

void lw_resolve(void **slot, const char *name, const char *version)
{
    void *p = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
    if (!p)
        p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* The application called this function, so its libc has it; only a
         * broken loader set-up gets here. Say so rather than jump to 0
         * (with the raw syscall: write itself is one of our hooks). */
        static const char msg[] = "leakwatch: cannot bind the real function; aborting\n";
        lw_raw_syscall6(SYS_write, 2, (long)msg, sizeof msg - 1, 0, 0, 0);
        abort();
    }
    __atomic_store_n(slot, p, __ATOMIC_RELEASE);
}

/* ---- deadlines, as CLOCK_MONOTONIC ns ---- */

bool lw_copy_from_app(void *dst, const void *src, size_t len)
{
    return lw_read_memory(dst, (uintptr_t)src, len);
}

static uint64_t timespec_ns(const struct timespec *t)
{
    if (t->tv_sec < 0)
        return 0;
    return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

uint64_t lw_deadline_from_abs(clockid_t clock, const struct timespec *t)
{
    struct timespec now;
    if (t->tv_nsec < 0 || t->tv_nsec >= 1000000000L || clock_gettime(clock, &now) != 0)
        return UNKNOWN_DEADLINE;
    uint64_t mono = lw_now_ns(), target = timespec_ns(t), current = timespec_ns(&now);
    uint64_t deadline = mono + (target > current ? target - current : 0);
    return deadline ? deadline : 1;
}

/* For the pthread functions, which read the timespec in user space
 * themselves (a bad pointer faults in glibc, not in our code). */
uint64_t lw_abs_deadline(clockid_t clock, const struct timespec *t)
{
    return t ? lw_deadline_from_abs(clock, t) : NO_DEADLINE;
}

uint64_t lw_abs_deadline_copied(clockid_t clock, const struct timespec *t)
{
    if (!t)
        return NO_DEADLINE;
    struct timespec copy;
    if (!lw_copy_from_app(&copy, t, sizeof copy))
        return UNKNOWN_DEADLINE;
    return lw_deadline_from_abs(clock, &copy);
}

uint64_t lw_rel_deadline_copied(const struct timespec *req)
{
    struct timespec t;
    if (!req || !lw_copy_from_app(&t, req, sizeof t) || t.tv_nsec < 0 || t.tv_nsec >= 1000000000L)
        return UNKNOWN_DEADLINE;
    return lw_now_ns() + timespec_ns(&t);
}

uint64_t lw_sleep_deadline(clockid_t clock, int flags, const struct timespec *req)
{
    if (!(flags & TIMER_ABSTIME))
        return lw_rel_deadline_copied(req);
    return req ? lw_abs_deadline_copied(clock, req) : UNKNOWN_DEADLINE;
}

uint64_t lw_ms_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? NO_DEADLINE : lw_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* ---- recording a wait ---- */

/* The stack is not captured here: the record names the frame that makes
 * the call (f->at, live until the call returns), and the first reader of
 * the record walks it from there (registry.c). The caller has set every
 * field but these; the record is written in place, so a call that does
 * not park costs these stores and nothing else. */
void lw_wait_stamp(struct lw_wait_frame *f, struct lw_wait_rec *rec, uint64_t start, uint64_t deadline)
{
    rec->timed = deadline != NO_DEADLINE;
    rec->deadline_ns = deadline == UNKNOWN_DEADLINE ? 0 : deadline;
    rec->start_ns = start;
    rec->stack_id = 0;
    rec->at_pc = f->at.pc;
    rec->at_sp_masked = f->at.sp ^ LW_ADDR_MASK;
    rec->at_bp_masked = f->at.bp ^ LW_ADDR_MASK;
    rec->at_ra_masked = f->at.ra_masked;
    lw_wait_close(f->slot);
}

void lw_wait_end(struct lw_wait_frame *f) { lw_wait_closed(f); }

/* Run by the unwinding of a cancellation (or pthread_exit) as it leaves
 * the hook's frame (CALL_1: a cleanup buffer, not a setjmp, so no code of
 * ours runs at a landing pad). Under AddressSanitizer the frames it leaves
 * keep their poisoned red zones, which nothing else clears before the
 * program's own cleanup reuses that stack (a longjmp, or a call to a
 * noreturn function, would clear them): cleared here, as a longjmp does. */
void lw_wait_cancelled(void *frame)
{
    lw_wait_end(frame);
#ifdef __SANITIZE_ADDRESS__
    __asan_handle_no_return();
#endif
}

/* Waits at which the server may be started, which means creating a thread
 * (it allocates). Never mutexes, rwlocks or raw futexes: an allocator may be
 * inside those. Condvar, semaphore, barrier and join waits are never made by
 * a signal handler (none of them is async-signal-safe), so they always may.
 * Sleeps never do: a sleeping program is not stuck, and it is better left
 * single-threaded. The others (fd, signal and child waits) are
 * async-signal-safe calls, which a handler may make while it interrupts
 * malloc: they start the server only in a process that has never installed
 * a signal handler. */
bool lw_may_start_server_in(enum lw_wait_kind kind)
{
    switch (kind) {
    case LW_WAIT_COND: case LW_WAIT_SEM: case LW_WAIT_JOIN: case LW_WAIT_BARRIER:
        return true;
    case LW_WAIT_MUTEX: case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE: case LW_WAIT_FUTEX:
    case LW_WAIT_SLEEP:
        return false;
    default:
        return !lw_app_has_signal_handlers();
    }
}
