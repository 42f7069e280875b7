/*
 * glibc_malloc.c — glibc malloc's own bookkeeping, decoded from outside:
 * the tcache key, the chunks held in tcache and fastbins (free, though
 * their in-use bit stays set), and where an arena is. See glibc_malloc.h
 * for the layouts; every structure is checked before anything is believed.
 */
#include "core/glibc_malloc.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_FASTBINS 16u          /* offsetof (struct malloc_state, fastbinsY) */
#define ARENA_NFASTBINS 10u
#define ARENA_TOP 96u
#define ARENA_BINS 112u
#define ARENA_NBINS 127u            /* bin_at(1..126): bins[] holds NBINS * 2 - 2 links */
#define ARENA_NEXT 2160u
#define MAX_TCACHE_CHAIN 512u       /* a longer tcache bin (a tuned tcache_count) is left alone */
#define MAX_FASTBIN_CHAIN (1u << 20)

static uint64_t reveal(uint64_t link_address, uint64_t stored)
{
    return (link_address >> 12) ^ stored;
}

/* ---- the key ---- */

/* One chunk of each fastbin size, its second word cleared, freed: a chunk
 * our thread's tcache takes stores tcache_key there; one whose tcache bin
 * is already full (seven chunks) goes to a fastbin instead, which writes
 * only the first word, and keeps the zero. The key is a value two chunks
 * agree on. A thread whose bins are all full learns nothing now, and asks
 * again next time: a key not learned costs each scan every tcache, so it
 * is never remembered as lost. */
#define KEY_PROBES 7   /* requests 24, 40, ... 120: chunk sizes 32 to 128 */

/* glibc draws the key at random (getrandom): 64 bits. Two chunks can agree
 * on other things: MALLOC_PERTURB_ fills what a fastbin takes with one
 * byte, and a program without fastbins (mallopt M_MXFAST 0) sends them to
 * the unsorted bin, whose address it writes there (a user-space pointer). */
static bool looks_like_a_key(uint64_t v)
{
    return v >> 47 != 0 && v != (v & 0xff) * 0x0101010101010101ull;
}

static uint64_t learn_tcache_key(void)
{
    uint64_t addrs[KEY_PROBES], seen[KEY_PROBES];
    for (unsigned i = 0; i < KEY_PROBES; i++) {
        uint64_t *p = malloc(24 + 16 * i);
        if (p)
            p[1] = 0;
        addrs[i] = (uint64_t)(uintptr_t)p;
    }
    /* Their addresses only: the freed memory is read through the kernel
     * (the empty asm hides them from the use-after-free warning). */
    __asm__("" : : "r"(addrs) : "memory");
    for (unsigned i = 0; i < KEY_PROBES; i++)
        free((void *)(uintptr_t)addrs[i]);
    for (unsigned i = 0; i < KEY_PROBES; i++)
        if (!addrs[i] || !lw_read_memory(&seen[i], addrs[i] + 8, 8))
            seen[i] = 0;
    for (unsigned i = 0; i < KEY_PROBES; i++)
        for (unsigned j = i + 1; j < KEY_PROBES && looks_like_a_key(seen[i]); j++)
            if (seen[j] == seen[i])
                return seen[i];
    return 0;
}

uint64_t lw_malloc_tcache_key(void)
{
    static uint64_t key;
    uint64_t k = __atomic_load_n(&key, __ATOMIC_RELAXED);
    if (!k) {
        k = learn_tcache_key();
        __atomic_store_n(&key, k, __ATOMIC_RELAXED);
    }
    return k;
}

/* ---- tcache ---- */

/* The chunks of one tcache bin, `count` of them from `head`, into out[];
 * false if the chain does not decode exactly. */
static bool decode_tcache_bin(const struct lw_heap_view *v, unsigned bin, uint64_t head, unsigned count,
                              uint64_t key, uint64_t *out)
{
    uint64_t want = 32 + 16ull * bin, e = head;
    for (unsigned k = 0; k < count; k++) {
        uint64_t size, entry[2];
        if (!e || (e & 15) || !v->chunk_at(v->ctx, e - LW_CHUNK_HDR, &size) || size != want ||
            !v->read(v->ctx, entry, e, sizeof entry) || entry[1] != key)
            return false;
        out[k] = e - LW_CHUNK_HDR;
        e = reveal(e, entry[0]);
    }
    return e == 0;
}

size_t lw_malloc_free_tcache(const struct lw_heap_view *v, uint64_t header, uint64_t key)
{
    struct {
        uint16_t counts[LW_TCACHE_BINS];
        uint64_t entries[LW_TCACHE_BINS];
    } t;
    if (!key || !v->read(v->ctx, &t, header + LW_CHUNK_HDR, sizeof t))
        return 0;
    size_t freed = 0;
    uint64_t chain[MAX_TCACHE_CHAIN];
    for (unsigned bin = 0; bin < LW_TCACHE_BINS; bin++) {
        unsigned count = t.counts[bin];
        if (count == 0 || count > MAX_TCACHE_CHAIN ||
            !decode_tcache_bin(v, bin, t.entries[bin], count, key, chain))
            continue;
        for (unsigned k = 0; k < count; k++)
            v->free_chunk(v->ctx, chain[k]);
        freed += count;
    }
    return freed;
}

/* ---- fastbins ---- */

/* The length of a fastbin chain that decodes exactly (chunks of its size,
 * ending in NULL within the bound); 0 if it does not. */
static size_t fastbin_length(const struct lw_heap_view *v, unsigned bin, uint64_t head)
{
    uint64_t want = 32 + 16ull * bin, p = head;
    size_t n = 0;
    while (p) {
        uint64_t size, fd;
        if (n == MAX_FASTBIN_CHAIN || (p & 15) || !v->chunk_at(v->ctx, p, &size) || size != want ||
            !v->read(v->ctx, &fd, p + LW_CHUNK_HDR, 8))
            return 0;
        p = reveal(p + LW_CHUNK_HDR, fd);
        n++;
    }
    return n;
}

size_t lw_malloc_free_fastbins(const struct lw_heap_view *v, uint64_t arena)
{
    uint64_t heads[ARENA_NFASTBINS];
    if (!v->read(v->ctx, heads, arena + ARENA_FASTBINS, sizeof heads))
        return 0;
    size_t freed = 0;
    for (unsigned bin = 0; bin < ARENA_NFASTBINS; bin++) {
        size_t n = fastbin_length(v, bin, heads[bin]);
        /* Walk it again, freeing; it was whole a moment ago, and each step
         * is checked again (the program runs on). */
        uint64_t p = heads[bin], size, fd;
        for (size_t k = 0; k < n && p && v->chunk_at(v->ctx, p, &size) && size == 32 + 16ull * bin &&
                           v->read(v->ctx, &fd, p + LW_CHUNK_HDR, 8); k++) {
            v->free_chunk(v->ctx, p);
            freed++;
            p = reveal(p + LW_CHUNK_HDR, fd);
        }
    }
    return freed;
}

/* ---- arenas ---- */

bool lw_malloc_is_arena(const struct lw_heap_view *v, uint64_t arena, uint64_t top)
{
    uint64_t a[LW_ARENA_SIZE / 8];
    uint64_t size;
    if ((arena & 7) || !v->read(v->ctx, a, arena, sizeof a))
        return false;
    uint64_t its_top = a[ARENA_TOP / 8];
    if (top ? its_top != top : !v->chunk_at(v->ctx, its_top, &size))
        return false;
    for (unsigned i = 0; i < ARENA_NFASTBINS; i++) {
        uint64_t head = a[ARENA_FASTBINS / 8 + i];
        if (head && !v->chunk_at(v->ctx, head, &size))
            return false;
    }
    /* bin_at(i) = &bins[2(i-1)] - 16: an empty bin's links point at it. */
    for (unsigned i = 1; i < ARENA_NBINS; i++) {
        uint64_t self = arena + ARENA_BINS + 16ull * (i - 1) - 16;
        uint64_t fd = a[ARENA_BINS / 8 + 2 * (i - 1)], bk = a[ARENA_BINS / 8 + 2 * (i - 1) + 1];
        bool empty = fd == self && bk == self;
        if (!empty && (!v->chunk_at(v->ctx, fd, &size) || !v->chunk_at(v->ctx, bk, &size)))
            return false;
    }
    return true;
}

uint64_t lw_malloc_find_arena(const struct lw_heap_view *v, uint64_t lo, uint64_t hi, uint64_t top)
{
    uint64_t words[512];
    for (uint64_t at = (lo + 7) & ~7ull; at < hi; at += sizeof words) {
        size_t len = hi - at < sizeof words ? (size_t)(hi - at) & ~7ul : sizeof words;
        if (!len || !v->read(v->ctx, words, at, len))
            continue;
        for (size_t k = 0; k < len / 8; k++) {
            uint64_t arena = at + 8 * k - ARENA_TOP;
            if (words[k] == top && arena >= lo && lw_malloc_is_arena(v, arena, top))
                return arena;
        }
    }
    return 0;
}

uint64_t lw_malloc_next_arena(const struct lw_heap_view *v, uint64_t arena)
{
    uint64_t next;
    return v->read(v->ctx, &next, arena + ARENA_NEXT, 8) ? next : 0;
}
