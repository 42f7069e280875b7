/*
 * liveness.c — which threads can still run (analysis.c): which waits
 * are live, rule 2 (quiescence: nothing live, everything parked is
 * leaked), rule 3's reasons (an object no thread that may run can reach),
 * and the wake model that decides, once rules 1 and 3 have spoken, which
 * parked threads could ever run again.
 */
#include "core/analysis_rules.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- which waits can end ---- */

/* Can something outside the in-process waits end this one? */
static bool ends_from_outside(const struct ctx *c, const struct lw_snap_wait *w)
{
    if (w->timed || w->shared)
        return true;
    switch (w->kind) {
    case LW_WAIT_SLEEP: case LW_WAIT_SIGNAL: case LW_WAIT_CHILD: case LW_WAIT_SOCKET:
        return true;
    case LW_WAIT_FD_READ: case LW_WAIT_FD_WRITE: case LW_WAIT_POLL:
    case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND:
        /* In-process channels only end from inside, unless a signal handler
         * (which may write any fd: the self-pipe trick) may end them. */
        return classify_wait(c->snap, w) != LW_CLASS_IN_PROCESS || c->app_signal_handlers;
    case LW_WAIT_SEM: case LW_WAIT_FUTEX:
        /* sem_post and a futex wake are async-signal-safe: a handler may end it. */
        return c->app_signal_handlers;
    case LW_WAIT_SYSCALL:
        /* Seen only in /proc: an untimed private futex wait is in-process
         * (a glibc-internal lock), and so is a read or write on an
         * in-process channel; anything else may be external. */
        if (w->fd >= 0)
            return classify_wait(c->snap, w) != LW_CLASS_IN_PROCESS || c->app_signal_handlers;
        return w->syscall_nr != 202 || c->app_signal_handlers;
    default:
        return false;  /* mutex, cond, rwlock, barrier, join: no handler may end them */
    }
}

static bool is_live(const struct ctx *c, const struct lw_snap_thread *t)
{
    return !is_settled(c, t) || ends_from_outside(c, &t->wait);
}

/* ---- rule 2: quiescence ---- */

void judge_quiescence(struct ctx *c)
{
    size_t n = c->snap->nthreads, parked = 0;
    for (size_t i = 0; i < n; i++) {
        const struct lw_snap_thread *t = &c->snap->threads[i];
        if (is_live(c, t))
            return;
        parked++;
    }
    if (parked == 0)
        return;
    c->out->quiescent = true;
    snprintf(c->out->note, sizeof c->out->note,
             "all threads are asleep: none is running, in a timed wait, or in a wait that can end from outside the process");
    for (size_t i = 0; i < n; i++) {
        struct lw_thread_verdict *v = &c->out->verdicts[i];
        if (v->verdict == LW_LEAKED || v->verdict == LW_DEADLOCKED)
            continue;
        char what[256];
        describe_wait(what, sizeof what, c->snap, &c->snap->threads[i], c->names, n);
        v->verdict = LW_LEAKED;
        snprintf(v->reason, sizeof v->reason, "%s, and all threads are asleep: no thread is left that could wake it", what);
    }
    /* Every verdict is known now: a channel's reason may name its users'. */
    for (size_t i = 0; i < n; i++)
        if (is_channel_wait(&c->snap->threads[i].wait))
            judge_channel_leak(c, i);
}

/* ---- rule 3: reasons ---- */

static void judge_unreachable(struct ctx *c, size_t i)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    struct lw_thread_verdict *v = &c->out->verdicts[i];
    const struct lw_snap_wait *w = &t->wait;
    char what[256], where[96], since[24];
    describe_wait(what, sizeof what, c->snap, t, c->names, c->snap->nthreads);
    format_duration(since, sizeof since, w->unreachable_for);
    if (w->reach_block)
        snprintf(where, sizeof where, " inside heap block 0x%llx (%llu bytes)", (unsigned long long)w->reach_block,
                 (unsigned long long)w->reach_block_size);
    else
        snprintf(where, sizeof where, " on the stack of a thread that cannot run");
    v->verdict = LW_LEAKED;
    v->cp_kind = LW_CP_UNREACHABLE;
    v->cp_block = w->reach_block;
    v->cp_block_size = w->reach_block_size;
    v->cp_unreachable_for = w->unreachable_for;
    if (c->snap->reach_frozen)
        snprintf(v->reason, sizeof v->reason,
                 "%s; the object lies%s that no live thread can reach: no pointer to it from any live thread's "
                 "stack or registers, the globals or other memory (scanned with every thread stopped), so nothing "
                 "can ever signal it", what, where);
    else
        snprintf(v->reason, sizeof v->reason,
                 "%s; the object lies%s that no live thread can reach: no pointer to it from any live thread's "
                 "stack, the globals or other memory (scanned twice, %s apart), so nothing can ever signal it",
                 what, where, since);
}

/* ---- what can run again ----
 *
 * A parked thread can run again if it is live, or if a thread that can run
 * may end its wait. Who may end a wait:
 *   an owner edge (rule 1)   the owner or join target, and only it;
 *   rule 3, confirmed        nobody: no thread that may run can reach the
 *                            object (not even a signal handler, which
 *                            reaches memory the same way);
 *   anything else            any other thread that can run: a condvar may be
 *                            signalled by anyone, an in-process fd channel
 *                            used by anyone who has the number (rule 4).
 * So while one thread is live, every "anyone" wait may end, and what can
 * never run is rule 3's objects and the owner chains that end in a stuck
 * thread. When no thread is live (rule 2), or the only ones that were are
 * proven stuck already, nothing can run again: every wait left is leaked.
 * An owner that is not in the snapshot but has not exited may be running:
 * it counts as live. */


static enum wake_model wake_model_of(const struct ctx *c, size_t i)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    enum lw_verdict v = c->out->verdicts[i].verdict;
    if (v == LW_LEAKED || v == LW_DEADLOCKED)
        return WAKE_JUDGED;
    if (t->waiting && t->wait.reach == LW_REACH_CONFIRMED && is_settled(c, t) && !t->wait.timed)
        return WAKE_NOBODY;
    if (!t->waiting || is_live(c, t))
        return WAKE_LIVE;
    if (has_owner_edge(c, t) && !t->wait.owner_gone)
        return thread_index(c, t->wait.owner) >= 0 ? WAKE_OWNER : WAKE_LIVE;
    return WAKE_ANYONE;
}

/* Nothing can run again, and only another thread could end thread i's
 * wait. (Never a channel wait: a thread is live yet proven stuck only when
 * a signal handler is installed, and then channel waits are live too.) */
static void judge_nothing_runs(struct ctx *c, size_t i)
{
    char others[240], what[256];
    describe_others(others, sizeof others, c, i);
    describe_wait(what, sizeof what, c->snap, &c->snap->threads[i], c->names, c->snap->nthreads);
    snprintf(c->out->verdicts[i].reason, sizeof c->out->verdicts[i].reason,
             "%s, and no other thread can run again: every other thread is leaked or deadlocked (%s)", what, others);
}

int judge_by_liveness(struct ctx *c)
{
    size_t n = c->snap->nthreads;
    if (!n || c->out->quiescent)
        return 0;
    unsigned char *model = malloc(n);
    if (!model)
        return -1;
    bool someone_runs = false;
    for (size_t i = 0; i < n; i++) {
        model[i] = (unsigned char)wake_model_of(c, i);
        someone_runs |= model[i] == WAKE_LIVE;
    }
    for (size_t i = 0; i < n; i++)
        if (model[i] == WAKE_NOBODY)
            judge_unreachable(c, i);
    if (!someone_runs)
        for (size_t i = 0; i < n; i++)
            if (model[i] == WAKE_ANYONE)
                c->out->verdicts[i].verdict = LW_LEAKED;   /* the reasons once every verdict is known */
    judge_owner_chains(c, model);
    if (!someone_runs)
        for (size_t i = 0; i < n; i++)
            if (model[i] == WAKE_ANYONE)
                judge_nothing_runs(c, i);
    free(model);
    return 0;
}
