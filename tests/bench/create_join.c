/*
 * create_join.c — pthread_create of a thread that returns at once, then
 * pthread_join of it. One operation = one create+join (target ≤ 1.25× bare).
 */
#include "bench.h"

#include <pthread.h>

static void *trivial(void *arg)
{
    return arg;
}

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        pthread_t th;
        bench_check(pthread_create(&th, NULL, trivial, NULL), "pthread_create");
        bench_check(pthread_join(th, NULL), "pthread_join");
    }
}

int main(int argc, char **argv)
{
    return bench_main(argc, argv, loop, NULL, NULL);
}
