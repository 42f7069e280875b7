/*
 * waitfacts.c — what every rule asks of a snapshot (analysis.c, owners.c,
 * liveness.c, wakers.c): where a thread is, whether its wait has lasted
 * the settle time, whether a wait is on an fd channel and how such a wait
 * can end (in-process, external, timed). Facts only, no verdicts: the rule
 * files stand on this one and never on each other's helpers.
 */
#include "core/analysis_rules.h"

#include <stdlib.h>

/* ---- threads ---- */

long thread_index(const struct ctx *c, int32_t tid)
{
    struct tid_pos key = { tid, 0 };
    const struct tid_pos *hit = bsearch(&key, c->positions, c->snap->nthreads, sizeof key, compare_tid_pos);
    return hit ? (long)hit->index : -1;
}

const struct lw_snap_exited *exited_thread(const struct lw_snapshot *snap, int32_t tid)
{
    for (size_t i = 0; i < snap->nexited; i++)   /* newest first */
        if (snap->exited_threads[i].tid == tid)
            return &snap->exited_threads[i];
    return NULL;
}

bool is_settled(const struct ctx *c, const struct lw_snap_thread *t)
{
    return t->waiting && t->wait.seconds >= c->settle;
}

/* ---- how fd, signal and child waits can end ---- */

bool is_channel_wait(const struct lw_snap_wait *w)
{
    switch (w->kind) {
    case LW_WAIT_FD_READ: case LW_WAIT_FD_WRITE: case LW_WAIT_POLL: case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND:
        return !w->sysv;
    case LW_WAIT_SYSCALL:
        return w->fd >= 0;
    default:
        return false;
    }
}

/* Both ends only here: no other process holds it, none can open it by name,
 * none was sent one of its fds. */
bool channel_in_process(const struct lw_snap_channel *c)
{
    switch (c->type) {
    case LW_CHAN_PIPE: case LW_CHAN_SOCKETPAIR: case LW_CHAN_EVENTFD:
        break;
    case LW_CHAN_FIFO: case LW_CHAN_MQ:
        if (c->named)
            return false;
        break;
    default:
        return false;   /* sockets, files, terminals: the world outside */
    }
    return c->nprocs == 0 && !c->procs_unknown && !c->exported;
}

static bool channel_index_in_process(const struct lw_snapshot *snap, int32_t channel)
{
    return channel >= 0 && (size_t)channel < snap->nchannels && channel_in_process(&snap->channels[channel]);
}

enum lw_wait_class classify_wait(const struct lw_snapshot *snap, const struct lw_snap_wait *w)
{
    switch (w->kind) {
    case LW_WAIT_FD_READ: case LW_WAIT_FD_WRITE: case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND:
    case LW_WAIT_POLL: case LW_WAIT_SOCKET: case LW_WAIT_SIGNAL: case LW_WAIT_CHILD:
        break;
    case LW_WAIT_SYSCALL:
        if (w->fd < 0)
            return LW_CLASS_NONE;
        break;
    default:
        return LW_CLASS_NONE;
    }
    if (w->timed)
        return LW_CLASS_TIMED;
    switch (w->kind) {
    case LW_WAIT_SOCKET: case LW_WAIT_SIGNAL: case LW_WAIT_CHILD:
        return LW_CLASS_EXTERNAL;
    case LW_WAIT_POLL:
        if (w->npollfds == 0 || w->pollfds_truncated)
            return LW_CLASS_EXTERNAL;
        for (uint32_t i = 0; i < w->npollfds; i++)
            if (!channel_index_in_process(snap, snap->pollfds[w->pollfd_first + i].channel))
                return LW_CLASS_EXTERNAL;
        return LW_CLASS_IN_PROCESS;
    default:
        if (w->sysv)
            return LW_CLASS_EXTERNAL;
        return channel_index_in_process(snap, w->channel) ? LW_CLASS_IN_PROCESS : LW_CLASS_EXTERNAL;
    }
}
