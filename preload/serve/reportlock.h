/*
 * reportlock.h — the report lock (reportlock.c): held while a snapshot is
 * taken, judged and rendered, by the server thread (a reply, the periodic
 * tick) and by the threads that judge off it (the exit report, the test
 * API's verification). The fork handlers take it too, so that a child
 * never inherits a snapshot half built. A lock of our own (base/util.h),
 * which the program's threads never need: no hook takes it.
 */
#ifndef LW_REPORTLOCK_H
#define LW_REPORTLOCK_H

void lw_reports_lock(void);
void lw_reports_unlock(void);
/* Fork child: the forking thread held it (fork_prepare); it is free here. */
void lw_reports_lock_reset(void);

#endif
