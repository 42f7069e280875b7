/*
 * connections.h — the server's clients, many at once (connections.c): a
 * bounded table of accepted connections, each moved along by poll (its
 * request line read, its answer made or awaited, sent, the connection
 * drained and closed), so that a slow, silent or vanished client never
 * holds the others up. What an answer says is server.c's.
 */
#ifndef LW_CONNECTIONS_H
#define LW_CONNECTIONS_H

#include "serve/jsonw.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_CONNS_MAX 1024  /* connections held at once, with a descriptor table of our own */
#define LW_CONNS_SHARED 32 /* in the program's table, where each one takes a number the program may need */

/* ---- what answers a request (server.c gives it) ---- */
enum lw_answer { LW_ANSWER_READY, LW_ANSWER_LATER };

/* The reply to a request line, rendered into w (under the report lock,
 * released before it returns). A threads or status request whose finding
 * awaits its confirming scan returns LW_ANSWER_LATER with *due set and
 * nothing rendered, unless `waited` says it has waited once already. */
typedef enum lw_answer (*lw_answerer)(const char *line, struct jsonw *w, bool waited, uint64_t *due);

/* ---- the table ---- */
void lw_conns_setup(size_t capacity, lw_answerer answerer);   /* the server thread, at its start */

/* A connection just accepted (non-blocking, close-on-exec): checked (the
 * peer's credentials) and added; the oldest one still silent is shed when
 * the table is full. */
void lw_conns_add(int fd);

/* Whether another connection can be taken: a free slot, or a silent one
 * to shed. */
bool lw_conns_can_take_more(void);

/* Shed the connection that has been silent longest, to make room (the
 * table is full, or accept ran out of descriptors); false if none is. */
bool lw_conns_shed_oldest_silent(void);

/* The poll entries of the connections (at most max), and how long poll may
 * sleep before some connection's deadline (at most ceiling_ms). */
size_t lw_conns_poll_set(struct pollfd *fds, size_t max);
int lw_conns_poll_timeout(int ceiling_ms);

/* After poll: fds are the entries lw_conns_poll_set gave (their revents
 * filled in). Reads, answers, sends, drains, closes what is due. */
void lw_conns_step(const struct pollfd *fds, size_t n);

/* One connection served from start to end on the calling thread (its
 * caller keeps and closes fd): tests/fuzz, through lw_server_serve_connection. */
void lw_conns_serve_one(int fd, lw_answerer answerer);

/* Fork child: the connections are the parent's; those still in this
 * process's table are closed, all are forgotten. */
void lw_conns_fork_child(void);

#endif
