/*
 * describe.c — the analysis's sentences (analysis.c): how a thread, a
 * deadline, an fd and its channel, a wait, an object and an owner edge
 * read in a reason ("waits for mutex 0x1000 held by tid 12 (worker)"),
 * and durations as a person reads them.
 */
#include "core/analysis_rules.h"

#include <stdio.h>
#include <stdlib.h>

int compare_tid_name(const void *a, const void *b)
{
    int32_t x = ((const struct tid_name *)a)->tid, y = ((const struct tid_name *)b)->tid;
    return (x > y) - (x < y);
}

static const char *name_of(const struct tid_name *index, size_t n, int32_t tid)
{
    struct tid_name key = { tid, NULL };
    const struct tid_name *hit = bsearch(&key, index, n, sizeof *index, compare_tid_name);
    return hit && hit->name[0] ? hit->name : NULL;
}

/* " (worker)" or "" */
void describe_tid(char *buf, size_t size, const struct tid_name *index, size_t n, int32_t tid)
{
    const char *name = name_of(index, n, tid);
    if (name)
        snprintf(buf, size, "tid %d (%s)", tid, name);
    else
        snprintf(buf, size, "tid %d", tid);
}

static void describe_deadline(char *buf, size_t size, const struct lw_snap_wait *w)
{
    if (!w->timed)
        buf[0] = 0;
    else if (w->remaining > 0)
        snprintf(buf, size, "; times out in %.1fs", w->remaining);
    else
        snprintf(buf, size, "; has a timeout");
}

/* "fd 7 (pipe:[12345])" */
static void describe_fd(char *out, size_t size, const struct lw_snapshot *snap, int64_t fd, int32_t channel)
{
    if (channel >= 0 && (size_t)channel < snap->nchannels)
        snprintf(out, size, "fd %lld (%s)", (long long)fd, snap->channels[channel].name);
    else
        snprintf(out, size, "fd %lld", (long long)fd);
}

/* "; the other end is also open in pid 4242 (cat)" and the like */
static void describe_other_end(char *out, size_t size, const struct lw_snapshot *snap, int32_t channel)
{
    out[0] = 0;
    if (channel < 0 || (size_t)channel >= snap->nchannels)
        return;
    const struct lw_snap_channel *c = &snap->channels[channel];
    if (c->nprocs)
        snprintf(out, size, "; the other end is also open in pid %d (%s)%s", c->procs[0].pid, c->procs[0].command,
                 c->nprocs > 1 ? " and other processes" : "");
    else if (c->named)
        snprintf(out, size, "; any process may open it by its name");
    else if (c->exported)
        snprintf(out, size, "; one of its fds was sent to another process");
}

static void describe_fd_wait(char *out, size_t size, const struct lw_snapshot *snap, const struct lw_snap_wait *w,
                             const char *deadline)
{
    char fd[160], other[160];
    describe_fd(fd, sizeof fd, snap, w->fd, w->channel);
    describe_other_end(other, sizeof other, snap, w->channel);
    switch (w->kind) {
    case LW_WAIT_FD_READ:
        snprintf(out, size, "reads %s%s%s", fd, other, deadline);
        break;
    case LW_WAIT_FD_WRITE:
        snprintf(out, size, "writes %s%s%s", fd, other, deadline);
        break;
    case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND: {
        const char *verb = w->kind == LW_WAIT_MQ_RECEIVE ? "receives from" : "sends to";
        if (w->sysv)
            snprintf(out, size, "%s System V message queue %lld%s", verb, (long long)w->fd, deadline);
        else
            snprintf(out, size, "%s message queue %s%s%s", verb, fd, other, deadline);
        break;
    }
    case LW_WAIT_POLL:
        if (w->fd >= 0)
            snprintf(out, size, "waits in epoll on %s for %u fd%s%s", fd, w->npollfds, w->npollfds == 1 ? "" : "s",
                     deadline);
        else
            snprintf(out, size, "polls %u fd%s%s%s", w->npollfds, w->npollfds == 1 ? "" : "s",
                     w->pollfds_truncated ? " (set not fully known)" : "", deadline);
        break;
    case LW_WAIT_SOCKET:
        snprintf(out, size, "waits to accept or connect on socket %s%s", fd, deadline);
        break;
    case LW_WAIT_SIGNAL:
        snprintf(out, size, "waits for a signal%s", deadline);
        break;
    case LW_WAIT_CHILD:
        snprintf(out, size, "waits for a child process%s", deadline);
        break;
    default:
        out[0] = 0;
        break;
    }
}

void describe_wait(char *out, size_t size, const struct lw_snapshot *snap, const struct lw_snap_thread *t,
                   const struct tid_name *index, size_t n)
{
    const struct lw_snap_wait *w = &t->wait;
    char who[64] = "", deadline[64];
    describe_deadline(deadline, sizeof deadline, w);
    if (w->owner)
        describe_tid(who, sizeof who, index, n, w->owner);
    unsigned long long obj = (unsigned long long)w->object;
    switch (w->kind) {
    case LW_WAIT_MUTEX:
        if (w->owner)
            snprintf(out, size, "waits for mutex 0x%llx held by %s%s", obj, who, deadline);
        else
            snprintf(out, size, "waits for mutex 0x%llx (owner unknown)%s", obj, deadline);
        break;
    case LW_WAIT_RWLOCK_READ:
    case LW_WAIT_RWLOCK_WRITE:
        snprintf(out, size, "waits to %s-lock rwlock 0x%llx%s%s%s",
                 w->kind == LW_WAIT_RWLOCK_READ ? "read" : "write", obj,
                 w->owner ? " write-locked by " : "", who, deadline);
        break;
    case LW_WAIT_COND:
        snprintf(out, size, "waits on condition variable 0x%llx%s", obj, deadline);
        break;
    case LW_WAIT_SEM:
        snprintf(out, size, "waits on semaphore 0x%llx%s", obj, deadline);
        break;
    case LW_WAIT_BARRIER:
        snprintf(out, size, "waits at barrier 0x%llx", obj);
        break;
    case LW_WAIT_JOIN:
        if (w->owner)
            snprintf(out, size, "waits to join %s%s", who, deadline);
        else
            snprintf(out, size, "waits to join thread 0x%llx%s", obj, deadline);
        break;
    case LW_WAIT_FUTEX:
        snprintf(out, size, "waits on futex 0x%llx%s%s%s", obj,
                 w->owner ? " locked by " : "", who, deadline);
        break;
    case LW_WAIT_SLEEP:
        if (w->timed && w->remaining > 0)
            snprintf(out, size, "sleeps; wakes in %.1fs", w->remaining);
        else
            snprintf(out, size, "sleeps");
        break;
    case LW_WAIT_SYSCALL: {
        const char *sc = lw_syscall_name(w->syscall_nr);
        char call[48];
        if (sc)
            snprintf(call, sizeof call, "%s", sc);
        else
            snprintf(call, sizeof call, "syscall %d", w->syscall_nr);
        if (w->fd >= 0) {
            char fd[160];
            describe_fd(fd, sizeof fd, snap, w->fd, w->channel);
            snprintf(out, size, "blocked in %s(%s), seen only in /proc%s", call, fd, deadline);
        }
        else if (w->object)
            snprintf(out, size, "blocked in %s(0x%llx), seen only in /proc%s", call, obj, deadline);
        else
            snprintf(out, size, "blocked in %s, seen only in /proc%s", call, deadline);
        break;
    }
    case LW_WAIT_FD_READ: case LW_WAIT_FD_WRITE: case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND:
    case LW_WAIT_POLL: case LW_WAIT_SOCKET: case LW_WAIT_SIGNAL: case LW_WAIT_CHILD:
        describe_fd_wait(out, size, snap, w, deadline);
        break;
    default:
        snprintf(out, size, "waits (%s)%s", lw_wait_kind_name(w->kind), deadline);
        break;
    }
}

void format_duration(char *buf, size_t size, double seconds)
{
    long s = (long)seconds;
    if (s >= 3600)
        snprintf(buf, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, size, "%.1fs", seconds);
}

/* "mutex 0x1000", "rwlock 0x2000", "the join of", ... */
void describe_object(char *buf, size_t size, const struct lw_snap_wait *w)
{
    const char *what = w->kind == LW_WAIT_MUTEX ? "mutex"
                     : w->kind == LW_WAIT_FUTEX ? "PI futex"
                     : w->kind == LW_WAIT_JOIN ? NULL : "rwlock";
    if (what)
        snprintf(buf, size, "%s 0x%llx", what, (unsigned long long)w->object);
    else
        buf[0] = 0;
}

/* "waits for mutex 0x1000 held by tid 12 (worker)" / "waits to join tid 12 (worker)" */
void describe_edge(char *buf, size_t size, const struct ctx *c, const struct lw_snap_thread *t)
{
    char obj[64], who[64];
    describe_object(obj, sizeof obj, &t->wait);
    describe_tid(who, sizeof who, c->names, c->snap->nthreads, t->wait.owner);
    if (t->wait.kind == LW_WAIT_JOIN)
        snprintf(buf, size, "waits to join %s", who);
    else
        snprintf(buf, size, "waits for %s held by %s", obj, who);
}

/* "tid 1 (main) is deadlocked, tid 5 (pool) is leaked and 3 more" */
void describe_others(char *out, size_t size, const struct ctx *c, size_t i)
{
    size_t n = c->snap->nthreads, shown = 0, used = 0;
    out[0] = 0;
    for (size_t k = 0; k < n && shown < 3 && used < size; k++) {
        if (k == i)
            continue;
        char who[64];
        describe_tid(who, sizeof who, c->names, n, c->snap->threads[k].tid);
        int w = snprintf(out + used, size - used, "%s%s is %s", shown ? ", " : "", who,
                         lw_verdict_name(c->out->verdicts[k].verdict));
        used += w > 0 ? (size_t)w : 0;
        shown++;
    }
    if (n - 1 > shown && used < size)
        snprintf(out + used, size - used, " and %zu more", n - 1 - shown);
}
