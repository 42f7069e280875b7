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
    if (sem_init(&to_main, 0, 0) != 0 || sem_init(&to_partner, 0, 0) != 0)
        bench_fail("sem_init", errno);
    return bench_main(argc, argv, loop, partner, &rounds);
}
