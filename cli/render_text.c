/*
 * render_text.c — the views for people: the status table, one process's
 * summary, and the thread dump, aggregated by default like Go's goroutine
 * profile (one group per verdict, creation site and wait site, with a count),
 * stuck groups first, so 10,000 identical leaked workers read as one entry.
 */
#include "render.h"
#include "client.h"

#include <stdlib.h>
#include <string.h>

static const char *const verdict_order[] = { "deadlocked", "leaked", "suspect", "waiting", "running" };
#define NVERDICTS 5

static int verdict_rank(const char *v)
{
    for (int i = 0; i < NVERDICTS; i++)
        if (v && strcmp(v, verdict_order[i]) == 0)
            return i;
    return NVERDICTS;
}

static const char *verdict_color(const struct lwc_style *st, const char *v)
{
    if (!st->color || !v)
        return "";
    if (!strcmp(v, "deadlocked") || !strcmp(v, "leaked"))
        return "\033[1;31m";
    if (!strcmp(v, "suspect"))
        return "\033[1;33m";
    return "";
}

static const char *reset(const struct lwc_style *st, const char *v)
{
    return *verdict_color(st, v) ? "\033[0m" : "";
}

static void format_seconds(char *buf, size_t size, double s)
{
    if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%.1fs", s);
}

/* ---- status ---- */

void lwc_render_status_table(FILE *out, json_object **replies, size_t n, const struct lwc_style *st)
{
    if (n == 0) {
        fprintf(out, "no processes under leakwatch\n");
        return;
    }
    fprintf(out, "%-8s %7s %6s %7s %7s %7s %6s %10s  %s\n", "PID", "THREADS", "PARKED", "RUNNING",
            "WAITING", "SUSPECT", "LEAKED", "DEADLOCKED", "COMMAND");
    for (size_t i = 0; i < n; i++) {
        json_object *s = lwc_get(replies[i], "summary");
        long long leaked = lwc_int(s, "leaked", 0), dead = lwc_int(s, "deadlocked", 0);
        const char *c = leaked || dead ? verdict_color(st, "leaked") : "";
        fprintf(out, "%s%-8lld %7lld %6lld %7lld %7lld %7lld %6lld %10lld  %s%s\n", c,
                (long long)lwc_int(replies[i], "pid", 0), (long long)lwc_int(s, "threads", 0),
                (long long)lwc_int(s, "parked", 0), (long long)lwc_int(s, "running", 0),
                (long long)lwc_int(s, "waiting", 0), (long long)lwc_int(s, "suspect", 0), leaked, dead,
                lwc_str(replies[i], "command", "?"), *c ? "\033[0m" : "");
    }
}

static void print_notes(FILE *out, json_object *reply)
{
    json_object *notes = lwc_get(reply, "notes");
    size_t n = notes && json_object_is_type(notes, json_type_array) ? json_object_array_length(notes) : 0;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "note: %s\n", json_object_get_string(json_object_array_get_idx(notes, i)));
}

void lwc_render_status_one(FILE *out, json_object *reply, const struct lwc_style *st)
{
    json_object *s = lwc_get(reply, "summary");
    char up[32];
    format_seconds(up, sizeof up, lwc_double(reply, "uptime", 0));
    fprintf(out, "pid %lld: %s\n", (long long)lwc_int(reply, "pid", 0), lwc_str(reply, "command", "?"));
    fprintf(out, "uptime %s; %lld threads now (peak %lld); %lld created, %lld exited\n", up,
            (long long)lwc_int(s, "threads", 0), (long long)lwc_int(reply, "peak", 0),
            (long long)lwc_int(reply, "created", 0), (long long)lwc_int(reply, "exited", 0));
    fprintf(out, "verdicts:");
    for (int i = NVERDICTS; i-- > 0;) {
        const char *v = verdict_order[i];
        long long count = lwc_int(s, v, 0);
        fprintf(out, " %s%lld %s%s%s", count ? verdict_color(st, v) : "", count, v,
                count ? reset(st, v) : "", i ? "," : "");
    }
    fprintf(out, " (%lld parked)\n", (long long)lwc_int(s, "parked", 0));
    print_notes(out, reply);
}

/* ---- threads ---- */

static void print_stack(FILE *out, const char *title, json_object *frames)
{
    size_t n = frames && json_object_is_type(frames, json_type_array) ? json_object_array_length(frames) : 0;
    if (n == 0)
        return;
    fprintf(out, "    %s:\n", title);
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(frames, i);
        const char *fn = lwc_str(f, "function", NULL), *mod = lwc_str(f, "module", NULL);
        const char *file = lwc_str(f, "file", NULL);
        const char *base = mod ? strrchr(mod, '/') : NULL;
        fprintf(out, "      %s", fn ? fn : "??");
        if (file)
            fprintf(out, " at %s:%lld", file, (long long)lwc_int(f, "line", 0));
        if (mod)
            fprintf(out, " (%s+%s)", base ? base + 1 : mod, lwc_str(f, "offset", "?"));
        else
            fprintf(out, " (%s)", lwc_str(f, "pc", "?"));
        fprintf(out, "\n");
    }
}

static const char *wait_kind(json_object *t)
{
    json_object *w = lwc_get(t, "wait");
    return w ? lwc_str(w, "kind", "?") : "-";
}

static double wait_seconds(json_object *t)
{
    return lwc_double(lwc_get(t, "wait"), "seconds", 0);
}

/* A group key: verdict, wait kind and the two stacks, as text. */
static char *group_key(json_object *t)
{
    const char *ws = json_object_to_json_string_ext(lwc_get(t, "wait_stack"), JSON_C_TO_STRING_PLAIN);
    size_t wl = strlen(ws ? ws : "");
    const char *cs = json_object_to_json_string_ext(lwc_get(t, "create_stack"), JSON_C_TO_STRING_PLAIN);
    size_t cl = strlen(cs ? cs : "");
    size_t size = wl + cl + 64;
    char *key = malloc(size);
    if (key)
        snprintf(key, size, "%s|%s|%s|%s", lwc_str(t, "verdict", "?"), wait_kind(t), ws ? ws : "", cs ? cs : "");
    return key;
}

struct group {
    char *key;
    json_object *first;
    size_t count;
    double longest, shortest;
    int rank;
};

static int compare_groups(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (y->longest > x->longest) - (y->longest < x->longest);
}

static void print_wait_line(FILE *out, json_object *t)
{
    json_object *w = lwc_get(t, "wait");
    if (!w)
        return;
    const char *obj = lwc_str(w, "object", NULL);
    json_object *fd = lwc_get(w, "fd");
    fprintf(out, "    waits on: %s", lwc_str(w, "kind", "?"));
    if (obj)
        fprintf(out, " %s", obj);
    if (fd)
        fprintf(out, " fd %lld", (long long)json_object_get_int64(fd));
    const char *sc = lwc_str(w, "syscall", NULL);
    if (sc)
        fprintf(out, " in %s()", sc);
    fprintf(out, ", timeout: %s", json_object_get_boolean(lwc_get(w, "timeout")) ? "yes" : "no");
    if (lwc_get(w, "owner"))
        fprintf(out, ", owner tid %lld", (long long)lwc_int(w, "owner", 0));
    fprintf(out, "\n");
}

static void print_group(FILE *out, const struct group *g, const struct lwc_style *st)
{
    json_object *t = g->first;
    const char *v = lwc_str(t, "verdict", "?");
    char longest[32], shortest[32];
    format_seconds(longest, sizeof longest, g->longest);
    format_seconds(shortest, sizeof shortest, g->shortest);
    fprintf(out, "%s%zu %s %s%s", verdict_color(st, v), g->count, g->count == 1 ? "thread" : "threads", v, reset(st, v));
    if (lwc_get(t, "wait")) {
        fprintf(out, ", %s", wait_kind(t));
        if (g->count > 1 && strcmp(longest, shortest) != 0)
            fprintf(out, ", parked %s to %s", shortest, longest);
        else
            fprintf(out, ", parked %s", longest);
    }
    const char *name = lwc_str(t, "name", "");
    fprintf(out, "  (e.g. tid %lld%s%s%s)\n", (long long)lwc_int(t, "tid", 0), *name ? " \"" : "", name, *name ? "\"" : "");
    fprintf(out, "    %s\n", lwc_str(t, "reason", ""));
    print_stack(out, "wait stack", lwc_get(t, "wait_stack"));
    print_stack(out, "created at", lwc_get(t, "create_stack"));
    fprintf(out, "\n");
}

static void print_thread(FILE *out, json_object *t, const struct lwc_style *st)
{
    const char *v = lwc_str(t, "verdict", "?");
    char secs[32];
    format_seconds(secs, sizeof secs, wait_seconds(t));
    fprintf(out, "tid %lld \"%s\"%s: %s%s%s, %s", (long long)lwc_int(t, "tid", 0), lwc_str(t, "name", ""),
            json_object_get_boolean(lwc_get(t, "main")) ? " (main)" : "", verdict_color(st, v), v, reset(st, v),
            lwc_str(t, "state", "?"));
    if (lwc_get(t, "wait"))
        fprintf(out, " for %s", secs);
    if (lwc_get(t, "parent"))
        fprintf(out, ", created by tid %lld", (long long)lwc_int(t, "parent", 0));
    fprintf(out, "\n");
    print_wait_line(out, t);
    fprintf(out, "    reason: %s\n", lwc_str(t, "reason", ""));
    const char *routine = lwc_str(lwc_get(t, "start_routine"), "function", NULL);
    if (routine)
        fprintf(out, "    start routine: %s\n", routine);
    print_stack(out, "wait stack", lwc_get(t, "wait_stack"));
    print_stack(out, "created at", lwc_get(t, "create_stack"));
    fprintf(out, "\n");
}

static void print_header(FILE *out, json_object *p, const struct lwc_style *st)
{
    json_object *s = lwc_get(p, "summary");
    fprintf(out, "pid %lld (%s): %lld threads:", (long long)lwc_int(p, "pid", 0), lwc_str(p, "command", "?"),
            (long long)lwc_int(s, "threads", 0));
    const char *sep = " ";
    for (int i = 0; i < NVERDICTS; i++) {
        long long n = lwc_int(s, verdict_order[i], 0);
        if (n) {
            fprintf(out, "%s%s%lld %s%s", sep, verdict_color(st, verdict_order[i]), n, verdict_order[i],
                    reset(st, verdict_order[i]));
            sep = ", ";
        }
    }
    fprintf(out, "\n");
    print_notes(out, p);
    fprintf(out, "\n");
}

void lwc_render_threads(FILE *out, json_object *p, bool all, const struct lwc_style *st)
{
    print_header(out, p, st);
    json_object *threads = lwc_get(p, "threads");
    size_t n = threads && json_object_is_type(threads, json_type_array) ? json_object_array_length(threads) : 0;
    if (all) {
        for (int r = 0; r <= NVERDICTS; r++)
            for (size_t i = 0; i < n; i++) {
                json_object *t = json_object_array_get_idx(threads, i);
                if (verdict_rank(lwc_str(t, "verdict", NULL)) == r)
                    print_thread(out, t, st);
            }
        return;
    }
    struct group *groups = calloc(n ? n : 1, sizeof *groups);
    size_t ng = 0;
    for (size_t i = 0; groups && i < n; i++) {
        json_object *t = json_object_array_get_idx(threads, i);
        char *key = group_key(t);
        if (!key)
            continue;
        size_t g = 0;
        while (g < ng && strcmp(groups[g].key, key) != 0)   /* fine for hundreds of groups */
            g++;
        double secs = wait_seconds(t);
        if (g == ng) {
            groups[ng++] = (struct group){ key, t, 0, secs, secs, verdict_rank(lwc_str(t, "verdict", NULL)) };
        } else {
            free(key);
        }
        groups[g].count++;
        if (secs > groups[g].longest)
            groups[g].longest = secs;
        if (secs < groups[g].shortest)
            groups[g].shortest = secs;
    }
    qsort(groups, ng, sizeof *groups, compare_groups);
    for (size_t g = 0; g < ng; g++) {
        print_group(out, &groups[g], st);
        free(groups[g].key);
    }
    free(groups);
}
