/*
 * stacks.h — capture the calling thread's stack and intern it.
 *
 * Stacks are raw program counters (symbolized later by the CLI), interned in
 * a fixed lock-free table so 10,000 threads parked at one site share one
 * entry and a wait record holds a 32-bit id.
 */
#ifndef LW_STACKS_H
#define LW_STACKS_H

#include <stdint.h>
#include "record/records.h"
#include "record/unwind.h"

void lw_stacks_init(void);
/* The calling thread's stack, minus leakwatch's own frames; 0 = none. */
uint32_t lw_stack_capture(void);
/* The stack of another thread (or this one) from a frame that is still
 * live, recorded by LW_FRAME_HERE, minus leakwatch's own frames; 0 = none
 * (or the frame is gone). The caller checks afterwards that the frame
 * stayed live throughout (the wait record is unchanged). */
uint32_t lw_stack_capture_at(const struct lw_frame_state *at);
/* Copy an interned stack (server thread). false if id is unknown. */
bool lw_stack_get(uint32_t id, struct lw_snap_stack *out);
/* The dlclose generation of its latest capture (see lw_unwind_forget_unloaded). */
uint32_t lw_stack_generation(uint32_t id);
/* The intern table's mapping: never a root of a reachability scan. */
void lw_stacks_extent(uintptr_t *lo, uintptr_t *hi);
/* Why stacks are missing, or NULL when they work. */
const char *lw_stacks_problem(void);
/* How many captures were not kept because the table was full (they have no
 * stack), and how many distinct stacks the table holds. */
uint64_t lw_stacks_lost(void);
uint32_t lw_stacks_capacity(void);

#endif
