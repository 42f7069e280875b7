/*
 * deadline.h — one deadline for a whole question to one process
 * (deadline.c): asking it, reading and parsing its reply, symbolizing.
 */
#ifndef LWC_DEADLINE_H
#define LWC_DEADLINE_H

#include <stdbool.h>
#include <sys/types.h>

int lwc_timeout_ms(void);          /* LEAKWATCH_TIMEOUT_MS, default 10000 */
long long lwc_now_ms(void);        /* CLOCK_MONOTONIC */

/* A question to pid begins: its deadline is LEAKWATCH_TIMEOUT_MS from now,
 * and the watchdog ends the command ("timed out", exit 2) if it is still
 * asking, reading or symbolizing then. */
void lwc_deadline_start(pid_t pid);

/* A long-running command that asks on many threads at once (the exporter):
 * no watchdog ends it; each question is bounded by its own socket deadline
 * (the deadline is kept per thread). Call it before any question. */
void lwc_deadline_without_watchdog(void);

/* The deadline (CLOCK_MONOTONIC ms) of the question under way; a fresh one
 * when none is. */
long long lwc_deadline(void);

/* Past the point where no more module files are opened (three quarters
 * of the way to the deadline, so that what was found is still shown in
 * time). */
bool lwc_deadline_symbolizing_over(void);

/* The question is answered (or abandoned): the watchdog is off. Before
 * anything is printed: a slow reader of our output is no timeout. */
void lwc_deadline_stop(void);

/* Called (async-signal-safe only) by the watchdog before the command ends:
 * watch puts the terminal back. */
void lwc_deadline_on_expiry(void (*restore)(void));

#endif
