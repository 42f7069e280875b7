/*
 * test_analysis.c — the analysis on hand-built snapshots: no threads, no
 * clocks, no /proc. Each case builds a snapshot, runs lw_analyze and checks
 * verdicts, counts and reasons.
 */
#include "core/snapshot.h"
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

/* A pipe made 50 s ago by tid 2 (setup, exited 45 s ago), whose write end
 * (fd 8) is still open here and was last written 38 s ago by tid 4
 * (writer, exited 38 s ago). */
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
    c.age = 50;
    c.other_fds[0] = 8;
    c.nother_fds = 1;
    c.peers[0].tid = 4;
    c.peers[0].exited = true;
    c.peers[0].idle = 38;
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

/* main (1) runs; reader (3), born to setup after the pipe, has read
 * channel 0 for 40 s; the stall threshold is 30 s. */
static void chan_case_init(struct chan_case *k)
{
    memset(k, 0, sizeof *k);
    k->t[0] = thread(1, "main");
    k->t[0].age = 100;
    k->t[1] = thread(3, "reader");
    k->t[1].age = 45;
    k->t[1].parent = 2;
    park(&k->t[1], LW_WAIT_FD_READ, 0, 40);
    k->t[1].wait.fd = 7;
    k->t[1].wait.direction = LW_DIR_READ;
    k->t[1].wait.channel = 0;
    k->n = 2;
    k->ch[0] = pipe_channel();
    k->nch = 1;
    k->gone[0] = (struct lw_snap_exited){ .tid = 4, .name = "writer", .exited_ago = 38 };
    k->gone[1] = (struct lw_snap_exited){ .tid = 2, .name = "setup", .exited_ago = 45 };
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

/* Nothing else can run: main joins the reader. The whole process is
 * asleep, and the reason says what the channel's history knows. */
static void test_channel_asleep(void)
{
    struct chan_case k;
    chan_case_init(&k);
    own(&k.t[0], LW_WAIT_JOIN, 0x7000, 3);
    struct lw_analysis a;
    chan_analyze(&k, &a);
    const struct lw_thread_verdict *v = &a.verdicts[1];
    CHECK(a.quiescent && v->verdict == LW_LEAKED && a.verdicts[0].verdict == LW_LEAKED, "asleep: quiescent %d, %s %s",
          a.quiescent, lw_verdict_name(a.verdicts[0].verdict), lw_verdict_name(v->verdict));
    CHECK(v->wait_class == LW_CLASS_IN_PROCESS, "class %d", v->wait_class);
    CHECK(strstr(v->reason, "reads fd 7 (pipe:[4242]), and no thread that could write to it can run again: all "
                            "threads are asleep; its creator, tid 2 (setup), exited 45.0s ago; tid 4 (writer), which "
                            "wrote to it, exited 38.0s ago; fd 8, the other end, stays open here, so it will never see "
                            "end-of-file either"), "reason: %s", v->reason);
    CHECK(v->cp_kind == LW_CP_CHANNEL && v->cp_channel == 0 && v->nwakers == 2, "counterpart %d/%d/%zu",
          v->cp_kind, v->cp_channel, v->nwakers);
    CHECK(v->wakers[0].tid == 2 && v->wakers[0].role == LW_ROLE_CREATOR && v->wakers[0].exited, "creator waker");
    CHECK(v->wakers[1].tid == 4 && v->wakers[1].role == LW_ROLE_PEER && v->wakers[1].exited_ago == 38, "peer waker");
    lw_analysis_free(&a);

    /* A proof needs no history: a channel made where no hook saw it, its
     * users unknown, is just as dead when nothing can run. */
    k.ch[0].tracked = false;
    k.ch[0].creator = 0;
    k.ch[0].npeers = 0;
    char why[800];
    CHECK(reader_verdict(&k, why, sizeof why) == LW_LEAKED && strstr(why, "all threads are asleep; fd 8, the other end"),
          "untracked, asleep: %s", why);
    /* The creator is the waiter, alive in the same sleep: named as stuck. */
    chan_case_init(&k);
    own(&k.t[0], LW_WAIT_JOIN, 0x7000, 3);
    k.ch[0].creator = 1;
    k.ch[0].creator_exited = false;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_LEAKED && strstr(why, "its creator, tid 1 (main), is leaked"),
          "creator asleep: %s", why);
}

/* While any other thread can run, no channel wait is proven: it could use
 * the fd, whether or not it ever has. */
static void test_channel_never_proven_while_a_thread_runs(void)
{
    struct chan_case k;
    char why[800];
    chan_case_init(&k);
    k.stall_ms = 60000;   /* below the stall threshold: not even suspect */
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING && !strcmp(why, "reads fd 7 (pipe:[4242])"),
          "main running: %s", why);
    /* main sleeps with a deadline: live. */
    park(&k.t[0], LW_WAIT_SLEEP, 0, 50);
    k.t[0].wait.timed = true;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "main in a timed sleep: %s", why);
    /* main waits on a condvar that a live thread may signal: it can run. */
    park(&k.t[0], LW_WAIT_COND, 0x10, 50);
    k.t[2] = thread(5, "timer");
    park(&k.t[2], LW_WAIT_SLEEP, 0, 1);
    k.t[2].wait.timed = true;
    k.n = 3;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "main on a condvar, a timer alive: %s", why);
    /* A thread born before the channel, that never touched it: same. */
    chan_case_init(&k);
    k.stall_ms = 60000;
    k.t[2] = thread(5, "old");
    k.t[2].age = 99;
    k.n = 3;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "born-before thread: %s", why);
    /* A wait on a mutex held by the reader: it may still be released. */
    chan_case_init(&k);
    k.t[2] = thread(7, "locker");
    park(&k.t[2], LW_WAIT_MUTEX, 0x500, 4);
    k.t[2].wait.owner = 3;
    k.n = 3;
    struct lw_analysis a;
    chan_analyze(&k, &a);
    CHECK(a.verdicts[2].verdict == LW_WAITING, "locker behind the reader: %s", a.verdicts[2].reason);
    lw_analysis_free(&a);
}

static void test_channel_no_proof(void)
{
    /* The process asleep but for the other end held elsewhere, a handler,
     * a deadline or a young wait: never leaked. */
    struct chan_case k;
    char why[800];
    chan_case_init(&k);
    own(&k.t[0], LW_WAIT_JOIN, 0x7000, 3);
    k.ch[0].nprocs = 1;
    k.ch[0].procs[0].pid = 999;
    snprintf(k.ch[0].procs[0].command, sizeof k.ch[0].procs[0].command, "child");
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING && strstr(why, "pid 999 (child)"),
          "other process: %s", why);
    k.ch[0].nprocs = 0;
    k.ch[0].procs_unknown = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "unknown processes");
    k.ch[0].procs_unknown = false;
    k.ch[0].exported = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "exported");
    k.ch[0].exported = false;
    k.ch[0].type = LW_CHAN_FIFO;
    k.ch[0].named = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "named FIFO");
    k.ch[0].type = LW_CHAN_PIPE;
    k.ch[0].named = false;
    k.signals = 1ull << (10 - 1);   /* SIGUSR1 handler: the self-pipe trick */
    k.stall_ms = 60000;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "signal handler");
    k.signals = 0;
    k.t[1].wait.timed = true;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "timed");
    k.t[1].wait.timed = false;
    k.t[1].wait.seconds = 0.5;
    CHECK(reader_verdict(&k, NULL, 0) == LW_WAITING, "not settled");
}

/* Past the stall threshold, with every counterpart gone, history makes it
 * a suspect, never a proof. */
static void test_channel_suspect(void)
{
    struct chan_case k;
    char why[800];
    chan_case_init(&k);
    struct lw_analysis a;
    chan_analyze(&k, &a);
    const struct lw_thread_verdict *v = &a.verdicts[1];
    CHECK(v->verdict == LW_SUSPECT && !a.quiescent, "reader is %s: %s", lw_verdict_name(v->verdict), v->reason);
    CHECK(!strcmp(v->reason, "reads fd 7 (pipe:[4242]), parked for 40.0s; its creator, tid 2 (setup), exited 45.0s "
                             "ago; tid 4 (writer), which wrote to it, exited 38.0s ago; no thread has written to it "
                             "for 38.0s; not a proof: a live thread holding fd 8, the other end, could still write to "
                             "it"), "reason: %s", v->reason);
    CHECK(v->cp_kind == LW_CP_CHANNEL && v->nwakers == 2 && v->wakers[1].idle == 38, "counterpart %d/%zu",
          v->cp_kind, v->nwakers);
    CHECK(a.verdicts[0].verdict == LW_RUNNING, "main %s", lw_verdict_name(a.verdicts[0].verdict));
    lw_analysis_free(&a);

    /* A writer on a full pipe whose reader is deadlocked: stuck counts. */
    chan_case_init(&k);
    k.ch[0].peers[0].tid = 5;
    k.ch[0].peers[0].exited = false;
    k.t[2] = thread(5, "a");
    k.t[3] = thread(6, "b");
    own(&k.t[2], LW_WAIT_MUTEX, 0x100, 6);
    own(&k.t[3], LW_WAIT_MUTEX, 0x200, 5);
    k.n = 4;
    park(&k.t[1], LW_WAIT_FD_WRITE, 0, 40);
    k.t[1].wait.fd = 8;
    k.t[1].wait.direction = LW_DIR_WRITE;
    k.t[1].wait.channel = 0;
    k.ch[0].other_fds[0] = 7;
    chan_analyze(&k, &a);
    v = &a.verdicts[1];
    CHECK(v->verdict == LW_SUSPECT && strstr(v->reason, "writes fd 8 (pipe:[4242]), parked for 40.0s; its creator, "
                                                        "tid 2 (setup), exited 45.0s ago; tid 5 (a), which read from it, "
                                                        "is deadlocked; no thread has read from it for 38.0s; not a proof: "
                                                        "a live thread holding fd 7, the other end, could still read from it"),
          "deadlocked reader: %s %s", lw_verdict_name(v->verdict), v->reason);
    CHECK(v->nwakers == 2 && v->wakers[1].verdict == LW_DEADLOCKED && !v->wakers[1].exited, "waker verdict %d",
          v->wakers[1].verdict);
    lw_analysis_free(&a);
    /* ...but not one merely parked, however long: it may still act. */
    park(&k.t[2], LW_WAIT_COND, 0x100, 100);
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "reader parked on a condvar: %s", why);

    /* A signal handler may write a self-pipe, not read one: a writer is
     * still suspect, a reader is not. */
    chan_case_init(&k);
    k.signals = 1ull << (15 - 1);
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "reader, with a SIGTERM handler: %s", why);
}

/* What `suspect` must never say: that is every idle event loop. */
static void test_channel_not_suspect(void)
{
    struct chan_case k;
    char why[800];
    /* Nobody but the waiter ever touched it: a wakeup fd. */
    chan_case_init(&k);
    k.ch[0].npeers = 0;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "never used: %s", why);
    k.ch[0].npeers = 1;
    k.ch[0].peers[0].tid = 3;   /* only the waiter itself */
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "used by the waiter alone: %s", why);
    /* A counterpart alive, even idle for long. */
    chan_case_init(&k);
    k.ch[0].creator = 1;
    k.ch[0].creator_exited = false;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "creator alive: %s", why);
    chan_case_init(&k);
    k.ch[0].peers[0].tid = 1;
    k.ch[0].peers[0].exited = false;
    k.ch[0].peers[0].idle = 90;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "writer alive and idle: %s", why);
    /* The other end used within the threshold, or a wait under it. */
    chan_case_init(&k);
    k.ch[0].peers[0].idle = 10;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "written 10 s ago: %s", why);
    chan_case_init(&k);
    k.t[1].wait.seconds = 20;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "under the stall threshold: %s", why);
    /* A history that cannot be believed. */
    static const char *const what[] = { "untracked", "stdio", "users overflow", "an untracked copy", "no other end",
                                        "creator unknown", "FIFO" };
    for (int m = 0; m < 7; m++) {
        chan_case_init(&k);
        k.ch[0].tracked = m != 0;
        k.ch[0].stdio = m == 1;
        k.ch[0].users_overflow = m == 2;
        k.ch[0].other_fd_untracked = m == 3;
        k.ch[0].nother_fds = m == 4 ? 0 : 1;
        k.ch[0].creator = m == 5 ? 0 : 2;
        k.ch[0].type = m == 6 ? LW_CHAN_FIFO : LW_CHAN_PIPE;
        CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "%s: %s", what[m], why);
    }
}

static void test_channel_poll(void)
{
    struct chan_case k;
    chan_case_init(&k);
    k.ch[1] = pipe_channel();
    k.ch[1].inode = 4343;
    snprintf(k.ch[1].name, sizeof k.ch[1].name, "pipe:[4343]");
    k.ch[1].other_fds[0] = 10;
    k.nch = 2;
    k.pfd[0] = (struct lw_snap_pollfd){ 7, LW_DIR_READ, 0 };
    k.pfd[1] = (struct lw_snap_pollfd){ 9, LW_DIR_READ, 1 };
    k.npfd = 2;
    park(&k.t[1], LW_WAIT_POLL, 0, 40);
    k.t[1].wait.fd = -1;
    k.t[1].wait.channel = -1;
    k.t[1].wait.pollfd_first = 0;
    k.t[1].wait.npollfds = 2;
    char why[800];
    CHECK(reader_verdict(&k, why, sizeof why) == LW_SUSPECT && strstr(why, "polls 2 fds, parked for 40.0s") &&
          strstr(why, "a live thread holding fd 8 or fd 10 could still use it"), "poll, all gone: %s", why);
    /* One fd of the set is a wakeup fd nobody used: an event loop. */
    k.ch[1].npeers = 0;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "poll with a wakeup fd: %s", why);
    k.ch[1].npeers = 1;
    k.t[1].wait.pollfds_truncated = true;
    CHECK(reader_verdict(&k, why, sizeof why) == LW_WAITING, "poll set not fully known: %s", why);
    /* Asleep: leaked, the reason names the poll. */
    k.t[1].wait.pollfds_truncated = false;
    own(&k.t[0], LW_WAIT_JOIN, 0x7000, 3);
    CHECK(reader_verdict(&k, why, sizeof why) == LW_LEAKED && strstr(why, "polls 2 fds, and no thread that could use "
                                                                         "it can run again: all threads are asleep"),
          "poll, asleep: %s", why);
}

/* ---- rule 3 (as the analysis takes it) and what can run again ---- */

static void test_confirmed_unreachable_and_its_chain(void)
{
    struct lw_snap_thread t[3] = { thread(1, "main"), thread(2, "worker"), thread(3, "locker") };
    park(&t[1], LW_WAIT_COND, 0x5000, 9);
    t[1].wait.reach = LW_REACH_CONFIRMED;
    t[1].wait.reach_block = 0x4ff0;
    t[1].wait.reach_block_size = 96;
    t[1].wait.unreachable_for = 1.5;
    own(&t[2], LW_WAIT_MUTEX, 0x6000, 2);   /* the worker holds the mutex the locker wants */
    struct lw_analysis a;
    analyze(t, 3, &a);
    CHECK(a.verdicts[1].verdict == LW_LEAKED && a.verdicts[1].cp_kind == LW_CP_UNREACHABLE &&
          strstr(a.verdicts[1].reason, "heap block 0x4ff0 (96 bytes)"), "worker: %s %s",
          lw_verdict_name(a.verdicts[1].verdict), a.verdicts[1].reason);
    CHECK(a.verdicts[2].verdict == LW_LEAKED && strstr(a.verdicts[2].reason, "held by tid 2 (worker), which is leaked"),
          "locker: %s", a.verdicts[2].reason);
    CHECK(a.verdicts[0].verdict == LW_RUNNING && !a.quiescent, "main");
    lw_analysis_free(&a);
    t[1].wait.timed = true;   /* a deadline ends it whatever the scan said */
    analyze(t, 3, &a);
    CHECK(a.verdicts[1].verdict == LW_WAITING && a.verdicts[2].verdict == LW_WAITING, "timed: %s / %s",
          lw_verdict_name(a.verdicts[1].verdict), lw_verdict_name(a.verdicts[2].verdict));
    lw_analysis_free(&a);
}

/* A SIGTERM handler keeps a semaphore waiter live, but its semaphore is
 * unreachable (rule 3): it can never run, and neither can the condvar
 * waiter whose only possible waker it was. */
static void test_nothing_else_can_run(void)
{
    struct lw_snap_thread t[2] = { thread(1, "main"), thread(2, "waiter") };
    park(&t[0], LW_WAIT_SEM, 0x100, 9);
    t[0].wait.reach = LW_REACH_CONFIRMED;
    park(&t[1], LW_WAIT_COND, 0x200, 9);
    struct lw_snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.threads = t;
    snap.nthreads = 2;
    snap.settle_ms = 1000;
    snap.stall_ms = 30000;
    snap.caught_signals = 1ull << (15 - 1);
    struct lw_analysis a;
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(!a.quiescent && a.verdicts[0].verdict == LW_LEAKED, "main: %s", a.verdicts[0].reason);
    CHECK(a.verdicts[1].verdict == LW_LEAKED &&
          strstr(a.verdicts[1].reason, "waits on condition variable 0x200, and no other thread can run again: every "
                                       "other thread is leaked or deadlocked (tid 1 (main) is leaked)"),
          "waiter: %s %s", lw_verdict_name(a.verdicts[1].verdict), a.verdicts[1].reason);
    lw_analysis_free(&a);
    t[0].wait.reach = LW_REACH_REACHABLE;   /* main's semaphore may be posted by its handler */
    CHECK(lw_analyze(&snap, &a) == 0, "analyze");
    CHECK(a.counts[LW_LEAKED] == 0, "reachable: %zu leaked", a.counts[LW_LEAKED]);
    lw_analysis_free(&a);
}

/* 10,000 threads: chains, channels and condvars, judged right (the time it
 * takes is measured by scripts/bench, not here). */
static void test_ten_thousand(void)
{
    enum { N = 10000 };
    struct lw_snap_thread *t = calloc(N, sizeof *t);
    struct lw_snap_channel *ch = calloc(N, sizeof *ch);
    struct lw_snap_exited gone = { .tid = 2, .name = "setup", .exited_ago = 45 };
    if (!t || !ch) {
        failures++;
        return;
    }
    t[0] = thread(1, "main");
    t[0].age = 100;
    for (int i = 1; i < N; i++) {
        t[i] = thread(100 + i, "w");
        t[i].age = 50;
        t[i].parent = 2;
        if (i % 3 == 0) {        /* a channel reader whose counterparts are gone */
            ch[i] = pipe_channel();
            ch[i].peers[0].tid = 2;
            park(&t[i], LW_WAIT_FD_READ, 0, 40);
            t[i].wait.fd = 7;
            t[i].wait.direction = LW_DIR_READ;
            t[i].wait.channel = i;
        } else if (i % 3 == 1) { /* waits for the mutex of the next one */
            park(&t[i], LW_WAIT_MUTEX, 0x1000 + (uint64_t)i, 40);
            t[i].wait.owner = 100 + i + 1;
        } else {                 /* a worker on a condvar nobody can reach */
            park(&t[i], LW_WAIT_COND, 0x99, 40);
            t[i].wait.reach = LW_REACH_CONFIRMED;
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
    size_t third = (N - 1) / 3;   /* readers: suspect; unreachable workers and their lockers: leaked */
    CHECK(a.counts[LW_SUSPECT] == third, "10k: %zu suspect, wanted %zu", a.counts[LW_SUSPECT], third);
    CHECK(a.counts[LW_LEAKED] == 2 * third, "10k: %zu leaked, wanted %zu", a.counts[LW_LEAKED], 2 * third);
    CHECK(a.verdicts[1].verdict == LW_LEAKED && strstr(a.verdicts[1].reason, "which is leaked"), "locker: %s",
          a.verdicts[1].reason);
    lw_analysis_free(&a);
    /* main asleep too (joining the first worker): nothing can run. */
    own(&t[0], LW_WAIT_JOIN, 0x7000, 101);
    CHECK(lw_analyze(&snap, &a) == 0, "analyze 10k asleep");
    CHECK(a.quiescent && a.counts[LW_LEAKED] == N, "10k asleep: %zu leaked", a.counts[LW_LEAKED]);
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
    test_channel_asleep();
    test_channel_never_proven_while_a_thread_runs();
    test_channel_no_proof();
    test_channel_suspect();
    test_channel_not_suspect();
    test_channel_poll();
    test_confirmed_unreachable_and_its_chain();
    test_nothing_else_can_run();
    test_ten_thousand();
    test_names();
    return checks_result("analysis");
}
