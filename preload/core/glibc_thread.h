/*
 * glibc_thread.h — what glibc's thread descriptor (struct pthread, the
 * TCB, x86-64: at the thread pointer, TLS_TCB_AT_TP) tells the
 * reachability scan about a parked thread:
 *   - where its static TLS lies: [tp + tls_low, tp), the same tp-relative
 *     offsets in every thread (learned from the modules' TLS blocks of the
 *     calling thread);
 *   - how far its descriptor reaches above tp (its size, learned from the
 *     calling thread's stack mapping, whose top it ends);
 *   - whether pthread_cancel could end its wait: cancellation enabled (the
 *     offset of `cancelhandling` is learned by toggling our own thread's
 *     cancel state and watching which word of our descriptor changes).
 * Whatever cannot be learned is reported unknown, and the caller then
 * assumes the worst for a proof (TLS part of the stack, cancellable).
 * Server thread only.
 */
#ifndef LW_GLIBC_THREAD_H
#define LW_GLIBC_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lw_source;

struct lw_thread_layout {
    int64_t tls_low;          /* static TLS starts at tp + tls_low (< 0); 0 if unknown */
    uint32_t tcb_size;        /* bytes of descriptor from tp; 0 if unknown */
    int32_t cancel_offset;    /* of cancelhandling from tp; -1 if unknown */
};

/* Learn the layout on the calling thread, whose stack mapping (TCB at its
 * top) is [stack_lo, stack_hi). */
void lw_thread_layout_learn(struct lw_thread_layout *l, uint64_t stack_lo, uint64_t stack_hi);

/* Whether a pthread_cancel could end a wait of the thread at tp (a wait in
 * a cancellation point): read its cancelhandling word, 4 bytes at *addr
 * (false: where is unknown, so it may be), and ask
 * lw_thread_cancel_enabled: cancellation not disabled. */
bool lw_thread_cancel_word(const struct lw_thread_layout *l, uint64_t tp, uint64_t *addr);
bool lw_thread_cancel_enabled(uint32_t handling);

/* Learned from another process's data, read through a source:
 *   - the static TLS's lowest offset from tp, from the DTV of a thread at
 *     tp whose stack mapping starts at stack_lo (0 unknown);
 *   - the offset of the descriptor's tid field (what pthread_join waits
 *     on, and what the kernel clears when the thread exits): the one place
 *     in [tp, tp + tcb_size) holding its tid for every thread given, at
 *     least two agreeing (-1 unknown). */
int64_t lw_thread_tls_low_from_dtv(const struct lw_source *src, uint64_t tp, uint64_t stack_lo);
int32_t lw_thread_tid_offset(const struct lw_source *src, const uint64_t *tps, const int32_t *tids, size_t n,
                             uint32_t tcb_size);

/* The calling thread's thread pointer (pthread_self()). */
uint64_t lw_thread_pointer(void);

#endif
