/*
 * history.h — the thread count over the whole run (history.c).
 */
#ifndef LW_HISTORY_H
#define LW_HISTORY_H

#include <stdint.h>

struct jsonw;

void lw_history_init(uint32_t interval_ms);           /* constructor: the first sampling interval */
void lw_history_fork_child(void);                     /* a fork child starts its own */
void lw_history_sample(uint64_t now, uint32_t live);  /* the server's tick */
void lw_history_write(struct jsonw *w);               /* "history": {...} into a report */

#endif
