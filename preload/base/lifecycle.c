/*
 * lifecycle.c — the moments the hooks pass on to the serving layer (see
 * lifecycle.h): function pointers set once in the constructor, and one
 * atomic flag, so that a hook rings without knowing who answers.
 */
#include "base/lifecycle.h"

#include <stddef.h>

static struct lw_lifecycle registered;
static bool armed;

void lw_lifecycle_register(const struct lw_lifecycle *l) { registered = *l; }

void lw_lifecycle_arm(void) { __atomic_store_n(&armed, true, __ATOMIC_RELEASE); }

bool lw_lifecycle_armed(void) { return __atomic_load_n(&armed, __ATOMIC_RELAXED); }

void lw_lifecycle_first_activity(void)
{
    if (__builtin_expect(__atomic_load_n(&armed, __ATOMIC_ACQUIRE), 0) &&
        __atomic_exchange_n(&armed, false, __ATOMIC_ACQ_REL) && registered.start)
        registered.start();
}

void lw_lifecycle_exiting(void)
{
    if (registered.exiting)
        registered.exiting();
}
