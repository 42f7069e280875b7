/*
 * util.c — small pieces every subsystem of the preload uses: clocks, the
 * cached tid, settings from the environment, a lock our own hooks never see,
 * and the raw syscall that bypasses our exported syscall() hook.
 *
 * Everything here is async-signal-safe except lw_settings_load (start-up only).
 */
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

uint64_t lw_start_ns;
struct lw_settings lw_settings = { .settle_ms = 1000, .stall_ms = 30000 };

__thread pid_t lw_cached_tid __attribute__((tls_model("initial-exec")));

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lw_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* The latest event stamped: the coarse clock never reads earlier. */
static uint64_t stamped;

uint64_t lw_stamp_ns(void)
{
    uint64_t now = lw_now_ns(), seen = __atomic_load_n(&stamped, __ATOMIC_RELAXED);
    while (now > seen && !__atomic_compare_exchange_n(&stamped, &seen, now, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    return now;
}

uint64_t lw_coarse_raw_ns(void) { return clock_ns(CLOCK_MONOTONIC_COARSE); }

uint64_t lw_coarse_floor(uint64_t raw_ns)
{
    uint64_t floor = __atomic_load_n(&stamped, __ATOMIC_ACQUIRE);
    return raw_ns > floor ? raw_ns : floor;
}

uint64_t lw_coarse_ns(void) { return lw_coarse_floor(lw_coarse_raw_ns()); }
uint64_t lw_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

long lw_raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret; /* -errno on failure; errno itself is never touched */
}

/* The tid changes only across fork (the child's forking thread gets a new
 * one); the fork child handler calls lw_forget_tid. */
pid_t lw_gettid_slow(void)
{
    lw_cached_tid = (pid_t)lw_raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    return lw_cached_tid;
}

void lw_forget_tid(void) { lw_cached_tid = 0; }

/* ---- settings: the one reader of the environment ----
 * Read only in the constructor (single-threaded: nobody calls setenv then).
 * A number of milliseconds is digits only, at least `minimum`, at most a
 * day; anything else (a sign, a unit, spaces, an overflow) is ignored for
 * the fallback rather than half-understood. */
#define SETTING_MAX_MS 86400000ul

uint32_t lw_setting_ms(const char *name, uint32_t fallback, uint32_t minimum)
{
    const char *s = getenv(name);
    if (!s || *s < '0' || *s > '9')
        return fallback;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < minimum || v > SETTING_MAX_MS)
        return fallback;
    return (uint32_t)v;
}

void lw_setting_string(const char *name, char *dst, size_t size)
{
    const char *v = getenv(name);
    size_t len = v ? strlen(v) : 0;
    dst[0] = 0;
    if (v && len < size)
        memcpy(dst, v, len + 1);
}

void lw_settings_load(void)
{
    int saved = errno;
    lw_settings.settle_ms = lw_setting_ms("LEAKWATCH_SETTLE_MS", 1000, 0);
    lw_settings.stall_ms = lw_setting_ms("LEAKWATCH_STALL_MS", 30000, 0);
    errno = saved;
}

/* A three-state futex lock (0 free, 1 locked, 2 locked with waiters). */
void lw_lock(lw_lock_t *l)
{
    int expected = 0;
    if (__atomic_compare_exchange_n(&l->word, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    if (expected != 2)
        expected = __atomic_exchange_n(&l->word, 2, __ATOMIC_ACQUIRE);
    while (expected != 0) {
        lw_raw_syscall6(SYS_futex, (long)&l->word, FUTEX_WAIT_PRIVATE, 2, 0, 0, 0);
        expected = __atomic_exchange_n(&l->word, 2, __ATOMIC_ACQUIRE);
    }
}

void lw_unlock(lw_lock_t *l)
{
    if (__atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE) == 2)
        lw_raw_syscall6(SYS_futex, (long)&l->word, FUTEX_WAKE_PRIVATE, 1, 0, 0, 0);
}

/* Copy memory we do not own (another thread's object, or a pointer only the
 * kernel would have read) without ever faulting: an unmapped page costs an
 * error code. Async-signal-safe; errno untouched. */
bool lw_read_memory(void *dst, uintptr_t src, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)src, len };
    long pid = lw_raw_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    return lw_raw_syscall6(SYS_process_vm_readv, pid, (long)&local, 1, (long)&remote, 1, 0) == (long)len;
}

/* A small file (from /proc), NUL-terminated: its length, or -1. One read,
 * with raw syscalls (never through our own hooks). */
static ssize_t read_small_file_at(long dirfd, const char *path, char *buf, size_t size)
{
    long fd = lw_raw_syscall6(SYS_openat, dirfd, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0)
        return -1;
    long n = lw_raw_syscall6(SYS_read, fd, (long)buf, (long)size - 1, 0, 0, 0);
    lw_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

ssize_t lw_read_small_file(const char *path, char *buf, size_t size)
{
    return read_small_file_at(AT_FDCWD, path, buf, size);
}

ssize_t lw_read_whole_file(const char *path, char *buf, size_t size)
{
    long fd = lw_raw_syscall6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len < size - 1) {
        long n = lw_raw_syscall6(SYS_read, fd, (long)(buf + len), (long)(size - 1 - len), 0, 0, 0);
        if (n == -EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                len = (size_t)-1;
            break;
        }
        len += (size_t)n;
    }
    lw_raw_syscall6(SYS_close, fd, 0, 0, 0, 0, 0);
    if (len == (size_t)-1)
        return -1;
    buf[len] = 0;
    return (ssize_t)len;
}

/* ---- many threads' /proc files ---- */

static bool same_directory(int fd, const struct lw_task_dir *d)
{
    struct stat st;
    return fd >= 0 && lw_raw_syscall6(SYS_fstat, fd, (long)&st, 0, 0, 0, 0) == 0 && S_ISDIR(st.st_mode) &&
           st.st_dev == d->dev && st.st_ino == d->ino;
}

void lw_task_dir_open_pid(struct lw_task_dir *d, int32_t pid)
{
    char path[32] = "/proc/self/task";
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    d->pid = pid;
    d->fd = (int)lw_raw_syscall6(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
    struct stat st;
    if (d->fd >= 0 && lw_raw_syscall6(SYS_fstat, d->fd, (long)&st, 0, 0, 0, 0) == 0) {
        d->dev = st.st_dev;
        d->ino = st.st_ino;
        return;
    }
    if (d->fd >= 0)
        lw_raw_syscall6(SYS_close, d->fd, 0, 0, 0, 0, 0);
    d->fd = -1;
}

void lw_task_dir_open(struct lw_task_dir *d)
{
    lw_task_dir_open_pid(d, 0);
}

bool lw_task_dir_still_ours(const struct lw_task_dir *d)
{
    return d->fd < 0 || same_directory(d->fd, d);
}

void lw_task_dir_close(struct lw_task_dir *d)
{
    if (d->fd >= 0 && same_directory(d->fd, d))
        lw_raw_syscall6(SYS_close, d->fd, 0, 0, 0, 0, 0);
    d->fd = -1;   /* (not ours any more: the application closed it, and maybe reused the number) */
}

ssize_t lw_read_task_file(const struct lw_task_dir *d, pid_t tid, const char *leaf, char *buf, size_t size)
{
    char path[64];
    if (d && d->fd >= 0)
        snprintf(path, sizeof path, "%d/%s", (int)tid, leaf);
    else if (d && d->pid > 0)
        snprintf(path, sizeof path, "/proc/%d/task/%d/%s", (int)d->pid, (int)tid, leaf);
    else
        snprintf(path, sizeof path, "/proc/self/task/%d/%s", (int)tid, leaf);
    return read_small_file_at(d && d->fd >= 0 ? d->fd : AT_FDCWD, path, buf, size);
}

/* /proc/self/task/TID/syscall: "nr a1..a6 sp pc" of a thread in a syscall,
 * or "running". Fills *sc (nr -1 when running); false if unreadable. */
bool lw_task_syscall_in(const struct lw_task_dir *d, pid_t tid, struct lw_task_syscall *sc)
{
    char buf[256];
    sc->nr = -1;
    if (lw_read_task_file(d, tid, "syscall", buf, sizeof buf) <= 0)
        return false;
    if (strncmp(buf, "running", 7) == 0)
        return true;
    char *p = buf, *end;
    long nr = strtol(p, &end, 10);
    if (end == p)
        return false;
    uint64_t words[8];
    for (int i = 0; i < 8; i++) {
        p = end;
        words[i] = strtoull(p, &end, 16);
        if (end == p)
            return false;
    }
    memcpy(sc->args, words, sizeof sc->args);
    sc->sp = words[6];
    sc->pc = words[7];
    sc->nr = (int)nr;
    return true;
}

bool lw_task_syscall(pid_t tid, struct lw_task_syscall *sc)
{
    return lw_task_syscall_in(NULL, tid, sc);
}

/* ---- listing a process's threads ---- */

static int compare_tids(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

size_t lw_list_tids(pid_t pid, pid_t **out)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/task");
    size_t n = 0, cap = 256;
    pid_t *tids = malloc(cap * sizeof *tids);
    DIR *dir = tids ? opendir(path) : NULL;
    if (!dir) {
        free(tids);
        *out = NULL;
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        if (n == cap) {
            pid_t *bigger = realloc(tids, 2 * cap * sizeof *tids);
            if (!bigger)
                break;
            tids = bigger;
            cap *= 2;
        }
        tids[n++] = (pid_t)tid;
    }
    closedir(dir);
    qsort(tids, n, sizeof *tids, compare_tids);
    *out = tids;
    return n;
}
