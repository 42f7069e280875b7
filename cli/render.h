/*
 * render.h — the CLI's views of replies: text for people (render_text.c) and
 * the public JSON contract (render_json.c). Both read the same public object.
 */
#ifndef LWC_RENDER_H
#define LWC_RENDER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include "symbolize.h"

struct lwc_style {
    bool color;
    bool utf8;   /* the locale's charset is UTF-8: sparklines in block characters */
};

/* One process object with stacks expanded into symbolized frames, modules
 * and the stack table dropped: the public JSON contract. Made in place:
 * the reply itself, changed (a new reference to it). */
json_object *lwc_public_process(json_object *reply, struct lwc_symbolizer *sym);
void lwc_print_json(FILE *out, json_object *o);

void lwc_render_status_table(FILE *out, json_object **replies, size_t n, const struct lwc_style *st);
void lwc_render_status_one(FILE *out, json_object *reply, const struct lwc_style *st);
/* `public` is the output of lwc_public_process. all: every thread, no groups. */
void lwc_render_threads(FILE *out, json_object *public, bool all, const struct lwc_style *st);

/* "N threads suppressed (PATTERN)" on a line of its own, with an optional
 * prefix, when the object's "suppressed" counts any. */
void lwc_render_suppressed(FILE *out, const char *prefix, json_object *process);

/* The aggregated view's groups: threads with the same verdict, wait kind,
 * wait stack and creation stack. `key` identifies a group across two
 * replies of one process (watch marks the new ones). */
struct lwc_group {
    json_object *first;        /* a member (borrowed from the threads array) */
    size_t count;
    double longest, shortest;  /* seconds parked */
    int rank;                  /* deadlocked 0, leaked 1, suspect 2, waiting 3, running 4 */
    char *key;
};
/* Stuck groups first, then by count and longest park. Free with
 * lwc_free_groups. */
struct lwc_group *lwc_group_threads(json_object *threads, size_t *ngroups);
void lwc_free_groups(struct lwc_group *groups, size_t n);
#define LWC_RANK_SUSPECT 2   /* ranks up to this one are stuck groups */

/* "1m04s", "12.5s": the dump's way of writing durations. */
void lwc_format_seconds(char *buf, size_t size, double seconds);

#endif
