/*
 * report.h — the replies of docs/protocol.md, rendered from a snapshot and
 * its analysis into a JSON writer. Server thread only (it allocates and walks
 * the loader's module list).
 *
 * Kept apart from server.c so that what a reply says (report.c) is separate
 * from how it travels (server.c): each reply ends with "\n". When a writer
 * comes back with `failed` set, the server sends an error reply instead.
 */
#ifndef LW_REPORT_H
#define LW_REPORT_H

#include "serve/jsonw.h"
#include "core/snapshot.h"

enum lw_report_kind { LW_REPORT_STATUS, LW_REPORT_THREADS };

void lw_report_process(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a,
                       enum lw_report_kind kind);
void lw_report_ping(struct jsonw *w);
void lw_report_hooks(struct jsonw *w);
void lw_report_error(struct jsonw *w, const char *message);

/* The parts that are the snapshot and its analysis (report_snapshot.c),
 * shared with the CLI's attach: each writes its key and value. */
void lw_report_write_settings(struct jsonw *w, const struct lw_snapshot *snap);
void lw_report_write_summary(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a);
void lw_report_write_paths(struct jsonw *w, const struct lw_snapshot *snap);
void lw_report_write_threads(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a);
void lw_report_write_exited(struct jsonw *w, const struct lw_snapshot *snap);
/* Values only: the analysis's and the scan's notes (inside "notes"), and
 * a fixed-size string of the snapshot (never read past its array). */
void lw_report_write_judgement_notes(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a);
void lw_report_write_fixed_string(struct jsonw *w, const char *s, size_t size);

#endif
