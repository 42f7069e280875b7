/*
 * internal.c — threads of our own (the server's): see internal.h. They are
 * created with every signal blocked (no process-directed signal of the
 * application is ever delivered to one) and mark themselves internal in the
 * registry before running, so that hooks pass straight through on them and
 * snapshots never list them.
 */
#include "record/internal.h"
#include "record/registry.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

/* Our threads' stack at the least, however small the program's default
 * is: `ulimit -s 16` or pthread_setattr_default_np can make that 16 KiB,
 * and the server's scan alone keeps tens of KiB of batches on its stack.
 * Address space, touched only as deep as it goes. */
#define INTERNAL_STACK (512u << 10)

struct internal_start {
    void *(*fn)(void *);
    void *arg;
};

static void *internal_trampoline(void *p)
{
    struct internal_start start = *(struct internal_start *)p;
    free(p);
    lw_registry_mark_self_internal();
    return start.fn(start.arg);
}

/* Our threads are created through the pthread_create the program itself sees
 * (RTLD_DEFAULT: a sanitizer's or another interposer's first, else ours), so
 * every runtime that tracks threads knows this one too; AddressSanitizer
 * otherwise keeps stale stack poisoning where a fork child's new thread
 * lands. Our own hook is bypassed for it, so the registry never counts it. */
int lw_internal_thread_create(void *(*fn)(void *), void *arg)
{
    int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_DEFAULT, "pthread_create");
    if (!create)
        create = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT,
                                                                                               "pthread_create");
    if (!create)
        return ENOSYS;
    struct internal_start *start = malloc(sizeof *start);
    if (!start)
        return ENOMEM;
    start->fn = fn;
    start->arg = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    size_t stack = 0;
    if (pthread_attr_getstacksize(&attr, &stack) != 0 || stack < INTERNAL_STACK)
        pthread_attr_setstacksize(&attr, INTERNAL_STACK);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    lw_bypass_enter();
    int rc = create(&th, &attr, internal_trampoline, start);
    lw_bypass_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        free(start);
    return rc;
}

