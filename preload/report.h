/*
 * report.h — the replies of docs/protocol.md, rendered from a snapshot and
 * its analysis. Server thread only.
 */
#ifndef LW_REPORT_H
#define LW_REPORT_H

#include "jsonw.h"
#include "snapshot.h"

enum lw_report_kind { LW_REPORT_STATUS, LW_REPORT_THREADS };

void lw_report_process(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a,
                       enum lw_report_kind kind);
void lw_report_ping(struct jsonw *w);
void lw_report_hooks(struct jsonw *w);
void lw_report_error(struct jsonw *w, const char *message);

#endif
