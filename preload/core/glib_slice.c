/*
 * glib_slice.c — GSlice's slabs, found and checked (see glib_slice.h).
 *
 * Two steps: the allocator is found in libglib's data by the values GLib
 * gives its page sizes and configuration at start-up; then each ring of
 * slab_stack is walked, every slab checked against its neighbours (they
 * must point back at it), its malloc chunk (one, page-sized, page-aligned)
 * and its free list (chunks of the ring's size, at the slab's colour,
 * within it, each once, as many as the slab says are not handed out).
 */
#include "core/glib_slice.h"

#include <string.h>

#define MIN_PAGE 128u
#define MAX_PAGE 8192u
#define ALIGN 16u                       /* P2ALIGNMENT: 2 * sizeof (gsize) */
#define SLAB_INFO_SIZE 48u              /* sizeof (SlabInfo) + native malloc padding, aligned */
#define N_SLAB_STACKS 63u               /* MAX_SLAB_INDEX for 8 KiB pages: (8192 - 48) / 8 / 16 */
#define MAX_CHUNK_FOR_MAGAZINES ((MAX_PAGE - SLAB_INFO_SIZE) / 8)
#define MAX_SLABS (1u << 20)            /* slabs looked at in all, at most */

/* Offsets in the allocator (gslice.c's Allocator, x86-64). */
enum {
    A_MIN_PAGE = 0, A_MAX_PAGE = 8, A_ALWAYS_MALLOC = 16, A_BYPASS = 20, A_DEBUG_BLOCKS = 24,
    A_MAX_MAGAZINE_CHUNK = 48, A_MAGAZINES = 64, A_CONTENTION = 72, A_SLAB_STACK = 104, A_SIZE = 120,
};

struct slab_info {
    uint64_t chunks;        /* ChunkLink *: the slab's free list */
    uint32_t n_allocated;   /* chunks handed out (to the magazines or the program) */
    uint32_t pad;
    uint64_t next, prev;
};

static uint64_t word_at(const unsigned char *a, size_t off)
{
    uint64_t w;
    memcpy(&w, a + off, sizeof w);
    return w;
}

static uint32_t u32_at(const unsigned char *a, size_t off)
{
    uint32_t w;
    memcpy(&w, a + off, sizeof w);
    return w;
}

static bool is_flag(uint32_t v)
{
    return v == 0 || v == 1;
}

/* The allocator as g_slice_init_nomessage leaves it, with slabs in use. */
static bool allocator_checks_out(const struct lw_heap_view *v, const unsigned char *a)
{
    if (word_at(a, A_MIN_PAGE) != MIN_PAGE || word_at(a, A_MAX_PAGE) != MAX_PAGE)
        return false;
    if (!is_flag(u32_at(a, A_ALWAYS_MALLOC)) || !is_flag(u32_at(a, A_BYPASS)) ||
        !is_flag(u32_at(a, A_DEBUG_BLOCKS)) || u32_at(a, A_ALWAYS_MALLOC))
        return false;
    uint64_t max_magazine_chunk = word_at(a, A_MAX_MAGAZINE_CHUNK);
    if (max_magazine_chunk != 0 && max_magazine_chunk != MAX_CHUNK_FOR_MAGAZINES)
        return false;
    uint64_t size, stack = word_at(a, A_SLAB_STACK);
    /* g_new0 (SlabInfo *, 63): 504 bytes, a chunk of 512 */
    return stack && word_at(a, A_MAGAZINES) && word_at(a, A_CONTENTION) && !(stack & 15) &&
           v->chunk_at(v->ctx, stack - LW_CHUNK_HDR, &size) && size >= N_SLAB_STACKS * 8 + 8;
}

uint64_t lw_gslice_find_allocator(const struct lw_heap_view *v, uint64_t lo, uint64_t hi)
{
    unsigned char buf[4096 + A_SIZE];
    lo = (lo + 7) & ~7ull;
    for (uint64_t at = lo; at + A_SIZE <= hi; at += 4096) {
        size_t len = hi - at < sizeof buf ? (size_t)(hi - at) : sizeof buf;
        if (!v->read(v->ctx, buf, at, len))
            continue;
        for (size_t off = 0; off + A_SIZE <= len && off < 4096; off += 8)
            if (word_at(buf, off) == MIN_PAGE && allocator_checks_out(v, buf + off))
                return at + off;
    }
    return 0;
}

/* allocator_aligned_page_size (SLAB_BPAGE_SIZE): the next power of two of
 * 8 chunks plus the slab info, at least MIN_PAGE. */
static uint64_t page_for(uint64_t chunk_size)
{
    uint64_t need = 8 * chunk_size + SLAB_INFO_SIZE, page = MIN_PAGE;
    while (page < need)
        page <<= 1;
    return page;
}

static bool read_slab_info(const struct lw_heap_view *v, uint64_t at, struct slab_info *si)
{
    return v->read(v->ctx, si, at, sizeof *si);
}

/* Its neighbours in the ring point back at it. */
static bool ring_agrees(const struct lw_heap_view *v, uint64_t sinfo, const struct slab_info *si)
{
    uint64_t back, forth;
    return si->next && si->prev && v->read(v->ctx, &back, si->next + offsetof(struct slab_info, prev), 8) &&
           back == sinfo && v->read(v->ctx, &forth, si->prev + offsetof(struct slab_info, next), 8) && forth == sinfo;
}

/* The chunk index of address p in the slab, or -1. */
static long chunk_index(const struct lw_gslice_slab *sl, uint64_t p)
{
    if (p < sl->mem + sl->color)
        return -1;
    uint64_t off = p - sl->mem - sl->color;
    if (off % sl->chunk_size || off / sl->chunk_size >= sl->n_chunks)
        return -1;
    return (long)(off / sl->chunk_size);
}

/* The free list: exactly n chunks of the slab, each once, ending in NULL. */
static bool read_free_list(const struct lw_heap_view *v, struct lw_gslice_slab *sl, uint64_t head, uint32_t n)
{
    uint64_t p = head;
    for (uint32_t k = 0; k < n; k++) {
        long i = chunk_index(sl, p);
        if (i < 0 || (sl->free_chunks[i >> 6] >> (i & 63) & 1))
            return false;
        sl->free_chunks[i >> 6] |= 1ull << (i & 63);
        if (!v->read(v->ctx, &p, p, 8))
            return false;
    }
    return p == 0;
}

/* One slab of chunk size cs whose info is at sinfo, checked whole. */
static bool slab_at(const struct lw_heap_view *v, uint64_t sinfo, const struct slab_info *si, uint64_t cs,
                    struct lw_gslice_slab *sl)
{
    uint64_t page = page_for(cs), mem = sinfo + SLAB_INFO_SIZE - page, size;
    if ((sinfo + SLAB_INFO_SIZE) % page || sinfo + SLAB_INFO_SIZE < page)
        return false;
    /* posix_memalign (page, page - 16): one chunk of page bytes (a remainder
     * too small to split may stay with it) */
    if (!v->chunk_at(v->ctx, mem - LW_CHUNK_HDR, &size) || size < page || size >= page + 32)
        return false;
    memset(sl, 0, sizeof *sl);
    sl->mem = mem;
    sl->page = page;
    sl->chunk_size = cs;
    sl->n_chunks = (uint32_t)((page - SLAB_INFO_SIZE) / cs);
    uint64_t padding = (page - SLAB_INFO_SIZE) - sl->n_chunks * cs;
    if (si->n_allocated > sl->n_chunks)
        return false;
    if (si->chunks) {
        if (si->chunks < mem || si->chunks >= sinfo || (si->chunks - mem) % ALIGN)
            return false;
        sl->color = (si->chunks - mem) % cs;
    } else if (padding > ALIGN) {
        return false;   /* every chunk handed out and several colours possible: cannot tell */
    }
    /* color = (color_accu * 16) % padding: a multiple of 16 below it (0 without) */
    if ((padding == 0 && sl->color) || (padding && sl->color >= padding) || sl->color % ALIGN)
        return false;
    return read_free_list(v, sl, si->chunks, sl->n_chunks - si->n_allocated);
}

size_t lw_gslice_slabs(const struct lw_heap_view *v, uint64_t allocator,
                       void (*each)(void *ctx, const struct lw_gslice_slab *slab), void *ctx)
{
    uint64_t stacks[N_SLAB_STACKS], stack;
    if (!v->read(v->ctx, &stack, allocator + A_SLAB_STACK, 8) || !v->read(v->ctx, stacks, stack, sizeof stacks))
        return 0;
    size_t found = 0, looked = 0;
    struct lw_gslice_slab sl;
    for (uint32_t ix = 0; ix < N_SLAB_STACKS; ix++) {
        uint64_t first = stacks[ix], sinfo = first, cs = (uint64_t)(ix + 1) * ALIGN;
        while (sinfo && looked++ < MAX_SLABS) {
            struct slab_info si;
            if (!read_slab_info(v, sinfo, &si) || !ring_agrees(v, sinfo, &si))
                break;   /* a ring changing under us, or not one: trust no more of it */
            if (slab_at(v, sinfo, &si, cs, &sl)) {
                each(ctx, &sl);
                found++;
            }
            sinfo = si.next == first ? 0 : si.next;
        }
    }
    return found;
}
