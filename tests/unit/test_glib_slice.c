/*
 * test_glib_slice.c — GSlice's slabs as glib_slice.c reads them, on an
 * allocator and slabs laid out by hand as GLib 2.74 lays them out (so every
 * case, broken ones included, is exact):
 *   - the allocator is found in "libglib's data" by its page sizes and
 *     configuration, and not when G_SLICE=always-malloc turned it off;
 *   - a ring's slabs are reported with their chunk size, colour and free
 *     chunks: colour 0 whatever the free list when the padding allows only
 *     it, the free list's colour otherwise;
 *   - a slab is not reported when its colour cannot be told (every chunk
 *     handed out, several colours possible), its free list does not decode
 *     (wrong stride, outside the slab, too long, too short, a loop), its
 *     malloc chunk is not one page; a ring whose neighbours do not point
 *     back is not followed past the break.
 */
#include "core/glib_slice.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* ---- memory laid out by hand ---- */

#define HEAP_BYTES (256u * 1024u)
#define MAX_CHUNKS 256

static unsigned char *heap;                 /* 8 KiB-aligned */
static unsigned char data[4096];             /* libglib's data */
static uint64_t chunk_hdr[MAX_CHUNKS], chunk_size[MAX_CHUNKS];
static size_t nchunks;

static uint64_t H(size_t off) { return (uint64_t)(uintptr_t)heap + off; }
static uint64_t D(size_t off) { return (uint64_t)(uintptr_t)data + off; }
static uint64_t *W(uint64_t addr) { return (uint64_t *)(uintptr_t)addr; }

static bool inside(uint64_t addr, size_t len, uint64_t lo, size_t size)
{
    return addr >= lo && addr + len <= lo + size;
}

static bool view_read(void *ctx, void *dst, uint64_t addr, size_t len)
{
    (void)ctx;
    if (!inside(addr, len, H(0), HEAP_BYTES) && !inside(addr, len, D(0), sizeof data))
        return false;
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return true;
}

static bool view_chunk_at(void *ctx, uint64_t header, uint64_t *size)
{
    (void)ctx;
    for (size_t i = 0; i < nchunks; i++)
        if (chunk_hdr[i] == header) {
            *size = chunk_size[i];
            return true;
        }
    return false;
}

static void view_free_chunk(void *ctx, uint64_t header)
{
    (void)ctx;
    (void)header;
}

static const struct lw_heap_view view = { view_read, view_chunk_at, view_free_chunk, NULL };

/* A malloc chunk of `size` whose user area starts at `user`. */
static void add_chunk(uint64_t user, uint64_t size)
{
    chunk_hdr[nchunks] = user - 16;
    chunk_size[nchunks++] = size;
}

/* ---- GSlice's structures ---- */

#define ALLOCATOR_AT 512u    /* in data */
#define SLAB_STACK_AT 16u    /* in heap: 63 pointers */

static uint64_t allocator(void) { return D(ALLOCATOR_AT); }

static void reset(void)
{
    memset(heap, 0, HEAP_BYTES);
    memset(data, 0, sizeof data);
    nchunks = 0;
    uint64_t *a = W(allocator());
    a[0] = 128;                     /* min_page_size */
    a[1] = 8192;                    /* max_page_size */
    a[4] = 15000;                   /* working_set_msecs */
    a[5] = 1;                       /* color_increment */
    a[6] = (8192 - 48) / 8;         /* max_slab_chunk_size_for_magazine_cache */
    a[8] = H(8192 - 1024);          /* magazines */
    a[9] = H(8192 - 512);           /* contention_counters */
    a[13] = H(SLAB_STACK_AT);       /* slab_stack */
    add_chunk(H(SLAB_STACK_AT), 512);
}

/* SlabInfo of the slab at `mem` (page bytes). */
static uint64_t *info_of(uint64_t mem, uint64_t page) { return W(mem + page - 48); }

/* A slab of page bytes at heap offset `off` (page-aligned), its SlabInfo
 * with the free list of chunks `free_k` (of chunk size cs, colour color). */
static uint64_t add_slab(size_t off, uint64_t page, uint64_t cs, uint64_t color, const int *free_k, int nfree)
{
    uint64_t mem = H(off);
    add_chunk(mem, page);
    uint64_t *si = info_of(mem, page);
    uint32_t n_chunks = (uint32_t)((page - 48) / cs);
    si[0] = nfree ? mem + color + (uint64_t)free_k[0] * cs : 0;
    for (int k = 0; k < nfree; k++)
        *W(mem + color + (uint64_t)free_k[k] * cs) = k + 1 < nfree ? mem + color + (uint64_t)free_k[k + 1] * cs : 0;
    si[1] = n_chunks - (uint32_t)nfree;   /* n_allocated (and padding) */
    return mem + page - 48;
}

/* Link SlabInfos into a ring, as allocator_slab_stack_push does, and hang
 * it at slab_stack[ix]. */
static void ring(unsigned ix, const uint64_t *infos, int n)
{
    for (int k = 0; k < n; k++) {
        W(infos[k])[2] = infos[(k + 1) % n];       /* next */
        W(infos[k])[3] = infos[(k + n - 1) % n];   /* prev */
    }
    W(H(SLAB_STACK_AT))[ix] = infos[0];
}

/* ---- what the reader reports ---- */

#define MAX_SEEN 16
static struct lw_gslice_slab seen[MAX_SEEN];
static size_t nseen;

static void collect(void *ctx, const struct lw_gslice_slab *sl)
{
    (void)ctx;
    if (nseen < MAX_SEEN)
        seen[nseen++] = *sl;
}

static size_t slabs(void)
{
    nseen = 0;
    uint64_t a = lw_gslice_find_allocator(&view, D(0), D(sizeof data));
    CHECK(a == allocator(), "allocator found at %#llx, wanted %#llx", (unsigned long long)a,
          (unsigned long long)allocator());
    return a ? lw_gslice_slabs(&view, a, collect, NULL) : 0;
}

static const struct lw_gslice_slab *slab_at(uint64_t mem)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].mem == mem)
            return &seen[i];
    return NULL;
}

static bool is_free(const struct lw_gslice_slab *sl, int k)
{
    return sl->free_chunks[k >> 6] >> (k & 63) & 1;
}

/* ---- the cases ---- */

static void finds_the_allocator_only_when_on(void)
{
    reset();
    CHECK(lw_gslice_find_allocator(&view, D(0), D(sizeof data)) == allocator(), "not found");
    W(allocator())[2] = 1;   /* always_malloc */
    CHECK(lw_gslice_find_allocator(&view, D(0), D(sizeof data)) == 0, "found with always-malloc");
    reset();
    W(allocator())[1] = 4096;
    CHECK(lw_gslice_find_allocator(&view, D(0), D(sizeof data)) == 0, "found with another max page");
    reset();
    chunk_size[0] = 64;      /* slab_stack too small an array */
    CHECK(lw_gslice_find_allocator(&view, D(0), D(sizeof data)) == 0, "found with a short slab_stack");
}

static void reports_a_ring(void)
{
    /* 96-byte chunks (ix 5): pages of 1024, 10 chunks, 16 bytes of padding:
     * colour 0 only. One slab with three free chunks, one all handed out. */
    reset();
    int free_a[] = { 7, 2, 9 };
    uint64_t a = add_slab(8192, 1024, 96, 0, free_a, 3);
    uint64_t b = add_slab(8192 + 1024, 1024, 96, 0, NULL, 0);
    ring(5, (uint64_t[]){ a, b }, 2);
    CHECK(slabs() == 2, "%zu slabs, wanted 2", nseen);
    const struct lw_gslice_slab *sa = slab_at(H(8192)), *sb = slab_at(H(8192 + 1024));
    CHECK(sa && sa->chunk_size == 96 && sa->page == 1024 && sa->n_chunks == 10 && sa->color == 0, "slab a");
    CHECK(sa && is_free(sa, 7) && is_free(sa, 2) && is_free(sa, 9) && !is_free(sa, 0) && !is_free(sa, 3),
          "slab a's free chunks");
    CHECK(sb && sb->color == 0 && !is_free(sb, 0) && !is_free(sb, 9), "slab b (all handed out)");
}

static void tells_the_colour_from_the_free_list(void)
{
    /* 48-byte chunks (ix 2): pages of 512, 9 chunks, 32 bytes of padding:
     * colour 0 or 16. */
    reset();
    int free_k[] = { 4 };
    uint64_t a = add_slab(16384, 512, 48, 16, free_k, 1);
    uint64_t b = add_slab(16384 + 512, 512, 48, 0, NULL, 0);   /* which colour? cannot tell */
    ring(2, (uint64_t[]){ a, b }, 2);
    CHECK(slabs() == 1, "%zu slabs, wanted 1", nseen);
    const struct lw_gslice_slab *sa = slab_at(H(16384));
    CHECK(sa && sa->color == 16 && is_free(sa, 4) && sa->n_chunks == 9, "the colour-16 slab");
    CHECK(!slab_at(H(16384 + 512)), "a slab of unknown colour was reported");
}

static void refuses_bad_free_lists(void)
{
    int one[] = { 3 };
    /* a free list off the stride */
    reset();
    uint64_t a = add_slab(8192, 1024, 96, 0, one, 1);
    W(a)[0] += 8;
    *W(W(a)[0]) = 0;
    ring(5, &a, 1);
    CHECK(slabs() == 0, "a free list off the stride was believed");
    /* one entry too many for n_allocated */
    reset();
    int two[] = { 3, 4 };
    a = add_slab(8192, 1024, 96, 0, two, 2);
    W(a)[1] += 1;   /* says one fewer free */
    ring(5, &a, 1);
    CHECK(slabs() == 0, "a free list longer than the slab says was believed");
    /* a loop */
    reset();
    a = add_slab(8192, 1024, 96, 0, two, 2);
    *W(H(8192) + 4 * 96) = H(8192) + 3 * 96;
    W(a)[1] -= 5;   /* (long enough a count to go round) */
    ring(5, &a, 1);
    CHECK(slabs() == 0, "a looping free list was believed");
    /* a malloc chunk that is not one page */
    reset();
    a = add_slab(8192, 1024, 96, 0, one, 1);
    chunk_size[nchunks - 1] = 2048;
    ring(5, &a, 1);
    CHECK(slabs() == 0, "a slab in a chunk of two pages was believed");
}

static void stops_at_a_broken_ring(void)
{
    reset();
    int one[] = { 1 };
    uint64_t a = add_slab(8192, 1024, 96, 0, one, 1);
    uint64_t b = add_slab(8192 + 1024, 1024, 96, 0, one, 1);
    uint64_t c = add_slab(8192 + 2048, 1024, 96, 0, one, 1);
    ring(5, (uint64_t[]){ a, b, c }, 3);
    W(c)[3] = a;   /* c's prev should be b */
    CHECK(slabs() == 1 && slab_at(H(8192)), "%zu slabs past a ring that does not point back, wanted a alone", nseen);
}

int main(void)
{
    heap = aligned_alloc(8192, HEAP_BYTES);
    CHECK(heap != NULL, "no memory");
    if (!heap)
        return 1;
    finds_the_allocator_only_when_on();
    reports_a_ring();
    tells_the_colour_from_the_free_list();
    refuses_bad_free_lists();
    stops_at_a_broken_ring();
    free(heap);
    return checks_result("test_glib_slice");
}
