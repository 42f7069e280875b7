/*
 * suppress.c — matching threads against suppression patterns (suppress.h).
 *
 * A pattern is a shell glob (fnmatch, no flags: '*' also matches '/' and
 * ':'). It is tried, for every frame of the thread's wait stack and creation
 * stack, against the frame's function name (demangled, as shown), its
 * "FILE:LINE" (the file as the debug info names it, and its base name), and
 * its module's file name (libfoo.so.1); and against the name of the
 * thread's start routine. The first pattern (in the order given) that
 * matches anything takes the thread. Patterns come from --ignore, from
 * --suppressions files and from the file named by LEAKWATCH_SUPPRESSIONS.
 */
#include "suppress.h"
#include "client.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lwc_suppressions {
    char **patterns;
    size_t n, cap;
};

struct lwc_suppressions *lwc_supp_new(void)
{
    return calloc(1, sizeof(struct lwc_suppressions));
}

void lwc_supp_free(struct lwc_suppressions *s)
{
    for (size_t i = 0; s && i < s->n; i++)
        free(s->patterns[i]);
    if (s)
        free(s->patterns);
    free(s);
}

size_t lwc_supp_count(const struct lwc_suppressions *s)
{
    return s ? s->n : 0;
}

bool lwc_supp_add(struct lwc_suppressions *s, const char *pattern)
{
    if (!*pattern)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->patterns[i], pattern) == 0)
            return true;   /* given twice: counted once */
    char **patterns = lwc_room_for_one(s->patterns, &s->cap, s->n, sizeof *patterns, 8);
    if (!patterns)
        return false;
    s->patterns = patterns;
    char *copy = strdup(pattern);
    if (!copy)
        return false;
    s->patterns[s->n++] = copy;
    return true;
}

/* A line of a suppressions file without its comment and surrounding blanks. */
static char *trim_line(char *line)
{
    line[strcspn(line, "#\r\n")] = 0;
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = 0;
    return line;
}

bool lwc_supp_load(struct lwc_suppressions *s, const char *path, char *err, size_t errsize)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errsize, "cannot read suppressions file %s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) >= 0) {
        char *p = trim_line(line);
        if (*p && !lwc_supp_add(s, p)) {
            snprintf(err, errsize, "out of memory reading %s", path);
            ok = false;
        }
    }
    if (ok && ferror(f)) {
        snprintf(err, errsize, "cannot read suppressions file %s: %s", path, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(f);
    return ok;
}

/* ---- matching ---- */

static bool glob(const char *pattern, const char *text)
{
    return text && *text && fnmatch(pattern, text, 0) == 0;
}

static bool frame_matches(const char *pattern, json_object *f)
{
    if (glob(pattern, lwc_str(f, "function", NULL)))
        return true;
    const char *mod = lwc_str(f, "module", NULL), *file = lwc_str(f, "file", NULL);
    const char *base = mod ? strrchr(mod, '/') : NULL;
    if (glob(pattern, base ? base + 1 : mod))
        return true;
    if (!file)
        return false;
    char site[4096];
    const char *fbase = strrchr(file, '/');
    snprintf(site, sizeof site, "%s:%lld", file, (long long)lwc_int(f, "line", 0));
    if (glob(pattern, site))
        return true;
    snprintf(site, sizeof site, "%s:%lld", fbase ? fbase + 1 : file, (long long)lwc_int(f, "line", 0));
    return glob(pattern, site);
}

static bool stack_matches(const char *pattern, json_object *frames)
{
    for (size_t i = 0; i < lwc_len(frames); i++)
        if (frame_matches(pattern, json_object_array_get_idx(frames, i)))
            return true;
    return false;
}

static bool thread_matches(const char *pattern, json_object *t)
{
    return glob(pattern, lwc_str(lwc_get(t, "start_routine"), "function", NULL)) ||
           stack_matches(pattern, lwc_array(t, "wait_stack")) || stack_matches(pattern, lwc_array(t, "create_stack"));
}

const char *lwc_supp_match(const struct lwc_suppressions *s, json_object *thread)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (thread_matches(s->patterns[i], thread))
            return s->patterns[i];
    return NULL;
}

/* ---- applying ---- */

static void add_to(json_object *o, const char *key, int64_t delta)
{
    json_object_object_add(o, key, json_object_new_int64(lwc_int(o, key, 0) + delta));
}

/* A private copy of the summary (the reply's may be shared), minus the
 * suppressed threads' verdicts and parks. */
static void recount(json_object *process, json_object *dropped)
{
    json_object *summary = lwc_get(process, "summary");
    json_object *copy = NULL;
    if (!json_object_is_type(summary, json_type_object) || json_object_deep_copy(summary, &copy, NULL) != 0 ||
        !copy)
        copy = json_object_new_object();
    for (size_t i = 0; i < lwc_len(dropped); i++) {
        json_object *t = json_object_array_get_idx(dropped, i);
        const char *v = lwc_str(t, "verdict", NULL);
        if (v && lwc_get(copy, v))
            add_to(copy, v, -1);
        if (lwc_get(t, "wait") && lwc_get(copy, "parked"))
            add_to(copy, "parked", -1);
    }
    json_object_object_add(copy, "suppressed", json_object_new_int64((int64_t)lwc_len(dropped)));
    json_object_object_add(process, "summary", copy);
}

size_t lwc_supp_apply(const struct lwc_suppressions *s, json_object *process)
{
    json_object *counts = json_object_new_object(), *threads = lwc_array(process, "threads");
    json_object *kept = json_object_new_array(), *dropped = json_object_new_array();
    for (size_t i = 0; s && i < s->n; i++)
        json_object_object_add(counts, s->patterns[i], json_object_new_int64(0));
    for (size_t i = 0; i < lwc_len(threads); i++) {
        json_object *t = json_object_array_get_idx(threads, i);
        const char *p = lwc_supp_match(s, t);
        json_object_array_add(p ? dropped : kept, json_object_get(t));
        if (p)
            add_to(counts, p, 1);
    }
    size_t n = lwc_len(dropped);
    if (threads && n)
        json_object_object_add(process, "threads", json_object_get(kept));
    if (lwc_get(process, "summary") || n)
        recount(process, dropped);
    json_object_object_add(process, "suppressed", counts);
    json_object_put(kept);
    json_object_put(dropped);
    return n;
}

bool lwc_supp_describe(json_object *process, char *buf, size_t size)
{
    json_object *counts = lwc_get(process, "suppressed");
    int64_t total = 0;
    size_t npatterns = 0, len = 0;
    buf[0] = 0;
    if (!counts || !json_object_is_type(counts, json_type_object))
        return false;
    json_object_object_foreach(counts, k1, v1) {
        (void)k1;
        total += json_object_get_int64(v1);
        npatterns += json_object_get_int64(v1) > 0;
    }
    if (total <= 0)
        return false;
    len = (size_t)snprintf(buf, size, "%lld %s suppressed (", (long long)total, total == 1 ? "thread" : "threads");
    const char *sep = "";
    json_object_object_foreach(counts, pattern, count) {
        if (len >= size)
            break;
        if (json_object_get_int64(count) <= 0)
            continue;
        if (npatterns == 1)
            len += (size_t)snprintf(buf + len, size - len, "%s", pattern);
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%s: %lld", sep, pattern,
                                    (long long)json_object_get_int64(count));
        sep = ", ";
    }
    if (len < size)
        snprintf(buf + len, size - len, ")");
    return true;
}
