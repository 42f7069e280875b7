/*
 * freeze.h — stopping every thread of a process for a moment, and letting
 * it go exactly as it was (freeze.c): PTRACE_SEIZE and PTRACE_INTERRUPT
 * on each thread (threads born meanwhile included), their registers, and
 * PTRACE_DETACH. Never harm: a process that was stopped stays stopped, a
 * signal that arrived meanwhile is delivered, a wait the stop cut short
 * with EINTR is restarted, and leakwatch killed mid-freeze leaves the
 * process running (SIGINT, SIGTERM, SIGHUP, SIGQUIT: a handler detaches;
 * SIGKILL: the kernel detaches a dead tracer's tracees).
 */
#ifndef LWA_FREEZE_H
#define LWA_FREEZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct lwa_frozen_thread {
    pid_t tid;
    bool stopped;                  /* in our ptrace stop: its registers are read */
    bool gone;                     /* it exited while we attached */
    int pending_signal;            /* a signal that arrived while we held it: delivered at detach */
    bool restart;                  /* its wait returned EINTR because of us: set to restart */
    struct user_regs_struct regs;
};

struct lwa_freeze {
    pid_t pid;
    struct lwa_frozen_thread *threads;   /* sorted by tid once frozen */
    size_t n, cap;
    bool was_stopped;              /* stopped (SIGSTOP) before we came: left stopped */
    size_t unstopped;              /* threads that did not stop in time (uninterruptible sleep) */
    size_t restarted;              /* waits set to restart */
    uint64_t began_ns, frozen_ns, thawed_ns;   /* CLOCK_MONOTONIC */
    bool attached;
};

enum lwa_freeze_failure {
    LWA_FROZEN = 0,
    LWA_NO_PROCESS,       /* it does not exist (or is a zombie) */
    LWA_TRACED,           /* a debugger traces it already */
    LWA_NOT_PERMITTED,    /* another user's, not dumpable, or Yama's ptrace_scope */
    LWA_FAILED,           /* anything else */
};

/* Stop every thread of pid (waiting at most timeout_ms for each to stop).
 * On failure nothing is left attached and why is a sentence. */
enum lwa_freeze_failure lwa_freeze(struct lwa_freeze *f, pid_t pid, unsigned timeout_ms, char *why, size_t size);

/* Let every thread go as it was. Safe to call twice. */
void lwa_thaw(struct lwa_freeze *f);
void lwa_freeze_free(struct lwa_freeze *f);

/* A stopped thread's general registers as the reachability scan counts
 * them (core/source.h); false if it is not stopped. */
struct lw_regs;
bool lwa_thread_registers(const struct lwa_frozen_thread *t, struct lw_regs *out);

/* The frozen thread with this tid, or NULL. */
const struct lwa_frozen_thread *lwa_frozen_thread(const struct lwa_freeze *f, pid_t tid);

/* A test aid: LEAKWATCH_ATTACH_HOLD_MS=N keeps the threads stopped N ms
 * longer (so that a test can kill leakwatch mid-freeze). */
void lwa_freeze_hold_for_tests(void);

#endif
