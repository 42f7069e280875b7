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
    park(&t[1], LW_WAIT_MUTEX, 0x2000, 1);
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
    test_names();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("analysis: all checks passed\n");
    return 0;
}
