/*
 * leaky_fetch.c — the demo: a small "service" with the classic thread leak.
 *
 * Each request starts a worker to fetch a result and waits for it with a
 * deadline. The fetch is slower than the deadline, so the caller gives up and
 * walks away; the worker then blocks forever handing its result over an
 * unbuffered rendezvous (mutex + condvar) that nobody will ever take. The
 * service keeps serving, and its thread count creeps up one leaked worker per
 * request. A generator thread also blocks writing into a pipe whose reader
 * (a streaming request that took five values and returned) stopped reading:
 * the pipe form of the same bug. While the service runs, any of its threads
 * could still read that pipe (an fd is a number), so leakwatch calls the
 * generator `suspect`, with the pipe's history; when the service exits
 * under `leakwatch run --check`, nothing is left that could, and it is
 * `leaked`.
 *
 * Usage: leaky_fetch [REQUESTS [SECONDS]]   (default 5; runs until killed,
 * or, given SECONDS, idles that long and exits)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct rendezvous {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int result;
    int offered;   /* the worker has a result to hand over */
    int taken;     /* the caller took it */
};

static void *fetch_worker(void *arg)
{
    struct rendezvous *rv = arg;
    pthread_setname_np(pthread_self(), "fetch-worker");
    usleep(300 * 1000);                       /* the slow fetch */
    pthread_mutex_lock(&rv->lock);
    rv->result = 42;
    rv->offered = 1;
    pthread_cond_broadcast(&rv->changed);
    while (!rv->taken)                        /* unbuffered: wait for the handoff */
        pthread_cond_wait(&rv->changed, &rv->lock);
    pthread_mutex_unlock(&rv->lock);
    free(rv);
    return NULL;
}

/* Returns the result, or -1 when the deadline passed (and walks away). */
static int fetch_with_timeout(int timeout_ms)
{
    struct rendezvous *rv = calloc(1, sizeof *rv);
    pthread_mutex_init(&rv->lock, NULL);
    pthread_cond_init(&rv->changed, NULL);
    pthread_t worker;
    if (pthread_create(&worker, NULL, fetch_worker, rv) != 0)
        return -1;
    pthread_detach(worker);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (long)timeout_ms * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;

    int result = -1, rc = 0;
    pthread_mutex_lock(&rv->lock);
    while (!rv->offered && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&rv->changed, &rv->lock, &deadline);
    if (rv->offered) {
        result = rv->result;
        rv->taken = 1;
        pthread_cond_broadcast(&rv->changed);
    }
    pthread_mutex_unlock(&rv->lock);
    return result;   /* on timeout the rendezvous is simply forgotten: the bug */
}

static int pipe_fds[2];

static void *generator(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "generator");
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    for (;;)                                  /* blocks once the pipe is full */
        if (write(pipe_fds[1], chunk, sizeof chunk) < 0)
            return NULL;
}

/* A streaming request: start a generator, take five values, stop reading
 * and return, without closing the pipe. */
static void *stream_request(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "stream");
    if (pipe(pipe_fds) != 0)
        return NULL;
    pthread_t gen;
    pthread_create(&gen, NULL, generator, NULL);
    pthread_detach(gen);
    char buf[4096];
    for (int i = 0; i < 5; i++)               /* the consumer takes five values, then stops */
        if (read(pipe_fds[0], buf, sizeof buf) < 0)
            break;
    return NULL;
}

int main(int argc, char **argv)
{
    int requests = argc > 1 ? atoi(argv[1]) : 5;
    int seconds = argc > 2 ? atoi(argv[2]) : 0;
    pthread_t stream;
    if (pthread_create(&stream, NULL, stream_request, NULL) != 0)
        return 1;
    pthread_join(stream, NULL);

    printf("leaky_fetch: pid %d serving %d requests\n", (int)getpid(), requests);
    fflush(stdout);
    for (int i = 0; i < requests; i++) {
        int r = fetch_with_timeout(100);
        printf("request %d: %s\n", i + 1, r < 0 ? "timed out" : "ok");
        fflush(stdout);
    }
    printf("leaky_fetch: idle; leaked workers stay parked (Ctrl-C to stop)\n");
    fflush(stdout);
    if (seconds > 0) {
        sleep((unsigned)seconds);
        return 0;
    }
    for (;;)
        pause();
}
