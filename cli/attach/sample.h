/*
 * sample.h — what /proc says of every thread of a process at one moment
 * (sample.c), without stopping anything: the syscall it sleeps in and its
 * arguments, its state, how often it has been switched out, its name and
 * when it started. Two samples at least the settle time apart, the same
 * syscall with the same arguments and not one context switch in between,
 * prove that a thread waited all that time: that is how a wait seen from
 * outside gets an age (attach cannot know when it began).
 */
#ifndef LWA_SAMPLE_H
#define LWA_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lwa_task_sample {
    pid_t tid;
    char state;               /* /proc/PID/task/TID/stat's letter, '?' unknown */
    int syscall_nr;           /* -1: running, or unknown */
    uint64_t args[6], sp, pc;
    uint64_t switches;        /* voluntary + involuntary context switches; UINT64_MAX unknown */
    char name[16];
    double started;           /* seconds since boot it started, < 0 unknown */
};

struct lwa_sample {
    uint64_t taken_ns;        /* CLOCK_MONOTONIC */
    double boot_seconds;      /* /proc/uptime then */
    struct lwa_task_sample *tasks;   /* sorted by tid */
    size_t n;
};

/* Every thread of pid now. False if the process cannot be read. */
bool lwa_sample_take(struct lwa_sample *s, pid_t pid);
void lwa_sample_free(struct lwa_sample *s);
const struct lwa_task_sample *lwa_sample_find(const struct lwa_sample *s, pid_t tid);

/* Whether the thread slept in one and the same syscall from a to b: the
 * same call, arguments, stack pointer and pc, and no context switch. */
bool lwa_same_wait(const struct lwa_task_sample *a, const struct lwa_task_sample *b);

#endif
