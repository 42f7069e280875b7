/*
 * scan.h — the reachability scan's shared state (internal to the preload):
 * the mappings it reads, the blocks it knows (a walked heap's chunks as
 * bitmaps, every other block as an extent), and the lookups the mark runs
 * for every pointer-like word, inline here because they are its hot path.
 *
 *   heapwalk.c   glibc's heaps as blocks: the walk, the recorded pointers,
 *                which chunks malloc holds free
 *   scanthreads.c  the threads: roots or blocks, owner chains, dead stacks
 *   reach.c      the scan: roots, threads, the mark, the two-scan rule
 *   reachpath.c  why a reachable object is: its path from a root
 */
#ifndef LW_SCAN_H
#define LW_SCAN_H

#include "base/ownalloc.h"
#include "core/glibc_malloc.h"
#include "core/glibc_thread.h"
#include "core/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_MAX_SIZE (64ull << 20)   /* glibc's per-thread heap alignment on 64-bit */
#define CHUNK_HDR LW_CHUNK_HDR
#define MIN_CHUNK 32u
#define SIZE_BITS LW_CHUNK_SIZE_BITS
#define IS_MMAPPED LW_IS_MMAPPED
#define PREV_INUSE LW_PREV_INUSE
#define READ_CHUNK (1u << 20)         /* bytes per process_vm_readv */
#define BATCH_IOVECS 512
#define MAX_EDGES (1u << 24)          /* 128 MiB of recorded pointers at most; beyond, chunks are read twice */
#define BIG_CHUNK 1024u               /* chunks this large are listed too (see chunk_holding) */
#define READ_ME UINT64_MAX            /* an edges[] entry: this chunk was not recorded, read it */
#define EXTENT_ITEM 0x80000000u       /* a work item naming an extent, not a chunk */
#define NO_THREAD UINT32_MAX
#define FILTER_SHIFT 21               /* the filter's granule: 2 MiB */
#define FILTER_BITS (1ull << (47 - FILTER_SHIFT))

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
 * So is each chunk of a GLib slab (glib_slice.h): those lie inside a span,
 * in the slab's malloc chunk, which is marked free (no block itself) so
 * that a pointer into it is looked up among the extents.
 *
 * The worklist holds 32-bit items: a chunk's slot (its span's first word
 * times 64, plus its granule), or EXTENT_ITEM plus an extent's index. */
struct span_word {
    uint64_t starts;         /* bit k: a chunk header at granule k */
    uint64_t marked;         /* bit k: that chunk is marked */
    uint64_t listed;         /* bit k: that chunk has an entry in edges[] */
    uint64_t freed;          /* bit k: that chunk is free (malloc's, not the program's): no block */
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

/* What an extent is. A parked thread that is not a root is three: its
 * stack part (its frames), its static TLS (its thread-locals) and its
 * descriptor (glibc's struct pthread: thread-specific data, its DTV).
 * A pointer into the TLS reaches the thread-locals only; a thread that may
 * run again (its stack marked) reaches all three; its descriptor is
 * reached only through its pthread_t, the exact address (glibc's own
 * lists point inside it), and only as a way to cancel the thread. */
enum extent_kind { EXT_CHUNK, EXT_STACK, EXT_TLS, EXT_TCB, EXT_SLICE };

struct extent {
    uint64_t start, end;
    uint32_t thread;         /* the thread whose part this is, or NO_THREAD (an mmapped chunk) */
    uint8_t kind;            /* enum extent_kind */
    bool marked;
};

/* A block found: what record_results says about a candidate's object. */
struct block_ref {
    uint64_t start, end;     /* 0, 0: in no block */
    uint8_t kind;            /* enum extent_kind (EXT_CHUNK for a heap chunk) */
    uint32_t thread;         /* whose part, for a thread's */
};

/* A thread of the snapshot, as the scan sees it. */
struct thread_info {
    int32_t tid;
    uint64_t sp;              /* saved stack pointer (parked, or frozen), 0 if unknown */
    uint64_t regs[LW_REGS_MAX];   /* the registers the source shows (a parked thread's syscall arguments, */
    uint32_t nregs;           /* or every register of a frozen one) */
    uint64_t tp;              /* pthread_self(): the TCB, at the top of a pthread stack */
    bool candidate;           /* judged here */
    bool excluded;            /* not a root: a candidate, stuck by another rule, or waiting on one of those */
    bool cancellable;         /* parked in a cancellation point, cancellation enabled */
    bool in_recorded_wait;    /* inside a hooked wait: registers in memory, no red zone of the program's */
    bool may_run;             /* found able to run again: its parts are marked (roots now) */
    bool by_handle;           /* ...because a live pthread_t could cancel it */
    uint32_t run_order;       /* when it was found able to run (1, 2, ...: causes come first), 0 never */
    uint32_t depends_on;      /* the thread whose running would let it run (its owner edge), or NO_THREAD */
    uint32_t first_dependent, next_dependent;   /* the threads depending on it, as a list */
    size_t ext_stack, ext_tls, ext_tcb;         /* its parts' extents, or SIZE_MAX */
    uint64_t object;
    int reachable;            /* -1 unknown, 0 no, 1 yes (may run) */
    struct block_ref object_in;   /* the block holding its object */
};

struct scan {
    struct lw_source *src;   /* where the process is read (source.h) */
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
    /* malloc's own: what it holds is free, not the program's */
    uint64_t *tcaches;       /* chunks that may hold a thread's tcache (their headers) */
    size_t ntcaches, captcaches;
    uint64_t arenas[64];     /* thread arenas, from their heaps' heap_info */
    size_t narenas;
    uint64_t tcache_key;     /* glibc's tcache_key (learned before the walk), 0 if unknown */
    uint64_t main_top;       /* the main heap's last chunk (glibc's top), 0 if not walked */
    uint64_t last_top;       /* the last chunk of the last span walked */
    size_t freed_chunks;     /* how many chunks malloc holds free (top, bins, tcache, fastbins) */
    size_t slices;           /* GLib slice chunks made extents (glib_slice.h) */
    size_t registers_unseen; /* live threads whose registers may hold pointers unseen: the scan proves nothing */
    int32_t unseen_tid;      /* the first of them */
    /* the threads, for the parts of a parked thread (see struct extent) */
    struct thread_info *threads;
    size_t nthreads;
    uint32_t *runnable;      /* threads found able to run whose dependents are still to wake */
    size_t nrunnable;
    uint32_t run_orders;     /* the last run_order given */
    uint64_t claimed[32][2]; /* our own mappings made after the mappings were read (scan_claim) */
    size_t nclaimed;
    /* the scanning process's own heap blocks (the preload's: base/ownalloc.h),
     * set by the source; none of them is a block of the program's */
    const struct lw_own_block *own;
    size_t nown;
};

/* The mapped arrays a scan leaves to the next one (reach.c, release_idle):
 * every block's address is in them. */
#define SCAN_KEPT_ARRAYS(X) X(pool, cappool) X(edges, capedges) X(big, capbig) X(ext, capext) X(spans, capspans) \
    X(work, capwork) X(tcaches, captcaches)

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

/* ---- finding the block around an address ---- */

static inline bool may_point_into_a_block(const struct scan *s, uint64_t v)
{
    uint64_t g = v >> FILTER_SHIFT;
    return g < FILTER_BITS && (s->filter[g >> 6] >> (g & 63) & 1);
}

/* The span holding addr, or NULL. Pointers come in runs into one heap: the
 * last span found is tried first. */
static inline const struct span *span_of(struct scan *s, uint64_t addr)
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
static inline const struct span *span_of_slot(const struct scan *s, uint32_t slot)
{
    /* (slots are only made from spans' chunks: one holds it) */
    return &s->spans[FIRST_ABOVE(s->nspans, (s->spans[i].word0 + s->spans[i].nwords) << 6, slot)];
}

/* The last big chunk whose header is at or below addr, or NULL. */
static inline const struct big_chunk *big_chunk_at(const struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->nbig, s->big[i].header, addr);
    return k ? &s->big[k - 1] : NULL;
}

/* The granule of the chunk of sp whose user area holds addr; false if
 * addr lies in a header's size field (in no user area) or before the first
 * chunk's. A header at or before addr's granule less one is searched in
 * two bitmap words; if it lies further back, that chunk spans more than
 * 64 granules, a big chunk, and the list of those knows it. */
static inline bool chunk_holding(const struct scan *s, const struct span *sp, uint64_t addr, uint64_t *granule)
{
    if (addr < sp->lo + CHUNK_HDR || addr >= sp->hi)
        return false;
    const struct span_word *words = s->pool + sp->word0;
    uint64_t ga = (addr - sp->lo) >> 4;
    if (words[ga >> 6].starts >> (ga & 63) & 1) {
        /* A header: its size word is no chunk's, and its very address is
         * how malloc itself names a chunk (top, bins, fastbins): glibc's
         * bookkeeping, no pointer of the program's. Bytes 1 to 7 past it
         * are the previous chunk's last ones. */
        if ((addr & 8) || (addr & 15) == 0)
            return false;
    }
    uint64_t last = ga - 1;   /* (a header in ga itself: addr is the previous chunk's last bytes) */
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
static inline uint64_t chunk_end(const struct scan *s, const struct span *sp, uint64_t g)
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
static inline size_t extent_of(const struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->next, s->ext[i].end, addr);
    return k < s->next && s->ext[k].start <= addr ? k : SIZE_MAX;
}

static inline bool chunk_is_free(const struct scan *s, const struct span *sp, uint64_t g)
{
    return s->pool[sp->word0 + (g >> 6)].freed >> (g & 63) & 1;
}

/* Where chunk g's entry starts in edges[]: after the entries of the listed
 * chunks before it in its word. */
static inline size_t entry_of(const struct scan *s, const struct span *sp, uint64_t g)
{
    const struct span_word *word = &s->pool[sp->word0 + (g >> 6)];
    size_t pos = word->entry_at;
    for (uint64_t before = word->listed & ((1ull << (g & 63)) - 1); before; before &= before - 1)
        pos += 1 + (s->edges[pos] == READ_ME ? 0 : (size_t)s->edges[pos]);
    return pos;
}

/* ---- shared by the scan's files ---- */

/* Read the program's memory through the source (never faults); bytes read. */
static inline size_t scan_read(const struct scan *s, void *dst, uint64_t addr, size_t len)
{
    return s->src->ops->read(s->src, dst, addr, len);
}

/* Many small ranges read with as few process_vm_readv as s->buf allows
 * (BATCH_IOVECS at a time: 10,000 threads' parts are not 10,000 reads).
 * `each` gets every range k in order with the bytes read from its start
 * (fewer than asked where a page could not be read; a range longer than
 * READ_CHUNK only its first READ_CHUNK). It must not use s->buf. */
typedef void scan_range_fn(void *ctx, size_t k, uint64_t addr, const uint8_t *bytes, size_t got);
void scan_read_ranges(struct scan *s, const struct iovec *ranges, size_t n, scan_range_fn *each, void *ctx);

/* The scan's own arrays live in mappings of their own, never in malloc's
 * arenas (the heaps being walked must not change because of us). Room for
 * `need` elements, doubling from `first`; false (unchanged) if no memory. */
bool scan_reserve(struct scan *s, void **p, size_t *cap, size_t need, size_t elem, size_t first);
/* Memory the scan mapped for itself after the mappings were read (it may
 * land where something was unmapped since): never read as a root. Roots are
 * read in the parts scan_next_unclaimed gives: for (at = lo;
 * scan_next_unclaimed(s, &at, hi, &a, &b);) read [a, b). */
void scan_claim(struct scan *s, const void *p, size_t bytes);
bool scan_next_unclaimed(const struct scan *s, uint64_t *at, uint64_t hi, uint64_t *part_lo, uint64_t *part_hi);
void scan_unmap(void *p, size_t cap, size_t elem);

/* scanmem.c: the mappings. scan_parse_maps takes them as the source listed
 * them (text, read by the caller before the scan mapped anything of its
 * own: no malloc) and frees text; scan_skip_range cuts [lo, hi) out of the
 * roots (ours, or blocks now), splitting a mapping cut in the middle. */
bool scan_parse_maps(struct scan *s, struct lw_maps *text);
struct mapping *scan_mapping_at(struct scan *s, uint64_t addr);
bool scan_reserve_maps(struct scan *s, size_t more);
void scan_skip_range(struct scan *s, uint64_t lo, uint64_t hi);
bool scan_add_extent(struct scan *s, uint64_t start, uint64_t end, uint32_t thread, enum extent_kind kind);

/* heapwalk.c: the pointer filter, the heaps walked into spans (a heap that
 * does not validate stays a root), and malloc's free chunks marked so. */
bool scan_filter_alloc(struct scan *s);
void scan_filter_fill(struct scan *s);
void scan_find_heaps(struct scan *s);
void scan_free_malloc_chunks(struct scan *s);
void scan_skip_own_mmapped(struct scan *s);
void scan_forget_own_blocks(struct scan *s);
void scan_split_gslice(struct scan *s);
int scan_block_around(struct scan *s, uint64_t addr, struct block_ref *ref);

/* scanthreads.c: the threads, their registers (from the source) and
 * which are roots; the owner chains among those excluded; their stacks
 * placed (roots, or three blocks each); glibc's cached stacks of exited
 * threads cut out of the roots. */
struct lw_snapshot;
struct lw_analysis;
void scan_gather_threads(struct scan *s, const struct lw_snapshot *snap, const struct lw_analysis *a,
                         struct thread_info *ti);
void scan_exclude_dependents(struct thread_info *ti, size_t n, uint32_t *path, unsigned char *state);
void scan_place_stacks(struct scan *s, struct thread_info *ti, size_t n);
void scan_skip_dead_stacks(struct scan *s, const struct lw_snapshot *snap, const struct thread_info *ti, size_t n);

/* reachpath.c: after the mark, each reachable candidate's path from a root
 * (snap->paths, wait.reach_path), within budget_ns. */
struct lw_snapshot;
void scan_find_paths(struct scan *s, struct lw_snapshot *snap, uint64_t budget_ns);

#endif
