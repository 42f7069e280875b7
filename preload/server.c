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
 */
#include "lw.h"
#include "jsonw.h"
#include "registry.h"
#include "report.h"
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST_MAX 256
#define READ_DEADLINE_MS 2000
#define WRITE_DEADLINE_MS 5000
#define TICK_MS 1000
#define STALE_SCAN_LIMIT 1000

static lw_lock_t report_lock = LW_LOCK_INIT;   /* held while building a reply; fork waits for it */
static int listen_fd = -1;
static dev_t listen_dev;          /* identity of our socket, to notice if the */
static ino_t listen_ino;          /* application closed or reused its fd */
static pid_t listening_pid;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char dir_path[sizeof socket_path];
static bool started;

static void warn(const char *fmt, const char *arg)
{
    char line[512];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* ---- the directory ---- */

static bool choose_directory(char *out, size_t size)
{
    const char *dir = getenv("LEAKWATCH_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (dir && *dir)
        n = snprintf(out, size, "%s", dir);
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/leakwatch", xdg);
    else
        n = snprintf(out, size, "/tmp/leakwatch-%u", (unsigned)geteuid());
    if (n <= 0 || (size_t)n >= size) {
        warn("leakwatch: not listening: socket directory path is too long (%s)\n", dir ? dir : "");
        return false;
    }
    return true;
}

static bool directory_is_private(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        char why[600];
        snprintf(why, sizeof why, "%s: %s", dir, strerror(errno));
        warn("leakwatch: not listening: cannot create %s\n", why);
        return false;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        warn("leakwatch: not listening: %s is not a directory (or is a symlink)\n", dir);
        return false;
    }
    if (st.st_uid != geteuid()) {
        warn("leakwatch: not listening: %s is owned by another user\n", dir);
        return false;
    }
    if (st.st_mode & 077) {
        warn("leakwatch: not listening: %s is accessible to other users (mode must be 0700)\n", dir);
        return false;
    }
    return true;
}

/* Remove sockets left behind by processes that no longer exist. */
static void remove_stale_sockets(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    int dfd = dirfd(d), scanned = 0;
    struct dirent *de;
    while ((de = readdir(d)) && scanned++ < STALE_SCAN_LIMIT) {
        int pid = 0, used = 0;
        if (sscanf(de->d_name, "leakwatch.%d.sock%n", &pid, &used) != 1 || de->d_name[used] || pid <= 0)
            continue;
        if (kill(pid, 0) == -1 && errno == ESRCH)
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

static bool dir_chosen;   /* dir_path was read from the environment at start-up */

static bool open_listener(void)
{
    if (!dir_chosen || !directory_is_private(dir_path))
        return false;
    remove_stale_sockets(dir_path);
    pid_t pid = getpid();
    struct sockaddr_un tmp, final;
    if (!fill_address(&tmp, dir_path, ".leakwatch.%d.tmp", pid) ||
        !fill_address(&final, dir_path, "leakwatch.%d.sock", pid)) {
        warn("leakwatch: not listening: socket path under %s is too long for a UNIX socket\n", dir_path);
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    unlink(tmp.sun_path);
    if (bind(fd, (struct sockaddr *)&tmp, sizeof tmp) != 0 || chmod(tmp.sun_path, 0600) != 0 ||
        listen(fd, 64) != 0 || rename(tmp.sun_path, final.sun_path) != 0) {
        char why[600];
        snprintf(why, sizeof why, "%s: %s", final.sun_path, strerror(errno));
        warn("leakwatch: not listening: %s\n", why);
        unlink(tmp.sun_path);
        close(fd);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        unlink(final.sun_path);
        close(fd);
        return false;
    }
    memcpy(socket_path, final.sun_path, sizeof socket_path);
    listen_fd = fd;
    listen_dev = st.st_dev;
    listen_ino = st.st_ino;
    listening_pid = pid;
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

#define MAX_REOPENS 16

/* Our fd was taken away: forget it (it is not ours to close) and listen anew. */
static bool reopen_listener(int *reopens)
{
    listen_fd = -1;
    if (socket_path[0])
        unlink(socket_path);
    socket_path[0] = 0;
    if (++*reopens > MAX_REOPENS) {
        warn("leakwatch: %s\n", "stopped listening: the application keeps closing our socket");
        return false;
    }
    return open_listener();
}

/* ---- one connection ---- */

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = lw_now_ns();
    return now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
}

static void send_all(int fd, const char *buf, size_t len)
{
    uint64_t deadline = lw_now_ns() + (uint64_t)WRITE_DEADLINE_MS * 1000000u;
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
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&p, 1, left) <= 0)
            return;   /* a client that stops reading is dropped */
    }
}

static void send_json(int fd, struct jsonw *w)
{
    if (w->failed) {
        struct jsonw small;
        jsonw_init(&small);
        lw_report_error(&small, "out of memory while building the reply");
        if (!small.failed)
            send_all(fd, small.buf, small.len);
        jsonw_free(&small);
        return;
    }
    send_all(fd, w->buf, w->len);
}

static void send_error(int fd, const char *message)
{
    struct jsonw w;
    jsonw_init(&w);
    lw_report_error(&w, message);
    send_json(fd, &w);
    jsonw_free(&w);
}

/* Read one line: 1 on success, 0 on a closed or silent client, -1 with an
 * error message for a bad request. */
static int read_request(int fd, char *line, const char **error)
{
    size_t len = 0;
    uint64_t deadline = lw_now_ns() + (uint64_t)READ_DEADLINE_MS * 1000000u;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&p, 1, left) <= 0) {
            *error = "request timed out: send one line within 2 seconds";
            return -1;
        }
        ssize_t n = recv(fd, line + len, REQUEST_MAX - len, MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return 0;
        }
        len += (size_t)n;
        char *nl = memchr(line, '\n', len);
        if (nl) {
            if (nl > line && nl[-1] == '\r')
                nl--;
            for (char *c = line; c < nl; c++)   /* every byte, a NUL included */
                if (*c < 0x20 || *c > 0x7e) {
                    *error = "bad request: only printable ASCII is accepted";
                    return -1;
                }
            *nl = 0;
            return 1;
        }
        if (len >= REQUEST_MAX) {
            *error = "bad request: longer than 256 bytes";
            return -1;
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

static bool peer_allowed(int fd, uid_t *peer_uid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    *peer_uid = cred.uid;
    return cred.uid == 0 || cred.uid == geteuid();
}

static void answer_process(int fd, enum lw_report_kind kind)
{
    struct jsonw w;
    jsonw_init(&w);
    lw_lock(&report_lock);
    struct lw_snapshot snap;
    struct lw_analysis analysis;
    if (lw_snapshot_take(&snap) != 0) {
        lw_unlock(&report_lock);
        send_error(fd, "out of memory while taking a snapshot");
        return;
    }
    if (lw_analyze(&snap, &analysis) != 0) {
        lw_snapshot_free(&snap);
        lw_unlock(&report_lock);
        send_error(fd, "out of memory while analysing");
        return;
    }
    lw_report_process(&w, &snap, &analysis, kind);
    lw_analysis_free(&analysis);
    lw_snapshot_free(&snap);
    lw_unlock(&report_lock);
    send_json(fd, &w);
    jsonw_free(&w);
}

static void answer_small(int fd, void (*render)(struct jsonw *))
{
    struct jsonw w;
    jsonw_init(&w);
    lw_lock(&report_lock);
    render(&w);
    lw_unlock(&report_lock);
    send_json(fd, &w);
    jsonw_free(&w);
}

static void serve_connection(int fd)
{
    uid_t uid = 0;
    if (!peer_allowed(fd, &uid)) {
        char msg[128];
        snprintf(msg, sizeof msg, "permission denied: uid %u may not query process %d", (unsigned)uid, (int)getpid());
        send_error(fd, msg);
        drain_briefly(fd);
        return;
    }
    char line[REQUEST_MAX + 1];
    const char *error = NULL;
    int got = read_request(fd, line, &error);
    if (got == 0)
        return;
    if (got < 0) {
        send_error(fd, error);
        drain_briefly(fd);
    }
    else if (strcmp(line, "threads") == 0)
        answer_process(fd, LW_REPORT_THREADS);
    else if (strcmp(line, "status") == 0)
        answer_process(fd, LW_REPORT_STATUS);
    else if (strcmp(line, "ping") == 0)
        answer_small(fd, lw_report_ping);
    else if (strcmp(line, "hooks") == 0)
        answer_small(fd, lw_report_hooks);
    else
        send_error(fd, "unknown request; expected one of: ping, status, threads, hooks");
}

/* ---- the thread ---- */

static void *server_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "leakwatch", 0, 0, 0);
    uint64_t last_tick = lw_now_ns();
    int reopens = 0;
    for (;;) {
        if (!listener_still_ours() && !reopen_listener(&reopens))
            return NULL;
        struct pollfd p = { .fd = listen_fd, .events = POLLIN };
        int ready = poll(&p, 1, TICK_MS);
        uint64_t now = lw_now_ns();
        if (now - last_tick >= (uint64_t)TICK_MS * 1000000u) {
            lw_registry_tick();
            last_tick = now;
        }
        if (ready <= 0 || !(p.revents & POLLIN) || !listener_still_ours())
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        serve_connection(fd);
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
        warn("leakwatch: not listening: cannot start the server thread (%s)\n", strerror(rc));
        unlink(socket_path);
        close(listen_fd);
        listen_fd = -1;
    }
}

void lw_server_fork_prepare(void) { lw_lock(&report_lock); }
void lw_server_fork_parent(void) { lw_unlock(&report_lock); }

/* The server starts when the process is first worth asking about: when it
 * creates a thread or parks in a wait (lw_server_start_if_pending, called
 * from those hooks), not in the constructor. A thread of ours would make a
 * single-threaded program multithreaded, and the kernel then takes a
 * reference on the file table in every fd syscall (10-20% on a tight
 * non-blocking read loop, measured), and unshare(CLONE_NEWUSER) would fail.
 * Fork children wait likewise: most exec or _exit at once, and a thread plus
 * a socket file per fork would cost every fork. */
static bool pending;

/* Called by the constructor, while the program is still single-threaded:
 * the environment is read here, never later, when another thread might be
 * calling setenv. */
void lw_server_start_later(void)
{
    dir_chosen = choose_directory(dir_path, sizeof dir_path);
    __atomic_store_n(&pending, true, __ATOMIC_RELEASE);
}

void lw_server_fork_child(void)
{
    /* The listening socket is the parent's: close our copy (if it still is
     * ours), never unlink it. */
    if (listener_still_ours())
        close(listen_fd);
    listen_fd = -1;
    socket_path[0] = 0;
    report_lock.word = 0;
    started = false;
    __atomic_store_n(&pending, true, __ATOMIC_RELEASE);   /* same directory as the parent */
}

void lw_server_start_if_pending(void)
{
    if (LW_UNLIKELY(__atomic_load_n(&pending, __ATOMIC_ACQUIRE)) &&
        __atomic_exchange_n(&pending, false, __ATOMIC_ACQ_REL))
        lw_server_start();
}

void lw_server_at_exit(void)
{
    if (listening_pid == getpid() && socket_path[0])
        unlink(socket_path);
}
