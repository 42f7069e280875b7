/*
 * client.c — finds the sockets of processes under leakwatch wherever they put
 * them, asks them one question each, and parses the replies.
 *
 * A process's socket may live in a directory the CLI's own environment would
 * not choose (another LEAKWATCH_DIR or XDG_RUNTIME_DIR), so sockets are found
 * from /proc/net/unix (every listening socket's bind-time path), from the
 * CLI's default directory, and from the directory the process's own
 * environment implies; a path not reachable here is tried under
 * /proc/PID/root. Every exchange is bounded by a timeout.
 */
#include "client.h"

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

#define REPLY_MAX (256u << 20)

/* ---- where sockets are ---- */

static void default_dir(char *out, size_t size, const char *lwdir, const char *xdg, uid_t uid)
{
    if (lwdir && *lwdir)
        snprintf(out, size, "%s", lwdir);
    else if (xdg && xdg[0] == '/')
        snprintf(out, size, "%s/leakwatch", xdg);
    else
        snprintf(out, size, "/tmp/leakwatch-%u", (unsigned)uid);
}

/* "leakwatch.<pid>.sock" or ".leakwatch.<pid>.tmp" -> pid, else 0 */
static pid_t pid_of_socket_name(const char *name)
{
    int pid = 0, used = 0;
    if (sscanf(name, "leakwatch.%d.sock%n", &pid, &used) == 1 && name[used] == 0)
        return pid;
    used = 0;
    if (sscanf(name, ".leakwatch.%d.tmp%n", &pid, &used) == 1 && name[used] == 0)
        return pid;
    return 0;
}

static bool process_exists(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

struct list {
    struct lwc_target *items;
    size_t n, cap;
};

static void add_target(struct list *l, pid_t pid, const char *dir)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].pid == pid)
            return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct lwc_target *bigger = realloc(l->items, cap * sizeof *bigger);
        if (!bigger)
            return;
        l->items = bigger;
        l->cap = cap;
    }
    struct lwc_target *t = &l->items[l->n];
    t->pid = pid;
    if ((size_t)snprintf(t->path, sizeof t->path, "%s/leakwatch.%d.sock", dir, (int)pid) < sizeof t->path)
        l->n++;
}

static void scan_proc_net_unix(struct list *l, pid_t only)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *path = strchr(line, '/');
        if (!path)
            continue;
        char *slash = strrchr(path, '/');
        pid_t pid = pid_of_socket_name(slash + 1);
        if (pid <= 0 || (only && pid != only))
            continue;
        *slash = 0;
        add_target(l, pid, path);
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
            add_target(l, pid, dir);
    }
    closedir(d);
}

static void cli_default_dir(char *out, size_t size)
{
    default_dir(out, size, getenv("LEAKWATCH_DIR"), getenv("XDG_RUNTIME_DIR"), geteuid());
}

/* The directory the process's own environment implies, when readable. */
static bool process_env_dir(pid_t pid, char *out, size_t size)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *lwdir = NULL, *xdg = NULL;
    for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
        if (strncmp(p, "LEAKWATCH_DIR=", 14) == 0)
            lwdir = p + 14;
        else if (strncmp(p, "XDG_RUNTIME_DIR=", 16) == 0)
            xdg = p + 16;
    }
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (stat(path, &st) != 0)
        return false;
    default_dir(out, size, lwdir, xdg, st.st_uid);
    return true;
}

/* ---- connecting ---- */

static int connect_path(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Connect to t, trying /proc/PID/root as well; fixes t->path to what worked. */
static int connect_target(struct lwc_target *t)
{
    int fd = connect_path(t->path);
    if (fd >= 0 || (errno != ENOENT && errno != ENAMETOOLONG))
        return fd;
    int saved = errno;
    char alt[sizeof t->path];
    if ((size_t)snprintf(alt, sizeof alt, "/proc/%d/root%s", (int)t->pid, t->path) >= sizeof alt) {
        errno = saved;
        return -1;
    }
    fd = connect_path(alt);
    if (fd >= 0)
        memcpy(t->path, alt, sizeof alt);
    else
        errno = saved;
    return fd;
}

static void remove_if_stale_and_ours(const struct lwc_target *t, int connect_errno)
{
    struct stat st;
    bool dead = !process_exists(t->pid);
    if ((dead || connect_errno == ECONNREFUSED) && lstat(t->path, &st) == 0 &&
        S_ISSOCK(st.st_mode) && st.st_uid == geteuid())
        unlink(t->path);
}

static bool reachable(struct lwc_target *t)
{
    int fd = connect_target(t);
    if (fd < 0) {
        remove_if_stale_and_ours(t, errno);
        return false;
    }
    close(fd);
    return true;
}

size_t lwc_list_targets(struct lwc_target **out)
{
    struct list l = { 0 };
    char dir[4096];
    scan_proc_net_unix(&l, 0);
    cli_default_dir(dir, sizeof dir);
    scan_dir(&l, dir, 0);
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++)
        if (process_exists(l.items[i].pid) && reachable(&l.items[i]))
            l.items[kept++] = l.items[i];
        else
            remove_if_stale_and_ours(&l.items[i], 0);
    *out = l.items;
    return kept;
}

bool lwc_find_target(pid_t pid, struct lwc_target *out, char *err, size_t errsize)
{
    if (!process_exists(pid)) {
        snprintf(err, errsize, "no such process: %d", (int)pid);
        return false;
    }
    struct list l = { 0 };
    char dir[4096];
    scan_proc_net_unix(&l, pid);
    cli_default_dir(dir, sizeof dir);
    scan_dir(&l, dir, pid);
    if (process_env_dir(pid, dir, sizeof dir))
        scan_dir(&l, dir, pid);
    bool found = false;
    for (size_t i = 0; i < l.n && !found; i++)
        if (reachable(&l.items[i])) {
            *out = l.items[i];
            found = true;
        }
    free(l.items);
    if (!found)
        snprintf(err, errsize, "no leakwatch socket for pid %d: is it running under LD_PRELOAD=libleakwatch.so?",
                 (int)pid);
    return found;
}

/* ---- asking ---- */

static int timeout_ms(void)
{
    const char *s = getenv("LEAKWATCH_TIMEOUT_MS");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 && v < INT_MAX ? (int)v : 10000;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Read until EOF within the deadline; NULL with a message on failure. */
static char *read_reply(int fd, size_t *len_out, char *err, size_t errsize)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    long long deadline = now_ms() + timeout_ms();
    while (buf) {
        long long left = deadline - now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            snprintf(err, errsize, "timed out waiting for the reply");
            free(buf);
            return NULL;
        }
        if (len + 1 >= cap) {
            if (cap >= REPLY_MAX) {
                snprintf(err, errsize, "reply larger than %u MiB", REPLY_MAX >> 20);
                free(buf);
                return NULL;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n == 0) {
            buf[len] = 0;
            *len_out = len;
            return buf;
        }
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            snprintf(err, errsize, "reading the reply: %s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (n > 0)
            len += (size_t)n;
    }
    snprintf(err, errsize, "out of memory reading the reply");
    return NULL;
}

json_object *lwc_ask(const struct lwc_target *target, const char *request, char *err, size_t errsize)
{
    struct lwc_target t = *target;
    int fd = connect_target(&t);
    if (fd < 0) {
        snprintf(err, errsize, "cannot connect to %s: %s", t.path, strerror(errno));
        return NULL;
    }
    char line[300];
    int n = snprintf(line, sizeof line, "%s\n", request);
    struct timeval tv = { .tv_sec = timeout_ms() / 1000, .tv_usec = (timeout_ms() % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (n <= 0 || send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errsize, "cannot send the request: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    size_t len = 0;
    char *reply = read_reply(fd, &len, err, errsize);
    close(fd);
    if (!reply)
        return NULL;
    enum json_tokener_error jerr = json_tokener_success;
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *obj = tok ? json_tokener_parse_ex(tok, reply, (int)len) : NULL;
    if (tok)
        jerr = json_tokener_get_error(tok);
    if (tok)
        json_tokener_free(tok);
    free(reply);
    if (!obj || jerr != json_tokener_success || !json_object_is_type(obj, json_type_object)) {
        snprintf(err, errsize, "malformed reply (%s)", len == 0 ? "empty" : json_tokener_error_desc(jerr));
        json_object_put(obj);
        return NULL;
    }
    const char *server_error = lwc_str(obj, "error", NULL);
    if (server_error) {
        snprintf(err, errsize, "%s", server_error);
        json_object_put(obj);
        return NULL;
    }
    if (lwc_int(obj, "version", 0) != 1) {
        snprintf(err, errsize, "unsupported reply version %lld", (long long)lwc_int(obj, "version", 0));
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* ---- accessors ---- */

json_object *lwc_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return json_object_is_type(v, json_type_null) ? NULL : v;
}

int64_t lwc_int(json_object *o, const char *key, int64_t fallback)
{
    json_object *v = lwc_get(o, key);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? json_object_get_int64(v) : fallback;
}

double lwc_double(json_object *o, const char *key, double fallback)
{
    json_object *v = lwc_get(o, key);
    return v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
               ? json_object_get_double(v) : fallback;
}

const char *lwc_str(json_object *o, const char *key, const char *fallback)
{
    json_object *v = lwc_get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}
