/*
 * test_analysis.c — the analysis on hand-built snapshots: no threads, no
 * clocks, no /proc. Each case builds a snapshot, runs lw_analyze and checks
 * verdicts, counts and reasons.
 */
#include "snapshot.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static struct lw_snap_thread thread(int32_t tid, const char *name)
{
    struct lw_snap_thread t;
    memset(&t, 0, sizeof t);
    t.tid = tid;
    snprintf(t.name, sizeof t.name, "%s", name);
    t.wait.fd = -1;
    t.wait.syscall_nr = -1;
    t.wait.channel = -1;
    t.age = -1;
    return t;
}

static void park(struct lw_snap_thread *t, enum lw_wait_kind kind, uint64_t object, double seconds)
{
    t->waiting = true;
    t->wait.kind = kind;
    t->wait.object = object;
    t->wait.seconds = seconds;
}

static void analyze(struct lw_snap_thread *threads, size_t n, struct lw_analysis *out)
{
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = threads;
    snap.nthreads = n;
    snap.settle_ms = 1000;
    snap.stall_ms = 30000;
    if (lw_analyze(&snap, out) != 0) {
        fprintf(stderr, "lw_analyze failed\n");
        failures++;
    }
}

static void test_running_and_waiting(void)
{
    struct lw_snap_thread t[3] = { thread(10, "main"), thread(11, "worker"), thread(12, "sleeper") };
    park(&t[1], LW_WAIT_MUTEX, 0x1000, 5);
    t[1].wait.owner = 10;
    park(&t[2], LW_WAIT_SLEEP, 0, 2);
    t[2].wait.timed = true;
    t[2].wait.remaining = 3.5;
    struct lw_analysis a;
    analyze(t, 3, &a);
    CHECK(a.verdicts[0].verdict == LW_RUNNING, "main is %s", lw_verdict_name(a.verdicts[0].verdict));
    CHECK(a.verdicts[1].verdict == LW_WAITING, "worker is %s", lw_verdict_name(a.verdicts[1].verdict));
    CHECK(strstr(a.verdicts[1].reason, "mutex 0x1000 held by tid 10 (main)") != NULL, "reason: %s", a.verdicts[1].reason);
    CHECK(strstr(a.verdicts[2].reason, "wakes in 3.5s") != NULL, "reason: %s", a.verdicts[2].reason);
    CHECK(a.counts[LW_RUNNING] == 1 && a.counts[LW_WAITING] == 2, "counts %zu/%zu", a.counts[LW_RUNNING], a.counts[LW_WAITING]);
    CHECK(a.parked == 2, "parked %zu", a.parked);
    lw_analysis_free(&a);
}

static void test_join_and_unknown_owner(void)
{
    struct lw_snap_thread t[2] = { thread(20, "main"), thread(21, "") };
    park(&t[0], LW_WAIT_JOIN, 0x7f0000001000, 9);
    t[0].wait.owner = 21;
    park(&t[1], LW_WAIT_MUTEX, 0x2000, 0.5);   /* too young to judge: no quiescence */
    struct lw_analysis a;
    analyze(t, 2, &a);
    CHECK(strcmp(a.verdicts[0].reason, "waits to join tid 21") == 0, "reason: %s", a.verdicts[0].reason);
    CHECK(strstr(a.verdicts[1].reason, "owner unknown") != NULL, "reason: %s", a.verdicts[1].reason);
    lw_analysis_free(&a);
}

static void test_proc_only_wait(void)
{
    struct lw_snap_thread t[1] = { thread(30, "reader") };
    park(&t[0], LW_WAIT_SYSCALL, 0, 4);
    t[0].wait.source = LW_SOURCE_PROC;
    t[0].wait.syscall_nr = 0;   /* read */
    t[0].wait.fd = 7;
    struct lw_analysis a;
    analyze(t, 1, &a);
    CHECK(a.verdicts[0].verdict == LW_WAITING, "verdict %s", lw_verdict_name(a.verdicts[0].verdict));
    CHECK(strstr(a.verdicts[0].reason, "read(fd 7)") != NULL, "reason: %s", a.verdicts[0].reason);
    lw_analysis_free(&a);
}

static void test_empty_snapshot(void)
{
    struct lw_analysis a;
    analyze(NULL, 0, &a);
    CHECK(a.parked == 0 && a.counts[LW_RUNNING] == 0, "empty snapshot has counts");
    lw_analysis_free(&a);
}

/* ---- rule 1: owner edges ---- */

static void own(struct lw_snap_thread *t, enum lw_wait_kind kind, uint64_t object, int32_t owner)
{
    park(t, kind, object, 10);
    t->wait.owner = owner;
}

static void test_two_thread_deadlock(void)
{
    struct lw_snap_thread t[3] = { thread(1, "main"), thread(2, "a"), thread(3, "b") };
    own(&t[1], LW_WAIT_MUTEX, 0x100, 3);
    own(&t[2], LW_WAIT_MUTEX, 0x200, 2);
    struct lw_analysis a;
    analyze(t, 3, &a);
    CHECK(a.verdicts[0].verdict == LW_RUNNING, "main %s", lw_verdict_name(a.verdicts[0].verdict));
    for (int i = 1; i <= 2; i++) {
        CHECK(a.verdicts[i].verdict == LW_DEADLOCKED, "thread %d is %s", i, lw_verdict_name(a.verdicts[i].verdict));
        CHECK(a.verdicts[i].cp_kind == LW_CP_CYCLE && a.verdicts[i].ncycle == 2, "cycle of %zu", a.verdicts[i].ncycle);
        CHECK(strstr(a.verdicts[i].reason, "deadlock of 2 threads") != NULL, "reason: %s", a.verdicts[i].reason);
    }
    CHECK(a.verdicts[1].cycle[0] == 2 && a.verdicts[1].cycle[1] == 3, "cycle from a: %d %d", a.verdicts[1].cycle[0], a.verdicts[1].cycle[1]);
    CHECK(a.verdicts[2].cycle[0] == 3 && a.verdicts[2].cycle[1] == 2, "cycle from b: %d %d", a.verdicts[2].cycle[0], a.verdicts[2].cycle[1]);
    CHECK(strstr(a.verdicts[1].reason, "mutex 0x100 held by tid 3 (b)") != NULL, "reason: %s", a.verdicts[1].reason);
    CHECK(a.counts[LW_DEADLOCKED] == 2, "deadlocked count %zu", a.counts[LW_DEADLOCKED]);
    CHECK(!a.quiescent, "a running main thread is live");
    lw_analysis_free(&a);
}

static void test_three_thread_cycle_with_rwlock_and_chain(void)
{
    struct lw_snap_thread t[5] = { thread(1, "main"), thread(2, "a"), thread(3, "b"), thread(4, "c"), thread(5, "d") };
    own(&t[0], LW_WAIT_JOIN, 0x7000, 5);           /* main joins d */
    own(&t[4], LW_WAIT_MUTEX, 0x400, 2);           /* d waits for a's mutex */
    own(&t[1], LW_WAIT_MUTEX, 0x100, 3);           /* a -> b -> c -> a */
    own(&t[2], LW_WAIT_RWLOCK_WRITE, 0x200, 4);
    own(&t[3], LW_WAIT_MUTEX, 0x300, 2);
    struct lw_analysis a;
    analyze(t, 5, &a);
    for (int i = 1; i <= 3; i++)
        CHECK(a.verdicts[i].verdict == LW_DEADLOCKED, "thread %d is %s", i, lw_verdict_name(a.verdicts[i].verdict));
    CHECK(a.verdicts[1].ncycle == 3, "cycle length %zu", a.verdicts[1].ncycle);
    CHECK(a.verdicts[4].verdict == LW_LEAKED, "d is %s", lw_verdict_name(a.verdicts[4].verdict));
    CHECK(strstr(a.verdicts[4].reason, "which is deadlocked") != NULL, "reason: %s", a.verdicts[4].reason);
    CHECK(a.verdicts[4].cp_blocked_on == 2, "d blocked on %d", a.verdicts[4].cp_blocked_on);
    CHECK(a.verdicts[0].verdict == LW_LEAKED, "main is %s", lw_verdict_name(a.verdicts[0].verdict));
    CHECK(strstr(a.verdicts[0].reason, "waits to join tid 5 (d), which is leaked") != NULL, "reason: %s", a.verdicts[0].reason);
    lw_analysis_free(&a);
}

static void test_self_deadlock(void)
{
    struct lw_snap_thread t[2] = { thread(1, "main"), thread(2, "relocker") };
    own(&t[1], LW_WAIT_MUTEX, 0x100, 2);
    struct lw_analysis a;
    analyze(t, 2, &a);
    CHECK(a.verdicts[1].verdict == LW_DEADLOCKED && a.verdicts[1].ncycle == 1, "relocker %s, cycle %zu",
          lw_verdict_name(a.verdicts[1].verdict), a.verdicts[1].ncycle);
    lw_analysis_free(&a);
}

static void test_owner_exited(void)
{
    struct lw_snap_thread t[2] = { thread(1, "main"), thread(2, "waiter") };
    own(&t[1], LW_WAIT_MUTEX, 0x100, 9);
    t[1].wait.owner_gone = true;
    struct lw_snap_exited gone = { .tid = 9, .exited_ago = 192.0 };
    snprintf(gone.name, sizeof gone.name, "worker");
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = t;
    snap.nthreads = 2;
    snap.exited_threads = &gone;
    snap.nexited = 1;
    snap.settle_ms = 1000;
    struct lw_analysis a;
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.verdicts[1].verdict == LW_LEAKED, "waiter is %s", lw_verdict_name(a.verdicts[1].verdict));
    CHECK(strstr(a.verdicts[1].reason, "locked by tid 9 (worker), which exited 3m12s ago without unlocking it") != NULL,
          "reason: %s", a.verdicts[1].reason);
    CHECK(a.verdicts[1].cp_kind == LW_CP_OWNER && a.verdicts[1].cp_tid == 9 && a.verdicts[1].cp_exited, "counterpart");
    lw_analysis_free(&a);
}

/* Healthy twins: nothing here is a proof. */
static void test_owner_edges_that_prove_nothing(void)
{
    struct lw_snap_thread t[7] = { thread(1, "main"), thread(2, "young"), thread(3, "timed"), thread(4, "robust"),
                                   thread(5, "shared"), thread(6, "unseen-owner"), thread(7, "holder") };
    own(&t[1], LW_WAIT_MUTEX, 0x100, 9);   t[1].wait.owner_gone = true; t[1].wait.seconds = 0.2;
    own(&t[2], LW_WAIT_MUTEX, 0x100, 9);   t[2].wait.owner_gone = true; t[2].wait.timed = true;
    own(&t[3], LW_WAIT_MUTEX, 0x200, 9);   t[3].wait.owner_gone = true; t[3].wait.robust = true;
    own(&t[4], LW_WAIT_MUTEX, 0x300, 9);   t[4].wait.owner_gone = true; t[4].wait.shared = true;
    own(&t[5], LW_WAIT_MUTEX, 0x400, 77);  /* owner alive but not listed (born after the listing) */
    own(&t[6], LW_WAIT_MUTEX, 0x500, 1);   /* held by the running main thread */
    struct lw_analysis a;
    analyze(t, 7, &a);
    for (int i = 1; i < 7; i++)
        CHECK(a.verdicts[i].verdict == LW_WAITING, "%s is %s", t[i].name, lw_verdict_name(a.verdicts[i].verdict));
    CHECK(a.verdicts[6].cp_kind == LW_CP_OWNER && a.verdicts[6].cp_tid == 1, "holder counterpart");
    lw_analysis_free(&a);
}

/* ---- rule 2: quiescence ---- */

static void test_whole_process_asleep(void)
{
    struct lw_snap_thread t[2] = { thread(1, "main"), thread(2, "consumer") };
    own(&t[0], LW_WAIT_JOIN, 0x7000, 2);
    park(&t[1], LW_WAIT_COND, 0x100, 10);
    struct lw_analysis a;
    analyze(t, 2, &a);
    CHECK(a.quiescent, "not quiescent");
    CHECK(strstr(a.note, "all threads are asleep") != NULL, "note: %s", a.note);
    CHECK(a.verdicts[0].verdict == LW_LEAKED && a.verdicts[1].verdict == LW_LEAKED, "verdicts %s %s",
          lw_verdict_name(a.verdicts[0].verdict), lw_verdict_name(a.verdicts[1].verdict));
    CHECK(strstr(a.verdicts[1].reason, "condition variable 0x100") != NULL, "reason: %s", a.verdicts[1].reason);
    lw_analysis_free(&a);
}

static void test_asleep_but_someone_can_wake(void)
{
    /* The same process with a timer thread, a young wait, or a semaphore
     * that a signal handler may post: never quiescent. */
    struct lw_snap_thread t[3] = { thread(1, "main"), thread(2, "consumer"), thread(3, "other") };
    own(&t[0], LW_WAIT_JOIN, 0x7000, 2);
    park(&t[1], LW_WAIT_COND, 0x100, 10);
    park(&t[2], LW_WAIT_COND, 0x200, 10);
    t[2].wait.timed = true;
    struct lw_analysis a;
    analyze(t, 3, &a);
    CHECK(!a.quiescent && a.counts[LW_LEAKED] == 0, "timed waiter: quiescent=%d leaked=%zu", a.quiescent, a.counts[LW_LEAKED]);
    lw_analysis_free(&a);

    t[2].wait.timed = false;
    t[2].wait.seconds = 0.5;
    analyze(t, 3, &a);
    CHECK(!a.quiescent, "young wait counted as asleep");
    lw_analysis_free(&a);

    park(&t[2], LW_WAIT_SEM, 0x300, 10);
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = t;
    snap.nthreads = 3;
    snap.settle_ms = 1000;
    snap.caught_signals = 1ull << (15 - 1);          /* SIGTERM handler */
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(!a.quiescent, "a semaphore a signal handler may post counted as asleep");
    lw_analysis_free(&a);

    snap.caught_signals = (1ull << 31) | (1ull << 32);  /* only glibc's own */
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.quiescent, "glibc's internal handlers kept the process awake");
    lw_analysis_free(&a);
}


/* python3 asleep in queue.get() while main joins it, with python's SIGINT
 * handler installed: stuck unless a signal arrives, so `suspect` once past
 * the stall threshold (never a proof), `waiting` before it; without the
 * handler, both leaked. */
static void test_asleep_but_for_a_handler(void)
{
    struct lw_snap_thread t[2] = { thread(1, "main"), thread(2, "consumer") };
    park(&t[0], LW_WAIT_SEM, 0x100, 40);
    park(&t[1], LW_WAIT_SEM, 0x200, 40);
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = t;
    snap.nthreads = 2;
    snap.settle_ms = 1000;
    snap.stall_ms = 30000;
    snap.caught_signals = (1ull << (2 - 1)) | (1ull << 31) | (1ull << 32);   /* SIGINT and glibc's own */
    struct lw_analysis a;
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.counts[LW_SUSPECT] == 2 && a.counts[LW_LEAKED] == 0, "suspect=%zu leaked=%zu",
          a.counts[LW_SUSPECT], a.counts[LW_LEAKED]);
    CHECK(strstr(a.verdicts[1].reason, "all threads are asleep") && strstr(a.verdicts[1].reason, "SIGINT") &&
          !strstr(a.verdicts[1].reason, "signal 32") && strstr(a.verdicts[1].reason, "not a proof"),
          "reason: %s", a.verdicts[1].reason);
    CHECK(!a.quiescent && strstr(a.note, "unless a signal arrives") && strstr(a.note, "SIGINT"), "note: %s", a.note);
    lw_analysis_free(&a);

    t[0].wait.seconds = t[1].wait.seconds = 10;   /* under the stall threshold */
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.counts[LW_WAITING] == 2, "young: waiting=%zu", a.counts[LW_WAITING]);
    lw_analysis_free(&a);

    t[0].wait.seconds = t[1].wait.seconds = 40;
    t[0].wait.timed = true;   /* a timed wait somewhere: not asleep at all */
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.counts[LW_WAITING] == 2, "timed: waiting=%zu", a.counts[LW_WAITING]);
    lw_analysis_free(&a);

    t[0].wait.timed = false;
    snap.caught_signals = (1ull << 31) | (1ull << 32);
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.counts[LW_LEAKED] == 2 && a.quiescent, "no handler: leaked=%zu", a.counts[LW_LEAKED]);
    lw_analysis_free(&a);
}

/* ---- rule 4: fd channels ---- */

/* A pipe made 10 s ago by tid 2 (setup, exited 9 s ago), whose write end
 * (fd 8) is still open here and was last written by tid 4 (writer, exited
 * 3 s ago). */
static struct lw_snap_channel pipe_channel(void)
{
    struct lw_snap_channel c;
    memset(&c, 0, sizeof c);
    c.type = LW_CHAN_PIPE;
    snprintf(c.name, sizeof c.name, "pipe:[4242]");
    c.inode = 4242;
    c.tracked = true;
    c.creator = 2;
    c.creator_exited = true;
    c.age = 10;
    c.other_fds[0] = 8;
    c.nother_fds = 1;
    c.peers[0].tid = 4;
    c.peers[0].exited = true;
    c.peers[0].idle = 3;
    c.npeers = 1;
    return c;
}

struct chan_case {
    struct lw_snap_thread t[8];
    size_t n;
    struct lw_snap_channel ch[4];
    size_t nch;
    struct lw_snap_pollfd pfd[4];
    size_t npfd;
    struct lw_snap_exited gone[2];
    uint64_t signals;
    uint32_t stall_ms;
};

/* main (1) runs; reader (3), born 5 s ago to setup, reads channel 0 for 6 s. */
static void chan_case_init(struct chan_case *k)
{
    memset(k, 0, sizeof *k);
    k->t[0] = thread(1, "main");
    k->t[0].age = 100;
    k->t[1] = thread(3, "reader");
    k->t[1].age = 5;
    k->t[1].parent = 2;
    park(&k->t[1], LW_WAIT_FD_READ, 0, 6);
    k->t[1].wait.fd = 7;
    k->t[1].wait.direction = LW_DIR_READ;
    k->t[1].wait.channel = 0;
    k->n = 2;
    k->ch[0] = pipe_channel();
    k->nch = 1;
    k->gone[0] = (struct lw_snap_exited){ .tid = 4, .name = "writer", .exited_ago = 3 };
    k->gone[1] = (struct lw_snap_exited){ .tid = 2, .name = "setup", .exited_ago = 9 };
    k->stall_ms = 30000;
}

static void chan_analyze(struct chan_case *k, struct lw_analysis *a)
{
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = k->t;
    snap.nthreads = k->n;
    snap.channels = k->ch;
    snap.nchannels = k->nch;
    snap.pollfds = k->pfd;
    snap.npollfds = k->npfd;
    snap.exited_threads = k->gone;
    snap.nexited = 2;
    snap.settle_ms = 1000;
    snap.stall_ms = k->stall_ms;
    snap.caught_signals = k->signals;
    if (lw_analyze(&snap, a) != 0) {
        fprintf(stderr, "lw_analyze failed\n");
        failures++;
    }
}

static enum lw_verdict reader_verdict(struct chan_case *k, char *reason, size_t size)
{
    struct lw_analysis a;
    chan_analyze(k, &a);
    enum lw_verdict v = a.verdicts[1].verdict;
    if (reason)
        snprintf(reason, size, "%s", a.verdicts[1].reason);
    lw_analysis_free(&a);
    return v;
}

static void test_channel_all_users_gone(void)
{
    struct chan_case k;
    chan_case_init(&k);
    struct lw_analysis a;
    chan_analyze(&k, &a);
    const struct lw_thread_verdict *v = &a.verdicts[1];
    CHECK(v->verdict == LW_LEAKED, "reader is %s: %s", lw_verdict_name(v->verdict), v->reason);
    CHECK(v->wait_class == LW_CLASS_IN_PROCESS, "class %d", v->wait_class);
    CHECK(strstr(v->reason, "reads fd 7 (pipe:[4242])") && strstr(v->reason, "tid 4 (writer)") &&
          strstr(v->reason, "exited 3.0s ago") && strstr(v->reason, "end-of-file"), "reason: %s", v->reason);
    CHECK(v->cp_kind == LW_CP_CHANNEL && v->cp_channel == 0 && v->nwakers == 2, "counterpart %d/%d/%zu",
          v->cp_kind, v->cp_channel, v->nwakers);
    CHECK(v->wakers[0].tid == 2 && v->wakers[0].role == LW_ROLE_CREATOR && v->wakers[0].exited, "creator waker");
    CHECK(v->wakers[1].tid == 4 && v->wakers[1].role == LW_ROLE_PEER && v->wakers[1].exited_ago == 3, "peer waker");
    CHECK(a.verdicts[0].verdict == LW_RUNNING && !a.quiescent, "main %s", lw_verdict_name(a.verdicts[0].verdict));
    lw_analysis_free(&a);
}

static void test_channel_live_counterparts(void)
{
    struct chan_case k;
    char why[800];
    /* A thread born after the pipe to its (exited) creator may hold the fd. */
    chan_case_init(&k);
    k.t[2] = thread(5, "producer");
    k.t[2].age = 8;
    k.t[2].parent = 2;
    k.n = 3;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "born-after producer: %s", why);
    /* ...but not one born before it: the fd did not come with its birth. */
    k.t[2].age = 20;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_LEAKED, "born-before thread kept it alive: %s", why);
    /* A grandchild through a thread born after the pipe still counts. */
    k.t[2].age = 8;
    k.t[3] = thread(6, "grandchild");
    k.t[3].age = 2;
    k.t[3].parent = 5;
    park(&k.t[2], LW_WAIT_COND, 0x10, 7);   /* the child itself sleeps on a condvar: it may wake */
    k.n = 4;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "grandchild: %s", why);
    /* A live user of the write end. */
    chan_case_init(&k);
    k.ch[0].peers[0].tid = 1;
    k.ch[0].peers[0].exited = false;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "live writer (main): %s", why);
    /* The creator is alive (main). */
    chan_case_init(&k);
    k.ch[0].creator = 1;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "live creator: %s", why);
}

static void test_channel_no_proof(void)
{
    struct chan_case k;
    char why[800];
    chan_case_init(&k);
    k.ch[0].nprocs = 1;
    k.ch[0].procs[0].pid = 999;
    snprintf(k.ch[0].procs[0].command, sizeof k.ch[0].procs[0].command, "child");
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING && strstr(why, "pid 999 (child)"),
          "other process: %s", why);
    chan_case_init(&k);
    k.ch[0].procs_unknown = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "unknown processes");
    chan_case_init(&k);
    k.ch[0].exported = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "exported");
    chan_case_init(&k);
    k.ch[0].stdio = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "stdio");
    chan_case_init(&k);
    k.ch[0].tracked = false;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "untracked");
    chan_case_init(&k);
    k.ch[0].users_overflow = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "users overflow");
    chan_case_init(&k);
    k.ch[0].other_fd_untracked = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "a copy of the other end we did not see made");
    chan_case_init(&k);
    k.ch[0].nother_fds = 0;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "no other end here");
    chan_case_init(&k);
    k.ch[0].type = LW_CHAN_FIFO;
    k.ch[0].named = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "named FIFO");
    chan_case_init(&k);
    k.signals = 1ull << (10 - 1);   /* SIGUSR1 handler: the self-pipe trick */
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "signal handler");
    k.stall_ms = 2000;              /* idle past the stall threshold, main alive: still no suspect */
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "signal handler, stalled");
    chan_case_init(&k);
    k.t[1].wait.timed = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "timed");
    chan_case_init(&k);
    k.t[1].wait.seconds = 0.5;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "not settled");
}

static void test_channel_poll_and_chain(void)
{
    struct chan_case k;
    chan_case_init(&k);
    k.ch[1] = pipe_channel();
    k.ch[1].inode = 4343;
    snprintf(k.ch[1].name, sizeof k.ch[1].name, "pipe:[4343]");
    k.ch[1].creator = 1;   /* main made the second pipe and is alive */
    k.nch = 2;
    k.pfd[0] = (struct lw_snap_pollfd){ 7, LW_DIR_READ, 0 };
    k.pfd[1] = (struct lw_snap_pollfd){ 9, LW_DIR_READ, 1 };
    k.npfd = 2;
    park(&k.t[1], LW_WAIT_POLL, 0, 6);
    k.t[1].wait.fd = -1;
    k.t[1].wait.channel = -1;
    k.t[1].wait.pollfd_first = 0;
    k.t[1].wait.npollfds = 2;
    char why[800];
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "poll with one live channel: %s", why);
    k.ch[1].creator = 2;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_LEAKED && strstr(why, "polls 2 fds"), "poll, all gone: %s", why);
    k.t[1].wait.pollfds_truncated = true;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "poll set not fully known: %s", why);

    /* A mutex held by the leaked reader: its waiter is leaked too. */
    chan_case_init(&k);
    k.t[2] = thread(7, "locker");
    park(&k.t[2], LW_WAIT_MUTEX, 0x500, 4);
    k.t[2].wait.owner = 3;
    k.n = 3;
    struct lw_analysis a;
    chan_analyze(&k, &a);
    CHECK(a.verdicts[2].verdict == LW_LEAKED && strstr(a.verdicts[2].reason, "which is leaked"),
          "chain: %s %s", lw_verdict_name(a.verdicts[2].verdict), a.verdicts[2].reason);
    lw_analysis_free(&a);

    /* Nothing can run: main joins the reader. The whole process is asleep. */
    chan_case_init(&k);
    park(&k.t[0], LW_WAIT_JOIN, 0x7000, 6);
    k.t[0].wait.owner = 3;
    chan_analyze(&k, &a);
    CHECK(a.quiescent && a.verdicts[0].verdict == LW_LEAKED && a.verdicts[1].verdict == LW_LEAKED,
          "asleep: quiescent %d, %s %s", a.quiescent, lw_verdict_name(a.verdicts[0].verdict),
          lw_verdict_name(a.verdicts[1].verdict));
    lw_analysis_free(&a);
}

static void test_channel_suspect(void)
{
    struct chan_case k;
    chan_case_init(&k);
    /* A writer on a full pipe for 40 s; the reader (main, alive) last read 35 s ago. */
    k.ch[0].creator = 1;
    k.ch[0].peers[0] = (struct lw_snap_peer){ .tid = 1, .exited = false, .idle = 35 };
    park(&k.t[1], LW_WAIT_FD_WRITE, 0, 40);
    k.t[1].wait.fd = 8;
    k.t[1].wait.direction = LW_DIR_WRITE;
    k.t[1].wait.channel = 0;
    char why[800];
    CHECK(reader_verdict(&k, why, sizeof why) == LW_SUSPECT && strstr(why, "Not a proof") &&
          strstr(why, "35.0s ago"), "suspect: %s", why);
    k.ch[0].peers[0].idle = 5;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "a reader that read 5 s ago: %s", why);
    k.ch[0].peers[0].idle = 35;
    k.t[1].wait.seconds = 20;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "under the stall threshold: %s", why);
}

/* 10,000 threads: chains, channels and condvars, judged right (the time it
 * takes is measured by scripts/bench, not here). */
static void test_ten_thousand(void)
{
    enum { N = 10000 };
    struct lw_snap_thread *t = calloc(N, sizeof *t);
    struct lw_snap_channel *ch = calloc(N, sizeof *ch);
    struct lw_snap_exited gone = { .tid = 2, .name = "setup", .exited_ago = 9 };
    if (!t || !ch) {
        failures++;
        return;
    }
    t[0] = thread(1, "main");
    t[0].age = 100;
    for (int i = 1; i < N; i++) {
        t[i] = thread(100 + i, "w");
        t[i].age = 50;   /* all born before the channels (10 s old) */
        t[i].parent = 2;
        if (i % 3 == 0) {        /* a leaked channel reader */
            ch[i] = pipe_channel();
            ch[i].peers[0].tid = 2;
            park(&t[i], LW_WAIT_FD_READ, 0, 6);
            t[i].wait.fd = 7;
            t[i].wait.direction = LW_DIR_READ;
            t[i].wait.channel = i;
        } else if (i % 3 == 1) { /* waits for the mutex of the previous (leaked) one */
            park(&t[i], LW_WAIT_MUTEX, 0x1000 + (uint64_t)i, 6);
            t[i].wait.owner = 100 + i - 1;
        } else {                 /* an idle pool worker */
            park(&t[i], LW_WAIT_COND, 0x99, 6);
        }
    }
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = t;
    snap.nthreads = N;
    snap.channels = ch;
    snap.nchannels = N;
    snap.exited_threads = &gone;
    snap.nexited = 1;
    snap.settle_ms = 1000;
    snap.stall_ms = 30000;
    struct lw_analysis a;
    CHECK(lw_analyze(&snap, &a) == 0, "analyze 10k");
    size_t want_leaked = 0;
    for (int i = 1; i < N; i++)
        want_leaked += i % 3 == 0 || (i % 3 == 1 && i > 1);
    CHECK(a.counts[LW_LEAKED] == want_leaked, "10k: %zu leaked, wanted %zu", a.counts[LW_LEAKED], want_leaked);
    CHECK(a.verdicts[2].verdict == LW_WAITING, "pool worker %s", lw_verdict_name(a.verdicts[2].verdict));
    lw_analysis_free(&a);
    free(t);
    free(ch);
}

static void test_names(void)
{
    CHECK(strcmp(lw_wait_kind_name(LW_WAIT_RWLOCK_WRITE), "rwlock-write") == 0, "rwlock-write name");
    CHECK(strcmp(lw_wait_kind_name(LW_WAIT_SYSCALL), "syscall") == 0, "syscall name");
    CHECK(strcmp(lw_wait_kind_name((enum lw_wait_kind)99), "unknown") == 0, "out of range kind");
    CHECK(strcmp(lw_verdict_name(LW_DEADLOCKED), "deadlocked") == 0, "deadlocked name");
    CHECK(lw_syscall_name(202) && strcmp(lw_syscall_name(202), "futex") == 0, "futex syscall name");
    CHECK(lw_syscall_name(100000) == NULL, "unknown syscall");
}

int main(void)
{
    test_running_and_waiting();
    test_join_and_unknown_owner();
    test_proc_only_wait();
    test_empty_snapshot();
    test_two_thread_deadlock();
    test_three_thread_cycle_with_rwlock_and_chain();
    test_self_deadlock();
    test_owner_exited();
    test_owner_edges_that_prove_nothing();
    test_whole_process_asleep();
    test_asleep_but_someone_can_wake();
    test_asleep_but_for_a_handler();
    test_channel_all_users_gone();
    test_channel_live_counterparts();
    test_channel_no_proof();
    test_channel_poll_and_chain();
    test_channel_suspect();
    test_ten_thousand();
    test_names();
    return checks_result("analysis");
}
