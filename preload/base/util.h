/*
 * util.h — the small pieces every layer of the preload uses (util.c):
 * clocks, the cached tid, settings from the environment, a lock our own
 * hooks never see, the raw syscall, and reading /proc files and memory we
 * do not own without ever faulting.
 *
 * Everything in libleakwatch.so is compiled with -fvisibility=hidden; only
 * the hooked functions (interpose/interpose.h) and the test API of
 * serve/api.c (include/leakwatch.h) are exported. Nothing here may be
 * called from a hook's fast path unless it says so.
 */
#ifndef LW_UTIL_H
#define LW_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LW_LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- clock and identity (util.c) ---- */
uint64_t lw_now_ns(void);             /* CLOCK_MONOTONIC, async-signal-safe */
/* lw_now_ns for the times of events a wait's start is compared with (a
 * thread's birth or exit, a channel's creation), and a cheap clock for
 * those starts: CLOCK_MONOTONIC at its last tick (a few ms), but never
 * earlier than an event stamped before (so no wait looks older than the
 * channel or the thread it was made on). Both async-signal-safe. */
uint64_t lw_stamp_ns(void);
uint64_t lw_coarse_ns(void);
uint64_t lw_coarse_raw_ns(void);              /* CLOCK_MONOTONIC_COARSE itself */
uint64_t lw_coarse_floor(uint64_t raw_ns);   /* lw_coarse_ns from a raw reading taken just before */
uint64_t lw_thread_cpu_ns(void);      /* the calling thread's CPU time */
extern uint64_t lw_start_ns;          /* monotonic time the preload initialized */
/* The calling thread's tid (cached; async-signal-safe). */
extern __thread pid_t lw_cached_tid __attribute__((tls_model("initial-exec")));
pid_t lw_gettid_slow(void);
static inline pid_t lw_gettid(void)
{
    return LW_LIKELY(lw_cached_tid != 0) ? lw_cached_tid : lw_gettid_slow();
}
void lw_forget_tid(void);             /* fork child: the tid changed */

/* ---- settings (util.c), read once from the environment at start-up ---- */
struct lw_settings {
    uint32_t settle_ms;   /* LEAKWATCH_SETTLE_MS, default 1000 */
    uint32_t stall_ms;    /* LEAKWATCH_STALL_MS, default 30000 */
};
extern struct lw_settings lw_settings;
void lw_settings_load(void);
/* The one reader of LEAKWATCH_* (constructor only): milliseconds (digits
 * only, from minimum to a day; else fallback), and a string (too long:
 * empty). */
uint32_t lw_setting_ms(const char *name, uint32_t fallback, uint32_t minimum);
void lw_setting_string(const char *name, char *dst, size_t size);

/* ---- a lock our own hooks never see (util.c) ----
 * A futex word taken with atomics and raw syscalls; for the server and fork
 * handlers only, never in a hook's fast path. */
typedef struct { int word; } lw_lock_t;
#define LW_LOCK_INIT { 0 }
void lw_lock(lw_lock_t *l);
void lw_unlock(lw_lock_t *l);

/* ---- the raw syscall, bypassing our own exported syscall() hook ---- */
long lw_raw_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

/* A small file (from /proc), NUL-terminated: its length, or -1 (util.c). */
ssize_t lw_read_small_file(const char *path, char *buf, size_t size);
/* A whole file up to size - 1 bytes, NUL-terminated, with raw syscalls
 * (never through our hooks): its length (size - 1: maybe cut), or -1. */
ssize_t lw_read_whole_file(const char *path, char *buf, size_t size);

/* What /proc/self/task/TID/syscall says (util.c): nr -1 when running. */
struct lw_task_syscall {
    int nr;
    uint64_t args[6];
    uint64_t sp, pc;
};
bool lw_task_syscall(pid_t tid, struct lw_task_syscall *sc);

/* Many threads' /proc files, read relative to one directory fd of
 * /proc/self/task, with raw syscalls (util.c). The fd is checked to still be
 * that directory before it is closed, and the caller checks it after its
 * reads (lw_task_dir_still_ours): an application that closes every fd may
 * take the number meanwhile, and then what was read proves nothing. A
 * directory that could not be opened (fd -1) falls back to full paths. */
struct lw_task_dir {
    int fd;
    dev_t dev;
    ino_t ino;
    int32_t pid;   /* 0: this process */
};
void lw_task_dir_open(struct lw_task_dir *d);
void lw_task_dir_open_pid(struct lw_task_dir *d, int32_t pid);   /* /proc/PID/task of another process */
bool lw_task_dir_still_ours(const struct lw_task_dir *d);
void lw_task_dir_close(struct lw_task_dir *d);
ssize_t lw_read_task_file(const struct lw_task_dir *d, pid_t tid, const char *leaf, char *buf, size_t size);

/* The threads of pid (0: this process) listed in /proc/PID/task, sorted, in
 * a malloc'ed array (util.c): their count; *out is NULL when the directory
 * could not be opened (the process is gone) or memory ran out. Not for a
 * hook: it allocates. */
size_t lw_list_tids(pid_t pid, pid_t **out);
bool lw_task_syscall_in(const struct lw_task_dir *d, pid_t tid, struct lw_task_syscall *sc);

/* Copy memory we do not own with process_vm_readv: never faults, keeps errno. */
bool lw_read_memory(void *dst, uintptr_t src, size_t len);

#endif
