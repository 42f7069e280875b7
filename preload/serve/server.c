/*
 * server.c — the preload's UNIX socket: one thread of ours that answers
 * one-line requests with versioned JSON (docs/protocol.md).
 *
 * Safety first: the thread blocks every signal (no signal of the application
 * is ever delivered to it), serves its clients without ever blocking
 * (connections.c: many at once, each bounded by deadlines), so nothing a
 * client sends can crash, block or slow the host beyond a bounded cost.
 * Peers are checked with SO_PEERCRED: same uid or root. The socket lives in
 * a private directory (0700, owned by us, never a symlink), is bound under a
 * temporary name and renamed into place once it listens, and is unlinked at
 * exit.
 *
 * The thread keeps its descriptors in a table of its own (close_range's
 * CLOSE_RANGE_UNSHARE, at its start): the program's close, closefrom, dup2
 * and fork never reach our connections, our connections never take a
 * number the program may need, and we can never read, answer or close a
 * descriptor of the program's that was given the number of one of ours.
 * (Where the kernel cannot, every descriptor is checked before each use.)
 *
 * Building a reply (snapshot, analysis, dl_iterate_phdr, malloc) happens
 * under the report lock, which the fork handlers take: a fork never copies the
 * server in the middle of that work. The lock is never held while talking
 * to a client, while waiting, or while writing anything (the log line is
 * written after the tick releases it).
 */
#include "record/channels.h"
#include "base/util.h"
#include "base/lifecycle.h"
#include "record/internal.h"
#include "record/registry.h"
#include "serve/connections.h"
#include "serve/serve.h"
#include "serve/jsonw.h"
#include "serve/output.h"
#include "serve/reportlock.h"
#include "serve/report.h"
#include "serve/request.h"
#include "core/snapshot.h"

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
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define TICK_MS 1000
#define STALE_SCAN_LIMIT 1000    /* directory entries looked at for stale sockets */
#define ACCEPT_BACKOFF_MS 100    /* after accept fails for lack of fds or memory */
#define ACCEPT_BATCH 64          /* connections taken from the listener's queue per round */
#define MAX_REOPENS 16

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

/* The listener is not ours any more. In a table of our own the number is
 * still ours to close (a copy of whatever the program gave that number
 * before we took the table); in the program's it is not. */
static void forget_listener(void)
{
    if (lw_fds_are_private && listen_fd >= 0)
        lw_raw_syscall6(SYS_close, listen_fd, 0, 0, 0, 0, 0);
    listen_fd = -1;
}

/* Our fd was taken away: forget it, remove the file nobody listens on any
 * more, and listen anew, unless the process is exiting or keeps doing it. */
static bool reopen_listener(int *reopens)
{
    forget_listener();
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

/* ---- answers (connections.c sends them) ---- */

/* A snapshot judged by every rule, under the report lock. NULL, or what failed. */
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
 * "waiting" about a proof a second away. It waits as a connection of its
 * own (connections.c), holding no lock and no other client up. */
#define CONFIRM_WAIT_MS 1200

static bool confirmation_is_near(void)
{
    return lw_reach_confirmation_within(lw_now_ns(), (uint64_t)CONFIRM_WAIT_MS * 1000000u);
}

/* Snapshot, analysis and rendering under the report lock; the reply is sent
 * after the lock is released. */
static enum lw_answer answer_with_process_report(struct jsonw *w, enum lw_report_kind kind, bool waited,
                                                 uint64_t *due)
{
    struct lw_snapshot snap;
    struct lw_analysis analysis;
    lw_reports_lock();
    bool want_paths = kind == LW_REPORT_THREADS;   /* a thread dump explains what stays reachable */
    const char *failure = judge_now(&snap, &analysis, want_paths);
    if (!failure && !waited && confirmation_is_near()) {
        lw_analysis_free(&analysis);
        lw_snapshot_free(&snap);
        *due = lw_reach_confirmation_due_ns();
        lw_reports_unlock();
        return LW_ANSWER_LATER;
    }
    if (!failure) {
        lw_report_process(w, &snap, &analysis, kind);
        lw_analysis_free(&analysis);
        lw_snapshot_free(&snap);
    }
    lw_reports_unlock();
    if (failure)
        lw_report_error(w, failure);
    return LW_ANSWER_READY;
}

static void answer_with(struct jsonw *w, void (*render)(struct jsonw *))
{
    lw_reports_lock();
    render(w);
    lw_reports_unlock();
}

static enum lw_answer answer_request(const char *line, struct jsonw *w, bool waited, uint64_t *due)
{
    switch (lw_request_verb(line)) {
    case LW_VERB_THREADS:
        return answer_with_process_report(w, LW_REPORT_THREADS, waited, due);
    case LW_VERB_STATUS:
        return answer_with_process_report(w, LW_REPORT_STATUS, waited, due);
    case LW_VERB_PING:
        answer_with(w, lw_report_ping);
        break;
    case LW_VERB_HOOKS:
        answer_with(w, lw_report_hooks);
        break;
    case LW_VERB_UNKNOWN:
        lw_report_error(w, LW_REQUEST_UNKNOWN_VERB);
        break;
    }
    return LW_ANSWER_READY;
}

/* One accepted connection, from the peer check to the reply (the caller
 * closes fd). Not static only so that tests/fuzz/fuzz_serve.c can feed it
 * one end of a socketpair; the server thread serves its connections through
 * the same steps (connections.c). */
void lw_server_serve_connection(int fd)
{
    lw_conns_serve_one(fd, answer_request);
}

/* ---- the thread ---- */

static void tick_registry_if_due(uint64_t *last_tick)
{
    uint64_t now = lw_now_ns();
    if (now - *last_tick < (uint64_t)TICK_MS * 1000000u)
        return;
    lw_reports_lock();   /* a fork never lands mid-tick */
    lw_registry_tick();
    lw_monitor_tick();
    lw_reach_release_idle();
    lw_reports_unlock();
    lw_monitor_flush_log();   /* written without the lock, never blocking */
    *last_tick = now;
}

static int ms_until_tick(uint64_t last_tick)
{
    uint64_t due = last_tick + (uint64_t)TICK_MS * 1000000u, now = lw_now_ns();
    return due <= now ? 0 : (int)((due - now) / 1000000u) + 1;
}

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1u << 1)
#endif

/* A descriptor table of our own, holding a copy of the listener and nothing
 * else (the copy's range ends at the listener, so no descriptor of the
 * program's is held even for a moment past it, and those below it are
 * closed at once). Kernels before 5.9 cannot: false, and the program's
 * table is shared, every descriptor checked before each use. The
 * program's own copy of the listener stays where it was, as before. */
static bool take_a_descriptor_table_of_our_own(void)
{
    if (listen_fd < 0 ||
        lw_raw_syscall6(SYS_close_range, (long)listen_fd + 1, (long)~0u, CLOSE_RANGE_UNSHARE, 0, 0, 0) != 0)
        return false;
    if (listen_fd > 0)
        lw_raw_syscall6(SYS_close_range, 0, (long)listen_fd - 1, 0, 0, 0, 0);
    lw_fds_are_private = true;
    return true;
}

/* As many connections as our own table holds (RLIMIT_NOFILE applies to it
 * too), less a reserve for the snapshot's own files. */
#define FDS_KEPT_FOR_SNAPSHOTS 64

static size_t connections_our_table_holds(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return LW_CONNS_MAX;
    size_t room = r.rlim_cur > 2 * FDS_KEPT_FOR_SNAPSHOTS ? (size_t)r.rlim_cur - FDS_KEPT_FOR_SNAPSHOTS
                                                         : (size_t)r.rlim_cur / 2;
    return room < LW_CONNS_MAX ? room : LW_CONNS_MAX;
}

/* The connections waiting in the listener's queue, a batch a round, while
 * there is room (a silent connection is shed for a new one). Out of
 * descriptors: a silent connection is shed for it too, or accepting pauses
 * for a moment (the connection stays queued; poll would wake at once
 * again). */
static void accept_waiting(uint64_t *paused_until)
{
    for (int i = 0; i < ACCEPT_BATCH && lw_conns_can_take_more(); i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            lw_conns_add(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;   /* a connection the client dropped: the next */
        if (errno == EMFILE && lw_conns_shed_oldest_silent())
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            *paused_until = lw_now_ns() + (uint64_t)ACCEPT_BACKOFF_MS * 1000000u;
        return;   /* (EAGAIN: the queue is empty) */
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "leakwatch", 0, 0, 0);
    /* Below the program's threads: reports and scans wait for idle CPU. */
    setpriority(PRIO_PROCESS, (id_t)lw_gettid(), 10);
    lw_conns_setup(take_a_descriptor_table_of_our_own() ? connections_our_table_holds() : LW_CONNS_SHARED,
                   answer_request);
    uint64_t last_tick = lw_now_ns(), accept_paused_until = 0;
    int reopens = 0;
    static struct pollfd fds[1 + LW_CONNS_MAX];
    for (;;) {
        if (!listener_still_ours() && !reopen_listener(&reopens))
            return NULL;
        bool accepting = lw_now_ns() >= accept_paused_until && lw_conns_can_take_more();
        fds[0] = (struct pollfd){ .fd = accepting ? listen_fd : -1, .events = POLLIN };
        size_t n = lw_conns_poll_set(fds + 1, LW_CONNS_MAX);
        int timeout = lw_conns_poll_timeout(ms_until_tick(last_tick));
        if (!accepting && accept_paused_until && timeout > ACCEPT_BACKOFF_MS)
            timeout = ACCEPT_BACKOFF_MS;
        poll(fds, 1 + n, timeout);
        tick_registry_if_due(&last_tick);
        lw_conns_step(fds + 1, n);
        if (accepting && (fds[0].revents & POLLIN) && listener_still_ours())
            accept_waiting(&accept_paused_until);
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

void lw_server_fork_prepare(void) { lw_reports_lock(); }
void lw_server_fork_parent(void) { lw_reports_unlock(); }


/* The server starts when the process is first worth asking about: when it
 * creates a thread or parks in a wait (the hooks ring the lifecycle, whose
 * start init.c points at lw_server_start), not in the constructor. A thread of ours would make a
 * single-threaded program multithreaded, and the kernel then takes a
 * reference on the file table in every fd syscall (10-20% on a tight
 * non-blocking read loop, measured), and unshare(CLONE_NEWUSER) would fail.
 * Fork children wait likewise: most exec or _exit at once, and a thread plus
 * a socket file per fork would cost every fork. */
/* Called by the constructor, while the program is still single-threaded. */
void lw_server_start_later(void)
{
    choose_directory();
    lw_lifecycle_arm();
}

/* In the child, right after fork: the server thread does not exist here.
 * The listening socket is the parent's: close our copy (if it still is
 * ours), never unlink it. The child listens under its own pid, later. */
void lw_server_fork_child(void)
{
    if (listener_still_ours())
        close(listen_fd);
    listen_fd = -1;
    lw_conns_fork_child();
    socket_path[0] = 0;
    listening_pid = 0;
    started = false;
    __atomic_store_n(&exiting, false, __ATOMIC_RELAXED);
    lw_reports_lock_reset();   /* taken by fork_prepare in the parent's forking thread */
    lw_lifecycle_arm();   /* same directory as the parent */
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
