/*
 * unwind.h — the calling thread's return addresses from .eh_frame, with a
 * process-wide cache of decoded frame rules (see unwind.c for why not
 * libunwind).
 */
#ifndef LW_UNWIND_H
#define LW_UNWIND_H

#include <stdint.h>

/* Map the rule cache (once, at init; without it every frame is decoded). */
void lw_unwind_init(void);
/* Up to max return addresses, innermost first: the first is where
 * lw_unwind returns to (callers skip their own frames by address).
 * Async-signal-safe; never allocates; reads only this thread's stack. */
int lw_unwind(uint64_t *pcs, int max);
/* The rule cache's mapping: never a root of a reachability scan. */
void lw_unwind_extent(uintptr_t *lo, uintptr_t *hi);
/* Advanced by every dlclose (the preload wraps it). A stack kept since
 * generation gen: lw_unwind_forget_unloaded zeroes its pcs that lie in code
 * a dlclose has unloaded since (the report then says unknown, never what is
 * mapped there now). Not async-signal-safe: for the server thread. */
uint32_t lw_unwind_generation(void);
void lw_unwind_forget_unloaded(uint64_t *pcs, uint32_t n, uint32_t gen);

#endif
