/*
 * request.h — the request line of docs/protocol.md, understood apart from the
 * socket that carries it: whether the bytes received so far make a complete
 * line, a bad request, or need more; and which verb a line names.
 *
 * Pure functions (no I/O, no allocation, no global state), so that server.c
 * keeps only the deadlines and syscalls, and tests/fuzz/ can feed them
 * arbitrary bytes in arbitrary pieces.
 */
#ifndef LW_REQUEST_H
#define LW_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#define LW_REQUEST_MAX 256   /* bytes, the newline included */

enum lw_request_progress {
    LW_REQUEST_INCOMPLETE,   /* no newline yet: receive more (at most LW_REQUEST_MAX - len bytes) */
    LW_REQUEST_LINE,         /* a complete, valid line */
    LW_REQUEST_BAD,          /* a bad request: reply with the error */
};

/* Look at the len bytes received so far in buf (len <= LW_REQUEST_MAX; buf
 * has room for LW_REQUEST_MAX + 1 bytes). On LW_REQUEST_LINE, buf holds the
 * line NUL-terminated, without its "\n" or "\r\n", and *more says whether
 * bytes followed the newline. On LW_REQUEST_BAD, *error is the sentence for
 * the client. */
enum lw_request_progress lw_request_examine(char *buf, size_t len, bool *more, const char **error);

enum lw_request_verb { LW_VERB_UNKNOWN, LW_VERB_PING, LW_VERB_STATUS, LW_VERB_THREADS, LW_VERB_HOOKS };

/* The verb a complete line names (LW_VERB_UNKNOWN for anything else). */
enum lw_request_verb lw_request_verb(const char *line);

#define LW_REQUEST_UNKNOWN_VERB "unknown request; expected one of: ping, status, threads, hooks"

#endif
