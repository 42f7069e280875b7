/*
 * lifecycle.c — the moments the hooks pass on to the serving layer (see
 * lifecycle.h): function pointers set once in the constructor, and one
 * atomic flag, so that a hook rings without knowing who answers.
 */
#include "base/lifecycle.h"

#include <stddef.h>

static struct lw_lifecycle registered;
bool lw_lifecycle_armed_flag;   /* the server starts at the next first activity */

void lw_lifecycle_register(const struct lw_lifecycle *l) { registered = *l; }

void lw_lifecycle_arm(void) { __atomic_store_n(&lw_lifecycle_armed_flag, true, __ATOMIC_RELEASE); }

void lw_lifecycle_first_activity(void)
{
    if (__builtin_expect(__atomic_load_n(&lw_lifecycle_armed_flag, __ATOMIC_ACQUIRE), 0) &&
        __atomic_exchange_n(&lw_lifecycle_armed_flag, false, __ATOMIC_ACQ_REL) && registered.start)
        registered.start();
}

void lw_lifecycle_exiting(void)
{
    if (registered.exiting)
        registered.exiting();
}
