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
 * Rules 3 (reachability) and 4 (fd channels) add passes here later. Only
 * waits older than the settle time are judged; anything the snapshot cannot
 * vouch for (a process-shared object, a robust mutex, an owner that may be
 * alive) leaves the thread `waiting`: a false alarm costs more than a miss.
 */
#include "snapshot.h"

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

/* glibc's own handlers (SIGCANCEL, SIGSETXID: signals 32 and 33) are in
 * every threaded process's SigCgt; they never end an application wait. */
#define GLIBC_INTERNAL_SIGNALS ((1ull << 31) | (1ull << 32))

struct ctx {
    const struct lw_snapshot *snap;
    struct lw_analysis *out;
    struct tid_name *names;       /* sorted by tid */
    struct tid_pos *positions;    /* sorted by tid: where each thread is in snap->threads */
    double settle;
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
    case LW_WAIT_FD_READ: case LW_WAIT_FD_WRITE: case LW_WAIT_POLL:
    case LW_WAIT_MQ_RECEIVE: case LW_WAIT_MQ_SEND:
        return true;   /* fd channels are judged by their own rule, not here */
    case LW_WAIT_SEM: case LW_WAIT_FUTEX:
        /* sem_post and a futex wake are async-signal-safe: a handler may end it. */
        return c->app_signal_handlers;
    case LW_WAIT_SYSCALL:
        /* Seen only in /proc: an untimed private futex wait is in-process
         * (a glibc-internal lock); anything else may be external. */
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
    if (!is_settled(c, t) || w->timed || w->shared || w->owner <= 0 || w->source != LW_SOURCE_HOOK)
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

int lw_analyze(const struct lw_snapshot *snap, struct lw_analysis *out)
{
    memset(out, 0, sizeof *out);
    size_t n = snap->nthreads;
    struct ctx c = {
        .snap = snap, .out = out, .settle = snap->settle_ms / 1000.0,
        .app_signal_handlers = (snap->caught_signals & ~GLIBC_INTERNAL_SIGNALS) != 0,
    };
    out->verdicts = calloc(n ? n : 1, sizeof *out->verdicts);
    if (!out->verdicts || build_indexes(&c) != 0) {
        free_indexes(&c);
        lw_analysis_free(out);
        return -1;
    }
    describe_plain(&c);
    if (judge_owner_edges(&c) != 0) {
        free_indexes(&c);
        lw_analysis_free(out);
        return -1;
    }
    judge_quiescence(&c);
    for (size_t i = 0; i < n; i++) {
        out->counts[out->verdicts[i].verdict]++;
        if (snap->threads[i].waiting)
            out->parked++;
    }
    free_indexes(&c);
    return 0;
}

void lw_analysis_free(struct lw_analysis *a)
{
    free(a->verdicts);
    memset(a, 0, sizeof *a);
}
