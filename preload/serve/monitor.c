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
 * The tick runs on the server thread under the report lock. The exit report
 * runs on the exiting thread, in our destructor: by then the program's
 * atexit handlers and static destructors have run, so whatever is still
 * parked was never shut down. The exiting thread itself is counted as gone
 * (it will never signal anything again).
 */
#include "serve/jsonw.h"
#include "base/util.h"
#include "serve/history.h"
#include "serve/journal.h"
#include "serve/serve.h"
#include "record/registry.h"
#include "serve/report.h"
#include "core/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_target[512];     /* "", "stderr", "syslog" or a path */
static uint32_t log_interval_ms;
static uint64_t last_log_ns;
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

static void emit_log_line(const char *line)
{
    if (strcmp(log_target, "stderr") == 0) {
        (void)!write(STDERR_FILENO, line, strlen(line));
    } else if (strcmp(log_target, "syslog") == 0) {
        syslog(LOG_DAEMON | LOG_INFO, "%.*s", (int)strlen(line) - 1, line);
    } else {
        int fd = open(log_target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            (void)!write(fd, line, strlen(line));
            close(fd);
        }
    }
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
        if (lw_journal_is_target(log_target))   /* journal.c: structured, never waited for */
            lw_journal_log(line, &snap, &a);
        else
            emit_log_line(line);
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
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < w->len) {
        ssize_t n = write(fd, w->buf + done, w->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            close(fd);
            unlink(path);
            errno = err;
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

void lw_monitor_at_exit(void)
{
    if (!exit_report_dir[0] || !lw_registry_ready())
        return;
    int saved = errno;
    uint64_t start = lw_now_ns();
    struct lw_snapshot snap;
    for (;;) {
        if (lw_snapshot_take(&snap) != 0) {
            errno = saved;
            return;
        }
        count_self_as_gone(&snap);
        /* Judged by the snapshot's own ages; the wall-clock cap is generous,
         * since on a loaded machine a snapshot itself takes a while. */
        if (!has_young_waits(&snap) || lw_now_ns() - start >= 3ull * snap.settle_ms * 1000000u + 1000000000u)
            break;
        lw_snapshot_free(&snap);
        pause_ms(20);
    }
    struct lw_analysis a;
    struct jsonw w;
    jsonw_init(&w);
    int judged = lw_analyze_with_reach(&snap, &a, false);
    uint64_t due = lw_reach_confirmation_due_ns();
    if (judged == 0 && due) {
        /* Unreachable once: the two-scan rule wants a second look a second
         * after the first (which the background prover may have taken). */
        lw_analysis_free(&a);
        lw_snapshot_free(&snap);
        uint64_t now = lw_now_ns();
        if (due > now)
            pause_ms((long)((due - now) / 1000000u) + 1);
        if (lw_snapshot_take(&snap) != 0) {
            jsonw_free(&w);
            errno = saved;
            return;
        }
        count_self_as_gone(&snap);
        judged = lw_analyze_with_reach(&snap, &a, false);
    }
    if (judged == 0) {
        lw_report_process(&w, &snap, &a, LW_REPORT_THREADS);
        lw_analysis_free(&a);
        if (w.failed || write_report_file(&w) != 0) {
            char msg[700];
            int n = snprintf(msg, sizeof msg, "leakwatch: cannot write the exit report to %s: %s\n", exit_report_dir,
                             w.failed ? "out of memory" : strerror(errno));
            (void)!write(STDERR_FILENO, msg, (size_t)(n > 0 && (size_t)n < sizeof msg ? n : 0));
        }
    }
    jsonw_free(&w);
    lw_snapshot_free(&snap);
    errno = saved;
}
