/*
 * judge.c — a stopped process judged by the preload's engine (see
 * judge.h): the same snapshot model, analysis and reachability scan, fed
 * from registers, stacks and /proc instead of hooks.
 *
 * What the engine gets from outside differs from what the hooks record:
 * a wait's kind and object are inferred (waits.c), its age is what two
 * samples or --since vouch for, threads have no creation stack, parent or
 * start routine, channels no history. None of it is made up: what is not
 * known is left unknown, and the rules prove less for it, never more.
 */
#include "attach/judge.h"
#include "base/util.h"
#include "core/source.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- stacks and waits ---- */

static bool in_libc(const char *module)
{
    const char *base = module ? strrchr(module, '/') : NULL;
    return base && strcmp(base, "/libc.so.6") == 0;
}

/* A wait the preload would have hooked starts its stack, as the preload's
 * do, at the caller of glibc's function: the frames inside glibc go (a
 * wait seen only as a syscall keeps them: they are all there is). */
static void start_at_caller(struct lwa_judgement *j, size_t i, const bool *libc_frame, size_t looked_at)
{
    size_t inside = 0;
    while (inside < looked_at && libc_frame[inside])
        inside++;
    if (!j->facts[i].parked || j->facts[i].wait.kind == LW_WAIT_SYSCALL || inside == 0 || inside >= j->depth[i] ||
        inside == looked_at)
        return;
    memmove(j->pcs[i], j->pcs[i] + inside, (j->depth[i] - inside) * sizeof j->pcs[i][0]);
    j->depth[i] -= (uint32_t)inside;
}

static void unwind_and_classify(struct lwa_subject *s, struct lwa_judgement *j, size_t i)
{
    const struct lwa_frozen_thread *t = s->threads[i].t;
    j->depth[i] = (uint32_t)lwa_stacks_unwind(s->stacks, t, j->pcs[i], LW_MAX_FRAMES);
    const char *names[LWA_FRAMES_LOOKED_AT] = { 0 };
    bool libc_frame[LWA_FRAMES_LOOKED_AT] = { 0 };
    size_t n = j->depth[i] < LWA_FRAMES_LOOKED_AT ? j->depth[i] : LWA_FRAMES_LOOKED_AT;
    for (size_t k = 0; k < n; k++) {
        struct lwc_frame f;
        lwc_symbolize(s->sym, j->pcs[i][k], true, &f);
        names[k] = f.function;
        libc_frame[k] = in_libc(f.module);
    }
    lwa_classify_wait(t, names, n, s->mem, &j->layout, &j->facts[i]);
    start_at_caller(j, i, libc_frame, n);
}

/* Identical stacks share one id (a thousand workers, one stack). */
static uint32_t stack_id(struct lw_snapshot *snap, const uint64_t *pcs, uint32_t depth)
{
    if (!depth)
        return 0;
    for (size_t k = 0; k < snap->nstacks; k++)
        if (snap->stacks[k].depth == depth && memcmp(snap->stacks[k].pcs, pcs, depth * sizeof *pcs) == 0)
            return snap->stacks[k].id;
    struct lw_snap_stack *st = &snap->stacks[snap->nstacks++];
    st->id = (uint32_t)snap->nstacks;
    st->depth = depth;
    memcpy(st->pcs, pcs, depth * sizeof *pcs);
    return st->id;
}

/* ---- the snapshot ---- */

/* An owner not among the threads: gone, if the kernel says so (a frozen
 * process's list is whole; a core's too). */
static bool owner_is_gone(const struct lwa_subject *s, int32_t owner)
{
    for (size_t i = 0; i < s->nthreads; i++)
        if (s->threads[i].t->tid == owner)
            return false;
    if (strcmp(s->kind, "core") == 0)
        return true;
    return syscall(SYS_tgkill, s->pid, owner, 0) != 0 && errno == ESRCH;
}

static void fill_thread(struct lwa_subject *s, struct lwa_judgement *j, size_t i)
{
    const struct lwa_thread_view *v = &s->threads[i];
    struct lw_snap_thread *t = &j->snap.threads[i];
    memset(t, 0, sizeof *t);
    t->tid = v->t->tid;
    memcpy(t->name, v->name, sizeof t->name);
    t->name[15] = 0;
    t->is_main = t->tid == s->pid;
    t->origin = t->is_main ? LW_ORIGIN_MAIN : LW_ORIGIN_PROC;
    t->age = v->age;
    t->proc_state = v->t->stopped ? 't' : '?';
    t->pthread = v->t->stopped ? v->t->regs.fs_base : 0;
    t->wait.fd = -1;
    t->wait.syscall_nr = -1;
    t->wait.channel = -1;
    const struct lwa_wait_facts *f = &j->facts[i];
    if (!f->parked)
        return;
    t->waiting = true;
    t->wait = f->wait;
    t->wait.seconds = v->parked_for;
    t->wait.start_ns = v->parked_since_ns;
    t->wait.owner_gone = t->wait.owner > 0 && owner_is_gone(s, t->wait.owner);
    t->wait_stack = stack_id(&j->snap, j->pcs[i], j->depth[i]);
}

static int build_snapshot(struct lwa_subject *s, struct lwa_judgement *j)
{
    struct lw_snapshot *snap = &j->snap;
    memset(snap, 0, sizeof *snap);
    snap->source = s->source;
    snap->pid = s->pid;
    snap->taken_ns = now_ns();
    snap->uptime = s->uptime >= 0 ? s->uptime : 0;
    snap->settle_ms = s->settle_ms;
    snap->stall_ms = s->stall_ms;
    snap->caught_signals = s->caught_signals;
    size_t n = s->nthreads ? s->nthreads : 1;
    snap->threads = calloc(n, sizeof *snap->threads);
    snap->stacks = calloc(n, sizeof *snap->stacks);
    if (!snap->threads || !snap->stacks)
        return -1;
    snap->nthreads = s->nthreads;
    for (size_t i = 0; i < s->nthreads; i++)
        fill_thread(s, j, i);
    if (j->layout.ncached_tcbs && (snap->cached_tcbs = malloc(j->layout.ncached_tcbs * sizeof *snap->cached_tcbs))) {
        memcpy(snap->cached_tcbs, j->layout.cached_tcbs, j->layout.ncached_tcbs * sizeof *snap->cached_tcbs);
        snap->ncached_tcbs = j->layout.ncached_tcbs;
    }
    if (strcmp(s->kind, "core") != 0)   /* a core does not say which mappings were shared */
        lw_snapshot_unshare_private(snap);
    return 0;
}

int lwa_judge_stopped(struct lwa_subject *s, struct lwa_judgement *j, bool want_paths)
{
    memset(j, 0, sizeof *j);
    uint64_t t0 = now_ns();
    lwa_layout_learn(&j->layout, s->source, s->stacks, s->frozen, s->nfrozen, s->pid);
    s->source->layout = j->layout.thread;
    s->source->tcache_key = j->layout.tcache_key;
    size_t n = s->nthreads ? s->nthreads : 1;
    j->facts = calloc(n, sizeof *j->facts);
    j->pcs = calloc(n, sizeof *j->pcs);
    j->depth = calloc(n, sizeof *j->depth);
    if (!j->facts || !j->pcs || !j->depth)
        return -1;
    for (size_t i = 0; i < s->nthreads; i++)
        unwind_and_classify(s, j, i);
    if (build_snapshot(s, j) != 0 || lw_analyze(&j->snap, &j->analysis) != 0)
        return -1;
    j->analysed = true;
    lw_reach_scan(&j->snap, &j->analysis, want_paths);   /* (its note says what it could do) */
    j->judge_ms = (double)(now_ns() - t0) / 1e6;
    return 0;
}

/* ---- after the threads run again ---- */

int lwa_judge_finish(struct lwa_subject *s, struct lwa_judgement *j)
{
    size_t n = s->nthreads ? s->nthreads : 1;
    const struct lw_fd_wait **waits = calloc(n, sizeof *waits);
    if (!waits)
        return -1;
    for (size_t i = 0; i < s->nthreads; i++)
        if (j->facts[i].has_poll)
            waits[i] = &j->facts[i].poll;
    if (strcmp(s->kind, "core") != 0) {   /* a core has no /proc/PID/fd: its fds stay unknown */
        struct lw_source cached;
        lwa_memory_source(s->mem, &cached);
        struct lw_fdsnap_env env = { .pid = s->proc_pid ? s->proc_pid : s->pid, .source = &cached,
                                     .history = s->history };
        lw_fdsnap_build(&j->snap, &env, waits);
    }
    free(waits);
    lw_analysis_free(&j->analysis);
    j->analysed = lw_analyze(&j->snap, &j->analysis) == 0;
    return j->analysed ? 0 : -1;
}

void lwa_judgement_free(struct lwa_judgement *j)
{
    if (j->analysed)
        lw_analysis_free(&j->analysis);
    lw_snapshot_free(&j->snap);
    lwa_layout_free(&j->layout);
    free(j->facts);
    free(j->pcs);
    free(j->depth);
    memset(j, 0, sizeof *j);
}
