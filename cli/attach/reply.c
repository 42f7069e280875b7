/*
 * reply.c — what was judged from outside, as the preload's reply
 * (docs/protocol.md), written by the same writer (serve/report_snapshot.c)
 * so that both say the same thing the same way; plus "source" ("attach" or
 * "core") and "attach" (what the freeze did). What attach cannot know is
 * null: created, exited, peak, history.
 */
#include "attach/judge.h"
#include "serve/jsonw.h"
#include "serve/report.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void lwa_add_note(struct lwa_notes *n, const char *fmt, ...)
{
    if (n->n == LWA_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text[n->n], sizeof n->text[n->n], fmt, ap);
    va_end(ap);
    n->v[n->n] = n->text[n->n];
    n->n++;
}

static void write_stacks(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "stacks");
    jsonw_begin_object(w);
    for (size_t i = 0; i < snap->nstacks; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", snap->stacks[i].id);
        jsonw_key(w, id);
        jsonw_begin_array(w);
        for (uint32_t k = 0; k < snap->stacks[i].depth && k < LW_MAX_FRAMES; k++)
            jsonw_hex(w, snap->stacks[i].pcs[k]);
        jsonw_end_array(w);
    }
    jsonw_end_object(w);
}

static void write_nulls(struct jsonw *w)
{
    static const char *const unknown[] = { "created", "exited", "peak", "history" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        jsonw_key(w, unknown[i]);
        jsonw_null(w);
    }
}

static void write_process(struct jsonw *w, const struct lwa_subject *s, const struct lwa_judgement *j,
                          const char *const *notes, size_t nnotes)
{
    jsonw_begin_object(w);
    jsonw_key(w, "version");
    jsonw_int(w, 1);
    jsonw_key(w, "pid");
    jsonw_int(w, s->pid);
    jsonw_key(w, "source");
    jsonw_string(w, s->kind);
    jsonw_key(w, "command");
    jsonw_string(w, s->command);
    jsonw_key(w, "exe");
    if (s->exe[0])
        jsonw_string(w, s->exe);
    else
        jsonw_null(w);
    jsonw_key(w, "uptime");
    if (s->uptime >= 0)
        jsonw_double(w, s->uptime);
    else
        jsonw_null(w);
    lw_report_write_settings(w, &j->snap);
    lw_report_write_summary(w, &j->snap, &j->analysis);
    write_nulls(w);
    jsonw_key(w, "notes");
    jsonw_begin_array(w);
    for (size_t i = 0; i < nnotes; i++)
        jsonw_string(w, notes[i]);
    lw_report_write_judgement_notes(w, &j->snap, &j->analysis);
    jsonw_end_array(w);
    write_stacks(w, &j->snap);
    lw_report_write_paths(w, &j->snap);
    lw_report_write_threads(w, &j->snap, &j->analysis);
    lw_report_write_exited(w, &j->snap);
    jsonw_end_object(w);
}

json_object *lwa_reply(const struct lwa_subject *s, const struct lwa_judgement *j, const char *const *notes,
                       size_t nnotes, json_object *attach_facts, char *why, size_t size)
{
    struct jsonw w;
    jsonw_init(&w);
    write_process(&w, s, j, notes, nnotes);
    json_object *reply = NULL;
    if (!w.failed && w.buf && w.len < INT_MAX)
        reply = json_tokener_parse(w.buf);
    jsonw_free(&w);
    if (!reply || !json_object_is_type(reply, json_type_object)) {
        snprintf(why, size, "out of memory writing the reply");
        json_object_put(reply);
        json_object_put(attach_facts);
        return NULL;
    }
    json_object_object_add(reply, "modules", lwa_stacks_modules(s->stacks));
    json_object_object_add(reply, "attach", attach_facts);
    return reply;
}
