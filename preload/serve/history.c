/*
 * history.c — the thread count over the whole run: sampled on the server's
 * tick (monitor.c) into a bounded ring that halves its resolution when full
 * (each kept sample the most threads seen in its interval), so it always
 * spans the whole run; written into every process report (report.c), where
 * the CLI draws the sparkline and judges the growth alarm.
 */
#include "serve/history.h"
#include "base/util.h"
#include "serve/jsonw.h"

#define HISTORY_SLOTS 720

static struct {
    uint32_t samples[HISTORY_SLOTS];
    uint32_t n;
    uint32_t interval_ms;    /* between two kept samples (doubles when the ring is compacted) */
    uint32_t pending_max;    /* the largest count seen since the last kept sample */
    uint64_t last_ns;
    uint64_t first_ns;
} history;

void lw_history_init(uint32_t interval_ms)
{
    history.interval_ms = interval_ms;
    history.n = 0;
    history.pending_max = 0;
    history.last_ns = history.first_ns = 0;
}

void lw_history_fork_child(void) { lw_history_init(history.interval_ms); }

/* Halve the resolution: every pair of samples becomes its larger one. */
static void compact_history(void)
{
    for (uint32_t i = 0; i < history.n / 2; i++) {
        uint32_t a = history.samples[2 * i], b = history.samples[2 * i + 1];
        history.samples[i] = a > b ? a : b;
    }
    if (history.n % 2)
        history.samples[history.n / 2] = history.samples[history.n - 1];
    history.n = (history.n + 1) / 2;
    history.interval_ms *= 2;
}

void lw_history_sample(uint64_t now, uint32_t live)
{
    if (live > history.pending_max)
        history.pending_max = live;
    if (history.n && now - history.last_ns < (uint64_t)history.interval_ms * 1000000u)
        return;
    if (history.n == HISTORY_SLOTS)
        compact_history();
    if (!history.n)
        history.first_ns = now;
    history.samples[history.n++] = history.pending_max;
    history.pending_max = 0;
    history.last_ns = now;
}

void lw_history_write(struct jsonw *w)
{
    jsonw_key(w, "history");
    jsonw_begin_object(w);
    jsonw_key(w, "interval_ms");
    jsonw_uint(w, history.interval_ms);
    jsonw_key(w, "span");
    jsonw_double(w, history.n ? (double)(lw_now_ns() - history.first_ns) / 1e9 : 0);
    jsonw_key(w, "threads");   /* oldest first; each the most seen in its interval */
    jsonw_begin_array(w);
    for (uint32_t i = 0; i < history.n; i++)
        jsonw_uint(w, history.samples[i]);
    jsonw_end_array(w);
    jsonw_end_object(w);
}
