/*
 * heapwalk.c — glibc's heaps as the reachability scan's blocks (see
 * scan.h). The main arena ([heap]), every per-thread heap (64 MiB-aligned
 * mappings that start with a heap_info) and every mmapped chunk are walked
 * chunk by chunk; a walk must validate from start to end, or the region
 * stays a root. A walked heap's chunks become bits, and each chunk's
 * pointer-like words are recorded on the way so the mark need not read the
 * heap twice.
 *
 * What malloc holds free is no block: a pointer into it marks nothing and
 * its stale words reach nothing. The walk itself sees the top chunk and
 * every chunk in a bin (the next chunk's PREV_INUSE is clear); tcache and
 * fastbin chunks keep their in-use bit, and are found through malloc's own
 * lists (glibc_malloc.c): each thread's tcache, each arena's fastbins. The
 * allocator's pointers to its chunks are header addresses, which point at
 * nothing (chunk_holding), so its bookkeeping keeps nothing alive either.
 *
 * Nothing here calls malloc: everything it builds lives in mappings of its
 * own, so the heaps do not change under the walk because of it.
 */
#include "core/scan.h"
#include "core/glib_slice.h"
#include "base/util.h"

#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- blocks ---- */

bool scan_add_extent(struct scan *s, uint64_t start, uint64_t end, uint32_t thread, enum extent_kind kind)
{
    if (end <= start)
        return true;
    if (!scan_reserve(s, (void **)&s->ext, &s->capext, s->next + 1, sizeof *s->ext, 1024))
        return false;
    s->ext[s->next++] = (struct extent){ start, end, thread, (uint8_t)kind, false };
    return true;
}

/* ---- the filter: which words may point into a block ---- */

bool scan_filter_alloc(struct scan *s)
{
    void *p = mmap(NULL, FILTER_BITS / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->filter = p == MAP_FAILED ? NULL : p;
    scan_claim(s, s->filter, FILTER_BITS / 8);
    return s->filter != NULL;
}

/* Every private mapping may hold blocks (heaps, mmapped chunks, parked
 * stacks), or come to: a thread heap grows into the PROT_NONE rest of its
 * reservation, and the main heap up to the break, while this scan runs
 * (see heap_grew_since_maps): set their granules, and those of the gap
 * after [heap]. Over-inclusive is only slower. */
static void filter_set(struct scan *s, uint64_t lo, uint64_t hi)
{
    for (uint64_t g = lo >> FILTER_SHIFT; g <= (hi - 1) >> FILTER_SHIFT && g < FILTER_BITS; g++)
        s->filter[g >> 6] |= 1ull << (g & 63);
}

#define BRK_SLACK (1ull << 30)

void scan_filter_fill(struct scan *s)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        const struct mapping *m = &s->maps[i];
        if (m->shared || m->hi <= m->lo)
            continue;
        filter_set(s, m->lo, m->hi);
        if (strcmp(m->name, "[heap]") == 0) {
            uint64_t next_lo = i + 1 < s->nmaps ? s->maps[i + 1].lo : UINT64_MAX;
            filter_set(s, m->hi, next_lo - m->hi < BRK_SLACK ? next_lo : m->hi + BRK_SLACK);
        }
    }
}

/* A heap is walked through a window of READ_CHUNK bytes, so walking it
 * costs a syscall per MiB, not per chunk; and since every chunk's words
 * pass through the window anyway, the pointer-like ones are recorded then
 * (record_chunk), so that marking need not read the heap a second time. */
struct window {
    uint64_t base;
    size_t len;
};

/* Make [at, need) visible in the window (need - at <= READ_CHUNK). */
static bool window_covers(struct scan *s, struct window *w, uint64_t at, uint64_t need, uint64_t limit)
{
    if (at >= w->base && need <= w->base + w->len)
        return true;
    size_t want = limit - at < READ_CHUNK ? (size_t)(limit - at) : READ_CHUNK;
    w->base = at;
    w->len = scan_read(s, s->buf, at, want);
    return need <= w->base + w->len;
}

static bool reserve_edges(struct scan *s, size_t more)
{
    if (more > MAX_EDGES - s->nedges)
        return false;
    return scan_reserve(s, (void **)&s->edges, &s->capedges, s->nedges + more, sizeof *s->edges, 1u << 16);
}

/* Record the chunk at `at` (user area up to user_end, its bit in `word`):
 * its pointer-like words, which come through the window, as an entry; none
 * if it has none; READ_ME if it does not fit the window. false once
 * edges[] is full. */
static bool record_chunk(struct scan *s, struct window *w, struct span_word *word, uint64_t bit, uint64_t at,
                         uint64_t user_end, uint64_t limit)
{
    if (user_end - at > READ_CHUNK || !window_covers(s, w, at, user_end, limit)) {
        if (!reserve_edges(s, 1))
            return false;
        s->edges[s->nedges++] = READ_ME;
        word->listed |= bit;
        return true;
    }
    uint64_t lo = at + CHUNK_HDR;
    size_t n = (size_t)(user_end - lo) / 8;
    if (!reserve_edges(s, n + 1))
        return false;
    const unsigned char *p = s->buf + (lo - w->base);
    uint64_t *restrict out = s->edges;            /* (locals: the stores cannot alias s) */
    const uint64_t *restrict filter = s->filter;
    size_t first = s->nedges + 1, e = first;
    for (size_t k = 0; k < n; k++) {
        uint64_t v;
        memcpy(&v, p + 8 * k, 8);
        out[e] = v;                               /* kept only if it may point into a block */
        uint64_t g = v >> FILTER_SHIFT;
        e += g < FILTER_BITS && (filter[g >> 6] >> (g & 63) & 1);
    }
    s->bytes_scanned += user_end - lo;
    if (e > first) {
        s->edges[first - 1] = e - first;
        s->nedges = e;
        word->listed |= bit;
    }
    return true;
}

static bool add_big_chunk(struct scan *s, uint64_t header, uint64_t end)
{
    if (!scan_reserve(s, (void **)&s->big, &s->capbig, s->nbig + 1, sizeof *s->big, 4096))
        return false;
    s->big[s->nbig++] = (struct big_chunk){ header, end };
    return true;
}

/* A walked chunk that malloc holds free: no block (a pointer into it marks
 * nothing, its stale words reach nothing). It was the last chunk recorded:
 * its entry, if any, is dropped. */
static void free_walked_chunk(struct scan *s, struct span_word *words, uint64_t g, size_t entry)
{
    struct span_word *word = &words[g >> 6];
    uint64_t bit = 1ull << (g & 63);
    if ((word->listed & bit) && entry != SIZE_MAX && entry < s->nedges) {
        s->nedges = entry;
        word->listed &= ~bit;
    }
    word->freed |= bit;
    s->freed_chunks++;
}

static bool add_tcache_candidate(struct scan *s, uint64_t header)
{
    if (!scan_reserve(s, (void **)&s->tcaches, &s->captcaches, s->ntcaches + 1, sizeof *s->tcaches, 256))
        return false;
    s->tcaches[s->ntcaches++] = header;
    return true;
}

/* glibc's fenceposts at the end of an arena's older heap (sysmalloc, when
 * it adds a new heap): a header of size 16 followed by one of size 0, or
 * the size-0 one alone, both marked in use, within the heap. */
#define FENCE_ROOM 64u   /* the fenceposts and what old_size's rounding leaves after them */
static bool is_fence(struct scan *s, struct window *w, uint64_t at, uint64_t size, uint64_t limit)
{
    if (limit - at > FENCE_ROOM)
        return false;
    if (size == 0)
        return at + CHUNK_HDR <= limit;
    if (size != CHUNK_HDR || at + 2 * CHUNK_HDR > limit || !window_covers(s, w, at, at + 2 * CHUNK_HDR, limit))
        return false;
    uint64_t next;
    memcpy(&next, s->buf + (at - w->base) + CHUNK_HDR + 8, 8);
    return (next & ~SIZE_BITS) == 0 && (next & PREV_INUSE);
}

/* Walk the chunks of [first, limit): every size must be sane and the walk
 * must end exactly at limit (the top chunk), or at an older heap's
 * fenceposts. Adds a span and returns true,
 * or adds nothing and returns false. */
static bool walk_chunks(struct scan *s, uint64_t first, uint64_t limit)
{
    size_t nwords = (size_t)((((limit - first) >> 4) + 63) >> 6);
    if ((s->nspans && first < s->spans[s->nspans - 1].hi) || s->npool + nwords > (EXTENT_ITEM >> 6) ||
        !scan_reserve(s, (void **)&s->spans, &s->capspans, s->nspans + 1, sizeof *s->spans, 64) ||
        !scan_reserve(s, (void **)&s->pool, &s->cappool, s->npool + nwords, sizeof *s->pool, 1u << 14))
        return false;   /* out of order (cannot happen), too large for 32-bit work items, or no memory */
    struct span sp = { first, limit, s->npool, nwords, s->recording ? UINT64_MAX : 0 };
    struct span_word *words = s->pool + sp.word0;
    size_t mark_edges = s->nedges, mark_big = s->nbig, mark_tcaches = s->ntcaches, mark_freed = s->freed_chunks;
    size_t filled = 0, prev_entry = SIZE_MAX;
    bool fenced = false;
    uint64_t mark_bytes = s->bytes_scanned, prev_g = UINT64_MAX;
    uint64_t at = first;
    struct window w = { 0, 0 };
    while (at < limit) {
        if (limit - at < CHUNK_HDR || !window_covers(s, &w, at, at + CHUNK_HDR, limit))
            goto bad;
        uint64_t size_field;
        memcpy(&size_field, s->buf + (at - w.base) + 8, 8);
        uint64_t size = size_field & ~SIZE_BITS;
        if (prev_g != UINT64_MAX && is_fence(s, &w, at, size, limit)) {
            /* An arena's older heap ends in glibc's fenceposts: the walk ends
             * there, and what follows is no chunk. Its old top before them
             * was freed into the bins like any chunk (or is a fencepost
             * itself when it was too small to free). */
            if (!(size_field & PREV_INUSE) && prev_g != UINT64_MAX)
                free_walked_chunk(s, words, prev_g, prev_entry);
            sp.hi = at;
            fenced = true;
            break;
        }
        if (size < MIN_CHUNK || (size & 15) || size > limit - at || (size_field & IS_MMAPPED))
            goto bad;
        /* An in-use chunk's user area runs into the next chunk's prev_size
         * field: [chunk + 16, next chunk + 8), what malloc_usable_size says. */
        uint64_t user_end = at + size + 8 <= limit ? at + size + 8 : limit;
        uint64_t g = (at - first) >> 4;
        /* (before new words take the edges' end as theirs) */
        if (!(size_field & PREV_INUSE) && prev_g != UINT64_MAX)
            free_walked_chunk(s, words, prev_g, prev_entry);   /* the chunk before is in a bin */
        while (filled <= (g >> 6))   /* a new word: clear it (reused memory is not zero) */
            words[filled++] = (struct span_word){ .entry_at = (uint32_t)s->nedges };
        struct span_word *word = &words[g >> 6];
        uint64_t bit = 1ull << (g & 63);
        word->starts |= bit;
        if (size >= BIG_CHUNK && !add_big_chunk(s, at, user_end))
            goto bad;
        if (size == LW_TCACHE_CHUNK && !add_tcache_candidate(s, at))
            goto bad;
        prev_entry = s->nedges;
        if (sp.unrecorded_from == UINT64_MAX && !record_chunk(s, &w, word, bit, at, user_end, limit)) {
            sp.unrecorded_from = g;   /* edges[] is full: this chunk and the rest are read to mark */
            s->recording = false;
        }
        prev_g = g;
        at += size;
    }
    if (at != limit && !fenced)
        goto bad;
    if (prev_g != UINT64_MAX && !fenced) {
        free_walked_chunk(s, words, prev_g, prev_entry);   /* the last chunk is the top: never handed out */
        s->last_top = first + (prev_g << 4);
    }
    while (filled < nwords)
        words[filled++] = (struct span_word){ .entry_at = (uint32_t)s->nedges };
    s->spans[s->nspans++] = sp;
    s->npool += nwords;
    return true;
bad:
    s->nedges = mark_edges;
    s->nbig = mark_big;
    s->ntcaches = mark_tcaches;
    s->freed_chunks = mark_freed;
    s->bytes_scanned = mark_bytes;
    return false;
}

/* A walked heap ends at `end`. What the same mapping holds beyond it is
 * not its chunks: the kernel merges neighbouring anonymous mappings, so it
 * may be the arena's next heap (an older heap ends in fenceposts where the
 * next begins), an mmapped chunk or anything else. It becomes a mapping of
 * its own, a root unless the rest of the walk finds blocks in it (the
 * caller's loop visits it next). The caller reserved room for it. */
static void keep_rest_as_root(struct scan *s, struct mapping *m, uint64_t end)
{
    if (end >= m->hi) {
        m->kind = MAP_HEAP;
        return;
    }
    size_t i = (size_t)(m - s->maps);   /* (room for one more was reserved before the walk) */
    struct mapping rest = *m;
    rest.lo = end;
    m->hi = end;
    m->kind = MAP_HEAP;
    memmove(&s->maps[i + 2], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof *s->maps);
    s->maps[i + 1] = rest;
    s->nmaps++;
}

/* The main arena: chunks from the start of [heap] (after alignment padding)
 * to its end. */
static bool walk_main_heap(struct scan *s, struct mapping *m)
{
    for (uint64_t first = m->lo; first < m->lo + 64; first += 16)
        if (walk_chunks(s, first, m->hi))
            return true;
    return false;
}

/* The main arena: chunks from the start of [heap] to the break. The break
 * may have moved since /proc/self/maps was read (this scan allocates, maybe
 * in the main arena): then walk to where it is now, if nothing else was
 * mapped there. */
static void find_main_heap(struct scan *s, struct mapping *m)
{
    size_t i = (size_t)(m - s->maps);
    if (!scan_reserve_maps(s, 1)) {
        snprintf(s->problem, sizeof s->problem, "out of memory (the main heap kept as a root)");
        return;
    }
    m = &s->maps[i];
    bool walked = walk_main_heap(s, m);
    uint64_t old_hi = m->hi;
    if (!walked) {
        uint64_t brk_now = s->src->ops->program_break ? s->src->ops->program_break(s->src) : 0;
        uint64_t next_lo = i + 1 < s->nmaps ? s->maps[i + 1].lo : UINT64_MAX;
        if (brk_now && brk_now != m->hi && brk_now > m->lo && brk_now <= next_lo) {
            m->hi = brk_now;
            walked = walk_main_heap(s, m);
            if (!walked)
                m->hi = old_hi;
        }
    }
    if (walked) {
        /* (a break that moved down leaves the rest of the mapping as it
         * was: a root, whatever it is now) */
        uint64_t end = m->hi;
        m->hi = old_hi > end ? old_hi : end;
        keep_rest_as_root(s, m, end);
        s->main_top = s->last_top;
    } else {
        snprintf(s->problem, sizeof s->problem, "the main heap could not be walked (kept as a root)");
    }
}

/* A heap that grew (mprotect'ed more of its reservation) after
 * /proc/self/maps was read — our own arena does, as this scan allocates:
 * its readable part now reaches lo + size, into the PROT_NONE rest of the
 * reservation that follows it. Move the boundary; false if what follows is
 * not that. */
static bool heap_grew_since_maps(struct scan *s, struct mapping *m, uint64_t size)
{
    size_t i = (size_t)(m - s->maps);
    if (i + 1 >= s->nmaps)
        return false;
    struct mapping *rest = &s->maps[i + 1];
    if (rest->lo != m->hi || rest->readable || rest->writable || rest->hi < m->lo + size)
        return false;
    m->hi = rest->lo = m->lo + size;
    return true;
}

/* A thread arena (heap_info's ar_ptr), once: its fastbins are read later. */
static void note_arena(struct scan *s, uint64_t arena)
{
    for (size_t k = 0; k < s->narenas; k++)
        if (s->arenas[k] == arena)
            return;
    if (s->narenas < sizeof s->arenas / sizeof *s->arenas)
        s->arenas[s->narenas++] = arena;
}

/* A per-thread heap: heap_info { ar_ptr, prev, size, mprotect_size, pagesize }
 * at a 64 MiB-aligned start; chunks follow it (after the arena itself in an
 * arena's first heap), up to start + size. */
static void find_thread_heap(struct scan *s, struct mapping *m)
{
    uint64_t info[5];
    if ((m->lo & (HEAP_MAX_SIZE - 1)) || scan_read(s, info, m->lo, sizeof info) != sizeof info)
        return;
    uint64_t size = info[2], mprotect = info[3];
    if (size < 4096 || size > HEAP_MAX_SIZE || mprotect < size)
        return;
    if (m->lo + size > m->hi && !heap_grew_since_maps(s, m, size))
        return;
    size_t i = (size_t)(m - s->maps);
    if (!scan_reserve_maps(s, 1))
        return;   /* (no room to split off what may follow the heap: a root) */
    m = &s->maps[i];
    for (uint64_t first = m->lo + LW_HEAP_INFO_SIZE; first < m->lo + 4096; first += 16)
        if (walk_chunks(s, first, m->lo + size)) {
            note_arena(s, info[0]);
            /* Past size but within the heap's 64 MiB: space the heap has
             * not handed out (or handed out since heap_info was read, to
             * whoever allocates meanwhile: us too). Past the 64 MiB:
             * another mapping the kernel merged in. */
            keep_rest_as_root(s, m, m->lo + HEAP_MAX_SIZE);
            return;
        }
}

/* The first two words of the anonymous mappings ahead, read together
 * (10,000 thread stacks: 20 reads, not 10,000); looked up by address, as
 * the walk splits mappings. */
#define FIRSTS 512

struct first_words {
    uint64_t lo[FIRSTS], w[FIRSTS][2];
    bool read[FIRSTS];
    size_t n, at;
};

static bool may_hold_mmapped_chunks(const struct mapping *m)
{
    return m->kind == MAP_ROOT && !m->shared && m->writable && m->anonymous && !m->name[0];
}

static void keep_first_words(void *ctx, size_t k, uint64_t addr, const uint8_t *bytes, size_t got)
{
    struct first_words *f = ctx;
    (void)addr;
    f->read[k] = got == sizeof f->w[k];
    if (f->read[k])
        memcpy(f->w[k], bytes, sizeof f->w[k]);
}

static void read_first_words(struct scan *s, struct first_words *f, size_t from)
{
    struct iovec ranges[FIRSTS];
    f->n = f->at = 0;
    for (size_t i = from; i < s->nmaps && f->n < FIRSTS; i++)
        if (may_hold_mmapped_chunks(&s->maps[i])) {
            f->lo[f->n] = s->maps[i].lo;
            ranges[f->n++] = (struct iovec){ (void *)(uintptr_t)s->maps[i].lo, sizeof f->w[0] };
        }
    scan_read_ranges(s, ranges, f->n, keep_first_words, f);
}

/* The header at a mapping's start, from what was read ahead if it was. */
static bool header_at(struct scan *s, struct first_words *f, uint64_t at, uint64_t hdr[2])
{
    while (f && f->at < f->n && f->lo[f->at] < at)
        f->at++;
    if (f && f->at < f->n && f->lo[f->at] == at) {
        memcpy(hdr, f->w[f->at], sizeof f->w[0]);
        return f->read[f->at];
    }
    return scan_read(s, hdr, at, 2 * sizeof *hdr) == 2 * sizeof *hdr;
}

/* Allocations above the mmap threshold: each one chunk with IS_MMAPPED set,
 * in its own mapping; the kernel merges neighbouring mappings, so walk them
 * one after the other to the end of the mapping. */
static void find_mmapped_chunks(struct scan *s, struct mapping *m, struct first_words *f)
{
    size_t i = (size_t)(m - s->maps);   /* m moves if the array grows */
    size_t mark = s->next;
    uint64_t at = m->lo;
    while (at < m->hi) {
        uint64_t hdr[2];
        if (!header_at(s, at == m->lo ? f : NULL, at, hdr))
            break;
        uint64_t size = hdr[1] & ~SIZE_BITS;
        if (!(hdr[1] & IS_MMAPPED) || hdr[0] != 0 || size < 4096 || (size & 4095) || size > m->hi - at)
            break;
        if (!scan_add_extent(s, at + CHUNK_HDR, at + size, NO_THREAD, EXT_CHUNK))
            break;
        at += size;
    }
    if (at == m->hi) {
        m->kind = MAP_HEAP;
    } else if (at > m->lo && scan_reserve_maps(s, 1)) {
        /* Chunks, then a neighbour the kernel merged in: keep the chunks,
         * and the rest stays a root. */
        keep_rest_as_root(s, &s->maps[i], at);
    } else {
        s->next = mark;   /* not (only) malloc's: a root */
    }
}

void scan_find_heaps(struct scan *s)
{
    /* 12 KiB, off the stack: the server thread runs on the program's
     * default stack size. (One scan at a time: under the report lock.) */
    static struct first_words firsts;
    firsts.n = firsts.at = 0;
    for (size_t i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT || m->shared || !m->writable)
            continue;
        if (strcmp(m->name, "[heap]") == 0)
            find_main_heap(s, m);
        else if (m->anonymous && !m->name[0] && !(m->lo & (HEAP_MAX_SIZE - 1)))
            find_thread_heap(s, m);
        m = &s->maps[i];   /* (the array may have grown) */
        if (!may_hold_mmapped_chunks(m))
            continue;
        if (firsts.at == firsts.n || firsts.lo[firsts.n - 1] < m->lo)
            read_first_words(s, &firsts, i);
        find_mmapped_chunks(s, &s->maps[i], &firsts);
    }
}

/* ---- the block around an address ---- */

/* The block around addr: -1 none (a free chunk is none), else whether it
 * is marked. */
int scan_block_around(struct scan *s, uint64_t addr, struct block_ref *ref)
{
    *ref = (struct block_ref){ 0, 0, EXT_CHUNK, NO_THREAD };
    const struct span *sp = span_of(s, addr);
    if (sp) {
        uint64_t g;
        if (!chunk_holding(s, sp, addr, &g) || (chunk_is_free(s, sp, g) && !s->slices))
            return -1;
        if (!chunk_is_free(s, sp, g)) {
            ref->start = sp->lo + (g << 4) + CHUNK_HDR;   /* what malloc returned */
            ref->end = chunk_end(s, sp, g);
            return (int)(s->pool[sp->word0 + (g >> 6)].marked >> (g & 63) & 1);
        }
        /* (free to malloc: a GLib slab's chunk, whose slices are extents) */
    }
    size_t e = extent_of(s, addr);
    if (e == SIZE_MAX)
        return -1;
    *ref = (struct block_ref){ s->ext[e].start, s->ext[e].end, s->ext[e].kind, s->ext[e].thread };
    return s->ext[e].marked;
}

/* ---- what malloc's own lists hold is free ---- */

/* The header of the walked chunk at `header` exactly: its span and granule. */
static bool walked_chunk(struct scan *s, uint64_t header, const struct span **sp, uint64_t *g)
{
    *sp = header & 15 ? NULL : span_of(s, header);
    if (!*sp)
        return false;
    *g = (header - (*sp)->lo) >> 4;
    return s->pool[(*sp)->word0 + (*g >> 6)].starts >> (*g & 63) & 1;
}

static bool view_read(void *ctx, void *dst, uint64_t addr, size_t len)
{
    return scan_read(ctx, dst, addr, len) == len;
}

static bool view_chunk_at(void *ctx, uint64_t header, uint64_t *size)
{
    struct scan *s = ctx;
    const struct span *sp;
    uint64_t g;
    if (!walked_chunk(s, header, &sp, &g))
        return false;
    uint64_t end = chunk_end(s, sp, g);   /* the next header + 8, or the walk's end */
    *size = end == sp->hi ? end - header : end - 8 - header;
    return true;
}

/* The walked chunk at header marked free; true if it was not already. */
static bool mark_chunk_free(struct scan *s, uint64_t header)
{
    const struct span *sp;
    uint64_t g;
    if (!walked_chunk(s, header, &sp, &g))
        return false;
    struct span_word *word = &s->pool[sp->word0 + (g >> 6)];
    uint64_t bit = 1ull << (g & 63);
    if (word->freed & bit)
        return false;
    word->freed |= bit;
    return true;
}

static void view_free_chunk(void *ctx, uint64_t header)
{
    struct scan *s = ctx;
    if (mark_chunk_free(s, header))
        s->freed_chunks++;
}

/* main_arena lives in libc's data: the malloc_state there whose top is the
 * main heap's last chunk. */
static uint64_t find_main_arena(struct scan *s, const struct lw_heap_view *v)
{
    if (!s->main_top)
        return 0;
    for (size_t i = 0; i < s->nmaps; i++) {
        const struct mapping *m = &s->maps[i];
        const char *base = strrchr(m->name, '/');
        if (!m->writable || !base || strncmp(base, "/libc.so", 8) != 0)
            continue;
        uint64_t arena = lw_malloc_find_arena(v, m->lo, m->hi, s->main_top);
        if (arena)
            return arena;
    }
    return 0;
}

/* Chunks in tcache (each thread's tcache_perthread_struct is a chunk of its
 * own, among the walked chunks of its size) and in every arena's fastbins:
 * free, though their in-use bit says otherwise. */
void scan_free_malloc_chunks(struct scan *s)
{
    struct lw_heap_view v = { view_read, view_chunk_at, view_free_chunk, s };
    uint64_t key = s->tcache_key;
    for (size_t k = 0; key && k < s->ntcaches; k++)
        lw_malloc_free_tcache(&v, s->tcaches[k], key);
    uint64_t main_arena = find_main_arena(s, &v);
    if (main_arena)
        lw_malloc_free_fastbins(&v, main_arena);
    for (size_t k = 0; k < s->narenas; k++)
        if (s->arenas[k] != main_arena && lw_malloc_is_arena(&v, s->arenas[k], 0))
            lw_malloc_free_fastbins(&v, s->arenas[k]);
}

/* ---- the scanning process's own blocks are not the program's ----
 * The preload's snapshot, scan arrays and replies come from the program's
 * malloc (base/ownalloc.h lists them): they hold every waited object's
 * address, and a stale pointer of the program's into a chunk it freed,
 * which we then got, would reach them. Each counts as free: no block, its
 * contents reach nothing. An address that is not a chunk the walk found (or,
 * above the mmap threshold, not a whole mapped chunk of an anonymous
 * mapping) is left alone: the list may be stale by a block or two. */

/* A block above the mmap threshold: its own mapping (page-aligned chunk,
 * IS_MMAPPED, a size in pages), cut out before the walk sees it. */
void scan_skip_own_mmapped(struct scan *s)
{
    for (size_t k = 0; k < s->nown; k++) {
        uint64_t hdr = s->own[k].addr - CHUNK_HDR, word = s->own[k].size_word, size = word & ~SIZE_BITS;
        if (!(word & IS_MMAPPED) || (hdr & 4095) || (size & 4095) || size < 4096)
            continue;
        struct mapping *m = scan_mapping_at(s, hdr);
        if (m && m->kind == MAP_ROOT && m->anonymous && !m->name[0] && !m->shared && hdr + size <= m->hi)
            scan_skip_range(s, hdr, hdr + size);
    }
}

/* One in a walked heap: a chunk whose start the walk found, marked free. */
void scan_forget_own_blocks(struct scan *s)
{
    for (size_t k = 0; k < s->nown; k++)
        if (!(s->own[k].size_word & IS_MMAPPED))
            mark_chunk_free(s, s->own[k].addr - CHUNK_HDR);   /* (not malloc's free: not counted so) */
}

/* ---- GLib's slices: a slab's chunks are blocks, the slab is not ---- */

/* A slab that checked out: its malloc chunk is no block any more (a pointer
 * into it reaches the slice chunk around it, or nothing), each chunk the
 * program holds is an extent of its own; the chunks on the slab's free
 * list, its colour padding and its SlabInfo are none. */
static void split_slab(void *ctx, const struct lw_gslice_slab *sl)
{
    struct scan *s = ctx;
    const struct span *sp;
    uint64_t g;
    if (!walked_chunk(s, sl->mem - CHUNK_HDR, &sp, &g) || chunk_is_free(s, sp, g))
        return;
    size_t mark = s->next;
    for (uint32_t k = 0; k < sl->n_chunks; k++) {
        if (sl->free_chunks[k >> 6] >> (k & 63) & 1)
            continue;
        uint64_t start = sl->mem + sl->color + k * sl->chunk_size;
        if (!scan_add_extent(s, start, start + sl->chunk_size, NO_THREAD, EXT_SLICE)) {
            s->next = mark;   /* out of memory: the slab stays one block */
            return;
        }
    }
    s->pool[sp->word0 + (g >> 6)].freed |= 1ull << (g & 63);   /* (not malloc's free: not counted so) */
    s->slices += s->next - mark;
}

/* libglib's writable data and the bss after it: where GSlice's allocator
 * lives. */
static bool is_glib_data(const struct scan *s, size_t i)
{
    const struct mapping *m = &s->maps[i];
    const char *base = strrchr(m->name, '/');
    if (base && strncmp(base, "/libglib-2.0.so", 15) == 0)
        return m->writable;
    return i > 0 && m->writable && m->anonymous && !m->name[0] && m->lo == s->maps[i - 1].hi &&
           is_glib_data(s, i - 1) && s->maps[i - 1].name[0];
}

void scan_split_gslice(struct scan *s)
{
    struct lw_heap_view v = { view_read, view_chunk_at, view_free_chunk, s };
    for (size_t i = 0; i < s->nmaps; i++) {
        if (!is_glib_data(s, i))
            continue;
        uint64_t allocator = lw_gslice_find_allocator(&v, s->maps[i].lo, s->maps[i].hi);
        if (allocator) {
            lw_gslice_slabs(&v, allocator, split_slab, s);
            return;
        }
    }
}
