/*
 * bench.h — the timing helper shared by the benchmark workloads in this
 * directory (run by scripts/bench, bare and under the preload).
 *
 * Every workload is one program: `NAME ITERATIONS`. It runs a short untimed
 * warm-up (BENCH_WARMUP of the iterations: first-touch page faults, the
 * preload's lazy start-up, thread-stack caches), then times only its measured
 * loop with CLOCK_MONOTONIC and prints one line on stdout: the mean
 * nanoseconds per operation ("%.3f\n"). Errors go to stderr with exit 1;
 * usage errors exit 2.
 */
#ifndef LEAKWATCH_BENCH_H
#define LEAKWATCH_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Untimed warm-up iterations before the measured loop. */
#define BENCH_WARMUP(n) ((n) / 10 + 1)

static inline uint64_t bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The iteration count from argv[1] (a positive integer), or exit 2. */
static inline long bench_iterations(int argc, char **argv)
{
    char *end;
    long n = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end != '\0' || n <= 0) {
        fprintf(stderr, "usage: %s ITERATIONS\n", argc > 0 ? argv[0] : "bench");
        exit(2);
    }
    return n;
}

/* Report an unexpected failure of `what` (err is an errno value) and exit 1. */
static inline void bench_fail(const char *what, int err)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(err));
    exit(1);
}

/* Check a pthread-style return value (0 or an errno value). */
static inline void bench_check(int rc, const char *what)
{
    if (rc != 0)
        bench_fail(what, rc);
}

/* Print the result: ns per operation over the measured loop. */
static inline void bench_report(uint64_t t0, uint64_t t1, long ops)
{
    printf("%.3f\n", (double)(t1 - t0) / (double)ops);
}

/* BENCH_CHUNKS=K in the environment: the measured loop runs as K chunks
 * of n / K iterations, each timed, and the result is the fastest chunk's
 * ns/op: on a machine other work keeps busy, the least disturbed stretch
 * (scripts/bench --chunks). Unset or 1: the whole loop's mean. */
static inline long bench_chunks(long n)
{
    const char *v = getenv("BENCH_CHUNKS");
    long k = v ? strtol(v, NULL, 10) : 1;
    return k < 1 ? 1 : k > n ? n : k;
}

/* Every workload's main: parse the iteration count, warm up untimed, time
 * loop(n) and print the result. A ping-pong workload passes its partner
 * thread and the round count it reads; the partner then runs for the
 * warm-up and the measured rounds and is joined after the timing. */
static inline int bench_main(int argc, char **argv, void (*loop)(long),
                             void *(*partner)(void *), long *partner_rounds)
{
    long n = bench_iterations(argc, argv);
    long warm = BENCH_WARMUP(n);
    long chunks = bench_chunks(n), per = n / chunks;
    pthread_t th;
    if (partner) {
        *partner_rounds = warm + per * chunks;
        bench_check(pthread_create(&th, NULL, partner, NULL), "pthread_create");
    }
    loop(warm);
    uint64_t best = UINT64_MAX;
    for (long c = 0; c < chunks; c++) {
        uint64_t t0 = bench_now_ns();
        loop(per);
        uint64_t t1 = bench_now_ns();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    if (partner)
        bench_check(pthread_join(th, NULL), "pthread_join");
    bench_report(0, best, per);
    return 0;
}

#endif
