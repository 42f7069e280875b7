/*
 * deadline.c — one deadline for a whole question to one process
 * (LEAKWATCH_TIMEOUT_MS, default 10 s), not only for its socket I/O: the
 * reply names module files, and the CLI opens and reads them to symbolize.
 * Socket I/O waits with poll until the deadline (client.c); the symbolizer
 * opens no more module files once the deadline is near (symbolize.c: the
 * frames past that point show module+offset, and a note says so); and a
 * watchdog (ITIMER_REAL) ends the command shortly after the deadline,
 * "timed out", exit 2, for what no check can interrupt: a module file on a
 * hung filesystem (a FUSE mount whose owner never answers) blocks open or
 * read for ever. It fires a grace period after the deadline, not at it, so
 * that a socket wait that times out by itself is reported as that one
 * process's failure (status of every process lists the others) instead of
 * ending the command. The watchdog is off while anything is printed.
 */
#include "deadline.h"

#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define SYMBOLIZING_SHARE 4   /* module files are opened in the first three quarters of the time only */
#define WATCHDOG_GRACE_MS 500 /* past the deadline: what polls the deadline has ended by then */

/* Per thread: the exporter asks many processes at once, one thread each. */
static __thread long long deadline_ms;     /* 0: no question under way */
static __thread long long symbolizing_until_ms;
static bool no_watchdog;          /* a server of questions (the exporter): each bounds its own */
static void (*restore_hook)(void);
static char expiry_message[128];
static size_t expiry_length;

int lwc_timeout_ms(void)
{
    const char *s = getenv("LEAKWATCH_TIMEOUT_MS");
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    return s && *s && !*end && v > 0 && v < INT_MAX ? (int)v : DEFAULT_TIMEOUT_MS;
}

long long lwc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void expired(int sig)
{
    (void)sig;
    if (restore_hook)
        restore_hook();
    (void)!write(STDERR_FILENO, expiry_message, expiry_length);
    _exit(2);
}

static void arm_watchdog(long long ms)
{
    struct sigaction sa = { .sa_handler = expired };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval t = { .it_value = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &t, NULL);
}

void lwc_deadline_start(pid_t pid)
{
    long long timeout = lwc_timeout_ms();
    deadline_ms = lwc_now_ms() + timeout;
    symbolizing_until_ms = deadline_ms - timeout / SYMBOLIZING_SHARE;   /* the rest: what was found, explained */
    int n = snprintf(expiry_message, sizeof expiry_message,
                     "leakwatch: pid %d: timed out after %lld ms (asking, reading or symbolizing)\n", (int)pid,
                     timeout);
    expiry_length = n > 0 && (size_t)n < sizeof expiry_message ? (size_t)n : 0;
    if (!no_watchdog)
        arm_watchdog(timeout + WATCHDOG_GRACE_MS);
}

void lwc_deadline_without_watchdog(void)
{
    no_watchdog = true;
}

long long lwc_deadline(void)
{
    return deadline_ms ? deadline_ms : lwc_now_ms() + lwc_timeout_ms();
}

bool lwc_deadline_symbolizing_over(void)
{
    return deadline_ms && lwc_now_ms() >= symbolizing_until_ms;
}

void lwc_deadline_stop(void)
{
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    if (!no_watchdog)
        setitimer(ITIMER_REAL, &off, NULL);
    deadline_ms = 0;
}

void lwc_deadline_on_expiry(void (*restore)(void))
{
    restore_hook = restore;
}
