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
#include "core/snapshot.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tid_name {
    int32_t tid;
    const char *name;
};

static int compare_tid_name(const void *a, const void *b)
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
static void describe_tid(char *buf, size_t size, const struct tid_name *index, size_t n, int32_t tid)
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

static void describe_wait(char *out, size_t size, const struct lw_snapshot *snap, const struct lw_snap_thread *t,
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

struct tid_pos {
    int32_t tid;
    size_t index;
};

static int compare_tid_pos(const void *a, const void *b)
{
    int32_t x = ((const struct tid_pos *)a)->tid, y = ((const struct tid_pos *)b)->tid;
    return (x > y) - (x < y);
}

/* ---- liveness ---- */

/* ---- how fd, signal and child waits can end ---- */

/* Both ends only here: no other process holds it, none can open it by name,
 * none was sent one of its fds. */
static bool channel_in_process(const struct lw_snap_channel *c)
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

static enum lw_wait_class classify_wait(const struct lw_snapshot *snap, const struct lw_snap_wait *w)
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

/* Handlers that never end an application wait: glibc's own (SIGCANCEL,
 * SIGSETXID: signals 32 and 33, in every threaded process's SigCgt), and
 * those of synchronous faults (SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV,
 * SIGSYS: crash reporters and sanitizers), which run only where the fault
 * happened, on a thread that is not parked. Bit n-1 is signal n. */
#define SIGNAL_BIT(n) (1ull << ((n) - 1))
#define GLIBC_INTERNAL_SIGNALS (SIGNAL_BIT(32) | SIGNAL_BIT(33) | SIGNAL_BIT(4) | SIGNAL_BIT(5) | SIGNAL_BIT(7) | \
                                SIGNAL_BIT(8) | SIGNAL_BIT(11) | SIGNAL_BIT(31))

struct ctx {
    const struct lw_snapshot *snap;
    struct lw_analysis *out;
    struct tid_name *names;       /* sorted by tid */
    struct tid_pos *positions;    /* sorted by tid: where each thread is in snap->threads */
    double settle;
    double stall;
    bool app_signal_handlers;
};

static bool is_settled(const struct ctx *c, const struct lw_snap_thread *t)
{
    return t->waiting && t->wait.seconds >= c->settle;
}

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

/* ---- rule 1: owner edges ---- */

static bool has_owner_edge(const struct ctx *c, const struct lw_snap_thread *t)
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

static long thread_index(const struct ctx *c, int32_t tid)
{
    struct tid_pos key = { tid, 0 };
    const struct tid_pos *hit = bsearch(&key, c->positions, c->snap->nthreads, sizeof key, compare_tid_pos);
    return hit ? (long)hit->index : -1;
}

static const struct lw_snap_exited *exited_thread(const struct lw_snapshot *snap, int32_t tid)
{
    for (size_t i = 0; i < snap->nexited; i++)   /* newest first */
        if (snap->exited_threads[i].tid == tid)
            return &snap->exited_threads[i];
    return NULL;
}

static void format_duration(char *buf, size_t size, double seconds)
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
static void describe_object(char *buf, size_t size, const struct lw_snap_wait *w)
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
static void describe_edge(char *buf, size_t size, const struct ctx *c, const struct lw_snap_thread *t)
{
    char obj[64], who[64];
    describe_object(obj, sizeof obj, &t->wait);
    describe_tid(who, sizeof who, c->names, c->snap->nthreads, t->wait.owner);
    if (t->wait.kind == LW_WAIT_JOIN)
        snprintf(buf, size, "waits to join %s", who);
    else
        snprintf(buf, size, "waits for %s held by %s", obj, who);
}

static void set_counterpart(struct lw_thread_verdict *v, const struct lw_snap_thread *t)
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
static int judge_owner_edges(struct ctx *c)
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

/* ---- fd channels: what history says of them ----
 *
 * The preload records who made each channel, which threads used each end
 * and when. That history never proves a wait dead: an fd is an integer, and
 * any thread that can still run may hold the number in a struct, a global or
 * a register and use it, whether or not it ever has (a wakeup fd is exactly
 * a channel nobody has used yet). So history only explains: it names the
 * threads in a proof's reason (rule 4 below) and is the evidence of a
 * `suspect` (judge_suspect). */

static bool is_channel_wait(const struct lw_snap_wait *w)
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
static void judge_channel_leak(struct ctx *c, size_t i)
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

/* ---- rule 2: quiescence ---- */

static void judge_quiescence(struct ctx *c)
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

enum wake_model { WAKE_LIVE, WAKE_OWNER, WAKE_NOBODY, WAKE_ANYONE, WAKE_JUDGED };

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
static void judge_owner_chains(struct ctx *c, const unsigned char *model)
{
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < c->snap->nthreads; i++)
            if (model[i] == WAKE_OWNER && c->out->verdicts[i].verdict == LW_WAITING && judge_owner_stuck(c, i))
                changed = true;
    }
}

/* "tid 1 (main) is deadlocked, tid 5 (pool) is leaked and 3 more" */
static void describe_others(char *out, size_t size, const struct ctx *c, size_t i)
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

/* Wakers were listed while their own verdicts were still being decided:
 * give each the verdict it ended with, so that a report never lists as
 * waiting a waker it calls leaked elsewhere. */
static void refresh_waker_verdicts(struct ctx *c)
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

static int judge_by_liveness(struct ctx *c)
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

static void judge_suspects(struct ctx *c)
{
    for (size_t i = 0; i < c->snap->nthreads; i++)
        judge_suspect(c, i);
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
