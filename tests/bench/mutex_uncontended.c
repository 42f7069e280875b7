/*
 * mutex_uncontended.c — one thread, pthread_mutex_lock + pthread_mutex_unlock
 * on a default mutex nobody else touches. One operation = one lock+unlock
 * pair. Measures the hooks' uncontended fast path (target ≤ 1.15× bare).
 */
#include "bench.h"

#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&lock);
        pthread_mutex_unlock(&lock);
    }
}

int main(int argc, char **argv)
{
    return bench_main(argc, argv, loop, NULL, NULL);
}
