/*
 * server.c — the preload's UNIX socket: one thread of ours that answers
 * one-line requests with versioned JSON (docs/protocol.md).
 *
 * Safety first: the thread blocks every signal (no signal of the application
 * is ever delivered to it), handles one connection at a time, and bounds
 * every read and write by a deadline, so nothing a client sends can crash,
 * block or slow the host beyond a bounded cost. Peers are checked with
 * SO_PEERCRED: same uid or root. The socket lives in a private directory
 * (0700, owned by us, never a symlink), is bound under a temporary name and
 * renamed into place once it listens, and is unlinked at exit.
 *
 * Building a reply (snapshot, analysis, dl_iterate_phdr, malloc) happens
 * under report_lock, which the fork handlers take: a fork never copies the
 * server in the middle of that work. The lock is never held while talking
 * to a client, or while writing anything (the log line is written after the
 * tick releases it, and never blocks: output.c).
 */
#include "channels.h"
#include "lw.h"
#include "jsonw.h"
#include "output.h"
#include "report.h"
#include "request.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_MAX LW_REQUEST_MAX
#define READ_DEADLINE_MS 2000
#define WRITE_DEADLINE_MS 5000
#define TICK_MS 1000
#define STALE_SCAN_LIMIT 1000    /* directory entries looked at for stale sockets */
#define ACCEPT_BACKOFF_MS 100    /* after accept fails for lack of fds or memory */
#define MAX_REOPENS 16

static lw_lock_t report_lock = LW_LOCK_INIT;   /* held while building a reply; fork waits for it */
static int listen_fd = -1;
static dev_t listen_dev;          /* identity of our socket, to notice if the */
static ino_t listen_ino;          /* application closed or reused its fd */
static pid_t listening_pid;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char dir_path[sizeof socket_path];
static char dir_problem[160];     /* why dir_path is unusable, "" if it is fine */
static bool started;
static bool exiting;              /* lw_server_at_exit ran in the listening process */

/* One line on stderr, never through stdio (whose buffers and locks belong
 * to the application), and never blocking (output.c). */
static void complain(const char *fmt, const char *arg)
{
    char line[768];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n > 0)
        lw_output_stderr(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* ---- the directory ---- */

/* "/a/b/" and "/a/b//" name "/a/b": lstat of the first would follow b if
 * it were a symlink, which the directory check exists to refuse. A last
 * component "." or ".." would be followed the same way: false. */
static bool drop_trailing_slashes(char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    const char *last = strrchr(dir, '/') + 1;
    return strcmp(last, ".") != 0 && strcmp(last, "..") != 0;
}

/* From the environment, in the constructor (the program is single-threaded
 * then, so nobody is calling setenv). The string is copied; a problem is
 * remembered and reported only if the server is ever started. */
static void choose_directory(void)
{
    const char *lwdir = getenv("LEAKWATCH_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    dir_problem[0] = 0;
    if (lwdir && *lwdir) {
        if (lwdir[0] != '/') {
            snprintf(dir_problem, sizeof dir_problem, "LEAKWATCH_DIR must be an absolute path");
            return;
        }
        n = snprintf(dir_path, sizeof dir_path, "%s", lwdir);
        if (n > 0 && (size_t)n < sizeof dir_path && !drop_trailing_slashes(dir_path)) {
            snprintf(dir_problem, sizeof dir_problem, "LEAKWATCH_DIR must not end in \".\" or \"..\"");
            return;
        }
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(dir_path, sizeof dir_path, "%s/leakwatch", xdg);
    } else {
        n = snprintf(dir_path, sizeof dir_path, "/tmp/leakwatch-%u", (unsigned)geteuid());
    }
    if (n <= 0 || (size_t)n >= sizeof dir_path)
        snprintf(dir_problem, sizeof dir_problem,
                 "the socket directory's path is too long for a UNIX socket (at most %zu bytes in all)",
                 sizeof dir_path - 1);
}

static bool directory_is_private(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        char why[600];
        snprintf(why, sizeof why, "%s cannot be created: %s", dir, strerror(errno));
        complain("leakwatch: not listening: %s\n", why);
        return false;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        complain("leakwatch: not listening: %s is not a directory (or is a symlink)\n", dir);
        return false;
    }
    if (st.st_uid != geteuid()) {
        complain("leakwatch: not listening: %s is owned by another user\n", dir);
        return false;
    }
    if (st.st_mode & 077) {
        complain("leakwatch: not listening: %s is accessible to other users (its mode must be 0700)\n", dir);
        return false;
    }
    return true;
}

/* The pid in "<prefix><digits><suffix>", or 0 if name is not exactly that. */
static pid_t pid_in_name(const char *name, const char *prefix, const char *suffix)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0)
        return 0;
    const char *p = name + plen;
    long pid = 0;
    if (*p < '1' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        pid = pid * 10 + (*p - '0');
        if (pid > 0x7fffffff)
            return 0;
    }
    return strcmp(p, suffix) == 0 ? (pid_t)pid : 0;
}

static bool process_is_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

/* Remove the sockets (and half-made temporary sockets) left behind by
 * processes that no longer exist; look at no more than STALE_SCAN_LIMIT
 * entries, so a huge directory costs a bounded time. */
static void remove_stale_sockets(const char *dir)
{
    DIR *d = opendir(dir);   /* glibc opens it O_CLOEXEC */
    if (!d)
        return;
    int dfd = dirfd(d), scanned = 0;
    struct dirent *de;
    while (scanned++ < STALE_SCAN_LIMIT && (de = readdir(d))) {
        pid_t pid = pid_in_name(de->d_name, "leakwatch.", ".sock");
        if (!pid)
            pid = pid_in_name(de->d_name, ".leakwatch.", ".tmp");
        if (pid && pid != getpid() && process_is_gone(pid))
            unlinkat(dfd, de->d_name, 0);
    }
    closedir(d);
}

static bool fill_address(struct sockaddr_un *addr, const char *dir, const char *fmt, pid_t pid)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    char name[64];
    snprintf(name, sizeof name, fmt, (int)pid);
    int n = snprintf(addr->sun_path, sizeof addr->sun_path, "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof addr->sun_path;
}

static void complain_about_socket(const char *path)
{
    char why[600];
    snprintf(why, sizeof why, "%s: %s", path, strerror(errno));
    complain("leakwatch: not listening: %s\n", why);
}

/* Bind under the temporary name, restrict, listen, then rename into place,
 * so a client never finds a socket that does not listen yet. */
static int bind_and_listen(const struct sockaddr_un *tmp, const struct sockaddr_un *final)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        complain_about_socket("socket()");
        return -1;
    }
    unlink(tmp->sun_path);   /* ours, from an earlier attempt (same pid) */
    if (bind(fd, (const struct sockaddr *)tmp, sizeof *tmp) != 0) {
        complain_about_socket(tmp->sun_path);
        close(fd);
        return -1;
    }
    if (chmod(tmp->sun_path, 0600) != 0 || listen(fd, 64) != 0 || rename(tmp->sun_path, final->sun_path) != 0) {
        complain_about_socket(final->sun_path);
        unlink(tmp->sun_path);
        close(fd);
        return -1;
    }
    return fd;
}

static bool open_listener(void)
{
    if (!dir_path[0] && !dir_problem[0])
        return false;   /* started before the constructor chose a directory */
    if (dir_problem[0]) {
        complain("leakwatch: not listening: %s\n", dir_problem);
        return false;
    }
    if (!directory_is_private(dir_path))
        return false;
    remove_stale_sockets(dir_path);
    pid_t pid = getpid();
    struct sockaddr_un tmp, final;
    if (!fill_address(&tmp, dir_path, ".leakwatch.%d.tmp", pid) ||
        !fill_address(&final, dir_path, "leakwatch.%d.sock", pid)) {
        complain("leakwatch: not listening: the socket path under %s is too long for a UNIX socket "
                 "(at most 107 bytes)\n", dir_path);
        return false;
    }
    int fd = bind_and_listen(&tmp, &final);
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        unlink(final.sun_path);
        close(fd);
        return false;
    }
    memcpy(socket_path, final.sun_path, sizeof socket_path);
    listen_dev = st.st_dev;
    listen_ino = st.st_ino;
    listening_pid = pid;
    listen_fd = fd;
    return true;
}

/* Daemons close every descriptor at start-up, and the number may then be
 * reused for one of the application's own files or sockets. Before touching
 * listen_fd, check that it is still our socket; never accept or close on an
 * fd that is not ours. */
static bool listener_still_ours(void)
{
    struct stat st;
    return listen_fd >= 0 && fstat(listen_fd, &st) == 0 && st.st_dev == listen_dev && st.st_ino == listen_ino;
}

/* Our fd was taken away: forget it (it is not ours to close), remove the
 * file nobody listens on any more, and listen anew, unless the process is
 * exiting or keeps doing it. */
static bool reopen_listener(int *reopens)
{
    listen_fd = -1;
    if (__atomic_load_n(&exiting, __ATOMIC_ACQUIRE))
        return false;
    if (socket_path[0])
        unlink(socket_path);
    socket_path[0] = 0;
    if (++*reopens > MAX_REOPENS) {
        complain("leakwatch: %s\n", "stopped listening: the application keeps closing our socket");
        return false;
    }
    return open_listener();
}

/* ---- one connection ---- */

static uint64_t deadline_in_ms(int ms)
{
    return lw_now_ns() + (uint64_t)ms * 1000000u;
}

static int ms_until(uint64_t deadline)
{
    uint64_t now = lw_now_ns();
    return now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
}

/* Send everything, or give up at the deadline: a client that stops reading
 * is dropped. MSG_NOSIGNAL: a client that hung up costs EPIPE, not SIGPIPE. */
static void send_all(int fd, const char *buf, size_t len)
{
    uint64_t deadline = deadline_in_ms(WRITE_DEADLINE_MS);
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return;   /* the client went away */
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int left = ms_until(deadline);
        if (left == 0 || poll(&p, 1, left) <= 0)
            return;
    }
}

static void send_error(int fd, const char *message)
{
    struct jsonw w;
    jsonw_init(&w);
    lw_report_error(&w, message);
    if (!w.failed)
        send_all(fd, w.buf, w.len);
    jsonw_free(&w);
}

static void send_reply(int fd, struct jsonw *w)
{
    if (w->failed)
        send_error(fd, "out of memory while building the reply");
    else
        send_all(fd, w->buf, w->len);
}

/* Read one request line into line (REQUEST_MAX + 1 bytes) within the read
 * deadline. Returns 1 with the line NUL-terminated (a trailing "\r"
 * dropped; *more set when bytes followed the newline), 0 when the client
 * hung up without saying anything, or -1 with *error set for a bad request.
 * What makes a line, and a bad one, is request.c's. */
static int read_request(int fd, char *line, bool *more, const char **error)
{
    size_t len = 0;
    uint64_t deadline = deadline_in_ms(READ_DEADLINE_MS);
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = ms_until(deadline);
        if (left == 0 || poll(&p, 1, left) <= 0) {
            *error = "request timed out: send one line within 2 seconds";
            return -1;
        }
        ssize_t n = recv(fd, line + len, REQUEST_MAX - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            *error = "bad request: the connection ended before a newline";
            return len > 0 ? -1 : 0;
        }
        len += (size_t)n;
        switch (lw_request_examine(line, len, more, error)) {
        case LW_REQUEST_LINE:
            return 1;
        case LW_REQUEST_BAD:
            return -1;
        case LW_REQUEST_INCOMPLETE:
            break;
        }
    }
}

/* Closing a socket with unread input resets it, and the peer may lose our
 * reply; read what it sent (a little, briefly) before closing. */
static void drain_briefly(int fd)
{
    char sink[REQUEST_MAX];
    shutdown(fd, SHUT_WR);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 100) > 0)
        for (int i = 0; i < 64 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
            ;   /* at most 16 KiB: a client that streams for ever is simply closed */
}

static void refuse_peer(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    char msg[128];
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        snprintf(msg, sizeof msg, "permission denied: the peer's credentials are unknown");
    else
        snprintf(msg, sizeof msg, "permission denied: uid %u may not query process %d", (unsigned)cred.uid,
                 (int)getpid());
    send_error(fd, msg);
    drain_briefly(fd);
}

static bool peer_is_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return false;
    return cred.uid == 0 || cred.uid == geteuid();
}

/* A snapshot judged by every rule, under report_lock. NULL, or what failed. */
static const char *judge_now(struct lw_snapshot *snap, struct lw_analysis *analysis, bool want_paths)
{
    if (lw_snapshot_take(snap) != 0)
        return "out of memory while taking a snapshot";
    if (lw_analyze_with_reach(snap, analysis, want_paths) != 0) {
        lw_snapshot_free(snap);
        return "out of memory while analysing";
    }
    return NULL;
}

/* A person asks once: when the scan just found an object unreachable (or
 * an earlier one did) and the second scan that could confirm it is due
 * within CONFIRM_WAIT_MS, the answer waits for that scan rather than say
 * "waiting" about a proof a second away. The lock is not held meanwhile. */
#define CONFIRM_WAIT_MS 1200

static bool confirmation_is_near(void)
{
    uint64_t due = lw_reach_confirmation_due_ns(), now = lw_now_ns();
    return due && due - now <= (uint64_t)CONFIRM_WAIT_MS * 1000000u;
}

static void wait_for_confirmation(void)
{
    uint64_t due = lw_reach_confirmation_due_ns();
    int ms = ms_until(due);
    if (ms > 0)
        poll(NULL, 0, ms);
}

/* Snapshot, analysis and rendering under report_lock; the reply is sent
 * after the lock is released. */
static void answer_with_process_report(int fd, enum lw_report_kind kind)
{
    struct jsonw w;
    struct lw_snapshot snap;
    struct lw_analysis analysis;
    jsonw_init(&w);
    lw_lock(&report_lock);
    bool want_paths = kind == LW_REPORT_THREADS;   /* a thread dump explains what stays reachable */
    const char *failure = judge_now(&snap, &analysis, want_paths);
    if (!failure && confirmation_is_near()) {
        lw_analysis_free(&analysis);
        lw_snapshot_free(&snap);
        lw_unlock(&report_lock);
        wait_for_confirmation();
        lw_lock(&report_lock);
        failure = judge_now(&snap, &analysis, want_paths);
    }
    if (!failure) {
        lw_report_process(&w, &snap, &analysis, kind);
        lw_analysis_free(&analysis);
        lw_snapshot_free(&snap);
    }
    lw_unlock(&report_lock);
    if (failure)
        send_error(fd, failure);
    else
        send_reply(fd, &w);
    jsonw_free(&w);
}

static void answer_with(int fd, void (*render)(struct jsonw *))
{
    struct jsonw w;
    jsonw_init(&w);
    lw_lock(&report_lock);
    render(&w);
    lw_unlock(&report_lock);
    send_reply(fd, &w);
    jsonw_free(&w);
}

static void answer_request(int fd, const char *line)
{
    switch (lw_request_verb(line)) {
    case LW_VERB_THREADS:
        answer_with_process_report(fd, LW_REPORT_THREADS);
        break;
    case LW_VERB_STATUS:
        answer_with_process_report(fd, LW_REPORT_STATUS);
        break;
    case LW_VERB_PING:
        answer_with(fd, lw_report_ping);
        break;
    case LW_VERB_HOOKS:
        answer_with(fd, lw_report_hooks);
        break;
    case LW_VERB_UNKNOWN:
        send_error(fd, LW_REQUEST_UNKNOWN_VERB);
        break;
    }
}

/* The client closed its socket after sending (a half-close, shutdown of
 * its writing side only, still waits for the reply and is no hang-up). */
static bool peer_hung_up(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* One accepted connection, from the peer check to the reply (the caller
 * closes fd). Not static only so that tests/fuzz/fuzz_serve.c can feed it
 * one end of a socketpair; the server thread is its one caller in the
 * preload. */
void lw_server_serve_connection(int fd)
{
    if (!peer_is_allowed(fd)) {
        refuse_peer(fd);
        return;
    }
    char line[REQUEST_MAX + 1];
    const char *error = NULL;
    bool more = false;
    int got = read_request(fd, line, &more, &error);
    if (got == 0)
        return;
    if (got < 0) {
        send_error(fd, error);
        drain_briefly(fd);
        return;
    }
    if (peer_hung_up(fd))
        return;   /* nobody to read it: no snapshot, scan or report for nothing */
    answer_request(fd, line);
    if (more)
        drain_briefly(fd);   /* one request per connection: the rest is ignored */
}

/* ---- the thread ---- */

static void tick_registry_if_due(uint64_t *last_tick)
{
    uint64_t now = lw_now_ns();
    if (now - *last_tick < (uint64_t)TICK_MS * 1000000u)
        return;
    lw_lock(&report_lock);   /* a fork never lands mid-tick */
    lw_registry_tick();
    lw_monitor_tick();
    lw_reach_release_idle();
    lw_unlock(&report_lock);
    lw_monitor_flush_log();   /* written without the lock, never blocking */
    *last_tick = now;
}

/* accept4 failed: a connection the client dropped (try the next) or no fd
 * or memory to take it (the connection stays queued, so poll would wake at
 * once again: pause rather than spin). */
static void back_off_after_accept_failure(int err)
{
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
        poll(NULL, 0, ACCEPT_BACKOFF_MS);
}

static void *server_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "leakwatch", 0, 0, 0);
    /* Below the program's threads: reports and scans wait for idle CPU. */
    setpriority(PRIO_PROCESS, (id_t)lw_gettid(), 10);
    uint64_t last_tick = lw_now_ns();
    int reopens = 0;
    for (;;) {
        if (!listener_still_ours() && !reopen_listener(&reopens))
            return NULL;
        struct pollfd p = { .fd = listen_fd, .events = POLLIN };
        int ready = poll(&p, 1, TICK_MS);
        tick_registry_if_due(&last_tick);
        if (ready <= 0 || !(p.revents & POLLIN) || !listener_still_ours())
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            back_off_after_accept_failure(errno);
            continue;
        }
        lw_server_serve_connection(fd);
        close(fd);
    }
    return NULL;
}

void lw_server_start(void)
{
    if (started)
        return;
    started = true;
    if (!open_listener())
        return;
    int rc = lw_internal_thread_create(server_main, NULL);
    if (rc != 0) {
        complain("leakwatch: not listening: cannot start the server thread (%s)\n", strerror(rc));
        unlink(socket_path);
        socket_path[0] = 0;
        close(listen_fd);
        listen_fd = -1;
    }
}

void lw_server_fork_prepare(void) { lw_lock(&report_lock); }
void lw_server_fork_parent(void) { lw_unlock(&report_lock); }

/* For work that takes snapshots off the server thread (the exit report),
 * only around the snapshot and its analysis. */
void lw_server_lock_reports(void) { lw_lock(&report_lock); }
void lw_server_unlock_reports(void) { lw_unlock(&report_lock); }

/* The server starts when the process is first worth asking about: when it
 * creates a thread or parks in a wait (lw_server_start_if_pending, called
 * from those hooks), not in the constructor. A thread of ours would make a
 * single-threaded program multithreaded, and the kernel then takes a
 * reference on the file table in every fd syscall (10-20% on a tight
 * non-blocking read loop, measured), and unshare(CLONE_NEWUSER) would fail.
 * Fork children wait likewise: most exec or _exit at once, and a thread plus
 * a socket file per fork would cost every fork. */
static bool pending;

/* Called by the constructor, while the program is still single-threaded. */
void lw_server_start_later(void)
{
    choose_directory();
    __atomic_store_n(&pending, true, __ATOMIC_RELEASE);
}

/* In the child, right after fork: the server thread does not exist here.
 * The listening socket is the parent's: close our copy (if it still is
 * ours), never unlink it. The child listens under its own pid, later. */
void lw_server_fork_child(void)
{
    if (listener_still_ours())
        close(listen_fd);
    listen_fd = -1;
    socket_path[0] = 0;
    listening_pid = 0;
    started = false;
    __atomic_store_n(&exiting, false, __ATOMIC_RELAXED);
    report_lock.word = 0;   /* taken by fork_prepare in the parent's forking thread */
    __atomic_store_n(&pending, true, __ATOMIC_RELEASE);   /* same directory as the parent */
}

bool lw_server_is_pending(void) { return __atomic_load_n(&pending, __ATOMIC_RELAXED); }

void lw_server_start_if_pending(void)
{
    if (LW_UNLIKELY(__atomic_load_n(&pending, __ATOMIC_ACQUIRE)) &&
        __atomic_exchange_n(&pending, false, __ATOMIC_ACQ_REL))
        lw_server_start();
}

/* At exit (destructor, or our _exit hook; async-signal-safe). Only the
 * process that created the socket removes it: a vfork or _Fork child shares
 * or inherits these variables but not the socket file, and must write
 * nothing here. The listening fd is left for the kernel to close: the
 * server thread may still be running, and closing the number under it could
 * hand it a descriptor the application opens next. */
void lw_server_at_exit(void)
{
    if (listening_pid == 0 || listening_pid != getpid())
        return;
    __atomic_store_n(&exiting, true, __ATOMIC_RELEASE);
    if (socket_path[0])
        unlink(socket_path);
}
