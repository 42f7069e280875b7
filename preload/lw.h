/*
 * lw.h — declarations shared by the preload's subsystems.
 *
 * Everything in libleakwatch.so is compiled with -fvisibility=hidden; only the
 * hooked functions are marked LW_EXPORT. Nothing here may be called from a
 * hook's fast path unless it says so.
 */
#ifndef LW_H
#define LW_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LW_EXPORT __attribute__((visibility("default")))
#define LW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LW_LIKELY(x) __builtin_expect(!!(x), 1)

/* ---- clock and identity (util.c) ---- */
uint64_t lw_now_ns(void);             /* CLOCK_MONOTONIC, async-signal-safe */
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
};
void lw_task_dir_open(struct lw_task_dir *d);
bool lw_task_dir_still_ours(const struct lw_task_dir *d);
void lw_task_dir_close(struct lw_task_dir *d);
ssize_t lw_read_task_file(const struct lw_task_dir *d, pid_t tid, const char *leaf, char *buf, size_t size);
bool lw_task_syscall_in(const struct lw_task_dir *d, pid_t tid, struct lw_task_syscall *sc);

/* Copy memory we do not own with process_vm_readv: never faults, keeps errno. */
bool lw_read_memory(void *dst, uintptr_t src, size_t len);

/* ---- signal handlers (fdhooks.c) ----
 * Whether the application has ever installed a signal handler (sigaction,
 * signal, sigset hooks, and a look at every signal at start-up). */
bool lw_app_has_signal_handlers(void);
void lw_note_signal_handlers_at_start(void);

/* ---- internal threads (hooks.c) ----
 * Start a thread of ours: created with the real pthread_create, with every
 * signal blocked (so no process-directed signal of the application is ever
 * delivered to it), marked internal so hooks pass straight through and
 * snapshots do not report it. Returns 0 or an errno value. */
int lw_internal_thread_create(void *(*fn)(void *), void *arg);
bool lw_is_internal_tid(pid_t tid);

/* Registry housekeeping, called about once a second by the server thread:
 * reclaims slots of threads that vanished without telling us. */
void lw_registry_tick(void);

/* ---- hook bindings (hooks.c), for the `hooks` request ---- */
struct lw_hook_binding {
    const char *name;
    const char *version;   /* symbol version asked for, NULL = default */
    void *address;         /* what it resolved to, NULL if unresolved */
};
/* Fills at most max entries and returns the total count, which may be larger. */
size_t lw_hooks_describe(struct lw_hook_binding *out, size_t max);
void lw_hooks_resolve_all(void);     /* bind every real function (constructor) */

/* ---- the server (server.c) ---- */
void lw_server_start(void);          /* start the listener thread; idempotent */
void lw_server_start_later(void);    /* start it at the first thread creation or park */
void lw_server_fork_prepare(void);   /* pthread_atfork handlers, called by init.c */
void lw_server_fork_parent(void);
void lw_server_fork_child(void);     /* forget the parent's socket (never unlink it); start ours later */
void lw_server_start_if_pending(void); /* the first thread creation or park: start the server now */
bool lw_server_is_pending(void);       /* not started yet, and it will be at the first such event */
void lw_server_at_exit(void);        /* unlink our socket; called from the destructor */
void lw_server_serve_connection(int fd); /* one accepted connection (server thread; tests/fuzz) */

/* ---- on its own (monitor.c): history, periodic log, exit report ---- */
struct jsonw;
void lw_monitor_init(void);              /* constructor: reads its settings */
bool lw_monitor_wants_server_now(void);  /* LEAKWATCH_LOG asks for the timer from the start */
void lw_monitor_tick(void);              /* server thread, under the report lock */
void lw_monitor_write_history(struct jsonw *w);
void lw_monitor_flush_log(void);         /* server thread, after the tick, the report lock released */
void lw_monitor_fork_child(void);
void lw_monitor_at_exit(void);           /* destructor; takes the report lock only to judge */
void lw_server_lock_reports(void);       /* the report lock, for work off the server thread (the exit report) */
void lw_server_unlock_reports(void);

#endif
