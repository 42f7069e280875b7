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
 * are in /proc/self/task/TID/syscall and count as roots (for a candidate,
 * parked in a recorded wait, its record stands in: the hook's frame and
 * the objects it was given, scanthreads.c); a recorded wait's frame holds
 * the caller's callee-saved registers; other threads' registers stay out
 * of sight, so a pointer held only in a register for the two scans (a
 * thread computing for seconds with the object in rbx, say) would go
 * unseen. So would one held only by the kernel (a timer's or an aio
 * request's sigevent value).
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
#include "core/glibc_malloc.h"
#include "core/glibc_thread.h"
#include "base/util.h"
#include "base/maps.h"
#include "core/scan.h"
#include "core/snapshot.h"
#include "core/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONFIRM_NS 1000000000ull      /* two scans at least a second apart */
#define MAX_CONFIRM 4096


/* ---- marking ---- */

static void push_work(struct scan *s, uint32_t item)
{
    if (s->nwork == s->capwork &&
        !scan_reserve(s, (void **)&s->work, &s->capwork, s->nwork + 1, sizeof *s->work, 65536)) {
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

/* A parked thread found able to run again: its stack, its TLS and its
 * descriptor are as good as roots now, and the threads waiting on it
 * (their owner edges) may run too, once it has (see wake_dependents). */
static void thread_may_run(struct scan *s, uint32_t i)
{
    struct thread_info *t = &s->threads[i];
    if (t->may_run)
        return;
    t->may_run = true;
    t->run_order = ++s->run_orders;
    mark_extent(s, t->ext_stack);
    mark_extent(s, t->ext_tls);
    mark_extent(s, t->ext_tcb);
    s->runnable[s->nrunnable++] = i;   /* (each thread once: room for all) */
}

/* Threads found able to run: their registers are roots now (those the
 * source shows: every one of a frozen thread), and so are the threads
 * waiting on them. */
static void scan_values(struct scan *s, const uint64_t *v, size_t n);

static void wake_dependents(struct scan *s)
{
    while (s->nrunnable) {
        uint32_t i = s->runnable[--s->nrunnable];
        if (s->threads[i].sp)
            scan_values(s, s->threads[i].regs, s->threads[i].nregs);
        for (uint32_t d = s->threads[i].first_dependent; d != NO_THREAD; d = s->threads[d].next_dependent)
            thread_may_run(s, d);
    }
}

/* A pointer outside the heaps: into an mmapped chunk or a part of a parked
 * thread. Its descriptor counts only through its exact address, its
 * pthread_t, and only as a way to cancel it out of its wait. */
static void mark_extent_at(struct scan *s, uint64_t v)
{
    size_t e = extent_of(s, v);
    if (e == SIZE_MAX)
        return;
    if (s->ext[e].kind != EXT_TCB) {
        mark_extent(s, e);
        return;
    }
    struct thread_info *t = &s->threads[s->ext[e].thread];
    if (v == t->tp && t->cancellable && !t->may_run) {
        t->by_handle = true;
        thread_may_run(s, s->ext[e].thread);
    }
}

/* Mark the block v points into, if any. A chunk is worked on later only if
 * it has pointers or was not recorded; most heap blocks hold data, and
 * marking them is one bit. A chunk malloc holds free is no block. */
static void mark_address(struct scan *s, uint64_t v)
{
    const struct span *sp = span_of(s, v);
    if (!sp) {
        mark_extent_at(s, v);
        return;
    }
    uint64_t g;
    if (!chunk_holding(s, sp, v, &g))
        return;
    struct span_word *word = &s->pool[sp->word0 + (g >> 6)];
    uint64_t bit = 1ull << (g & 63);
    if (word->freed & bit) {
        if (s->slices)
            mark_extent_at(s, v);   /* a GLib slab's: the slice chunk around v, if any */
        return;
    }
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
        size_t got = scan_read(s, s->buf, lo, len);
        if (got)
            scan_words(s, s->buf, got);
        lo += got ? got : 4096;
        lo &= ~7ull;
    }
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
        long got = s->src->ops->read_many(s->src, local.iov_base, local.iov_len, remote, nio);
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

/* Extents by address (the mmapped chunks come in order, the threads'
 * parts after them); each parked thread learns where its parts went. */
static void sort_extents(struct scan *s, struct thread_info *ti)
{
    qsort(s->ext, s->next, sizeof *s->ext, compare_extent);
    for (size_t k = 0; k < s->next; k++) {
        const struct extent *e = &s->ext[k];
        if (e->thread == NO_THREAD)
            continue;
        if (e->kind == EXT_STACK)
            ti[e->thread].ext_stack = k;
        else if (e->kind == EXT_TLS)
            ti[e->thread].ext_tls = k;
        else if (e->kind == EXT_TCB)
            ti[e->thread].ext_tcb = k;
    }
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
static uint64_t confirmation_due_ns;   /* the earliest a scan could confirm an unconfirmed finding */

bool lw_reach_wants_recheck(void) { return recheck_wanted; }

uint64_t lw_reach_confirmation_due_ns(void) { return recheck_wanted ? confirmation_due_ns : 0; }

/* A confirming scan due (0: none) within `within` of now, or due already:
 * the scan that found the finding ended a moment before it could confirm
 * it, and a server starved of CPU finished judging past that moment (then
 * the next scan confirms; seen as a first ask that said `waiting` under
 * load, 14 times in 600). */
static bool confirmation_near(uint64_t due, uint64_t now, uint64_t within)
{
    return due && (due <= now || due - now <= within);
}

bool lw_reach_confirmation_within(uint64_t now, uint64_t within_ns)
{
    return confirmation_near(lw_reach_confirmation_due_ns(), now, within_ns);
}

static struct sighting *find_sighting(int32_t tid, uint64_t object, uint64_t wait_start_ns)
{
    for (size_t i = 0; i < nsightings; i++)
        if (sightings[i].tid == tid && sightings[i].object == object &&
            sightings[i].wait_start == wait_start_ns)
            return &sightings[i];
    return NULL;
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

/* Mark from the roots; a candidate whose object is reachable may run, and
 * so may whatever depends on it: their parts join the mark, to a fixpoint. */
static void mark_to_fixpoint(struct scan *s, struct thread_info *ti, size_t n)
{
    block_bounds(s);
    for (size_t i = 0; i < s->nmaps; i++) {   /* the roots (but what the scan mapped since) */
        uint64_t at = s->maps[i].lo, a, b;
        while (s->maps[i].kind == MAP_ROOT && scan_next_unclaimed(s, &at, s->maps[i].hi, &a, &b))
            scan_range(s, a, b);
    }
    for (size_t i = 0; i < n; i++)   /* the registers of live threads are roots too */
        if (!ti[i].excluded && ti[i].sp)
            scan_values(s, ti[i].regs, ti[i].nregs);
    for (;;) {
        wake_dependents(s);
        drain_worklist(s);
        if (s->nrunnable)
            continue;
        bool changed = false;
        size_t undecided = 0;
        for (size_t i = 0; i < n; i++) {
            if (!ti[i].candidate || ti[i].may_run)
                continue;
            /* Outside every block (a global, a live stack, memory we do not
             * understand): reachable, conservatively. */
            if (scan_block_around(s, ti[i].object, &ti[i].object_in) == 0) {
                undecided++;
                continue;
            }
            thread_may_run(s, (uint32_t)i);
            changed = true;
        }
        /* Every candidate may run: what the rest of the mark would reach
         * decides nothing (a healthy pool of 10,000 parked workers stops
         * here, before their 10,000 stacks are read). */
        if (!changed || !undecided)
            break;
    }
    for (size_t i = 0; i < n; i++)
        if (ti[i].candidate)
            ti[i].reachable = ti[i].may_run;
}

/* ---- the scan's arrays outlive it by a few seconds ----
 * Scans come in pairs (the two-scan rule) or once a second while someone
 * watches; mapping the bitmaps (3% of the heap) and the recorded pointers
 * afresh each time costs a page fault per 4 KiB. So they (SCAN_KEPT_ARRAYS) are
 * kept for the next scan
 * and unmapped by the server's tick once SPARE_NS has passed without one
 * (or longer than a scan answers for, below: the next scan finds them). */
#define SPARE_NS 3000000000ull

static uint64_t remembered_took_ns;   /* how long the last real scan took */
static uint64_t last_scan_cpu_ns;     /* and its CPU time */

static struct scan spare;   /* only the block and edge arrays, with their capacities */
static uint64_t spare_since_ns;

static void release_arrays(struct scan *s)
{
#define RELEASE(p, cap) scan_unmap(s->p, s->cap, sizeof *s->p), s->p = NULL, s->cap = 0;
    SCAN_KEPT_ARRAYS(RELEASE)
#undef RELEASE
}

static void move_arrays(struct scan *to, struct scan *from)
{
#define MOVE(p, cap) to->p = from->p, to->cap = from->cap, from->p = NULL, from->cap = 0;
    SCAN_KEPT_ARRAYS(MOVE)
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
    scan_unmap(s->maps, s->capmaps, sizeof *s->maps);
    if (s->buf)
        munmap(s->buf, READ_CHUNK);
}

/* A frozen process: nothing moved while the scan read it and every
 * register was read, so one scan that finds an object unreachable is the
 * proof (the two-scan rule is for a program that runs on meanwhile). */
static void record_frozen_results(struct lw_snapshot *snap, const struct thread_info *ti, bool sound)
{
    snap->reach_frozen = sound;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!ti[i].candidate)
            continue;
        struct lw_snap_wait *w = &snap->threads[i].wait;
        /* (a thread whose registers could not be read leaves it unproven) */
        w->reach = ti[i].reachable ? LW_REACH_REACHABLE : sound ? LW_REACH_CONFIRMED : LW_REACH_UNREACHABLE;
        if (!ti[i].reachable && ti[i].object_in.start &&
            (ti[i].object_in.kind == EXT_CHUNK || ti[i].object_in.kind == EXT_SLICE)) {
            w->reach_block = ti[i].object_in.start;
            w->reach_block_size = ti[i].object_in.end - ti[i].object_in.start;
        }
    }
}

/* Record this scan's findings in the snapshot, with the two-scan rule. */
static void record_results(struct lw_snapshot *snap, const struct thread_info *ti, bool sound)
{
    if (snap->source->frozen) {
        record_frozen_results(snap, ti, sound);
        return;
    }
    static struct sighting next[MAX_CONFIRM];
    size_t nnext = 0;
    uint64_t now = lw_now_ns();
    recheck_wanted = false;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!ti[i].candidate)
            continue;
        struct lw_snap_wait *w = &snap->threads[i].wait;
        uint64_t key = w->start_ns;   /* the wait's own start: unchanged wait, same key */
        struct sighting *seen = find_sighting(ti[i].tid, w->object, key);
        if (ti[i].reachable) {
            /* A sound scan that reaches the object restarts its clock. An
             * unsound one counts for nothing here either: a running thread's
             * whole stack is a root to it, stale frames included, so it
             * "reaches" what the sound scans before and after found
             * unreachable (a main that wakes each second would otherwise
             * reset the proof of its leaked worker again and again). */
            w->reach = LW_REACH_REACHABLE;
            if (!sound && seen && nnext < MAX_CONFIRM)
                next[nnext++] = *seen;
            continue;
        }
        w->reach = LW_REACH_UNREACHABLE;
        if (ti[i].object_in.start && (ti[i].object_in.kind == EXT_CHUNK || ti[i].object_in.kind == EXT_SLICE)) {
            w->reach_block = ti[i].object_in.start;   /* what malloc returned */
            w->reach_block_size = ti[i].object_in.end - ti[i].object_in.start;
        }
        if (!sound) {
            /* A live thread's registers were out of sight: this scan counts
             * for nothing, neither as a first sighting nor as a second. The
             * background prover tries again as it backs off (a thread busy
             * for good would otherwise cost a scan a second). */
            w->unreachable_for = seen ? (double)(now - seen->first_ns) / 1e9 : 0;
            if (seen && nnext < MAX_CONFIRM)
                next[nnext++] = *seen;
            continue;
        }
        struct sighting cur = seen ? *seen : (struct sighting){ ti[i].tid, w->object, key, now, 0 };
        cur.scans++;
        w->unreachable_for = (double)(now - cur.first_ns) / 1e9;
        if (cur.scans >= 2 && now - cur.first_ns >= CONFIRM_NS) {
            w->reach = LW_REACH_CONFIRMED;
        } else {
            uint64_t due = cur.first_ns + CONFIRM_NS;
            if (!recheck_wanted || due < confirmation_due_ns)
                confirmation_due_ns = due;
            recheck_wanted = true;
        }
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
    uint32_t path;           /* 1 + index in remembered_paths, 0 if none */
};

static struct remembered remembered[MAX_CONFIRM];   /* by tid, as the snapshot lists threads */
static size_t nremembered;
static uint64_t remembered_ns;
static char remembered_note[sizeof ((struct lw_snapshot *)0)->reach_note];
static struct lw_reach_path *remembered_paths;
static size_t nremembered_paths;
static bool remembered_with_paths;   /* the scan looked for the paths of what it found reachable */

static int compare_remembered_tid(const void *key, const void *elem)
{
    int32_t a = *(const int32_t *)key, b = ((const struct remembered *)elem)->tid;
    return (a > b) - (a < b);
}

static const struct remembered *find_remembered(const struct lw_snap_thread *t)
{
    const struct remembered *r = bsearch(&t->tid, remembered, nremembered, sizeof *remembered, compare_remembered_tid);
    return r && r->object == t->wait.object && r->start_ns == t->wait.start_ns ? r : NULL;
}

static void remember_paths(const struct lw_snapshot *snap, bool with_paths)
{
    free(remembered_paths);
    remembered_paths = NULL;
    nremembered_paths = 0;
    remembered_with_paths = with_paths;
    if (!snap->npaths)
        return;
    remembered_paths = malloc(snap->npaths * sizeof *remembered_paths);
    if (!remembered_paths) {
        remembered_with_paths = false;
        return;
    }
    memcpy(remembered_paths, snap->paths, snap->npaths * sizeof *remembered_paths);
    nremembered_paths = snap->npaths;
}

static void remember_scan(const struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t started, uint64_t now,
                          bool with_paths)
{
    nremembered = 0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
            continue;
        if (nremembered == MAX_CONFIRM) {
            nremembered = 0;   /* too many to keep: scan every time */
            return;
        }
        const struct lw_snap_thread *t = &snap->threads[i];
        remembered[nremembered++] = (struct remembered){ t->tid, t->wait.object, t->wait.start_ns, t->wait.reach,
                                                         t->wait.reach_block, t->wait.reach_block_size,
                                                         t->wait.unreachable_for, t->wait.reach_path };
    }
    remembered_ns = now;
    remembered_took_ns = now - started;
    snprintf(remembered_note, sizeof remembered_note, "%s", snap->reach_note);
    remember_paths(snap, with_paths);
}

/* Answer from the last scan if it is recent and knew every candidate (and,
 * when paths are wanted, looked for them). */
static bool answer_from_last_scan(struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t now,
                                  bool want_paths)
{
    uint64_t reuse = 4 * remembered_took_ns > REUSE_NS ? 4 * remembered_took_ns : REUSE_NS;
    if (!nremembered || now - remembered_ns >= reuse || (want_paths && !remembered_with_paths))
        return false;
    if (recheck_wanted && now >= confirmation_due_ns)
        return false;   /* a finding waits for the scan that may confirm it: that one is due */
    for (size_t i = 0; i < snap->nthreads; i++)
        if (lw_reach_is_candidate(snap, i, &a->verdicts[i]) && !find_remembered(&snap->threads[i]))
            return false;
    struct lw_reach_path *paths = NULL;
    if (nremembered_paths && !(paths = malloc(nremembered_paths * sizeof *paths)))
        return false;
    if (paths)
        memcpy(paths, remembered_paths, nremembered_paths * sizeof *paths);
    free(snap->paths);
    snap->paths = paths;
    snap->npaths = nremembered_paths;
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
        w->reach_path = r->path;
    }
    int len = snprintf(snap->reach_note, sizeof snap->reach_note, "%.250s", remembered_note);
    snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, " (the scan of %.0f ms ago)", age * 1e3);
    return true;
}

/* The scan's own memory, taken before /proc/self/maps is read (nothing of
 * ours is allocated from malloc after that, until the heaps are walked). */
struct scan_memory {
    struct thread_info *ti;
    uint32_t *runnable, *path;
    unsigned char *state;
};

static bool take_scan_memory(struct scan_memory *m, struct scan *s, size_t n)
{
    size_t k = n ? n : 1;
    m->ti = calloc(k, sizeof *m->ti);
    m->runnable = calloc(k, sizeof *m->runnable);
    m->path = calloc(k, sizeof *m->path);
    m->state = calloc(k, 1);
    s->buf = mmap(NULL, READ_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->buf == MAP_FAILED)
        s->buf = NULL;
    s->threads = m->ti;
    s->nthreads = n;
    s->runnable = m->runnable;
    return m->ti && m->runnable && m->path && m->state && s->buf;
}

static void give_back(struct scan_memory *m, struct scan *s)
{
    free(m->ti);
    free(m->runnable);
    free(m->path);
    free(m->state);
    free_scan(s);
}

/* A scan that proves nothing forgets what earlier ones saw. */
static void forget_findings(void)
{
    nsightings = nremembered = 0;
    recheck_wanted = false;
}

/* A frozen process stays stopped while the scan reads it: past this much
 * memory to read (about a second and a half at the scan's rate) it is let
 * go unscanned rather than held; rule 3 then proves nothing there. */
#define FROZEN_SCAN_LIMIT (2ull << 30)

static bool too_much_to_hold(struct scan *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->nmaps; i++)
        if (s->maps[i].kind == MAP_ROOT)
            total += s->maps[i].hi - s->maps[i].lo;
    if (!s->src->frozen || total <= FROZEN_SCAN_LIMIT)
        return false;
    snprintf(s->problem, sizeof s->problem, "%llu MiB of memory is more than a stopped process is held for "
             "(%llu MiB)", (unsigned long long)(total >> 20), (unsigned long long)(FROZEN_SCAN_LIMIT >> 20));
    return true;
}

/* Everything up to the mark: the mappings, our own memory out, the heaps
 * walked, malloc's free chunks, the threads placed. NULL, or why not. */
static const char *prepare_scan(struct scan *s, const struct lw_snapshot *snap, const struct lw_analysis *a,
                                struct scan_memory *m, struct lw_maps *maps)
{
    size_t n = snap->nthreads;
    s->tcache_key = s->src->tcache_key;   /* (the self source learned it when it was made: malloc) */
    if (!maps->n || !take_scan_memory(m, s, n) || !scan_parse_maps(s, maps))
        return "no scan (out of memory or no /proc)";
    s->src->ops->prepare_scan(s->src, s);
    if (too_much_to_hold(s))
        return s->problem;
    if (!scan_filter_alloc(s))
        return "no scan (out of memory)";
    s->recording = true;
    scan_skip_own_mmapped(s);
    scan_filter_fill(s);
    scan_find_heaps(s);
    scan_free_malloc_chunks(s);
    scan_forget_own_blocks(s);
    scan_split_gslice(s);
    scan_gather_threads(s, snap, a, m->ti);
    scan_exclude_dependents(m->ti, n, m->path, m->state);
    scan_place_stacks(s, m->ti, n);
    scan_skip_dead_stacks(s, snap, m->ti, n);
    return NULL;
}

/* How long the search for paths may take: a scan's own time, at least
 * PATHS_MIN_NS (a query answers within a bound). */
#define PATHS_MIN_NS 100000000ull
#define PATHS_MAX_NS 400000000ull

/* ---- a process whose candidates all wait on globals ----
 * A module's data is a root, never a block (the heaps walked are
 * anonymous): an object there is reachable, whatever else the memory
 * holds. When every candidate's object lies in a file's writable mapping
 * (or its bss), no scan of the whole heap is needed to learn that: a
 * frozen process is let go at once, and this process's server answers
 * 10,000 parked threads on globals without reading their stacks. Each
 * gets the path a scan would give it: a data root, no step. None of them
 * can be a finding, so the two-scan rule has nothing to confirm. */

/* A thread's stack pointer, 0 if unknown: a hooked wait's own frame says
 * it in this process (no /proc read for each of 10,000 parked threads). */
static uint64_t stack_pointer_of(const struct lw_snapshot *snap, const struct lw_snap_thread *t)
{
    struct lw_regs regs;
    if (!snap->source->frozen && t->waiting && t->wait.source == LW_SOURCE_HOOK && t->wait.hook_sp)
        return t->wait.hook_sp;
    return snap->source->ops->registers(snap->source, t->tid, &regs) ? regs.sp : 0;
}

/* A module's bss: the anonymous mapping right after its writable file
 * mapping, which the scan keeps a root: no thread's stack or descriptor
 * in it (no thread part), not a heap's 64 MiB-aligned start, not starting
 * with an mmapped chunk's header. */
static bool is_bss(const struct lw_snapshot *snap, const struct lw_maps *maps, const struct lw_mapping *m)
{
    size_t i = (size_t)(m - maps->v);
    if (i == 0 || m->name[0] || !m->anonymous || m->shared || !(m->lo & (HEAP_MAX_SIZE - 1)))
        return false;
    const struct lw_mapping *file = m - 1;
    if (file->hi != m->lo || !file->writable || file->name[0] != '/')
        return false;
    uint64_t hdr[2];
    if (lw_source_read_all(snap->source, hdr, m->lo, sizeof hdr) && hdr[0] == 0 && (hdr[1] & IS_MMAPPED))
        return false;
    for (size_t k = 0; k < snap->nthreads; k++) {
        const struct lw_snap_thread *t = &snap->threads[k];
        uint64_t sp = stack_pointer_of(snap, t);
        if ((t->pthread >= m->lo && t->pthread < m->hi) || (sp >= m->lo && sp < m->hi) || !t->pthread)
            return false;
    }
    return true;
}

/* is_bss looks at every thread: asked once per mapping, not per candidate
 * (10,000 waits on one bss object). */
struct bss_memo {
    const struct lw_mapping *m;
    bool is_bss;
};

static bool in_module_data(const struct lw_snapshot *snap, const struct lw_maps *maps, uint64_t object,
                           const struct lw_mapping **where, struct bss_memo *memo)
{
    *where = lw_maps_find(maps, object);
    if (!*where || !(*where)->writable)
        return false;
    if ((*where)->name[0] == '/')
        return true;
    if (memo->m != *where)
        *memo = (struct bss_memo){ *where, is_bss(snap, maps, *where) };
    return memo->is_bss;
}

static uint32_t global_path(struct lw_snapshot *snap, uint64_t object, const struct lw_mapping *m)
{
    for (size_t k = 0; k < snap->npaths; k++)
        if (snap->paths[k].root_address == object)
            return (uint32_t)k + 1;
    struct lw_reach_path *p = &snap->paths[snap->npaths++];
    memset(p, 0, sizeof *p);
    p->root = LW_ROOT_DATA;
    p->root_address = object;
    p->root_lo = m->lo;
    p->root_hi = m->hi;
    p->complete = true;
    return (uint32_t)snap->npaths;
}

static bool answer_for_globals(struct lw_snapshot *snap, const struct lw_analysis *a, size_t candidates,
                               bool want_paths, const struct lw_maps *maps)
{
    const struct lw_mapping *m;
    struct bss_memo memo = { NULL, false };
    bool all = true;
    for (size_t i = 0; i < snap->nthreads && all; i++)
        all = !lw_reach_is_candidate(snap, i, &a->verdicts[i]) ||
              in_module_data(snap, maps, snap->threads[i].wait.object, &m, &memo);
    struct lw_reach_path *paths = all && want_paths ? calloc(candidates, sizeof *paths) : NULL;
    if (all) {
        free(snap->paths);
        snap->paths = paths;
        snap->npaths = 0;
        for (size_t i = 0; i < snap->nthreads; i++) {
            struct lw_snap_wait *w = &snap->threads[i].wait;
            if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
                continue;
            w->reach = LW_REACH_REACHABLE;
            if (paths && in_module_data(snap, maps, w->object, &m, &memo))
                w->reach_path = global_path(snap, w->object, m);
        }
        snprintf(snap->reach_note, sizeof snap->reach_note,
                 "reachability: %zu candidate wait%s, every object in a module's data (a global): reachable, no scan",
                 candidates, candidates == 1 ? "" : "s");
        nsightings = 0;   /* (no finding left to confirm) */
        recheck_wanted = false;
    }
    return all;
}

/* A frozen process waits for the search: a tenth of the time there. */
static uint64_t paths_budget(const struct lw_source *src, uint64_t mark_took)
{
    uint64_t lo = PATHS_MIN_NS, hi = PATHS_MAX_NS;
    if (src->frozen) {
        lo /= 10;
        hi /= 10;
    }
    return mark_took < lo ? lo : mark_took > hi ? hi : mark_took;
}

int lw_reach_scan(struct lw_snapshot *snap, const struct lw_analysis *a, bool want_paths)
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
    if (!snap->source->frozen && answer_from_last_scan(snap, a, t0, want_paths))
        return 0;
    /* The mappings, read once: for the globals' answer and for the scan
     * (10,000 threads' stacks are 20,000 lines of /proc/self/maps) */
    struct lw_maps maps = LW_MAPS_INIT;
    if (!snap->source->ops->maps(snap->source, &maps))
        lw_maps_free(&maps);
    if (maps.n && answer_for_globals(snap, a, candidates, want_paths, &maps)) {
        lw_maps_free(&maps);
        return 0;
    }
    struct scan s;
    struct scan_memory m;
    memset(&s, 0, sizeof s);
    memset(&m, 0, sizeof m);
    s.src = snap->source;
    move_arrays(&s, &spare);
    const char *cannot = prepare_scan(&s, snap, a, &m, &maps);
    lw_maps_free(&maps);   /* (taken by the scan, unless it could not start) */
    const char *s_ = candidates == 1 ? "" : "s";
    if (cannot) {
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: %s", cannot);
        give_back(&m, &s);
        return -1;
    }
    if (roots_too_large(&s)) {
        /* Not reading everything would make "unreachable" unsound: no scan. */
        forget_findings();
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: %zu candidate wait%s, no scan: %s",
                 candidates, s_, s.problem);
        give_back(&m, &s);
        return 0;
    }
    sort_extents(&s, m.ti);
    mark_to_fixpoint(&s, m.ti, n);
    if (s.incomplete) {
        forget_findings();
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: %zu candidate wait%s, no proof: %s",
                 candidates, s_, s.problem[0] ? s.problem : "out of memory while marking");
        give_back(&m, &s);
        return 0;
    }
    record_results(snap, m.ti, s.registers_unseen == 0);
    last_scan_cpu_ns = lw_thread_cpu_ns() - cpu0;
    uint64_t mark_took = lw_now_ns() - t0, paths_t0 = lw_now_ns();
    if (want_paths)
        scan_find_paths(&s, snap, paths_budget(snap->source, mark_took));
    uint64_t paths_took = lw_now_ns() - paths_t0;
    int len = snprintf(snap->reach_note, sizeof snap->reach_note,
                       "reachability: %zu candidate wait%s, %.1f MiB scanned in %.1f ms (%.1f ms of CPU)", candidates,
                       s_, (double)s.bytes_scanned / (1 << 20), (double)mark_took / 1e6,
                       (double)last_scan_cpu_ns / 1e6);
    if (snap->npaths && len > 0 && (size_t)len < sizeof snap->reach_note)
        len += snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, "; paths in %.1f ms",
                        (double)paths_took / 1e6);
    if (s.registers_unseen && len > 0 && (size_t)len < sizeof snap->reach_note)
        len += snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len,
                        "; proves nothing: %zu live thread%s (tid %d first) %s", s.registers_unseen,
                        s.registers_unseen == 1 ? "" : "s", (int)s.unseen_tid,
                        s.src->frozen ? "whose registers could not be read"
                                      : "not parked in a recorded wait, whose registers cannot be read");
    if (s.slices && len > 0 && (size_t)len < sizeof snap->reach_note)
        len += snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, "; %zu GLib slices",
                        s.slices);
    if (s.problem[0] && len > 0 && (size_t)len < sizeof snap->reach_note)
        snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, "; %s", s.problem);
    remember_scan(snap, a, t0, lw_now_ns(), want_paths);
    give_back(&m, &s);
    return 0;
}

/* The whole judgement: rules 1, 2 and 4, then the scan for what they left
 * undecided, then the analysis again with its findings (rule 3). */
int lw_analyze_with_reach(struct lw_snapshot *snap, struct lw_analysis *a, bool want_paths)
{
    if (lw_analyze(snap, a) != 0)
        return -1;
    size_t candidates = 0;
    for (size_t i = 0; i < snap->nthreads; i++)
        candidates += lw_reach_is_candidate(snap, i, &a->verdicts[i]);
    if (lw_reach_scan(snap, a, want_paths) != 0 || !candidates)
        return 0;
    lw_analysis_free(a);
    return lw_analyze(snap, a);
}
