/*
 * api.c — what a test may ask the preload directly: goleak's VerifyNone,
 * per test, for C and C++ (include/leakwatch.h declares these two weakly,
 * so a test binary works with or without the preload).
 *
 *   leakwatch_v1_mark()                  remember "now" (async-signal-safe:
 *                                        one clock read and one store)
 *   leakwatch_v1_verify_none(timeout_ms) wait, retrying as goleak does,
 *                                        until every thread created since
 *                                        the last mark (since start-up, if
 *                                        none) has exited; NULL when they
 *                                        all did, else a report of those
 *                                        still there (malloc'ed text: free
 *                                        it), with their waits, verdicts and
 *                                        stacks
 *
 * No hook calls into this file and it adds nothing to any hook's path. The
 * wait reads the registry's slots (each thread's birth time) without a
 * lock, sleeping with raw nanosleep between looks (no wait of ours is
 * recorded); only when threads remain at the deadline is a snapshot taken
 * and judged, under the report lock, as the exit report is, on the calling
 * thread. Stacks are named with dladdr (dynamic symbols, with their size
 * checked: a pc outside every exported function is written MODULE+0xOFF,
 * never as its neighbour), after the lock is released.
 */
#include "base/util.h"
#include "core/snapshot.h"
#include "interpose/interpose.h"
#include "record/internal.h"
#include "record/registry.h"
#include "serve/reportlock.h"
#include "serve/serve.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LISTED_MAX 64                /* threads described in a report; the rest are counted */
#define FIRST_PAUSE_NS 1000000ull    /* the retries' first pause, doubled up to ... */
#define LAST_PAUSE_NS 64000000ull

static uint64_t mark_ns;   /* 0: no mark yet */

LW_EXPORT void leakwatch_v1_mark(void)
{
    __atomic_store_n(&mark_ns, lw_now_ns(), __ATOMIC_RELEASE);
}

/* ---- who is left ---- */

/* A thread created since the mark, other than the caller and our own. */
static bool counts(const struct lw_slot *s, uint64_t mark, pid_t self)
{
    return s->birth_ns > mark && s->origin != LW_ORIGIN_MAIN && s->tid != self && !(s->tid && lw_is_internal_tid(s->tid));
}

/* How many such threads still hold a slot (slots are freed as a thread
 * exits, after its destructors); the tids of the first `max`. */
static size_t threads_left(uint64_t mark, pid_t self, pid_t *tids, size_t max)
{
    size_t n = 0;
    uint32_t hw = lw_registry_high_water();
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_slot copy;
        const struct lw_slot *s = lw_registry_slot(i);
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == LW_SLOT_FREE || !lw_wait_read(s, &copy))
            continue;
        if (copy.state == LW_SLOT_FREE || !counts(&copy, mark, self))
            continue;
        if (n < max)
            tids[n] = copy.tid;   /* 0 for a thread not yet started */
        n++;
    }
    return n;
}

static void pause_ns(uint64_t ns)
{
    struct timespec t = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    lw_raw_syscall6(SYS_nanosleep, (long)&t, 0, 0, 0, 0, 0);
}

/* ---- what they do: judged under the report lock ---- */

struct left_thread {
    pid_t tid;
    char name[16];
    enum lw_verdict verdict;
    bool waiting;
    enum lw_wait_kind kind;
    uint64_t object;
    int64_t fd;
    double seconds;
    char reason[768];
    uint32_t nwait, ncreate;
    uint64_t wait_pcs[LW_MAX_FRAMES], create_pcs[LW_MAX_FRAMES];
};

/* The judging runs as a function without arguments (the report lock's
 * interface): its input and output live here, under that lock. */
static struct {
    const pid_t *tids;
    size_t ntids;
    struct left_thread *out;
    size_t nout;
} job;

static bool wanted(pid_t tid)
{
    for (size_t i = 0; i < job.ntids; i++)
        if (job.tids[i] == tid && tid)
            return true;
    return false;
}

static uint32_t copy_stack(const struct lw_snapshot *snap, uint32_t id, uint64_t *pcs)
{
    for (size_t k = 0; id && k < snap->nstacks; k++) {
        if (snap->stacks[k].id != id)
            continue;
        uint32_t depth = snap->stacks[k].depth < LW_MAX_FRAMES ? snap->stacks[k].depth : LW_MAX_FRAMES;
        memcpy(pcs, snap->stacks[k].pcs, depth * sizeof *pcs);
        return depth;
    }
    return 0;
}

static void describe(struct left_thread *l, const struct lw_snapshot *snap, size_t i, const struct lw_analysis *a)
{
    const struct lw_snap_thread *t = &snap->threads[i];
    l->tid = t->tid;
    memcpy(l->name, t->name, sizeof l->name);
    l->name[sizeof l->name - 1] = 0;
    l->verdict = a->verdicts[i].verdict;
    l->waiting = t->waiting;
    l->kind = t->wait.kind;
    l->object = t->wait.object;
    l->fd = t->wait.fd;
    l->seconds = t->wait.seconds;
    snprintf(l->reason, sizeof l->reason, "%s", a->verdicts[i].reason);
    l->nwait = copy_stack(snap, t->wait_stack, l->wait_pcs);
    l->ncreate = copy_stack(snap, t->create_stack, l->create_pcs);
}

static void judge_left_threads(void)
{
    struct lw_snapshot snap;
    struct lw_analysis a;
    job.nout = 0;
    if (lw_snapshot_take(&snap) != 0)
        return;
    if (lw_analyze_with_reach(&snap, &a, false) == 0) {
        for (size_t i = 0; i < snap.nthreads && job.nout < job.ntids; i++)
            if (wanted(snap.threads[i].tid))
                describe(&job.out[job.nout++], &snap, i, &a);
        lw_analysis_free(&a);
    }
    lw_snapshot_free(&snap);
}

/* ---- the report ---- */

/* "function+0xOFF (MODULE+0xOFF)" or "MODULE+0xOFF" for one return address. */
static void print_frame(FILE *out, uint64_t pc)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    uintptr_t at = (uintptr_t)pc - 1;   /* inside the call, not after it */
    if (!pc || !dladdr1((void *)at, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_fname) {
        fprintf(out, "      0x%llx\n", (unsigned long long)pc);
        return;
    }
    uintptr_t base = (uintptr_t)info.dli_fbase, start = (uintptr_t)info.dli_saddr;
    if (sym && info.dli_sname && start <= at && at < start + sym->st_size)
        fprintf(out, "      %s+0x%lx (%s+0x%lx)\n", info.dli_sname, (unsigned long)(pc - start), info.dli_fname,
                (unsigned long)(pc - base));
    else
        fprintf(out, "      %s+0x%lx\n", info.dli_fname, (unsigned long)(pc - base));
}

static void print_left_thread(FILE *out, const struct left_thread *l)
{
    fprintf(out, "  tid %d \"%s\": %s", (int)l->tid, l->name, lw_verdict_name(l->verdict));
    if (l->waiting && l->fd >= 0)
        fprintf(out, ", %s on fd %lld", lw_wait_kind_name(l->kind), (long long)l->fd);
    else if (l->waiting && l->object)
        fprintf(out, ", %s 0x%llx", lw_wait_kind_name(l->kind), (unsigned long long)l->object);
    else if (l->waiting)
        fprintf(out, ", %s", lw_wait_kind_name(l->kind));
    if (l->waiting)
        fprintf(out, ", parked %.1fs", l->seconds);
    fprintf(out, "\n");
    if (l->reason[0])
        fprintf(out, "    %s\n", l->reason);
    if (l->nwait)
        fprintf(out, "    wait stack:\n");
    for (uint32_t k = 0; k < l->nwait; k++)
        print_frame(out, l->wait_pcs[k]);
    if (l->ncreate)
        fprintf(out, "    created at:\n");
    for (uint32_t k = 0; k < l->ncreate; k++)
        print_frame(out, l->create_pcs[k]);
}

static char *report(size_t nleft, unsigned timeout_ms, const struct left_thread *listed, size_t nlisted)
{
    char *text = NULL;
    size_t len;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    fprintf(out, "%zu thread%s created since leakwatch_mark() %s still running after %u ms:\n", nleft,
            nleft == 1 ? "" : "s", nleft == 1 ? "is" : "are", timeout_ms);
    for (size_t i = 0; i < nlisted; i++)
        print_left_thread(out, &listed[i]);
    if (nlisted < nleft)
        fprintf(out, "  (%zu more not described: they exited meanwhile, or past the first %d)\n", nleft - nlisted,
                LISTED_MAX);
    return fclose(out) == 0 ? text : (free(text), NULL);
}

/* The threads left, judged and described; a one-line report when there is
 * no memory to judge them. */
static char *describe_threads_left(size_t nleft, const pid_t *tids, size_t ntids, unsigned timeout_ms)
{
    struct left_thread *listed = calloc(ntids ? ntids : 1, sizeof *listed);
    size_t nlisted = 0;
    if (listed) {
        job.tids = tids;
        job.ntids = ntids;
        job.out = listed;
        lw_reports_lock();
        judge_left_threads();
        lw_reports_unlock();
        nlisted = job.nout;
    }
    char *text = report(nleft, timeout_ms, listed, nlisted);
    free(listed);
    return text ? text : strdup("threads created since leakwatch_mark() are still running (no memory to say more)\n");
}

LW_EXPORT char *leakwatch_v1_verify_none(unsigned timeout_ms)
{
    if (!lw_registry_ready())
        return NULL;
    uint64_t mark = __atomic_load_n(&mark_ns, __ATOMIC_ACQUIRE);
    uint64_t deadline = lw_now_ns() + (uint64_t)timeout_ms * 1000000u, pause = FIRST_PAUSE_NS;
    pid_t self = lw_gettid(), tids[LISTED_MAX];
    size_t nleft;
    while ((nleft = threads_left(mark, self, tids, LISTED_MAX)) > 0) {
        uint64_t now = lw_now_ns();
        if (now >= deadline)
            break;
        pause_ns(deadline - now < pause ? deadline - now : pause);
        pause = pause * 2 < LAST_PAUSE_NS ? pause * 2 : LAST_PAUSE_NS;
    }
    if (!nleft)
        return NULL;
    return describe_threads_left(nleft, tids, nleft < LISTED_MAX ? nleft : LISTED_MAX, timeout_ms);
}
