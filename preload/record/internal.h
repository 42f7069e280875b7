/*
 * internal.h — threads of our own (internal.c): made with the real
 * pthread_create, every signal blocked, marked internal in the registry so
 * that hooks pass straight through and snapshots never report them.
 */
#ifndef LW_INTERNAL_H
#define LW_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

/* Start a thread of ours: created with the real pthread_create, with every
 * signal blocked (so no process-directed signal of the application is ever
 * delivered to it), marked internal so hooks pass straight through and
 * snapshots do not report it. Returns 0 or an errno value. */
int lw_internal_thread_create(void *(*fn)(void *), void *arg);
bool lw_is_internal_tid(pid_t tid);

#endif
