/*
 * wakers.c — what a channel's history says (analysis.c): who made an fd
 * channel and who used its other end (the wakers a reason names), rule
 * 4's reasons (a channel wait leaked because no thread that could use the
 * fd can run again), and `suspect`: a channel wait stalled past the
 * threshold whose every counterpart has exited or is stuck (evidence,
 * never a proof).
 */
#include "core/analysis_rules.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- fd channels: what history says of them ----
 *
 * The preload records who made each channel, which threads used each end
 * and when. That history never proves a wait dead: an fd is an integer, and
 * any thread that can still run may hold the number in a struct, a global or
 * a register and use it, whether or not it ever has (a wakeup fd is exactly
 * a channel nobody has used yet). So history only explains: it names the
 * threads in a proof's reason (rule 4 below) and is the evidence of a
 * `suspect` (judge_suspect). */

static enum lw_direction wait_direction(const struct lw_snap_wait *w)
{
    return w->kind == LW_WAIT_POLL ? LW_DIR_BOTH : w->direction;
}

/* What a thread would have to do to end the wait: "write to it"... */
static const char *counter_verb(const struct lw_snap_wait *w)
{
    enum lw_direction d = wait_direction(w);
    return d == LW_DIR_READ ? "write to it" : d == LW_DIR_WRITE ? "read from it" : "use it";
}

/* ...and the same, done: "written to it". */
static const char *counter_done(const struct lw_snap_wait *w)
{
    enum lw_direction d = wait_direction(w);
    return d == LW_DIR_READ ? "written to it" : d == LW_DIR_WRITE ? "read from it" : "used it";
}

/* The channels a wait is on: one, or one per fd of a poll set. */
static uint32_t channel_count(const struct lw_snap_wait *w)
{
    return w->kind == LW_WAIT_POLL ? w->npollfds : 1;
}

static const struct lw_snap_channel *channel_at(const struct lw_snapshot *snap, const struct lw_snap_wait *w,
                                                uint32_t k, int32_t *index)
{
    int32_t channel = w->kind == LW_WAIT_POLL ? snap->pollfds[w->pollfd_first + k].channel : w->channel;
    if (index)
        *index = channel;
    return channel >= 0 && (size_t)channel < snap->nchannels ? &snap->channels[channel] : NULL;
}

static void add_waker(struct lw_thread_verdict *v, int32_t tid, enum lw_waker_role role, const struct ctx *c, double idle)
{
    for (size_t k = 0; k < v->nwakers && k < LW_MAX_WAKERS; k++)
        if (v->wakers[k].tid == tid)
            return;
    if (v->nwakers < LW_MAX_WAKERS) {
        struct lw_waker *wk = &v->wakers[v->nwakers];
        long at = thread_index(c, tid);
        wk->tid = tid;
        wk->role = role;
        wk->exited = at < 0;
        wk->idle = idle;
        wk->exited_ago = -1;
        wk->verdict = at >= 0 ? c->out->verdicts[at].verdict : LW_RUNNING;
        if (at < 0) {
            const struct lw_snap_exited *gone = exited_thread(c->snap, tid);
            if (gone)
                wk->exited_ago = gone->exited_ago;
        }
    }
    v->nwakers++;
}

/* The counterparts of thread i on one channel, as history knows them: its
 * creator and every thread that used the other end the other way. */
static void list_channel_wakers(const struct ctx *c, struct lw_thread_verdict *v, int32_t channel, size_t i)
{
    if (channel < 0 || (size_t)channel >= c->snap->nchannels)
        return;
    const struct lw_snap_channel *ch = &c->snap->channels[channel];
    if (v->nwakers == 0)
        v->cp_channel = channel;
    int32_t self = c->snap->threads[i].tid;
    if (ch->creator && ch->creator != self)
        add_waker(v, ch->creator, LW_ROLE_CREATOR, c, -1);
    for (size_t k = 0; k < ch->npeers; k++)
        if (ch->peers[k].tid != self)
            add_waker(v, ch->peers[k].tid, LW_ROLE_PEER, c, ch->peers[k].idle);
}

static void list_wakers(const struct ctx *c, struct lw_thread_verdict *v, size_t i)
{
    const struct lw_snap_wait *w = &c->snap->threads[i].wait;
    v->cp_kind = LW_CP_CHANNEL;
    v->cp_channel = -1;
    for (uint32_t k = 0; k < channel_count(w); k++) {
        int32_t channel;
        channel_at(c->snap, w, k, &channel);
        list_channel_wakers(c, v, channel, i);
    }
}

/* "its creator, tid 10 (setup), exited 3.0s ago" / "tid 11 (writer), which
 * wrote to it, exited 1.2s ago" / "tid 12 (reader), which read from it, is
 * deadlocked" */
static void describe_waker(char *out, size_t size, const struct ctx *c, const struct lw_waker *wk,
                           const struct lw_snap_wait *w)
{
    char who[64], role[48], state[48];
    const struct lw_snap_exited *gone = wk->exited ? exited_thread(c->snap, wk->tid) : NULL;
    if (gone && gone->name[0])
        snprintf(who, sizeof who, "tid %d (%s)", wk->tid, gone->name);
    else
        describe_tid(who, sizeof who, c->names, c->snap->nthreads, wk->tid);
    enum lw_direction d = wait_direction(w);
    const char *used = d == LW_DIR_READ ? "wrote to it" : d == LW_DIR_WRITE ? "read from it" : "used it";
    if (wk->role == LW_ROLE_PEER)
        snprintf(role, sizeof role, ", which %s,", used);
    else
        snprintf(role, sizeof role, ",");
    if (wk->exited && wk->exited_ago >= 0) {
        char ago[24];
        format_duration(ago, sizeof ago, wk->exited_ago);
        snprintf(state, sizeof state, "exited %s ago", ago);
    } else if (wk->exited) {
        snprintf(state, sizeof state, "exited");
    } else {
        snprintf(state, sizeof state, "is %s", wk->verdict == LW_DEADLOCKED ? "deadlocked" : "leaked");
    }
    snprintf(out, size, "%s%s%s %s", wk->role == LW_ROLE_CREATOR ? "its creator, " : "", who, role, state);
}

/* "; its creator, ... exited 3.0s ago; tid 11 (writer), which wrote to it, ..." */
static void describe_wakers(char *out, size_t size, const struct ctx *c, const struct lw_thread_verdict *v,
                            const struct lw_snap_wait *w)
{
    size_t used = 0;
    out[0] = 0;
    for (size_t k = 0; k < v->nwakers && k < LW_MAX_WAKERS && used < size; k++) {
        char one[220];
        describe_waker(one, sizeof one, c, &v->wakers[k], w);
        int n = snprintf(out + used, size - used, "; %s", one);
        used += n > 0 ? (size_t)n : 0;
    }
    if (v->nwakers > LW_MAX_WAKERS && used < size)
        snprintf(out + used, size - used, "; and %zu more", v->nwakers - LW_MAX_WAKERS);
}

/* The other end of a channel as a reason names it: "fd 8, the other end,"
 * (pipe, socketpair) or "fd 7" (an eventfd or queue is its own other end). */
static bool has_two_ends(const struct lw_snap_channel *ch)
{
    return ch->type != LW_CHAN_EVENTFD && ch->type != LW_CHAN_MQ;
}

/* ---- rule 4: an fd wait that no thread that can run could end ----
 *
 * An in-process channel may be used by every thread of the process that can
 * still run, and by its signal handlers (a handler may write any fd: the
 * self-pipe trick); another process holding the other end makes the wait
 * external, live. So a channel wait is leaked only when nothing else in the
 * process can run again. A thread is live yet proven stuck only where a
 * handler is installed, which makes channel waits live too; so that is
 * rule 2, the whole process asleep, and `run --check`'s exit report is the
 * same case once the exiting thread counts as gone. The reason then names
 * what history knows of the channel. */
void judge_channel_leak(struct ctx *c, size_t i)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    struct lw_thread_verdict *v = &c->out->verdicts[i];
    char what[256], history[300], eof[128] = "";
    describe_wait(what, sizeof what, c->snap, t, c->names, c->snap->nthreads);
    v->nwakers = 0;
    list_wakers(c, v, i);
    describe_wakers(history, sizeof history, c, v, &t->wait);
    const struct lw_snap_channel *ch = v->cp_channel >= 0 ? &c->snap->channels[v->cp_channel] : NULL;
    bool two_ends = ch && ch->nother_fds && has_two_ends(ch);
    if (two_ends && t->wait.direction == LW_DIR_READ)
        snprintf(eof, sizeof eof, "; fd %d, the other end, stays open here, so it will never see end-of-file either",
                 ch->other_fds[0]);
    else if (two_ends && t->wait.direction == LW_DIR_WRITE)
        snprintf(eof, sizeof eof, "; fd %d, the other end, stays open here, so the write will never fail with EPIPE either",
                 ch->other_fds[0]);
    v->verdict = LW_LEAKED;
    snprintf(v->reason, sizeof v->reason, "%s, and no thread that could %s can run again: all threads are asleep%s%s",
             what, counter_verb(&t->wait), history, eof);
}

/* Wakers were listed while their own verdicts were still being decided:
 * give each the verdict it ended with, so that a report never lists as
 * waiting a waker it calls leaked elsewhere. */
void refresh_waker_verdicts(struct ctx *c)
{
    for (size_t i = 0; i < c->snap->nthreads; i++) {
        struct lw_thread_verdict *v = &c->out->verdicts[i];
        for (size_t k = 0; k < v->nwakers && k < LW_MAX_WAKERS; k++) {
            long at = thread_index(c, v->wakers[k].tid);
            if (at >= 0)
                v->wakers[k].verdict = c->out->verdicts[at].verdict;
        }
    }
}

/* ---- suspect: channel waits whose every counterpart is gone ----
 *
 * While some thread can run, no channel wait is proven. What history can
 * still say: a wait stalled past the stall threshold on channels whose
 * counterparts (the creator, every thread that used the other end the
 * other way) have all exited or are stuck, none of them having used the
 * other end within the threshold, is `suspect`. "Stuck" means proven here:
 * leaked or deadlocked. A counterpart merely parked, however long, may
 * still act, and one that is itself only suspect is no evidence either
 * (two idle event loops that once woke each other would otherwise
 * suspect each other). Some thread other than the waiter must have used
 * the other end: a channel nobody but the waiter ever touched is what a
 * wakeup fd or an idle event loop looks like. */

/* A channel whose history can be believed: made under our eyes, every user
 * recorded, every fd of the other end a copy we saw made, that other end
 * open here, and no other process holding it. A FIFO is opened by path:
 * who holds it is unknowable. */
static bool history_complete(const struct lw_snap_channel *ch)
{
    return ch->type != LW_CHAN_FIFO && channel_in_process(ch) && ch->tracked && ch->creator && !ch->stdio &&
           !ch->users_overflow && !ch->other_fd_untracked && ch->nother_fds > 0;
}

static bool gone_or_stuck(const struct ctx *c, int32_t tid, bool exited)
{
    long at = thread_index(c, tid);
    if (at < 0)
        return exited;
    enum lw_verdict v = c->out->verdicts[at].verdict;
    return v == LW_LEAKED || v == LW_DEADLOCKED;
}

/* Thread i's counterparts on this channel are all gone or stuck, at least
 * one other thread used the other end, and none has for the threshold. */
static bool channel_abandoned(const struct ctx *c, size_t i, const struct lw_snap_channel *ch)
{
    if (!ch || !history_complete(ch))
        return false;
    int32_t self = c->snap->threads[i].tid;
    if (ch->creator != self && !gone_or_stuck(c, ch->creator, ch->creator_exited))
        return false;
    size_t users = 0;
    for (size_t k = 0; k < ch->npeers; k++) {
        const struct lw_snap_peer *p = &ch->peers[k];
        if (p->tid == self)
            continue;
        if (!gone_or_stuck(c, p->tid, p->exited) || p->idle < c->stall)
            return false;
        users++;
    }
    return users > 0;
}

/* The least time since a counterpart used any of the wait's channels. */
static double last_use(const struct lw_snapshot *snap, const struct lw_snap_wait *w, int32_t self)
{
    double least = -1;
    for (uint32_t k = 0; k < channel_count(w); k++) {
        const struct lw_snap_channel *ch = channel_at(snap, w, k, NULL);
        for (size_t m = 0; ch && m < ch->npeers; m++)
            if (ch->peers[m].tid != self && (least < 0 || ch->peers[m].idle < least))
                least = ch->peers[m].idle;
    }
    return least;
}

/* "fd 8, the other end," / "fd 7" / "fd 8 or fd 10" */
static void describe_other_ends(char *out, size_t size, const struct lw_snapshot *snap, const struct lw_snap_wait *w)
{
    uint32_t n = channel_count(w), shown = 0;
    size_t used = 0;
    out[0] = 0;
    for (uint32_t k = 0; k < n && used < size; k++) {
        const struct lw_snap_channel *ch = channel_at(snap, w, k, NULL);
        if (!ch || !ch->nother_fds)
            continue;
        int len = snprintf(out + used, size - used, "%sfd %d", shown ? " or " : "", ch->other_fds[0]);
        used += len > 0 ? (size_t)len : 0;
        shown++;
    }
    const struct lw_snap_channel *only = n == 1 ? channel_at(snap, w, 0, NULL) : NULL;
    if (only && has_two_ends(only) && used < size)
        snprintf(out + used, size - used, ", the other end,");
}

static bool suspect_candidate(const struct ctx *c, size_t i)
{
    const struct lw_snap_thread *t = &c->snap->threads[i];
    const struct lw_snap_wait *w = &t->wait;
    if (c->out->verdicts[i].verdict != LW_WAITING || !is_settled(c, t) || w->timed || w->seconds < c->stall ||
        !is_channel_wait(w) || classify_wait(c->snap, w) != LW_CLASS_IN_PROCESS)
        return false;
    /* A reader idle on a self-pipe is what a daemon waiting for SIGTERM looks like. */
    if (c->app_signal_handlers && wait_direction(w) != LW_DIR_WRITE)
        return false;
    if (channel_count(w) == 0 || (w->kind == LW_WAIT_POLL && w->pollfds_truncated))
        return false;
    for (uint32_t k = 0; k < channel_count(w); k++)
        if (!channel_abandoned(c, i, channel_at(c->snap, w, k, NULL)))
            return false;
    return true;
}

static void judge_suspect(struct ctx *c, size_t i)
{
    if (!suspect_candidate(c, i))
        return;
    const struct lw_snap_thread *t = &c->snap->threads[i];
    const struct lw_snap_wait *w = &t->wait;
    struct lw_thread_verdict *v = &c->out->verdicts[i];
    char what[256], waited[24], quiet[24], history[300], ends[48];
    describe_wait(what, sizeof what, c->snap, t, c->names, c->snap->nthreads);
    format_duration(waited, sizeof waited, w->seconds);
    format_duration(quiet, sizeof quiet, last_use(c->snap, w, t->tid));
    v->nwakers = 0;
    list_wakers(c, v, i);
    describe_wakers(history, sizeof history, c, v, w);
    describe_other_ends(ends, sizeof ends, c->snap, w);
    v->verdict = LW_SUSPECT;
    snprintf(v->reason, sizeof v->reason,
             "%s, parked for %s%s; no thread has %s for %s; not a proof: a live thread holding %s could still %s",
             what, waited, history, counter_done(w), quiet, ends, counter_verb(w));
}

void judge_suspects(struct ctx *c)
{
    for (size_t i = 0; i < c->snap->nthreads; i++)
        judge_suspect(c, i);
}
