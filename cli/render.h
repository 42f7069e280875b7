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
};

/* One process object with stacks expanded into symbolized frames, modules
 * and the stack table dropped: the public JSON contract. New reference. */
json_object *lwc_public_process(json_object *reply, struct lwc_symbolizer *sym);
void lwc_print_json(FILE *out, json_object *o);

void lwc_render_status_table(FILE *out, json_object **replies, size_t n, const struct lwc_style *st);
void lwc_render_status_one(FILE *out, json_object *reply, const struct lwc_style *st);
/* `public` is the output of lwc_public_process. all: every thread, no groups. */
void lwc_render_threads(FILE *out, json_object *public, bool all, const struct lwc_style *st);

#endif
