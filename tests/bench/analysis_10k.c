/*
 * analysis_10k.c — the analysis alone (no process, no /proc) on a snapshot
 * of 10,001 threads: 10,000 parked in a mix of the shapes it must judge
 * (leaked fd-channel readers, mutex waiters chained behind them, idle pool
 * workers on a condvar) and a running main thread. One operation = one
 * lw_analyze of the whole snapshot; scripts/bench reports it in ms, bare
 * only (target: well under 100 ms).
 */
#include "bench.h"
#include "core/snapshot.h"

enum { N = 10001 };

static struct lw_snap_thread threads[N];
static struct lw_snap_channel channels[N];
static struct lw_snap_exited gone = { .tid = 2, .name = "setup", .exited_ago = 9 };
static struct lw_snapshot snap;

static void park(struct lw_snap_thread *t, enum lw_wait_kind kind, double seconds)
{
    t->waiting = true;
    t->wait.kind = kind;
    t->wait.seconds = seconds;
    t->wait.fd = -1;
    t->wait.channel = -1;
}

static void build(void)
{
    threads[0] = (struct lw_snap_thread){ .tid = 1, .name = "main", .age = 100, .is_main = true };
    threads[0].wait.channel = -1;
    for (int i = 1; i < N; i++) {
        struct lw_snap_thread *t = &threads[i];
        *t = (struct lw_snap_thread){ .tid = 100 + i, .name = "worker", .age = 50, .parent = 1 };
        if (i % 3 == 0) {
            struct lw_snap_channel *c = &channels[i];
            *c = (struct lw_snap_channel){ .type = LW_CHAN_PIPE, .inode = (uint64_t)i, .tracked = true,
                                           .creator = 2, .creator_exited = true, .age = 10, .nother_fds = 1 };
            snprintf(c->name, sizeof c->name, "pipe:[%d]", i);
            c->other_fds[0] = 8;
            park(t, LW_WAIT_FD_READ, 6);
            t->wait.fd = 7;
            t->wait.direction = LW_DIR_READ;
            t->wait.channel = i;
        } else if (i % 3 == 1) {
            park(t, LW_WAIT_MUTEX, 6);
            t->wait.object = 0x1000 + (uint64_t)i;
            t->wait.owner = 100 + i - 1;
        } else {
            park(t, LW_WAIT_COND, 6);
            t->wait.object = 0x99;
        }
    }
    snap = (struct lw_snapshot){ .threads = threads, .nthreads = N, .channels = channels, .nchannels = N,
                                 .exited_threads = &gone, .nexited = 1, .settle_ms = 1000, .stall_ms = 30000 };
}

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        struct lw_analysis a;
        if (lw_analyze(&snap, &a) != 0)
            bench_fail("lw_analyze", ENOMEM);
        lw_analysis_free(&a);
    }
}

int main(int argc, char **argv)
{
    build();
    return bench_main(argc, argv, loop, NULL, NULL);
}
