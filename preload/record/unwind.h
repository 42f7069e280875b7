/*
 * unwind.h — the calling thread's return addresses from .eh_frame, with a
 * process-wide cache of decoded frame rules (see unwind.c for why not
 * libunwind); or, for a wait recorded without one, another thread's stack
 * walked later from where the wait began (lw_unwind_other).
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
/* Where a walk of a thread's stack may start later, from another thread:
 * an instruction (pc) of a function whose frame stays live meanwhile, that
 * frame's rsp and rbp at pc, and the return address the frame holds (a
 * walk that does not find it there again walks nothing: the frame was
 * popped). LW_FRAME_HERE takes it for the calling function: a few moves,
 * no memory read beyond the return address. */
struct lw_frame_state {
    uint64_t pc, sp, bp;
    uint64_t ra_masked;   /* ^ LW_RA_MASK: a copy in our frame is never taken for the real one */
};
#define LW_RA_MASK 0x5a3cf00dd15ea5e5ull
#define LW_FRAME_HERE(st)                                                             \
    do {                                                                              \
        __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"         \
                         : "=r"((st).pc), "=r"((st).sp), "=r"((st).bp));              \
        (st).ra_masked = (uint64_t)(uintptr_t)__builtin_return_address(0) ^ LW_RA_MASK; \
    } while (0)
/* Up to max return addresses of the stack `at` describes, innermost first
 * (the first is at->ra), read with process_vm_readv: the frames must stay
 * live while it runs (the caller checks afterwards that they did). 0 when
 * the frame is gone. Never allocates; one page of our stack. */
int lw_unwind_other(const struct lw_frame_state *at, uint64_t *pcs, int max);
/* The rule cache's mapping: never a root of a reachability scan. */
void lw_unwind_extent(uintptr_t *lo, uintptr_t *hi);
/* Advanced by every dlclose (the preload wraps it). A stack kept since
 * generation gen: lw_unwind_forget_unloaded zeroes its pcs that lie in code
 * a dlclose has unloaded since (the report then says unknown, never what is
 * mapped there now). Not async-signal-safe: for the server thread. */
uint32_t lw_unwind_generation(void);
void lw_unwind_forget_unloaded(uint64_t *pcs, uint32_t n, uint32_t gen);

#endif
