/*
 * replybound.h — the bounds on a reply (replybound.c): its size, from what a
 * process with that many threads can send, and the memory its parse takes.
 */
#ifndef LWC_REPLYBOUND_H
#define LWC_REPLYBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The largest reply a process with this many threads sends. */
size_t lwc_reply_limit_for_threads(size_t threads);

/* The same for pid, from its thread count now (*threads; 0 if unknown, and
 * then the limit of the preload's largest registry). */
size_t lwc_reply_limit(pid_t pid, size_t *threads);

/* What json-c would allocate to parse text, estimated in one pass (bytes;
 * SIZE_MAX when nested too deep to parse at all). */
size_t lwc_reply_parse_cost(const char *text, size_t len);

/* Whether parsing text costs what a real reply of its size costs; if not,
 * false with the reason in why. */
bool lwc_reply_affordable(const char *text, size_t len, char *why, size_t size);

#endif
