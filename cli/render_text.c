/*
 * render_text.c — the views for people: the status table, one process's
 * summary, and the thread dump. The dump is aggregated by default like Go's
 * goroutine profile — one group per (verdict, wait kind, wait stack, creation
 * stack) with a count and the range of parked times, stuck groups
 * (deadlocked, leaked, suspect) first — so 10,000 identical leaked workers read
 * as one entry; --all lists every thread (watch shows the same groups, one
 * line each: lwc_group_threads). One process's summary adds the thread-count
 * history as a sparkline and the growth alarm; every view says how many
 * threads suppressions took. Colour marks stuck verdicts and the growth
 * alarm only, and only when the caller's style says so (a terminal, no
 * NO_COLOR). Every string a view holds came from a process: the callers
 * make the view printable first (lwc_view_printable), so that the only
 * escape sequences printed are these colours.
 */
#include "render.h"
#include "client.h"
#include "history.h"
#include "printable.h"
#include "suppress.h"

#include <stdlib.h>
#include <string.h>

static const char *const verdict_order[] = { "deadlocked", "leaked", "suspect", "waiting", "running" };
#define NVERDICTS 5

#define RED "\033[1;31m"
#define YELLOW "\033[1;33m"
#define RESET "\033[0m"

static int verdict_rank(const char *v)
{
    for (int i = 0; i < NVERDICTS; i++)
        if (v && strcmp(v, verdict_order[i]) == 0)
            return i;
    return NVERDICTS;
}

static const char *verdict_color(const struct lwc_style *st, const char *v)
{
    int r = verdict_rank(v);
    if (!st->color || r > 2)
        return "";
    return r == 2 ? YELLOW : RED;
}

static const char *verdict_reset(const struct lwc_style *st, const char *v)
{
    return *verdict_color(st, v) ? RESET : "";
}

void lwc_format_seconds(char *buf, size_t size, double s)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, size, "%dd%02dh", (int)(s / 86400), (int)(s / 3600) % 24);
    else if (s >= 3600)
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%.1fs", s);
}

#define format_seconds lwc_format_seconds

void lwc_render_suppressed(FILE *out, const char *prefix, json_object *process)
{
    char line[1024];
    if (lwc_supp_describe(process, line, sizeof line))
        fprintf(out, "%s%s\n", prefix ? prefix : "", line);
}

static void print_notes(FILE *out, json_object *reply)
{
    json_object *notes = lwc_array(reply, "notes");
    for (size_t i = 0; i < lwc_len(notes); i++) {
        json_object *n = json_object_array_get_idx(notes, i);
        if (n && json_object_is_type(n, json_type_string))
            fprintf(out, "note: %s\n", json_object_get_string(n));
    }
}

/* ---- status ---- */

static bool stuck(json_object *summary)
{
    return lwc_int(summary, "leaked", 0) > 0 || lwc_int(summary, "deadlocked", 0) > 0;
}

void lwc_render_status_table(FILE *out, json_object **replies, size_t n, const struct lwc_style *st)
{
    if (n == 0) {
        fprintf(out, "no processes under leakwatch\n");
        return;
    }
    fprintf(out, "%-8s %7s %6s %7s %7s %7s %6s %10s  %s\n", "PID", "THREADS", "PARKED", "RUNNING", "WAITING",
            "SUSPECT", "LEAKED", "DEADLOCKED", "COMMAND");
    for (size_t i = 0; i < n; i++) {
        json_object *s = lwc_get(replies[i], "summary");
        const char *c = stuck(s) ? verdict_color(st, "leaked")
                                 : lwc_int(s, "suspect", 0) ? verdict_color(st, "suspect") : "";
        fprintf(out, "%s%-8lld %7lld %6lld %7lld %7lld %7lld %6lld %10lld  %s%s\n", c,
                (long long)lwc_int(replies[i], "pid", 0), (long long)lwc_int(s, "threads", 0),
                (long long)lwc_int(s, "parked", 0), (long long)lwc_int(s, "running", 0),
                (long long)lwc_int(s, "waiting", 0), (long long)lwc_int(s, "suspect", 0),
                (long long)lwc_int(s, "leaked", 0), (long long)lwc_int(s, "deadlocked", 0),
                lwc_str(replies[i], "command", "?"), *c ? RESET : "");
    }
    for (size_t i = 0; i < n; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "pid %lld: ", (long long)lwc_int(replies[i], "pid", 0));
        lwc_render_suppressed(out, prefix, replies[i]);
    }
}

/* "0 running, 7 waiting, …" with stuck counts coloured when non-zero. */
static void print_verdict_counts(FILE *out, json_object *s, const struct lwc_style *st, bool skip_zero)
{
    const char *sep = "";
    for (int i = NVERDICTS; i-- > 0;) {
        const char *v = verdict_order[i];
        long long count = lwc_int(s, v, 0);
        if (skip_zero && !count)
            continue;
        fprintf(out, "%s%s%lld %s%s", sep, count ? verdict_color(st, v) : "", count, v,
                count ? verdict_reset(st, v) : "");
        sep = ", ";
    }
}

/* "history: ▁▂▄█ 3 to 24 threads over 12s (a mark per 1s)" */
static void print_history(FILE *out, json_object *history, const struct lwc_style *st)
{
    size_t n;
    double interval;
    long *samples = lwc_history_samples(history, &n, &interval);
    if (!samples) {
        fprintf(out, "history: no samples yet\n");
        return;
    }
    char spark[64 * 4 + 1], span[32], step[32];
    size_t marks = lwc_sparkline(spark, sizeof spark, samples, n, 60, st->utf8);
    lwc_format_span(span, sizeof span, (double)n * interval);
    lwc_format_span(step, sizeof step, interval * (double)((n + marks - 1) / (marks ? marks : 1)));
    fprintf(out, "history: %s %ld to %ld threads over %s (a mark per %s)\n", spark, samples[0], samples[n - 1],
            span, step);
    free(samples);
}

static void print_growth(FILE *out, json_object *growth, const struct lwc_style *st)
{
    if (!growth)
        return;
    bool alarm = json_object_get_boolean(lwc_get(growth, "alarm"));
    fprintf(out, "growth alarm: %s%s%s: %s\n", alarm ? verdict_color(st, "leaked") : "", alarm ? "ON" : "off",
            alarm ? verdict_reset(st, "leaked") : "", lwc_str(growth, "reason", "?"));
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
    fprintf(out, "verdicts: ");
    print_verdict_counts(out, s, st, false);
    fprintf(out, " (%lld parked)\n", (long long)lwc_int(s, "parked", 0));
    print_history(out, lwc_get(reply, "history"), st);
    print_growth(out, lwc_get(reply, "growth"), st);
    lwc_render_suppressed(out, NULL, reply);
    print_notes(out, reply);
}

/* ---- threads: pieces ---- */

/* "name at file:line (module+offset)"; a function inlined into the next
 * frame (same pc) says "(inlined)" instead of repeating the address. */
static void print_frame(FILE *out, json_object *f)
{
    const char *fn = lwc_str(f, "function", NULL), *mod = lwc_str(f, "module", NULL);
    const char *file = lwc_str(f, "file", NULL);
    const char *base = mod ? strrchr(mod, '/') : NULL;
    fprintf(out, "      %s", fn ? fn : "??");
    if (file)
        fprintf(out, " at %s:%lld", file, (long long)lwc_int(f, "line", 0));
    if (json_object_get_boolean(lwc_get(f, "inlined")))
        fprintf(out, " (inlined)");
    else if (mod)
        fprintf(out, " (%s+%s)", base ? base + 1 : mod, lwc_str(f, "offset", "?"));
    else
        fprintf(out, " (%s)", lwc_str(f, "pc", "?"));
    fprintf(out, "\n");
}

static void print_stack(FILE *out, const char *title, json_object *frames)
{
    size_t n = lwc_len(frames);
    if (n == 0)
        return;
    fprintf(out, "    %s:\n", title);
    for (size_t i = 0; i < n; i++)
        print_frame(out, json_object_array_get_idx(frames, i));
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

static const char *thread_verdict(json_object *t)
{
    return lwc_str(t, "verdict", "?");
}

/* "waits on: cond 0x… (mutex 0x…), no timeout, owner tid 12" */
static void print_wait_line(FILE *out, json_object *t)
{
    json_object *w = lwc_get(t, "wait");
    if (!w)
        return;
    const char *obj = lwc_str(w, "object", NULL), *aux = lwc_str(w, "aux", NULL);
    const char *sc = lwc_str(w, "syscall", NULL);
    fprintf(out, "    waits on: %s", lwc_str(w, "kind", "?"));
    if (obj)
        fprintf(out, " %s", obj);
    if (lwc_get(w, "fd"))
        fprintf(out, " fd %lld", (long long)lwc_int(w, "fd", -1));
    if (aux)
        fprintf(out, " (with %s)", aux);
    if (sc)
        fprintf(out, " in %s()", sc);
    if (json_object_get_boolean(lwc_get(w, "timeout"))) {
        json_object *rem = lwc_get(w, "remaining");
        char left[32];
        format_seconds(left, sizeof left, lwc_double(w, "remaining", 0));
        if (rem && lwc_double(w, "remaining", 0) < 0)
            fprintf(out, ", timeout passed");
        else
            fprintf(out, ", timeout%s%s", rem ? " in " : "", rem ? left : "");
    } else {
        fprintf(out, ", no timeout");
    }
    if (lwc_get(w, "owner"))
        fprintf(out, ", owner tid %lld", (long long)lwc_int(w, "owner", 0));
    fprintf(out, "\n");
}

/* "channel: pipe:[123], other end fd 8 here and in pid 77 (cat); made by tid 10 (setup), exited" */
static void print_channel_line(FILE *out, json_object *t)
{
    json_object *w = lwc_get(t, "wait"), *c = lwc_get(w, "channel");
    if (!c)
        return;
    fprintf(out, "    channel: %s", lwc_str(c, "name", "?"));
    const char *klass = lwc_str(w, "class", NULL);
    if (klass)
        fprintf(out, " (%s)", klass);
    json_object *other = lwc_get(c, "other_end"), *fds = lwc_get(other, "fds"), *procs = lwc_get(other, "processes");
    size_t nfds = lwc_len(fds), nprocs = lwc_len(procs);
    if (nfds || nprocs)
        fprintf(out, ", other end:");
    for (size_t i = 0; i < nfds; i++)
        fprintf(out, "%s fd %lld", i ? "," : "", (long long)json_object_get_int64(json_object_array_get_idx(fds, i)));
    if (nfds)
        fprintf(out, " here");
    for (size_t i = 0; i < nprocs; i++) {
        json_object *p = json_object_array_get_idx(procs, i);
        fprintf(out, "%s pid %lld (%s)", i || nfds ? "," : "", (long long)lwc_int(p, "pid", 0), lwc_str(p, "command", "?"));
    }
    json_object *creator = lwc_get(c, "creator");
    if (creator)
        fprintf(out, "; made by tid %lld (%s)%s", (long long)lwc_int(creator, "tid", 0), lwc_str(creator, "name", ""),
                json_object_get_boolean(lwc_get(creator, "exited")) ? ", exited" : "");
    fprintf(out, "\n");
}

/* ---- rule 3: why a candidate's object stays reachable ---- */

static void describe_root(char *buf, size_t size, json_object *root)
{
    const char *kind = lwc_str(root, "kind", "?"), *addr = lwc_str(root, "address", "?");
    long long tid = lwc_int(root, "tid", 0);
    if (strcmp(kind, "data") == 0) {
        const char *symbol = lwc_str(root, "symbol", NULL), *module = lwc_str(root, "module", NULL);
        const char *base = module ? strrchr(module, '/') : NULL;
        if (symbol)
            snprintf(buf, size, "the global %s (%s) at %s", symbol, base ? base + 1 : module ? module : "?", addr);
        else
            snprintf(buf, size, "the data of %s at %s", base ? base + 1 : module ? module : "a module", addr);
    } else if (strcmp(kind, "stack") == 0) {
        uint64_t a = strtoull(addr, NULL, 16), sp = strtoull(lwc_str(root, "sp", "0"), NULL, 16);
        const char *function = lwc_str(root, "function", NULL);
        char in[160] = "";
        if (function)
            snprintf(in, sizeof in, ", in the frame of %s", function);
        if (sp && a >= sp)
            snprintf(buf, size, "the stack of tid %lld at %s, %llu bytes above its stack pointer%s", tid, addr,
                     (unsigned long long)(a - sp), in);
        else
            snprintf(buf, size, "the stack of tid %lld at %s%s", tid, addr, in);
    } else if (strcmp(kind, "tls") == 0) {
        snprintf(buf, size, "a thread-local variable of tid %lld at %s", tid, addr);
    } else if (strcmp(kind, "thread") == 0) {
        snprintf(buf, size, "the thread descriptor (thread-specific data) of tid %lld at %s", tid, addr);
    } else if (strcmp(kind, "registers") == 0) {
        snprintf(buf, size, "a syscall argument of tid %lld (a register)", tid);
    } else {
        const char *name = lwc_str(root, "name", "");
        snprintf(buf, size, "%s%s at %s", *name ? "the mapping " : "anonymous memory", name, addr);
    }
}

static void describe_step(char *buf, size_t size, json_object *step)
{
    const char *kind = lwc_str(step, "kind", "heap"), *block = lwc_str(step, "block", "?");
    long long tid = lwc_int(step, "tid", 0), bytes = lwc_int(step, "size", 0);
    if (strcmp(kind, "heap") == 0 || strcmp(kind, "mmapped") == 0)
        snprintf(buf, size, "%sheap block %s (%lld bytes)", *kind == 'm' ? "mmapped " : "", block, bytes);
    else if (strcmp(kind, "stack") == 0)
        snprintf(buf, size, "the stack of parked tid %lld", tid);
    else if (strcmp(kind, "tls") == 0)
        snprintf(buf, size, "the thread-locals of parked tid %lld", tid);
    else
        snprintf(buf, size, "the descriptor of tid %lld", tid);
}

/* "kept reachable from the global g_pool (app) at 0x…" and the blocks down
 * to the object, one a line. */
static void print_reach_path(FILE *out, json_object *t)
{
    json_object *path = lwc_get(lwc_get(t, "wait"), "reach_path");
    if (!path || !json_object_is_type(path, json_type_object))
        return;
    char root[400];
    describe_root(root, sizeof root, lwc_get(path, "root"));
    bool handle = json_object_get_boolean(lwc_get(path, "by_handle"));
    if (!json_object_get_boolean(lwc_get(path, "complete"))) {
        fprintf(out, "    kept reachable: no root found within the search's limits\n");
        return;
    }
    if (handle)
        fprintf(out, "    may be cancelled: its pthread_t is reachable (pthread_cancel would end the wait), from %s\n",
                root);
    else
        fprintf(out, "    kept reachable from %s\n", root);
    json_object *chain = lwc_array(path, "chain");
    size_t n = lwc_len(chain), total = (size_t)lwc_int(path, "steps", (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        json_object *step = json_object_array_get_idx(chain, i);
        char what[200];
        describe_step(what, sizeof what, step);
        if (i + 1 == n && total > n)
            fprintf(out, "      ... %zu more\n", total - n);
        fprintf(out, "      -> %s, +%lld%s\n", what, (long long)lwc_int(step, "offset", 0),
                i + 1 < n ? "" : handle ? ": its pthread_t" : ": the object");
    }
}

static void print_counterpart(FILE *out, json_object *t)
{
    json_object *c = lwc_get(t, "counterpart");
    if (!c)
        return;
    /* its keys come from the process too, and JSON escapes only C0 controls */
    char *text = lwc_printable(json_object_to_json_string_ext(c, JSON_C_TO_STRING_SPACED |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    fprintf(out, "    counterpart: %s\n", text ? text : "(out of memory)");
    free(text);
}

static void print_thread(FILE *out, json_object *t, const struct lwc_style *st)
{
    const char *v = thread_verdict(t);
    char secs[32];
    format_seconds(secs, sizeof secs, wait_seconds(t));
    fprintf(out, "tid %lld \"%s\"%s: %s%s%s, %s", (long long)lwc_int(t, "tid", 0), lwc_str(t, "name", ""),
            json_object_get_boolean(lwc_get(t, "main")) ? " (main)" : "", verdict_color(st, v), v,
            verdict_reset(st, v), lwc_str(t, "state", "?"));
    if (lwc_get(t, "wait"))
        fprintf(out, " for %s", secs);
    if (lwc_get(t, "parent"))
        fprintf(out, ", created by tid %lld", (long long)lwc_int(t, "parent", 0));
    fprintf(out, "\n");
    print_wait_line(out, t);
    print_channel_line(out, t);
    const char *reason = lwc_str(t, "reason", NULL);
    if (reason && *reason)
        fprintf(out, "    reason: %s\n", reason);
    print_counterpart(out, t);
    print_reach_path(out, t);
    const char *routine = lwc_str(lwc_get(t, "start_routine"), "function", NULL);
    if (routine)
        fprintf(out, "    start routine: %s\n", routine);
    print_stack(out, "wait stack", lwc_array(t, "wait_stack"));
    print_stack(out, "created at", lwc_array(t, "create_stack"));
    print_stack(out, "channel made at", lwc_array(lwc_get(lwc_get(t, "wait"), "channel"), "create_stack"));
    fprintf(out, "\n");
}

/* ---- threads: groups ---- */

struct member {
    char *key;
    json_object *thread;
};


/* Append the frames' pcs to buf (grows it); false when out of memory. */
static bool append_pcs(char **buf, size_t *len, size_t *cap, json_object *frames)
{
    for (size_t i = 0; i < lwc_len(frames); i++) {
        const char *pc = lwc_str(json_object_array_get_idx(frames, i), "pc", "?");
        size_t need = strlen(pc) + 2;
        if (*len + need >= *cap) {
            size_t bigger = (*cap + need) * 2;
            char *p = realloc(*buf, bigger);
            if (!p)
                return false;
            *buf = p;
            *cap = bigger;
        }
        *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s,", pc);
    }
    return true;
}

/* What makes two threads one group: verdict, wait kind (and syscall, for
 * waits without a stack), wait stack and creation stack. */
static char *group_key(json_object *t)
{
    size_t cap = 256, len;
    char *key = malloc(cap);
    if (!key)
        return NULL;
    json_object *w = lwc_get(t, "wait");
    len = (size_t)snprintf(key, cap, "%s|%.60s|%.60s|", thread_verdict(t), wait_kind(t),
                           lwc_str(w, "syscall", ""));
    if (len >= cap)
        len = cap - 1;
    bool ok = append_pcs(&key, &len, &cap, lwc_array(t, "wait_stack"));
    if (ok && len + 2 < cap)
        key[len++] = '|', key[len] = 0;
    ok = ok && append_pcs(&key, &len, &cap, lwc_array(t, "create_stack"));
    if (!ok) {
        free(key);
        return NULL;
    }
    return key;
}

static int compare_members(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    return strcmp(x->key, y->key);
}

static int compare_groups(const void *a, const void *b)
{
    const struct lwc_group *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (x->longest != y->longest)
        return x->longest > y->longest ? -1 : 1;
    return (int)(lwc_int(x->first, "tid", 0) - lwc_int(y->first, "tid", 0));
}

/* Threads sorted by key, then one group per run of equal keys. */
struct lwc_group *lwc_group_threads(json_object *threads, size_t *ngroups)
{
    size_t n = lwc_len(threads), nm = 0, ng = 0;
    struct member *members = calloc(n ? n : 1, sizeof *members);
    struct lwc_group *groups = calloc(n ? n : 1, sizeof *groups);
    for (size_t i = 0; members && groups && i < n; i++) {
        json_object *t = json_object_array_get_idx(threads, i);
        char *key = json_object_is_type(t, json_type_object) ? group_key(t) : NULL;
        if (key)
            members[nm++] = (struct member){ key, t };
    }
    if (nm)
        qsort(members, nm, sizeof *members, compare_members);
    for (size_t i = 0; groups && i < nm; i++) {
        double secs = wait_seconds(members[i].thread);
        if (i == 0 || strcmp(members[i].key, members[i - 1].key) != 0)
            groups[ng++] = (struct lwc_group){ members[i].thread, 0, secs, secs,
                                               verdict_rank(thread_verdict(members[i].thread)),
                                               strdup(members[i].key) };
        struct lwc_group *g = &groups[ng - 1];
        g->count++;
        g->longest = secs > g->longest ? secs : g->longest;
        g->shortest = secs < g->shortest ? secs : g->shortest;
    }
    for (size_t i = 0; members && i < nm; i++)
        free(members[i].key);
    free(members);
    if (ng)
        qsort(groups, ng, sizeof *groups, compare_groups);
    *ngroups = ng;
    return groups;
}

void lwc_free_groups(struct lwc_group *groups, size_t n)
{
    for (size_t i = 0; groups && i < n; i++)
        free(groups[i].key);
    free(groups);
}

static void print_group(FILE *out, const struct lwc_group *g, const struct lwc_style *st)
{
    json_object *t = g->first;
    const char *v = thread_verdict(t);
    char longest[32], shortest[32];
    format_seconds(longest, sizeof longest, g->longest);
    format_seconds(shortest, sizeof shortest, g->shortest);
    fprintf(out, "%s%zu %s %s%s", verdict_color(st, v), g->count, g->count == 1 ? "thread" : "threads", v,
            verdict_reset(st, v));
    if (lwc_get(t, "wait")) {
        fprintf(out, ", %s", wait_kind(t));
        if (strcmp(longest, shortest) != 0)
            fprintf(out, ", parked %s to %s", shortest, longest);
        else
            fprintf(out, ", parked %s", longest);
    }
    const char *name = lwc_str(t, "name", "");
    fprintf(out, "  (%stid %lld%s%s%s)\n", g->count > 1 ? "e.g. " : "", (long long)lwc_int(t, "tid", 0),
            *name ? " \"" : "", name, *name ? "\"" : "");
    const char *reason = lwc_str(t, "reason", NULL);
    if (reason && *reason)
        fprintf(out, "    %s\n", reason);
    if (g->count == 1)
        print_channel_line(out, t);
    print_reach_path(out, t);
    print_stack(out, "wait stack", lwc_array(t, "wait_stack"));
    print_stack(out, "created at", lwc_array(t, "create_stack"));
    fprintf(out, "\n");
}

static void print_header(FILE *out, json_object *p, const struct lwc_style *st)
{
    json_object *s = lwc_get(p, "summary");
    long long n = lwc_int(s, "threads", (int64_t)lwc_len(lwc_array(p, "threads")));
    fprintf(out, "pid %lld (%s): %lld %s", (long long)lwc_int(p, "pid", 0), lwc_str(p, "command", "?"), n,
            n == 1 ? "thread" : "threads");
    if (s) {
        fprintf(out, ": ");
        print_verdict_counts(out, s, st, true);
    }
    fprintf(out, "\n");
    lwc_render_suppressed(out, NULL, p);
    print_notes(out, p);
    fprintf(out, "\n");
}

void lwc_render_threads(FILE *out, json_object *p, bool all, const struct lwc_style *st)
{
    print_header(out, p, st);
    json_object *threads = lwc_array(p, "threads");
    size_t n = lwc_len(threads);
    if (n == 0) {
        fprintf(out, "no threads reported\n");
        return;
    }
    if (all) {
        for (int r = 0; r <= NVERDICTS; r++)
            for (size_t i = 0; i < n; i++) {
                json_object *t = json_object_array_get_idx(threads, i);
                if (json_object_is_type(t, json_type_object) && verdict_rank(thread_verdict(t)) == r)
                    print_thread(out, t, st);
            }
        return;
    }
    size_t ng = 0;
    struct lwc_group *groups = lwc_group_threads(threads, &ng);
    for (size_t g = 0; g < ng; g++)
        print_group(out, &groups[g], st);
    lwc_free_groups(groups, ng);
}
