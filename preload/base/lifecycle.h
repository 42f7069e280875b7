/*
 * lifecycle.h — the two moments the hooks must pass on to the serving layer
 * without depending on it: the process has become worth asking about (its
 * first thread creation or park: the server starts then, not at load), and
 * it is leaving by _exit (our socket file goes). The serving layer says what
 * to do (init.c registers it); the hooks only ring (lifecycle.c).
 */
#ifndef LW_LIFECYCLE_H
#define LW_LIFECYCLE_H

#include <stdbool.h>

struct lw_lifecycle {
    void (*start)(void);      /* the first activity of an armed process */
    void (*exiting)(void);    /* _exit: no destructor will run */
};

void lw_lifecycle_register(const struct lw_lifecycle *l);   /* constructor, single-threaded */
void lw_lifecycle_arm(void);              /* start at the next first activity (constructor, fork child) */
extern bool lw_lifecycle_armed_flag;      /* (lifecycle.c's; read it through lw_lifecycle_armed) */
static inline bool lw_lifecycle_armed(void)   /* a relaxed load: cheap enough for a fast path */
{
    return __atomic_load_n(&lw_lifecycle_armed_flag, __ATOMIC_RELAXED);
}
void lw_lifecycle_first_activity(void);   /* start now, if armed (once) */
void lw_lifecycle_exiting(void);          /* async-signal-safe: the _exit hook */

#endif
