/*
 * history.c — the sparkline and the growth alarm (history.h).
 *
 * The growth rule. Take the most recent M samples, M the largest multiple of
 * LWC_GROWTH_WINDOWS (4) that is at most min(n, LWC_GROWTH_MAX_SAMPLES = 64);
 * with fewer than LWC_GROWTH_MIN_SAMPLES (8) samples there is no judgement.
 * Cut them into 4 consecutive windows of M/4 samples and take each window's
 * lowest value (its floor) and highest (its peak). The alarm is on when all
 * three hold:
 *   1. the floor rose in every window: floor[k] > floor[k-1], k = 1..3
 *      (the count keeps climbing and never comes back down to where it was);
 *   2. the last floor is above the first window's peak (the climb left the
 *      first window's whole range behind, so it is not noise around a level);
 *   3. the last floor exceeds the first by at least LWC_GROWTH_MIN_THREADS
 *      (4) threads (a pool warming up by a thread or two is not a leak).
 * Each sample is the most threads seen in its interval (the preload keeps
 * the maximum), so a floor is a lower bound of what every interval saw at
 * its busiest: a leak raises it steadily, a busy but healthy pool does not.
 * A pool that grows once and then stays flat fails rule 1 as soon as a
 * whole window is flat.
 */
#include "history.h"
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lwc_format_span(char *buf, size_t size, double s)
{
    if (s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

struct windows {
    long floor[LWC_GROWTH_WINDOWS], peak[LWC_GROWTH_WINDOWS];
    size_t used;   /* samples looked at: M */
};

static void cut_windows(const long *s, size_t n, struct windows *w)
{
    size_t m = n < LWC_GROWTH_MAX_SAMPLES ? n : LWC_GROWTH_MAX_SAMPLES;
    m -= m % LWC_GROWTH_WINDOWS;
    size_t per = m / LWC_GROWTH_WINDOWS;
    const long *first = s + (n - m);
    w->used = m;
    for (size_t k = 0; k < LWC_GROWTH_WINDOWS; k++) {
        w->floor[k] = w->peak[k] = first[k * per];
        for (size_t i = k * per; i < (k + 1) * per; i++) {
            w->floor[k] = first[i] < w->floor[k] ? first[i] : w->floor[k];
            w->peak[k] = first[i] > w->peak[k] ? first[i] : w->peak[k];
        }
    }
}

static bool floors_rise(const struct windows *w)
{
    for (size_t k = 1; k < LWC_GROWTH_WINDOWS; k++)
        if (w->floor[k] <= w->floor[k - 1])
            return false;
    return true;
}

void lwc_growth_judge(const long *s, size_t n, double interval_s, struct lwc_growth *out)
{
    out->alarm = false;
    if (n < LWC_GROWTH_MIN_SAMPLES) {
        snprintf(out->reason, sizeof out->reason, "not enough history yet: %zu %s, %d needed", n,
                 n == 1 ? "sample" : "samples", LWC_GROWTH_MIN_SAMPLES);
        return;
    }
    struct windows w;
    cut_windows(s, n, &w);
    char span[32], floors[128];
    lwc_format_span(span, sizeof span, (double)w.used * interval_s);
    snprintf(floors, sizeof floors, "%ld, %ld, %ld, %ld", w.floor[0], w.floor[1], w.floor[2], w.floor[3]);
    long rise = w.floor[3] - w.floor[0];
    const char *lead = "the lowest count in each quarter of the last";
    if (!floors_rise(&w)) {
        snprintf(out->reason, sizeof out->reason, "%s %s was %s: it did not rise every time", lead, span, floors);
    } else if (w.floor[3] <= w.peak[0]) {
        snprintf(out->reason, sizeof out->reason, "%s %s rose (%s) but stayed within the first quarter's range "
                 "(up to %ld)", lead, span, floors, w.peak[0]);
    } else if (rise < LWC_GROWTH_MIN_THREADS) {
        snprintf(out->reason, sizeof out->reason, "%s %s rose (%s) by only %ld, less than %d threads", lead, span,
                 floors, rise, LWC_GROWTH_MIN_THREADS);
    } else {
        out->alarm = true;
        snprintf(out->reason, sizeof out->reason, "the thread count kept climbing and never came back down: "
                 "%s %s rose every time (%s), +%ld threads, above the first quarter's peak of %ld",
                 lead, span, floors, rise, w.peak[0]);
    }
}

long *lwc_history_samples(json_object *history, size_t *n, double *interval_s)
{
    json_object *arr = lwc_array(history, "threads");
    size_t len = lwc_len(arr), k = 0;
    long *out = len ? calloc(len, sizeof *out) : NULL;
    for (size_t i = 0; out && i < len; i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
            out[k++] = (long)json_object_get_int64(v);
    }
    *n = k;
    *interval_s = (double)lwc_int(history, "interval_ms", 1000) / 1000.0;
    if (*interval_s <= 0)
        *interval_s = 1;
    if (!k) {
        free(out);
        out = NULL;
    }
    return out;
}

json_object *lwc_growth_json(json_object *history)
{
    size_t n;
    double interval;
    long *s = lwc_history_samples(history, &n, &interval);
    struct lwc_growth g;
    lwc_growth_judge(s, n, interval, &g);
    free(s);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "alarm", json_object_new_boolean(g.alarm));
    json_object_object_add(o, "reason", json_object_new_string(g.reason));
    return o;
}

static const char *const blocks[8] = { "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588" };
static const char ascii_marks[] = ".:-=+*#@";

size_t lwc_sparkline(char *buf, size_t size, const long *s, size_t n, size_t width, bool utf8)
{
    size_t len = 0, marks = 0;
    if (size)
        buf[0] = 0;
    if (!n || !width || !size)
        return 0;
    size_t per = (n + width - 1) / width;
    long lo = s[0], hi = s[0];
    for (size_t i = 0; i < n; i++) {
        lo = s[i] < lo ? s[i] : lo;
        hi = s[i] > hi ? s[i] : hi;
    }
    for (size_t start = 0; start < n; start += per) {
        long v = s[start];
        for (size_t i = start; i < n && i < start + per; i++)
            v = s[i] > v ? s[i] : v;
        int level = hi > lo ? (int)((v - lo) * 7 / (hi - lo)) : 0;
        char one[2] = { ascii_marks[level], 0 };
        const char *mark = utf8 ? blocks[level] : one;
        size_t need = strlen(mark);
        if (len + need >= size)
            break;
        memcpy(buf + len, mark, need + 1);
        len += need;
        marks++;
    }
    return marks;
}
