/*
 * memory.c — a page cache over the target's memory (see memory.h): an
 * open-addressed table from page address to a 4 KiB copy, grown by
 * doubling; a page that could not be read is kept as missing.
 */
#include "attach/memory.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define MAX_PAGES (1u << 20)   /* 4 GiB of copies at most: past that, reads go through uncached */

struct page {
    uint64_t addr;          /* page address + 1; 0: empty slot */
    unsigned char *bytes;   /* NULL: could not be read */
};

struct lwa_memory {
    const struct lw_source *src;
    struct page *slots;
    size_t cap, n;
    struct lw_source_ops ops;   /* for lwa_memory_source */
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

struct lwa_memory *lwa_memory_new(const struct lw_source *src)
{
    struct lwa_memory *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->src = src;
    m->cap = 1024;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void lwa_memory_free(struct lwa_memory *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].bytes);
    free(m->slots);
    free(m);
}

static struct page *slot_for(struct page *slots, size_t cap, uint64_t addr)
{
    for (size_t i = mix(addr) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (slots[i].addr == addr + 1 || slots[i].addr == 0)
            return &slots[i];
}

static bool grow(struct lwa_memory *m)
{
    size_t cap = 2 * m->cap;
    struct page *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].addr)
            *slot_for(slots, cap, m->slots[i].addr - 1) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return true;
}

/* The page at addr (page-aligned): its copy, or NULL if it cannot be read. */
static const unsigned char *page_at(struct lwa_memory *m, uint64_t addr, unsigned char *scratch)
{
    struct page *p = slot_for(m->slots, m->cap, addr);
    if (p->addr)
        return p->bytes;
    if (m->n >= MAX_PAGES || (4 * (m->n + 1) > 3 * m->cap && !grow(m)))
        return lw_source_read(m->src, scratch, addr, PAGE) == PAGE ? scratch : NULL;
    p = slot_for(m->slots, m->cap, addr);
    unsigned char *bytes = malloc(PAGE);
    if (bytes && lw_source_read(m->src, bytes, addr, PAGE) != PAGE) {
        free(bytes);
        bytes = NULL;
    }
    p->addr = addr + 1;
    p->bytes = bytes;
    m->n++;
    return bytes;
}

size_t lwa_memory_read(struct lwa_memory *m, void *dst, uint64_t addr, size_t len)
{
    unsigned char scratch[PAGE];
    size_t done = 0;
    while (done < len) {
        uint64_t at = addr + done;
        if (at < addr)
            break;   /* wrapped around */
        uint64_t base = at & ~(uint64_t)(PAGE - 1);
        const unsigned char *page = page_at(m, base, scratch);
        if (!page)
            break;
        size_t off = (size_t)(at - base), take = PAGE - off < len - done ? PAGE - off : len - done;
        memcpy((unsigned char *)dst + done, page + off, take);
        done += take;
    }
    return done;
}

bool lwa_memory_read_all(struct lwa_memory *m, void *dst, uint64_t addr, size_t len)
{
    return lwa_memory_read(m, dst, addr, len) == len;
}

void lwa_memory_keep(struct lwa_memory *m, uint64_t addr, size_t len)
{
    unsigned char scratch[PAGE];
    uint64_t end = addr + len < addr ? UINT64_MAX : addr + len;
    for (uint64_t base = addr & ~(uint64_t)(PAGE - 1); base < end && base + PAGE > base; base += PAGE)
        page_at(m, base, scratch);
}

/* ---- as a source ---- */

static size_t cached_read(const struct lw_source *src, void *dst, uint64_t addr, size_t len)
{
    return lwa_memory_read(src->ctx, dst, addr, len);
}

void lwa_memory_source(struct lwa_memory *m, struct lw_source *out)
{
    *out = *m->src;
    m->ops = *m->src->ops;
    m->ops.read = cached_read;
    out->ops = &m->ops;
    out->ctx = m;
}
