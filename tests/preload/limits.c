/*
 * limits.c — reaches both fixed tables of a preload built small
 * (tests/preload/meson.build: 64 thread slots, 256 distinct stacks):
 * starts 100 threads that park on a semaphore, then makes 512 different
 * stacks, each recorded as the creation stack of a pipe made there (and
 * closed: a channel's creation is captured at once, where a wait's stack
 * is walked only if someone asks while it lasts), prints "READY" and waits. test_limits.py checks that the reply's notes
 * say what was lost.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

#define THREADS 100
#define DEPTH 9   /* 2^9 = 512 paths */

static sem_t never;

static void *parked(void *arg)
{
    (void)arg;
    while (sem_wait(&never) != 0)
        ;
    return NULL;
}

static void descend(int depth, unsigned path);

static __attribute__((noinline)) void left(int depth, unsigned path)
{
    descend(depth, path);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void right(int depth, unsigned path)
{
    descend(depth, path);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void descend(int depth, unsigned path)
{
    if (depth == 0) {
        int fds[2];
        if (pipe(fds) == 0) {
            close(fds[0]);
            close(fds[1]);
        }
    } else if (path & 1) {
        left(depth - 1, path >> 1);
    } else {
        right(depth - 1, path >> 1);
    }
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    pthread_attr_t attr;
    pthread_t th;
    sem_init(&never, 0, 0);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&th, &attr, parked, NULL) != 0)
            return 1;
    for (unsigned path = 0; path < 1u << DEPTH; path++)
        descend(DEPTH, path);
    printf("READY threads=%d stacks=%u\n", THREADS, 1u << DEPTH);
    fflush(stdout);
    for (;;)
        pause();
}
