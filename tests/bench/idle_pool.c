/*
 * idle_pool.c — what the background prover costs a program that gives it
 * nothing to prove (scripts/bench, section "prover"): an idle pool of
 * workers, permanently parked on the pool's condvar, the pool held by a
 * global (so every wait stays reachable), beside a big live heap.
 *
 *   idle_pool MIB WORKERS [LEAK_AFTER_MS]
 *
 * Allocates MIB MiB of 64-byte chunks reachable from a global array, starts
 * WORKERS threads that wait on the pool's condvar for a job that never
 * comes, and prints "READY pid=N" once every one of them is inside its
 * wait. With LEAK_AFTER_MS, a request thread then (after that many ms)
 * starts one worker on a condvar in a heap block it drops as it exits (a
 * leak that appears while the program runs) and prints "LEAK tid=N" when
 * that worker waits. Sleeps until killed. Errors go to stderr with exit 1;
 * usage errors exit 2.
 */
#include "bench.h"

#include <unistd.h>

#define CHUNK_REQUEST 48   /* 64-byte chunks */

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t job_ready;
    long waiting;
    int jobs;
};

static struct pool *the_pool;   /* the global that keeps the pool reachable */
static uint64_t **blocks;

static void *pool_worker(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->lock);
    p->waiting++;
    while (p->jobs == 0)
        pthread_cond_wait(&p->job_ready, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct handoff {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int delivered;
    pid_t tid;
};

static void *abandoned_worker(void *arg)
{
    struct handoff *h = arg;
    pthread_mutex_lock(&h->lock);
    h->tid = gettid();
    while (!h->delivered)
        pthread_cond_wait(&h->changed, &h->lock);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* The request: start the worker, wait until it waits, give up, drop it. */
static void *request(void *arg)
{
    long after_ms = (long)(intptr_t)arg;
    struct timespec t = { after_ms / 1000, (after_ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
    struct handoff *h = calloc(1, sizeof *h);
    if (!h)
        bench_fail("calloc", ENOMEM);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    pthread_t th;
    bench_check(pthread_create(&th, NULL, abandoned_worker, h), "pthread_create");
    pthread_detach(th);
    for (;;) {
        pthread_mutex_lock(&h->lock);
        pid_t tid = h->tid;
        pthread_mutex_unlock(&h->lock);
        if (tid) {
            printf("LEAK tid=%d\n", (int)tid);
            fflush(stdout);
            return NULL;   /* the handoff is forgotten with this thread's stack */
        }
        usleep(1000);
    }
}

static long number(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    return *end || n < 0 ? -1 : n;
}

int main(int argc, char **argv)
{
    long mib = argc >= 3 ? number(argv[1]) : -1, workers = argc >= 3 ? number(argv[2]) : -1;
    long leak_after = argc == 4 ? number(argv[3]) : 0;
    if (argc < 3 || argc > 4 || mib < 0 || workers < 1 || leak_after < 0) {
        fprintf(stderr, "usage: idle_pool MIB WORKERS [LEAK_AFTER_MS]\n");
        return 2;
    }
    size_t nblocks = (size_t)mib * (1u << 20) / 64;
    blocks = malloc((nblocks ? nblocks : 1) * sizeof *blocks);
    if (!blocks)
        bench_fail("malloc", ENOMEM);
    for (size_t i = 0; i < nblocks; i++) {
        blocks[i] = malloc(CHUNK_REQUEST);
        if (!blocks[i])
            bench_fail("malloc", ENOMEM);
        blocks[i][0] = i * 0x9e3779b97f4a7c15ull;   /* data, not pointers */
    }
    the_pool = calloc(1, sizeof *the_pool);
    if (!the_pool)
        bench_fail("calloc", ENOMEM);
    pthread_mutex_init(&the_pool->lock, NULL);
    pthread_cond_init(&the_pool->job_ready, NULL);
    for (long i = 0; i < workers; i++) {
        pthread_t th;
        bench_check(pthread_create(&th, NULL, pool_worker, the_pool), "pthread_create");
        pthread_detach(th);
    }
    for (;;) {
        pthread_mutex_lock(&the_pool->lock);
        long n = the_pool->waiting;
        pthread_mutex_unlock(&the_pool->lock);
        if (n == workers)
            break;
        usleep(1000);
    }
    printf("READY pid=%d\n", (int)getpid());
    fflush(stdout);
    if (leak_after) {
        pthread_t th;
        bench_check(pthread_create(&th, NULL, request, (void *)(intptr_t)leak_after), "pthread_create");
        pthread_detach(th);
    }
    for (;;)
        pause();
}
