/*
 * scanmem.c — the reachability scan's memory (see scan.h): reading the
 * program's through its source (never a fault), the scan's own arrays
 * (in mappings of their own, never malloc's arenas: the heaps it walks must
 * not change because of it), and the mappings of the process as the scan
 * sees them: every readable, writable one a root at first, cut as heaps,
 * blocks and our own memory are found.
 */
#include "core/scan.h"
#include "base/maps.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- many small reads at once ---- */

/* Ranges [k, end) that fit the buffer together: how many, and their iovecs. */
static size_t next_batch(const struct iovec *ranges, size_t k, size_t n, struct iovec *remote, size_t *total)
{
    size_t m = 0;
    *total = 0;
    for (; k + m < n && m < BATCH_IOVECS; m++) {
        size_t len = ranges[k + m].iov_len < READ_CHUNK ? ranges[k + m].iov_len : READ_CHUNK;
        if (m && *total + len > READ_CHUNK)
            break;
        remote[m] = (struct iovec){ ranges[k + m].iov_base, len };
        *total += len;
    }
    return m;
}

void scan_read_ranges(struct scan *s, const struct iovec *ranges, size_t n, scan_range_fn *each, void *ctx)
{
    struct iovec remote[BATCH_IOVECS];
    for (size_t k = 0; k < n;) {
        size_t total, m = next_batch(ranges, k, n, remote, &total);
        long got = s->src->ops->read_many(s->src, s->buf, total, remote, m);
        size_t off = 0, j = 0;
        for (; j < m && got >= 0 && off + remote[j].iov_len <= (size_t)got; j++) {
            each(ctx, k + j, (uint64_t)(uintptr_t)remote[j].iov_base, s->buf + off, remote[j].iov_len);
            off += remote[j].iov_len;
        }
        for (; j < m; j++) {   /* from the first that failed: one by one, each as far as it reads */
            uint64_t addr = (uint64_t)(uintptr_t)remote[j].iov_base;
            each(ctx, k + j, addr, s->buf, scan_read(s, s->buf, addr, remote[j].iov_len));
        }
        k += m;
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
 * only the first time: reused arrays are not). Claimed as ours (below),
 * but for the mappings array itself, whose growth splits no root. */
bool scan_reserve(struct scan *s, void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? 2 * *cap : first;
    while (cap2 < need)
        cap2 *= 2;
    if (!grow_mapped(p, *cap, cap2, elem))
        return false;
    *cap = cap2;
    if (s && p != (void **)&s->maps)
        scan_claim(s, *p, cap2 * elem);
    return true;
}

/* Memory the scan maps for itself once the mappings are read may land
 * where the program (or the scan) unmapped something since: an address the
 * mappings still call a root. It is remembered, and the roots are read
 * around it (scan_next_unclaimed), or our own arrays would be read as the
 * program's memory. (The mappings are not cut here: callers hold indexes
 * into them.) Past the list's room a claim is dropped: reading some of our
 * memory as roots only keeps more alive. */
void scan_claim(struct scan *s, const void *p, size_t bytes)
{
    if (!s->src->self)
        return;   /* our memory is another address space's: nothing to cut */
    uint64_t lo = (uint64_t)(uintptr_t)p & ~4095ull, hi = ((uint64_t)(uintptr_t)p + bytes + 4095) & ~4095ull;
    if (!p || !bytes || s->nclaimed == sizeof s->claimed / sizeof *s->claimed)
        return;
    s->claimed[s->nclaimed][0] = lo;
    s->claimed[s->nclaimed][1] = hi;
    s->nclaimed++;
}

bool scan_next_unclaimed(const struct scan *s, uint64_t *at, uint64_t hi, uint64_t *part_lo, uint64_t *part_hi)
{
    uint64_t lo = *at;
    for (bool moved = true; moved && lo < hi;) {   /* skip every claim that covers lo */
        moved = false;
        for (size_t k = 0; k < s->nclaimed; k++)
            if (s->claimed[k][0] <= lo && lo < s->claimed[k][1]) {
                lo = s->claimed[k][1];
                moved = true;
            }
    }
    if (lo >= hi)
        return false;
    uint64_t end = hi;
    for (size_t k = 0; k < s->nclaimed; k++)   /* up to the next claim */
        if (s->claimed[k][0] > lo && s->claimed[k][0] < end)
            end = s->claimed[k][0];
    *part_lo = lo;
    *part_hi = end;
    *at = end;
    return true;
}

void scan_unmap(void *p, size_t cap, size_t elem)
{
    if (p)
        munmap(p, cap * elem);
}

void lw_scan_cannot_prove(struct scan *s, const char *why)
{
    s->incomplete = true;
    snprintf(s->problem, sizeof s->problem, "%s", why);
}

/* ---- the mappings ---- */

/* The mappings the source listed (no malloc: the heaps are walked next).
 * Every readable mapping that is writable, or anonymous (a read-only
 * remnant of the heap, say), is a root until found to be a heap or ours.
 * Memory the scan maps for itself later is not listed, or (landing where
 * the program unmapped something since) is claimed. */
bool scan_parse_maps(struct scan *s, struct lw_maps *text_in)
{
    struct lw_maps text = *text_in;
    *text_in = (struct lw_maps)LW_MAPS_INIT;
    bool ok = scan_reserve(s, (void **)&s->maps, &s->capmaps, text.n + 64, sizeof *s->maps, 1024);
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
        scan_skip_range(s, (uint64_t)(uintptr_t)text.text, (uint64_t)(uintptr_t)text.text + text.text_cap);
    lw_maps_free(&text);
    return ok;
}

/* Room for `more` mappings after a split (a failed grow leaves the array as it was). */
bool scan_reserve_maps(struct scan *s, size_t more)
{
    return scan_reserve(s, (void **)&s->maps, &s->capmaps, s->nmaps + more, sizeof *s->maps, 1024);
}

struct mapping *scan_mapping_at(struct scan *s, uint64_t addr)
{
    size_t k = FIRST_ABOVE(s->nmaps, s->maps[i].hi, addr);
    return k < s->nmaps && s->maps[k].lo <= addr ? &s->maps[k] : NULL;
}

/* Cut [lo, hi) out of the roots: it is ours, or a block now. A mapping cut
 * in the middle is split in two roots around a skipped part. */
void scan_skip_range(struct scan *s, uint64_t lo, uint64_t hi)
{
    /* (the mappings stay sorted and disjoint as they shrink and split:
     * start at the first one that ends past lo) */
    for (size_t i = FIRST_ABOVE(s->nmaps, s->maps[i].hi, lo); i < s->nmaps && s->maps[i].lo < hi; i++) {
        struct mapping *m = &s->maps[i];
        if (m->hi <= lo || m->kind != MAP_ROOT)
            continue;
        if (lo <= m->lo && hi >= m->hi) {
            m->kind = MAP_SKIP;
        } else if (lo <= m->lo) {
            m->lo = hi;                      /* the head goes */
        } else if (hi >= m->hi) {
            m->hi = lo;                      /* the tail goes */
        } else if (scan_reserve_maps(s, 2)) {
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
