/*
 * reportlock.c — the one lock around building a reply or a report
 * (reportlock.h), apart from the server so that every builder of reports
 * (server.c, monitor.c, api.c) takes it from below instead of calling back
 * into the server.
 */
#include "serve/reportlock.h"

#include "base/util.h"

static lw_lock_t report_lock = LW_LOCK_INIT;

void lw_reports_lock(void) { lw_lock(&report_lock); }
void lw_reports_unlock(void) { lw_unlock(&report_lock); }
void lw_reports_lock_reset(void) { report_lock.word = 0; }
