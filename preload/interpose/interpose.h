/*
 * interpose.h — what the interposition layer offers the rest of the preload:
 * the mark of an exported hook, whether the application handles signals (a
 * handler may end some waits), and which real function each hook bound to
 * (for the `hooks` request).
 */
#ifndef LW_INTERPOSE_H
#define LW_INTERPOSE_H

#include <stdbool.h>
#include <stddef.h>

/* The hooked functions are the only symbols libleakwatch.so exports. */
#define LW_EXPORT __attribute__((visibility("default")))

/* ---- signal handlers (fdhooks.c) ----
 * Whether the application has ever installed a signal handler (sigaction,
 * signal, sigset hooks, and a look at every signal at start-up). */
extern bool lw_app_handles_signals;   /* (signals.c's) */
static inline bool lw_app_has_signal_handlers(void) { return __atomic_load_n(&lw_app_handles_signals, __ATOMIC_RELAXED); }
void lw_note_signal_handlers_at_start(void);

/* ---- hook bindings (hooks.c), for the `hooks` request ---- */
struct lw_hook_binding {
    const char *name;
    const char *version;   /* symbol version asked for, NULL = default */
    void *address;         /* what it resolved to, NULL if unresolved */
};
/* Fills at most max entries and returns the total count, which may be larger. */
size_t lw_hooks_describe(struct lw_hook_binding *out, size_t max);
void lw_hooks_resolve_all(void);     /* bind every real function (constructor) */

#endif
