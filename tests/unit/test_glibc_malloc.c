/*
 * test_glibc_malloc.c — glibc malloc's bookkeeping as glibc_malloc.c
 * decodes it, on a heap laid out by hand in a buffer of this process (so
 * every case, broken ones included, is exact), and on this process's real
 * heap (so the layouts are the ones glibc 2.36 really uses):
 *   - a tcache bin frees exactly its chain; a chain with a wrong key, a
 *     wrong size, one entry too many or too few, or a loop frees nothing;
 *   - a fastbin frees exactly its chain; a broken one frees nothing;
 *   - an arena is found by its top and its empty bins, and not without them;
 *   - the real tcache key is learned, and the real main arena found.
 */
#include "core/glibc_malloc.h"
#include "check.h"
#include "base/util.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- a hand-made heap: chunks at 16-byte granules of a buffer ---- */

#define HEAP_BYTES (1u << 20)
#define MAX_CHUNKS 4096

static unsigned char *heap;
static uint64_t chunk_hdr[MAX_CHUNKS], chunk_size[MAX_CHUNKS];
static size_t nchunks;
static bool freed[MAX_CHUNKS];

static uint64_t at(size_t off) { return (uint64_t)(uintptr_t)heap + off; }
static uint64_t *word(uint64_t addr) { return (uint64_t *)(uintptr_t)addr; }

static size_t add_chunk(uint64_t size)
{
    uint64_t hdr = nchunks ? chunk_hdr[nchunks - 1] + chunk_size[nchunks - 1] : at(64);
    chunk_hdr[nchunks] = hdr;
    chunk_size[nchunks] = size;
    word(hdr)[1] = size | 1;
    return nchunks++;
}

static size_t chunk_index(uint64_t header)
{
    for (size_t i = 0; i < nchunks; i++)
        if (chunk_hdr[i] == header)
            return i;
    return SIZE_MAX;
}

static bool view_read(void *ctx, void *dst, uint64_t addr, size_t len)
{
    (void)ctx;
    if (addr < at(0) || addr + len > at(HEAP_BYTES))
        return false;
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return true;
}

static bool view_chunk_at(void *ctx, uint64_t header, uint64_t *size)
{
    (void)ctx;
    size_t i = chunk_index(header);
    if (i == SIZE_MAX)
        return false;
    *size = chunk_size[i];
    return true;
}

static void view_free_chunk(void *ctx, uint64_t header)
{
    (void)ctx;
    size_t i = chunk_index(header);
    CHECK(i != SIZE_MAX, "freed a header that is no chunk: %#llx", (unsigned long long)header);
    if (i != SIZE_MAX)
        freed[i] = true;
}

static const struct lw_heap_view view = { view_read, view_chunk_at, view_free_chunk, NULL };

static size_t count_freed(void)
{
    size_t n = 0;
    for (size_t i = 0; i < nchunks; i++)
        n += freed[i];
    return n;
}

static uint64_t protect(uint64_t link_address, uint64_t target) { return (link_address >> 12) ^ target; }

/* ---- tcache ---- */

#define KEY 0x5eed1234abcd9876ull

struct tcache_case {
    const char *what;
    int sabotage;   /* 0 none, 1 wrong key, 2 wrong size, 3 count too big, 4 count too small, 5 loop */
};

static void one_tcache_case(const struct tcache_case *c)
{
    memset(heap, 0, HEAP_BYTES);
    memset(freed, 0, sizeof freed);
    nchunks = 0;
    size_t tc = add_chunk(LW_TCACHE_CHUNK);
    const unsigned bin = 2;                            /* chunks of 32 + 16 * 2 = 64 bytes */
    size_t members[3];
    for (int k = 0; k < 3; k++) {
        add_chunk(96);                                 /* a live neighbour of another size */
        members[k] = add_chunk(64);
    }
    add_chunk(4096);                                   /* the "top" */
    uint16_t *counts = (uint16_t *)(uintptr_t)(chunk_hdr[tc] + 16);
    uint64_t *entries = word(chunk_hdr[tc] + 16 + 128);
    counts[bin] = 3;
    entries[bin] = chunk_hdr[members[0]] + 16;
    for (int k = 0; k < 3; k++) {
        uint64_t e = chunk_hdr[members[k]] + 16;
        uint64_t next = k < 2 ? chunk_hdr[members[k + 1]] + 16 : 0;
        word(e)[0] = protect(e, next);
        word(e)[1] = KEY;
    }
    switch (c->sabotage) {
    case 1: word(chunk_hdr[members[1]] + 16)[1] = KEY ^ 1; break;
    case 2: chunk_size[members[2]] = 80; break;
    case 3: counts[bin] = 4; break;
    case 4: counts[bin] = 2; break;
    case 5: word(chunk_hdr[members[2]] + 16)[0] = protect(chunk_hdr[members[2]] + 16, chunk_hdr[members[0]] + 16);
            counts[bin] = 3; break;
    }
    size_t n = lw_malloc_free_tcache(&view, chunk_hdr[tc], KEY);
    size_t want = c->sabotage ? 0 : 3;
    CHECK(n == want && count_freed() == want, "tcache, %s: %zu freed (%zu reported), want %zu", c->what,
          count_freed(), n, want);
    for (int k = 0; k < 3 && !c->sabotage; k++)
        CHECK(freed[members[k]], "tcache, %s: member %d not freed", c->what, k);
    CHECK(!freed[tc], "tcache, %s: the tcache's own chunk freed", c->what);
    CHECK(lw_malloc_free_tcache(&view, chunk_hdr[tc], 0) == 0, "tcache without a key must free nothing");
}

static void tcache_cases(void)
{
    static const struct tcache_case cases[] = {
        { "whole chain", 0 }, { "wrong key", 1 }, { "wrong size", 2 }, { "count too big", 3 },
        { "count too small", 4 }, { "a loop", 5 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        one_tcache_case(&cases[i]);
}

/* ---- fastbins and arenas ---- */

static uint64_t arena;   /* a malloc_state in the buffer, before the chunks */

static void make_arena(uint64_t top, bool self_referential_bins)
{
    memset(word(arena), 0, LW_ARENA_SIZE);
    word(arena)[96 / 8] = top;
    for (unsigned i = 1; i < 127; i++) {
        uint64_t self = arena + 112 + 16ull * (i - 1) - 16;
        word(arena)[112 / 8 + 2 * (i - 1)] = self_referential_bins ? self : 0x1000;
        word(arena)[112 / 8 + 2 * (i - 1) + 1] = self_referential_bins ? self : 0x1000;
    }
}

static void fastbin_cases(void)
{
    memset(heap, 0, HEAP_BYTES);
    memset(freed, 0, sizeof freed);
    nchunks = 0;
    arena = at(HEAP_BYTES - 4096);
    size_t members[4];
    for (int k = 0; k < 4; k++) {
        add_chunk(48);
        members[k] = add_chunk(32);                    /* fastbin 0: chunks of 32 bytes */
    }
    size_t top = add_chunk(8192);
    make_arena(chunk_hdr[top], true);
    CHECK(lw_malloc_is_arena(&view, arena, chunk_hdr[top]), "a well-formed arena is an arena");
    CHECK(lw_malloc_find_arena(&view, arena - 1024, arena + LW_ARENA_SIZE, chunk_hdr[top]) == arena,
          "the arena is found by its top");
    CHECK(!lw_malloc_is_arena(&view, arena, chunk_hdr[top] + 16), "an arena whose top differs is not it");
    make_arena(chunk_hdr[top], false);
    CHECK(!lw_malloc_is_arena(&view, arena, chunk_hdr[top]), "bins that point nowhere: no arena");
    make_arena(chunk_hdr[top], true);
    /* fastbin 0: members 0 -> 1 -> 2 -> 3, safe-linked through fd (chunk + 16) */
    word(arena)[16 / 8] = chunk_hdr[members[0]];
    for (int k = 0; k < 4; k++) {
        uint64_t p = chunk_hdr[members[k]], next = k < 3 ? chunk_hdr[members[k + 1]] : 0;
        word(p + 16)[0] = protect(p + 16, next);
    }
    size_t n = lw_malloc_free_fastbins(&view, arena);
    CHECK(n == 4 && count_freed() == 4, "fastbin: %zu freed, want 4", n);
    memset(freed, 0, sizeof freed);
    word(chunk_hdr[members[3]] + 16)[0] = protect(chunk_hdr[members[3]] + 16, chunk_hdr[members[1]]);   /* a loop */
    CHECK(lw_malloc_free_fastbins(&view, arena) == 0 && count_freed() == 0, "a looping fastbin frees nothing");
    word(chunk_hdr[members[3]] + 16)[0] = protect(chunk_hdr[members[3]] + 16, chunk_hdr[members[3]] + 48 + 32);
    CHECK(lw_malloc_free_fastbins(&view, arena) == 0 && count_freed() == 0,
          "a fastbin link to a non-chunk frees nothing");
}

/* ---- this process's real heap ---- */

/* The key, read as glibc's tcache stores it: a chunk freed into a bin
 * nothing else uses here (200 bytes: chunk 208). */
static uint64_t key_read_directly(void)
{
    void *p = malloc(200);
    uint64_t addr = (uint64_t)(uintptr_t)p, key = 0;
    __asm__("" : "+r"(addr));
    free(p);
    return lw_read_memory(&key, addr + 8, 8) ? key : 0;
}

/* Seven chunks of each of the requests 24, 40, ... 120 (tcache bins 0-6),
 * taken and given back bin by bin: seven freed make a bin full. */
#define PROBE_SIZES 7
static void take(void *held[PROBE_SIZES][7])
{
    for (int b = 0; b < PROBE_SIZES; b++)
        for (int k = 0; k < 7; k++)
            held[b][k] = malloc(24 + 16 * b);
}

static void give_back(void *held[PROBE_SIZES][7], const bool bins[PROBE_SIZES])
{
    for (int b = 0; b < PROBE_SIZES; b++)
        for (int k = 0; k < 7 && bins[b]; k++) {
            free(held[b][k]);
            held[b][k] = NULL;
        }
}

/* The key is learned even when some of the thread's tcache bins are full
 * (seven chunks each: the next free of that size goes to a fastbin, which
 * leaves no key): the server thread of a process that freed many small
 * blocks of its own never learned it, and no tcache was ever decoded. When
 * every bin tried is full nothing is learned, and not for good: the next
 * call learns it. */
static void key_with_full_bins(void)
{
    uint64_t truth = key_read_directly();
    CHECK(truth != 0, "glibc's tcache stores a key in a freed chunk");
    void *held[PROBE_SIZES][7];
    const bool all[PROBE_SIZES] = { 1, 1, 1, 1, 1, 1, 1 }, two[PROBE_SIZES] = { 1, 0, 1, 0, 0, 0, 0 };
    take(held);
    give_back(held, all);   /* every bin tried is full */
    uint64_t first = lw_malloc_tcache_key();
    CHECK(first == 0 || first == truth, "with every bin tried full: %#llx, want 0 or the key %#llx",
          (unsigned long long)first, (unsigned long long)truth);
    take(held);             /* every bin drained, then those for 24 and 56 bytes full again */
    give_back(held, two);
    uint64_t later = lw_malloc_tcache_key();
    give_back(held, all);
    CHECK(later == truth, "with the bins for 24 and 56 bytes full: %#llx, want the key %#llx (learned at a later "
          "call when the first could not)", (unsigned long long)later, (unsigned long long)truth);
}

static void real_heap(void)
{
#ifdef __SANITIZE_ADDRESS__
    return;   /* malloc is ASan's there: no tcache */
#endif
    key_with_full_bins();
    uint64_t key = lw_malloc_tcache_key();
    CHECK(key != 0, "the tcache key of this process (glibc with tcache) is learned");
    void *p = malloc(40);
    uint64_t addr = (uint64_t)(uintptr_t)p;
    __asm__("" : "+r"(addr));
    free(p);
    uint64_t second;
    CHECK(lw_read_memory(&second, addr + 8, 8) && second == key, "a chunk freed into tcache carries the learned key");
}

int main(void)
{
    heap = mmap(NULL, HEAP_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (heap == MAP_FAILED)
        return 1;
    tcache_cases();
    fastbin_cases();
    real_heap();
    return checks_result("test_glibc_malloc");
}
