/*
 * pipe_pingpong.c — two threads, two pipes, a 1-byte message each way with
 * blocking read() and write(): main writes to the partner's pipe and reads
 * its own, the partner echoes. One operation = one round trip (two writes,
 * two reads, most of which park). Target ≤ 1.10× bare.
 */
#include "bench.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static int to_main[2], to_partner[2];
static long rounds; /* warm-up + measured round trips */

static void *partner(void *arg)
{
    char c;
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        if (read(to_partner[0], &c, 1) != 1)
            bench_fail("partner read", errno);
        if (write(to_main[1], &c, 1) != 1)
            bench_fail("partner write", errno);
    }
    return NULL;
}

static void loop(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(to_partner[1], &c, 1) != 1)
            bench_fail("write", errno);
        if (read(to_main[0], &c, 1) != 1)
            bench_fail("read", errno);
    }
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    long warm = BENCH_WARMUP(n);
    pthread_t th;
    if (pipe2(to_main, O_CLOEXEC) != 0 || pipe2(to_partner, O_CLOEXEC) != 0)
        bench_fail("pipe2", errno);
    rounds = warm + n;
    bench_check(pthread_create(&th, NULL, partner, NULL), "pthread_create");
    loop(warm);
    uint64_t t0 = bench_now_ns();
    loop(n);
    uint64_t t1 = bench_now_ns();
    bench_check(pthread_join(th, NULL), "pthread_join");
    bench_report(t0, t1, n);
    return 0;
}
