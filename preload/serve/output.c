/*
 * output.c — the preload's own output, written so that it never blocks
 * (see output.h). A log line that waits for a reader which never comes
 * would hold whatever its writer holds: the report lock, which the
 * program's fork() and exit need too. So every file is opened with
 * O_NONBLOCK and looked at before anything is written (a regular file
 * unless a FIFO was asked for), every wait for room has a deadline, and
 * whatever does not fit by then is dropped.
 *
 * The program's stderr is reached as the program's fd 2 is now: copied into
 * this thread's table (dup, or pidfd_getfd from the server thread, whose
 * table is its own: server.c), then a regular file is written through that
 * copy (it shares the program's file offset), a socket with MSG_DONTWAIT,
 * and anything else (a pipe, a terminal) through a descriptor of our own
 * opened anew on it with O_NONBLOCK, so that the program's own file status
 * flags are never changed. Everything goes through raw syscalls: no hook
 * records it, and a write to a pipe nobody reads cannot deliver SIGPIPE.
 * A descriptor of ours is checked to still be what we opened (device and
 * inode) before each write, truncation and close: on the program's
 * threads (the exit report), or where the server shares the program's
 * table, a program that closes every fd may give our number to a file of
 * its own in the meantime, and that file is not ours to touch.
 */
#include "serve/output.h"
#include "base/util.h"
#include "record/channels.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define KERNEL_SIGSET_SIZE 8

static long raw(long nr, long a1, long a2, long a3, long a4)
{
    return lw_raw_syscall6(nr, a1, a2, a3, a4, 0, 0);
}

/* A descriptor of ours, and what it was when we opened it. */
struct ours {
    long fd;
    struct stat st;
    bool known;   /* st was read */
};

static struct ours take(long fd)
{
    struct ours o = { .fd = fd };
    o.known = fd >= 0 && raw(SYS_fstat, fd, (long)&o.st, 0, 0) == 0;
    return o;
}

static bool still_ours(const struct ours *o)
{
    struct stat now;
    return o->known && raw(SYS_fstat, o->fd, (long)&now, 0, 0) == 0 && now.st_dev == o->st.st_dev &&
           now.st_ino == o->st.st_ino;
}

/* Closed, if it is still ours (else the number is the program's now). */
static void release(const struct ours *o)
{
    if (o->fd >= 0 && (!o->known || still_ours(o)))
        raw(SYS_close, o->fd, 0, 0, 0);
}

static uint64_t deadline_after_ms(int ms)
{
    return lw_now_ns() + (uint64_t)ms * 1000000u;
}

/* Wait until fd takes more bytes; false at the deadline or on an error. */
static bool room_before(long fd, uint64_t deadline)
{
    uint64_t now = lw_now_ns();
    if (now >= deadline)
        return false;
    struct pollfd p = { .fd = (int)fd, .events = POLLOUT };
    long ready = raw(SYS_poll, (long)&p, 1, (long)((deadline - now) / 1000000u) + 1, 0);
    return ready == 1 && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* write(2) that cannot raise SIGPIPE in the program: the signal is blocked
 * in this thread around the call, and one the call raised is taken back. */
static long write_without_sigpipe(long fd, const char *buf, size_t len)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    raw(SYS_rt_sigprocmask, SIG_BLOCK, (long)&pipe_only, (long)&old, KERNEL_SIGSET_SIZE);
    sigemptyset(&pending);
    raw(SYS_rt_sigpending, (long)&pending, KERNEL_SIGSET_SIZE, 0, 0);
    bool was_pending = sigismember(&pending, SIGPIPE);
    long n = raw(SYS_write, fd, (long)buf, (long)len, 0);
    if (n == -EPIPE && !was_pending) {
        struct timespec zero = { 0, 0 };
        raw(SYS_rt_sigtimedwait, (long)&pipe_only, 0, (long)&zero, KERNEL_SIGSET_SIZE);
    }
    raw(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, KERNEL_SIGSET_SIZE);
    return n;
}

/* All of buf, waiting for room until the deadline; false if some was
 * dropped. o is non-blocking (or a socket, written with MSG_DONTWAIT). */
static bool write_before(const struct ours *o, const char *buf, size_t len, uint64_t deadline)
{
    bool socket = S_ISSOCK(o->st.st_mode);
    while (len > 0 && still_ours(o)) {
        long n = socket ? raw(SYS_sendto, o->fd, (long)buf, (long)len, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write_without_sigpipe(o->fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n != -EINTR && (n != -EAGAIN || !room_before(o->fd, deadline))) {
            return false;
        }
    }
    return len == 0;
}

/* ---- the program's stderr ---- */

/* A descriptor in this thread's table for what the program's fd is now. */
static long copy_of_program_fd(int fd)
{
    if (!lw_fds_are_private)
        return raw(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0, 0);
    long pidfd = raw(SYS_pidfd_open, raw(SYS_getpid, 0, 0, 0, 0), 0, 0, 0);   /* (in our own table) */
    if (pidfd < 0)
        return -1;
    long copy = raw(SYS_pidfd_getfd, pidfd, fd, 0, 0);   /* close-on-exec, as the man page says */
    raw(SYS_close, pidfd, 0, 0, 0);
    return copy;
}

/* A pipe or terminal opened anew, non-blocking: writing through the
 * program's own open file would need its O_NONBLOCK flag changed. */
static struct ours reopen_nonblocking(const struct ours *copy)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/thread-self/fd/%ld", copy->fd);
    struct ours o = take(still_ours(copy) ? raw(SYS_openat, AT_FDCWD, (long)path,
                                                O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0) : -1);
    if (o.known && (o.st.st_dev != copy->st.st_dev || o.st.st_ino != copy->st.st_ino))
        o.known = false;   /* (the number was reused under us: not written) */
    return o;
}

void lw_output_stderr(const char *buf, size_t len)
{
    int saved = errno;
    uint64_t deadline = deadline_after_ms(LW_OUTPUT_DEADLINE_MS);
    struct ours copy = take(copy_of_program_fd(STDERR_FILENO));
    if (copy.known && (S_ISREG(copy.st.st_mode) || S_ISSOCK(copy.st.st_mode))) {
        write_before(&copy, buf, len, deadline);
    } else if (copy.known) {
        struct ours own = reopen_nonblocking(&copy);
        write_before(&own, buf, len, deadline);
        release(&own);
    }
    release(&copy);
    errno = saved;
}

/* ---- the system log ---- */

void lw_output_syslog(const char *message)
{
    int saved = errno;
    struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
    char line[1024];
    int n = snprintf(line, sizeof line, "<%d>%s: %s", LOG_DAEMON | LOG_INFO, program_invocation_short_name, message);
    struct ours o = take(raw(SYS_socket, AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0));
    if (still_ours(&o) && n > 0)
        lw_raw_syscall6(SYS_sendto, o.fd, (long)line, (size_t)n < sizeof line ? n : (long)sizeof line - 1,
                        MSG_DONTWAIT | MSG_NOSIGNAL, (long)&addr, sizeof addr);
    release(&o);
    errno = saved;
}

/* ---- files ---- */

/* The path names nothing yet, or a regular file (not through a symlink):
 * anything else is never opened, so that no device is touched by mistake. */
static bool may_be_regular(const char *path)
{
    struct stat st;
    long rc = raw(SYS_newfstatat, AT_FDCWD, (long)path, (long)&st, AT_SYMLINK_NOFOLLOW);
    return rc == -ENOENT || (rc == 0 && S_ISREG(st.st_mode));
}

static bool is_writable_stream(mode_t mode) { return S_ISFIFO(mode) || S_ISCHR(mode); }

enum lw_append lw_output_append(const char *path, bool fifo, const char *buf, size_t len)
{
    if (!fifo && !may_be_regular(path))
        return LW_APPEND_REFUSED;
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | (fifo ? 0 : O_CREAT);
    long fd = raw(SYS_openat, AT_FDCWD, (long)path, flags, 0600);
    if (fd == -ENXIO)   /* a FIFO nobody reads */
        return fifo ? LW_APPEND_DROPPED : LW_APPEND_REFUSED;
    if (fd < 0) {
        errno = (int)-fd;
        return LW_APPEND_FAILED;
    }
    struct ours o = take(fd);
    enum lw_append result = LW_APPEND_REFUSED;
    if (o.known && (fifo ? is_writable_stream(o.st.st_mode) : S_ISREG(o.st.st_mode)))
        result = write_before(&o, buf, len, deadline_after_ms(LW_OUTPUT_DEADLINE_MS)) ? LW_APPEND_WRITTEN
                                                                                      : LW_APPEND_DROPPED;
    release(&o);
    return result;
}

int lw_output_create(const char *path, const char *buf, size_t len)
{
    if (!may_be_regular(path)) {
        errno = EINVAL;
        return -1;
    }
    struct ours o = take(raw(SYS_openat, AT_FDCWD, (long)path,
                             O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600));
    long err = o.fd < 0 ? o.fd : !o.known ? -EIO : !S_ISREG(o.st.st_mode) ? -EINVAL : 0;
    if (!err)
        err = still_ours(&o) ? raw(SYS_ftruncate, o.fd, 0, 0, 0) : -EBADF;
    if (!err && !write_before(&o, buf, len, UINT64_MAX))
        err = -ENOSPC;
    if (err && err != -EINVAL && o.fd >= 0)
        raw(SYS_unlinkat, AT_FDCWD, (long)path, 0, 0);   /* half-written: ours, gone */
    release(&o);
    if (err) {
        errno = (int)-err;
        return -1;
    }
    return 0;
}
