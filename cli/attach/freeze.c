/*
 * freeze.c — stopping every thread of a process for a moment with ptrace,
 * and leaving it exactly as it was (see freeze.h).
 *
 * PTRACE_SEIZE attaches without stopping and without touching signals;
 * PTRACE_INTERRUPT then stops the thread wherever it is. A thread asleep
 * in a syscall comes out of it to stop, and most syscalls are restarted
 * by the kernel when it is let go (futex, read, poll, nanosleep...). A few
 * return EINTR to the program instead: epoll_wait, epoll_pwait(2),
 * sigtimedwait, semop — as under any debugger. Those of them with no
 * timeout are set to restart as soon as they are stopped, as the kernel
 * restarts the others (the syscall's number back in rax, rip back over
 * the 2-byte syscall instruction), so that even a leakwatch killed by
 * SIGKILL leaves them waiting; a timed one keeps its EINTR (restarting it
 * would lengthen the wait: the time already waited is not known).
 *
 * Threads are listed from /proc/PID/task until a listing finds no new
 * one (a thread not yet stopped may create others). A signal that arrives
 * while a thread is held stops it in signal-delivery-stop: the signal is
 * kept and passed on at detach. A process already stopped by SIGSTOP
 * stays stopped: PTRACE_DETACH leaves a group-stopped thread stopped.
 *
 * Only the calling thread is the tracer; no option that could harm the
 * process is set (never PTRACE_O_EXITKILL).
 */
#include "attach/freeze.h"
#include "base/util.h"
#include "core/source.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long ptrace_call(long request, pid_t tid, void *addr, void *data)
{
    return syscall(SYS_ptrace, request, (long)tid, addr, data);
}

/* ---- reading /proc ---- */

static bool read_file(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = 0;
    return n > 0;
}

/* The state letter of /proc/PID/stat, or of any thread's /proc/TID/stat
 * ('?' unknown). */
static char process_state(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!read_file(path, buf, sizeof buf))
        return '?';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
}

static long status_field(pid_t pid, const char *field)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (!read_file(path, buf, sizeof buf))
        return -1;
    const char *at = strstr(buf, field);
    return at ? strtol(at + strlen(field), NULL, 10) : -1;
}

static void command_of(pid_t pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    if (!read_file(path, out, size))
        snprintf(out, size, "?");
    out[strcspn(out, "\n")] = 0;
}

static bool exited(char state)
{
    return state == 'Z' || state == 'X' || state == '?';
}

/* The state of a live thread of pid: a process whose main thread has
 * exited (pthread_exit) is a zombie leader with threads that live on.
 * '?' when no thread lives. */
static char live_state(pid_t pid)
{
    char state = process_state(pid);
    if (!exited(state))
        return state;
    pid_t *tids;
    size_t n = lw_list_tids(pid, &tids);
    for (size_t i = 0; i < n && exited(state); i++)
        state = process_state(tids[i]);
    free(tids);
    return exited(state) ? '?' : state;
}

/* ---- why we may not attach ---- */

static enum lwa_freeze_failure explain_refusal(pid_t pid, int err, char *why, size_t size)
{
    long tracer = status_field(pid, "TracerPid:");
    if (err == ESRCH || exited(live_state(pid))) {
        snprintf(why, size, "pid %d does not exist (or has exited)", (int)pid);
        return LWA_NO_PROCESS;
    }
    if (tracer > 0) {
        char comm[64];
        command_of((pid_t)tracer, comm, sizeof comm);
        snprintf(why, size, "pid %d is already traced by pid %ld (%s): a process has one tracer at a time; "
                 "detach the debugger first", (int)pid, tracer, comm);
        return LWA_TRACED;
    }
    if (err != EPERM) {
        snprintf(why, size, "cannot attach to pid %d: %s", (int)pid, strerror(err));
        return LWA_FAILED;
    }
    char scope[16];
    long value = read_file("/proc/sys/kernel/yama/ptrace_scope", scope, sizeof scope) ? strtol(scope, NULL, 10) : -1;
    if (value >= 1 && geteuid() != 0)
        snprintf(why, size, "cannot attach to pid %d: kernel.yama.ptrace_scope is %ld, which lets a process trace "
                 "only %s; run leakwatch as root (or with CAP_SYS_PTRACE)%s", (int)pid, value,
                 value == 1 ? "its own descendants" : value == 2 ? "with CAP_SYS_PTRACE" : "nothing at all",
                 value == 1 ? ", or set kernel.yama.ptrace_scope=0 (sysctl)" : "");
    else
        snprintf(why, size, "cannot attach to pid %d: not permitted (another user's process, or not dumpable: "
                 "set-user-ID, or PR_SET_DUMPABLE 0)", (int)pid);
    return LWA_NOT_PERMITTED;
}

/* ---- the threads ---- */

static bool known(const struct lwa_freeze *f, pid_t tid)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->threads[i].tid == tid)
            return true;
    return false;
}

static bool add_thread(struct lwa_freeze *f, pid_t tid)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        struct lwa_frozen_thread *bigger = realloc(f->threads, cap * sizeof *bigger);
        if (!bigger)
            return false;
        f->threads = bigger;
        f->cap = cap;
    }
    f->threads[f->n++] = (struct lwa_frozen_thread){ .tid = tid };
    return true;
}

/* Seize and interrupt every thread listed, until a listing finds no new
 * one. 0, or the errno of the first seize refused. */
static int seize_all(struct lwa_freeze *f)
{
    for (bool found_new = true; found_new;) {
        found_new = false;
        pid_t *tids;
        size_t n = lw_list_tids(f->pid, &tids);
        if (!tids)
            return f->n ? 0 : ESRCH;
        for (size_t i = 0; i < n; i++) {
            if (known(f, tids[i]))
                continue;
            if (ptrace_call(PTRACE_SEIZE, tids[i], NULL, NULL) != 0) {
                int err = errno;
                /* ESRCH: it exited meanwhile; EPERM for a thread of a process
                 * we attached to already, or a zombie: it is exiting (permission
                 * is the process's, not a thread's). */
                if (err == ESRCH || (err == EPERM && (f->n > 0 || exited(process_state(tids[i])))))
                    continue;
                free(tids);
                return err;
            }
            f->attached = true;
            if (!add_thread(f, tids[i])) {
                ptrace_call(PTRACE_DETACH, tids[i], NULL, NULL);   /* (seized, not stopped: detach may fail; */
                free(tids);                                      /*  our exit releases it) */
                return ENOMEM;
            }
            if (ptrace_call(PTRACE_INTERRUPT, tids[i], NULL, NULL) != 0 && errno == ESRCH)
                f->threads[f->n - 1].gone = true;
            found_new = true;
        }
        free(tids);
    }
    return 0;
}

/* One state change of a seized thread: stopped (by us, by a group stop,
 * or by a signal we keep for it), or gone. */
static void note_wait_status(struct lwa_frozen_thread *t, int status)
{
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        t->gone = true;
        return;
    }
    if (!WIFSTOPPED(status))
        return;
    if ((status >> 16) == 0)
        t->pending_signal = WSTOPSIG(status);   /* signal-delivery-stop: pass it on at detach */
    t->stopped = true;   /* (or PTRACE_EVENT_STOP: our interrupt, or a group stop) */
}

/* Wait for every seized thread to stop, at most timeout_ms in all. A
 * blocking waitpid returns the moment its thread stops (polling would
 * lose a time slice per look on a busy machine); a 10 ms interval timer
 * interrupts it to look at the clock. */
static void on_alarm(int sig)
{
    (void)sig;
}

static void take_registers(const struct lwa_freeze *f, struct lwa_frozen_thread *t);

static void wait_for_stops(struct lwa_freeze *f, unsigned timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct sigaction alarm_action = { .sa_handler = on_alarm }, saved_action;   /* no SA_RESTART */
    struct itimerval tick = { { 0, 10000 }, { 0, 10000 } }, saved_timer;
    sigaction(SIGALRM, &alarm_action, &saved_action);
    setitimer(ITIMER_REAL, &tick, &saved_timer);
    sigset_t alarm_only, old;
    sigemptyset(&alarm_only);
    sigaddset(&alarm_only, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alarm_only, &old);
    bool late = false;
    for (size_t i = 0; i < f->n && !late; i++) {
        struct lwa_frozen_thread *t = &f->threads[i];
        while (!t->stopped && !t->gone) {
            int status;
            pid_t r = waitpid(t->tid, &status, __WALL);
            if (r == t->tid) {
                note_wait_status(t, status);
                take_registers(f, t);
            }
            else if (r < 0 && errno == ECHILD)
                t->gone = true;
            else if (r < 0 && errno == EINTR && now_ns() >= deadline) {
                late = true;
                break;
            }
        }
    }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGALRM, &saved_action, NULL);
    setitimer(ITIMER_REAL, &saved_timer, NULL);
    f->unstopped = 0;
    for (size_t i = 0; i < f->n; i++)
        f->unstopped += !f->threads[i].stopped && !f->threads[i].gone;
}

/* ---- EINTR that we caused ---- */

/* A wait without timeout that returns EINTR (not a restart code) when its
 * thread stops: epoll_wait, epoll_pwait, epoll_pwait2, rt_sigtimedwait,
 * semop, semtimedop. */
static bool waits_for_ever_and_returns_eintr(const struct user_regs_struct *r)
{
    switch ((long)r->orig_rax) {
    case SYS_epoll_wait: case SYS_epoll_pwait: return (int)r->r10 < 0;
    case 441: return r->r10 == 0;                        /* epoll_pwait2: no timeout */
    case SYS_rt_sigtimedwait: return r->rdx == 0;
    case SYS_semtimedop: return r->r10 == 0;
    case SYS_semop: return true;
    default: return false;
    }
}

/* (read through the thread itself: a zombie leader has no memory) */
static bool syscall_instruction_before(pid_t tid, uint64_t rip)
{
    unsigned char code[2];
    struct iovec local = { code, 2 }, remote = { (void *)(uintptr_t)(rip - 2), 2 };
    return rip >= 2 && process_vm_readv(tid, &local, 1, &remote, 1, 0) == 2 && code[0] == 0x0f && code[1] == 0x05;
}

/* Back over the syscall instruction with its number in rax, as the kernel
 * restarts the others: done at once, so that even a leakwatch killed by
 * SIGKILL (the kernel then lets go, without us) leaves the wait to go on.
 * t->regs keeps what the thread was doing, for the judging. */
static void set_to_restart(struct lwa_frozen_thread *t)
{
    struct user_regs_struct r = t->regs;
    r.rax = r.orig_rax;
    r.rip -= 2;
    if (ptrace_call(PTRACE_SETREGS, t->tid, NULL, &r) != 0)
        t->restart = false;
}

/* A thread that has just stopped: its registers, and its wait set to
 * restart if our stop cut it short, at once (the window in which a
 * SIGKILLed leakwatch would leave that EINTR is this thread's own few
 * microseconds, not the whole freeze's). */
static void take_registers(const struct lwa_freeze *f, struct lwa_frozen_thread *t)
{
    if (!t->stopped || t->gone)
        return;
    if (ptrace_call(PTRACE_GETREGS, t->tid, NULL, &t->regs) != 0) {
        t->stopped = errno == ESRCH ? false : t->stopped;
        t->gone = errno == ESRCH;
        return;
    }
    t->restart = !f->was_stopped && !t->pending_signal && (long)t->regs.rax == -EINTR &&
                 waits_for_ever_and_returns_eintr(&t->regs) && syscall_instruction_before(t->tid, t->regs.rip);
    if (t->restart)
        set_to_restart(t);
}

static int compare_thread(const void *a, const void *b)
{
    pid_t x = ((const struct lwa_frozen_thread *)a)->tid, y = ((const struct lwa_frozen_thread *)b)->tid;
    return (x > y) - (x < y);
}

/* ---- letting go, also from a signal handler ---- */

/* Async-signal-safe: syscalls only. */
static void release(struct lwa_frozen_thread *t)
{
    if (!t->stopped || t->gone)
        return;
    ptrace_call(PTRACE_DETACH, t->tid, NULL, (void *)(long)t->pending_signal);
    t->stopped = false;
}

static struct lwa_freeze *volatile held;   /* what the handler lets go */
static const int fatal_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NFATAL (sizeof fatal_signals / sizeof fatal_signals[0])
static struct sigaction saved_actions[NFATAL];

static void let_go_and_die(int sig)
{
    struct lwa_freeze *f = held;
    if (f)
        for (size_t i = 0; i < f->n; i++)
            release(&f->threads[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void block_fatal_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < NFATAL; i++)
        sigaddset(&set, fatal_signals[i]);
    sigprocmask(SIG_BLOCK, &set, old);
}

/* From here on the thread array does not change: a fatal signal lets
 * every thread go before leakwatch dies. */
static void install_handlers(struct lwa_freeze *f)
{
    held = f;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = let_go_and_die;
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &sa, &saved_actions[i]);
}

static void restore_handlers(void)
{
    sigset_t old;
    block_fatal_signals(&old);
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal_signals[i], &saved_actions[i], NULL);
    held = NULL;
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* ---- the freeze ---- */

enum lwa_freeze_failure lwa_freeze(struct lwa_freeze *f, pid_t pid, unsigned timeout_ms, char *why, size_t size)
{
    memset(f, 0, sizeof *f);
    f->pid = pid;
    if (pid == getpid()) {
        snprintf(why, size, "pid %d is leakwatch itself", (int)pid);
        return LWA_FAILED;
    }
    char state = live_state(pid);
    if (exited(state)) {
        snprintf(why, size, "pid %d does not exist (or has exited)", (int)pid);
        return LWA_NO_PROCESS;
    }
    f->was_stopped = state == 'T';
    sigset_t old;
    block_fatal_signals(&old);   /* (the handler must never see the array change) */
    f->began_ns = now_ns();
    int err = seize_all(f);
    if (err) {
        wait_for_stops(f, timeout_ms);   /* whatever was seized is let go as soon as it stops */
        lwa_thaw(f);
        sigprocmask(SIG_SETMASK, &old, NULL);
        lwa_freeze_free(f);
        f->pid = pid;
        return explain_refusal(pid, err, why, size);
    }
    wait_for_stops(f, timeout_ms);
    qsort(f->threads, f->n, sizeof *f->threads, compare_thread);
    f->frozen_ns = now_ns();
    install_handlers(f);
    sigprocmask(SIG_SETMASK, &old, NULL);   /* a signal pending since: the handler lets go */
    return LWA_FROZEN;
}

/* Threads that had not stopped when we gave up: wait a little longer for
 * them (a detach needs the stop), else our exit releases them. */
static void release_latecomers(struct lwa_freeze *f)
{
    if (!f->unstopped)
        return;
    uint64_t deadline = now_ns() + 2000000000ull;
    for (size_t i = 0; i < f->n; i++) {
        struct lwa_frozen_thread *t = &f->threads[i];
        while (!t->stopped && !t->gone && now_ns() < deadline) {
            int status;
            pid_t r = waitpid(t->tid, &status, __WALL | WNOHANG);
            if (r == t->tid)
                note_wait_status(t, status);
            else if (r < 0)
                t->gone = true;
            else
                usleep(1000);
        }
        release(t);
    }
}

void lwa_thaw(struct lwa_freeze *f)
{
    if (!f->attached)
        return;
    for (size_t i = 0; i < f->n; i++) {
        f->restarted += f->threads[i].restart && f->threads[i].stopped && !f->threads[i].gone;
        release(&f->threads[i]);
    }
    release_latecomers(f);
    f->attached = false;
    f->thawed_ns = now_ns();
    if (held == f)
        restore_handlers();
}

void lwa_freeze_free(struct lwa_freeze *f)
{
    lwa_thaw(f);
    free(f->threads);
    f->threads = NULL;
    f->n = f->cap = 0;
}

bool lwa_thread_registers(const struct lwa_frozen_thread *t, struct lw_regs *out)
{
    memset(out, 0, sizeof *out);
    if (!t || !t->stopped || t->gone)
        return false;
    const struct user_regs_struct *r = &t->regs;
    uint64_t words[] = { r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->r8, r->r9, r->r10,
                         r->r11, r->r12, r->r13, r->r14, r->r15, r->fs_base, r->gs_base };
    memcpy(out->words, words, sizeof words);
    out->nwords = sizeof words / sizeof words[0];
    out->sp = r->rsp;
    return true;
}

const struct lwa_frozen_thread *lwa_frozen_thread(const struct lwa_freeze *f, pid_t tid)
{
    struct lwa_frozen_thread key = { .tid = tid };
    return f->threads ? bsearch(&key, f->threads, f->n, sizeof key, compare_thread) : NULL;
}

void lwa_freeze_hold_for_tests(void)
{
    const char *ms = getenv("LEAKWATCH_ATTACH_HOLD_MS");
    long v = ms ? strtol(ms, NULL, 10) : 0;
    if (v > 0 && v <= 600000) {
        fprintf(stderr, "leakwatch: holding the threads stopped for %ld ms (LEAKWATCH_ATTACH_HOLD_MS)\n", v);
        usleep((useconds_t)v * 1000);
    }
}
