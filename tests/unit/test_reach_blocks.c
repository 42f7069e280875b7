/*
 * test_reach_blocks.c — the reachability scan's block layer on a heap
 * built by hand: a buffer of this process laid out as glibc chunks (small,
 * big, one larger than the scan's read window), whose words are data or
 * pointers (interior, to headers' size fields, outside the heap). Checks,
 * against brute force over the chunk list the test made:
 *   - the walk accepts it, and rejects it with one header broken;
 *   - chunk_holding and chunk_end for every address around the heap (a
 *     header's own address and its size word are in no chunk);
 *   - which chunks are free: those before a chunk whose PREV_INUSE is
 *     clear, and the last one (the top): no entry, never marked;
 *   - each chunk's recorded entry (its pointer-like words, or READ_ME);
 *   - the mark from a few roots, through chunks and an extent, equals a
 *     breadth-first search of the pointer graph — with recording on, off,
 *     and running out mid-heap.
 * It includes reach.c to reach its static functions; the few preload
 * functions the block layer never calls are test doubles below.
 */
#include "../../preload/core/heapwalk.c"
#include "../../preload/core/reach.c"

#include "check.h"

/* ---- doubles for what reach.c links to but this test never runs ---- */
int lw_analyze(const struct lw_snapshot *snap, struct lw_analysis *a) { (void)snap; (void)a; return -1; }
void lw_analysis_free(struct lw_analysis *a) { (void)a; }

/* ---- the hand-built heap ---- */

#define MAX_CHUNKS 40000

struct chunk {
    uint64_t hdr, size;
};

static struct chunk chunks[MAX_CHUNKS];
static bool two_pointers[MAX_CHUNKS];   /* a chunk with two pointers: a root worth marking from */
static size_t nchunks;
static uint64_t heap_first, heap_limit;
static unsigned char *extent_mem;   /* an "mmapped chunk": an extent holding pointers */
#define EXTENT_BYTES 8192

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t user_end(size_t c) { return c + 1 < nchunks ? chunks[c + 1].hdr + 8 : heap_limit; }

/* Free in malloc's eyes: the next chunk's PREV_INUSE is clear, or it is
 * the last one (the top). */
static bool is_free(size_t c)
{
    return c + 1 == nchunks || !(((uint64_t *)(uintptr_t)chunks[c + 1].hdr)[1] & PREV_INUSE);
}

/* The chunk whose user area holds a, by brute force (binary search over the
 * list the test made), or SIZE_MAX; a header's own address is no chunk's. */
static size_t expected_chunk(uint64_t a)
{
    size_t lo = 0, hi = nchunks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (chunks[mid].hdr + CHUNK_HDR <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return SIZE_MAX;
    size_t c = lo - 1;
    if (c + 1 < nchunks && a == chunks[c + 1].hdr)
        return SIZE_MAX;
    return a < user_end(c) ? c : SIZE_MAX;
}

static uint64_t random_size(void)
{
    uint64_t r = next_random() % 100;
    if (r < 85)
        return 32 + 16 * (next_random() % 31);              /* 32 .. 512 */
    if (r < 97)
        return 512 + 16 * (next_random() % 225);            /* .. 4 KiB */
    return 4096 + 16 * (next_random() % 3841);              /* .. 64 KiB */
}

/* Lay the chunks out in [base + 64, ...): random sizes, one of them larger
 * than the read window, the last one ending the heap. */
static void lay_out(unsigned char *base, size_t bytes)
{
    nchunks = 0;
    heap_first = (uint64_t)(uintptr_t)base + 64;
    uint64_t at = heap_first, end = (uint64_t)(uintptr_t)base + bytes - 4096;
    bool huge_done = false;
    while (nchunks < MAX_CHUNKS - 1) {
        uint64_t size = random_size();
        if (!huge_done && at - heap_first > (1u << 20)) {
            size = READ_CHUNK + 4096;   /* recorded as READ_ME, read when marked */
            huge_done = true;
        }
        if (at + size + 64 > end)
            break;
        chunks[nchunks++] = (struct chunk){ at, size };
        at += size;
    }
    chunks[nchunks++] = (struct chunk){ at, 64 };   /* the "top" chunk */
    heap_limit = at + 64;
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t *h = (uint64_t *)(uintptr_t)chunks[c].hdr;
        h[1] = chunks[c].size | (next_random() & 1);    /* PREV_INUSE either way, never IS_MMAPPED */
    }
}

/* A pointer: into a random chunk (anywhere in its user area, or its size
 * field: no block), or just outside the heap. */
static uint64_t random_pointer(void)
{
    uint64_t r = next_random() % 100;
    size_t c = next_random() % nchunks;
    if (r < 90) {
        uint64_t lo = chunks[c].hdr + CHUNK_HDR, hi = user_end(c);
        return lo + next_random() % (hi - lo);
    }
    if (r < 97)
        return chunks[c].hdr + 8 + next_random() % 8;
    return next_random() & 1 ? heap_first - 8 : heap_limit + 8;
}

/* Data no filter passes in every user word (the headers' size fields
 * aside); then 0, 1 or 2 pointers per chunk, so that the graph has parts
 * the roots do not reach. */
static void fill_words(void)
{
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t lo = chunks[c].hdr + CHUNK_HDR, n = (user_end(c) - lo) / 8;
        for (uint64_t k = 0; k < n; k++)
            *(uint64_t *)(uintptr_t)(lo + 8 * k) = next_random() & 0xffffffffu;
        uint64_t r = next_random() % 10, pointers = r < 5 ? 0 : r < 8 ? 1 : 2;
        two_pointers[c] = pointers == 2;
        for (uint64_t k = 0; k < pointers; k++)
            *(uint64_t *)(uintptr_t)(lo + 8 * (next_random() % n)) = random_pointer();
    }
    for (size_t k = 0; k < EXTENT_BYTES / 8; k++)
        ((uint64_t *)extent_mem)[k] = k % 64 == 0 ? random_pointer() : next_random() & 0xffff;
}

static bool filtered(const struct scan *s, uint64_t v) { return may_point_into_a_block(s, v); }

/* ---- one scan's state over the heap ---- */

static void scan_open(struct scan *s, bool recording, size_t edges_used)
{
    static const struct lw_source_ops ops = { .read = lw_process_read, .read_many = lw_process_read_many };
    static struct lw_source self = { .ops = &ops, .self = true };
    memset(s, 0, sizeof *s);
    self.pid = getpid();
    s->src = &self;
    s->buf = mmap(NULL, READ_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(s->buf != MAP_FAILED && scan_filter_alloc(s), "mmap");
    filter_set(s, heap_first, heap_limit);
    filter_set(s, (uint64_t)(uintptr_t)extent_mem, (uint64_t)(uintptr_t)extent_mem + EXTENT_BYTES);
    s->recording = recording;
    if (edges_used) {   /* pretend edges[] is nearly full */
        CHECK(reserve_edges(s, edges_used), "reserve");
        s->nedges = edges_used;
    }
}

static void scan_close(struct scan *s)
{
    release_arrays(s);
    munmap(s->filter, FILTER_BITS / 8);
    munmap(s->buf, READ_CHUNK);
}

/* ---- the checks ---- */

static void check_lookups(struct scan *s)
{
    const struct span *sp = &s->spans[0];
    size_t wrong = 0;
    for (uint64_t a = heap_first - 64; a < heap_limit + 64; a += (next_random() & 1) ? 8 : 3) {
        size_t want = expected_chunk(a);
        uint64_t g;
        bool found = a >= sp->lo && a < sp->hi && chunk_holding(s, sp, a, &g);
        size_t got = found ? expected_chunk(sp->lo + (g << 4) + CHUNK_HDR) : SIZE_MAX;
        if (found && chunks[got].hdr != sp->lo + (g << 4))
            got = SIZE_MAX - 1;   /* a granule that is no header */
        if (got != want && wrong++ < 5)
            CHECK(false, "chunk_holding(%#llx): chunk %zu, want %zu", (unsigned long long)a, got, want);
    }
    CHECK(wrong == 0, "%zu addresses found in the wrong chunk", wrong);
    size_t bad_end = 0;
    for (size_t c = 0; c < nchunks; c++)
        bad_end += chunk_end(s, sp, (chunks[c].hdr - sp->lo) >> 4) != user_end(c);
    CHECK(bad_end == 0, "chunk_end wrong for %zu chunks", bad_end);
}

static void check_entries(struct scan *s)
{
    const struct span *sp = &s->spans[0];
    size_t wrong = 0;
    for (size_t c = 0; c < nchunks; c++) {
        uint64_t g = (chunks[c].hdr - sp->lo) >> 4;
        const struct span_word *w = &s->pool[sp->word0 + (g >> 6)];
        bool listed = w->listed >> (g & 63) & 1, freed = w->freed >> (g & 63) & 1;
        if (freed != is_free(c)) {
            wrong++;
            continue;
        }
        if (g >= sp->unrecorded_from || freed) {
            wrong += listed;
            continue;
        }
        size_t want = 0;
        for (uint64_t a = chunks[c].hdr + CHUNK_HDR; a + 8 <= user_end(c); a += 8)
            want += filtered(s, *(uint64_t *)(uintptr_t)a);
        bool huge = user_end(c) - chunks[c].hdr > READ_CHUNK;
        if (huge) {
            wrong += !listed || s->edges[entry_of(s, sp, g)] != READ_ME;
            continue;
        }
        if (listed != (want > 0)) {
            wrong++;
            continue;
        }
        if (!listed)
            continue;
        size_t pos = entry_of(s, sp, g), k = 0;
        wrong += s->edges[pos] != want;
        for (uint64_t a = chunks[c].hdr + CHUNK_HDR; a + 8 <= user_end(c) && k < want; a += 8)
            if (filtered(s, *(uint64_t *)(uintptr_t)a))
                wrong += s->edges[pos + 1 + k++] != *(uint64_t *)(uintptr_t)a;
    }
    CHECK(wrong == 0, "%zu chunks with a wrong entry", wrong);
}

/* Breadth-first over the pointer graph from the roots; returns how many
 * chunks are reachable and fills want[]. */
static size_t expected_marks(const size_t *roots, size_t nroots, bool via_extent, unsigned char *want)
{
    static size_t queue[MAX_CHUNKS];
    size_t head = 0, tail = 0, count = 0;
    memset(want, 0, nchunks);
    uint64_t lo_ext = (uint64_t)(uintptr_t)extent_mem;
    for (size_t k = 0; k < nroots + (via_extent ? EXTENT_BYTES / 8 : 0); k++) {
        size_t c = k < nroots ? roots[k] : expected_chunk(*(uint64_t *)(uintptr_t)(lo_ext + 8 * (k - nroots)));
        if (c != SIZE_MAX && !is_free(c) && !want[c]) {
            want[c] = 1;
            queue[tail++] = c;
        }
    }
    while (head < tail) {
        size_t c = queue[head++];
        count++;
        for (uint64_t a = chunks[c].hdr + CHUNK_HDR; a + 8 <= user_end(c); a += 8) {
            size_t d = expected_chunk(*(uint64_t *)(uintptr_t)a);
            if (d != SIZE_MAX && !is_free(d) && !want[d]) {
                want[d] = 1;
                queue[tail++] = d;
            }
        }
    }
    return count;
}

static void check_mark(struct scan *s, const char *how)
{
    static unsigned char want[MAX_CHUNKS];
    size_t roots[3];
    for (size_t k = 0; k < 3; k++)
        do
            roots[k] = next_random() % nchunks;
        while (!two_pointers[roots[k]] || is_free(roots[k]));
    /* first from three roots, then the extent joins (it may wake, as a parked stack) */
    for (int phase = 0; phase < 2; phase++) {
        size_t expected = expected_marks(roots, 3, phase == 1, want);
        if (phase == 0) {
            block_bounds(s);
            for (size_t k = 0; k < 3; k++)
                mark_address(s, chunks[roots[k]].hdr + CHUNK_HDR + 8 * (k == 1));   /* one interior */
        } else {
            mark_extent(s, 0);
        }
        drain_worklist(s);
        const struct span *sp = &s->spans[0];
        size_t wrong = 0, marked = 0;
        for (size_t c = 0; c < nchunks; c++) {
            uint64_t g = (chunks[c].hdr - sp->lo) >> 4;
            bool m = s->pool[sp->word0 + (g >> 6)].marked >> (g & 63) & 1;
            marked += m;
            wrong += m != want[c];
        }
        CHECK(wrong == 0 && !s->incomplete, "%s, phase %d: %zu chunks marked wrongly (%zu marked, %zu reachable)",
              how, phase, wrong, marked, expected);
        CHECK(expected > 3 && expected < nchunks, "%s: a graph worth checking (%zu of %zu reachable)", how, expected,
              nchunks);
    }
}

static void one_heap(const char *how, bool recording, size_t edges_used)
{
    struct scan s;
    scan_open(&s, recording, edges_used);
    CHECK(scan_add_extent(&s, (uint64_t)(uintptr_t)extent_mem, (uint64_t)(uintptr_t)extent_mem + EXTENT_BYTES,
                          NO_THREAD, EXT_CHUNK),
          "extent");
    CHECK(walk_chunks(&s, heap_first, heap_limit), "%s: the walk failed", how);
    if (s.nspans != 1) {
        scan_close(&s);
        return;
    }
    const struct span *sp = &s.spans[0];
    if (!recording)
        CHECK(sp->unrecorded_from == 0, "%s: recorded", how);
    else if (edges_used)
        CHECK(sp->unrecorded_from > 0 && sp->unrecorded_from < (heap_limit - heap_first) / 16,
              "%s: recording should stop mid-heap (at granule %llu)", how,
              (unsigned long long)sp->unrecorded_from);
    else
        CHECK(sp->unrecorded_from == UINT64_MAX, "%s: recording stopped", how);
    check_lookups(&s);
    check_entries(&s);
    check_mark(&s, how);
    scan_close(&s);
}

static void broken_header(void)
{
    struct scan s;
    scan_open(&s, true, 0);
    uint64_t *h = (uint64_t *)(uintptr_t)chunks[nchunks / 2].hdr;
    uint64_t keep = h[1];
    h[1] = keep | IS_MMAPPED;
    CHECK(!walk_chunks(&s, heap_first, heap_limit) && s.nspans == 0 && s.nedges == 0 && s.nbig == 0,
          "a broken header must fail the walk and add nothing");
    h[1] = keep + 16;   /* a size that overruns the next header */
    CHECK(!walk_chunks(&s, heap_first, heap_limit), "a wrong size must fail the walk");
    h[1] = keep;
    CHECK(walk_chunks(&s, heap_first, heap_limit) && s.nspans == 1, "mended, it walks");
    scan_close(&s);
}

/* An arena's older heap ends in glibc's fenceposts (sysmalloc): the freed
 * old top, a 16-byte chunk whose PREV_INUSE is clear, a 0-byte one, and a
 * few bytes to the heap's end. The walk ends there, the old top free, the
 * span ending at the fencepost; a 0-byte header anywhere else, or first,
 * fails the walk. */
static void fenceposts(unsigned char *base)
{
    uint64_t first = (uint64_t)(uintptr_t)base + 4096, at = first;
    uint64_t *w;
    for (int k = 0; k < 4; k++, at += 48) {   /* four chunks in use */
        w = (uint64_t *)(uintptr_t)at;
        w[1] = 48 | PREV_INUSE;
    }
    uint64_t old_top = at;
    w = (uint64_t *)(uintptr_t)old_top;
    w[1] = 96 | PREV_INUSE;                   /* freed into the bins ... */
    uint64_t fence = old_top + 96;
    w = (uint64_t *)(uintptr_t)fence;
    w[0] = 96;                                /* ... so its successor's PREV_INUSE is clear */
    w[1] = 16;
    w[2] = 16;
    w[3] = 0 | PREV_INUSE;
    uint64_t limit = fence + 48;
    struct scan s;
    scan_open(&s, true, 0);
    filter_set(&s, first, limit);
    CHECK(walk_chunks(&s, first, limit) && s.nspans == 1, "a heap ending in fenceposts must walk");
    if (s.nspans == 1) {
        const struct span *sp = &s.spans[0];
        CHECK(sp->hi == fence, "the span ends at %#llx, want the fencepost %#llx", (unsigned long long)sp->hi,
              (unsigned long long)fence);
        CHECK(chunk_is_free(&s, sp, (old_top - first) >> 4), "the old top before the fenceposts must be free");
        CHECK(!chunk_is_free(&s, sp, (old_top - 48 - first) >> 4), "the chunk before the old top is in use");
        uint64_t g;
        CHECK(!chunk_holding(&s, sp, fence + 24, &g), "the fenceposts belong to no chunk");
    }
    scan_close(&s);
    /* fenceposts far from the end: no fence, the walk fails */
    scan_open(&s, true, 0);
    CHECK(!walk_chunks(&s, first, limit + 4096) && s.nspans == 0, "fenceposts 4 KiB before the end must fail");
    scan_close(&s);
    /* a 0-byte header first: no chunk walked yet, no fence */
    w = (uint64_t *)(uintptr_t)first;
    w[1] = 0 | PREV_INUSE;
    scan_open(&s, true, 0);
    CHECK(!walk_chunks(&s, first, first + 48) && s.nspans == 0, "a 0-byte first header must fail the walk");
    scan_close(&s);
}

/* A thread arena's two heaps in one mapping (glibc maps the second right
 * after the first when it can; the kernel merges them): the first, closed
 * by fenceposts, is walked to them; the second is split off and walked too.
 * What follows a heap and is no heap (here: zeros) stays a root. */
static uint64_t *at_addr(uint64_t a) { return (uint64_t *)(uintptr_t)a; }

static void merged_heaps(void)
{
    const uint64_t span = HEAP_MAX_SIZE, second = 1u << 20;
    unsigned char *raw = mmap(NULL, 3 * span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                              -1, 0);
    CHECK(raw != MAP_FAILED, "mmap");
    if (raw == MAP_FAILED)
        return;
    uint64_t lo = ((uint64_t)(uintptr_t)raw + span - 1) & ~(span - 1);
    /* heap 1: heap_info, the arena, a chunk in use, the old top (free), fenceposts */
    uint64_t *info = at_addr(lo);
    info[0] = lo + 48, info[1] = 0, info[2] = span, info[3] = span;
    uint64_t first = lo + 0x8d0, used = 1u << 20, fence = lo + span - 48;
    at_addr(first)[1] = used | PREV_INUSE;
    at_addr(first + used)[1] = (fence - first - used) | PREV_INUSE;
    at_addr(fence)[0] = fence - first - used;
    at_addr(fence)[1] = 16;
    at_addr(fence + 16)[1] = 0 | PREV_INUSE;
    for (int twin = 0; twin < 2; twin++) {
        uint64_t h2 = lo + span;
        memset((void *)(uintptr_t)h2, 0, 4096);
        if (!twin) {   /* heap 2: heap_info, a chunk in use, the top */
            uint64_t *info2 = at_addr(h2);
            info2[0] = lo + 48, info2[1] = lo, info2[2] = second, info2[3] = second;
            at_addr(h2 + 48)[1] = 4096 | PREV_INUSE;
            at_addr(h2 + 48 + 4096)[1] = (second - 48 - 4096) | PREV_INUSE;
        }
        struct scan s;
        scan_open(&s, true, 0);
        filter_set(&s, lo, lo + span + second);
        CHECK(scan_reserve_maps(&s, 1), "maps");
        s.maps[0] = (struct mapping){ .lo = lo, .hi = lo + span + second, .readable = true, .writable = true,
                                      .anonymous = true, .kind = MAP_ROOT };
        s.nmaps = 1;
        scan_find_heaps(&s);
        CHECK(s.nmaps == 2 && s.maps[0].lo == lo && s.maps[0].hi == lo + span && s.maps[0].kind == MAP_HEAP,
              "%s: the first heap must be a mapping of its own, walked (%zu mappings)", twin ? "twin" : "two heaps",
              s.nmaps);
        if (s.nmaps == 2)
            CHECK(s.maps[1].lo == lo + span && s.maps[1].kind == (twin ? MAP_ROOT : MAP_HEAP),
                  "%s: what follows the first heap must be %s", twin ? "twin" : "two heaps",
                  twin ? "a root (it is no heap)" : "walked (the second heap)");
        CHECK(s.nspans == (twin ? 1u : 2u), "%s: %zu spans", twin ? "twin" : "two heaps", s.nspans);
        scan_close(&s);
    }
    munmap(raw, 3 * span);
}

/* When a query waits for the scan that may confirm a finding: none due,
 * due soon, due too far, or due already (the query's own scan ended just
 * before the moment, and judging ran past it: 2^64 - a little is not far). */
static void confirmation_moments(void)
{
    const uint64_t s = 1000000000ull, now = 100 * s, within = 1200000000ull;
    CHECK(!confirmation_near(0, now, within), "no finding to confirm: no wait");
    CHECK(confirmation_near(now + s / 2, now, within), "due in 0.5 s: wait");
    CHECK(confirmation_near(now + within, now, within), "due at the edge: wait");
    CHECK(!confirmation_near(now + within + 1, now, within), "due in more than 1.2 s: answer now");
    CHECK(confirmation_near(now, now, within), "due this instant: wait for the next scan");
    CHECK(confirmation_near(now - s / 30, now, within), "due 33 ms ago (a starved server): wait for the next scan");
    CHECK(confirmation_near(1, now, within), "due long ago: the next scan confirms");
}

int main(void)
{
    size_t bytes = 6u << 20;
    unsigned char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    extent_mem = mmap(NULL, EXTENT_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || extent_mem == MAP_FAILED)
        return 1;
    for (int round = 0; round < 3; round++) {
        lay_out(base, bytes);
        fill_words();
        one_heap("recording", true, 0);
        one_heap("not recording", false, 0);
        one_heap("edges[] filling up", true, MAX_EDGES - 3000);
    }
    broken_header();
    memset(base, 0, bytes);
    heap_first = (uint64_t)(uintptr_t)base;
    heap_limit = heap_first + bytes;
    fenceposts(base);
    merged_heaps();
    confirmation_moments();
    return checks_result("test_reach_blocks");
}
