/*
 * rwlock_uncontended.c — one thread, pthread_rwlock_rdlock +
 * pthread_rwlock_unlock on an rwlock nobody else touches. One operation =
 * one rdlock+unlock pair. For information (no target).
 */
#include "bench.h"

#include <pthread.h>

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_rwlock_rdlock(&rw);
        pthread_rwlock_unlock(&rw);
    }
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    loop(BENCH_WARMUP(n));
    uint64_t t0 = bench_now_ns();
    loop(n);
    uint64_t t1 = bench_now_ns();
    bench_report(t0, t1, n);
    return 0;
}
