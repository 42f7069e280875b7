/*
 * mutex_contended.c — THREADS threads hammer one default mutex, each doing
 * its share of lock, increment a shared counter, unlock. One operation = one
 * lock+unlock pair by any thread; the time is the wall time of all of them
 * (thread start-up included: negligible next to the work). With more
 * threads than this project's 2 CPUs, lock holders get preempted and waiters
 * really park in the kernel, so this measures the hooks' contended path
 * (a park is recorded, with a stack), not just their fast path.
 */
#include "bench.h"

#include <pthread.h>

#define THREADS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start_line;
static long counter;

static void *hammer(void *arg)
{
    long share = *(const long *)arg;
    pthread_barrier_wait(&start_line);
    for (long i = 0; i < share; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* n lock+unlock pairs in all, split among THREADS threads that start
 * together; the counter proves none was lost. */
static void loop(long n)
{
    pthread_t th[THREADS];
    long share[THREADS];
    long before = counter;
    bench_check(pthread_barrier_init(&start_line, NULL, THREADS), "pthread_barrier_init");
    for (int t = 0; t < THREADS; t++) {
        share[t] = n / THREADS + (t < n % THREADS);
        bench_check(pthread_create(&th[t], NULL, hammer, &share[t]), "pthread_create");
    }
    for (int t = 0; t < THREADS; t++)
        bench_check(pthread_join(th[t], NULL), "pthread_join");
    bench_check(pthread_barrier_destroy(&start_line), "pthread_barrier_destroy");
    if (counter - before != n) {
        fprintf(stderr, "bench: %ld increments, %ld expected\n", counter - before, n);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    return bench_main(argc, argv, loop, NULL, NULL);
}
