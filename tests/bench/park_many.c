/*
 * park_many.c — COUNT threads parked for good, for scripts/bench-compare's
 * "parked threads" section: how long `leakwatch threads PID` (text and
 * --json) takes on a process this big, and how much memory the preload adds
 * to it (its RSS, bare and preloaded).
 *
 *   park_many COUNT [heap]
 *
 * Half the threads wait on one semaphore, the other half on one condition
 * variable (both global, so every wait stays reachable: a healthy program,
 * all `waiting`). With "heap" the two live in a block of the heap that a
 * global points to: still reachable, but only a scan of the heap can tell
 * (scripts/bench-compare's attach section times the freeze both ways). Thread stacks are 64 KiB so that 10,000 threads fit
 * without raising any limit. Prints "READY pid=N threads=COUNT" once every
 * condvar waiter is inside its wait and every semaphore waiter has started,
 * then sleeps until killed. Errors go to stderr with exit 1; usage errors
 * exit 2.
 */
#include "bench.h"

#include <semaphore.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)

struct objects {
    sem_t never_posted;
    pthread_cond_t never_signalled;
};
static struct objects globals = { .never_signalled = PTHREAD_COND_INITIALIZER };
static struct objects *objects = &globals;   /* or a heap block ("heap") */
static sem_t started;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long in_cond_wait;

static void *wait_on_semaphore(void *arg)
{
    sem_post(&started);
    while (sem_wait(&objects->never_posted) == 0 || errno == EINTR)
        ;
    bench_fail("sem_wait", errno);
    return arg;
}

/* Counted under the lock, which pthread_cond_wait releases only once the
 * thread is a waiter: seeing the count under the lock proves it waits. */
static void *wait_on_condvar(void *arg)
{
    pthread_mutex_lock(&lock);
    in_cond_wait++;
    for (;;)
        pthread_cond_wait(&objects->never_signalled, &lock);
    return arg;
}

static long count_in_cond_wait(void)
{
    pthread_mutex_lock(&lock);
    long n = in_cond_wait;
    pthread_mutex_unlock(&lock);
    return n;
}

int main(int argc, char **argv)
{
    bool heap = argc == 3 && strcmp(argv[2], "heap") == 0;
    long count = bench_iterations(heap ? 2 : argc, argv);
    long on_condvar = count / 2;
    pthread_attr_t attr;
    if (heap) {
        objects = calloc(1, sizeof *objects);
        if (!objects)
            bench_fail("calloc", ENOMEM);
        pthread_cond_init(&objects->never_signalled, NULL);
    }
    if (sem_init(&objects->never_posted, 0, 0) != 0 || sem_init(&started, 0, 0) != 0)
        bench_fail("sem_init", errno);
    bench_check(pthread_attr_init(&attr), "pthread_attr_init");
    bench_check(pthread_attr_setstacksize(&attr, STACK_SIZE), "pthread_attr_setstacksize");
    bench_check(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED), "pthread_attr_setdetachstate");
    for (long i = 0; i < count; i++) {
        pthread_t th;
        bench_check(pthread_create(&th, &attr, i < on_condvar ? wait_on_condvar : wait_on_semaphore, NULL),
                    "pthread_create");
    }
    for (long i = on_condvar; i < count; i++)
        while (sem_wait(&started) != 0)
            if (errno != EINTR)
                bench_fail("sem_wait", errno);
    while (count_in_cond_wait() < on_condvar)
        usleep(1000);
    printf("READY pid=%d threads=%ld\n", (int)getpid(), count);
    fflush(stdout);
    for (;;)
        pause();
}
