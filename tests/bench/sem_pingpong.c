/*
 * sem_pingpong.c — two threads, two semaphores: main posts the partner's and
 * waits on its own, the partner does the opposite. One operation = one round
 * trip (two posts, two waits that park). Target ≤ 1.10× bare.
 */
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>

static sem_t to_main, to_partner;
static long rounds; /* warm-up + measured round trips */

static void *partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        while (sem_wait(&to_partner) != 0)
            if (errno != EINTR)
                bench_fail("sem_wait", errno);
        sem_post(&to_main);
    }
    return NULL;
}

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        sem_post(&to_partner);
        while (sem_wait(&to_main) != 0)
            if (errno != EINTR)
                bench_fail("sem_wait", errno);
    }
}

int main(int argc, char **argv)
{
    long n = bench_iterations(argc, argv);
    long warm = BENCH_WARMUP(n);
    pthread_t th;
    if (sem_init(&to_main, 0, 0) != 0 || sem_init(&to_partner, 0, 0) != 0)
        bench_fail("sem_init", errno);
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
