/*
 * journal.h — LEAKWATCH_LOG=journal (journal.c): the monitor's summary as a
 * structured systemd journal entry, sent by a thread of ours through a
 * dlopen'ed libsystemd; the caller never waits for the journal.
 */
#ifndef LW_JOURNAL_H
#define LW_JOURNAL_H

#include "core/snapshot.h"
#include <stdbool.h>

/* Whether LEAKWATCH_LOG's value names the journal. */
bool lw_journal_is_target(const char *target);

/* Hand over one summary (line as the other targets get it, with its
 * snapshot and analysis); returns at once. Server thread. */
void lw_journal_log(const char *line, const struct lw_snapshot *snap, const struct lw_analysis *a);

#endif
