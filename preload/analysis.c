/*
 * analysis.c — verdicts: a pure function from a snapshot to one verdict and
 * one reason per thread. No clocks, no /proc, no registry: everything it
 * knows is in the snapshot, so its cases are unit-tested on hand-built
 * snapshots (tests/unit/test_analysis.c).
 *
 * This version decides running/waiting and writes the reasons; the proof
 * rules of the design (owner edges, quiescence, reachability, fd channels)
 * plug in here as further passes over the same tables.
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

static void describe_wait(char *out, size_t size, const struct lw_snap_thread *t,
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
        if (w->fd >= 0)
            snprintf(out, size, "blocked in %s(fd %lld), seen only in /proc%s", call, (long long)w->fd, deadline);
        else if (w->object)
            snprintf(out, size, "blocked in %s(0x%llx), seen only in /proc%s", call, obj, deadline);
        else
            snprintf(out, size, "blocked in %s, seen only in /proc%s", call, deadline);
        break;
    }
    default:
        snprintf(out, size, "waits (%s)%s", lw_wait_kind_name(w->kind), deadline);
        break;
    }
}

int lw_analyze(const struct lw_snapshot *snap, struct lw_analysis *out)
{
    memset(out, 0, sizeof *out);
    size_t n = snap->nthreads;
    out->verdicts = calloc(n ? n : 1, sizeof *out->verdicts);
    struct tid_name *index = calloc(n ? n : 1, sizeof *index);
    if (!out->verdicts || !index) {
        free(index);
        lw_analysis_free(out);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = (struct tid_name){ snap->threads[i].tid, snap->threads[i].name };
    qsort(index, n, sizeof *index, compare_tid_name);

    for (size_t i = 0; i < n; i++) {
        const struct lw_snap_thread *t = &snap->threads[i];
        struct lw_thread_verdict *v = &out->verdicts[i];
        if (t->waiting) {
            v->verdict = LW_WAITING;
            out->parked++;
            describe_wait(v->reason, sizeof v->reason, t, index, n);
        } else {
            v->verdict = LW_RUNNING;
            snprintf(v->reason, sizeof v->reason, "running");
        }
        out->counts[v->verdict]++;
    }
    free(index);
    return 0;
}

void lw_analysis_free(struct lw_analysis *a)
{
    free(a->verdicts);
    memset(a, 0, sizeof *a);
}
