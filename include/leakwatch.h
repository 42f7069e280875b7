/*
 * leakwatch.h — goleak's VerifyNone for C and C++ tests: after each test,
 * fail it if a thread it started is still there.
 *
 *     leakwatch_mark();                       before the test
 *     run_the_test();
 *     char *report = leakwatch_verify_none(1000);
 *     if (report) {                           a thread it started is left
 *         fail_the_test(report);
 *         free(report);
 *     }
 *
 * The calls are answered by libleakwatch.so, the preload (run the tests with
 * LD_PRELOAD=libleakwatch.so or under `leakwatch run`). Its entry points are
 * declared weak, so nothing needs linking and the same test binary runs
 * without it: then leakwatch_verify_none says once on stderr that the
 * threads are not checked, and passes. (The weak references need a
 * position-independent executable, the default of Debian's gcc: a non-PIE
 * link may resolve them to null for good.) pkg-config --cflags leakwatch
 * finds this header; pkg-config --variable=preload leakwatch, the preload.
 * leakwatch_gtest.h turns it into a GoogleTest event listener.
 */
#ifndef LEAKWATCH_H
#define LEAKWATCH_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The preload's entry points (version 1 of this interface); null without it. */
void leakwatch_v1_mark(void) __attribute__((weak));
char *leakwatch_v1_verify_none(unsigned timeout_ms) __attribute__((weak));

#ifdef __cplusplus
}
#endif

/* Whether libleakwatch.so is loaded: the checks below mean something. */
static inline int leakwatch_preloaded(void)
{
    return leakwatch_v1_verify_none != 0 && leakwatch_v1_mark != 0;
}

/* Threads created from now on are the ones leakwatch_verify_none waits for.
 * Cheap and async-signal-safe (a clock read and a store). Without a mark,
 * every thread created since the program started but the main thread. */
static inline void leakwatch_mark(void)
{
    if (leakwatch_preloaded())
        leakwatch_v1_mark();
}

/* Waits, looking again and again (after 1 ms, then twice as long each time,
 * up to 64 ms), until every thread created since the last leakwatch_mark()
 * has exited, for at most timeout_ms. NULL when they all did (or without
 * the preload); otherwise a report of those still there (malloc'ed text:
 * free() it): for each, its tid and name, its verdict (running, waiting,
 * suspect, leaked, deadlocked) and wait, the reason, its wait stack and
 * where it was created (functions named from the dynamic symbol tables:
 * `leakwatch threads` gives file:line). The calling thread is never
 * counted. Not async-signal-safe. */
static inline char *leakwatch_verify_none(unsigned timeout_ms)
{
    static int told;
    if (leakwatch_preloaded())
        return leakwatch_v1_verify_none(timeout_ms);
    if (!told) {
        told = 1;
        fputs("leakwatch: not preloaded (LD_PRELOAD=libleakwatch.so, or `leakwatch run`): "
              "threads are not checked\n", stderr);
    }
    return NULL;
}

#endif
