/*
 * signals.c — whether the application handles signals: sigaction, signal
 * and sigset are hooked, and every signal looked at once at start-up (for
 * handlers installed by constructors before ours). A handler matters twice:
 * it may be the caller of a hook (so some hooks must not start the server
 * from it), and it may end a wait (sem_post and write are async-signal-
 * safe), which the analysis must count.
 */
#include "base/util.h"
#include "interpose/hookcore.h"
#include "interpose/interpose.h"

#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>

bool lw_app_handles_signals;   /* set once any counting handler was installed */

/* Synchronous faults (their handlers run where the fault happened, and a
 * program faulting inside malloc is dying anyway) and glibc's own signals
 * (SIGCANCEL 32, SIGSETXID 33) do not count. */
static bool counts_as_handler(int sig, void (*handler)(int))
{
    if (handler == SIG_DFL || handler == SIG_IGN || handler == SIG_ERR)
        return false;
    switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS: case 32: case 33:
        return false;
    default:
        return true;
    }
}

static void note_handler(int sig, void (*handler)(int))
{
    if (counts_as_handler(sig, handler))
        __atomic_store_n(&lw_app_handles_signals, true, __ATOMIC_RELAXED);
}

/* Handlers installed before our constructor (by other constructors). */
void lw_note_signal_handlers_at_start(void)
{
    struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); uint64_t mask; } old;
    for (int sig = 1; sig <= 64; sig++)
        if (lw_raw_syscall6(SYS_rt_sigaction, sig, 0, (long)&old, 8, 0, 0) == 0)
            note_handler(sig, old.handler);
}

DECLARE_REAL(int, sigaction, (int sig, const struct sigaction *restrict act, struct sigaction *restrict old),
             (sig, act, old), NULL)
DECLARE_REAL(__sighandler_t, signal, (int sig, __sighandler_t handler), (sig, handler), NULL)
DECLARE_REAL(__sighandler_t, sigset, (int sig, __sighandler_t handler), (sig, handler), NULL)

LW_EXPORT int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old)
{
    int result = real_sigaction(sig, act, old);
    if (result == 0 && act)
        note_handler(sig, act->sa_handler);
    return result;
}

LW_EXPORT __sighandler_t signal(int sig, __sighandler_t handler)
{
    __sighandler_t result = real_signal(sig, handler);
    if (result != SIG_ERR)
        note_handler(sig, handler);
    return result;
}

LW_EXPORT __sighandler_t sigset(int sig, __sighandler_t handler)
{
    __sighandler_t result = real_sigset(sig, handler);
    if (result != SIG_ERR && handler != SIG_HOLD)
        note_handler(sig, handler);
    return result;
}

#define BIND(name) { #name, NULL, (void **)&real_##name }
const struct lw_binding lw_signal_bindings[] = { BIND(sigaction), BIND(signal), BIND(sigset) };
const size_t lw_signal_binding_count = sizeof lw_signal_bindings / sizeof lw_signal_bindings[0];
