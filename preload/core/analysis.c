/*
 * analysis.c — verdicts: a pure function from a snapshot to one verdict and
 * one reason per thread. No clocks, no /proc, no registry: everything it
 * knows is in the snapshot, so its cases are unit-tested on hand-built
 * snapshots (tests/unit/test_analysis.c).
 *
 * Passes, in the order of the design's proof rules:
 *   1. owner edges: a wait on a mutex, write-locked rwlock or PI futex points
 *      at its owner, a join at its target. Each thread has at most one such
 *      edge, so following them from any thread ends in a thread without one,
 *      an owner that no longer exists (leaked), or a cycle (deadlocked);
 *      threads leading into a leaked or deadlocked one are leaked too.
 *   2. quiescence: when no thread is live, every parked thread is leaked.
 *   3. reachability (reach.c scans; here: what it confirmed): an object no
 *      thread that may run can reach has no waker.
 *   4. fd channels: an in-process channel may be used by any thread that
 *      can run (an fd is a number), so its wait is leaked only when no
 *      other thread can run again (judge_by_liveness works out which can).
 * Then `suspect`: a channel wait stalled past the threshold whose every
 * counterpart in its history has exited or is stuck (evidence, not a
 * proof). Only waits older than the settle time are judged; anything the
 * snapshot cannot vouch for (a process-shared object, a robust mutex, an
 * owner that may be alive) leaves the thread `waiting`: a false alarm costs
 * more than a miss.
 */
#include "core/analysis_rules.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int compare_tid_pos(const void *a, const void *b)
{
    int32_t x = ((const struct tid_pos *)a)->tid, y = ((const struct tid_pos *)b)->tid;
    return (x > y) - (x < y);
}

/* ---- the analysis ---- */

static int build_indexes(struct ctx *c)
{
    size_t n = c->snap->nthreads;
    c->names = calloc(n ? n : 1, sizeof *c->names);
    c->positions = calloc(n ? n : 1, sizeof *c->positions);
    if (!c->names || !c->positions)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c->names[i] = (struct tid_name){ c->snap->threads[i].tid, c->snap->threads[i].name };
        c->positions[i] = (struct tid_pos){ c->snap->threads[i].tid, i };
    }
    qsort(c->names, n, sizeof *c->names, compare_tid_name);
    qsort(c->positions, n, sizeof *c->positions, compare_tid_pos);
    return 0;
}

static void free_indexes(struct ctx *c)
{
    free(c->names);
    free(c->positions);
}

static void describe_plain(struct ctx *c)
{
    size_t n = c->snap->nthreads;
    for (size_t i = 0; i < n; i++) {
        const struct lw_snap_thread *t = &c->snap->threads[i];
        struct lw_thread_verdict *v = &c->out->verdicts[i];
        if (t->waiting) {
            v->verdict = LW_WAITING;
            v->wait_class = classify_wait(c->snap, &t->wait);
            describe_wait(v->reason, sizeof v->reason, c->snap, t, c->names, n);
            if (t->wait.owner > 0 && (t->wait.kind == LW_WAIT_MUTEX || t->wait.kind == LW_WAIT_JOIN ||
                                      t->wait.kind == LW_WAIT_RWLOCK_READ || t->wait.kind == LW_WAIT_RWLOCK_WRITE ||
                                      t->wait.kind == LW_WAIT_FUTEX))
                set_counterpart(v, t);
        } else {
            v->verdict = LW_RUNNING;
            snprintf(v->reason, sizeof v->reason, "running");
        }
    }
}

/* The rules, with or without counting the program's signal handlers as
 * possible wakers. */
static int analyze(const struct lw_snapshot *snap, struct lw_analysis *out, bool count_handlers)
{
    memset(out, 0, sizeof *out);
    size_t n = snap->nthreads;
    struct ctx c = {
        .snap = snap, .out = out, .settle = snap->settle_ms / 1000.0, .stall = snap->stall_ms / 1000.0,
        .app_signal_handlers = count_handlers && (snap->caught_signals & ~GLIBC_INTERNAL_SIGNALS) != 0,
    };
    out->verdicts = calloc(n ? n : 1, sizeof *out->verdicts);
    int rc = -1;
    if (!out->verdicts || build_indexes(&c) != 0)
        goto out;
    describe_plain(&c);
    if (judge_owner_edges(&c) != 0)
        goto out;
    judge_quiescence(&c);
    if (judge_by_liveness(&c) != 0)
        goto out;
    judge_suspects(&c);
    refresh_waker_verdicts(&c);
    rc = 0;
out:
    free_indexes(&c);
    if (rc != 0)
        lw_analysis_free(out);
    return rc;
}

/* ---- suspect: the whole process asleep but for a signal handler ----
 *
 * A handler may end a semaphore, futex or channel wait (sem_post, a futex
 * wake and write are async-signal-safe; an EINTR may make the program give
 * up), so with handlers installed those waits prove nothing. But when every
 * thread would be asleep were it not for the handlers (rule 2), and the
 * waits are older than the stall threshold, that is worth a look: python3
 * asleep in queue.get() while main joins it, with its SIGINT handler, looks
 * exactly like this. So would a program that does nothing at all until a
 * signal, hence suspect, never a proof. A single channel reader that only
 * a handler could wake while other threads live is the self-pipe of an idle
 * daemon: left `waiting`. */

static void name_caught_signals(char *buf, size_t size, uint64_t caught)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int sig = 1; sig <= 64 && used < size; sig++) {
        if (!(caught & SIGNAL_BIT(sig)))
            continue;
        const char *abbrev = sig < SIGRTMIN ? sigabbrev_np(sig) : NULL;
        int len = abbrev ? snprintf(buf + used, size - used, "%sSIG%s", used ? ", " : "", abbrev)
                         : snprintf(buf + used, size - used, "%ssignal %d", used ? ", " : "", sig);
        if (len < 0)
            break;
        used += (size_t)len;
    }
}

static void suspect_unless_handler(const struct lw_snapshot *snap, struct lw_analysis *out,
                                   const struct lw_analysis *without_handlers)
{
    char handled[160];
    name_caught_signals(handled, sizeof handled, snap->caught_signals & ~GLIBC_INTERNAL_SIGNALS);
    double stall = snap->stall_ms / 1000.0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct lw_thread_verdict *h = &without_handlers->verdicts[i];
        struct lw_thread_verdict *v = &out->verdicts[i];
        if (v->verdict != LW_WAITING || snap->threads[i].wait.seconds < stall ||
            (h->verdict != LW_LEAKED && h->verdict != LW_DEADLOCKED))
            continue;
        *v = *h;
        v->verdict = LW_SUSPECT;
        size_t len = strlen(v->reason);
        snprintf(v->reason + len, sizeof v->reason - len,
                 "; but the program handles %s, and a handler might end this wait: not a proof", handled);
    }
    if (!out->note[0])
        snprintf(out->note, sizeof out->note,
                 "all threads are asleep, unless a signal arrives: the program handles %s", handled);
}

static bool may_be_stuck_but_for_handlers(const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    if (!(snap->caught_signals & ~GLIBC_INTERNAL_SIGNALS))
        return false;
    for (size_t i = 0; i < snap->nthreads; i++)
        if (a->verdicts[i].verdict == LW_WAITING && snap->threads[i].wait.seconds >= snap->stall_ms / 1000.0)
            return true;
    return false;
}

int lw_analyze(const struct lw_snapshot *snap, struct lw_analysis *out)
{
    if (analyze(snap, out, true) != 0)
        return -1;
    if (may_be_stuck_but_for_handlers(snap, out)) {
        struct lw_analysis without;
        if (analyze(snap, &without, false) != 0) {
            lw_analysis_free(out);
            return -1;
        }
        if (without.quiescent)
            suspect_unless_handler(snap, out, &without);
        lw_analysis_free(&without);
    }
    memset(out->counts, 0, sizeof out->counts);
    out->parked = 0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        out->counts[out->verdicts[i].verdict]++;
        if (snap->threads[i].waiting)
            out->parked++;
    }
    return 0;
}

void lw_analysis_free(struct lw_analysis *a)
{
    free(a->verdicts);
    memset(a, 0, sizeof *a);
}
