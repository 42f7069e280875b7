/*
 * reach.c — rule 3, reachability: can any thread that may still run reach
 * the condvar, semaphore, futex word or barrier a parked thread waits on?
 * A conservative mark, as LeakSanitizer does for memory leaks, without
 * hooking malloc:
 *
 *   blocks   glibc malloc chunks, found by walking the main arena ([heap]),
 *            every per-thread heap (64 MiB-aligned mappings that start with
 *            a heap_info) and every mmapped chunk; each walk must validate
 *            from start to end, or the whole region counts as a root.
 *            A walked heap's chunks are bits of a bitmap (one per 16 bytes:
 *            a chunk header starts here), so a heap of small blocks costs
 *            the scan 3% of its size, not an entry per block; mmapped
 *            chunks and the stacks of parked candidates (and of stuck
 *            threads) are extents, in a sorted list: a live pointer into a
 *            parked stack reaches what is there.
 *   roots    every other readable, writable mapping: module data, live
 *            threads' stacks and TLS, other allocators, shared memory —
 *            except leakwatch's own memory and its server thread.
 *   mark     every aligned word of a root or a marked block that points
 *            into a block (interior pointers count) marks it; marked blocks
 *            are scanned in turn. A candidate whose object turns out
 *            reachable may wake, so its stack joins the roots and the mark
 *            goes on, to a fixpoint.
 *
 * What no scan can see: registers. A parked thread's argument registers
 * are in /proc/self/task/TID/syscall and count as roots; its callee-saved
 * registers and a running thread's registers stay out of sight, so a
 * pointer held only in a register for the two scans (a thread computing
 * for seconds with the object in rbx, say) would go unseen. So would one
 * held only by the kernel (a timer's or an aio request's sigevent value).
 *
 * Memory is only read with process_vm_readv, in bounded batches, so a page
 * the program unmaps mid-scan costs an error (the region is then treated
 * as reachable), never a crash; no thread of the program is stopped or
 * signalled. An object is reported unreachable only if two scans at least a
 * second apart agree with the wait unchanged in between. Everything the
 * scan builds while it walks the heaps lives in mappings of its own, never
 * in malloc's arenas, so the heaps it walks do not change under it because
 * of it.
 */
#include "lw.h"
#include "maps.h"
#include "registry.h"
#include "snapshot.h"
#include "stacks.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEAP_MAX_SIZE (64ull << 20)   /* glibc's per-thread heap alignment on 64-bit */
#define CHUNK_HDR 16u
#define MIN_CHUNK 32u
#define SIZE_BITS 7ull
#define IS_MMAPPED 2ull
#define READ_CHUNK (1u << 20)         /* bytes per process_vm_readv */
#define BATCH_IOVECS 512
#define CONFIRM_NS 1000000000ull      /* two scans at least a second apart */
#define MAX_CONFIRM 4096
#define MAX_EDGES (1u << 24)          /* 128 MiB of recorded pointers at most; beyond, chunks are read twice */
#define BIG_CHUNK 1024u               /* chunks this large are listed too (see chunk_holding) */
#define READ_ME UINT64_MAX            /* an edges[] entry: this chunk was not recorded, read it */
#define EXTENT_ITEM 0x80000000u       /* a work item naming an extent, not a chunk */
#define NO_THREAD UINT32_MAX
#define FILTER_SHIFT 21               /* the filter's granule: 2 MiB */
#define FILTER_BITS (1ull << (47 - FILTER_SHIFT))

/* ---- reading memory that is not ours ---- */

static pid_t self_pid;

static size_t read_remote(void *dst, uint64_t src, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)src, len };
    long n = lw_raw_syscall6(SYS_process_vm_readv, self_pid, (long)&local, 1, (long)&remote, 1, 0);
    return n > 0 ? (size_t)n : 0;
}

/* ---- mappings ---- */

enum map_kind { MAP_SKIP, MAP_ROOT, MAP_HEAP };

struct mapping {
    uint64_t lo, hi;
    bool readable, writable, shared, anonymous;
    char name[64];
    enum map_kind kind;
};

/* ---- blocks ----
 * A walked heap is a span: its chunks are bits in the span's words, one
 * word per KiB of heap (64 granules of 16 bytes). A chunk's header starts
 * at a set bit of `starts`; its user area runs from 16 bytes past that to
 * 8 bytes past the next chunk's header (malloc_usable_size's reach), so
 * the bitmap alone gives every chunk's extent. Chunks of BIG_CHUNK bytes or
 * more are also in a sorted list, so that finding the chunk around an
 * address never looks back or ahead further than two words.
 *
 * While walking, each chunk's pointer-like words are recorded, so that the
 * mark need not read the heap a second time: a chunk with any has an entry
 * in edges[] (a count, then the words; or READ_ME for a chunk too large to
 * record) and its `listed` bit set; a word's entry_at is where the entries
 * of its chunks begin. Chunks past the span's unrecorded_from (once edges[]
 * was full) have no entry: marking reads them.
 *
 * Every other block (an mmapped chunk, a parked thread's stack part) is an
 * extent of its own, in a list sorted by address: they are few and large.
 *
 * The worklist holds 32-bit items: a chunk's slot (its span's first word
 * times 64, plus its granule), or EXTENT_ITEM plus an extent's index. */
struct span_word {
    uint64_t starts;         /* bit k: a chunk header at granule k */
    uint64_t marked;         /* bit k: that chunk is marked */
    uint64_t listed;         /* bit k: that chunk has an entry in edges[] */
    uint32_t entry_at;       /* edges[] index of the first entry of a chunk in this word or later */
    uint32_t unused;
};

struct span {
    uint64_t lo, hi;         /* the first chunk's header; the end of the walk */
    size_t word0, nwords;    /* its words: pool[word0, word0 + nwords) */
    uint64_t unrecorded_from;   /* the granule from which chunks have no entry (edges[] was full) */
};

struct big_chunk {
    uint64_t header, end;    /* a chunk of BIG_CHUNK bytes or more: its header, its user area's end */
};

struct extent {
    uint64_t start, end;
    uint32_t thread;         /* the thread whose stack part this is, or NO_THREAD (an mmapped chunk) */
    bool marked;
};

/* A block found: what record_results says about a candidate's object. */
struct block_ref {
    uint64_t start, end;     /* 0, 0: in no block */
    bool stack;
};

struct scan {
    struct mapping *maps;
    size_t nmaps, capmaps;
    struct span *spans;      /* by address */
    size_t nspans, capspans;
    struct span_word *pool;  /* every span's words */
    size_t npool, cappool;
    struct big_chunk *big;   /* by header */
    size_t nbig, capbig;
    struct extent *ext;      /* by start once sorted, never overlapping a span or each other */
    size_t next, capext;
    uint64_t *edges;         /* the recorded chunks' entries */
    size_t nedges, capedges;
    bool recording;          /* false once edges[] is full: later chunks are read again to mark */
    bool incomplete;         /* out of memory while marking: no proof from this scan */
    uint64_t *filter;        /* one bit per 2 MiB of address space that may hold a block */
    uint32_t *work;          /* worklist */
    size_t nwork, capwork;
    uint64_t lb, hb;         /* no block lies outside [lb, hb) */
    uint64_t bytes_scanned;
    char problem[96];        /* what the scan could not understand */
    size_t last_span;        /* span_of's guess */
    unsigned char *buf;
};

static bool reserve_mapped(void **p, size_t *cap, size_t need, size_t elem, size_t first);
static void skip_range(struct scan *s, uint64_t lo, uint64_t hi);

/* The mappings, from maps.c (no malloc: the heaps are walked next). Every
 * readable mapping that is writable, or anonymous (a read-only remnant of
 * the heap, say), is a root until found to be a heap or ours. */
static bool parse_maps(struct scan *s)
{
    struct lw_maps text = LW_MAPS_INIT;
    if (!lw_maps_read(&text))
        return false;
    bool ok = reserve_mapped((void **)&s->maps, &s->capmaps, text.n + 64, sizeof *s->maps, 1024);
    for (size_t i = 0; ok && i < text.n; i++) {
        const struct lw_mapping *t = &text.v[i];
        struct mapping *m = &s->maps[s->nmaps++];
        *m = (struct mapping){ .lo = t->lo, .hi = t->hi, .readable = t->readable, .writable = t->writable,
                               .shared = t->shared, .anonymous = t->anonymous };
        memcpy(m->name, t->name, sizeof m->name);
        m->kind = m->readable && (m->writable || m->anonymous) ? MAP_ROOT : MAP_SKIP;
        if (strcmp(m->name, "[vvar]") == 0 || strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0)
            m->kind = MAP_SKIP;
    }
    /* The text was read into a mapping of maps.c's, listed as anonymous
     * memory: ours, gone now, and never a root. */
    if (ok)
        skip_range(s, (uint64_t)(uintptr_t)text.text, (uint64_t)(uintptr_t)text.text + text.text_cap);
    lw_maps_free(&text);
    return ok;
}

/* Room for `more` mappings after a split (a failed grow leaves the array as it was). */
static bool reserve_maps(struct scan *s, size_t more)
{
    return reserve_mapped((void **)&s->maps, &s->capmaps, s->nmaps + more, sizeof *s->maps, 1024);
}

/* The binary search every sorted array here needs: the first index i in
 * [0, n) whose KEY (an expression of i, non-decreasing in i) exceeds x; n if
 * none. For arrays of ranges by their ends: the first range ending past x. */
#define FIRST_ABOVE(n, KEY, x)                      \
    ({                                              \
        size_t lo_ = 0, hi_ = (n);                  \
        while (lo_ < hi_) {                         \
            size_t i = lo_ + (hi_ - lo_) / 2;       \
            if ((KEY) <= (x))                       \
                lo_ = i + 1;                        \
            else                                    \
                hi_ = i;                            \
        }                                           \
        lo_;                                        \
    })

static struct mapping *mapping_at(struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->nmaps, s->maps[i].hi, addr);
    return k < s->nmaps && s->maps[k].lo <= addr ? &s->maps[k] : NULL;
}

/* Cut [lo, hi) out of the roots: it is ours, or a block now. A mapping cut
 * in the middle is split in two roots around a skipped part. */
static void skip_range(struct scan *s, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (m->hi <= lo || m->lo >= hi || m->kind != MAP_ROOT)
            continue;
        if (lo <= m->lo && hi >= m->hi) {
            m->kind = MAP_SKIP;
        } else if (lo <= m->lo) {
            m->lo = hi;                      /* the head goes */
        } else if (hi >= m->hi) {
            m->hi = lo;                      /* the tail goes */
        } else if (reserve_maps(s, 2)) {
            m = &s->maps[i];
            struct mapping mid = *m, tail = *m;
            mid.lo = lo;
            mid.hi = hi;
            mid.kind = MAP_SKIP;
            tail.lo = hi;
            m->hi = lo;
            memmove(&s->maps[i + 3], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof *s->maps);
            s->maps[i + 1] = mid;
            s->maps[i + 2] = tail;
            s->nmaps += 2;
            i += 2;
        }
    }
}

/* ---- the scan's own arrays ----
 * They grow while the heaps are being walked, the server thread's own
 * arena among them: they live in mappings of their own, so the walk never
 * sees malloc change under it. */
static bool grow_mapped(void **p, size_t old_cap, size_t new_cap, size_t elem)
{
    void *q = *p ? mremap(*p, old_cap * elem, new_cap * elem, MREMAP_MAYMOVE)
                 : mmap(NULL, new_cap * elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return false;
    *p = q;
    return true;
}

/* Room for `need` elements, doubling from `first` (mapped memory is zeroed
 * only the first time: reused arrays are not). */
static bool reserve_mapped(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? 2 * *cap : first;
    while (cap2 < need)
        cap2 *= 2;
    if (!grow_mapped(p, *cap, cap2, elem))
        return false;
    *cap = cap2;
    return true;
}

static void free_mapped(void *p, size_t cap, size_t elem)
{
    if (p)
        munmap(p, cap * elem);
}

/* ---- blocks ---- */

static bool add_extent(struct scan *s, uint64_t start, uint64_t end, uint32_t thread)
{
    if (end <= start)
        return true;
    if (!reserve_mapped((void **)&s->ext, &s->capext, s->next + 1, sizeof *s->ext, 1024))
        return false;
    s->ext[s->next++] = (struct extent){ start, end, thread, false };
    return true;
}

/* ---- the filter: which words may point into a block ---- */

static bool filter_alloc(struct scan *s)
{
    void *p = mmap(NULL, FILTER_BITS / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->filter = p == MAP_FAILED ? NULL : p;
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

static void filter_fill(struct scan *s)
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

static inline bool may_point_into_a_block(const struct scan *s, uint64_t v)
{
    uint64_t g = v >> FILTER_SHIFT;
    return g < FILTER_BITS && (s->filter[g >> 6] >> (g & 63) & 1);
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
    w->len = read_remote(s->buf, at, want);
    return need <= w->base + w->len;
}

static bool reserve_edges(struct scan *s, size_t more)
{
    if (more > MAX_EDGES - s->nedges)
        return false;
    return reserve_mapped((void **)&s->edges, &s->capedges, s->nedges + more, sizeof *s->edges, 1u << 16);
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
    if (!reserve_mapped((void **)&s->big, &s->capbig, s->nbig + 1, sizeof *s->big, 4096))
        return false;
    s->big[s->nbig++] = (struct big_chunk){ header, end };
    return true;
}

/* Walk the chunks of [first, limit): every size must be sane and the walk
 * must end exactly at limit (the top chunk). Adds a span and returns true,
 * or adds nothing and returns false. */
static bool walk_chunks(struct scan *s, uint64_t first, uint64_t limit)
{
    size_t nwords = (size_t)((((limit - first) >> 4) + 63) >> 6);
    if ((s->nspans && first < s->spans[s->nspans - 1].hi) || s->npool + nwords > (EXTENT_ITEM >> 6) ||
        !reserve_mapped((void **)&s->spans, &s->capspans, s->nspans + 1, sizeof *s->spans, 64) ||
        !reserve_mapped((void **)&s->pool, &s->cappool, s->npool + nwords, sizeof *s->pool, 1u << 14))
        return false;   /* out of order (cannot happen), too large for 32-bit work items, or no memory */
    struct span sp = { first, limit, s->npool, nwords, s->recording ? UINT64_MAX : 0 };
    struct span_word *words = s->pool + sp.word0;
    size_t mark_edges = s->nedges, mark_big = s->nbig, filled = 0;
    uint64_t mark_bytes = s->bytes_scanned;
    uint64_t at = first;
    struct window w = { 0, 0 };
    while (at < limit) {
        if (limit - at < CHUNK_HDR || !window_covers(s, &w, at, at + CHUNK_HDR, limit))
            goto bad;
        uint64_t size_field;
        memcpy(&size_field, s->buf + (at - w.base) + 8, 8);
        uint64_t size = size_field & ~SIZE_BITS;
        if (size < MIN_CHUNK || (size & 15) || size > limit - at || (size_field & IS_MMAPPED))
            goto bad;
        /* An in-use chunk's user area runs into the next chunk's prev_size
         * field: [chunk + 16, next chunk + 8), what malloc_usable_size says. */
        uint64_t user_end = at + size + 8 <= limit ? at + size + 8 : limit;
        uint64_t g = (at - first) >> 4;
        while (filled <= (g >> 6))   /* a new word: clear it (reused memory is not zero) */
            words[filled++] = (struct span_word){ .entry_at = (uint32_t)s->nedges };
        struct span_word *word = &words[g >> 6];
        uint64_t bit = 1ull << (g & 63);
        word->starts |= bit;
        if (size >= BIG_CHUNK && !add_big_chunk(s, at, user_end))
            goto bad;
        if (sp.unrecorded_from == UINT64_MAX && !record_chunk(s, &w, word, bit, at, user_end, limit)) {
            sp.unrecorded_from = g;   /* edges[] is full: this chunk and the rest are read to mark */
            s->recording = false;
        }
        at += size;
    }
    if (at != limit)
        goto bad;
    while (filled < nwords)
        words[filled++] = (struct span_word){ .entry_at = (uint32_t)s->nedges };
    s->spans[s->nspans++] = sp;
    s->npool += nwords;
    return true;
bad:
    s->nedges = mark_edges;
    s->nbig = mark_big;
    s->bytes_scanned = mark_bytes;
    return false;
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
    bool walked = walk_main_heap(s, m);
    if (!walked) {
        uint64_t brk_now = (uint64_t)(uintptr_t)sbrk(0);
        size_t i = (size_t)(m - s->maps);
        uint64_t next_lo = i + 1 < s->nmaps ? s->maps[i + 1].lo : UINT64_MAX;
        if (brk_now != m->hi && brk_now > m->lo && brk_now <= next_lo) {
            uint64_t old_hi = m->hi;
            m->hi = brk_now;
            walked = walk_main_heap(s, m);
            if (!walked)
                m->hi = old_hi;
        }
    }
    if (walked)
        m->kind = MAP_HEAP;
    else
        snprintf(s->problem, sizeof s->problem, "the main heap could not be walked (kept as a root)");
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

/* A per-thread heap: heap_info { ar_ptr, prev, size, mprotect_size, pagesize }
 * at a 64 MiB-aligned start; chunks follow it (after the arena itself in an
 * arena's first heap), up to start + size. */
static void find_thread_heap(struct scan *s, struct mapping *m)
{
    uint64_t info[5];
    if ((m->lo & (HEAP_MAX_SIZE - 1)) || read_remote(info, m->lo, sizeof info) != sizeof info)
        return;
    uint64_t size = info[2], mprotect = info[3];
    if (size < 4096 || size > HEAP_MAX_SIZE || mprotect < size)
        return;
    if (m->lo + size > m->hi && !heap_grew_since_maps(s, m, size))
        return;
    for (uint64_t first = m->lo + 48; first < m->lo + 4096; first += 16)
        if (walk_chunks(s, first, m->lo + size)) {
            m->kind = MAP_HEAP;   /* beyond size: heap space not handed out yet, nothing live there */
            return;
        }
}

/* Allocations above the mmap threshold: each one chunk with IS_MMAPPED set,
 * in its own mapping; the kernel merges neighbouring mappings, so walk them
 * one after the other to the end of the mapping. */
static void find_mmapped_chunks(struct scan *s, struct mapping *m)
{
    size_t i = (size_t)(m - s->maps);   /* m moves if the array grows */
    size_t mark = s->next;
    uint64_t at = m->lo;
    while (at < m->hi) {
        uint64_t hdr[2];
        if (read_remote(hdr, at, sizeof hdr) != sizeof hdr)
            break;
        uint64_t size = hdr[1] & ~SIZE_BITS;
        if (!(hdr[1] & IS_MMAPPED) || hdr[0] != 0 || size < 4096 || (size & 4095) || size > m->hi - at)
            break;
        if (!add_extent(s, at + CHUNK_HDR, at + size, NO_THREAD))
            break;
        at += size;
    }
    if (at == m->hi) {
        m->kind = MAP_HEAP;
    } else if (at > m->lo && reserve_maps(s, 1)) {
        /* Chunks, then a neighbour the kernel merged in: keep the chunks,
         * and the rest stays a root. */
        m = &s->maps[i];
        struct mapping rest = *m;
        rest.lo = at;
        m->hi = at;
        m->kind = MAP_HEAP;
        memmove(&s->maps[i + 2], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof *s->maps);
        s->maps[i + 1] = rest;
        s->nmaps++;
    } else {
        s->next = mark;   /* not (only) malloc's: a root */
    }
}

static void find_heaps(struct scan *s)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT || m->shared || !m->writable)
            continue;
        if (strcmp(m->name, "[heap]") == 0)
            find_main_heap(s, m);
        else if (m->anonymous && !m->name[0] && !(m->lo & (HEAP_MAX_SIZE - 1)))
            find_thread_heap(s, m);
        if (m->kind == MAP_ROOT && m->anonymous && !m->name[0])
            find_mmapped_chunks(s, m);
    }
}

/* ---- our own memory is never a root ---- */

static int skip_own_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct scan *s = data;
    uintptr_t probe = (uintptr_t)&skip_own_segments;
    bool ours = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && probe >= lo && probe < lo + ph->p_memsz)
            ours = true;
    }
    if (!ours)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t lo = info->dlpi_addr + ph->p_vaddr;
            skip_range(s, lo & ~4095ull, (lo + ph->p_memsz + 4095) & ~4095ull);
        }
    }
    return 1;
}

/* The mapped arrays a scan leaves to the next one (see release_idle):
 * every block's address is in them. */
#define KEPT_ARRAYS(X) X(pool, cappool) X(edges, capedges) X(big, capbig) X(ext, capext) X(spans, capspans) \
    X(work, capwork)

static void skip_array(struct scan *s, const void *p, size_t cap, size_t elem)
{
    if (p)
        skip_range(s, (uint64_t)(uintptr_t)p, ((uint64_t)(uintptr_t)p + cap * elem + 4095) & ~4095ull);
}

static void skip_own_memory(struct scan *s)
{
    dl_iterate_phdr(skip_own_segments, s);
    uintptr_t lo, hi;
    lw_registry_extent(&lo, &hi);
    skip_range(s, lo, hi);
    lw_stacks_extent(&lo, &hi);
    skip_range(s, lo, hi);
    lw_unwind_extent(&lo, &hi);
    skip_range(s, lo, hi);
    /* our scratch buffer: copies of the program's memory */
    skip_range(s, (uint64_t)(uintptr_t)s->buf, (uint64_t)(uintptr_t)s->buf + READ_CHUNK);
    /* the arrays kept from the last scan: every block's address is in them */
#define SKIP_KEPT(p, cap) skip_array(s, s->p, s->cap, sizeof *s->p);
    KEPT_ARRAYS(SKIP_KEPT)
#undef SKIP_KEPT
    /* the server thread's own stack (and TLS): the mapping we run on */
    struct mapping *me = mapping_at(s, (uint64_t)(uintptr_t)&lo);
    if (me)
        skip_range(s, me->lo, me->hi);
}

/* ---- threads: live stacks are roots, parked candidates' are blocks ---- */

struct thread_info {
    int32_t tid;
    uint64_t sp;              /* saved stack pointer (parked), 0 if unknown */
    uint64_t args[6];         /* its syscall's arguments, when parked */
    uint64_t tp;              /* pthread_self(): the TCB, at the top of a pthread stack */
    bool candidate;           /* judged here */
    bool excluded;            /* stuck by another rule, or a candidate: not a root */
    size_t ext;               /* its stack part's extent, or SIZE_MAX */
    uint64_t object;
    int reachable;            /* -1 unknown, 0 no, 1 yes */
    struct block_ref object_in;   /* the block holding its object */
};

/* A parked thread's saved stack pointer and syscall arguments (six
 * registers: the only registers of it we can see; its callee-saved ones
 * stay in the kernel, see the header). 0: not in a syscall. */
static uint64_t saved_registers(int32_t tid, uint64_t args[6])
{
    struct lw_task_syscall sc;
    if (!lw_task_syscall(tid, &sc) || sc.nr < 0)
        return 0;
    memcpy(args, sc.args, sizeof sc.args);
    return sc.sp;
}

/* The stack part of a thread's stack mapping: from its stack pointer up to
 * its TCB (pthread threads keep their static TLS and TCB at the top). */
static void stack_part(struct scan *s, const struct thread_info *t, uint64_t *lo, uint64_t *hi)
{
    *lo = *hi = 0;
    struct mapping *m = t->sp ? mapping_at(s, t->sp) : NULL;
    if (!m && t->tp)
        m = mapping_at(s, t->tp);
    if (!m)
        return;
    *lo = t->sp && t->sp >= m->lo ? (t->sp > m->lo + 128 ? t->sp - 128 : m->lo) : m->lo;   /* the red zone */
    *hi = m->hi;
    /* Up to the TCB: the static TLS below it belongs with the stack (a
     * thread-local pointer is the thread's as much as a local is). Cutting
     * any of it would lose pointers; keeping too much only keeps more. */
    if (t->tp > *lo && t->tp < m->hi)
        *hi = t->tp;
}

/* ---- finding the block around an address ---- */

/* The span holding addr, or NULL. Pointers come in runs into one heap: the
 * last span found is tried first. */
static const struct span *span_of(struct scan *s, uint64_t addr)
{
    if (!s->nspans)
        return NULL;
    const struct span *guess = &s->spans[s->last_span];
    if (addr >= guess->lo && addr < guess->hi)
        return guess;
    size_t k = FIRST_ABOVE(s->nspans, s->spans[i].hi, addr);
    if (k == s->nspans || addr < s->spans[k].lo)
        return NULL;
    s->last_span = k;
    return &s->spans[k];
}

/* The span a work item's slot lies in. */
static const struct span *span_of_slot(const struct scan *s, uint32_t slot)
{
    /* (slots are only made from spans' chunks: one holds it) */
    return &s->spans[FIRST_ABOVE(s->nspans, (s->spans[i].word0 + s->spans[i].nwords) << 6, slot)];
}

/* The last big chunk whose header is at or below addr, or NULL. */
static const struct big_chunk *big_chunk_at(const struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->nbig, s->big[i].header, addr);
    return k ? &s->big[k - 1] : NULL;
}

/* The granule of the chunk of sp whose user area holds addr; false if
 * addr lies in a header's size field (in no user area) or before the first
 * chunk's. A header at or before addr's granule less one is searched in
 * two bitmap words; if it lies further back, that chunk spans more than
 * 64 granules, a big chunk, and the list of those knows it. */
static bool chunk_holding(const struct scan *s, const struct span *sp, uint64_t addr, uint64_t *granule)
{
    if (addr < sp->lo + CHUNK_HDR || addr >= sp->hi)
        return false;
    const struct span_word *words = s->pool + sp->word0;
    uint64_t ga = (addr - sp->lo) >> 4;
    if ((addr & 8) && (words[ga >> 6].starts >> (ga & 63) & 1))
        return false;   /* the second word of a header: its size */
    uint64_t last = ga - 1;   /* (a header in ga itself: addr is the previous chunk's last 8 bytes) */
    size_t w = (size_t)(last >> 6);
    uint64_t bits = words[w].starts & (~0ull >> (63 - (last & 63)));
    if (!bits && w > 0)
        bits = words[--w].starts;
    if (bits) {
        *granule = ((uint64_t)w << 6) + 63 - (uint64_t)__builtin_clzll(bits);
        return true;
    }
    const struct big_chunk *b = big_chunk_at(s, addr - CHUNK_HDR);
    if (!b || b->header < sp->lo || addr >= b->end)
        return false;
    *granule = (b->header - sp->lo) >> 4;
    return true;
}

/* The end of the user area of sp's chunk at granule g: 8 bytes past the
 * next header (searched in two words, or a big chunk's own), or the walk's
 * end for the last chunk. */
static uint64_t chunk_end(const struct scan *s, const struct span *sp, uint64_t g)
{
    const struct span_word *words = s->pool + sp->word0;
    size_t w = (size_t)(g >> 6);
    uint64_t bits = (g & 63) == 63 ? 0 : words[w].starts & (~0ull << ((g & 63) + 1));
    if (!bits && w + 1 < sp->nwords)
        bits = words[++w].starts;
    if (bits) {
        uint64_t end = sp->lo + ((((uint64_t)w << 6) + (uint64_t)__builtin_ctzll(bits)) << 4) + 8;
        return end < sp->hi ? end : sp->hi;
    }
    const struct big_chunk *b = big_chunk_at(s, sp->lo + (g << 4));
    return b && b->header == sp->lo + (g << 4) ? b->end : sp->hi;
}

/* The extent holding addr, or SIZE_MAX. */
static size_t extent_of(const struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->next, s->ext[i].end, addr);
    return k < s->next && s->ext[k].start <= addr ? k : SIZE_MAX;
}

/* The block around addr: -1 none, else whether it is marked. */
static int block_around(struct scan *s, uint64_t addr, struct block_ref *ref)
{
    *ref = (struct block_ref){ 0, 0, false };
    const struct span *sp = span_of(s, addr);
    if (sp) {
        uint64_t g;
        if (!chunk_holding(s, sp, addr, &g))
            return -1;
        ref->start = sp->lo + (g << 4) + CHUNK_HDR;   /* what malloc returned */
        ref->end = chunk_end(s, sp, g);
        return (int)(s->pool[sp->word0 + (g >> 6)].marked >> (g & 63) & 1);
    }
    size_t e = extent_of(s, addr);
    if (e == SIZE_MAX)
        return -1;
    *ref = (struct block_ref){ s->ext[e].start, s->ext[e].end, s->ext[e].thread != NO_THREAD };
    return s->ext[e].marked;
}

/* ---- marking ---- */

static void push_work(struct scan *s, uint32_t item)
{
    if (s->nwork == s->capwork &&
        !reserve_mapped((void **)&s->work, &s->capwork, s->nwork + 1, sizeof *s->work, 65536)) {
        s->incomplete = true;   /* a marked block left unscanned: this scan proves nothing */
        return;
    }
    s->work[s->nwork++] = item;
}

static void mark_extent(struct scan *s, size_t e)
{
    if (e == SIZE_MAX || s->ext[e].marked)
        return;
    s->ext[e].marked = true;
    push_work(s, EXTENT_ITEM | (uint32_t)e);
}

/* Mark the block v points into, if any. A chunk is worked on later only if
 * it has pointers or was not recorded; most heap blocks hold data, and
 * marking them is one bit. */
static void mark_address(struct scan *s, uint64_t v)
{
    const struct span *sp = span_of(s, v);
    if (!sp) {
        mark_extent(s, extent_of(s, v));
        return;
    }
    uint64_t g;
    if (!chunk_holding(s, sp, v, &g))
        return;
    struct span_word *word = &s->pool[sp->word0 + (g >> 6)];
    uint64_t bit = 1ull << (g & 63);
    if (word->marked & bit)
        return;
    word->marked |= bit;
    if ((word->listed & bit) || g >= sp->unrecorded_from)
        push_work(s, (uint32_t)((sp->word0 << 6) + g));
}

/* One word that may be a pointer: cheap range and filter tests first. */
static inline void consider(struct scan *s, uint64_t v)
{
    if (v >= s->lb && v < s->hb && may_point_into_a_block(s, v))
        mark_address(s, v);
}

static void scan_values(struct scan *s, const uint64_t *v, size_t n)
{
    for (size_t k = 0; k < n; k++)
        consider(s, v[k]);
}

/* Words copied from the program's memory (any alignment of the buffer). */
static void scan_words(struct scan *s, const unsigned char *p, size_t len)
{
    s->bytes_scanned += len;
    for (size_t off = 0; off + 8 <= len; off += 8) {
        uint64_t v;
        memcpy(&v, p + off, 8);
        consider(s, v);
    }
}

/* Scan [lo, hi) of the program's memory in bounded reads; an unreadable
 * stretch is skipped (it cannot hold anything we could read either). */
static void scan_range(struct scan *s, uint64_t lo, uint64_t hi)
{
    lo = (lo + 7) & ~7ull;
    while (lo < hi) {
        size_t len = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
        size_t got = read_remote(s->buf, lo, len);
        if (got)
            scan_words(s, s->buf, got);
        lo += got ? got : 4096;
        lo &= ~7ull;
    }
}

/* Where chunk g's entry starts in edges[]: after the entries of the listed
 * chunks before it in its word. */
static size_t entry_of(const struct scan *s, const struct span *sp, uint64_t g)
{
    const struct span_word *word = &s->pool[sp->word0 + (g >> 6)];
    size_t pos = word->entry_at;
    for (uint64_t before = word->listed & ((1ull << (g & 63)) - 1); before; before &= before - 1)
        pos += 1 + (s->edges[pos] == READ_ME ? 0 : (size_t)s->edges[pos]);
    return pos;
}

struct stretch {
    uint64_t start, end;
};

static int compare_stretch(const void *a, const void *b)
{
    uint64_t x = ((const struct stretch *)a)->start, y = ((const struct stretch *)b)->start;
    return (x > y) - (x < y);
}

/* A work item: a chunk whose pointers were recorded is marked from there
 * and done (false); otherwise the memory to read for it. */
static bool needs_reading(struct scan *s, uint32_t item, struct stretch *r)
{
    if (item & EXTENT_ITEM) {
        const struct extent *e = &s->ext[item & ~EXTENT_ITEM];
        *r = (struct stretch){ e->start, e->end };
        return true;
    }
    const struct span *sp = span_of_slot(s, item);
    uint64_t g = item - (sp->word0 << 6);
    if (g < sp->unrecorded_from) {
        size_t pos = entry_of(s, sp, g);
        if (s->edges[pos] != READ_ME) {
            scan_values(s, s->edges + pos + 1, (size_t)s->edges[pos]);
            return false;
        }
    }
    *r = (struct stretch){ sp->lo + (g << 4) + CHUNK_HDR, chunk_end(s, sp, g) };
    return true;
}

/* Take up to BATCH_IOVECS stretches to read (a big one alone), in address
 * order. */
static size_t take_batch(struct scan *s, struct stretch *batch)
{
    size_t n = 0, total = 0;
    while (s->nwork && n < BATCH_IOVECS) {
        uint32_t item = s->work[--s->nwork];   /* (taken first: marking pushes more) */
        struct stretch r;
        if (!needs_reading(s, item, &r))
            continue;
        size_t len = r.end - r.start;
        if (len > READ_CHUNK / 4) {   /* a big block goes alone, in chunks */
            if (n) {
                s->work[s->nwork++] = item;   /* (its slot is still there) */
                break;
            }
            scan_range(s, r.start, r.end);
            continue;
        }
        if (total + len > READ_CHUNK / 2) {
            s->work[s->nwork++] = item;
            break;
        }
        batch[n++] = r;
        total += len;
    }
    /* marks made while scanning an array come off the stack descending:
     * reversing is enough then */
    bool descending = true;
    for (size_t k = 1; k < n && descending; k++)
        descending = batch[k].start < batch[k - 1].start;
    if (descending) {
        for (size_t k = 0; k < n / 2; k++) {
            struct stretch t = batch[k];
            batch[k] = batch[n - 1 - k];
            batch[n - 1 - k] = t;
        }
    } else {
        qsort(batch, n, sizeof *batch, compare_stretch);
    }
    return n;
}

/* Scan marked blocks, many per process_vm_readv: neighbours (a gap of at
 * most 256 bytes) are read as one stretch, so a dense heap is read in
 * large pieces. */
static void drain_worklist(struct scan *s)
{
    struct stretch batch[BATCH_IOVECS];
    size_t local_off[BATCH_IOVECS];
    struct iovec remote[BATCH_IOVECS];
    while (s->nwork) {
        size_t n = take_batch(s, batch);
        if (!n)
            continue;
        size_t nio = 0, total = 0;
        for (size_t k = 0; k < n; k++) {
            uint64_t st = batch[k].start, en = batch[k].end;
            struct iovec *last = nio ? &remote[nio - 1] : NULL;
            uint64_t last_end = last ? (uint64_t)(uintptr_t)last->iov_base + last->iov_len : 0;
            if (last && st >= last_end && st - last_end <= 256 && total + (en - last_end) <= READ_CHUNK) {
                total += en - last_end;
                last->iov_len += en - last_end;
            } else {
                remote[nio++] = (struct iovec){ (void *)(uintptr_t)st, en - st };
                total += en - st;
            }
            local_off[k] = total - (en - st);
        }
        struct iovec local = { s->buf, total };
        long got = lw_raw_syscall6(SYS_process_vm_readv, self_pid, (long)&local, 1, (long)remote, (long)nio, 0);
        size_t k = 0;
        for (; k < n; k++) {
            size_t len = batch[k].end - batch[k].start;
            if (got < 0 || local_off[k] + len > (size_t)got)
                break;
            scan_words(s, s->buf + local_off[k], len);
        }
        for (; k < n; k++)   /* after a fault: the rest one by one (the buffer is free now) */
            scan_range(s, batch[k].start, batch[k].end);
    }
}

/* ---- the scan ---- */

static int compare_extent(const void *a, const void *b)
{
    uint64_t x = ((const struct extent *)a)->start, y = ((const struct extent *)b)->start;
    return (x > y) - (x < y);
}

/* Extents by address (the mmapped chunks come in order, the stacks after
 * them); each parked thread learns its stack's. */
static void sort_extents(struct scan *s, struct thread_info *ti)
{
    qsort(s->ext, s->next, sizeof *s->ext, compare_extent);
    for (size_t k = 0; k < s->next; k++)
        if (s->ext[k].thread != NO_THREAD)
            ti[s->ext[k].thread].ext = k;
}

static bool is_memory_wait(const struct lw_snap_wait *w)
{
    switch (w->kind) {
    case LW_WAIT_COND: case LW_WAIT_SEM: case LW_WAIT_BARRIER:
        return true;
    case LW_WAIT_FUTEX: case LW_WAIT_MUTEX: case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE:
        return w->owner <= 0;   /* an owner is rule 1's business */
    case LW_WAIT_SYSCALL:
        return w->syscall_nr == 202 && w->object;
    default:
        return false;
    }
}

bool lw_reach_is_candidate(const struct lw_snapshot *snap, size_t i, const struct lw_thread_verdict *v)
{
    const struct lw_snap_thread *t = &snap->threads[i];
    const struct lw_snap_wait *w = &t->wait;
    return v->verdict == LW_WAITING && t->waiting && w->seconds * 1000 >= snap->settle_ms && !w->timed &&
           !w->shared && w->object && is_memory_wait(w);
}

/* Results kept from one scan to the next, for the two-scan rule. */
struct sighting {
    int32_t tid;
    uint64_t object;
    uint64_t wait_start;      /* the wait's start: the same wait, unchanged, has the same */
    uint64_t first_ns;        /* first scan that found it unreachable */
    uint32_t scans;
};
static struct sighting sightings[MAX_CONFIRM];
static size_t nsightings;
static bool recheck_wanted;

bool lw_reach_wants_recheck(void) { return recheck_wanted; }

static struct sighting *find_sighting(int32_t tid, uint64_t object, uint64_t wait_start_ns)
{
    for (size_t i = 0; i < nsightings; i++)
        if (sightings[i].tid == tid && sightings[i].object == object &&
            sightings[i].wait_start == wait_start_ns)
            return &sightings[i];
    return NULL;
}

static void gather_threads(const struct lw_snapshot *snap, const struct lw_analysis *a,
                           struct thread_info *ti)
{
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct lw_snap_thread *t = &snap->threads[i];
        enum lw_verdict v = a->verdicts[i].verdict;
        ti[i] = (struct thread_info){ .tid = t->tid, .tp = t->pthread, .ext = SIZE_MAX, .reachable = -1 };
        ti[i].candidate = lw_reach_is_candidate(snap, i, &a->verdicts[i]);
        ti[i].excluded = ti[i].candidate || v == LW_LEAKED || v == LW_DEADLOCKED;
        ti[i].object = t->wait.object;
        if (t->waiting)
            ti[i].sp = saved_registers(t->tid, ti[i].args);
    }
}

/* Live threads' stacks (whole: TLS and TCB included) are roots; excluded
 * threads' stack parts become extents (blocks), and the rest of their mapping
 * (TLS, TCB) is neither. */
static void place_stacks(struct scan *s, struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ti[i].excluded) {
            /* A live parked thread: its stack below the saved stack pointer
             * (and the red zone) is dead, and stale pointers there prove
             * nothing. */
            struct mapping *m = ti[i].sp ? mapping_at(s, ti[i].sp) : NULL;
            if (m && m->kind == MAP_ROOT && ti[i].sp - 128 > m->lo)
                skip_range(s, m->lo, (ti[i].sp - 128) & ~7ull);
            continue;
        }
        uint64_t lo, hi;
        stack_part(s, &ti[i], &lo, &hi);
        struct mapping *m = lo ? mapping_at(s, lo) : NULL;
        if (!m || m->kind != MAP_ROOT || hi <= lo) {
            ti[i].excluded = ti[i].candidate = false;   /* no stack found: keep it a root */
            continue;
        }
        uint64_t mlo = m->lo, mhi = m->hi;
        skip_range(s, mlo, mhi);
        if (!add_extent(s, lo, hi, (uint32_t)i))
            s->incomplete = true;   /* neither a root nor a block: no proof */
    }
}

/* The stacks of threads that have exited: glibc keeps them mapped in its
 * stack cache, full of stale pointers (the frames a request thread ran
 * before it gave up), for a thread it may start later. Below the TCB that
 * memory is dead and no root; the TCB itself stays one (an unjoined
 * thread's return value lives there). A stack counts as glibc's and dead
 * only if: it held an exited thread's TCB near its top, a guard page lies
 * right below it, and no live thread has its TCB or stack pointer in it
 * (a cached stack handed to a new thread is that thread's again). With a
 * live thread whose TCB we do not know, nothing is skipped. */
#define TCB_NEAR_TOP (256u << 10)

static bool stack_in_use(const struct thread_info *ti, size_t n, const struct mapping *m)
{
    for (size_t i = 0; i < n; i++)
        if ((ti[i].tp >= m->lo && ti[i].tp < m->hi) || (ti[i].sp >= m->lo && ti[i].sp < m->hi))
            return true;
    return false;
}

static void skip_dead_stacks(struct scan *s, const struct lw_snapshot *snap, const struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ti[i].tp)
            return;
    for (size_t k = 0; k < snap->nexited && snap->exited_pthreads; k++) {
        uint64_t tcb = snap->exited_pthreads[k];
        struct mapping *m = tcb ? mapping_at(s, tcb) : NULL;
        if (!m || m->kind != MAP_ROOT || m->shared || m->hi - tcb > TCB_NEAR_TOP || m == s->maps)
            continue;
        const struct mapping *below = m - 1;
        if (below->hi != m->lo || below->readable || below->writable || stack_in_use(ti, n, m))
            continue;
        skip_range(s, m->lo, tcb & ~7ull);
    }
}

/* Roots we refuse to read: a sanitizer's shadow memory or a huge sparse
 * reservation would take for ever and fill page tables with zero pages.
 * A scan that skips a root proves nothing (see lw_reach_scan). */
#define MAX_ROOT_MAPPING (4ull << 30)
#define MAX_ROOT_TOTAL (16ull << 30)

static bool roots_too_large(struct scan *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->nmaps; i++) {
        const struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT)
            continue;
        total += m->hi - m->lo;
        if (m->hi - m->lo > MAX_ROOT_MAPPING || total > MAX_ROOT_TOTAL) {
            snprintf(s->problem, sizeof s->problem, "a %llu MiB mapping at 0x%llx is too large to scan: no proof",
                     (unsigned long long)((m->hi - m->lo) >> 20), (unsigned long long)m->lo);
            return true;
        }
    }
    return false;
}

/* Where blocks can be: [lb, hb). */
static void block_bounds(struct scan *s)
{
    s->lb = UINT64_MAX;
    s->hb = 0;
    if (s->nspans) {
        s->lb = s->spans[0].lo;
        s->hb = s->spans[s->nspans - 1].hi;
    }
    if (s->next) {
        s->lb = s->ext[0].start < s->lb ? s->ext[0].start : s->lb;
        s->hb = s->ext[s->next - 1].end > s->hb ? s->ext[s->next - 1].end : s->hb;
    }
}

/* Mark from the roots, then let every candidate whose object is reachable
 * add its stack, until nothing changes. */
static void mark_to_fixpoint(struct scan *s, struct thread_info *ti, size_t n)
{
    block_bounds(s);
    for (size_t i = 0; i < s->nmaps; i++)   /* the roots */
        if (s->maps[i].kind == MAP_ROOT)
            scan_range(s, s->maps[i].lo, s->maps[i].hi);
    for (size_t i = 0; i < n; i++)   /* the argument registers of live parked threads are roots too */
        if (!ti[i].excluded && ti[i].sp)
            scan_values(s, ti[i].args, 6);
    drain_worklist(s);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (!ti[i].candidate || ti[i].reachable == 1)
                continue;
            /* Outside every block (a global, a live stack, memory we do not
             * understand): reachable, conservatively. */
            if (block_around(s, ti[i].object, &ti[i].object_in) == 0)
                continue;
            ti[i].reachable = 1;
            changed = true;
            mark_extent(s, ti[i].ext);   /* it may wake: its stack counts now */
        }
        drain_worklist(s);
    }
    for (size_t i = 0; i < n; i++)
        if (ti[i].candidate && ti[i].reachable != 1)
            ti[i].reachable = 0;
}

/* ---- the scan's arrays outlive it by a few seconds ----
 * Scans come in pairs (the two-scan rule) or once a second while someone
 * watches; mapping the bitmaps (3% of the heap) and the recorded pointers
 * afresh each time costs a page fault per 4 KiB. So they (KEPT_ARRAYS) are
 * kept for the next scan
 * and unmapped by the server's tick once SPARE_NS has passed without one
 * (or longer than a scan answers for, below: the next scan finds them). */
#define SPARE_NS 3000000000ull

static uint64_t remembered_took_ns;   /* how long the last real scan took */

static struct scan spare;   /* only the block and edge arrays, with their capacities */
static uint64_t spare_since_ns;

static void release_arrays(struct scan *s)
{
#define RELEASE(p, cap) free_mapped(s->p, s->cap, sizeof *s->p), s->p = NULL, s->cap = 0;
    KEPT_ARRAYS(RELEASE)
#undef RELEASE
}

static void move_arrays(struct scan *to, struct scan *from)
{
#define MOVE(p, cap) to->p = from->p, to->cap = from->cap, from->p = NULL, from->cap = 0;
    KEPT_ARRAYS(MOVE)
#undef MOVE
}

void lw_reach_release_idle(void)
{
    uint64_t keep = 4 * remembered_took_ns + 1000000000ull > SPARE_NS ? 4 * remembered_took_ns + 1000000000ull
                                                                       : SPARE_NS;
    if (spare.cappool && lw_now_ns() - spare_since_ns >= keep)
        release_arrays(&spare);
}

static void free_scan(struct scan *s)
{
    release_arrays(&spare);
    move_arrays(&spare, s);
    spare_since_ns = lw_now_ns();
    if (s->filter)
        munmap(s->filter, FILTER_BITS / 8);
    free_mapped(s->maps, s->capmaps, sizeof *s->maps);
    if (s->buf)
        munmap(s->buf, READ_CHUNK);
}

/* Record this scan's findings in the snapshot, with the two-scan rule. */
static void record_results(struct lw_snapshot *snap, const struct thread_info *ti)
{
    static struct sighting next[MAX_CONFIRM];
    size_t nnext = 0;
    uint64_t now = lw_now_ns();
    recheck_wanted = false;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!ti[i].candidate)
            continue;
        struct lw_snap_wait *w = &snap->threads[i].wait;
        uint64_t key = w->start_ns;   /* the wait's own start: unchanged wait, same key */
        if (ti[i].reachable) {
            w->reach = LW_REACH_REACHABLE;
            continue;
        }
        w->reach = LW_REACH_UNREACHABLE;
        if (ti[i].object_in.start && !ti[i].object_in.stack) {
            w->reach_block = ti[i].object_in.start;   /* what malloc returned */
            w->reach_block_size = ti[i].object_in.end - ti[i].object_in.start;
        }
        struct sighting *seen = find_sighting(ti[i].tid, w->object, key);
        struct sighting cur = seen ? *seen : (struct sighting){ ti[i].tid, w->object, key, now, 0 };
        cur.scans++;
        w->unreachable_for = (double)(now - cur.first_ns) / 1e9;
        if (cur.scans >= 2 && now - cur.first_ns >= CONFIRM_NS)
            w->reach = LW_REACH_CONFIRMED;
        else
            recheck_wanted = true;
        if (nnext < MAX_CONFIRM)
            next[nnext++] = cur;
    }
    memcpy(sightings, next, nnext * sizeof *next);
    nsightings = nnext;
}

/* ---- a recent scan answers for a while ----
 * Every report wants the scan's findings, and a busy client (or a hundred)
 * may ask many times a second: a scan younger than REUSE_NS (or four times
 * its own duration: a scan of a huge heap competes with the program for
 * memory bandwidth, so it runs at most a fifth of the time) answers for the
 * same candidate waits (same thread, object and wait start) without reading
 * the program again. A new candidate means a new scan, and so does an
 * unconfirmed finding once a second has passed (the exit report and the
 * tick's recheck want the confirming scan then, not four durations later).
 * The two-scan rule counts only real scans, at least a second apart. */
#define REUSE_NS 500000000ull

struct remembered {
    int32_t tid;
    uint64_t object, start_ns;
    enum lw_reach reach;
    uint64_t block, block_size;
    double unreachable_for;
};

static struct remembered remembered[MAX_CONFIRM];
static size_t nremembered;
static uint64_t remembered_ns;
static char remembered_note[sizeof ((struct lw_snapshot *)0)->reach_note];

static const struct remembered *find_remembered(const struct lw_snap_thread *t)
{
    for (size_t k = 0; k < nremembered; k++)
        if (remembered[k].tid == t->tid && remembered[k].object == t->wait.object &&
            remembered[k].start_ns == t->wait.start_ns)
            return &remembered[k];
    return NULL;
}

static void remember_scan(const struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t started, uint64_t now)
{
    nremembered = 0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
            continue;
        if (nremembered == MAX_CONFIRM) {
            nremembered = 0;   /* too many to look up: scan every time */
            return;
        }
        const struct lw_snap_thread *t = &snap->threads[i];
        remembered[nremembered++] = (struct remembered){ t->tid, t->wait.object, t->wait.start_ns, t->wait.reach,
                                                         t->wait.reach_block, t->wait.reach_block_size,
                                                         t->wait.unreachable_for };
    }
    remembered_ns = now;
    remembered_took_ns = now - started;
    snprintf(remembered_note, sizeof remembered_note, "%s", snap->reach_note);
}

/* Answer from the last scan if it is recent and knew every candidate. */
static bool answer_from_last_scan(struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t now)
{
    uint64_t reuse = 4 * remembered_took_ns > REUSE_NS ? 4 * remembered_took_ns : REUSE_NS;
    if (!nremembered || now - remembered_ns >= reuse)
        return false;
    if (recheck_wanted && now - remembered_ns >= CONFIRM_NS)
        return false;   /* a finding waits for the scan that may confirm it: that one is due */
    for (size_t i = 0; i < snap->nthreads; i++)
        if (lw_reach_is_candidate(snap, i, &a->verdicts[i]) && !find_remembered(&snap->threads[i]))
            return false;
    double age = (double)(now - remembered_ns) / 1e9;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
            continue;
        const struct remembered *r = find_remembered(&snap->threads[i]);
        struct lw_snap_wait *w = &snap->threads[i].wait;
        w->reach = r->reach;
        w->reach_block = r->block;
        w->reach_block_size = r->block_size;
        w->unreachable_for = r->reach == LW_REACH_REACHABLE ? 0 : r->unreachable_for + age;
    }
    int len = snprintf(snap->reach_note, sizeof snap->reach_note, "%.250s", remembered_note);
    snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, " (the scan of %.0f ms ago)", age * 1e3);
    return true;
}

int lw_reach_scan(struct lw_snapshot *snap, const struct lw_analysis *a)
{
    size_t n = snap->nthreads, candidates = 0;
    for (size_t i = 0; i < n; i++)
        candidates += lw_reach_is_candidate(snap, i, &a->verdicts[i]);
    nremembered = candidates ? nremembered : 0;
    if (!candidates) {
        nsightings = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: no candidate waits, no scan");
        return 0;
    }
    uint64_t t0 = lw_now_ns(), cpu0 = lw_thread_cpu_ns();
    if (answer_from_last_scan(snap, a, t0))
        return 0;
    self_pid = getpid();
    struct scan s;
    memset(&s, 0, sizeof s);
    move_arrays(&s, &spare);
    struct thread_info *ti = calloc(n, sizeof *ti);
    s.buf = mmap(NULL, READ_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.buf == MAP_FAILED)
        s.buf = NULL;
    if (!ti || !s.buf || !parse_maps(&s)) {
        free(ti);
        free_scan(&s);
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: no scan (out of memory or no /proc)");
        return -1;
    }
    skip_own_memory(&s);
    if (!filter_alloc(&s)) {
        free(ti);
        free_scan(&s);
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: no scan (out of memory)");
        return -1;
    }
    s.recording = true;
    filter_fill(&s);
    find_heaps(&s);
    gather_threads(snap, a, ti);
    place_stacks(&s, ti, n);
    skip_dead_stacks(&s, snap, ti, n);
    if (roots_too_large(&s)) {
        /* Not reading everything would make "unreachable" unsound: no scan. */
        nsightings = nremembered = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: %zu candidate wait%s, no scan: %s",
                 candidates, candidates == 1 ? "" : "s", s.problem);
        free(ti);
        free_scan(&s);
        return 0;
    }
    sort_extents(&s, ti);
    mark_to_fixpoint(&s, ti, n);
    if (s.incomplete) {
        nsightings = nremembered = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note,
                 "reachability: %zu candidate wait%s, no proof: out of memory while marking", candidates,
                 candidates == 1 ? "" : "s");
        free(ti);
        free_scan(&s);
        return 0;
    }
    record_results(snap, ti);
    snprintf(snap->reach_note, sizeof snap->reach_note,
             "reachability: %zu candidate wait%s, %.1f MiB scanned in %.1f ms (%.1f ms of CPU)%s%s", candidates,
             candidates == 1 ? "" : "s", (double)s.bytes_scanned / (1 << 20), (double)(lw_now_ns() - t0) / 1e6,
             (double)(lw_thread_cpu_ns() - cpu0) / 1e6,
             s.problem[0] ? "; " : "", s.problem);
    remember_scan(snap, a, t0, lw_now_ns());
    free(ti);
    free_scan(&s);
    return 0;
}

/* The whole judgement: rules 1, 2 and 4, then the scan for what they left
 * undecided, then the analysis again with its findings (rule 3). */
int lw_analyze_with_reach(struct lw_snapshot *snap, struct lw_analysis *a)
{
    if (lw_analyze(snap, a) != 0)
        return -1;
    size_t candidates = 0;
    for (size_t i = 0; i < snap->nthreads; i++)
        candidates += lw_reach_is_candidate(snap, i, &a->verdicts[i]);
    if (lw_reach_scan(snap, a) != 0 || !candidates)
        return 0;
    lw_analysis_free(a);
    return lw_analyze(snap, a);
}
