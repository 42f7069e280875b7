/*
 * snapshot.c — a consistent copy of the registry merged with what
 * /proc/self/task says, taken on the server thread.
 *
 * /proc is the second source of truth: a thread blocked in a syscall that no
 * hook saw (a glibc-internal lock, stdio reading a pipe, a statically linked
 * helper) still shows up, with its syscall and its futex address or fd, so no
 * parked thread is ever invisible. Such waits have no start time of their
 * own; the server remembers when it first saw each one (per tid, syscall and
 * first argument), so their age is "at least" that long.
 */
#include "base/util.h"
#include "base/maps.h"
#include "base/glibc_sync.h"
#include "record/registry.h"
#include "core/snapshot.h"
#include "record/stacks.h"
#include "record/channels.h"
#include "core/source.h"
#include "core/fdsnap.h"

#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int compare_tid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}
#define compare_tid_for_search compare_tid

/* ---- small /proc readers ---- */


/* A thread's name and scheduler state, from one read of its stat line
 * ("tid (comm) S ..."; comm may contain anything, parentheses too: it ends
 * at the last ')'). Name "" and state '?' when it cannot be read. */
static char read_name_and_state(const struct lw_task_dir *dir, pid_t tid, char name[16])
{
    char buf[512];
    name[0] = 0;
    ssize_t n = lw_read_task_file(dir, tid, "stat", buf, sizeof buf - 1);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    const char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ' || !close_paren[2])
        return '?';
    size_t len = (size_t)(close_paren - open_paren - 1);
    len = len > 15 ? 15 : len;
    memcpy(name, open_paren + 1, len);
    name[len] = 0;
    return close_paren[2];
}

/* ---- the names of parked threads, read once per wait ----
 * A name costs a read of /proc/self/task/TID/stat, about 10 us: 100 ms for
 * 10,000 threads. A thread parked in a recorded wait cannot rename itself
 * before the wait ends, so its name is read once per wait and kept, keyed
 * by (tid, the wait's start); the next snapshot reuses it. Threads come in
 * ascending tid order both times: one pass, a cursor. (Another thread may
 * rename it meanwhile, through its /proc comm file, as pthread_setname_np
 * does for a thread other than the caller: that name shows once the wait
 * ends.) */
struct kept_name {
    pid_t tid;
    uint64_t wait_start;
    char name[16];
};
static struct kept_name *names, *names_next;
static size_t nnames, nnames_next, names_cap, names_cursor;

static bool kept_name_of(pid_t tid, uint64_t wait_start, char name[16])
{
    while (names_cursor < nnames && names[names_cursor].tid < tid)
        names_cursor++;
    if (names_cursor == nnames || names[names_cursor].tid != tid || names[names_cursor].wait_start != wait_start)
        return false;
    memcpy(name, names[names_cursor].name, 16);
    return true;
}

static void keep_name(pid_t tid, uint64_t wait_start, const char name[16])
{
    if (!names_next || !name[0] || nnames_next == names_cap)
        return;
    struct kept_name *k = &names_next[nnames_next++];
    k->tid = tid;
    k->wait_start = wait_start;
    memcpy(k->name, name, sizeof k->name);
}

/* A thread's name and state letter ('?' for a thread in a recorded wait
 * whose name was kept: the letter is read only for waits /proc shows). */
static char name_and_state(const struct lw_task_dir *dir, pid_t tid, const struct lw_slot *s, char name[16])
{
    bool parked = s && s->wait.kind != LW_WAIT_NONE;
    if (parked && kept_name_of(tid, s->wait.start_ns, name)) {
        keep_name(tid, s->wait.start_ns, name);
        return '?';
    }
    char state = read_name_and_state(dir, tid, name);
    if (parked)
        keep_name(tid, s->wait.start_ns, name);
    return state;
}

/* Once every thread is filled: what was kept this time is what the next
 * snapshot may reuse (nothing, when the directory read through was not
 * ours: those names may be another process's). */
static void names_done(bool trusted)
{
    free(names);
    names = trusted ? names_next : NULL;
    nnames = trusted ? nnames_next : 0;
    if (!trusted)
        free(names_next);
    names_next = NULL;
    nnames_next = names_cursor = 0;
}

/* ---- /proc waits: classify the syscall a thread is blocked in ---- */

static bool syscall_takes_fd(int nr)
{
    switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
    case SYS_pread64: case SYS_pwrite64: case SYS_recvfrom: case SYS_sendto:
    case SYS_recvmsg: case SYS_sendmsg: case SYS_accept: case SYS_accept4:
    case SYS_connect: case SYS_epoll_wait: case SYS_epoll_pwait: case 441:
    case SYS_flock: case SYS_fcntl: case SYS_recvmmsg: case SYS_sendmmsg:
        return true;
    default:
        return false;
    }
}

static bool syscall_is_timed(const struct lw_task_syscall *sc)
{
    switch (sc->nr) {
    case SYS_futex: return sc->args[3] != 0;
    case 449: return sc->args[3] != 0;                      /* futex_waitv */
    case SYS_nanosleep: case SYS_clock_nanosleep: return true;
    case SYS_poll: return (int)sc->args[2] >= 0;
    case SYS_ppoll: return sc->args[2] != 0;
    case SYS_epoll_wait: case SYS_epoll_pwait: return (int)sc->args[3] >= 0;
    case 441: return sc->args[3] != 0;                      /* epoll_pwait2 */
    case SYS_select: case SYS_pselect6: return sc->args[4] != 0;
    case SYS_rt_sigtimedwait: return sc->args[2] != 0;
    default: return false;
    }
}

/* First-seen times of /proc-only waits, carried from one snapshot to the next. */
struct seen_wait {
    pid_t tid;
    int nr;
    uint64_t arg0;
    uint64_t since_ns;
};
static struct seen_wait *seen, *seen_next;
static size_t nseen, seen_cap;

static uint64_t first_seen(pid_t tid, int nr, uint64_t arg0, uint64_t now, size_t *nnext)
{
    uint64_t since = now;
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].tid == tid && seen[i].nr == nr && seen[i].arg0 == arg0) {
            since = seen[i].since_ns;
            break;
        }
    if (*nnext < seen_cap)
        seen_next[(*nnext)++] = (struct seen_wait){ tid, nr, arg0, since };
    return since;
}

/* The application took our directory fd's number while we read through it:
 * the /proc-only waits read may be nonsense; drop them (names too). A
 * thread seen only as "waiting, unknown" is never judged stuck by it. */
static void forget_proc_waits(struct lw_snapshot *snap)
{
    for (size_t i = 0; i < snap->nthreads; i++) {
        struct lw_snap_thread *t = &snap->threads[i];
        t->name[0] = 0;
        t->proc_state = '?';
        if (t->waiting && t->wait.source == LW_SOURCE_PROC) {
            t->waiting = false;
            memset(&t->wait, 0, sizeof t->wait);
            t->wait.fd = -1;
            t->wait.syscall_nr = -1;
            t->wait.channel = -1;
        }
    }
}

static void proc_wait(struct lw_snap_thread *t, const struct lw_task_syscall *sc, uint64_t now, size_t *nnext)
{
    struct lw_snap_wait *w = &t->wait;
    memset(w, 0, sizeof *w);
    w->kind = LW_WAIT_SYSCALL;
    w->source = LW_SOURCE_PROC;
    w->syscall_nr = sc->nr;
    w->channel = -1;
    w->fd = syscall_takes_fd(sc->nr) ? (int64_t)(int)sc->args[0] : -1;
    if (sc->nr == SYS_futex)
        w->object = sc->args[0];
    w->timed = syscall_is_timed(sc);
    w->remaining = 0;
    uint64_t since = first_seen(t->tid, sc->nr, sc->args[0], now, nnext);
    w->seconds = (double)(now - since) / 1e9;
    w->start_ns = since;
    t->waiting = true;
}

/* ---- owners, re-read now (the record holds the owner at wait entry) ---- */

/* The owner the object names right now, read without dereferencing it (the
 * object may be freed or unmapped under us); 0 when free or unreadable. */
static void refresh_owner(struct lw_snap_wait *w)
{
    if (w->source != LW_SOURCE_HOOK || !w->object)
        return;
    if (w->kind == LW_WAIT_MUTEX) {
        pthread_mutex_t m;
        w->owner = 0;
        if (!lw_read_memory(&m, w->object, sizeof m))
            return;
        struct lw_mutex_words words = lw_mutex_words_of(&m);
        w->robust = lw_mutex_is_robust(words);
        w->owner = lw_mutex_owner(words);
    } else if (w->kind == LW_WAIT_RWLOCK_READ || w->kind == LW_WAIT_RWLOCK_WRITE) {
        pthread_rwlock_t rw;
        w->owner = lw_read_memory(&rw, w->object, sizeof rw) ? lw_rwlock_writer(&rw) : 0;
    } else if (w->kind == LW_WAIT_FUTEX && w->owner) {
        uint32_t word;
        w->owner = lw_read_memory(&word, w->object, sizeof word) ? lw_futex_word_owner(word) : 0;
    }
}

static bool tid_listed(const pid_t *tids, size_t n, pid_t tid)
{
    return tids && bsearch(&tid, tids, n, sizeof *tids, compare_tid_for_search) != NULL;
}

/* An owner that is not among the threads listed may have been born after
 * the listing: only a thread the kernel no longer knows counts as gone. */
static void check_owner_gone(struct lw_snap_wait *w, const pid_t *tids, size_t ntids)
{
    if (w->owner <= 0 || tid_listed(tids, ntids, w->owner))
        return;
    w->owner_gone = lw_raw_syscall6(SYS_tgkill, getpid(), w->owner, 0, 0, 0, 0) == -ESRCH;
}

static uint64_t read_caught_signals(void)
{
    char buf[4096];
    if (lw_read_small_file("/proc/self/status", buf, sizeof buf) <= 0)
        return ~0ull;   /* unknown: assume handlers, which only makes us more careful */
    const char *line = strstr(buf, "\nSigCgt:");
    return line ? strtoull(line + 8, NULL, 16) : ~0ull;
}

/* ---- registry copies ---- */

struct reg_copy {
    struct lw_slot slot;
};

static int compare_reg_by_tid(const void *a, const void *b)
{
    const struct reg_copy *x = a, *y = b;
    if (x->slot.tid != y->slot.tid)
        return x->slot.tid < y->slot.tid ? -1 : 1;
    /* The same tid twice (a reused tid and a stale slot): newest first. */
    return x->slot.birth_ns > y->slot.birth_ns ? -1 : x->slot.birth_ns < y->slot.birth_ns;
}

static size_t copy_registry(struct reg_copy **out)
{
    uint32_t hw = lw_registry_high_water();
    struct reg_copy *copies = calloc(hw ? hw : 1, sizeof *copies);
    size_t n = 0;
    if (!copies) {
        *out = NULL;
        return 0;
    }
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_slot *s = lw_registry_slot(i);
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != LW_SLOT_LIVE)
            continue;
        if (!lw_wait_read(s, &copies[n].slot))
            continue;
        if (copies[n].slot.tid <= 0 || lw_is_internal_tid(copies[n].slot.tid))
            continue;
        n++;
    }
    qsort(copies, n, sizeof *copies, compare_reg_by_tid);
    *out = copies;
    return n;
}

static const struct lw_slot *find_slot(const struct reg_copy *regs, size_t n, pid_t tid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (regs[mid].slot.tid < tid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && regs[lo].slot.tid == tid ? &regs[lo].slot : NULL;
}


/* This process's threads but our own, sorted. */
static size_t list_tasks(pid_t **out)
{
    size_t n = lw_list_tids(0, out), kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!lw_is_internal_tid((*out)[i]))
            (*out)[kept++] = (*out)[i];
    return kept;
}

/* ---- building threads ---- */

static double seconds_between(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) / 1e9 : 0;
}

static void hook_wait(struct lw_snap_thread *t, const struct lw_wait_rec *r, uint64_t now)
{
    struct lw_snap_wait *w = &t->wait;
    memset(w, 0, sizeof *w);
    w->kind = (enum lw_wait_kind)r->kind;
    w->source = LW_SOURCE_HOOK;
    w->object = r->object_masked ? r->object_masked ^ LW_ADDR_MASK : 0;
    w->aux = r->aux_masked ? r->aux_masked ^ LW_ADDR_MASK : 0;
    w->fd = r->fd;
    w->timed = r->timed;
    w->remaining = r->deadline_ns ? ((double)r->deadline_ns - (double)now) / 1e9 : 0;
    w->seconds = seconds_between(r->start_ns, now);
    w->start_ns = r->start_ns;
    w->hook_sp = r->at_sp_masked ? r->at_sp_masked ^ LW_ADDR_MASK : 0;
    w->owner = r->owner;
    w->syscall_nr = -1;
    w->shared = r->shared;
    w->direction = (enum lw_direction)r->direction;
    w->sysv = (r->flags & LW_REC_SYSV) != 0;
    w->channel = -1;
    if (!(r->flags & (LW_REC_FD | LW_REC_SYSV)))
        w->fd = -1;
    if (w->kind == LW_WAIT_JOIN) {
        w->join_target = w->object;
        w->owner = 0;
    }
    t->waiting = true;
    t->wait_stack = r->stack_id;
}

static void fill_thread(struct lw_snap_thread *t, pid_t tid, const struct lw_slot *s, uint64_t now, size_t *nnext,
                        const struct lw_task_dir *dir)
{
    memset(t, 0, sizeof *t);
    t->tid = tid;
    t->is_main = tid == getpid();
    t->proc_state = name_and_state(dir, tid, s, t->name);
    t->age = -1;
    t->wait.fd = -1;
    t->wait.syscall_nr = -1;
    if (s) {
        t->origin = (enum lw_origin)s->origin;
        t->parent = s->parent_tid;
        t->start_routine = s->start_routine;
        t->create_stack = s->create_stack;
        t->pthread = s->pthread;
        if (s->birth_ns)
            t->age = seconds_between(s->birth_ns, now);
        if (s->wait.kind != LW_WAIT_NONE) {
            hook_wait(t, &s->wait, now);
            return;
        }
    } else {
        t->origin = t->is_main ? LW_ORIGIN_MAIN : LW_ORIGIN_PROC;
    }
    struct lw_task_syscall sc;
    if (t->proc_state != 'R' && lw_task_syscall_in(dir, tid, &sc) && sc.nr >= 0)
        proc_wait(t, &sc, now, nnext);
}

/* Join waits name a pthread_t; turn it into the target's tid, through an
 * index of live and exited threads sorted by pthread_t (linear-log, so
 * 10,000 threads joining 10,000 others stay cheap). */
struct pthread_tid {
    uint64_t pthread;
    int32_t tid;
};

static int compare_pthread(const void *a, const void *b)
{
    uint64_t x = ((const struct pthread_tid *)a)->pthread, y = ((const struct pthread_tid *)b)->pthread;
    return (x > y) - (x < y);
}

static void resolve_join_targets(struct lw_snapshot *snap, const struct reg_copy *regs, size_t nregs,
                                 const uint64_t *exited_pthreads)
{
    size_t n = 0;
    struct pthread_tid *index = calloc(nregs + snap->nexited + 1, sizeof *index);
    if (!index)
        return;
    for (size_t j = 0; j < nregs; j++)      /* live threads first: they win a tie */
        if (regs[j].slot.pthread)
            index[n++] = (struct pthread_tid){ regs[j].slot.pthread, regs[j].slot.tid };
    size_t nlive = n;
    for (size_t j = 0; j < snap->nexited; j++)
        if (exited_pthreads[j])
            index[n++] = (struct pthread_tid){ exited_pthreads[j], snap->exited_threads[j].tid };
    qsort(index, nlive, sizeof *index, compare_pthread);
    qsort(index + nlive, n - nlive, sizeof *index, compare_pthread);
    for (size_t i = 0; i < snap->nthreads; i++) {
        struct lw_snap_wait *w = &snap->threads[i].wait;
        if (!snap->threads[i].waiting || w->kind != LW_WAIT_JOIN || !w->join_target)
            continue;
        struct pthread_tid key = { w->join_target, 0 };
        const struct pthread_tid *hit = bsearch(&key, index, nlive, sizeof *index, compare_pthread);
        if (!hit)
            hit = bsearch(&key, index + nlive, n - nlive, sizeof *index, compare_pthread);
        if (hit)
            w->owner = hit->tid;
    }
    free(index);
}

/* A hooked poll-style wait's set, as its record names it; read only if
 * /proc/self/task/TID/syscall shows the thread inside that very call. */
static bool poll_set_of(pid_t tid, const struct lw_wait_rec *r, struct lw_fd_wait *fw)
{
    memset(fw, 0, sizeof *fw);
    if (r->flags & LW_REC_EPOLL) {
        fw->form = LW_POLL_EPOLL;
        fw->epfd = (int)r->fd;
        return true;
    }
    if (!(r->flags & (LW_REC_POLLFDS | LW_REC_FDSETS)))
        return false;
    fw->form = (r->flags & LW_REC_POLLFDS) ? LW_POLL_FDS : LW_POLL_FDSETS;
    for (int i = 0; i < 3; i++)
        fw->set[i] = r->set_masked[i] ? r->set_masked[i] ^ LW_ADDR_MASK : 0;
    fw->nfds = r->nfds;
    struct lw_task_syscall sc;
    if (lw_task_syscall(tid, &sc) && sc.nr >= 0) {
        if (fw->form == LW_POLL_FDS)
            fw->set_current = (sc.nr == SYS_poll || sc.nr == SYS_ppoll) && sc.args[0] == fw->set[0] &&
                              sc.args[1] == r->nfds;
        else
            fw->set_current = (sc.nr == SYS_select || sc.nr == SYS_pselect6) && sc.args[1] == fw->set[0] &&
                              sc.args[2] == fw->set[1];
    }
    return true;
}

/* Channels and poll sets (fdsnap.c), from each thread's hook record and
 * the channel table's history. */
static void attach_fd_details(struct lw_snapshot *snap, const struct reg_copy *regs, size_t nregs)
{
    size_t n = snap->nthreads ? snap->nthreads : 1;
    const struct lw_fd_wait **waits = calloc(n, sizeof *waits);
    struct lw_fd_wait *sets = calloc(n, sizeof *sets);
    if (!waits || !sets) {
        free(waits);
        free(sets);
        return;
    }
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct lw_slot *s = find_slot(regs, nregs, snap->threads[i].tid);
        if (s && s->wait.kind != LW_WAIT_NONE && snap->threads[i].wait.source == LW_SOURCE_HOOK &&
            poll_set_of(snap->threads[i].tid, &s->wait, &sets[i]))
            waits[i] = &sets[i];
    }
    struct lw_fdsnap_env env = { .pid = 0, .source = snap->source, .history = &lw_channel_history,
                                 .private_fds = lw_fds_are_private };
    lw_fdsnap_build(snap, &env, waits);
    free(waits);
    free(sets);
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void collect_stacks(struct lw_snapshot *snap)
{
    size_t cap = 2 * snap->nthreads + snap->nexited + snap->nchannels + 1, n = 0;
    uint32_t *ids = malloc(cap * sizeof *ids);
    if (!ids)
        return;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (snap->threads[i].wait_stack)
            ids[n++] = snap->threads[i].wait_stack;
        if (snap->threads[i].create_stack)
            ids[n++] = snap->threads[i].create_stack;
    }
    for (size_t i = 0; i < snap->nexited; i++)
        if (snap->exited_threads[i].create_stack)
            ids[n++] = snap->exited_threads[i].create_stack;
    for (size_t i = 0; i < snap->nchannels && n < cap; i++)
        if (snap->channels[i].create_stack)
            ids[n++] = snap->channels[i].create_stack;
    qsort(ids, n, sizeof *ids, compare_u32);
    snap->stacks = calloc(n ? n : 1, sizeof *snap->stacks);
    for (size_t i = 0; snap->stacks && i < n; i++)
        if ((i == 0 || ids[i] != ids[i - 1]) && lw_stack_get(ids[i], &snap->stacks[snap->nstacks]))
            snap->nstacks++;
    free(ids);
}


int lw_snapshot_take(struct lw_snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    snap->source = lw_self_source();   /* (first: it may malloc once) */
    uint64_t now = lw_now_ns();
    snap->pid = getpid();
    snap->taken_ns = now;
    snap->uptime = seconds_between(lw_start_ns, now);
    snap->settle_ms = lw_settings.settle_ms;
    snap->stall_ms = lw_settings.stall_ms;
    lw_registry_counters(&snap->created, &snap->exited, &snap->peak);

    struct reg_copy *regs;
    size_t nregs = copy_registry(&regs);
    pid_t *tids;
    size_t ntids = list_tasks(&tids);
    bool have_proc = tids != NULL;
    size_t cap = have_proc ? ntids : nregs;

    snap->threads = calloc(cap ? cap : 1, sizeof *snap->threads);
    snap->exited_threads = calloc(LW_EXIT_RING, sizeof *snap->exited_threads);
    uint64_t *exited_pthreads = snap->exited_pthreads = calloc(LW_EXIT_RING, sizeof *exited_pthreads);
    seen_cap = cap;
    seen_next = calloc(seen_cap ? seen_cap : 1, sizeof *seen_next);
    names_cap = cap;
    names_next = malloc((cap ? cap : 1) * sizeof *names_next);   /* (none: every name is read) */
    if (!snap->threads || !snap->exited_threads || !exited_pthreads || !seen_next || (!regs && nregs)) {
        free(regs); free(tids); free(seen_next);
        seen_next = NULL;
        names_done(false);
        lw_snapshot_free(snap);
        errno = ENOMEM;
        return -1;
    }
    size_t nnext = 0;
    struct lw_task_dir dir;
    lw_task_dir_open(&dir);
    for (size_t i = 0; i < cap; i++) {
        pid_t tid = have_proc ? tids[i] : regs[i].slot.tid;
        fill_thread(&snap->threads[snap->nthreads++], tid, find_slot(regs, nregs, tid), now, &nnext, &dir);
    }
    bool dir_ours = lw_task_dir_still_ours(&dir);
    if (!dir_ours)
        forget_proc_waits(snap);   /* what was read through it may be another directory's */
    names_done(dir_ours);
    lw_task_dir_close(&dir);
    free(seen);
    seen = seen_next;
    nseen = nnext;
    seen_next = NULL;

    snap->nexited = lw_registry_exited(snap->exited_threads, exited_pthreads, LW_EXIT_RING, now);
    resolve_join_targets(snap, regs, nregs, exited_pthreads);
    for (size_t i = 0; i < snap->nthreads; i++) {
        refresh_owner(&snap->threads[i].wait);
        check_owner_gone(&snap->threads[i].wait, tids, ntids);
    }
    snap->caught_signals = read_caught_signals();
    lw_snapshot_unshare_private(snap);
    attach_fd_details(snap, regs, nregs);
    collect_stacks(snap);
    free(regs);
    free(tids);
    return 0;
}

/* ---- the background prover's trigger ---- */

static bool is_memory_kind(uint8_t kind)
{
    switch (kind) {
    case LW_WAIT_COND: case LW_WAIT_SEM: case LW_WAIT_BARRIER: case LW_WAIT_FUTEX: case LW_WAIT_MUTEX:
    case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE:
        return true;
    default:
        return false;
    }
}

uint64_t lw_snapshot_memory_waits(uint64_t now, uint32_t settle_ms, size_t *count)
{
    uint64_t sum = 0, settled_before = now - (uint64_t)settle_ms * 1000000u;
    size_t n = 0;
    uint32_t hw = lw_registry_high_water();
    struct lw_slot copy;
    for (uint32_t i = 0; i < hw; i++) {
        const struct lw_slot *s = lw_registry_slot(i);
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != LW_SLOT_LIVE || !lw_wait_read(s, &copy))
            continue;
        const struct lw_wait_rec *w = &copy.wait;
        if (!is_memory_kind(w->kind) || w->timed || w->start_ns > settled_before)
            continue;
        /* (a mix of the wait's identity: its thread, object and start) */
        uint64_t h = (uint64_t)(uint32_t)copy.tid * 0x9e3779b97f4a7c15ull ^ w->object_masked ^ w->start_ns;
        h ^= h >> 31;
        h *= 0xbf58476d1ce4e5b9ull;
        sum += h ^ (h >> 29);
        n++;
    }
    *count = n;
    return sum;
}
