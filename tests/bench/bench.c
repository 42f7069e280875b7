/*
 * bench.c — the workloads of scripts/bench, one per mode. Each times only
 * its measured loop with CLOCK_MONOTONIC and prints one line: the mean
 * nanoseconds per operation. Usage: bench MODE ITERATIONS
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long iterations;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* ---- single-thread fast paths ---- */

static double mutex_uncontended(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        pthread_mutex_lock(&m);
        pthread_mutex_unlock(&m);
    }
    return now_ns() - t0;
}

static double rwlock_uncontended(void)
{
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        pthread_rwlock_rdlock(&rw);
        pthread_rwlock_unlock(&rw);
    }
    return now_ns() - t0;
}

static double sem_uncontended(void)
{
    sem_t s;
    sem_init(&s, 0, 0);
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        sem_post(&s);
        sem_wait(&s);
    }
    return now_ns() - t0;
}

static double nonblocking_read(void)
{
    int fds[2];
    char c;
    if (pipe2(fds, O_NONBLOCK) != 0)
        exit(1);
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++)
        if (read(fds[0], &c, 1) != -1)
            exit(1);
    return now_ns() - t0;
}

/* ---- ping-pong between two threads: every operation parks ---- */

static pthread_mutex_t pp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_cond = PTHREAD_COND_INITIALIZER;
static long pp_turn;
static sem_t pp_sem[2];
static uint32_t pp_word[2];
static int pp_pipe[2][2];

static void *cond_partner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pp_lock);
    for (long i = 0; i < iterations; i++) {
        while (pp_turn % 2 == 0)
            pthread_cond_wait(&pp_cond, &pp_lock);
        pp_turn++;
        pthread_cond_signal(&pp_cond);
    }
    pthread_mutex_unlock(&pp_lock);
    return NULL;
}

static double cond_pingpong(void)
{
    pthread_t th;
    pthread_create(&th, NULL, cond_partner, NULL);
    double t0 = now_ns();
    pthread_mutex_lock(&pp_lock);
    for (long i = 0; i < iterations; i++) {
        pp_turn++;
        pthread_cond_signal(&pp_cond);
        while (pp_turn % 2 == 1)
            pthread_cond_wait(&pp_cond, &pp_lock);
    }
    pthread_mutex_unlock(&pp_lock);
    double t = now_ns() - t0;
    pthread_join(th, NULL);
    return t;
}

static void *sem_partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        sem_wait(&pp_sem[1]);
        sem_post(&pp_sem[0]);
    }
    return NULL;
}

static double sem_pingpong(void)
{
    pthread_t th;
    sem_init(&pp_sem[0], 0, 0);
    sem_init(&pp_sem[1], 0, 0);
    pthread_create(&th, NULL, sem_partner, NULL);
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        sem_post(&pp_sem[1]);
        sem_wait(&pp_sem[0]);
    }
    double t = now_ns() - t0;
    pthread_join(th, NULL);
    return t;
}

/* A word per direction: 0 = empty, 1 = full; waiters sleep on 0. */
static void futex_give(uint32_t *w)
{
    __atomic_store_n(w, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void futex_take(uint32_t *w)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == 0)
        syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    __atomic_store_n(w, 0, __ATOMIC_RELAXED);
}

static void *futex_partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        futex_take(&pp_word[1]);
        futex_give(&pp_word[0]);
    }
    return NULL;
}

static double futex_pingpong(void)
{
    pthread_t th;
    pthread_create(&th, NULL, futex_partner, NULL);
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        futex_give(&pp_word[1]);
        futex_take(&pp_word[0]);
    }
    double t = now_ns() - t0;
    pthread_join(th, NULL);
    return t;
}

static void *pipe_partner(void *arg)
{
    (void)arg;
    char c;
    for (long i = 0; i < iterations; i++)
        if (read(pp_pipe[1][0], &c, 1) != 1 || write(pp_pipe[0][1], &c, 1) != 1)
            exit(1);
    return NULL;
}

static double pipe_pingpong(void)
{
    pthread_t th;
    char c = 'x';
    if (pipe(pp_pipe[0]) || pipe(pp_pipe[1]))
        exit(1);
    pthread_create(&th, NULL, pipe_partner, NULL);
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++)
        if (write(pp_pipe[1][1], &c, 1) != 1 || read(pp_pipe[0][0], &c, 1) != 1)
            exit(1);
    double t = now_ns() - t0;
    pthread_join(th, NULL);
    return t;
}

static void *nothing(void *arg) { return arg; }

static double create_join(void)
{
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, nothing, NULL) != 0)
            exit(1);
        pthread_join(th, NULL);
    }
    return now_ns() - t0;
}

static const struct {
    const char *name;
    double (*run)(void);
} workloads[] = {
    { "mutex_uncontended", mutex_uncontended }, { "rwlock_uncontended", rwlock_uncontended },
    { "sem_uncontended", sem_uncontended }, { "nonblocking_read", nonblocking_read },
    { "cond_pingpong", cond_pingpong }, { "sem_pingpong", sem_pingpong },
    { "futex_pingpong", futex_pingpong }, { "pipe_pingpong", pipe_pingpong },
    { "create_join", create_join },
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench MODE ITERATIONS\n");
        return 2;
    }
    iterations = atol(argv[2]);
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
        if (!strcmp(argv[1], workloads[i].name)) {
            printf("%.3f\n", workloads[i].run() / (double)iterations);
            return 0;
        }
    fprintf(stderr, "bench: unknown mode %s\n", argv[1]);
    return 2;
}
