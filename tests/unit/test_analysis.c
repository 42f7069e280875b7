/*
 * test_analysis.c — the analysis on hand-built snapshots: no threads, no
 * clocks, no /proc. Each case builds a snapshot, runs lw_analyze and checks
 * verdicts, counts and reasons.
 */
#include "snapshot.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            failures++;                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
        }                                                             \
    } while (0)

static struct lw_snap_thread thread(int32_t tid, const char *name)
{
    struct lw_snap_thread t;
    memset(&t, 0, sizeof t);
    t.tid = tid;
    snprintf(t.name, sizeof t.name, "%s", name);
    t.wait.fd = -1;
    t.wait.syscall_nr = -1;
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
    test_names();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("analysis: all checks passed\n");
    return 0;
}
