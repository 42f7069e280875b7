/*
 * serve.h — the serving layer's entry points for the composition root
 * (init.c) and the tests: the socket server (server.c) and what the preload
 * does on its own (monitor.c).
 */
#ifndef LW_SERVE_H
#define LW_SERVE_H

#include <stdbool.h>

/* ---- the server (server.c) ---- */
void lw_server_start(void);          /* start the listener thread; idempotent */
void lw_server_start_later(void);    /* arm the lifecycle: start it at the first thread creation or park */
void lw_server_fork_prepare(void);   /* pthread_atfork handlers, called by init.c */
void lw_server_fork_parent(void);
void lw_server_fork_child(void);     /* forget the parent's socket (never unlink it); start ours later */
void lw_server_at_exit(void);        /* unlink our socket; called from the destructor */
void lw_server_serve_connection(int fd); /* one accepted connection (server thread; tests/fuzz) */

/* ---- on its own (monitor.c): history, periodic log, exit report ---- */
void lw_monitor_init(void);              /* constructor: reads its settings */
bool lw_monitor_wants_server_now(void);  /* LEAKWATCH_LOG asks for the timer from the start */
void lw_monitor_tick(void);              /* server thread, under the report lock */
void lw_monitor_flush_log(void);         /* server thread, after the tick, the report lock released */
void lw_monitor_fork_child(void);
void lw_monitor_at_exit(void);           /* destructor; takes the report lock only to judge */

#endif
