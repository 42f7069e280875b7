/*
 * client.c — finds the sockets of processes under leakwatch wherever they put
 * them, asks them one question each, and parses the replies (docs/protocol.md,
 * "Where the socket is" and "Requests").
 *
 * A process's socket may live in a directory the CLI's own environment would
 * not choose (another LEAKWATCH_DIR or XDG_RUNTIME_DIR, another mount
 * namespace), so candidates come from /proc/net/unix (every listening
 * socket's bind-time path, ".leakwatch.PID.tmp" mapped to its final name),
 * from the CLI's default directory, and from the directory the process's own
 * environment implies; a path not reachable as is is tried under
 * /proc/PID/root. Discovery makes no connection; the CLI connects once per
 * question. Connecting, sending, reading and symbolizing are bounded by one
 * deadline (LEAKWATCH_TIMEOUT_MS, default 10 s: deadline.c), a reply by what
 * a process with its thread count can send, and its parse by a small
 * multiple of its size (replybound.c).
 *
 * Who answers is checked, not assumed (anyone can bind a socket named
 * leakwatch.PID.sock, in any directory, and /proc/net/unix lists it): a
 * candidate socket file is tried only when its owner is the process's
 * effective uid or root (nobody else can make such a file), and a
 * connection is used only when SO_PEERCRED says its peer is the process
 * itself, running as its effective uid or as root. Another user's socket
 * for a root process once made root's `status PID` print that user's
 * threads.
 */
#include "client.h"
#include "deadline.h"
#include "jsonread.h"
#include "printable.h"
#include "replybound.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ENVIRON_MAX ((size_t)1 << 20)

/* ---- where sockets are ---- */

/* The protocol's directory choice, for any environment. false: none. */
static bool default_dir(char *out, size_t size, const char *lwdir, const char *xdg, uid_t uid)
{
    int n;
    if (lwdir && *lwdir) {
        if (lwdir[0] != '/')
            return false;   /* the preload refuses a relative one too */
        n = snprintf(out, size, "%s", lwdir);
    } else if (xdg && xdg[0] == '/') {
        n = snprintf(out, size, "%s/leakwatch", xdg);
    } else {
        n = snprintf(out, size, "/tmp/leakwatch-%u", (unsigned)uid);
    }
    return n > 0 && (size_t)n < size;
}

/* "leakwatch.<pid>.sock" or ".leakwatch.<pid>.tmp" -> pid, else 0 */
static pid_t pid_of_socket_name(const char *name)
{
    const char *digits;
    const char *suffix;
    if (strncmp(name, "leakwatch.", 10) == 0) {
        digits = name + 10;
        suffix = ".sock";
    } else if (strncmp(name, ".leakwatch.", 11) == 0) {
        digits = name + 11;
        suffix = ".tmp";
    } else {
        return 0;
    }
    if (*digits < '1' || *digits > '9')
        return 0;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (errno || pid <= 0 || pid > INT_MAX || strcmp(end, suffix) != 0)
        return 0;
    return (pid_t)pid;
}

static bool process_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

struct list {
    struct lwc_target *items;
    size_t n, cap;
};

/* The effective uid of pid, from the second field of "Uid:" in its status. */
static bool process_euid(pid_t pid, uid_t *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    unsigned real, effective;
    while (!found && fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %u %u", &real, &effective) == 2)
            found = true;
    fclose(f);
    if (found)
        *out = (uid_t)effective;
    return found;
}

static struct lwc_target *target_for(struct list *l, pid_t pid)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].pid == pid)
            return &l->items[i];
    struct lwc_target *items = lwc_room_for_one(l->items, &l->cap, l->n, sizeof *items, 16);
    if (!items)
        return NULL;
    l->items = items;
    struct lwc_target *t = &l->items[l->n++];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->euid_known = process_euid(pid, &t->euid);
    return t;
}

/* The socket file at path (or, not reachable as is, under /proc/PID/root)
 * is owned by the process's effective uid or by root: nobody else can make
 * such a file, so no one else's socket is ever tried in its name. */
static bool socket_file_owned_by(const char *path, const struct lwc_target *t)
{
    struct stat st;
    char alt[PATH_MAX];
    int rc = lstat(path, &st);
    if (rc != 0 && (errno == ENOENT || errno == ENOTDIR) &&
        (size_t)snprintf(alt, sizeof alt, "/proc/%d/root%s", (int)t->pid, path) < sizeof alt)
        rc = lstat(alt, &st);
    return rc == 0 && S_ISSOCK(st.st_mode) && t->euid_known && (st.st_uid == t->euid || st.st_uid == 0);
}

/* Remember <dir>/leakwatch.<pid>.sock as a candidate for pid, once: a live
 * process's only if its owner is right; a dead one's whatever it is (only
 * to remove it if stale and ours: it is never asked). */
static void add_candidate(struct list *l, pid_t pid, const char *dir)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/leakwatch.%d.sock", dir, (int)pid) >= sizeof path)
        return;
    struct lwc_target *t = target_for(l, pid);
    if (!t || t->npaths == LWC_MAX_PATHS || (process_exists(pid) && !socket_file_owned_by(path, t)))
        return;
    for (size_t i = 0; i < t->npaths; i++)
        if (strcmp(t->paths[i], path) == 0)
            return;
    char *copy = strdup(path);
    if (copy)
        t->paths[t->npaths++] = copy;
}

#define SO_ACCEPTCON_FLAG 0x10000   /* __SO_ACCEPTCON in /proc/net/unix "Flags" */

/* Lines: "Num RefCount Protocol Flags Type St Inode Path". */
static void scan_proc_net_unix(struct list *l, pid_t only)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return;
    char line[PATH_MAX + 256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        unsigned long refcount, protocol, flags;
        int used = 0;
        if (sscanf(line, "%*s %lx %lx %lx %*x %*x %*u %n", &refcount, &protocol, &flags, &used) != 3 || !used)
            continue;
        char *path = line + used;
        char *slash = strrchr(path, '/');
        if (path[0] != '/' || !slash || !(flags & SO_ACCEPTCON_FLAG))
            continue;
        pid_t pid = pid_of_socket_name(slash + 1);
        if (pid <= 0 || (only && pid != only))
            continue;
        *slash = 0;
        add_candidate(l, pid, *path ? path : "/");
    }
    fclose(f);
}

static void scan_dir(struct list *l, const char *dir, pid_t only)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        pid_t pid = pid_of_socket_name(de->d_name);
        if (pid > 0 && de->d_name[0] != '.' && (!only || pid == only))
            add_candidate(l, pid, dir);
    }
    closedir(d);
}

static bool cli_default_dir(char *out, size_t size)
{
    return default_dir(out, size, getenv("LEAKWATCH_DIR"), getenv("XDG_RUNTIME_DIR"), geteuid());
}

/* All of /proc/PID/environ (bounded), NUL-terminated; NULL if unreadable. */
static char *read_environ(pid_t pid, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n == cap) {
            char *bigger = cap < ENVIRON_MAX ? realloc(buf, 2 * cap + 1) : NULL;
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
    }
    close(fd);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* The directory the process's own environment implies, when readable. */
static bool process_env_dir(pid_t pid, char *out, size_t size)
{
    size_t n;
    uid_t euid;
    char *env = read_environ(pid, &n);
    if (!env)
        return false;
    const char *lwdir = NULL, *xdg = NULL;
    for (char *p = env; p < env + n; p += strlen(p) + 1) {
        if (strncmp(p, "LEAKWATCH_DIR=", 14) == 0)
            lwdir = p + 14;
        else if (strncmp(p, "XDG_RUNTIME_DIR=", 16) == 0)
            xdg = p + 16;
    }
    bool ok = n > 0 && process_euid(pid, &euid) && default_dir(out, size, lwdir, xdg, euid);
    free(env);
    return ok;
}

static int compare_targets(const void *a, const void *b)
{
    const struct lwc_target *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

void lwc_clear_target(struct lwc_target *t)
{
    for (size_t i = 0; i < t->npaths; i++)
        free(t->paths[i]);
    t->npaths = 0;
}

void lwc_free_targets(struct lwc_target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        lwc_clear_target(&t[i]);
    free(t);
}

/* A socket file is stale when its pid is gone, or the pid lives but nobody
 * listens (ECONNREFUSED). Only our own socket files are removed. */
static void remove_if_stale_and_ours(const char *path, pid_t pid, int connect_errno)
{
    struct stat st;
    if (connect_errno != ECONNREFUSED && process_exists(pid))
        return;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
        unlink(path);
}

size_t lwc_list_targets(struct lwc_target **out)
{
    struct list l = { 0 };
    char dir[PATH_MAX];
    scan_proc_net_unix(&l, 0);
    if (cli_default_dir(dir, sizeof dir))
        scan_dir(&l, dir, 0);
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct lwc_target *t = &l.items[i];
        if (process_exists(t->pid) && t->npaths > 0) {
            l.items[kept++] = *t;
            continue;
        }
        for (size_t p = 0; p < t->npaths; p++)
            remove_if_stale_and_ours(t->paths[p], t->pid, ESRCH);
        lwc_clear_target(t);
    }
    if (kept)
        qsort(l.items, kept, sizeof *l.items, compare_targets);
    *out = l.items;
    return kept;
}

size_t lwc_list_targets_in(const char *dir, struct lwc_target **out)
{
    struct list l = { 0 };
    scan_dir(&l, dir, 0);
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.items[i].npaths > 0)
            l.items[kept++] = l.items[i];
        else
            lwc_clear_target(&l.items[i]);
    }
    if (kept)
        qsort(l.items, kept, sizeof *l.items, compare_targets);
    *out = l.items;
    return kept;
}

bool lwc_find_target(pid_t pid, struct lwc_target *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    out->pid = pid;
    if (!process_exists(pid)) {
        snprintf(err, errsize, "no such process: %d", (int)pid);
        return false;
    }
    struct list l = { 0 };
    char dir[PATH_MAX];
    scan_proc_net_unix(&l, pid);
    if (cli_default_dir(dir, sizeof dir))
        scan_dir(&l, dir, pid);
    if (process_env_dir(pid, dir, sizeof dir))
        scan_dir(&l, dir, pid);
    if (l.n == 1)
        *out = l.items[0];
    free(l.items);
    if (out->npaths == 0)
        snprintf(err, errsize, "no leakwatch socket for pid %d: is it running under LD_PRELOAD=libleakwatch.so?",
                 (int)pid);
    return out->npaths > 0;
}

/* ---- who answers ---- */

/* The peer of fd is the target itself, running as its euid or root; if
 * not, false and why. */
static bool peer_is_target(int fd, const struct lwc_target *t, char *why, size_t size)
{
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0 || len != sizeof c) {
        snprintf(why, size, "its peer's credentials are unknown");
        return false;
    }
    if (c.pid == t->pid && t->euid_known && (c.uid == t->euid || c.uid == 0))
        return true;
    snprintf(why, size, "it is served by pid %d (uid %u), not by pid %d (uid %u)", (int)c.pid, (unsigned)c.uid,
             (int)t->pid, t->euid_known ? (unsigned)t->euid : (unsigned)-1);
    return false;
}

/* ---- connecting ---- */

static void set_socket_timeouts(int fd, long long ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   /* bounds connect() on AF_UNIX too */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static int connect_path(const char *path, long long deadline)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_socket_timeouts(fd, deadline - lwc_now_ms());
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    while (rc != 0 && errno == EINTR && lwc_now_ms() < deadline);
    if (rc != 0) {
        int e = errno == EAGAIN || errno == EINPROGRESS ? ETIMEDOUT : errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Connect to path, or the same path under /proc/PID/root when it is not
 * reachable as is (another mount namespace). */
static int connect_candidate(const char *path, pid_t pid, long long deadline)
{
    int fd = connect_path(path, deadline);
    if (fd >= 0 || (errno != ENOENT && errno != ENAMETOOLONG && errno != ENOTDIR))
        return fd;
    int first = errno;
    char alt[PATH_MAX];
    if ((size_t)snprintf(alt, sizeof alt, "/proc/%d/root%s", (int)pid, path) < sizeof alt) {
        fd = connect_path(alt, deadline);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT && errno != ENAMETOOLONG)
            return -1;
    }
    errno = first;
    return -1;
}

/* Connect to the first candidate that listens; stale ones are removed.
 * -1 with *why and err set when none does. */
static int connect_target(const struct lwc_target *t, long long deadline, enum lwc_failure *why, char *err,
                          size_t errsize)
{
    *why = LWC_NOT_LISTENING;
    snprintf(err, errsize, "no leakwatch socket for pid %d: is it running under LD_PRELOAD=libleakwatch.so?",
             (int)t->pid);
    for (size_t i = 0; i < t->npaths; i++) {
        int fd = connect_candidate(t->paths[i], t->pid, deadline);
        char why_not[160];
        if (fd >= 0 && peer_is_target(fd, t, why_not, sizeof why_not))
            return fd;
        if (fd >= 0) {
            close(fd);
            if (*why == LWC_NOT_LISTENING)
                *why = LWC_NOT_ITS_OWN;
            snprintf(err, errsize, "not asking %s: %s", t->paths[i], why_not);
            continue;
        }
        int e = errno;
        if (e == ECONNREFUSED || e == ENOENT) {
            remove_if_stale_and_ours(t->paths[i], t->pid, e);
        } else if (e == EACCES || e == EPERM) {
            snprintf(err, errsize, "cannot connect to %s: %s", t->paths[i], strerror(e));
        } else {
            *why = LWC_FAILED;
            snprintf(err, errsize, "cannot connect to %s: %s", t->paths[i],
                     e == ETIMEDOUT ? "timed out" : strerror(e));
        }
    }
    return -1;
}

/* ---- asking ---- */

static bool send_line(int fd, const char *line, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, line, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        line += n;
        len -= (size_t)n;
    }
    return true;
}

static __thread bool (*waiting_work)(void *ctx);   /* (the exporter asks on many threads) */
static __thread void *waiting_ctx;

void lwc_set_waiting_work(bool (*step)(void *ctx), void *ctx)
{
    waiting_work = step;
    waiting_ctx = ctx;
}

/* Nothing to read yet: a step of the wait's work, if there is any left. */
static bool worked_while_waiting(int fd, size_t len)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (len || !waiting_work || poll(&p, 1, 0) != 0)
        return false;
    if (!waiting_work(waiting_ctx))
        waiting_work = NULL;
    return true;
}

/* Read until EOF within the deadline and the limit (what a process of
 * `threads` threads can send); NULL with a message on failure. */
static char *read_reply(int fd, long long deadline, size_t limit, size_t threads, size_t *len_out, char *err,
                        size_t errsize)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (worked_while_waiting(fd, len))
            continue;
        long long left = deadline - lwc_now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            if (ready == 0)
                snprintf(err, errsize, "timed out after %d ms waiting for the reply", lwc_timeout_ms());
            else
                snprintf(err, errsize, "waiting for the reply: %s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (len == limit) {
            snprintf(err, errsize, "the reply is larger than what a process of its thread count can send "
                     "(%zu threads: %zu MiB)", threads, limit >> 20);
            free(buf);
            return NULL;
        }
        if (len == cap) {
            size_t more = 2 * cap < limit ? 2 * cap : limit;
            char *bigger = realloc(buf, more + 1);
            if (!bigger) {
                snprintf(err, errsize, "out of memory reading the reply (%zu MiB so far)", len >> 20);
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap = more;
        }
        ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
        if (n == 0) {
            buf[len] = 0;
            *len_out = len;
            return buf;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            snprintf(err, errsize, "reading the reply: %s", strerror(e));
            free(buf);
            errno = e;
            return NULL;
        }
        if (n > 0)
            len += (size_t)n;
    }
    snprintf(err, errsize, "out of memory reading the reply");
    return NULL;
}

static bool only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            return false;
    return true;
}

/* text is the JSON literal null (json-c's parse of it: no object, and no
 * error either, exactly as when it runs out of memory). */
static bool is_null_literal(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", text[i]))
        i++;
    return len - i >= 4 && memcmp(text + i, "null", 4) == 0;
}

/* Exactly one JSON object (surrounding white space allowed), else NULL. */
json_object *lwc_parse_reply(const char *text, size_t len, char *err, size_t errsize)
{
    char why_not[200];
    if (len == 0 || only_space(text, len)) {
        snprintf(err, errsize, "malformed reply: empty");
        return NULL;
    }
    if (len > INT_MAX || memchr(text, 0, len)) {
        snprintf(err, errsize, "malformed reply: %s", len > INT_MAX ? "too large" : "contains a NUL byte");
        return NULL;
    }
    if (!lwc_reply_affordable(text, len, why_not, sizeof why_not)) {
        snprintf(err, errsize, "malformed reply: %s", why_not);
        return NULL;
    }
    json_object *fast = lwc_json_read_object(text, len);   /* strict JSON, as the preload writes it */
    if (fast)
        return fast;
    json_tokener *tok = json_tokener_new_ex(128);
    if (!tok) {
        snprintf(err, errsize, "out of memory parsing the reply");
        return NULL;
    }
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    const char *why = NULL;
    if (jerr == json_tokener_success && !obj && !is_null_literal(text, len)) {
        snprintf(err, errsize, "out of memory parsing the reply (%zu MiB)", len >> 20);
        return NULL;   /* json-c 0.16 reports an allocation failure as success without an object */
    }
    if (jerr == json_tokener_continue)
        why = "truncated JSON";
    else if (jerr != json_tokener_success)
        why = json_tokener_error_desc(jerr);
    else if (!obj || !json_object_is_type(obj, json_type_object))
        why = "not a JSON object";
    else if (used < len && !only_space(text + used, len - used))
        why = "trailing bytes after the JSON object";
    if (why) {
        snprintf(err, errsize, "malformed reply: %s", why);
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* An error reply or an unknown version becomes a message; true if usable. */
static bool check_reply(json_object *obj, char *err, size_t errsize)
{
    json_object *e = lwc_get(obj, "error");
    if (e) {
        snprintf(err, errsize, "%s", json_object_is_type(e, json_type_string) ? json_object_get_string(e)
                                                                              : "error reply without a message");
        return false;
    }
    json_object *v = lwc_get(obj, "version");
    if (!v || !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1) {
        snprintf(err, errsize, "malformed reply: %s", v ? "unsupported version (this CLI speaks version 1)"
                                                        : "no \"version\" field");
        return false;
    }
    return true;
}

/* The server sheds the connection that has been silent longest when it is
 * full (docs/protocol.md): one shed before it read our line ends without a
 * word, or in a reset. Such a connection is made again, a few times, within
 * the question's deadline. */
#define SHED_RETRIES 3

static bool shed_before_the_reply(const char *text, size_t len, int read_errno)
{
    return text ? len == 0 : read_errno == ECONNRESET;
}

/* One connection: the request sent and the whole reply read (NULL, with
 * *shed when the server dropped it before answering). */
static char *ask_once(const struct lwc_target *t, const char *line, size_t n, long long deadline, size_t limit,
                      size_t threads, size_t *len, bool *shed, enum lwc_failure *why, char *err, size_t errsize)
{
    *shed = false;
    int fd = connect_target(t, deadline, why, err, errsize);
    if (fd < 0)
        return NULL;
    *why = LWC_FAILED;
    if (!send_line(fd, line, n)) {
        *shed = errno == EPIPE || errno == ECONNRESET;
        snprintf(err, errsize, "cannot send the request: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    char *text = read_reply(fd, deadline, limit, threads, len, err, errsize);
    int read_errno = errno;
    close(fd);
    *shed = shed_before_the_reply(text, *len, read_errno);
    if (*shed && text) {
        snprintf(err, errsize, "malformed reply: empty");
        free(text);
        text = NULL;
    }
    return text;
}

static json_object *ask(const struct lwc_target *t, const char *request, enum lwc_failure *why, char *err,
                        size_t errsize)
{
    lwc_deadline_start(t->pid);
    long long deadline = lwc_deadline();
    size_t threads, limit = lwc_reply_limit(t->pid, &threads), len = 0;
    char line[300];
    int n = snprintf(line, sizeof line, "%s\n", request);
    if (n <= 0 || (size_t)n >= sizeof line) {
        *why = LWC_FAILED;
        snprintf(err, errsize, "cannot send the request: it is too long");
        return NULL;
    }
    bool shed = true;
    char *text = NULL;
    for (int attempt = 0; !text && shed && attempt < SHED_RETRIES && lwc_now_ms() < deadline; attempt++)
        text = ask_once(t, line, (size_t)n, deadline, limit, threads, &len, &shed, why, err, errsize);
    if (!text)
        return NULL;
    json_object *obj = lwc_parse_reply(text, len, err, errsize);
    free(text);
    if (!obj)
        return NULL;
    if (!check_reply(obj, err, errsize)) {
        json_object_put(obj);
        return NULL;
    }
    *why = LWC_OK;
    return obj;
}

json_object *lwc_ask(const struct lwc_target *t, const char *request, enum lwc_failure *why, char *err,
                     size_t errsize)
{
    json_object *reply = ask(t, request, why, err, errsize);
    if (!reply)
        lwc_printable_in_place(err, errsize);   /* it may quote the process or a path */
    return reply;
}

/* ---- accessors ---- */

json_object *lwc_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return json_object_is_type(v, json_type_null) ? NULL : v;
}

json_object *lwc_array(json_object *o, const char *key)
{
    json_object *v = lwc_get(o, key);
    return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

size_t lwc_len(json_object *array)
{
    return array && json_object_is_type(array, json_type_array) ? json_object_array_length(array) : 0;
}

static bool is_number(json_object *v)
{
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
}

void *lwc_room_for_one(void *items, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return items;
    size_t bigger = *cap ? 2 * *cap : first;
    void *p = realloc(items, bigger * elem);
    if (p)
        *cap = bigger;
    return p;
}

int64_t lwc_int(json_object *o, const char *key, int64_t fallback)
{
    json_object *v = lwc_get(o, key);
    return is_number(v) ? json_object_get_int64(v) : fallback;
}

double lwc_double(json_object *o, const char *key, double fallback)
{
    json_object *v = lwc_get(o, key);
    return is_number(v) ? json_object_get_double(v) : fallback;
}

const char *lwc_str(json_object *o, const char *key, const char *fallback)
{
    json_object *v = lwc_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}
