/*
 * scanthreads.c — the threads as the reachability scan sees them (reach.c):
 * each one's registers, descriptor and stack pointer, which are roots and
 * which are blocks (a parked candidate, a thread stuck by another rule, or
 * one waiting on either, is three blocks: its frames, its static TLS, its
 * descriptor), the chains of owner edges among the excluded, and the
 * stacks glibc keeps for threads that exited (dead memory, no root);
 * and which waits are the scan's candidates (lw_reach_is_candidate).
 */
#include "core/scan.h"
#include "core/snapshot.h"
#include "core/source.h"

#include <stdlib.h>
#include <string.h>

/* ---- which waits the scan judges ---- */

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

/* ---- the threads ---- */

/* Whether pthread_cancel can end the wait: it is in a cancellation point
 * (condvar, semaphore and join waits are; mutex, rwlock and barrier waits
 * and a futex through syscall() are not; a wait seen only in /proc may be
 * anything). */
static bool waits_in_cancellation_point(const struct lw_snap_wait *w)
{
    switch (w->kind) {
    case LW_WAIT_COND: case LW_WAIT_SEM: case LW_WAIT_JOIN: case LW_WAIT_SYSCALL:
        return true;
    default:
        return false;
    }
}

/* Rule 1's owner edge (as the analysis has it): the thread can run only
 * once its owner or join target has. */
static bool has_owner_edge(const struct lw_snapshot *snap, const struct lw_snap_thread *t)
{
    const struct lw_snap_wait *w = &t->wait;
    if (!t->waiting || w->seconds * 1000 < snap->settle_ms || w->timed || w->shared || w->owner <= 0 ||
        w->source == LW_SOURCE_PROC || w->owner_gone)
        return false;
    switch (w->kind) {
    case LW_WAIT_MUTEX:
        return !w->robust;
    case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE: case LW_WAIT_JOIN: case LW_WAIT_FUTEX:
        return true;
    default:
        return false;
    }
}

static int compare_tid_to_thread(const void *key, const void *elem)
{
    int32_t a = *(const int32_t *)key, b = ((const struct lw_snap_thread *)elem)->tid;
    return (a > b) - (a < b);
}

/* snap->threads is sorted by tid (as /proc lists them). */
static uint32_t thread_with_tid(const struct lw_snapshot *snap, int32_t tid)
{
    const struct lw_snap_thread *t = bsearch(&tid, snap->threads, snap->nthreads, sizeof *snap->threads,
                                             compare_tid_to_thread);
    return t ? (uint32_t)(t - snap->threads) : NO_THREAD;
}

/* Whether, from inside the process, every register of a live thread that
 * could hold a pointer is in memory the scan reads: only while it is
 * inside a recorded wait, whose frame holds the caller's callee-saved
 * registers (hookcore.h, LW_RECORDED_CALL; the others are dead across a
 * call) and whose syscall arguments /proc shows — asleep there, or woken
 * and not yet returned (runnable: our code and glibc's run then, not the
 * program's; a signal handler that ran for seconds in the middle of a wait
 * would be the one exception). A thread running its own code, or blocked
 * in a call no hook saw, keeps registers nobody can read from inside the
 * process: a pointer only there would be missed. */
static bool in_recorded_wait(const struct lw_snap_thread *t)
{
    return t->waiting && t->wait.source == LW_SOURCE_HOOK;
}

/* An excluded thread of this process parked in a recorded wait (a
 * candidate, or stuck by another rule: the two-scan rule holds its wait
 * unchanged): what it may use once it runs again lies from its hook's frame
 * up (the caller's callee-saved registers are stored there, LW_RECORDED_CALL),
 * and glibc below that frame holds only what the hook was given: the
 * object and the mutex or second object. Those stand for its registers, so
 * 10,000 parked candidates cost no /proc read each. */
static bool registers_from_record(const struct thread_info *ti, const struct lw_snap_thread *t,
                                  struct lw_regs *out)
{
    if (!ti->in_recorded_wait || !ti->excluded || !t->wait.hook_sp)
        return false;
    memset(out, 0, sizeof *out);
    out->sp = t->wait.hook_sp;
    if (t->wait.object)
        out->words[out->nwords++] = t->wait.object;
    if (t->wait.aux)
        out->words[out->nwords++] = t->wait.aux;
    return true;
}

/* A thread's registers, as the source shows them (a frozen source: every
 * thread's, all of them; this process: a parked thread's stack pointer and
 * syscall arguments, or what its record says, above). true: every register
 * that may hold a pointer is seen, in the registers read or in memory the
 * scan reads. */
static bool read_registers(struct scan *s, const struct lw_snap_thread *t, struct thread_info *ti)
{
    struct lw_regs regs;
    bool got = registers_from_record(ti, t, &regs) ||
               ((t->waiting || s->src->frozen) && s->src->ops->registers(s->src, t->tid, &regs));
    if (got) {
        ti->sp = regs.sp;
        ti->nregs = regs.nwords < LW_REGS_MAX ? regs.nwords : LW_REGS_MAX;
        memcpy(ti->regs, regs.words, ti->nregs * sizeof *ti->regs);
    }
    return s->src->frozen ? got : ti->in_recorded_wait;
}

/* A thread parked in a cancellation point stays cancellable unless its
 * cancelhandling word says cancellation is disabled: the words of every
 * such thread read together (10,000 threads, 20 reads). */
#define CANCEL_BATCH 512

struct cancel_read {
    struct thread_info *ti;
    const uint32_t *thread;   /* range k -> its thread */
};

static void note_cancel_state(void *ctx, size_t k, uint64_t addr, const uint8_t *bytes, size_t got)
{
    struct cancel_read *cr = ctx;
    uint32_t handling;
    (void)addr;
    if (got < sizeof handling)
        return;   /* unread: it may be cancelled */
    memcpy(&handling, bytes, sizeof handling);
    cr->ti[cr->thread[k]].cancellable = lw_thread_cancel_enabled(handling);
}

static void read_cancel_states(struct scan *s, size_t n, struct thread_info *ti)
{
    struct iovec ranges[CANCEL_BATCH];
    uint32_t thread[CANCEL_BATCH];
    struct cancel_read cr = { ti, thread };
    size_t m = 0;
    uint64_t at;
    for (size_t i = 0; i <= n; i++) {
        if (m == CANCEL_BATCH || (i == n && m)) {
            scan_read_ranges(s, ranges, m, note_cancel_state, &cr);
            m = 0;
        }
        if (i < n && ti[i].cancellable && lw_thread_cancel_word(&s->src->layout, ti[i].tp, &at)) {
            ranges[m] = (struct iovec){ (void *)(uintptr_t)at, sizeof(uint32_t) };
            thread[m++] = (uint32_t)i;
        }
    }
}

void scan_gather_threads(struct scan *s, const struct lw_snapshot *snap, const struct lw_analysis *a,
                         struct thread_info *ti)
{
    s->src->ops->threads_begin(s->src);
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct lw_snap_thread *t = &snap->threads[i];
        enum lw_verdict v = a->verdicts[i].verdict;
        ti[i] = (struct thread_info){ .tid = t->tid, .tp = t->pthread, .reachable = -1, .depends_on = NO_THREAD,
                                      .first_dependent = NO_THREAD, .next_dependent = NO_THREAD,
                                      .ext_stack = SIZE_MAX, .ext_tls = SIZE_MAX, .ext_tcb = SIZE_MAX };
        ti[i].candidate = lw_reach_is_candidate(snap, i, &a->verdicts[i]);
        ti[i].excluded = ti[i].candidate || v == LW_LEAKED || v == LW_DEADLOCKED;
        ti[i].object = t->wait.object;
        ti[i].in_recorded_wait = !s->src->frozen && in_recorded_wait(t);
        if (!read_registers(s, t, &ti[i]) && !ti[i].excluded) {
            /* a live thread's registers out of sight: this scan proves nothing */
            if (!s->registers_unseen++)
                s->unseen_tid = t->tid;
        }
        ti[i].cancellable = t->waiting && waits_in_cancellation_point(&t->wait);
        if (has_owner_edge(snap, t))
            ti[i].depends_on = thread_with_tid(snap, t->wait.owner);
    }
    if (!s->src->ops->threads_end(s->src))
        s->incomplete = true;   /* the stack pointers read may be another directory's: no proof */
    read_cancel_states(s, snap->nthreads, ti);
}

/* A thread waiting on its owner is excluded (no root) when the owner is,
 * following chains; a cycle not judged deadlocked stays roots. Then each
 * excluded owner lists the threads that depend on it. `state` has n
 * entries. */
void scan_exclude_dependents(struct thread_info *ti, size_t n, uint32_t *path, unsigned char *state)
{
    enum { UNSEEN, ON_PATH, DECIDED };
    memset(state, UNSEEN, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint32_t j = (uint32_t)i;
        while (!ti[j].excluded && ti[j].depends_on != NO_THREAD && state[j] == UNSEEN) {
            state[j] = ON_PATH;
            path[len++] = j;
            j = ti[j].depends_on;
        }
        bool excluded = state[j] != ON_PATH && ti[j].excluded;
        while (len)
            ti[path[--len]].excluded = excluded, state[path[len]] = DECIDED;
    }
    for (size_t i = 0; i < n; i++)
        if (ti[i].excluded && ti[i].depends_on != NO_THREAD) {
            ti[i].next_dependent = ti[ti[i].depends_on].first_dependent;
            ti[ti[i].depends_on].first_dependent = (uint32_t)i;
        }
}

/* The main thread keeps its TLS and descriptor in a mapping of their own,
 * not at the top of its stack: carve them out of that root. The
 * descriptor's size is our own thread's less its alignment slack (the last
 * 64 bytes stay a root: more kept, never less). */
static bool place_tls_apart(struct scan *s, const struct thread_info *t, uint32_t i)
{
    const struct lw_thread_layout *l = &s->src->layout;
    uint64_t tls_lo = t->tp + (uint64_t)l->tls_low;
    uint64_t tcb_hi = t->tp + (l->tcb_size & ~63u) - 64;
    if (!l->tls_low || l->tcb_size < 256 || tls_lo >= t->tp)
        return true;   /* unknown: they stay roots */
    struct mapping *m = scan_mapping_at(s, tls_lo);
    if (!m || m->kind != MAP_ROOT || tcb_hi > m->hi)
        return true;
    scan_skip_range(s, tls_lo, tcb_hi);
    return scan_add_extent(s, tls_lo, t->tp, i, EXT_TLS) && scan_add_extent(s, t->tp, tcb_hi, i, EXT_TCB);
}

/* How much below a parked thread's stack pointer may still be live: the
 * red zone (128 bytes a leaf function may use without moving the stack
 * pointer) of whatever made the syscall. Inside a recorded wait that is
 * glibc's syscall path, under our frame: nothing of the program's lives
 * there (the waited object is in the syscall's arguments, read from /proc),
 * and what a returned call left there is stale. A frozen thread stopped
 * wherever it was: its red zone stays. */
static uint64_t red_zone(const struct thread_info *t)
{
    return t->in_recorded_wait ? 0 : 128;
}

/* An excluded thread's stack mapping as three blocks (see struct extent):
 * its frames from the saved stack pointer (less any red zone) up to its
 * static TLS, the TLS up to its descriptor, the descriptor to the top.
 * What lies below the stack pointer is dead. false: no stack found. */
static bool place_parts(struct scan *s, const struct thread_info *t, uint32_t i)
{
    struct mapping *m = t->sp ? scan_mapping_at(s, t->sp) : NULL;
    if (!m && t->tp)
        m = scan_mapping_at(s, t->tp);
    if (!m || m->kind != MAP_ROOT)
        return false;
    uint64_t mlo = m->lo, mhi = m->hi;
    uint64_t red = red_zone(t);
    uint64_t lo = t->sp && t->sp >= mlo ? (t->sp > mlo + red ? t->sp - red : mlo) : mlo;
    bool tcb_here = t->tp > lo && t->tp < mhi;
    uint64_t tls_lo = tcb_here ? t->tp : mhi;
    if (tcb_here && s->src->layout.tls_low && t->tp + (uint64_t)s->src->layout.tls_low > lo)
        tls_lo = t->tp + (uint64_t)s->src->layout.tls_low;
    if (tls_lo <= lo)
        return false;
    scan_skip_range(s, mlo, mhi);
    bool ok = scan_add_extent(s, lo, tls_lo, i, EXT_STACK);
    if (tcb_here)
        ok = ok && scan_add_extent(s, tls_lo, t->tp, i, EXT_TLS) && scan_add_extent(s, t->tp, mhi, i, EXT_TCB);
    else if (t->tp)
        ok = ok && place_tls_apart(s, t, i);
    if (!ok)
        s->incomplete = true;   /* neither a root nor a block: no proof */
    return true;
}

/* Live threads' stacks (whole: TLS and descriptor included) are roots;
 * excluded threads' become blocks. */
void scan_place_stacks(struct scan *s, struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ti[i].excluded) {
            /* A live parked thread: its stack below the saved stack pointer
             * (and any red zone) is dead, and stale pointers there prove
             * nothing. */
            struct mapping *m = ti[i].sp ? scan_mapping_at(s, ti[i].sp) : NULL;
            uint64_t red = red_zone(&ti[i]);
            if (m && m->kind == MAP_ROOT && ti[i].sp - red > m->lo)
                scan_skip_range(s, m->lo, (ti[i].sp - red) & ~7ull);
            continue;
        }
        if (!place_parts(s, &ti[i], (uint32_t)i))
            ti[i].excluded = ti[i].candidate = false;   /* no stack found: keep it a root */
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

static void skip_dead_stack(struct scan *s, const struct thread_info *ti, size_t n, uint64_t tcb)
{
    struct mapping *m = tcb ? scan_mapping_at(s, tcb) : NULL;
    if (!m || m->kind != MAP_ROOT || m->shared || m->hi - tcb > TCB_NEAR_TOP || m == s->maps)
        return;
    const struct mapping *below = m - 1;
    if (below->hi != m->lo || below->readable || below->writable || stack_in_use(ti, n, m))
        return;
    scan_skip_range(s, m->lo, tcb & ~7ull);
}

/* The exited threads the registry remembers, and the descriptors found in
 * glibc's stack cache from outside (the snapshot's cached_tcbs). */
void scan_skip_dead_stacks(struct scan *s, const struct lw_snapshot *snap, const struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ti[i].tp)
            return;
    for (size_t k = 0; k < snap->nexited && snap->exited_pthreads; k++)
        skip_dead_stack(s, ti, n, snap->exited_pthreads[k]);
    for (size_t k = 0; k < snap->ncached_tcbs && snap->cached_tcbs; k++)
        skip_dead_stack(s, ti, n, snap->cached_tcbs[k]);
}
