/*
 * glib_slice.h — GLib's slice allocator (GSlice, GLib 2.10 to 2.74), read
 * from outside, so that the reachability scan sees its chunks as the blocks
 * they are.
 *
 * Why: GSlice carves small objects (GList nodes, GThread's own record,
 * whatever a program g_slice_new's) out of slabs, each slab one malloc
 * chunk. To the heap walk a slab is one block: one pointer into any of its
 * chunks (GSlice's own free lists point into every slab) marks all of them.
 * So every object GSlice holds stays reachable, and with it what it points
 * to: the data of every GThread (g_thread_new's argument, where a worker's
 * job lives), and no GLib worker could ever be proven leaked. Debian 12's
 * GLib 2.74 uses GSlice by default (2.76 turned it into plain malloc).
 *
 * What is read (gslice.c, 2.74): the allocator is a static struct in
 * libglib's data,
 *   { gsize min_page_size (128), max_page_size (8192); SliceConfig config
 *     { gboolean always_malloc, bypass_magazines, debug_blocks; gsize
 *     working_set_msecs; guint color_increment }; gsize
 *     max_slab_chunk_size_for_magazine_cache; GMutex magazine_mutex;
 *     ChunkLink **magazines; guint *contention_counters; gint
 *     mutex_counter; guint stamp_counter, last_stamp; GMutex slab_mutex;
 *     SlabInfo **slab_stack; guint color_accu; }
 * slab_stack[ix] is a ring of the slabs of chunk size (ix + 1) * 16, each
 * a malloc chunk of `page` bytes (the next power of two of 8 chunks plus
 * 48, at least 128), page-aligned, ending in its SlabInfo { ChunkLink
 * *chunks (its free list); guint n_allocated; SlabInfo *next, *prev; } at
 * page - 48. Its chunks start at mem + color (a multiple of 16 below the
 * padding the division leaves), one after the other.
 *
 * As in glibc_malloc.h, everything is read through the caller's view and
 * checked before it is believed; a slab whose colour cannot be told, whose
 * free list does not decode, or whose ring neighbours disagree is not
 * reported (it stays one block: less is proven, never more).
 */
#ifndef LW_GLIB_SLICE_H
#define LW_GLIB_SLICE_H

#include "core/glibc_malloc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_GSLICE_MAX_CHUNKS 512u   /* (8192 - 48) / 16, rounded up */

/* A slab whose layout checked out: chunks [mem + color + k * chunk_size,
 * + chunk_size) for k < n_chunks; bit k of free_chunks: chunk k is on the
 * slab's own free list (GSlice holds it, the program does not). */
struct lw_gslice_slab {
    uint64_t mem, page, chunk_size, color;
    uint32_t n_chunks;
    uint64_t free_chunks[LW_GSLICE_MAX_CHUNKS / 64];
};

/* The allocator in [lo, hi) (libglib's writable data and bss), or 0: none
 * checks out, or GSlice is off (G_SLICE=always-malloc, valgrind). */
uint64_t lw_gslice_find_allocator(const struct lw_heap_view *v, uint64_t lo, uint64_t hi);

/* Every slab of the allocator's rings that checks out, handed to `each`;
 * returns how many. */
size_t lw_gslice_slabs(const struct lw_heap_view *v, uint64_t allocator,
                       void (*each)(void *ctx, const struct lw_gslice_slab *slab), void *ctx);

#endif
