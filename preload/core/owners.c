/*
 * owners.c — rule 1, owner edges (analysis.c): a wait on a mutex,
 * write-locked rwlock or PI futex points at its owner, a join at its
 * target. Following the edges finds cycles (deadlocked), owners that no
 * longer exist (leaked), and the chains that lead into either (leaked).
 */
#include "core/analysis_rules.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- rule 1: owner edges ---- */

bool has_owner_edge(const struct ctx *c, const struct lw_snap_thread *t)
{
    const struct lw_snap_wait *w = &t->wait;
    if (!is_settled(c, t) || w->timed || w->shared || w->owner <= 0 || w->source == LW_SOURCE_PROC)
        return false;
    switch (w->kind) {
    case LW_WAIT_MUTEX:
        return !w->robust;   /* a robust mutex's waiter is woken when its owner dies */
    case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE: case LW_WAIT_JOIN: case LW_WAIT_FUTEX:
        return true;
    default:
        return false;
    }
}

void set_counterpart(struct lw_thread_verdict *v, const struct lw_snap_thread *t)
{
    v->cp_kind = t->wait.kind == LW_WAIT_JOIN ? LW_CP_TARGET : LW_CP_OWNER;
    v->cp_tid = t->wait.owner;
    v->cp_exited_ago = -1;
}

/* The owner no longer exists: leaked, with how long ago it exited if known. */
static void judge_owner_gone(struct ctx *c, size_t i)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    struct lw_thread_verdict *v = &c->out->verdicts[i];
    const struct lw_snap_exited *gone = exited_thread(c->snap, t->wait.owner);
    char obj[64], who[64], ago[32];
    describe_object(obj, sizeof obj, &t->wait);
    if (gone && gone->name[0])
        snprintf(who, sizeof who, "tid %d (%s)", gone->tid, gone->name);
    else
        snprintf(who, sizeof who, "tid %d", t->wait.owner);
    set_counterpart(v, t);
    v->cp_exited = true;
    v->verdict = LW_LEAKED;
    if (gone) {
        v->cp_exited_ago = gone->exited_ago;
        format_duration(ago, sizeof ago, gone->exited_ago);
    }
    if (t->wait.kind == LW_WAIT_JOIN)
        snprintf(v->reason, sizeof v->reason, "waits to join %s, which no longer exists", who);
    else if (gone)
        snprintf(v->reason, sizeof v->reason, "waits for %s locked by %s, which exited %s ago without unlocking it",
                 obj, who, ago);
    else
        snprintf(v->reason, sizeof v->reason, "waits for %s locked by %s, which exited without unlocking it",
                 obj, who);
}

static void judge_cycle(struct ctx *c, const size_t *path, size_t from, size_t to)
{
    size_t len = to - from;
    char chain[400] = "";
    size_t used = 0;
    for (size_t k = from; k < to && used < sizeof chain; k++) {
        char step[160];
        describe_edge(step, sizeof step, c, &c->snap->threads[path[k]]);
        const struct lw_snap_thread *t = &c->snap->threads[path[k]];
        char self[64];
        describe_tid(self, sizeof self, c->names, c->snap->nthreads, t->tid);
        int w = snprintf(chain + used, sizeof chain - used, "%s%s %s", k == from ? "" : ", ", self, step);
        used += w > 0 ? (size_t)w : 0;
    }
    for (size_t k = from; k < to; k++) {
        struct lw_thread_verdict *v = &c->out->verdicts[path[k]];
        v->verdict = LW_DEADLOCKED;
        v->cp_kind = LW_CP_CYCLE;
        v->ncycle = len;
        for (size_t m = 0; m < len && m < LW_MAX_CYCLE; m++)   /* the cycle, starting at this thread */
            v->cycle[m] = c->snap->threads[path[from + (k - from + m) % len]].tid;
        snprintf(v->reason, sizeof v->reason, "deadlock of %zu threads: %s", len, chain);
    }
}

/* A thread whose edge leads to a leaked or deadlocked one is leaked too. */
static void judge_chain(struct ctx *c, size_t i, size_t next)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    struct lw_thread_verdict *v = &c->out->verdicts[i];
    char edge[160];
    describe_edge(edge, sizeof edge, c, t);
    set_counterpart(v, t);
    v->verdict = LW_LEAKED;
    v->cp_blocked_on = c->snap->threads[next].tid;
    snprintf(v->reason, sizeof v->reason, "%s, which is %s and can never release it", edge,
             lw_verdict_name(c->out->verdicts[next].verdict));
}

enum { UNSEEN = 0, ON_PATH, DONE };

/* Follow owner edges from every thread; each has at most one, so this is the
 * cycle search of a functional graph, linear in the number of threads. */
int judge_owner_edges(struct ctx *c)
{
    size_t n = c->snap->nthreads;
    unsigned char *mark = calloc(n ? n : 1, 1);
    size_t *path = malloc((n ? n : 1) * sizeof *path);
    if (!mark || !path) {
        free(mark);
        free(path);
        return -1;
    }
    for (size_t start = 0; start < n; start++) {
        size_t len = 0, i = start;
        long stop = -1;          /* the node where the walk ended, -1 for none */
        bool gone = false;
        while (mark[i] == UNSEEN) {
            mark[i] = ON_PATH;
            path[len++] = i;
            const struct lw_snap_thread *t = &c->snap->threads[i];
            if (!has_owner_edge(c, t))
                break;
            if (t->wait.owner_gone) {
                gone = true;
                break;
            }
            long next = thread_index(c, t->wait.owner);
            if (next < 0)
                break;           /* an owner we cannot see: no proof */
            i = (size_t)next;
            if (mark[i] != UNSEEN)
                stop = (long)i;
        }
        size_t decided_from = len;   /* path[decided_from..] already judged; earlier ones inherit */
        if (gone) {
            judge_owner_gone(c, path[len - 1]);
            decided_from = len - 1;
        } else if (stop >= 0 && mark[stop] == ON_PATH) {
            size_t from = 0;
            while (path[from] != (size_t)stop)
                from++;
            judge_cycle(c, path, from, len);
            decided_from = from;
        }
        bool downstream_stuck = decided_from < len
            || (stop >= 0 && mark[stop] == DONE &&
                (c->out->verdicts[stop].verdict == LW_LEAKED || c->out->verdicts[stop].verdict == LW_DEADLOCKED));
        size_t next = decided_from < len ? path[decided_from] : (size_t)(stop >= 0 ? stop : 0);
        for (size_t k = decided_from; k-- > 0 && downstream_stuck;) {
            judge_chain(c, path[k], next);
            next = path[k];
        }
        for (size_t k = 0; k < len; k++)
            mark[path[k]] = DONE;
    }
    free(mark);
    free(path);
    return 0;
}

/* A thread whose owner is stuck (or a chain of those). */
static bool judge_owner_stuck(struct ctx *c, size_t i)
{
    long next = thread_index(c, c->snap->threads[i].wait.owner);
    if (next < 0)
        return false;
    enum lw_verdict ov = c->out->verdicts[next].verdict;
    if (ov != LW_LEAKED && ov != LW_DEADLOCKED)
        return false;
    judge_chain(c, i, (size_t)next);
    return true;
}

/* Owner waits stuck behind what the other rules proved: chains, resolved
 * until nothing changes. */
void judge_owner_chains(struct ctx *c, const unsigned char *model)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < c->snap->nthreads; i++)
            if (model[i] == WAKE_OWNER && c->out->verdicts[i].verdict == LW_WAITING && judge_owner_stuck(c, i))
                changed = true;
    }
}
