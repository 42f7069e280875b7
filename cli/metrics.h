/*
 * metrics.h — the Prometheus families of `leakwatch metrics` (metrics.c),
 * shared with the exporter (exporter.c), which serves the same families
 * over HTTP and adds its own (scrape duration, per-process ask time).
 */
#ifndef LWC_METRICS_H
#define LWC_METRICS_H

#include "suppress.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define LWC_LABEL_MAX 256   /* a label value is cut at this many bytes */
#define LWC_NVERDICTS 5
#define LWC_NKINDS 19       /* docs/protocol.md's wait kinds, and "other" */

/* What one process contributes to the families. */
struct lwc_metrics_proc {
    pid_t pid;
    char command[LWC_LABEL_MAX + 1];   /* valid UTF-8, unescaped */
    bool up;                           /* answered; otherwise only leakwatch_up is printed */
    long long verdicts[LWC_NVERDICTS], waits[LWC_NKINDS], suppressed, created, exited, peak;
    double oldest_stuck, uptime;
    bool growth_alarm;
};

/* p->pid set: fill the rest from its `threads` reply (up), suppressions
 * applied. */
void lwc_metrics_fill(struct lwc_metrics_proc *p, json_object *reply, const struct lwc_suppressions *supp);
/* p->pid set: a process that did not answer (down), named from /proc. */
void lwc_metrics_unanswered(struct lwc_metrics_proc *p);

/* Every family, each process's series in the order given. */
void lwc_metrics_print(FILE *out, const struct lwc_metrics_proc *procs, size_t n);

/* Pieces for further families: "# HELP" and "# TYPE" lines; a series name
 * with the pid and command labels (and one more label when extra is not
 * NULL), without its value; a label value escaped. */
void lwc_metrics_family(FILE *out, const char *name, const char *type, const char *help);
void lwc_metrics_series(FILE *out, const char *name, const struct lwc_metrics_proc *p, const char *extra,
                        const char *value);
void lwc_metrics_print_escaped(FILE *out, const char *value);

#endif
