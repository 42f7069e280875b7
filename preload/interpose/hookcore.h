/*
 * hookcore.h — what every hook file shares: binding the real function,
 * reading the caller's timeouts as CLOCK_MONOTONIC deadlines, and recording
 * a wait in the calling thread's slot (and clearing it again, also when the
 * thread is cancelled inside the call).
 *
 * hooks.c (memory waits, threads, raw futexes) and fdhooks.c (file
 * descriptors, signals, children) generate their wrappers from tables with
 * these pieces.
 */
#ifndef LW_HOOKCORE_H
#define LW_HOOKCORE_H

#include "base/util.h"
#include "interpose/interpose.h"
#include "record/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define NO_DEADLINE 0ull
#define UNKNOWN_DEADLINE UINT64_MAX   /* timed, but the deadline could not be read */

/* Bind *slot to the next definition of name (at version, if given); aborts
 * with a message if there is none, which only a broken loader set-up does. */
void lw_resolve(void **slot, const char *name, const char *version);

/* One hooked function: its name, the symbol version to bind, and where its
 * real address is kept. */
struct lw_binding {
    const char *name;
    const char *version;   /* NULL: the default version */
    void **real;
};

/* A hook's real function, bound at its first call if the constructor has not
 * bound it yet (another library's constructor may call a hook first): the
 * pointer starts at a stub that resolves it, then calls through. */
#define DECLARE_REAL(ret, name, params, args, version)                  \
    static ret first_##name params;                                     \
    static ret (*real_##name) params = first_##name;                    \
    static __attribute__((noinline, cold)) ret first_##name params      \
    {                                                                   \
        lw_resolve((void **)&real_##name, #name, version);              \
        return real_##name args;                                        \
    }

/* Copy a struct the caller passed for the kernel to read: a bad pointer
 * costs the caller its EFAULT, never a crash in our code. */
bool lw_copy_from_app(void *dst, const void *src, size_t len);

/* Deadlines, as CLOCK_MONOTONIC ns (NO_DEADLINE: none; UNKNOWN_DEADLINE:
 * timed but unreadable). */
uint64_t lw_deadline_from_abs(clockid_t clock, const struct timespec *t);  /* t already copied */
uint64_t lw_abs_deadline(clockid_t clock, const struct timespec *t);        /* NULL: none; read in place */
uint64_t lw_abs_deadline_copied(clockid_t clock, const struct timespec *t); /* NULL: none; a kernel-read pointer */
uint64_t lw_rel_deadline_copied(const struct timespec *req);                /* NULL: unknown */
uint64_t lw_sleep_deadline(clockid_t clock, int flags, const struct timespec *req);
uint64_t lw_ms_deadline(int timeout_ms);                                     /* < 0: none */

/* Record a wait in the calling thread's slot, in place:
 *     struct lw_wait_rec *w = lw_wait_begin(f);   (NULL: this thread is not recorded)
 *     w->kind = ...; every field of what is waited on (kind, shared,
 *     direction, owner, object, aux, fd, flags, sets, nfds);
 *     lw_wait_stamp(f, w, start, deadline);       (times, where the stack is: f->at; published)
 * and lw_wait_end when the call returns (what the wait displaced comes
 * back). The stack itself is walked only if someone asks while the wait
 * lasts (registry.h). */
static inline struct lw_wait_rec *lw_wait_begin(struct lw_wait_frame *f)
{
    struct lw_slot *slot = lw_registry_self();
    if (!slot) {
        f->slot = NULL;
        f->displaced = 0;
        return NULL;
    }
    return lw_wait_open(slot, f);
}
void lw_wait_stamp(struct lw_wait_frame *f, struct lw_wait_rec *rec, uint64_t start, uint64_t deadline);
void lw_wait_end(struct lw_wait_frame *f);
void lw_wait_cancelled(void *frame);

/* Whether a wait of this kind may start the server (which allocates). */
bool lw_may_start_server_in(enum lw_wait_kind kind);

/* glibc's cleanup buffers of the first kind: a handler and its argument
 * chained on the thread (four stores), which the unwinding of a
 * cancellation runs as it leaves the frame holding the buffer. Exported at
 * the default version (GLIBC_2.34), no longer declared by pthread.h, whose
 * pthread_cleanup_push costs a sigsetjmp on every call. */
extern void _pthread_cleanup_push(struct _pthread_cleanup_buffer *buffer, void (*routine)(void *), void *arg);
extern void _pthread_cleanup_pop(struct _pthread_cleanup_buffer *buffer, int execute);

/* Run stmt; with cancel = 1 (a cancellation point), a thread cancelled
 * inside it still clears its record. */
#define CALL_0(stmt, frame) stmt
#define CALL_1(stmt, frame)                                               \
    do {                                                                  \
        struct _pthread_cleanup_buffer lw_cleanup_;                       \
        _pthread_cleanup_push(&lw_cleanup_, lw_wait_cancelled, (frame));  \
        stmt;                                                             \
        _pthread_cleanup_pop(&lw_cleanup_, 0);                            \
    } while (0)

/* The caller's callee-saved registers (rbx, rbp, r12-r15), stored in the
 * recording frame for as long as the wait is recorded: while a thread is
 * parked, a pointer its code keeps only in one of them is in memory, where
 * the reachability scan reads it (reach.c counts a live thread's registers
 * as known only while it is parked in a recorded wait). LW_KEEP_REGISTERS
 * after the wait keeps the stores from being dropped. */
#define LW_SAVE_REGISTERS(regs)                                                      \
    __asm__ volatile("mov %%rbx, 0(%0)\n\tmov %%rbp, 8(%0)\n\tmov %%r12, 16(%0)\n\t"  \
                     "mov %%r13, 24(%0)\n\tmov %%r14, 32(%0)\n\tmov %%r15, 40(%0)"      \
                     : : "r"(regs) : "memory")
#define LW_KEEP_REGISTERS(regs) __asm__ volatile("" : : "r"(regs) : "memory")

/* Make `call` (of type `type`) with a wait recorded around it: `begin` is a
 * statement that records into the frame named frame_ (errno is restored
 * after it); cancel (0 or 1) says whether `call` is a cancellation point.
 * The value is the call's; its errno reaches the caller untouched. The
 * function that expands it is the frame the wait's stack is walked from
 * (LW_FRAME_HERE): it stays live for as long as `call` runs, and holds the
 * caller's callee-saved registers meanwhile (above). A hook that makes
 * its call without a record makes it without blocking (tried first, or
 * known unable to block: fdhooks.c): a thread parked in the kernel is in
 * a recorded wait, or a scan sees it as running, registers unseen, and
 * proves nothing (reach.c). */
#define LW_RECORDED_CALL(type, begin, call, cancel)      \
    ({                                                   \
        int lw_saved_errno_ = errno;                     \
        uint64_t lw_regs_[6];                            \
        LW_SAVE_REGISTERS(lw_regs_);                     \
        struct lw_wait_frame frame_;                     \
        LW_FRAME_HERE(frame_.at);                        \
        begin;                                           \
        errno = lw_saved_errno_;                         \
        volatile type lw_result_;                        \
        CALL_##cancel(lw_result_ = (call), &frame_);     \
        lw_wait_end(&frame_);   /* (stores only: errno stays) */ \
        LW_KEEP_REGISTERS(lw_regs_);                     \
        lw_result_;                                      \
    })

/* The binding tables of the hook files other than hooks.c, which lists them
 * all (for start-up resolution and the `hooks` request). */
extern const struct lw_binding lw_fd_bindings[];       /* fdhooks.c */
extern const size_t lw_fd_binding_count;
extern const struct lw_binding lw_signal_bindings[];   /* signals.c */
extern const size_t lw_signal_binding_count;

#endif
