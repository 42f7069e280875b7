/*
 * fdhooks.c — hooks on file descriptors, signals, children and System V
 * queues: the waits of fdhooks.def (generated), the poll family, and the
 * bookkeeping that keeps the per-fd cache and the channel table true
 * (pipe, socketpair, eventfd, mq_open, dup, fcntl, close, fdopen...).
 *
 * Most of these calls are async-signal-safe and some are very hot (read on
 * a non-blocking socket in an event loop), so: no allocation, no lock, errno
 * preserved, one load from the per-fd cache on the fast path. A call that
 * cannot block (O_NONBLOCK, a regular file, a zero timeout, MSG_DONTWAIT)
 * is not a wait and records nothing; a use of a channel is noted whatever
 * the call does, because the proof rules need every thread that ever used
 * it. A call that may block is recorded with a few stores (the stack is
 * walked later, if asked for while it waits); before the server has
 * started it is first tried without blocking where the kernel returns
 * exactly what the call would (reads, small pipe writes, datagrams), so a
 * program that never parks never starts it. Pointers the caller hands to the kernel are read only after the
 * kernel accepted them, or copied with process_vm_readv, so a bad one still
 * costs the caller its EFAULT and never a crash of ours.
 */
/* Hooks must define pread, fcntl, ... under their own names: with 64-bit
 * file offsets the headers would rename them to pread64, fcntl64... (the
 * same functions on x86-64, hooked separately below). */
#undef _FILE_OFFSET_BITS

#include "record/channels.h"
#include "interpose/hookcore.h"
#include "base/util.h"
#include "base/lifecycle.h"
#include "interpose/fdcache.h"
#include "interpose/interpose.h"
#include "record/registry.h"
#include "record/stacks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Not declared unless the program itself is built with _FORTIFY_SOURCE. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off64_t off, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *restrict from, socklen_t *restrict len);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask, size_t fdslen);

/* ---- recording ---- */

static enum lw_direction direction_of(enum lw_use use)
{
    return use == LW_USE_READ ? LW_DIR_READ : LW_DIR_WRITE;
}

struct fd_wait {
    enum lw_wait_kind kind;
    int64_t fd;
    enum lw_direction direction;
    uint32_t flags;           /* LW_REC_* */
    const void *set[3];
    uint32_t nfds;
};

/* The coarse clock as the slow path of this thread's current read, write,
 * recv or send read it (to note the use of a channel; 0: it did not), for
 * the wait's start if the call is recorded: set by every such slow path,
 * taken by its recorded call. */
static __thread uint64_t call_coarse_ns __attribute__((tls_model("initial-exec")));

static inline uint64_t take_call_coarse(void)
{
    uint64_t raw = call_coarse_ns;
    call_coarse_ns = 0;
    return raw;
}

/* The record costs a few stores (its stack is walked only if asked for
 * while the wait lasts: hookcore.h), and its start time is the coarse
 * clock's (raw: a reading of it this call made, or 0): seconds parked
 * need no better. */
static void fd_wait_begin_at(struct lw_wait_frame *f, const struct fd_wait *w, uint64_t deadline, uint64_t raw)
{
    struct lw_wait_rec *rec = lw_wait_begin(f);
    if (rec) {
        rec->kind = (uint8_t)w->kind;
        rec->shared = 0;
        rec->direction = (uint8_t)w->direction;
        rec->owner = 0;
        rec->object_masked = rec->aux_masked = 0;
        rec->fd = w->fd;
        rec->flags = w->flags;
        for (int i = 0; i < 3; i++)
            rec->set_masked[i] = w->set[i] ? (uint64_t)(uintptr_t)w->set[i] ^ LW_ADDR_MASK : 0;
        rec->nfds = w->nfds;
        lw_wait_stamp(f, rec, lw_coarse_floor(raw ? raw : lw_coarse_raw_ns()), deadline);
    }
    /* After the record, so the first client already sees it. A call that
     * could be tried without blocking got here only because it would have
     * blocked (try_first): the server costs a program that does not park
     * nothing. */
    if (LW_UNLIKELY(lw_lifecycle_armed()) && lw_may_start_server_in(w->kind))
        lw_lifecycle_first_activity();
}

static void fd_wait_begin(struct lw_wait_frame *f, const struct fd_wait *w, uint64_t deadline)
{
    fd_wait_begin_at(f, w, deadline, 0);
}

/* The slow path's look at one fd: its cache entry (classified once) and
 * its channel, if any, whose use by this thread is noted. */
static inline __attribute__((always_inline)) uint64_t fd_entry_noting(int fd, enum lw_use use,
                                                                      struct lw_channel **ch)
{
    uint64_t entry = lw_fd_entry(fd);
    if (LW_UNLIKELY(!(entry & LW_FD_KNOWN)))
        entry = lw_fd_classify(fd);
    *ch = (entry & LW_FD_CHANNEL) ? lw_channel_of(entry) : NULL;
    uint64_t now = 0;
    if (*ch) {
        now = lw_coarse_raw_ns();
        lw_channel_used(*ch, entry, use, now);
    }
    call_coarse_ns = now;   /* the wait's start, if it is recorded */
    return entry;
}

/* ---- calls tried without blocking first ----
 * Only while the server has not started, in a process where a wait of
 * this kind would start it (no signal handler: hookcore.c): a program
 * that never parks then stays as it was, single-threaded, and pays no
 * record. Once the server runs, a call is made once, as it came, with a
 * record around it that costs a few stores: a failed try would cost a
 * syscall on every call that parks. Writes on local sockets are the
 * exception: such a write seldom parks and its try, a send with
 * MSG_DONTWAIT, is the very syscall the call makes, so it is tried first
 * whether the server runs or not, and recorded only if it would block. (A
 * pipe's try, pwritev2 with RWF_NOWAIT, costs the kernel more than the
 * record it saves: measured, a pinned pipe ping-pong went from 1.07x to
 * 1.13x.)
 *
 * The try goes through glibc's own wrapper, a cancellation point like
 * the call itself (a pending cancellation is acted on at entry the same
 * way), and never sleeps (so no signal can interrupt it). Its result is
 * the call's unless it is EAGAIN (nothing done: the call would block) or
 * EOPNOTSUPP (the file refuses RWF_NOWAIT before doing anything: never
 * again on this fd); then the real call is made, recorded, as it came. */
static inline __attribute__((always_inline)) bool try_first(enum lw_wait_kind kind)
{
    (void)kind;   /* every kind of this file's tables is one of "the others" there */
    return LW_UNLIKELY(lw_lifecycle_armed()) && !lw_app_has_signal_handlers();
}

/* A pipe this single-threaded program made, whose bytes the hooks count,
 * says the call cannot block (record/channels.h): no try, no record. */
#define PIPE_READY(entry, use, n) (ch_ && lw_pipe_cannot_block(ch_, (entry), (use), (n)))

/* The bytes a call moved through a counted pipe (while the server has not
 * started: afterwards nothing reads the count again). */
static inline __attribute__((always_inline)) void count_moved(struct lw_channel *ch, uint64_t entry,
                                                             enum lw_use use, int64_t n)
{
    if (n > 0 && ch && LW_UNLIKELY(lw_lifecycle_armed()))
        lw_pipe_moved(ch, entry, use, n);
}

#define COUNTED(type, entry, use, call)                      \
    ({                                                       \
        type counted_ = (call);                              \
        count_moved(ch_, (entry), (use), (int64_t)counted_); \
        counted_;                                            \
    })

/* Reads of any size; writes up to PIPE_BUF bytes on a pipe (all or
 * nothing, as POSIX says), of any size on an AF_UNIX datagram socket, of
 * up to LW_SHORT_SEND bytes on an AF_UNIX stream socket. */
#define TRY_READS(entry) (((entry) & LW_FD_TRY_READ) != 0)
#define TRY_SHORT_SEND(entry, n) (((entry) & LW_FD_TRY_SHORT_SEND) && (n) <= LW_SHORT_SEND)
#define TRY_WRITES(entry, n) \
    ((((entry) & LW_FD_TRY_SMALL_WRITE) && (n) <= PIPE_BUF) || ((entry) & LW_FD_TRY_WRITE) || TRY_SHORT_SEND(entry, n))
/* (MSG_OOB: an AF_UNIX stream's out-of-band byte is queued apart) */
#define TRY_MESSAGES(entry, n, flags) \
    (((entry) & LW_FD_TRY_WRITE) || (TRY_SHORT_SEND(entry, n) && !((flags) & MSG_OOB)))

/* Whether the try's outcome is not the call's: the call must be made. */
static bool try_failed(int fd, int err)
{
    if (err == EOPNOTSUPP)
        lw_fd_no_tries(fd);
    return err == EAGAIN || err == EWOULDBLOCK || err == EOPNOTSUPP;
}

/* read, write and readv made without blocking (preadv2 at the file's
 * position is readv; read on a socket is recv; defined after the table,
 * which binds preadv64v2 and recv). */
static ssize_t attempt_read(int fd, void *buf, size_t n, uint64_t entry);
static ssize_t attempt_write(int fd, const void *buf, size_t n, uint64_t entry);
static ssize_t attempt_readv(int fd, const struct iovec *iov, int n, int flags);

/* Return from the hook with the attempt's outcome unless it is "would
 * block" (errno, as the caller left it, restored for the real call). */
#define TRY_WITHOUT_BLOCKING(ret, entry, fd, use, attempt)           \
    do {                                                             \
        int saved_ = errno;                                          \
        ret tried_ = (attempt);                                      \
        if (tried_ >= 0 || !try_failed((fd), errno))                 \
            return COUNTED(ret, (entry), (use), tried_);             \
        errno = saved_;                                              \
    } while (0)

/* ---- the generated wrappers (DECLARE_REAL: hookcore.h) ---- */

#define FDWAIT(ret, name, params, args, version, wkind, wfd, wuse, nonblocking, ready, tryable, attempt, deadline, \
               cancel)                                                                         \
    DECLARE_REAL(ret, name, params, args, version)                                             \
    static __attribute__((noinline)) ret recorded_##name params                                \
    {                                                                                          \
        struct fd_wait w = { .kind = (wkind), .fd = (wfd), .direction = direction_of(wuse),    \
                             .flags = LW_REC_FD };                                             \
        return LW_RECORDED_CALL(ret, fd_wait_begin_at(&frame_, &w, (deadline), take_call_coarse()), \
                                real_##name args, cancel);                                     \
    }                                                                                          \
    static __attribute__((noinline)) ret slow_##name params                                    \
    {                                                                                          \
        if (lw_hooks_bypassed())                                                               \
            return real_##name args;                                                           \
        struct lw_channel *ch_;                                                                \
        uint64_t entry_ = fd_entry_noting((wfd), (wuse), &ch_);                                \
        if ((nonblocking) || (entry_ & LW_FD_NEVER_BLOCKS))                                    \
            return COUNTED(ret, entry_, (wuse), real_##name args);                             \
        if (try_first(wkind)) {                                                                \
            if (ready)                                                                         \
                return COUNTED(ret, entry_, (wuse), real_##name args);                         \
            if (tryable)                                                                       \
                TRY_WITHOUT_BLOCKING(ret, entry_, (wfd), (wuse), (attempt));                   \
        } else if ((wuse) == LW_USE_WRITE && (entry_ & LW_FD_SOCKET) && (tryable)) {           \
            TRY_WITHOUT_BLOCKING(ret, entry_, (wfd), (wuse), (attempt));                       \
        }                                                                                      \
        if (LW_LIKELY(!lw_lifecycle_armed()))   /* (nothing to count: a tail call) */          \
            return recorded_##name args;                                                       \
        return COUNTED(ret, entry_, (wuse), recorded_##name args);                             \
    }                                                                                          \
    /* A non-blocking end of a channel: who uses it, and (while counted) what it moves. */   \
    static __attribute__((noinline)) ret channel_end_##name params                             \
    {                                                                                          \
        uint64_t entry_ = lw_fd_entry(wfd);                                                    \
        struct lw_channel *ch_ = lw_channel_of(entry_);                                        \
        if (ch_)                                                                               \
            lw_channel_used(ch_, entry_, (wuse), lw_coarse_raw_ns());                          \
        if (LW_LIKELY(!lw_lifecycle_armed()))                                                  \
            return real_##name args;                                                           \
        return COUNTED(ret, entry_, (wuse), real_##name args);                                 \
    }                                                                                          \
    LW_EXPORT ret name params                                                                  \
    {                                                                                          \
        uint64_t entry_ = lw_fd_entry(wfd);                                                    \
        if (LW_LIKELY(lw_fd_never_blocks(entry_))) {                                           \
            if (LW_LIKELY(!(entry_ & LW_FD_CHANNEL)))                                          \
                return real_##name args;                                                       \
            return channel_end_##name args;                                                    \
        }                                                                                      \
        return slow_##name args;                                                               \
    }

#define XWAIT(ret, name, params, args, version, wkind, may_park, wid, rec_flags, wdirection, deadline, cancel) \
    DECLARE_REAL(ret, name, params, args, version)                                                         \
    static __attribute__((noinline, cold)) ret slow_##name params                                          \
    {                                                                                                      \
        if (lw_hooks_bypassed())                                                                           \
            return real_##name args;                                                                       \
        struct fd_wait w = { .kind = (wkind), .fd = (wid), .direction = (wdirection), .flags = (rec_flags) }; \
        return LW_RECORDED_CALL(ret, fd_wait_begin(&frame_, &w, (deadline)), real_##name args, cancel);     \
    }                                                                                                      \
    LW_EXPORT ret name params                                                                              \
    {                                                                                                      \
        if (!(may_park))                                                                                   \
            return real_##name args;                                                                       \
        return slow_##name args;                                                                           \
    }

#include "fdhooks.def"
#undef FDWAIT
#undef XWAIT

static ssize_t attempt_readv(int fd, const struct iovec *iov, int n, int flags)
{
    return real_preadv64v2(fd, iov, n, -1, flags | RWF_NOWAIT);
}

static ssize_t attempt_read(int fd, void *buf, size_t n, uint64_t entry)
{
    if ((entry & LW_FD_SOCKET) && n > 0)   /* (a read of 0 bytes consumes no datagram; a recv would) */
        return real_recv(fd, buf, n, MSG_DONTWAIT);
    struct iovec v = { buf, n };
    return attempt_readv(fd, &v, 1, 0);
}

static ssize_t attempt_write(int fd, const void *buf, size_t n, uint64_t entry)
{
    if ((entry & LW_FD_SOCKET) && n > 0)   /* write on a socket is send: the same syscall as the bare call's */
        return real_send(fd, buf, n, MSG_DONTWAIT);
    struct iovec v = { (void *)buf, n };
    return real_pwritev64v2(fd, &v, 1, -1, RWF_NOWAIT);
}

/* ---- the poll family ---- */

static bool any_channels(void) { return lw_channels_high_water() != 0; }

/* After a successful poll the kernel has read the array: note which
 * channels this thread watches. */
static void note_pollfd_uses(const struct pollfd *fds, nfds_t n)
{
    if (!any_channels())
        return;
    for (nfds_t i = 0; i < n; i++) {
        uint64_t entry = lw_fd_entry(fds[i].fd);
        if (!(entry & LW_FD_CHANNEL))
            continue;
        if (fds[i].events & (POLLIN | POLLRDNORM | POLLPRI))
            lw_channel_note_use(entry, LW_USE_READ);
        if (fds[i].events & (POLLOUT | POLLWRNORM))
            lw_channel_note_use(entry, LW_USE_WRITE);
    }
}

/* After a successful select: the sets now hold the ready descriptors. */
static void note_fdset_uses(int nfds, const fd_set *r, const fd_set *w)
{
    if (!any_channels())
        return;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
        uint64_t entry = lw_fd_entry(fd);
        if (!(entry & LW_FD_CHANNEL))
            continue;
        if (r && FD_ISSET(fd, r))
            lw_channel_note_use(entry, LW_USE_READ);
        if (w && FD_ISSET(fd, w))
            lw_channel_note_use(entry, LW_USE_WRITE);
    }
}

static struct fd_wait pollfd_wait(struct pollfd *fds, nfds_t n)
{
    return (struct fd_wait){ .kind = LW_WAIT_POLL, .fd = -1, .flags = LW_REC_POLLFDS,
                             .set = { fds, NULL, NULL }, .nfds = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n };
}

/* A relative timeout the kernel would read: copied; a zero one is no wait. */
static bool timespec_is_zero_copied(const struct timespec *t, uint64_t *deadline)
{
    struct timespec copy;
    if (!lw_copy_from_app(&copy, t, sizeof copy)) {
        *deadline = UNKNOWN_DEADLINE;
        return false;
    }
    if (copy.tv_sec == 0 && copy.tv_nsec == 0)
        return true;
    *deadline = lw_rel_deadline_copied(&copy);
    return false;
}

DECLARE_REAL(int, poll, (struct pollfd *fds, nfds_t n, int timeout), (fds, n, timeout), NULL)
DECLARE_REAL(int, __poll_chk, (struct pollfd *fds, nfds_t n, int timeout, size_t len), (fds, n, timeout, len), NULL)
DECLARE_REAL(int, ppoll, (struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask), (fds, n, t, mask), NULL)
DECLARE_REAL(int, __ppoll_chk, (struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask, size_t len),
             (fds, n, t, mask, len), NULL)
DECLARE_REAL(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t), (n, r, w, e, t), NULL)
DECLARE_REAL(int, pselect, (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *mask),
             (n, r, w, e, t, mask), NULL)
DECLARE_REAL(int, epoll_wait, (int ep, struct epoll_event *ev, int max, int timeout), (ep, ev, max, timeout), NULL)
DECLARE_REAL(int, epoll_pwait, (int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask),
             (ep, ev, max, timeout, mask), NULL)
DECLARE_REAL(int, epoll_pwait2, (int ep, struct epoll_event *ev, int max, const struct timespec *t, const sigset_t *mask),
             (ep, ev, max, t, mask), NULL)

/* The body shared by every poll-like hook: record `w`, run `call`, clear
 * the record. A macro because each call has its own type. */
#define RECORDED_CALL(w, deadline, call) \
    (result = LW_RECORDED_CALL(int, fd_wait_begin(&frame_, &(w), (deadline)), (call), 1))

static __attribute__((noinline, cold)) int slow_poll(struct pollfd *fds, nfds_t n, int timeout, size_t len, bool chk)
{
    int result;
    if (lw_hooks_bypassed())
        return chk ? real___poll_chk(fds, n, timeout, len) : real_poll(fds, n, timeout);
    struct fd_wait w = pollfd_wait(fds, n);
    RECORDED_CALL(w, lw_ms_deadline(timeout), chk ? real___poll_chk(fds, n, timeout, len) : real_poll(fds, n, timeout));
    if (result >= 0) {
        int saved = errno;
        note_pollfd_uses(fds, n);
        errno = saved;
    }
    return result;
}

LW_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (timeout == 0)
        return real_poll(fds, n, timeout);
    return slow_poll(fds, n, timeout, 0, false);
}

LW_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t len)
{
    if (timeout == 0)
        return real___poll_chk(fds, n, timeout, len);
    return slow_poll(fds, n, timeout, len, true);
}

static __attribute__((noinline, cold)) int slow_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t,
                                                      const sigset_t *mask, size_t len, bool chk)
{
    int result;
    uint64_t deadline = NO_DEADLINE;
    if (lw_hooks_bypassed() || (t && timespec_is_zero_copied(t, &deadline)))
        return chk ? real___ppoll_chk(fds, n, t, mask, len) : real_ppoll(fds, n, t, mask);
    struct fd_wait w = pollfd_wait(fds, n);
    RECORDED_CALL(w, deadline, chk ? real___ppoll_chk(fds, n, t, mask, len) : real_ppoll(fds, n, t, mask));
    if (result >= 0) {
        int saved = errno;
        note_pollfd_uses(fds, n);
        errno = saved;
    }
    return result;
}

LW_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask)
{
    return slow_ppoll(fds, n, t, mask, 0, false);
}

LW_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *mask, size_t len)
{
    return slow_ppoll(fds, n, t, mask, len, true);
}

static struct fd_wait fdset_wait(int n, fd_set *r, fd_set *w, fd_set *e)
{
    return (struct fd_wait){ .kind = LW_WAIT_POLL, .fd = -1, .flags = LW_REC_FDSETS,
                             .set = { r, w, e }, .nfds = n < 0 ? 0 : (uint32_t)n };
}

static __attribute__((noinline, cold)) int slow_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
    int result;
    if (lw_hooks_bypassed())
        return real_select(n, r, w, e, t);
    struct fd_wait wait = fdset_wait(n, r, w, e);
    /* glibc's select reads *t in user space itself (to convert it). */
    uint64_t deadline = t ? lw_now_ns() + (uint64_t)(t->tv_sec < 0 ? 0 : t->tv_sec) * 1000000000ull +
                                (uint64_t)(t->tv_usec < 0 ? 0 : t->tv_usec) * 1000ull
                          : NO_DEADLINE;
    RECORDED_CALL(wait, deadline, real_select(n, r, w, e, t));
    if (result >= 0) {
        int saved = errno;
        note_fdset_uses(n, r, w);
        errno = saved;
    }
    return result;
}

LW_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
    if (t && t->tv_sec == 0 && t->tv_usec == 0)
        return real_select(n, r, w, e, t);
    return slow_select(n, r, w, e, t);
}

LW_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *mask)
{
    int result;
    uint64_t deadline = NO_DEADLINE;
    if (lw_hooks_bypassed() || (t && timespec_is_zero_copied(t, &deadline)))
        return real_pselect(n, r, w, e, t, mask);
    struct fd_wait wait = fdset_wait(n, r, w, e);
    RECORDED_CALL(wait, deadline, real_pselect(n, r, w, e, t, mask));
    if (result >= 0) {
        int saved = errno;
        note_fdset_uses(n, r, w);
        errno = saved;
    }
    return result;
}

static struct fd_wait epoll_wait_on(int ep)
{
    return (struct fd_wait){ .kind = LW_WAIT_POLL, .fd = ep, .flags = LW_REC_FD | LW_REC_EPOLL };
}

static __attribute__((noinline, cold)) int slow_epoll(int ep, struct epoll_event *ev, int max, int timeout,
                                                      const sigset_t *mask, bool pwait)
{
    int result;
    if (lw_hooks_bypassed())
        return pwait ? real_epoll_pwait(ep, ev, max, timeout, mask) : real_epoll_wait(ep, ev, max, timeout);
    struct fd_wait w = epoll_wait_on(ep);
    RECORDED_CALL(w, lw_ms_deadline(timeout),
                  pwait ? real_epoll_pwait(ep, ev, max, timeout, mask) : real_epoll_wait(ep, ev, max, timeout));
    return result;
}

LW_EXPORT int epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
    if (timeout == 0)
        return real_epoll_wait(ep, ev, max, timeout);
    return slow_epoll(ep, ev, max, timeout, NULL, false);
}

LW_EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
    if (timeout == 0)
        return real_epoll_pwait(ep, ev, max, timeout, mask);
    return slow_epoll(ep, ev, max, timeout, mask, true);
}

LW_EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *t, const sigset_t *mask)
{
    int result;
    uint64_t deadline = NO_DEADLINE;
    if (lw_hooks_bypassed() || (t && timespec_is_zero_copied(t, &deadline)))
        return real_epoll_pwait2(ep, ev, max, t, mask);
    struct fd_wait w = epoll_wait_on(ep);
    RECORDED_CALL(w, deadline, real_epoll_pwait2(ep, ev, max, t, mask));
    return result;
}

/* Registering a channel in an epoll set makes this thread one of its users. */
DECLARE_REAL(int, epoll_ctl, (int ep, int op, int fd, struct epoll_event *ev), (ep, op, fd, ev), NULL)

LW_EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
    int result = real_epoll_ctl(ep, op, fd, ev);
    uint64_t entry = lw_fd_entry(fd);
    if (result == 0 && op != EPOLL_CTL_DEL && (entry & LW_FD_CHANNEL) && ev) {
        int saved = errno;
        if (ev->events & (EPOLLIN | EPOLLRDNORM | EPOLLPRI))
            lw_channel_note_use(entry, LW_USE_READ);
        if (ev->events & (EPOLLOUT | EPOLLWRNORM))
            lw_channel_note_use(entry, LW_USE_WRITE);
        errno = saved;
    }
    return result;
}

/* ---- sendmsg: a wait, and the way fds leave the process ---- */

DECLARE_REAL(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags), NULL)

/* A channel fd passed over a socket may now be held by another process for
 * ever: no proof may rest on its users any more. Called after the kernel
 * accepted the message, so the control buffer is readable. */
static void note_passed_fds(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof fd, sizeof fd);
            lw_fd_mark(fd, LW_CH_EXPORTED);
        }
    }
}

static __attribute__((noinline)) ssize_t recorded_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct fd_wait w = { .kind = LW_WAIT_FD_WRITE, .fd = fd, .direction = LW_DIR_WRITE, .flags = LW_REC_FD };
    return LW_RECORDED_CALL(ssize_t, fd_wait_begin_at(&frame_, &w, NO_DEADLINE, take_call_coarse()),
                            real_sendmsg(fd, msg, flags), 1);
}

static __attribute__((noinline)) ssize_t slow_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (lw_hooks_bypassed())
        return real_sendmsg(fd, msg, flags);
    struct lw_channel *ch;
    uint64_t entry = fd_entry_noting(fd, LW_USE_WRITE, &ch);
    if ((flags & MSG_DONTWAIT) || (entry & LW_FD_NEVER_BLOCKS))
        return real_sendmsg(fd, msg, flags);
    if (entry & LW_FD_TRY_WRITE) {   /* a datagram (a write: tried even once the server runs) */
        int saved = errno;
        ssize_t tried = real_sendmsg(fd, msg, flags | MSG_DONTWAIT);
        if (tried >= 0 || !try_failed(fd, errno))
            return tried;
        errno = saved;
    }
    return recorded_sendmsg(fd, msg, flags);
}

LW_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ssize_t result = lw_fd_passes_through(fd) ? real_sendmsg(fd, msg, flags) : slow_sendmsg(fd, msg, flags);
    if (result >= 0 && msg->msg_controllen && any_channels()) {
        int saved = errno;
        note_passed_fds(msg);
        errno = saved;
    }
    return result;
}

/* ---- channel creation ---- */

static void created(const int *fds, int n, enum lw_channel_type type)
{
    if (lw_hooks_bypassed())
        return;
    int saved = errno;
    lw_bypass_enter();
    lw_fd_created_channel(fds, n, type);
    lw_bypass_leave();
    errno = saved;
}

DECLARE_REAL(int, pipe, (int fds[2]), (fds), NULL)
DECLARE_REAL(int, pipe2, (int fds[2], int flags), (fds, flags), NULL)
DECLARE_REAL(int, socketpair, (int domain, int type, int protocol, int fds[2]), (domain, type, protocol, fds), NULL)
DECLARE_REAL(int, eventfd, (unsigned int value, int flags), (value, flags), NULL)

static void pipe_created(const int fds[2]) { created(fds, 2, LW_CH_PIPE); }

LW_EXPORT int pipe(int fds[2])
{
    int result = real_pipe(fds);
    if (result == 0)
        pipe_created(fds);
    return result;
}

LW_EXPORT int pipe2(int fds[2], int flags)
{
    int result = real_pipe2(fds, flags);
    if (result == 0)
        pipe_created(fds);
    return result;
}

LW_EXPORT int socketpair(int domain, int type, int protocol, int fds[2])
{
    int result = real_socketpair(domain, type, protocol, fds);
    if (result == 0 && domain == AF_UNIX)
        created(fds, 2, LW_CH_SOCKETPAIR);
    return result;
}

LW_EXPORT int eventfd(unsigned int value, int flags)
{
    int fd = real_eventfd(value, flags);
    if (fd >= 0)
        created(&fd, 1, LW_CH_EVENTFD);
    return fd;
}

static mqd_t (*real_mq_open)(const char *, int, ...);

/* mode and attributes are passed on only when O_CREAT says they exist, as
 * glibc's own mq_open reads them. */
LW_EXPORT mqd_t mq_open(const char *name, int oflag, ...)
{
    if (LW_UNLIKELY(!real_mq_open))
        lw_resolve((void **)&real_mq_open, "mq_open", NULL);
    mqd_t q;
    if (oflag & O_CREAT) {
        va_list ap;
        va_start(ap, oflag);
        mode_t mode = va_arg(ap, mode_t);
        struct mq_attr *attr = va_arg(ap, struct mq_attr *);
        va_end(ap);
        q = real_mq_open(name, oflag, mode, attr);
    } else {
        q = real_mq_open(name, oflag);
    }
    if (q >= 0) {
        int fd = (int)q;
        created(&fd, 1, LW_CH_MQ);
    }
    return q;
}

/* FIFOs: their creator and stack are recorded here; their fds, opened by
 * path, join the record when first used. */
DECLARE_REAL(int, mkfifo, (const char *path, mode_t mode), (path, mode), NULL)
DECLARE_REAL(int, mkfifoat, (int dir, const char *path, mode_t mode), (dir, path, mode), NULL)
DECLARE_REAL(int, mknod, (const char *path, mode_t mode, dev_t dev), (path, mode, dev), NULL)
DECLARE_REAL(int, mknodat, (int dir, const char *path, mode_t mode, dev_t dev), (dir, path, mode, dev), NULL)

static void fifo_made(int dir, const char *path)
{
    struct stat st;
    if (lw_hooks_bypassed() || lw_raw_syscall6(SYS_newfstatat, dir, (long)path, (long)&st, AT_SYMLINK_NOFOLLOW, 0, 0) != 0 ||
        !S_ISFIFO(st.st_mode))
        return;
    lw_bypass_enter();
    lw_fifo_created(st.st_dev, st.st_ino);
    lw_bypass_leave();
}

/* One wrapper per FIFO-making call: is_fifo says whether this call made one. */
#define FIFO_MAKER(name, params, args, dir, path, is_fifo) \
    LW_EXPORT int name params                               \
    {                                                       \
        int result = real_##name args;                      \
        if (result == 0 && (is_fifo)) {                     \
            int saved = errno;                              \
            fifo_made((dir), (path));                       \
            errno = saved;                                  \
        }                                                   \
        return result;                                      \
    }

FIFO_MAKER(mkfifo, (const char *path, mode_t mode), (path, mode), AT_FDCWD, path, 1)
FIFO_MAKER(mkfifoat, (int dir, const char *path, mode_t mode), (dir, path, mode), dir, path, 1)
FIFO_MAKER(mknod, (const char *path, mode_t mode, dev_t dev), (path, mode, dev), AT_FDCWD, path, S_ISFIFO(mode))
FIFO_MAKER(mknodat, (int dir, const char *path, mode_t mode, dev_t dev), (dir, path, mode, dev), dir, path,
           S_ISFIFO(mode))

/* ---- descriptors copied, closed, changed ---- */

DECLARE_REAL(int, dup, (int fd), (fd), NULL)
DECLARE_REAL(int, dup2, (int from, int to), (from, to), NULL)
DECLARE_REAL(int, dup3, (int from, int to, int flags), (from, to, flags), NULL)
DECLARE_REAL(int, close, (int fd), (fd), NULL)
DECLARE_REAL(int, close_range, (unsigned int first, unsigned int last, int flags), (first, last, flags), NULL)
DECLARE_REAL(int, fclose, (FILE *f), (f), NULL)
DECLARE_REAL(FILE *, fdopen, (int fd, const char *mode), (fd, mode), NULL)

LW_EXPORT int dup(int fd)
{
    int result = real_dup(fd);
    if (result >= 0)
        lw_fd_copy(fd, result);
    return result;
}

LW_EXPORT int dup2(int from, int to)
{
    int result = real_dup2(from, to);
    if (result >= 0 && from != to)
        lw_fd_copy(from, to);
    return result;
}

LW_EXPORT int dup3(int from, int to, int flags)
{
    int result = real_dup3(from, to, flags);
    if (result >= 0)
        lw_fd_copy(from, to);
    return result;
}

/* Forgotten before the real close: afterwards another thread may already
 * have been given the same number for something new. */
LW_EXPORT int close(int fd)
{
    lw_fd_forget(fd);
    return real_close(fd);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

LW_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
        lw_fd_forget_range(first, last);
    return real_close_range(first, last, flags);
}

static void (*real_closefrom)(int);

LW_EXPORT void closefrom(int low)
{
    if (LW_UNLIKELY(!real_closefrom))
        lw_resolve((void **)&real_closefrom, "closefrom", NULL);
    if (low >= 0)
        lw_fd_forget_range((unsigned)low, LW_FDMAP_SIZE - 1);
    real_closefrom(low);
}

/* glibc closes a FILE's descriptor internally, out of our sight. */
LW_EXPORT int fclose(FILE *f)
{
    int fd = f ? fileno_unlocked(f) : -1;
    if (fd >= 0)
        lw_fd_forget(fd);
    return real_fclose(f);
}

/* Reads and writes through the FILE happen inside glibc, unseen: the
 * channel's users are no longer all known. */
LW_EXPORT FILE *fdopen(int fd, const char *mode)
{
    FILE *f = real_fdopen(fd, mode);
    if (f)
        lw_fd_mark(fd, LW_CH_STDIO);
    return f;
}

static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);

static void after_fcntl(int fd, int cmd, int result)
{
    if (result < 0)
        return;
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        lw_fd_copy(fd, result);
    else if (cmd == F_SETFL)
        lw_fd_flags_changed(fd);
    else if (cmd == F_SETPIPE_SZ)
        lw_fd_pipe_uncounted(fd);   /* its slots are not what we counted against */
}

/* The third argument, whatever it is, travels in one register: pass it on
 * as a pointer-sized value, as glibc's own wrapper reads it. */
static int fcntl_through(int (**real)(int, int, ...), const char *name, int fd, int cmd, void *arg)
{
    if (LW_UNLIKELY(!*real))
        lw_resolve((void **)real, name, NULL);
    int result = (*real)(fd, cmd, arg);
    after_fcntl(fd, cmd, result);
    return result;
}

#define FCNTL_HOOK(name)                                      \
    LW_EXPORT int name(int fd, int cmd, ...)                  \
    {                                                         \
        va_list ap;                                           \
        va_start(ap, cmd);                                    \
        void *arg = va_arg(ap, void *);                       \
        va_end(ap);                                           \
        return fcntl_through(&real_##name, #name, fd, cmd, arg); \
    }

FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

static int (*real_ioctl)(int, unsigned long, ...);

LW_EXPORT int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (LW_UNLIKELY(!real_ioctl))
        lw_resolve((void **)&real_ioctl, "ioctl", NULL);
    int result = real_ioctl(fd, request, arg);
    if (request == FIONBIO && result == 0)
        lw_fd_flags_changed(fd);
    return result;
}

/* ---- other processes made: any fd of ours may now be held by one ----
 * (fork runs the atfork handlers: init.c.) The pipes a single-threaded
 * program counts (channels.h) are counted no more. */

DECLARE_REAL(int, posix_spawn, (pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),
             (pid, path, actions, attr, argv, envp), NULL)
DECLARE_REAL(int, posix_spawnp, (pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),
             (pid, file, actions, attr, argv, envp), NULL)
DECLARE_REAL(int, system, (const char *command), (command), NULL)
DECLARE_REAL(FILE *, popen, (const char *command, const char *mode), (command, mode), NULL)
DECLARE_REAL(pid_t, _Fork, (void), (), NULL)

LW_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    lw_channels_shared();
    return real_posix_spawn(pid, path, actions, attr, argv, envp);
}

LW_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    lw_channels_shared();
    return real_posix_spawnp(pid, file, actions, attr, argv, envp);
}

LW_EXPORT int system(const char *command)
{
    lw_channels_shared();
    return real_system(command);
}

LW_EXPORT FILE *popen(const char *command, const char *mode)
{
    lw_channels_shared();
    return real_popen(command, mode);
}

LW_EXPORT pid_t _Fork(void)
{
    lw_channels_shared();
    return real__Fork();
}

static int (*real_clone)(int (*)(void *), void *, int, void *, ...);

/* The three optional arguments are passed on whatever the caller passed, as
 * glibc's own clone reads them (so the unwritten slots are not ASan's). */
LW_EXPORT __attribute__((no_sanitize("address"))) int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    void *parent_tid = va_arg(ap, void *), *tls = va_arg(ap, void *), *child_tid = va_arg(ap, void *);
    va_end(ap);
    if (LW_UNLIKELY(!real_clone))
        lw_resolve((void **)&real_clone, "clone", NULL);
    lw_channels_shared();
    return real_clone(fn, stack, flags, arg, parent_tid, tls, child_tid);
}

/* vfork's child returns into its caller's frame on the parent's stack: a
 * wrapper with a frame of its own would be popped under the parent. So the
 * hook is a jump: note the sharing (in a function that returns the real
 * vfork), then jump to it with the caller's return address in place. */
static pid_t (*real_vfork)(void);

__attribute__((used)) void *lw_vfork_prepare(void)
{
    if (LW_UNLIKELY(!real_vfork))
        lw_resolve((void **)&real_vfork, "vfork", NULL);
    lw_channels_shared();
    return (void *)real_vfork;
}

LW_EXPORT __attribute__((naked)) pid_t vfork(void)
{
    __asm__("endbr64\n\t"
            "sub $8, %rsp\n\t"
            "call lw_vfork_prepare\n\t"
            "add $8, %rsp\n\t"
            "jmp *%rax");
}

/* Bytes moved through a pipe where no hook counts them. */
DECLARE_REAL(ssize_t, splice, (int in, loff_t *in_off, int out, loff_t *out_off, size_t len, unsigned int flags),
             (in, in_off, out, out_off, len, flags), NULL)
DECLARE_REAL(ssize_t, tee, (int in, int out, size_t len, unsigned int flags), (in, out, len, flags), NULL)
DECLARE_REAL(ssize_t, vmsplice, (int fd, const struct iovec *iov, size_t n, unsigned int flags), (fd, iov, n, flags),
             NULL)
DECLARE_REAL(ssize_t, sendfile, (int out, int in, off_t *off, size_t count), (out, in, off, count), NULL)
DECLARE_REAL(ssize_t, sendfile64, (int out, int in, off64_t *off, size_t count), (out, in, off, count), NULL)

static void uncounted(int a, int b)
{
    lw_fd_pipe_uncounted(a);
    lw_fd_pipe_uncounted(b);
}

LW_EXPORT ssize_t splice(int in, loff_t *in_off, int out, loff_t *out_off, size_t len, unsigned int flags)
{
    uncounted(in, out);
    return real_splice(in, in_off, out, out_off, len, flags);
}

LW_EXPORT ssize_t tee(int in, int out, size_t len, unsigned int flags)
{
    uncounted(in, out);
    return real_tee(in, out, len, flags);
}

LW_EXPORT ssize_t vmsplice(int fd, const struct iovec *iov, size_t n, unsigned int flags)
{
    uncounted(fd, fd);
    return real_vmsplice(fd, iov, n, flags);
}

LW_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    uncounted(out, in);
    return real_sendfile(out, in, off, count);
}

LW_EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t count)
{
    uncounted(out, in);
    return real_sendfile64(out, in, off, count);
}

/* A receive low-water mark makes a blocking read wait for more than a
 * non-blocking one returns: classify the socket again. */
DECLARE_REAL(int, setsockopt, (int fd, int level, int name, const void *value, socklen_t len),
             (fd, level, name, value, len), NULL)

LW_EXPORT int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    int result = real_setsockopt(fd, level, name, value, len);
    if (result == 0 && level == SOL_SOCKET && name == SO_RCVLOWAT)
        lw_fd_flags_changed(fd);
    return result;
}

/* ---- the binding list ---- */

#define BIND(name) { #name, NULL, (void **)&real_##name }
const struct lw_binding lw_fd_bindings[] = {
#define FDWAIT(ret, name, params, args, version, kind, fd, use, nonblocking, ready, tryable, attempt, deadline, cancel) \
    { #name, version, (void **)&real_##name },
#define XWAIT(ret, name, params, args, version, kind, may_park, id, rec_flags, direction, deadline, cancel) \
    { #name, version, (void **)&real_##name },
#include "fdhooks.def"
#undef FDWAIT
#undef XWAIT
    BIND(poll), BIND(__poll_chk), BIND(ppoll), BIND(__ppoll_chk), BIND(select), BIND(pselect),
    BIND(epoll_wait), BIND(epoll_pwait), BIND(epoll_pwait2), BIND(epoll_ctl), BIND(sendmsg),
    BIND(pipe), BIND(pipe2), BIND(socketpair), BIND(eventfd), BIND(mq_open),
    BIND(mkfifo), BIND(mkfifoat), BIND(mknod), BIND(mknodat),
    BIND(dup), BIND(dup2), BIND(dup3), BIND(close), BIND(close_range), BIND(closefrom),
    BIND(fclose), BIND(fdopen), BIND(fcntl), BIND(fcntl64), BIND(ioctl), BIND(setsockopt),
    BIND(posix_spawn), BIND(posix_spawnp), BIND(system), BIND(popen), BIND(_Fork), BIND(clone), BIND(vfork),
    BIND(splice), BIND(tee), BIND(vmsplice), BIND(sendfile), BIND(sendfile64),
};
const size_t lw_fd_binding_count = sizeof lw_fd_bindings / sizeof lw_fd_bindings[0];
