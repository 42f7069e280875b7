/*
 * history.h — the thread-count history of a process (the reply's "history":
 * one sample per interval, each the most threads seen in it, oldest first)
 * drawn as a sparkline, and the growth alarm: the count keeps climbing and
 * never comes back down. The rule is in history.c and docs/protocol.md.
 */
#ifndef LWC_HISTORY_H
#define LWC_HISTORY_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define LWC_GROWTH_MIN_SAMPLES 8    /* fewer: no judgement yet */
#define LWC_GROWTH_MAX_SAMPLES 64   /* the rule looks at the most recent ones only */
#define LWC_GROWTH_WINDOWS 4        /* consecutive windows ("quarters") compared */
#define LWC_GROWTH_MIN_THREADS 4    /* the floor must rise by at least this much */

struct lwc_growth {
    bool alarm;
    char reason[512];
};

/* The rule, on plain numbers: samples oldest first, interval_s seconds
 * apart. Pure: unit-tested on hand-made histories. */
void lwc_growth_judge(const long *samples, size_t n, double interval_s, struct lwc_growth *out);

/* {"alarm":bool,"reason":"…"} for a reply's "history" object (NULL or
 * malformed: not enough history). New reference. */
json_object *lwc_growth_json(json_object *history);

/* At most `width` marks, one per sample, or per bucket of consecutive
 * samples (its largest) when there are more samples than marks; scaled
 * from the smallest to the largest value. utf8: the block characters
 * ▁▂▃▄▅▆▇█, else the ASCII ".:-=+*#@". Returns the number of marks. */
size_t lwc_sparkline(char *buf, size_t size, const long *samples, size_t n, size_t width, bool utf8);

/* The history's samples as longs (malloc'ed, NULL when none) and the
 * seconds between two of them. */
long *lwc_history_samples(json_object *history, size_t *n, double *interval_s);

/* "4s", "1m04s", "2h03m": for spans in reasons and summaries. */
void lwc_format_span(char *buf, size_t size, double seconds);

#endif
