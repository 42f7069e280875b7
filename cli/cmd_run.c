/*
 * cmd_run.c — `leakwatch run [--check] [--settle MS] [--timeout S] -- CMD
 * ARGS`: runs CMD under the preload and, with --check, fails on threads
 * leaked or deadlocked at exit (goleak's VerifyNone for C test suites).
 *
 * CMD runs in a process group of its own, so that a hung CMD is killed with
 * whatever it started; when run is the terminal's foreground job, the
 * terminal is handed to that group for the run (so CMD can read it and
 * Ctrl-C / Ctrl-Z reach it) and taken back after, and a CMD stopped by the
 * terminal stops run the same way, as a shell's job would, and is continued
 * with it. run blocks the signals it cares about and takes them with
 * sigtimedwait: SIGCHLD (CMD changed state), SIGCONT (run was continued),
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT (passed on to CMD's group), and the
 * --timeout deadline. PR_SET_PDEATHSIG kills CMD if run itself is killed.
 *
 * With --check, every process of the run writes LEAKWATCH_EXIT_REPORT/
 * leakwatch-exit.PID.json at a normal exit (the `threads` reply, the exiting
 * thread counted as gone); run reads them all when CMD has exited and prints
 * the stuck threads of each on stderr. With --timeout, run asks the
 * processes of the run (the sockets of its private LEAKWATCH_DIR) before it
 * kills them. The report goes to stderr so that CMD's stdout stays its own.
 */
#include "verbs.h"
#include "client.h"
#include "deadline.h"
#include "replybound.h"
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUN_SETTLE_MS 100    /* see --help: exit reports must judge waits that began just before exit */
#define KILL_GRACE_S 2.0

struct run {
    const struct lwc_options *o;
    struct lwc_run_plan plan;
    bool checking;        /* --check or --timeout: private directories */
    pid_t child;
    int tty;              /* the terminal handed to CMD's group, or -1 */
    bool stopped;         /* CMD stopped from the terminal; continued with run */
    sigset_t waited, orig_mask;
    int status;           /* CMD's wait status */
    struct lwc_style st;  /* for stderr */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- CMD's environment ---- */

/* LEAKWATCH_PRELOAD_PREFIX (a testing aid: the sanitizer runtime must be
 * first), whatever LD_PRELOAD already held, then libleakwatch.so. */
static void set_ld_preload(const char *ours)
{
    const char *prefix = getenv("LEAKWATCH_PRELOAD_PREFIX"), *had = getenv("LD_PRELOAD");
    size_t size = strlen(ours) + (prefix ? strlen(prefix) : 0) + (had ? strlen(had) : 0) + 3;
    char *v = malloc(size);
    if (!v)
        _exit(126);
    snprintf(v, size, "%s%s%s%s%s", prefix && *prefix ? prefix : "", prefix && *prefix ? ":" : "",
             had && *had ? had : "", had && *had ? ":" : "", ours);
    setenv("LD_PRELOAD", v, 1);
    free(v);
}

static void set_child_environment(const struct run *r)
{
    char settle[32];
    set_ld_preload(r->plan.preload);
    if (r->checking)
        setenv("LEAKWATCH_DIR", r->plan.sockdir, 1);
    if (r->o->check)
        setenv("LEAKWATCH_EXIT_REPORT", r->plan.reports, 1);
    if (r->o->settle_ms >= 0 || r->checking) {
        snprintf(settle, sizeof settle, "%ld", r->o->settle_ms >= 0 ? r->o->settle_ms : (long)RUN_SETTLE_MS);
        setenv("LEAKWATCH_SETTLE_MS", settle, 1);
    }
}

/* ---- starting ---- */

/* In the child: its own group (with the terminal), the old mask, exec. An
 * exec failure is reported through the CLOEXEC pipe. */
static void exec_child(const struct run *r, int report_fd)
{
    pid_t parent = getppid();
    setpgid(0, 0);
    if (r->tty >= 0)
        tcsetpgrp(r->tty, getpid());
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);   /* run already died */
    sigprocmask(SIG_SETMASK, &r->orig_mask, NULL);
    set_child_environment(r);
    execv(r->plan.exe, r->o->cmd);
    int e = errno;
    (void)!write(report_fd, &e, sizeof e);
    _exit(e == ENOENT ? 127 : 126);
}

/* The terminal to hand over: stdin's, when run is its foreground job. */
static int foreground_terminal(void)
{
    if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
        return -1;
    return STDIN_FILENO;
}

static int start(struct run *r)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        fprintf(stderr, "leakwatch run: pipe: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    r->tty = foreground_terminal();
    r->child = fork();
    if (r->child == 0)
        exec_child(r, pipefd[1]);
    close(pipefd[1]);
    if (r->child < 0) {
        close(pipefd[0]);
        fprintf(stderr, "leakwatch run: fork: %s\n", strerror(errno));
        return EXIT_USAGE;
    }
    setpgid(r->child, r->child);   /* both sides, whoever runs first */
    if (r->tty >= 0)
        tcsetpgrp(r->tty, r->child);
    int e = 0;
    ssize_t n;
    while ((n = read(pipefd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    if (n == (ssize_t)sizeof e) {
        fprintf(stderr, "leakwatch run: %s: %s\n", r->plan.exe, strerror(e));
        waitpid(r->child, NULL, 0);
        return e == ENOENT ? 127 : 126;
    }
    return EXIT_FINE;
}

/* ---- waiting ---- */

static void take_terminal_back(struct run *r)
{
    if (r->tty >= 0)
        tcsetpgrp(r->tty, getpgrp());   /* SIGTTOU is blocked */
}

/* run was continued (or its stop did not happen): CMD continues too, with
 * the terminal if run is in the foreground now. */
static void follow_continue(struct run *r)
{
    if (!r->stopped)
        return;
    r->stopped = false;
    r->tty = foreground_terminal();
    if (r->tty >= 0)
        tcsetpgrp(r->tty, r->child);
    kill(-r->child, SIGCONT);
}

/* CMD stopped by the terminal (Ctrl-Z, or reading or writing it from the
 * background): stop too, so that the shell sees the job stop;
 * `fg` or `bg` continues run, and run continues CMD. Other stops (SIGSTOP
 * from a debugger) are CMD's own business. */
static void follow_stop(struct run *r, int sig)
{
    struct sigaction tstp;
    if ((sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) || sigaction(SIGTSTP, NULL, &tstp) != 0 ||
        tstp.sa_handler == SIG_IGN)
        return;   /* (no job control above us: CMD stays stopped, as it would without run) */
    r->stopped = true;
    take_terminal_back(r);
    raise(SIGTSTP);   /* not SIGTTOU: it is blocked here */
    follow_continue(r);
}

/* true when CMD has exited (r->status set). */
static bool reap(struct run *r)
{
    int status;
    pid_t got;
    while ((got = waitpid(r->child, &status, WNOHANG | WUNTRACED)) < 0 && errno == EINTR)
        ;
    if (got != r->child)
        return false;
    if (WIFSTOPPED(status)) {
        follow_stop(r, WSTOPSIG(status));
        return false;
    }
    r->status = status;
    return true;
}

static void pass_on(const struct run *r, int sig)
{
    if (kill(-r->child, sig) != 0)
        kill(r->child, sig);
}

/* Until CMD exits (true) or the deadline passes (false; 0: none). */
static bool wait_for_exit(struct run *r, double deadline)
{
    for (;;) {
        if (reap(r))
            return true;
        siginfo_t si;
        int sig;
        if (deadline > 0) {
            double left = deadline - now_s();
            if (left <= 0)
                return false;
            struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
            sig = sigtimedwait(&r->waited, &si, &ts);
        } else {
            sig = sigwaitinfo(&r->waited, &si);
        }
        if (sig == SIGCONT)
            follow_continue(r);
        else if (sig > 0 && sig != SIGCHLD)
            pass_on(r, sig);
    }
}

/* Whether CMD has exited, without reaping it (its group stays reserved). */
static bool exited_unreaped(const struct run *r)
{
    siginfo_t info = { 0 };
    return waitid(P_PID, (id_t)r->child, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == r->child;
}

/* SIGTERM to CMD's group, up to KILL_GRACE_S for CMD to exit, then SIGKILL
 * to whatever is left of the group, then reap. */
static void kill_group(struct run *r)
{
    pass_on(r, SIGCONT);
    pass_on(r, SIGTERM);
    double until = now_s() + KILL_GRACE_S;
    while (!exited_unreaped(r) && now_s() < until) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        siginfo_t si;
        sigtimedwait(&r->waited, &si, &ts);
    }
    pass_on(r, SIGKILL);
    while (waitpid(r->child, &r->status, 0) < 0 && errno == EINTR)
        ;
}

/* ---- reporting ---- */

static int status_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

static bool is_stuck(json_object *t)
{
    const char *v = lwc_str(t, "verdict", "");
    return strcmp(v, "leaked") == 0 || strcmp(v, "deadlocked") == 0;
}

/* The view with only its leaked and deadlocked threads (new reference);
 * *n: how many. */
static json_object *stuck_only(json_object *view, size_t *n)
{
    json_object *o = json_object_new_object(), *kept = json_object_new_array(), *threads = lwc_array(view, "threads");
    json_object_object_foreach(view, key, val)
        json_object_object_add(o, key, json_object_get(val));
    for (size_t i = 0; i < lwc_len(threads); i++)
        if (is_stuck(json_object_array_get_idx(threads, i)))
            json_object_array_add(kept, json_object_get(json_object_array_get_idx(threads, i)));
    *n = lwc_len(kept);
    json_object_object_add(o, "threads", kept);
    return o;
}

/* Add a view's "suppressed" counts to a total. */
static void add_suppressed(json_object *total, json_object *view)
{
    json_object *counts = lwc_get(view, "suppressed");
    if (!counts || !json_object_is_type(counts, json_type_object))
        return;
    json_object_object_foreach(counts, pattern, count)
        json_object_object_add(total, pattern, json_object_new_int64(lwc_int(total, pattern, 0) +
                                                                     json_object_get_int64(count)));
}

struct tally {
    size_t processes, stuck_threads, stuck_processes;
    json_object *suppressed;   /* {"suppressed": {pattern: total}} */
};

/* Print one process's stuck threads, or every thread (grouped) when it
 * has none and all_if_none is set; count them. */
static void report_process(struct run *r, json_object *view, bool all_if_none, struct tally *t)
{
    size_t stuck = 0;
    json_object *only = stuck_only(view, &stuck);
    json_object *shown = stuck == 0 && all_if_none ? view : only;
    t->processes++;
    t->stuck_threads += stuck;
    t->stuck_processes += stuck > 0;
    add_suppressed(lwc_get(t->suppressed, "suppressed"), view);
    if (lwc_len(lwc_array(shown, "threads")) && lwc_view_printable(shown)) {
        fprintf(stderr, "\n");
        lwc_render_threads(stderr, shown, false, &r->st);
    }
    json_object_put(only);
}

static void tally_init(struct tally *t)
{
    memset(t, 0, sizeof *t);
    t->suppressed = json_object_new_object();
    json_object_object_add(t->suppressed, "suppressed", json_object_new_object());
}

static void print_suppressed_total(const struct tally *t)
{
    lwc_render_suppressed(stderr, "leakwatch run: ", t->suppressed);
}

static const char *command_name(const struct run *r)
{
    return r->o->cmd[0];
}

/* pid from "leakwatch-exit.PID.json", else 0 */
static pid_t report_pid(const char *name)
{
    int pid = 0, used = 0;
    if (sscanf(name, "leakwatch-exit.%d.json%n", &pid, &used) != 1 || name[used] || pid <= 0)
        return 0;
    return (pid_t)pid;
}

static int compare_names(const struct dirent **a, const struct dirent **b)
{
    pid_t x = report_pid((*a)->d_name), y = report_pid((*b)->d_name);
    return (x > y) - (x < y);
}

static int is_report(const struct dirent *d)
{
    return report_pid(d->d_name) > 0;
}

/* An exit report, read as a reply is (a regular file, opened without
 * blocking, within what a process of the preload's largest registry can
 * write, parsed within its cost bound); NULL with a message in err. */
static json_object *read_exit_report(const char *path, char *err, size_t errsize)
{
    size_t limit = lwc_reply_limit_for_threads(32768), len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > limit) {
        snprintf(err, errsize, "%s", fd < 0 ? strerror(errno) : "not a regular file of a sensible size");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    ssize_t n = 1;
    while (text && len < (size_t)st.st_size && (n = read(fd, text + len, (size_t)st.st_size - len)) > 0)
        len += (size_t)n;
    close(fd);
    json_object *o = NULL;
    if (!text)
        snprintf(err, errsize, "out of memory");
    else if (n < 0)
        snprintf(err, errsize, "%s", strerror(errno));
    else
        o = lwc_parse_reply(text, len, err, errsize);
    free(text);
    return o;
}

/* Every exit report, by pid; true when CMD itself wrote one. */
static bool read_reports(struct run *r, struct tally *t)
{
    struct dirent **names = NULL;
    int n = scandir(r->plan.reports, &names, is_report, compare_names);
    bool own = false;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 300], err[600];
        snprintf(path, sizeof path, "%s/%s", r->plan.reports, names[i]->d_name);
        json_object *reply = read_exit_report(path, err, sizeof err);
        lwc_deadline_start(report_pid(names[i]->d_name));   /* symbolizing its stacks */
        json_object *view = reply ? lwc_explain(reply, r->o->supp) : NULL;
        lwc_deadline_stop();
        if (view) {
            own |= report_pid(names[i]->d_name) == r->child;
            report_process(r, view, false, t);
            json_object_put(view);
        } else {
            fprintf(stderr, "leakwatch run: cannot read the exit report %s: %s\n", path,
                    reply ? "out of memory" : err);
        }
        json_object_put(reply);
        free(names[i]);
    }
    free(names);
    return own;
}

/* Why CMD left no report: a signal, or _exit (or exec of a program the
 * preload does not reach). */
static void say_no_report(const struct run *r)
{
    if (WIFSIGNALED(r->status))
        fprintf(stderr, "leakwatch run: %s (pid %d) was killed by signal %d (%s): no exit report, its threads "
                        "were not checked\n", command_name(r), (int)r->child, WTERMSIG(r->status),
                strsignal(WTERMSIG(r->status)));
    else
        fprintf(stderr, "leakwatch run: %s (pid %d) exited with status %d without an exit report (it called "
                        "_exit, or exec'd a program the preload does not reach): its threads were not checked\n",
                command_name(r), (int)r->child, status_code(r->status));
}

static int check_at_exit(struct run *r)
{
    struct tally t;
    tally_init(&t);
    bool own = read_reports(r, &t);
    int rc = status_code(r->status);
    if (!own)
        say_no_report(r);
    if (t.stuck_threads) {
        fprintf(stderr, "leakwatch run: FAILED: %zu %s leaked or deadlocked at exit in %zu of %zu %s "
                        "(%s exited with status %d)\n", t.stuck_threads, t.stuck_threads == 1 ? "thread" : "threads",
                t.stuck_processes, t.processes, t.processes == 1 ? "process" : "processes", command_name(r), rc);
        rc = EXIT_LEAKS;
    } else if (t.processes) {
        fprintf(stderr, "leakwatch run: ok: no thread leaked or deadlocked at exit (%zu %s checked)\n", t.processes,
                t.processes == 1 ? "process" : "processes");
    }
    print_suppressed_total(&t);
    json_object_put(t.suppressed);
    return rc;
}

/* Ask every process of the run: stuck threads, or all of them grouped when
 * a process has none (the hang is then elsewhere, e.g. a live wait). */
static void report_hang(struct run *r)
{
    struct lwc_target *targets;
    size_t n = lwc_list_targets_in(r->plan.sockdir, &targets), asked = 0;
    struct tally t;
    tally_init(&t);
    fprintf(stderr, "leakwatch run: %s (pid %d) still running after %gs: it hung\n", command_name(r), (int)r->child,
            r->o->timeout);
    for (size_t i = 0; i < n; i++) {
        char err[1024];
        enum lwc_failure why;
        json_object *reply = lwc_ask(&targets[i], "threads", &why, err, sizeof err);
        json_object *view = reply ? lwc_explain(reply, r->o->supp) : NULL;
        lwc_deadline_stop();
        if (!reply && why == LWC_FAILED)
            fprintf(stderr, "leakwatch run: pid %d: %s\n", (int)targets[i].pid, err);
        if (!view) {
            json_object_put(reply);
            continue;   /* (or it has exited since) */
        }
        report_process(r, view, true, &t);
        json_object_put(view);
        json_object_put(reply);
        asked++;
    }
    if (!asked)
        fprintf(stderr, "leakwatch run: no process of the run could be asked (a program that never creates a "
                        "thread nor waits where leakwatch looks has no socket)\n");
    else
        fprintf(stderr, "leakwatch run: %zu %s leaked or deadlocked in %zu %s asked\n", t.stuck_threads,
                t.stuck_threads == 1 ? "thread" : "threads", asked, asked == 1 ? "process" : "processes");
    print_suppressed_total(&t);
    json_object_put(t.suppressed);
    lwc_free_targets(targets, n);
    fprintf(stderr, "leakwatch run: killing %s (pid %d) and its process group: SIGTERM, then SIGKILL after %gs\n",
            command_name(r), (int)r->child, KILL_GRACE_S);
}

/* ---- the verb ---- */

static void block_signals(struct run *r)
{
    static const int sigs[] = { SIGCHLD, SIGCONT, SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    sigset_t block;
    sigemptyset(&r->waited);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&r->waited, sigs[i]);
    block = r->waited;
    sigaddset(&block, SIGTTOU);   /* taking the terminal back from the background */
    signal(SIGCHLD, SIG_DFL);      /* an inherited SIG_IGN would reap CMD for us */
    sigprocmask(SIG_BLOCK, &block, &r->orig_mask);
}

static int prepare(struct run *r)
{
    int rc = lwc_run_resolve(r->o->cmd[0], r->plan.exe, sizeof r->plan.exe);
    if (!rc)
        rc = lwc_run_find_preload(r->plan.preload, sizeof r->plan.preload);
    if (!rc)
        rc = lwc_run_check_loadable(r->plan.exe, r->plan.preload);
    if (!rc && r->checking && !lwc_run_make_dirs(&r->plan, r->o->check))
        rc = EXIT_USAGE;
    return rc;
}

int lwc_cmd_run(const struct lwc_options *o)
{
    struct run r = { .o = o, .checking = o->check || o->timeout > 0, .tty = -1,
                     .st = lwc_style_for(STDERR_FILENO) };
    int rc = prepare(&r);
    if (rc)
        return rc;
    block_signals(&r);
    rc = start(&r);
    if (rc == EXIT_FINE) {
        bool exited = wait_for_exit(&r, o->timeout > 0 ? now_s() + o->timeout : 0);
        take_terminal_back(&r);
        if (!exited) {
            report_hang(&r);
            kill_group(&r);
            rc = EXIT_LEAKS;
        } else {
            rc = o->check ? check_at_exit(&r) : status_code(r.status);
        }
    }
    sigprocmask(SIG_SETMASK, &r.orig_mask, NULL);
    lwc_run_remove_dirs(&r.plan);
    return rc;
}
