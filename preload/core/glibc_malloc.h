/*
 * glibc_malloc.h — what glibc's malloc (2.35 and later, x86-64) keeps about
 * its own chunks, read from outside: which chunks are free although they
 * look allocated (tcache and fastbin chunks keep their in-use bit), and
 * where its bookkeeping lives. The reachability scan (reach.c) uses it so
 * that the allocator's own pointers and the stale contents of free chunks
 * keep nothing alive.
 *
 * Everything here reads memory through the caller's view (process_vm_readv
 * in the preload), never by dereferencing, and every structure is checked
 * before it is believed: a chain that does not decode to chunks of the
 * right size, carrying the right key, ending where its count says, frees
 * nothing. Believing too little only keeps more memory alive; believing
 * too much could hide a live pointer, so the checks are strict.
 *
 * Facts (glibc malloc.c, arena.c; measured on 2.36):
 *   chunk         prev_size at +0, size at +8 (low bits PREV_INUSE 1,
 *                 IS_MMAPPED 2, NON_MAIN_ARENA 4), user data at +16
 *   malloc_state  fastbinsY[10] at +16, top at +96, bins[254] at +112,
 *                 next at +2160; 2200 bytes
 *   heap_info     48 bytes at a 64 MiB-aligned start; the arena's own
 *                 malloc_state follows it in the arena's first heap
 *   tcache        tcache_perthread_struct { uint16_t counts[64];
 *                 tcache_entry *entries[64]; } in a chunk of its own
 *                 (0x290 bytes); an entry sits at a free chunk's user
 *                 address: { next (safe-linked), key (tcache_key) }
 *   safe-linking  a stored link = (address of the link >> 12) ^ target
 */
#ifndef LW_GLIBC_MALLOC_H
#define LW_GLIBC_MALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_CHUNK_HDR 16u
#define LW_PREV_INUSE 1ull
#define LW_IS_MMAPPED 2ull
#define LW_CHUNK_SIZE_BITS 7ull
#define LW_TCACHE_BINS 64u
#define LW_TCACHE_CHUNK 0x290u          /* the chunk holding a tcache_perthread_struct */
#define LW_ARENA_SIZE 2200u             /* sizeof (struct malloc_state) */
#define LW_HEAP_INFO_SIZE 48u

/* How the caller sees the heap: a reader that never faults, and the walked
 * chunks (a header at `header`, of `size` bytes, or false). */
struct lw_heap_view {
    bool (*read)(void *ctx, void *dst, uint64_t addr, size_t len);
    bool (*chunk_at)(void *ctx, uint64_t header, uint64_t *size);
    void (*free_chunk)(void *ctx, uint64_t header);
    void *ctx;
};

/* glibc's tcache_key, learned by freeing chunks of our own and reading
 * their entries (0 when tcache is off or the key cannot be told yet: every
 * bin tried was full; asked again at the next call). Call it where malloc
 * may be called (never mid-walk). */
uint64_t lw_malloc_tcache_key(void);

/* A chunk of LW_TCACHE_CHUNK bytes (its header) that decodes as a thread's
 * tcache: every bin's chain of `counts` entries, each a chunk of the bin's
 * size carrying the key, ending in NULL. Reports those chunks as free (bins
 * that do not decode free nothing); returns how many. */
size_t lw_malloc_free_tcache(const struct lw_heap_view *v, uint64_t header, uint64_t key);

/* An arena's fastbin chains (each chunk of its bin's size, safe-linked,
 * acyclic, ending in NULL): reported as free; returns how many. */
size_t lw_malloc_free_fastbins(const struct lw_heap_view *v, uint64_t arena);

/* main_arena: the malloc_state in [lo, hi) (libc's data) whose top is
 * `top` (the main heap's last chunk) and whose empty bins point at
 * themselves, as glibc initialises them; 0 if none checks out. */
uint64_t lw_malloc_find_arena(const struct lw_heap_view *v, uint64_t lo, uint64_t hi, uint64_t top);

/* Whether [arena, arena + LW_ARENA_SIZE) checks out as a malloc_state
 * whose top is `top` (0: any chunk the view knows). */
bool lw_malloc_is_arena(const struct lw_heap_view *v, uint64_t arena, uint64_t top);

/* The next arena in glibc's circular list, or 0. */
uint64_t lw_malloc_next_arena(const struct lw_heap_view *v, uint64_t arena);

#endif
