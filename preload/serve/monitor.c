/*
 * monitor.c — what the preload does on its own, without being asked: the
 * thread-count history (history.c, sampled on the server's tick),
 * the background prover (reachability scans started by the preload itself
 * when waits on memory settle, so that the first question a person asks
 * already finds the two scans rule 3 needs), the periodic log line
 * (LEAKWATCH_LOG=stderr|syslog|PATH, every LEAKWATCH_LOG_INTERVAL_MS), and
 * the report written at exit for `leakwatch run --check`
 * (LEAKWATCH_EXIT_REPORT=DIR).
 *
 * The tick runs on the server thread under the report lock; the log line it
 * makes is written after the lock is released (lw_monitor_flush_log), and
 * never blocks (output.c): a FIFO or a stalled pipe named by LEAKWATCH_LOG
 * once held the lock for good, and with it the program's fork() and exit.
 * The exit report runs on the exiting thread, in our destructor: by then the
 * program's atexit handlers and static destructors have run, so whatever is
 * still parked was never shut down. The exiting thread itself is counted as
 * gone (it will never signal anything again). It holds the report lock only
 * to judge, never while it waits or writes.
 */
#include "serve/jsonw.h"
#include "base/util.h"
#include "serve/history.h"
#include "serve/journal.h"
#include "serve/output.h"
#include "serve/reportlock.h"
#include "serve/serve.h"
#include "record/registry.h"
#include "serve/report.h"
#include "core/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char log_target[512];     /* "", "stderr", "syslog", "journal", "fifo:PATH" or a path */
static uint32_t log_interval_ms;
static uint64_t last_log_ns;
static char pending_line[512];   /* made under the report lock, written after it */
static bool log_complained;      /* the target was refused or failed once: said so once */
static char exit_report_dir[512];

void lw_monitor_init(void)
{
    lw_setting_string("LEAKWATCH_LOG", log_target, sizeof log_target);
    lw_setting_string("LEAKWATCH_EXIT_REPORT", exit_report_dir, sizeof exit_report_dir);
    log_interval_ms = lw_setting_ms("LEAKWATCH_LOG_INTERVAL_MS", 60000, 1000);   /* the server ticks once a second */
    lw_history_init(lw_setting_ms("LEAKWATCH_HISTORY_MS", 1000, 1000));
}

bool lw_monitor_wants_server_now(void) { return log_target[0] != 0; }

/* ---- the background prover ----
 * Rule 3 needs two scans at least a second apart; a person asks once. So
 * the preload scans by itself: when the settled waits on memory change
 * (a new candidate, typically a worker abandoned a moment ago), and, while
 * nothing changes, again after 1, 2, 4 ... up to PROVER_MAX_NS (an object
 * can become unreachable while its waiter sleeps on: a caller that gives
 * up later); and a second time once a finding can be confirmed. Its cost
 * is bounded: never more often than PROVER_CPU_SHARE of one CPU, measured
 * by each pass's own CPU time, snapshot and analysis included (a scan of a
 * huge heap waits longer). A
 * query that finds a finding not yet confirmed waits for that scan itself
 * (server.c), so the budget only delays the background, never a proof. */
#define PROVER_MAX_NS 64000000000ull
#define PROVER_CPU_SHARE 400u    /* at most 1/400 of a CPU: 0.25% */

static struct {
    uint64_t fingerprint;    /* the settled waits on memory at the last scan */
    size_t count;
    uint64_t last_ns;        /* the last scan of ours */
    uint64_t interval_ns;    /* the back-off while nothing changes */
    uint64_t next_ns;
    uint64_t pass_cpu_ns;    /* the CPU time our last pass took */
} prover;

static void prove_in_background(uint64_t now)
{
    size_t count;
    uint64_t fingerprint = lw_snapshot_memory_waits(now, lw_settings.settle_ms, &count);
    bool changed = fingerprint != prover.fingerprint || count != prover.count;
    uint64_t due = lw_reach_confirmation_due_ns(), budget = prover.pass_cpu_ns * PROVER_CPU_SHARE;
    if (!due || now < due) {
        if (!count) {
            prover.fingerprint = fingerprint;
            prover.count = 0;
            return;
        }
        bool backed_off = now >= prover.next_ns, affordable = now >= prover.last_ns + budget;
        if (!backed_off && !(changed && affordable))
            return;
    }
    struct lw_snapshot snap;
    struct lw_analysis a;
    uint64_t cpu0 = lw_thread_cpu_ns();
    if (lw_snapshot_take(&snap) != 0)
        return;
    if (lw_analyze_with_reach(&snap, &a, false) == 0)
        lw_analysis_free(&a);
    lw_snapshot_free(&snap);
    /* the whole pass (snapshot, analysis, scan) is what the program pays */
    prover.pass_cpu_ns = lw_thread_cpu_ns() - cpu0;
    prover.fingerprint = fingerprint;
    prover.count = count;
    prover.last_ns = now;
    prover.interval_ns = changed || !prover.interval_ns ? 1000000000ull
                       : prover.interval_ns * 2 < PROVER_MAX_NS ? prover.interval_ns * 2 : PROVER_MAX_NS;
    budget = prover.pass_cpu_ns * PROVER_CPU_SHARE;
    prover.next_ns = now + (prover.interval_ns > budget ? prover.interval_ns : budget);
}

/* A fork child starts its own history. */
void lw_monitor_fork_child(void)
{
    lw_history_fork_child();
    last_log_ns = 0;
    pending_line[0] = 0;
    memset(&prover, 0, sizeof prover);
}

/* ---- the periodic log line ---- */

static void format_log_line(char *line, size_t size, const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    snprintf(line, size,
             "leakwatch: pid %d: %zu threads: %zu running, %zu waiting, %zu suspect, %zu leaked, %zu deadlocked; "
             "created %llu, exited %llu, peak %u\n",
             (int)snap->pid, snap->nthreads, a->counts[LW_RUNNING], a->counts[LW_WAITING], a->counts[LW_SUSPECT],
             a->counts[LW_LEAKED], a->counts[LW_DEADLOCKED], (unsigned long long)snap->created,
             (unsigned long long)snap->exited, snap->peak);
}

#define FIFO_PREFIX "fifo:"

/* Once, on stderr: why the log goes nowhere. */
static void complain_about_log(enum lw_append result, const char *path, bool fifo)
{
    if (log_complained || result == LW_APPEND_WRITTEN || result == LW_APPEND_DROPPED)
        return;
    log_complained = true;
    char msg[700];
    int n = snprintf(msg, sizeof msg, "leakwatch: LEAKWATCH_LOG=%s%s: %s; not logging there\n", fifo ? FIFO_PREFIX : "",
                     path, result == LW_APPEND_FAILED ? strerror(errno)
                           : fifo ? "not a FIFO or character device" : "not a regular file (fifo:PATH writes to a FIFO)");
    lw_output_stderr(msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
}

/* Without blocking, and never with the report lock held. */
static void emit_log_line(const char *line)
{
    bool fifo = strncmp(log_target, FIFO_PREFIX, strlen(FIFO_PREFIX)) == 0;
    const char *path = fifo ? log_target + strlen(FIFO_PREFIX) : log_target;
    if (strcmp(log_target, "stderr") == 0) {
        lw_output_stderr(line, strlen(line));
    } else if (strcmp(log_target, "syslog") == 0) {
        char message[sizeof pending_line];
        snprintf(message, sizeof message, "%.*s", (int)strcspn(line, "\n"), line);
        lw_output_syslog(message);
    } else {
        complain_about_log(lw_output_append(path, fifo, line, strlen(line)), path, fifo);
    }
}

/* On the server thread, after the tick, the report lock released. */
void lw_monitor_flush_log(void)
{
    if (!pending_line[0])
        return;
    emit_log_line(pending_line);
    pending_line[0] = 0;
}

/* A line is held back (at most LOG_HOLD_NS) while a finding waits for the
 * scan that may confirm it: the line then says what a second look says. */
#define LOG_HOLD_NS 2500000000ull

static void log_if_due(uint64_t now)
{
    static uint64_t held_since;
    if (!log_target[0] || (last_log_ns && now - last_log_ns < (uint64_t)log_interval_ms * 1000000u))
        return;
    uint64_t due = lw_reach_confirmation_due_ns();
    if (due && due > now && (!held_since || now - held_since < LOG_HOLD_NS)) {
        held_since = held_since ? held_since : now;
        return;
    }
    held_since = 0;
    last_log_ns = now;
    struct lw_snapshot snap;
    struct lw_analysis a;
    if (lw_snapshot_take(&snap) != 0)
        return;
    if (lw_analyze_with_reach(&snap, &a, false) == 0) {
        char line[512];
        format_log_line(line, sizeof line, &snap, &a);
        if (lw_journal_is_target(log_target))   /* journal.c: structured, handed over, never waited for */
            lw_journal_log(line, &snap, &a);
        else   /* written by lw_monitor_flush_log, the report lock released */
            memcpy(pending_line, line, sizeof pending_line);
        lw_analysis_free(&a);
    }
    lw_snapshot_free(&snap);
}

/* On the server thread, about once a second, under the report lock. */
void lw_monitor_tick(void)
{
    uint64_t now = lw_now_ns();
    lw_history_sample(now, lw_registry_live());
    prove_in_background(now);
    log_if_due(now);
}

/* ---- the exit report ---- */

/* The exiting thread will never wake anyone: report it as exited. */
static void count_self_as_gone(struct lw_snapshot *snap)
{
    pid_t self = lw_gettid();
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (snap->threads[i].tid != self)
            continue;
        struct lw_snap_exited gone = { .tid = self, .exited_ago = 0, .start_routine = snap->threads[i].start_routine,
                                       .create_stack = snap->threads[i].create_stack };
        memcpy(gone.name, snap->threads[i].name, sizeof gone.name);
        memmove(&snap->threads[i], &snap->threads[i + 1], (snap->nthreads - i - 1) * sizeof *snap->threads);
        snap->nthreads--;
        if (snap->nexited == LW_EXIT_RING)
            snap->nexited--;   /* the oldest goes */
        memmove(&snap->exited_threads[1], &snap->exited_threads[0], snap->nexited * sizeof *snap->exited_threads);
        snap->exited_threads[0] = gone;   /* newest first */
        snap->nexited++;
        return;
    }
}

/* Parked threads whose waits are younger than the settle time are not
 * judged; at exit, give them that time (at most the settle time). */
static bool has_young_waits(const struct lw_snapshot *snap)
{
    for (size_t i = 0; i < snap->nthreads; i++)
        if (snap->threads[i].waiting && snap->threads[i].wait.seconds * 1000 < snap->settle_ms)
            return true;
    return false;
}

static void pause_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    lw_raw_syscall6(SYS_nanosleep, (long)&t, 0, 0, 0, 0, 0);
}

static int write_report_file(const struct jsonw *w)
{
    char path[600];
    snprintf(path, sizeof path, "%s/leakwatch-exit.%d.json", exit_report_dir, (int)getpid());
    return lw_output_create(path, w->buf, w->len);
}

enum exit_judgement { EXIT_NOT_JUDGED, EXIT_TOO_YOUNG, EXIT_AWAITS_CONFIRMATION, EXIT_RENDERED };

/* One look, under the report lock (and only that long): a snapshot with
 * the exiting thread counted as gone, judged and rendered into w; unless
 * some wait is younger than the settle time (and may_wait_young), or a
 * finding's confirming scan is due at *due (and may_wait_confirmation). */
static enum exit_judgement judge_exit_once(struct jsonw *w, bool may_wait_young, bool may_wait_confirmation,
                                           uint64_t *due)
{
    struct lw_snapshot snap;
    struct lw_analysis a;
    enum exit_judgement result = EXIT_NOT_JUDGED;
    lw_reports_lock();
    if (lw_snapshot_take(&snap) == 0) {
        count_self_as_gone(&snap);
        if (may_wait_young && has_young_waits(&snap)) {
            result = EXIT_TOO_YOUNG;
        } else if (lw_analyze_with_reach(&snap, &a, false) == 0) {
            *due = lw_reach_confirmation_due_ns();
            if (may_wait_confirmation && *due) {
                result = EXIT_AWAITS_CONFIRMATION;
            } else {
                lw_report_process(w, &snap, &a, LW_REPORT_THREADS);
                result = EXIT_RENDERED;
            }
            lw_analysis_free(&a);
        }
        lw_snapshot_free(&snap);
    }
    lw_reports_unlock();
    return result;
}

/* Young waits get the settle time (judged by the snapshot's own ages; the
 * wall-clock cap is generous, since on a loaded machine a snapshot itself
 * takes a while); something unreachable once gets its second look a second
 * after the first (which the background prover may have taken). The waits
 * happen without the lock. false: nothing to report (out of memory). */
static bool judge_exit(struct jsonw *w)
{
    uint64_t start = lw_now_ns(), cap = 3ull * lw_settings.settle_ms * 1000000u + 1000000000u, due = 0;
    bool may_wait_confirmation = true;
    for (;;) {
        switch (judge_exit_once(w, lw_now_ns() - start < cap, may_wait_confirmation, &due)) {
        case EXIT_NOT_JUDGED:
            return false;
        case EXIT_RENDERED:
            return true;
        case EXIT_TOO_YOUNG:
            pause_ms(20);
            break;
        case EXIT_AWAITS_CONFIRMATION:
            may_wait_confirmation = false;
            uint64_t now = lw_now_ns();
            if (due > now)
                pause_ms((long)((due - now) / 1000000u) + 1);
            break;
        }
    }
}

/* The destructor's: the report lock is taken only to judge. */
void lw_monitor_at_exit(void)
{
    if (!exit_report_dir[0] || !lw_registry_ready())
        return;
    int saved = errno;
    struct jsonw w;
    jsonw_init(&w);
    if (judge_exit(&w) && (w.failed || write_report_file(&w) != 0)) {
        char msg[700];
        int n = snprintf(msg, sizeof msg, "leakwatch: cannot write the exit report to %s: %s\n", exit_report_dir,
                         w.failed ? "out of memory" : strerror(errno));
        lw_output_stderr(msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
    }
    jsonw_free(&w);
    errno = saved;
}
