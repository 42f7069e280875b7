/*
 * early_lib.c — a shared library whose constructor uses hooked calls before
 * leakwatch's own constructor may have run: a contended mutex, a condvar
 * wait with a timeout, a semaphore, a thread created and joined, a sleep.
 * Under the preload every call must behave exactly as without it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static sem_t sem;
int early_result = -1;

static void *early_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);        /* contended: the constructor holds it */
    pthread_mutex_unlock(&lock);
    sem_post(&sem);
    return (void *)7;
}

__attribute__((constructor)) static void early_constructor(void)
{
    sem_init(&sem, 0, 0);
    pthread_mutex_lock(&lock);
    pthread_t th;
    if (pthread_create(&th, NULL, early_thread, NULL) != 0)
        return;
    usleep(20000);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 10 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(&cond, &lock, &deadline);
    pthread_mutex_unlock(&lock);
    sem_wait(&sem);
    void *ret = NULL;
    pthread_join(th, &ret);
    early_result = (rc == ETIMEDOUT && ret == (void *)7) ? 1 : 0;
}
