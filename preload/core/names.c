/*
 * names.c — the public names of wait kinds, origins, verdicts and the
 * blocking syscalls that /proc/self/task/TID/syscall reports (x86-64).
 */
#include "core/snapshot.h"

#include <sys/syscall.h>

const char *lw_wait_kind_name(enum lw_wait_kind kind)
{
    static const char *const names[LW_WAIT_KIND_COUNT] = {
        [LW_WAIT_NONE] = "none", [LW_WAIT_MUTEX] = "mutex", [LW_WAIT_COND] = "cond",
        [LW_WAIT_RWLOCK_READ] = "rwlock-read", [LW_WAIT_RWLOCK_WRITE] = "rwlock-write",
        [LW_WAIT_SEM] = "sem", [LW_WAIT_BARRIER] = "barrier", [LW_WAIT_JOIN] = "join",
        [LW_WAIT_FUTEX] = "futex", [LW_WAIT_FD_READ] = "fd-read", [LW_WAIT_FD_WRITE] = "fd-write",
        [LW_WAIT_POLL] = "poll", [LW_WAIT_MQ_RECEIVE] = "mq-receive", [LW_WAIT_MQ_SEND] = "mq-send",
        [LW_WAIT_SLEEP] = "sleep", [LW_WAIT_SIGNAL] = "signal", [LW_WAIT_CHILD] = "child",
        [LW_WAIT_SOCKET] = "socket", [LW_WAIT_SYSCALL] = "syscall",
    };
    return (unsigned)kind < LW_WAIT_KIND_COUNT && names[kind] ? names[kind] : "unknown";
}

const char *lw_direction_name(enum lw_direction d)
{
    switch (d) {
    case LW_DIR_READ: return "read";
    case LW_DIR_WRITE: return "write";
    case LW_DIR_BOTH: return "both";
    case LW_DIR_NONE: break;
    }
    return NULL;
}

const char *lw_chan_type_name(enum lw_chan_type t)
{
    static const char *const names[] = {
        [LW_CHAN_NONE] = "none", [LW_CHAN_PIPE] = "pipe", [LW_CHAN_SOCKETPAIR] = "socketpair",
        [LW_CHAN_EVENTFD] = "eventfd", [LW_CHAN_FIFO] = "fifo", [LW_CHAN_MQ] = "mq",
        [LW_CHAN_SOCKET] = "socket", [LW_CHAN_FILE] = "file", [LW_CHAN_TTY] = "tty", [LW_CHAN_OTHER] = "other",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "other";
}

const char *lw_wait_class_name(enum lw_wait_class c)
{
    switch (c) {
    case LW_CLASS_IN_PROCESS: return "in-process";
    case LW_CLASS_EXTERNAL: return "external";
    case LW_CLASS_TIMED: return "timed";
    case LW_CLASS_NONE: break;
    }
    return NULL;
}

const char *lw_origin_name(enum lw_origin origin)
{
    switch (origin) {
    case LW_ORIGIN_MAIN: return "main";
    case LW_ORIGIN_PTHREAD: return "pthread_create";
    case LW_ORIGIN_ADOPTED: return "adopted";
    case LW_ORIGIN_PROC: return "proc";
    }
    return "unknown";
}

const char *lw_verdict_name(enum lw_verdict v)
{
    static const char *const names[LW_VERDICT_COUNT] = {
        "running", "waiting", "suspect", "leaked", "deadlocked",
    };
    return (unsigned)v < LW_VERDICT_COUNT ? names[v] : "unknown";
}

const char *lw_syscall_name(int nr)
{
    switch (nr) {
    case SYS_read: return "read";
    case SYS_write: return "write";
    case SYS_poll: return "poll";
    case SYS_pread64: return "pread64";
    case SYS_pwrite64: return "pwrite64";
    case SYS_readv: return "readv";
    case SYS_writev: return "writev";
    case SYS_select: return "select";
    case SYS_sched_yield: return "sched_yield";
    case SYS_pause: return "pause";
    case SYS_nanosleep: return "nanosleep";
    case SYS_accept: return "accept";
    case SYS_connect: return "connect";
    case SYS_sendto: return "sendto";
    case SYS_recvfrom: return "recvfrom";
    case SYS_sendmsg: return "sendmsg";
    case SYS_recvmsg: return "recvmsg";
    case SYS_wait4: return "wait4";
    case SYS_msgsnd: return "msgsnd";
    case SYS_msgrcv: return "msgrcv";
    case SYS_semop: return "semop";
    case SYS_flock: return "flock";
    case SYS_fcntl: return "fcntl";
    case SYS_rt_sigsuspend: return "rt_sigsuspend";
    case SYS_rt_sigtimedwait: return "rt_sigtimedwait";
    case SYS_futex: return "futex";
    case SYS_epoll_wait: return "epoll_wait";
    case SYS_clock_nanosleep: return "clock_nanosleep";
    case SYS_mq_timedsend: return "mq_timedsend";
    case SYS_mq_timedreceive: return "mq_timedreceive";
    case SYS_waitid: return "waitid";
    case SYS_pselect6: return "pselect6";
    case SYS_ppoll: return "ppoll";
    case SYS_epoll_pwait: return "epoll_pwait";
    case SYS_accept4: return "accept4";
    case SYS_recvmmsg: return "recvmmsg";
    case SYS_sendmmsg: return "sendmmsg";
    case SYS_semtimedop: return "semtimedop";
    case SYS_io_getevents: return "io_getevents";
    case 441: return "epoll_pwait2";
    case 449: return "futex_waitv";
    default: return NULL;
    }
}

const char *lw_root_kind_name(enum lw_root_kind k)
{
    static const char *const names[] = {
        [LW_ROOT_NONE] = NULL, [LW_ROOT_DATA] = "data", [LW_ROOT_STACK] = "stack", [LW_ROOT_TLS] = "tls",
        [LW_ROOT_THREAD] = "thread", [LW_ROOT_REGISTERS] = "registers", [LW_ROOT_MAPPING] = "mapping",
    };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : NULL;
}

const char *lw_step_kind_name(enum lw_step_kind k)
{
    static const char *const names[] = {
        [LW_STEP_HEAP] = "heap", [LW_STEP_MMAPPED] = "mmapped", [LW_STEP_STACK] = "stack",
        [LW_STEP_TLS] = "tls", [LW_STEP_THREAD] = "thread",
    };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "heap";
}
