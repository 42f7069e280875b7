/*
 * verify_none.c — leakwatch.h in a plain C test runner: each test runs
 * between leakwatch_mark() and leakwatch_verify_none(), and a test that
 * leaves a thread behind fails, by name, with the report of that thread.
 *
 *     cc -o verify_none verify_none.c $(pkg-config --cflags leakwatch) -pthread
 *     LD_PRELOAD=$(pkg-config --variable=preload leakwatch) ./verify_none
 *
 * Three tests: one joins its worker, one starts a detached worker that
 * ends a moment later (verify_none waits for it), and one hands a worker a
 * reply slot on the heap and walks away without ever signalling it: that
 * worker waits for ever, and that test fails. Exit status 1 when a test
 * failed, 0 otherwise (also without the preload, which it then says).
 */
#include <leakwatch.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define VERIFY_TIMEOUT_MS 500

static void *short_task(void *arg)
{
    struct timespec pause = { 0, 50 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    return arg;
}

static void test_joins_its_worker(void)
{
    pthread_t worker;
    pthread_create(&worker, NULL, short_task, NULL);
    pthread_join(worker, NULL);
}

static void test_detached_worker_ends_soon(void)
{
    pthread_t worker;
    pthread_create(&worker, NULL, short_task, NULL);
    pthread_detach(worker);
}

/* A worker waiting for a "go" that its caller never sends. */
struct slot {
    pthread_mutex_t lock;
    pthread_cond_t go;
    int ready;
};

static void *wait_for_go(void *arg)
{
    struct slot *s = arg;
    pthread_setname_np(pthread_self(), "leaky-worker");
    pthread_mutex_lock(&s->lock);
    while (!s->ready)
        pthread_cond_wait(&s->go, &s->lock);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void test_forgets_its_worker(void)
{
    struct slot *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->go, NULL);
    pthread_t worker;
    pthread_create(&worker, NULL, wait_for_go, s);
    pthread_detach(worker);   /* and return without ever setting ready */
}

static const struct {
    const char *name;
    void (*run)(void);
} tests[] = {
    { "joins_its_worker", test_joins_its_worker },
    { "forgets_its_worker", test_forgets_its_worker },
    { "detached_worker_ends_soon", test_detached_worker_ends_soon },
};

int main(void)
{
    int failed = 0, n = (int)(sizeof tests / sizeof tests[0]);
    for (int i = 0; i < n; i++) {
        leakwatch_mark();
        tests[i].run();
        char *report = leakwatch_verify_none(VERIFY_TIMEOUT_MS);
        if (report) {
            printf("FAIL %s: %s", tests[i].name, report);
            free(report);
            failed++;
        } else {
            printf("ok   %s\n", tests[i].name);
        }
        fflush(stdout);
    }
    printf("verify_none: %d of %d tests failed\n", failed, n);
    return failed ? 1 : 0;
}
