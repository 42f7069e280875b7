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
    return bench_main(argc, argv, loop, NULL, NULL);
}
