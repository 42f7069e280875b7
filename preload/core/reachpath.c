/*
 * reachpath.c — why a reachable object is: for a rule-3 candidate that
 * stays `waiting`, the path the mark took from a root to its object, as a
 * garbage collector would print it (the root, then each block down to the
 * one holding the object). A person who expected a proof learns what to
 * look at: the stale copy in main's frame, the global that still holds it.
 *
 * The mark keeps no parents (one bit per chunk is its whole cost), so the
 * path is found afterwards, backwards, over what the mark left: from the
 * object's block, one sweep over everything marked finds the blocks that
 * point into it, the next sweep the blocks that point into those, level by
 * level, until a root points into one. That is a breadth-first search in
 * reverse: the path found is a shortest one. Up to 64 objects are searched
 * for at once (each sweep serves them all); the search is bounded in
 * levels, entries and time, and a path not completed within them says so.
 *
 * A node is what the worklist calls a block: a chunk's slot, or
 * EXTENT_ITEM | an extent's index. A chunk malloc holds free is none; a
 * thread's descriptor is one only through its exact address (its pthread_t).
 * The parts of a parked thread that may run again are roots, as are the
 * argument registers of live parked threads.
 */
#include "core/scan.h"
#include "base/util.h"
#include "core/snapshot.h"

#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_TARGETS 64
#define MAX_LEVELS 48
#define MAX_HOPS (1u << 22)
#define NO_NODE UINT64_MAX

/* (node, target) -> the next node toward the target: the search's tree,
 * one per target, in one open-addressed table. */
struct hop {
    uint64_t key;            /* (node << 6 | target) + 1; 0: empty */
    uint64_t next;           /* NO_NODE for the target itself */
};

/* node -> the targets whose current level holds it. */
struct level_entry {
    uint64_t key;            /* node + 1; 0: empty */
    uint64_t targets;        /* a bit per target */
};

struct level {
    struct level_entry *v;
    size_t n, cap;
};

struct root_hit {
    bool found;
    uint64_t node;           /* the node the root points into */
    uint64_t address;        /* the root word (0: a register) */
    int32_t register_tid;    /* a register of this thread, else 0 */
    size_t extent;           /* a may-run thread's part holding the root, or SIZE_MAX */
};

/* A word of root memory that points into a marked block, read once per
 * scan and swept at every level (root memory is most of what a sweep
 * reads; the blocks' words are kept in edges[] already). */
struct root_ref {
    uint64_t address;        /* 0: a register */
    uint64_t node;
    uint32_t extent;         /* a may-run thread's part, or UINT32_MAX */
    int32_t register_tid;
};

struct roots {
    struct root_ref *v;
    size_t n, cap;
    bool complete;           /* false: too many to keep, read them again each sweep */
};

struct search {
    struct scan *s;
    const uint64_t *explains;   /* per thread: the target its own parts must not explain (its own), or NO_NODE */
    const uint32_t *order;      /* per target: its waiters' earliest run order (roots must come before) */
    const struct roots *roots;
    bool parts;              /* may-run threads' parts are roots in this search */
    struct hop *hops;
    size_t nhops, caphops;
    struct level cur, nxt;
    uint64_t targets[MAX_TARGETS];
    struct root_hit hit[MAX_TARGETS];
    size_t ntargets, unresolved;
    bool overflow;           /* a table would grow past its bound: stop */
};

/* ---- the tables ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
}

static bool table_alloc(struct scan *s, void **p, size_t *cap, size_t want, size_t elem)
{
    void *q = mmap(NULL, want * elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return false;
    scan_claim(s, q, want * elem);
    *p = q;
    *cap = want;
    return true;
}

static struct hop *hop_slot(struct hop *t, size_t cap, uint64_t key)
{
    for (size_t i = mix(key) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (t[i].key == key || t[i].key == 0)
            return &t[i];
}

static bool hops_grow(struct search *q)
{
    if (2 * q->caphops > MAX_HOPS)
        return false;
    struct hop *old = q->hops;
    size_t oldcap = q->caphops;
    if (!table_alloc(q->s, (void **)&q->hops, &q->caphops, 2 * oldcap, sizeof *old))
        return false;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            *hop_slot(q->hops, q->caphops, old[i].key) = old[i];
    munmap(old, oldcap * sizeof *old);
    return true;
}

/* Record node -> next in target t's tree; false if it was there already. */
static bool hop_add(struct search *q, uint64_t node, unsigned t, uint64_t next)
{
    if (2 * (q->nhops + 1) > q->caphops && !hops_grow(q)) {
        q->overflow = true;
        return false;
    }
    uint64_t key = (node << 6 | t) + 1;
    struct hop *h = hop_slot(q->hops, q->caphops, key);
    if (h->key)
        return false;
    *h = (struct hop){ key, next };
    q->nhops++;
    return true;
}

static uint64_t hop_next(const struct search *q, uint64_t node, unsigned t)
{
    const struct hop *h = hop_slot(q->hops, q->caphops, (node << 6 | t) + 1);
    return h->key ? h->next : NO_NODE;
}

static struct level_entry *level_slot(struct level *l, uint64_t node)
{
    uint64_t key = node + 1;
    for (size_t i = mix(key) & (l->cap - 1);; i = (i + 1) & (l->cap - 1))
        if (l->v[i].key == key || l->v[i].key == 0)
            return &l->v[i];
}

static uint64_t level_targets(struct level *l, uint64_t node)
{
    if (!l->n)
        return 0;
    struct level_entry *e = level_slot(l, node);
    return e->key ? e->targets : 0;
}

static bool level_add(struct search *q, struct level *l, uint64_t node, uint64_t targets)
{
    if (2 * (l->n + 1) > l->cap) {
        struct level bigger = { 0 };
        if (2 * l->cap > MAX_HOPS || !table_alloc(q->s, (void **)&bigger.v, &bigger.cap, l->cap ? 2 * l->cap : 1024,
                                                  sizeof *bigger.v)) {
            q->overflow = true;
            return false;
        }
        for (size_t i = 0; i < l->cap; i++)
            if (l->v[i].key) {
                *level_slot(&bigger, l->v[i].key - 1) = l->v[i];
                bigger.n++;
            }
        if (l->v)
            munmap(l->v, l->cap * sizeof *l->v);
        *l = bigger;
    }
    struct level_entry *e = level_slot(l, node);
    if (!e->key) {
        e->key = node + 1;
        l->n++;
    }
    e->targets |= targets;
    return true;
}

static void level_clear(struct level *l)
{
    if (l->v && l->n)
        memset(l->v, 0, l->cap * sizeof *l->v);
    l->n = 0;
}

/* ---- nodes ---- */

/* The marked block v points into, as the mark would have it, or NO_NODE. */
static uint64_t node_of(struct scan *s, uint64_t v)
{
    if (v < s->lb || v >= s->hb || !may_point_into_a_block(s, v))
        return NO_NODE;
    const struct span *sp = span_of(s, v);
    if (sp) {
        uint64_t g;
        if (!chunk_holding(s, sp, v, &g))
            return NO_NODE;
        const struct span_word *w = &s->pool[sp->word0 + (g >> 6)];
        if (!(w->freed >> (g & 63) & 1) || !s->slices)
            return (w->marked & ~w->freed) >> (g & 63) & 1 ? ((uint64_t)sp->word0 << 6) + g : NO_NODE;
        /* (a GLib slab's chunk: its slices are extents) */
    }
    size_t e = extent_of(s, v);
    if (e == SIZE_MAX || !s->ext[e].marked)
        return NO_NODE;
    if (s->ext[e].kind == EXT_TCB && v != s->threads[s->ext[e].thread].tp)
        return NO_NODE;
    return EXTENT_ITEM | e;
}

static bool is_extent(uint64_t node) { return node & EXTENT_ITEM; }

/* A may-run thread's part is a root. */
static bool is_root_part(const struct scan *s, size_t e)
{
    const struct extent *x = &s->ext[e];
    return x->kind != EXT_CHUNK && x->kind != EXT_SLICE && x->thread != NO_THREAD && s->threads[x->thread].may_run;
}

static void node_range(const struct scan *s, uint64_t node, uint64_t *lo, uint64_t *hi)
{
    if (is_extent(node)) {
        const struct extent *x = &s->ext[node & ~(uint64_t)EXTENT_ITEM];
        *lo = x->start;
        *hi = x->end;
        return;
    }
    const struct span *sp = span_of_slot(s, (uint32_t)node);
    uint64_t g = node - ((uint64_t)sp->word0 << 6);
    *lo = sp->lo + (g << 4) + CHUNK_HDR;
    *hi = chunk_end(s, sp, g);
}

/* ---- one sweep ---- */

/* A root word pointing into node: does node belong to the current level? */
static void root_points_at(struct search *q, uint64_t address, uint64_t node, int32_t register_tid, size_t extent)
{
    uint64_t targets = level_targets(&q->cur, node);
    /* A waiter's own parts are roots only because it may run: they cannot
     * explain why it may (nor why its fellow waiters on the object may),
     * and no thread found able to run after it can either (causes first). */
    uint32_t part_of = extent != SIZE_MAX ? q->s->ext[extent].thread : NO_THREAD;
    uint64_t own = part_of != NO_THREAD ? q->explains[part_of] : NO_NODE;
    uint32_t ran = part_of != NO_THREAD ? q->s->threads[part_of].run_order : 0;
    for (unsigned t = 0; targets; t++, targets >>= 1)
        if ((targets & 1) && !q->hit[t].found && q->targets[t] != own && (!ran || ran < q->order[t])) {
            q->hit[t] = (struct root_hit){ true, node, address, register_tid, extent };
            q->unresolved--;
        }
}

static void root_word(struct search *q, uint64_t address, uint64_t v, int32_t register_tid, size_t extent)
{
    uint64_t node = node_of(q->s, v);
    if (node != NO_NODE)
        root_points_at(q, address, node, register_tid, extent);
}

/* A word of a marked block (source): it leads into the current level. */
static void block_word(struct search *q, uint64_t source, uint64_t v)
{
    uint64_t node = node_of(q->s, v);
    uint64_t targets = node == NO_NODE || node == source ? 0 : level_targets(&q->cur, node);
    uint64_t added = 0;
    for (unsigned t = 0; targets; t++, targets >>= 1)
        if ((targets & 1) && !q->hit[t].found && hop_add(q, source, t, node))
            added |= 1ull << t;
    if (added)
        level_add(q, &q->nxt, source, added);
}

/* Read [lo, hi) of the program and feed its words to a root or a source. */
static void sweep_memory(struct search *q, uint64_t lo, uint64_t hi, bool root, uint64_t source, size_t extent)
{
    struct scan *s = q->s;
    lo = (lo + 7) & ~7ull;
    while (lo < hi && !q->overflow) {
        size_t len = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
        size_t got = scan_read(s, s->buf, lo, len);
        for (size_t off = 0; off + 8 <= got; off += 8) {
            uint64_t v;
            memcpy(&v, s->buf + off, 8);
            if (root)
                root_word(q, lo + off, v, 0, extent);
            else
                block_word(q, source, v);
        }
        lo += got ? got : 4096;
        lo &= ~7ull;
    }
}

static void sweep_roots(struct search *q)
{
    struct scan *s = q->s;
    if (q->roots && q->roots->complete) {
        for (size_t k = 0; k < q->roots->n; k++) {
            const struct root_ref *r = &q->roots->v[k];
            root_points_at(q, r->address, r->node, r->register_tid, r->extent == UINT32_MAX ? SIZE_MAX : r->extent);
        }
        return;
    }
    for (size_t i = 0; i < s->nmaps; i++) {
        uint64_t at = s->maps[i].lo, a, b;
        while (s->maps[i].kind == MAP_ROOT && scan_next_unclaimed(s, &at, s->maps[i].hi, &a, &b))
            sweep_memory(q, a, b, true, 0, SIZE_MAX);
    }
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct thread_info *t = &s->threads[i];
        if (!t->excluded && t->sp)
            for (uint32_t k = 0; k < t->nregs; k++)
                root_word(q, 0, t->regs[k], t->tid, SIZE_MAX);
    }
    for (size_t e = 0; e < s->next && q->parts; e++)
        if (is_root_part(s, e))
            sweep_memory(q, s->ext[e].start, s->ext[e].end, true, 0, e);
}

/* The marked chunks of one span word: their recorded words, or (not
 * recorded) their memory. */
static void sweep_word(struct search *q, const struct span *sp, size_t w)
{
    struct scan *s = q->s;
    const struct span_word *word = &s->pool[sp->word0 + w];
    uint64_t marked = word->marked & ~word->freed;
    size_t pos = word->entry_at;
    for (uint64_t bits = word->starts; bits; bits &= bits - 1) {
        unsigned b = (unsigned)__builtin_ctzll(bits);
        uint64_t g = ((uint64_t)w << 6) + b, node = ((uint64_t)sp->word0 << 6) + g;
        bool listed = word->listed >> b & 1, is_marked = marked >> b & 1;
        size_t count = listed && s->edges[pos] != READ_ME ? (size_t)s->edges[pos] : 0;
        if (is_marked && listed && s->edges[pos] != READ_ME)
            for (size_t k = 0; k < count; k++)
                block_word(q, node, s->edges[pos + 1 + k]);
        else if (is_marked && (listed || g >= sp->unrecorded_from))
            sweep_memory(q, sp->lo + (g << 4) + CHUNK_HDR, chunk_end(s, sp, g), false, node, SIZE_MAX);
        if (listed)
            pos += 1 + count;
    }
}

static void sweep_blocks(struct search *q)
{
    struct scan *s = q->s;
    for (size_t i = 0; i < s->nspans && !q->overflow; i++)
        for (size_t w = 0; w < s->spans[i].nwords; w++)
            if (s->pool[s->spans[i].word0 + w].marked)
                sweep_word(q, &s->spans[i], w);
    for (size_t e = 0; e < s->next && !q->overflow; e++)
        if (s->ext[e].marked && !is_root_part(s, e))
            sweep_memory(q, s->ext[e].start, s->ext[e].end, false, EXTENT_ITEM | e, SIZE_MAX);
}

/* ---- the root words, read once ---- */

#define MAX_ROOT_REFS (1u << 20)

static void keep_root_ref(struct roots *r, struct root_ref ref)
{
    if (r->n == r->cap)
        r->complete = false;
    if (r->complete)
        r->v[r->n++] = ref;
}

/* The words of root memory read from addr that point into a marked block. */
static void keep_root_words(struct scan *s, struct roots *r, uint64_t addr, const uint8_t *bytes, size_t got,
                            uint32_t extent)
{
    for (size_t off = 0; off + 8 <= got && r->complete; off += 8) {
        uint64_t v, node;
        memcpy(&v, bytes + off, 8);
        if ((node = node_of(s, v)) != NO_NODE)
            keep_root_ref(r, (struct root_ref){ addr + off, node, extent, 0 });
    }
}

static void keep_root_memory(struct scan *s, struct roots *r, uint64_t lo, uint64_t hi, size_t extent)
{
    lo = (lo + 7) & ~7ull;
    while (lo < hi && r->complete) {
        size_t len = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
        size_t got = scan_read(s, s->buf, lo, len);
        keep_root_words(s, r, lo, s->buf, got, extent == SIZE_MAX ? UINT32_MAX : (uint32_t)extent);
        lo += got ? got : 4096;
        lo &= ~7ull;
    }
}

/* The root words of may-run threads' parts, read many parts per
 * process_vm_readv (10,000 threads that may run: 30,000 parts). */
#define PART_BATCH 512

struct parts_read {
    struct scan *s;
    struct roots *r;
    const uint32_t *extent;   /* range k -> its extent */
};

static void keep_part_words(void *ctx, size_t k, uint64_t addr, const uint8_t *bytes, size_t got)
{
    struct parts_read *pr = ctx;
    keep_root_words(pr->s, pr->r, addr, bytes, got, pr->extent[k]);
}

static void keep_root_parts(struct scan *s, struct roots *r)
{
    struct iovec ranges[PART_BATCH];
    uint32_t extent[PART_BATCH];
    struct parts_read pr = { s, r, extent };
    size_t n = 0;
    for (size_t e = 0; e <= s->next && r->complete; e++) {
        if (n == PART_BATCH || (e == s->next && n)) {
            scan_read_ranges(s, ranges, n, keep_part_words, &pr);
            n = 0;
        }
        if (e == s->next || !is_root_part(s, e))
            continue;
        uint64_t lo = (s->ext[e].start + 7) & ~7ull, hi = s->ext[e].end;
        if (hi <= lo)
            continue;
        if (hi - lo > READ_CHUNK) {   /* a deep stack: read in chunks of its own, in order */
            scan_read_ranges(s, ranges, n, keep_part_words, &pr);
            n = 0;
            keep_root_memory(s, r, lo, hi, e);
            continue;
        }
        ranges[n] = (struct iovec){ (void *)(uintptr_t)lo, (size_t)(hi - lo) };
        extent[n++] = (uint32_t)e;
    }
}

/* Every root word that points into a marked block: root mappings and live
 * parked threads' argument registers (may-run threads' parts are added by
 * keep_root_parts, when a search needs them). The array is reserved whole
 * first (pages are touched as it fills) and claimed before the roots are
 * read, so that it is never one of them. */
static void collect_roots(struct scan *s, struct roots *r)
{
    void *v = mmap(NULL, MAX_ROOT_REFS * sizeof *r->v, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r->complete = v != MAP_FAILED;
    if (!r->complete)
        return;
    r->v = v;
    r->cap = MAX_ROOT_REFS;
    scan_claim(s, v, MAX_ROOT_REFS * sizeof *r->v);
    for (size_t i = 0; i < s->nmaps && r->complete; i++) {
        uint64_t at = s->maps[i].lo, a, b;
        while (s->maps[i].kind == MAP_ROOT && scan_next_unclaimed(s, &at, s->maps[i].hi, &a, &b))
            keep_root_memory(s, r, a, b, SIZE_MAX);
    }
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct thread_info *t = &s->threads[i];
        for (uint32_t k = 0; k < t->nregs && !t->excluded && t->sp; k++) {
            uint64_t node = node_of(s, t->regs[k]);
            if (node != NO_NODE)
                keep_root_ref(r, (struct root_ref){ 0, node, UINT32_MAX, t->tid });
        }
    }
}

static void search_free(struct search *q);

/* Level by level, until every target has its root, the levels run out, or
 * the time does; false if the search's tables could not be had. */
static bool search_run(struct search *q, uint64_t deadline)
{
    memset(q->hit, 0, sizeof q->hit);
    q->unresolved = q->ntargets;
    q->overflow = false;
    if (!table_alloc(q->s, (void **)&q->hops, &q->caphops, 4096, sizeof *q->hops))
        return false;
    for (unsigned t = 0; t < q->ntargets; t++) {
        hop_add(q, q->targets[t], t, NO_NODE);
        level_add(q, &q->cur, q->targets[t], 1ull << t);
    }
    for (int level = 0; level < MAX_LEVELS && q->unresolved && q->cur.n && !q->overflow; level++) {
        sweep_roots(q);
        if (!q->unresolved)
            break;
        sweep_blocks(q);
        struct level done = q->cur;
        q->cur = q->nxt;
        q->nxt = done;
        level_clear(&q->nxt);
        if (lw_now_ns() > deadline)
            break;
    }
    return true;
}

static void search_free(struct search *q)
{
    if (q->hops)
        munmap(q->hops, q->caphops * sizeof *q->hops);
    if (q->cur.v)
        munmap(q->cur.v, q->cur.cap * sizeof *q->cur.v);
    if (q->nxt.v)
        munmap(q->nxt.v, q->nxt.cap * sizeof *q->nxt.v);
    q->hops = NULL;
    q->cur = q->nxt = (struct level){ 0 };
    q->nhops = q->caphops = 0;
}

/* ---- describing the root and the steps ---- */

struct paths {
    struct scan *s;
    struct lw_snapshot *snap;
    struct roots roots;       /* every root word into a marked block, read once */
    bool roots_read;          /* roots is filled (only once a search needs it) */
    bool parts_read;          /* and holds may-run threads' parts' words too */
    size_t cap;               /* of snap->paths */
    uint32_t *owner;          /* per mapping: the thread whose stack pointer or descriptor lies in it */
    uint64_t *explains;       /* per thread: the node its path ends in (NO_NODE: none looked for) */
};

struct module_search {
    uint64_t address;
    bool found;
};

static int find_data_segment(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct module_search *m = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && m->address >= lo && m->address < lo + ph->p_memsz) {
            m->found = true;
            return 1;
        }
    }
    return 0;
}

/* Whether a lies in a loaded module's data or bss: the loader's word for
 * this process; seen from outside, a file's writable mapping or the
 * anonymous one right after it (a name for the reader, nothing more). */
static bool in_module_data(struct scan *s, const struct mapping *m, uint64_t a)
{
    if (s->src->self) {
        struct module_search ms = { a, false };
        dl_iterate_phdr(find_data_segment, &ms);
        return ms.found;
    }
    if (m->name[0])
        return m->name[0] == '/';   /* not [heap], [stack]... */
    const struct mapping *first = m;   /* the first piece of this anonymous mapping */
    while (first > s->maps && (first - 1)->hi == first->lo && !(first - 1)->name[0])
        first--;
    return first > s->maps && (first - 1)->hi == first->lo && (first - 1)->name[0] == '/';
}

/* Which thread each root mapping belongs to, if any (its stack pointer or
 * its descriptor lies in it): one pass over the threads. */
static bool index_owners(struct paths *ps)
{
    struct scan *s = ps->s;
    ps->owner = malloc((s->nmaps ? s->nmaps : 1) * sizeof *ps->owner);
    if (!ps->owner)
        return false;
    for (size_t k = 0; k < s->nmaps; k++)
        ps->owner[k] = NO_THREAD;
    for (size_t i = 0; i < s->nthreads; i++) {
        const struct thread_info *t = &s->threads[i];
        uint64_t at[2] = { t->sp, t->tp };
        for (int k = 0; k < 2; k++) {
            struct mapping *m = at[k] ? scan_mapping_at(s, at[k]) : NULL;
            if (m && ps->owner[m - s->maps] == NO_THREAD)
                ps->owner[m - s->maps] = (uint32_t)i;
        }
    }
    return true;
}

/* Which frame of a parked thread's wait stack holds the stack address a,
 * as a return address into its function: the stack is read upwards from
 * its stack pointer for the wait stack's return addresses, in order. The
 * slot holding pcs[k] (a return address into function k) ends the frame of
 * function k - 1, so a lies in function k's frame when it lies between the
 * slots of pcs[k] and pcs[k + 1]. 0 if not found (below the first slot:
 * the waiting call's own frames; beyond the recorded ones; not parked).
 * Only a name for the person: nothing is proven from it. */
static uint64_t frame_holding(struct paths *ps, uint32_t thread, uint64_t a)
{
    const struct lw_snap_thread *t = &ps->snap->threads[thread];
    const struct lw_snap_stack *st = NULL;
    for (size_t k = 0; k < ps->snap->nstacks && t->wait_stack; k++)
        if (ps->snap->stacks[k].id == t->wait_stack)
            st = &ps->snap->stacks[k];
    uint64_t sp = ps->s->threads[thread].sp;
    if (!st || !sp || a < sp || a - sp > (8u << 20))
        return 0;
    uint64_t words[512];
    uint32_t next = 0;
    for (uint64_t at = sp & ~7ull; next < st->depth && next < LW_MAX_FRAMES;) {
        size_t got = scan_read(ps->s, words, at, sizeof words);
        if (got < 8)
            return 0;
        for (size_t k = 0; k < got / 8 && next < st->depth; k++)
            if (words[k] == st->pcs[next]) {
                if (at + 8 * k >= a)
                    return next ? st->pcs[next - 1] : 0;
                next++;
            }
        at += got & ~7ul;
    }
    return 0;
}

/* A root word in a mapping: a live thread's frames, TLS or descriptor, a
 * module's data, or a mapping of no one's. */
static void describe_root_in_mapping(struct paths *ps, struct lw_reach_path *p, uint64_t a)
{
    struct scan *s = ps->s;
    const struct mapping *m = scan_mapping_at(s, a);
    p->root = LW_ROOT_MAPPING;
    if (!m)
        return;
    p->root_lo = m->lo;
    p->root_hi = m->hi;
    snprintf(p->root_name, sizeof p->root_name, "%s", m->name);
    uint32_t owner = ps->owner[m - s->maps];
    if (owner != NO_THREAD) {
        /* A pthread's stack mapping holds its frames, then its static TLS,
         * then its descriptor; the main thread's TLS and descriptor lie in
         * a mapping of their own, among other things. */
        const struct thread_info *t = &s->threads[owner];
        bool sp_here = t->sp >= m->lo && t->sp < m->hi, tcb_here = t->tp >= m->lo && t->tp < m->hi;
        uint64_t tcb_end = s->src->layout.tcb_size ? t->tp + s->src->layout.tcb_size : m->hi;
        enum lw_root_kind kind = LW_ROOT_NONE;
        if (tcb_here && a >= t->tp && a < tcb_end)
            kind = LW_ROOT_THREAD;
        else if (tcb_here && s->src->layout.tls_low && a >= t->tp + (uint64_t)s->src->layout.tls_low && a < t->tp)
            kind = LW_ROOT_TLS;
        else if (sp_here || (tcb_here && !t->sp && m->hi - t->tp <= 65536 && a < t->tp))
            kind = LW_ROOT_STACK;   /* (a running thread: its stack pointer is not known) */
        if (kind) {
            p->root = kind;
            p->root_tid = t->tid;
            p->root_sp = kind == LW_ROOT_STACK ? t->sp : 0;
            p->root_pc = kind == LW_ROOT_STACK ? frame_holding(ps, owner, a) : 0;
            return;
        }
    }
    if (in_module_data(s, m, a))
        p->root = LW_ROOT_DATA;
}

static void describe_root(struct paths *ps, struct lw_reach_path *p, const struct root_hit *h, uint64_t address)
{
    struct scan *s = ps->s;
    p->root_address = address;
    if (h && h->register_tid) {
        p->root = LW_ROOT_REGISTERS;
        p->root_tid = h->register_tid;
        return;
    }
    size_t e = h ? h->extent : SIZE_MAX;
    if (e != SIZE_MAX) {
        const struct extent *x = &s->ext[e];
        const struct thread_info *t = &s->threads[x->thread];
        p->root = x->kind == EXT_STACK ? LW_ROOT_STACK : x->kind == EXT_TLS ? LW_ROOT_TLS : LW_ROOT_THREAD;
        p->root_tid = t->tid;
        p->root_sp = x->kind == EXT_STACK ? t->sp : 0;
        p->root_pc = x->kind == EXT_STACK ? frame_holding(ps, x->thread, address) : 0;
        p->root_lo = x->start;
        p->root_hi = x->end;
        return;
    }
    describe_root_in_mapping(ps, p, address);
}

static struct lw_path_step describe_step(const struct scan *s, uint64_t node)
{
    struct lw_path_step step = { 0 };
    uint64_t lo, hi;
    node_range(s, node, &lo, &hi);
    step.block = lo;
    step.size = hi - lo;
    if (is_extent(node)) {
        const struct extent *x = &s->ext[node & ~(uint64_t)EXTENT_ITEM];
        step.kind = x->kind == EXT_CHUNK ? LW_STEP_MMAPPED : x->kind == EXT_SLICE ? LW_STEP_HEAP
                  : x->kind == EXT_STACK ? LW_STEP_STACK
                  : x->kind == EXT_TLS ? LW_STEP_TLS : LW_STEP_THREAD;
        step.tid = x->thread != NO_THREAD ? s->threads[x->thread].tid : 0;
    }
    return step;
}

/* Where in `from` the first word pointing into `to` lies. */
static uint64_t offset_of_pointer(struct scan *s, uint64_t from, uint64_t to)
{
    uint64_t lo, hi;
    node_range(s, from, &lo, &hi);
    lo = (lo + 7) & ~7ull;
    for (uint64_t at = lo; at < hi;) {
        size_t len = hi - at < READ_CHUNK ? (size_t)(hi - at) : READ_CHUNK;
        size_t got = scan_read(s, s->buf, at, len);
        for (size_t off = 0; off + 8 <= got; off += 8) {
            uint64_t v;
            memcpy(&v, s->buf + off, 8);
            if (node_of(s, v) == to)
                return at + off - lo;
        }
        at += got ? got : 4096;
    }
    return 0;
}

static void add_step(struct lw_reach_path *p, struct lw_path_step step)
{
    if (p->nsteps < LW_PATH_STEPS)
        p->steps[p->nsteps] = step;
    else
        p->steps[LW_PATH_STEPS - 1] = step;   /* the last one always shows */
    p->nsteps++;
}

/* Target t's path, root side first; `inner` is the address within the
 * target the path ends at (the object, or the pthread_t). */
static void build_path(struct paths *ps, struct search *q, unsigned t, uint64_t inner, struct lw_reach_path *p)
{
    struct scan *s = ps->s;
    const struct root_hit *h = &q->hit[t];
    describe_root(ps, p, h, h->address);
    p->complete = true;
    for (uint64_t node = h->node; node != NO_NODE;) {
        uint64_t next = hop_next(q, node, t);
        struct lw_path_step step = describe_step(s, node);
        step.offset = next == NO_NODE ? inner - step.block : offset_of_pointer(s, node, next);
        add_step(p, step);
        if (p->nsteps > MAX_LEVELS + 1)
            break;   /* (cannot happen: a tree) */
        node = next;
    }
}

/* ---- the paths of a scan ---- */

/* What a reachable candidate's path ends in: its object's block (node) and
 * the object's address, or its descriptor and its pthread_t when only the
 * pthread_t keeps it runnable. node NO_NODE: the object lies in root
 * memory itself (root_extent: a may-run thread's part), its own root. */
struct wanted {
    uint32_t thread;
    uint64_t node, inner;
    size_t root_extent;
    bool handle;
};

/* What a candidate's path is looked for: its object (the plainer story),
 * or with `handle` its pthread_t (when nothing but the thread itself keeps
 * its object). */
static void want_of(struct scan *s, uint32_t i, bool handle, struct wanted *w)
{
    const struct thread_info *t = &s->threads[i];
    *w = (struct wanted){ i, NO_NODE, t->object, SIZE_MAX, false };
    if (handle) {
        w->handle = true;
        w->inner = t->tp;
        w->node = EXTENT_ITEM | t->ext_tcb;
        return;
    }
    struct block_ref ref;
    uint64_t node = scan_block_around(s, t->object, &ref) == 1 ? node_of(s, t->object) : NO_NODE;
    if (node != NO_NODE && is_extent(node) && is_root_part(s, node & ~(uint64_t)EXTENT_ITEM))
        w->root_extent = node & ~(uint64_t)EXTENT_ITEM;
    else
        w->node = node;
}

static int compare_wanted(const void *a, const void *b)
{
    const struct wanted *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    if (x->inner != y->inner)
        return x->inner < y->inner ? -1 : 1;
    return (x->handle > y->handle) - (x->handle < y->handle);
}

static bool same_path(const struct wanted *x, const struct wanted *y)
{
    return x->node == y->node && x->inner == y->inner && x->handle == y->handle && x->root_extent == y->root_extent;
}

static uint32_t push_path(struct paths *ps, const struct lw_reach_path *p)
{
    struct lw_snapshot *snap = ps->snap;
    if (snap->npaths == ps->cap) {
        size_t bigger = ps->cap ? 2 * ps->cap : 16;
        struct lw_reach_path *v = realloc(snap->paths, bigger * sizeof *v);
        if (!v)
            return 0;
        snap->paths = v;
        ps->cap = bigger;
    }
    snap->paths[snap->npaths] = *p;
    return (uint32_t)++snap->npaths;
}

/* Every candidate of one group (wanted[from, to): the same path) gets it. */
static void give_path(struct paths *ps, const struct wanted *wanted, size_t from, size_t to,
                      const struct lw_reach_path *p)
{
    uint32_t index = push_path(ps, p);
    for (size_t k = from; k < to; k++)
        ps->snap->threads[wanted[k].thread].wait.reach_path = index;
}

/* The groups from `from` on whose paths need a search, up to MAX_TARGETS
 * distinct nodes, searched at once; returns where the next batch starts.
 * A group whose object no root reaches but through its own waiters is
 * left pathless, its waiters marked in `unresolved` (their pthread_t is
 * the story then). */
static size_t search_batch(struct paths *ps, const struct wanted *wanted, size_t n, size_t from, uint64_t deadline,
                           bool *unresolved)
{
    uint32_t order[MAX_TARGETS];
    if (!ps->roots_read) {   /* objects in root memory need no search: often none does */
        collect_roots(ps->s, &ps->roots);
        ps->roots_read = true;
    }
    struct search q = { .s = ps->s, .explains = ps->explains, .order = order, .roots = &ps->roots,
                        .parts = ps->parts_read };
    size_t end = from;
    for (; end < n && wanted[end].node != NO_NODE; end++) {
        uint32_t ran = ps->s->threads[wanted[end].thread].run_order;
        if (q.ntargets && q.targets[q.ntargets - 1] == wanted[end].node) {
            if (ran && ran < order[q.ntargets - 1])
                order[q.ntargets - 1] = ran;
            continue;
        }
        if (q.ntargets == MAX_TARGETS)
            break;
        order[q.ntargets] = ran ? ran : UINT32_MAX;
        q.targets[q.ntargets++] = wanted[end].node;
    }
    if (!search_run(&q, deadline))
        return n;
    if (q.unresolved && !q.overflow && !q.parts && lw_now_ns() < deadline) {
        /* No root but a parked thread's may reach some target: with the
         * parts' words roots too, the batch is searched again, every
         * target of it. (A healthy pool of 10,000 workers whose objects a
         * global keeps reads none of their 10,000 stacks here.) */
        search_free(&q);
        if (ps->roots.complete)
            keep_root_parts(ps->s, &ps->roots);
        ps->parts_read = q.parts = true;
        if (!search_run(&q, deadline))
            return n;
    }
    for (size_t k = from, t = 0; k < end;) {
        size_t group_end = k + 1;
        while (group_end < end && same_path(&wanted[group_end], &wanted[k]))
            group_end++;
        while (q.targets[t] != wanted[k].node)
            t++;
        struct lw_reach_path p;
        memset(&p, 0, sizeof p);
        p.by_handle = wanted[k].handle;
        if (q.hit[t].found)
            build_path(ps, &q, (unsigned)t, wanted[k].inner, &p);
        if (q.hit[t].found || wanted[k].handle || !unresolved)
            give_path(ps, wanted, k, group_end, &p);
        else
            for (size_t j = k; j < group_end; j++)
                unresolved[wanted[j].thread] = true;
        k = group_end;
    }
    search_free(&q);
    return end;
}

/* One phase: the paths of the wanted[0, n) (sorted), searched groups
 * first, then those whose object is in root memory. */
static void find_phase(struct paths *ps, struct wanted *wanted, size_t n, uint64_t deadline, bool *unresolved)
{
    qsort(wanted, n, sizeof *wanted, compare_wanted);   /* (NO_NODE, the largest, last) */
    for (size_t k = 0; k < n; k++)
        ps->explains[wanted[k].thread] = wanted[k].node;
    size_t k = 0;
    while (k < n && wanted[k].node != NO_NODE && lw_now_ns() < deadline)
        k = search_batch(ps, wanted, n, k, deadline, unresolved);
    while (k < n && wanted[k].node != NO_NODE)
        k++;   /* out of time: no path */
    while (k < n) {   /* objects in root memory: their own roots */
        size_t group_end = k + 1;
        while (group_end < n && same_path(&wanted[group_end], &wanted[k]))
            group_end++;
        struct lw_reach_path p;
        memset(&p, 0, sizeof p);
        struct root_hit h = { true, NO_NODE, wanted[k].inner, 0, wanted[k].root_extent };
        bool own = wanted[k].root_extent != SIZE_MAX && ps->s->ext[wanted[k].root_extent].thread == wanted[k].thread;
        if (own && unresolved) {   /* in its own stack or TLS: why it may run is elsewhere */
            for (size_t j = k; j < group_end; j++)
                unresolved[wanted[j].thread] = true;
        } else {
            describe_root(ps, &p, &h, wanted[k].inner);
            p.complete = true;
            give_path(ps, wanted, k, group_end, &p);
        }
        k = group_end;
    }
}

/* Each reachable candidate's path: its object's, from a root other than
 * its fellow waiters' own parts; failing that (only the thread itself keeps
 * its object: it may run because a pthread_t of it is reachable), its
 * pthread_t's. */
void scan_find_paths(struct scan *s, struct lw_snapshot *snap, uint64_t budget_ns)
{
    struct paths ps = { .s = s, .snap = snap, .cap = snap->npaths };
    uint64_t deadline = lw_now_ns() + budget_ns;
    size_t nt = s->nthreads ? s->nthreads : 1, n = 0;
    struct wanted *wanted = malloc(nt * sizeof *wanted);
    bool *unresolved = calloc(nt, sizeof *unresolved);
    ps.explains = malloc(nt * sizeof *ps.explains);
    if (wanted && unresolved && ps.explains && index_owners(&ps)) {
        for (size_t i = 0; i < s->nthreads; i++) {
            ps.explains[i] = NO_NODE;
            if (s->threads[i].candidate && s->threads[i].reachable)
                want_of(s, (uint32_t)i, false, &wanted[n++]);
        }
        find_phase(&ps, wanted, n, deadline, unresolved);
        /* Then the pthread_t's path, or (another waiter's pthread_t keeps
         * the object it shares) the object's from any root at all. */
        n = 0;
        for (size_t i = 0; i < s->nthreads; i++) {
            ps.explains[i] = NO_NODE;
            if (unresolved[i])
                want_of(s, (uint32_t)i, s->threads[i].by_handle && s->threads[i].ext_tcb != SIZE_MAX, &wanted[n++]);
        }
        find_phase(&ps, wanted, n, deadline, NULL);
    }
    if (ps.roots.v)
        scan_unmap(ps.roots.v, ps.roots.cap, sizeof *ps.roots.v);
    free(ps.owner);
    free(ps.explains);
    free(unresolved);
    free(wanted);
}
