/*
 * sem_uncontended.c — one thread, sem_post + sem_wait on a private semaphore,
 * so the wait never blocks. One operation = one post+wait pair. For
 * information (no target).
 */
#include "bench.h"

#include <semaphore.h>

static sem_t sem;

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        sem_post(&sem);
        sem_wait(&sem);
    }
}

int main(int argc, char **argv)
{
    if (sem_init(&sem, 0, 0) != 0)
        bench_fail("sem_init", errno);
    return bench_main(argc, argv, loop, NULL, NULL);
}
