/*
 * metrics.c — `leakwatch metrics [PID]`: the processes under leakwatch in
 * the Prometheus text exposition format, version 0.0.4 (one "# HELP" and one
 * "# TYPE" line per family, then its samples, each series once; every series
 * labelled pid and command). Label values are escaped as the format says
 * (backslash, double quote, line feed), made valid UTF-8 (a bad byte becomes
 * U+FFFD), rid of every other control character (a C0 or C1 control or DEL
 * becomes U+FFFD too: the exposition may well be read on a terminal, and
 * the command comes from the process) and cut at 256 bytes. Every process is asked for its `threads`
 * reply: waits by kind and the oldest stuck wait need the thread list; the
 * stacks are symbolized only when suppressions need them. The exporter
 * (exporter.c) serves the same families over HTTP (metrics.h).
 */
#include "verbs.h"
#include "client.h"
#include "deadline.h"
#include "history.h"
#include "metrics.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LABEL_MAX LWC_LABEL_MAX

static const char *const verdicts[] = { "running", "waiting", "suspect", "leaked", "deadlocked" };
#define NVERDICTS (sizeof verdicts / sizeof verdicts[0])
_Static_assert(NVERDICTS == LWC_NVERDICTS, "metrics.h's verdict count");

/* docs/protocol.md's wait kinds; anything else is counted as "other". */
static const char *const kinds[] = { "mutex", "cond", "rwlock-read", "rwlock-write", "sem", "barrier", "join",
                                     "futex", "fd-read", "fd-write", "poll", "mq-receive", "mq-send", "sleep",
                                     "signal", "child", "socket", "syscall", "other" };
#define NKINDS (sizeof kinds / sizeof kinds[0])
_Static_assert(NKINDS == LWC_NKINDS, "metrics.h's wait kind count");

/* ---- label values ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;   /* overlong, surrogate, beyond U+10FFFF */
    return len;
}

/* A control character a terminal may act on: C0 but the line feed (which
 * the format escapes), DEL, C1 (U+0080..U+009F). */
static bool is_control(const unsigned char *s, size_t len)
{
    return (len == 1 && ((s[0] < 0x20 && s[0] != '\n') || s[0] == 0x7f)) || (len == 2 && s[0] == 0xc2 && s[1] < 0xa0);
}

/* dst (LABEL_MAX + 1 bytes) = src as valid UTF-8 without controls, cut at a
 * character boundary; escaping happens when printed. */
static void set_label(char *dst, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t n = strlen(src), out = 0;
    while (n) {
        size_t len = utf8_length(s, n);
        bool keep = len && !is_control(s, len);
        const char *piece = keep ? (const char *)s : "\xef\xbf\xbd";
        size_t plen = keep ? len : 3;
        if (out + plen > LABEL_MAX)
            break;
        memcpy(dst + out, piece, plen);
        out += plen;
        s += len ? len : 1;
        n -= len ? len : 1;
    }
    dst[out] = 0;
}

void lwc_metrics_print_escaped(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

/* ---- gathering ---- */

/* A process that could not be asked is still named, from /proc. */
void lwc_metrics_unanswered(struct lwc_metrics_proc *p)
{
    char path[64], buf[LABEL_MAX + 1];
    p->up = false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n < 0)
        n = 0;
    for (ssize_t i = 0; i < n; i++)
        buf[i] = buf[i] ? buf[i] : ' ';
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = 0;
    set_label(p->command, buf);
}

static size_t kind_index(const char *kind)
{
    for (size_t i = 0; i + 1 < NKINDS; i++)
        if (kind && strcmp(kind, kinds[i]) == 0)
            return i;
    return NKINDS - 1;
}

static void count_threads(struct lwc_metrics_proc *p, json_object *threads)
{
    for (size_t i = 0; i < lwc_len(threads); i++) {
        json_object *t = json_object_array_get_idx(threads, i), *w = lwc_get(t, "wait");
        if (!w)
            continue;
        p->waits[kind_index(lwc_str(w, "kind", NULL))]++;
        const char *v = lwc_str(t, "verdict", "");
        double secs = lwc_double(w, "seconds", 0);
        if ((strcmp(v, "leaked") == 0 || strcmp(v, "deadlocked") == 0) && secs > p->oldest_stuck)
            p->oldest_stuck = secs;
    }
}

void lwc_metrics_fill(struct lwc_metrics_proc *p, json_object *reply, const struct lwc_suppressions *supp)
{
    json_object *view = lwc_supp_count(supp) ? lwc_explain(reply, supp) : json_object_get(reply);
    json_object *s = lwc_get(view, "summary"), *growth = lwc_growth_json(lwc_get(reply, "history"));
    p->up = true;
    set_label(p->command, lwc_str(reply, "command", ""));
    for (size_t i = 0; i < NVERDICTS; i++)
        p->verdicts[i] = lwc_int(s, verdicts[i], 0);
    p->suppressed = lwc_int(s, "suppressed", 0);
    p->created = lwc_int(reply, "created", 0);
    p->exited = lwc_int(reply, "exited", 0);
    p->peak = lwc_int(reply, "peak", 0);
    p->uptime = lwc_double(reply, "uptime", 0);
    p->growth_alarm = json_object_get_boolean(lwc_get(growth, "alarm"));
    count_threads(p, lwc_array(view, "threads"));
    json_object_put(growth);
    json_object_put(view);
}

static int gather_one(pid_t pid, const struct lwc_suppressions *supp, struct lwc_metrics_proc *p)
{
    json_object *r = lwc_ask_pid(pid, "threads");
    if (!r)
        return EXIT_USAGE;
    p->pid = pid;
    lwc_metrics_fill(p, r, supp);
    lwc_deadline_stop();
    json_object_put(r);
    return EXIT_FINE;
}

/* Every process listed; those gone or not ours are left out, those that
 * fail to answer are kept as down. */
static size_t gather_all(const struct lwc_suppressions *supp, struct lwc_metrics_proc **out)
{
    struct lwc_target *targets;
    size_t n = lwc_list_targets(&targets), k = 0;
    struct lwc_metrics_proc *procs = calloc(n ? n : 1, sizeof *procs);
    for (size_t i = 0; procs && i < n; i++) {
        char err[1024];
        enum lwc_failure why;
        json_object *r = lwc_ask(&targets[i], "threads", &why, err, sizeof err);
        struct lwc_metrics_proc *p = &procs[k];
        p->pid = targets[i].pid;
        if (r)
            lwc_metrics_fill(p, r, supp);
        lwc_deadline_stop();
        if (r) {
            json_object_put(r);
            k++;
        } else if (why == LWC_FAILED) {
            fprintf(stderr, "leakwatch: pid %d: %s\n", (int)targets[i].pid, err);
            lwc_metrics_unanswered(p);
            k++;
        }
    }
    lwc_free_targets(targets, n);
    *out = procs;
    return k;
}

/* ---- printing ---- */

void lwc_metrics_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pid="…",command="…"[,extra="value"]} */
void lwc_metrics_series(FILE *out, const char *name, const struct lwc_metrics_proc *p, const char *extra, const char *value)
{
    fprintf(out, "%s{pid=\"%d\",command=\"", name, (int)p->pid);
    lwc_metrics_print_escaped(out, p->command);
    fputc('"', out);
    if (extra) {
        fprintf(out, ",%s=\"", extra);
        lwc_metrics_print_escaped(out, value);
        fputc('"', out);
    }
    fputc('}', out);
}

static void print_int(FILE *out, const char *name, const struct lwc_metrics_proc *p, long long v)
{
    lwc_metrics_series(out, name, p, NULL, NULL);
    fprintf(out, " %lld\n", v);
}

static void print_seconds(FILE *out, const char *name, const struct lwc_metrics_proc *p, double v)
{
    lwc_metrics_series(out, name, p, NULL, NULL);
    fprintf(out, " %.3f\n", v);
}

static void print_up(FILE *out, const struct lwc_metrics_proc *procs, size_t n)
{
    lwc_metrics_family(out, "leakwatch_up", "gauge", "1 if the process answered leakwatch, 0 if it could not be asked.");
    for (size_t i = 0; i < n; i++)
        print_int(out, "leakwatch_up", &procs[i], procs[i].up);
}

static void print_labelled(FILE *out, const struct lwc_metrics_proc *procs, size_t n)
{
    lwc_metrics_family(out, "leakwatch_threads", "gauge", "Threads by verdict (suppressed threads are not counted here).");
    for (size_t i = 0; i < n; i++)
        for (size_t v = 0; procs[i].up && v < NVERDICTS; v++) {
            lwc_metrics_series(out, "leakwatch_threads", &procs[i], "verdict", verdicts[v]);
            fprintf(out, " %lld\n", procs[i].verdicts[v]);
        }
    lwc_metrics_family(out, "leakwatch_waits", "gauge", "Parked threads by wait kind (suppressed threads are not counted here).");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; procs[i].up && k < NKINDS; k++) {
            lwc_metrics_series(out, "leakwatch_waits", &procs[i], "kind", kinds[k]);
            fprintf(out, " %lld\n", procs[i].waits[k]);
        }
}

static void print_counts(FILE *out, const struct lwc_metrics_proc *procs, size_t n)
{
    static const struct {
        const char *name, *type, *help;
    } f[] = {
        { "leakwatch_threads_suppressed", "gauge", "Threads taken by suppression patterns." },
        { "leakwatch_threads_created_total", "counter", "Threads created since the process started." },
        { "leakwatch_threads_exited_total", "counter", "Threads exited since the process started." },
        { "leakwatch_threads_peak", "gauge", "The most threads the process had at once." },
        { "leakwatch_growth_alarm", "gauge",
          "1 when the thread count keeps climbing and never comes back down (the growth alarm)." },
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        lwc_metrics_family(out, f[k].name, f[k].type, f[k].help);
        for (size_t i = 0; i < n; i++) {
            const struct lwc_metrics_proc *p = &procs[i];
            long long v[] = { p->suppressed, p->created, p->exited, p->peak, p->growth_alarm };
            if (p->up)
                print_int(out, f[k].name, p, v[k]);
        }
    }
}

static void print_durations(FILE *out, const struct lwc_metrics_proc *procs, size_t n)
{
    lwc_metrics_family(out, "leakwatch_oldest_stuck_wait_seconds", "gauge",
           "Seconds the longest-parked leaked or deadlocked thread has waited, 0 if none.");
    for (size_t i = 0; i < n; i++)
        if (procs[i].up)
            print_seconds(out, "leakwatch_oldest_stuck_wait_seconds", &procs[i], procs[i].oldest_stuck);
    lwc_metrics_family(out, "leakwatch_uptime_seconds", "gauge", "Seconds since the preload started in the process.");
    for (size_t i = 0; i < n; i++)
        if (procs[i].up)
            print_seconds(out, "leakwatch_uptime_seconds", &procs[i], procs[i].uptime);
}

void lwc_metrics_print(FILE *out, const struct lwc_metrics_proc *procs, size_t n)
{
    print_up(out, procs, n);
    print_labelled(out, procs, n);
    print_counts(out, procs, n);
    print_durations(out, procs, n);
}

int lwc_cmd_metrics(const struct lwc_options *o)
{
    struct lwc_metrics_proc *procs = NULL;
    size_t n = 1;
    if (o->pid) {
        procs = calloc(1, sizeof *procs);
        if (!procs || gather_one(o->pid, o->supp, procs) != EXIT_FINE) {
            free(procs);
            return EXIT_USAGE;
        }
    } else {
        n = gather_all(o->supp, &procs);
    }
    lwc_metrics_print(stdout, procs, n);
    free(procs);
    return lwc_finish_output(EXIT_FINE);
}
