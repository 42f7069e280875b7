/*
 * bindings.c — prints, for the functions whose symbol version matters, the
 * address libc gives for the version leakwatch must bind (pthread_cond_* at
 * GLIBC_2.3.2, not the pre-2003 GLIBC_2.2.5 layout) and for the default
 * version of every other hooked name, then waits to be queried.
 * test_bindings.py compares them with the preload's `hooks` reply.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static const char *const versioned[] = {
    "pthread_cond_wait", "pthread_cond_timedwait",
};
static const char *const plain[] = {
    "pthread_mutex_lock", "pthread_mutex_timedlock", "pthread_mutex_clocklock",
    "pthread_cond_clockwait", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
    "pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock",
    "pthread_rwlock_clockrdlock", "pthread_rwlock_clockwrlock", "sem_wait",
    "sem_timedwait", "sem_clockwait", "pthread_barrier_wait", "pthread_join",
    "pthread_timedjoin_np", "pthread_clockjoin_np", "mtx_lock", "mtx_timedlock",
    "cnd_wait", "cnd_timedwait", "thrd_join", "nanosleep", "clock_nanosleep",
    "usleep", "sleep", "syscall", "pthread_create", "thrd_create",
};

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

int main(void)
{
    pthread_t th;   /* a second thread: the server starts with the first one */
    pthread_create(&th, NULL, idle, NULL);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!libc) {
        fprintf(stderr, "libc.so.6 not loaded?\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof versioned / sizeof versioned[0]; i++) {
        printf("BIND %s %p\n", versioned[i], dlvsym(libc, versioned[i], "GLIBC_2.3.2"));
        printf("OLD %s %p\n", versioned[i], dlvsym(libc, versioned[i], "GLIBC_2.2.5"));
    }
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        printf("BIND %s %p\n", plain[i], dlsym(libc, plain[i]));
    printf("READY\n");
    fflush(stdout);
    for (;;)
        pause();
}
