/*
 * main.c — the leakwatch command: one row per verb in the table below, in
 * the manner of git's command table, so adding a verb is one function and one
 * row. Each row names the options its verb accepts (rows of the option table,
 * shared so that a flag means the same thing wherever it appears) and carries
 * the verb's manual: synopsis, description, exit status, environment and
 * examples, printed by `leakwatch VERB --help` and `leakwatch help VERB`,
 * and made into the man pages and the bash completion the build installs
 * (`leakwatch help --man [VERB]`, `--bash-completion`: manual.h).
 * Exit codes: 0 fine, 1 leaks found (where a verb checks), 2 usage or
 * connection error (run passes its command's status through); a failed
 * write to stdout is an error (2), a reader that went away (head) is not:
 * the verb ends quietly with its own status. The verbs here (status,
 * threads) only glue client.c, process.c and the renderers together; run,
 * watch and metrics have files of their own.
 */
#include "client.h"
#include "deadline.h"
#include "manual.h"
#include "pprof.h"
#include "render.h"
#include "suppress.h"
#include "symbolize.h"
#include "verbs.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LEAKWATCH_VERSION
#define LEAKWATCH_VERSION "unknown"
#endif
#ifndef LEAKWATCH_LIBDIR
#define LEAKWATCH_LIBDIR "lib"
#endif

/* ---- the options ---- */

enum opt_id { OPT_JSON, OPT_ALL, OPT_IGNORE, OPT_SUPPRESSIONS, OPT_INTERVAL, OPT_COUNT, OPT_CHECK, OPT_SETTLE,
              OPT_TIMEOUT, OPT_LISTEN, OPT_BUDGET, OPT_PPROF, OPT_MAN, OPT_BASH_COMPLETION, OPT_ATTACH, OPT_CORE,
              OPT_EXE, OPT_SINCE, OPT_AGE, OPT_HELP };

struct optdef {
    enum opt_id id;
    const char *name;   /* "--json" */
    const char *arg;    /* "SECONDS"; NULL for a flag */
    const char *help;   /* lines separated by \n, indented when printed */
};

static const struct optdef optdefs[] = {
    { OPT_JSON, "--json", NULL, "print the versioned JSON object (docs/protocol.md)\ninstead of text" },
    { OPT_ALL, "--all", NULL, "every thread on its own instead of groups" },
    { OPT_IGNORE, "--ignore", "PATTERN",
      "suppress the threads with a function matching\n"
      "PATTERN (a shell glob) in their wait or creation\n"
      "stack, or as their start routine; FILE:LINE and\n"
      "module file names match too; repeatable" },
    { OPT_SUPPRESSIONS, "--suppressions", "FILE",
      "suppress what the patterns in FILE match: one a\n"
      "line, as for --ignore, '#' starts a comment;\n"
      "repeatable" },
    { OPT_INTERVAL, "--interval", "SECONDS", "seconds between two refreshes (default 2, at\nleast 0.1)" },
    { OPT_COUNT, "--count", "N", "quit after N refreshes (default: when told to)" },
    { OPT_CHECK, "--check", NULL,
      "after CMD exits, report the threads leaked or\n"
      "deadlocked at exit in every process of the run,\n"
      "and exit 1 if there are any" },
    { OPT_SETTLE, "--settle", "MS",
      "judge only waits older than MS milliseconds\n"
      "(LEAKWATCH_SETTLE_MS of the run's processes;\n"
      "default 100 with --check or --timeout)" },
    { OPT_TIMEOUT, "--timeout", "SECONDS",
      "if CMD still runs after SECONDS, report its leaked\n"
      "and deadlocked threads, say it hung, kill its\n"
      "process group, and exit 1" },
    { OPT_LISTEN, "--listen", "HOST:PORT",
      "the address to serve on: HOST:PORT, [IPV6]:PORT or\n"
      ":PORT for every IPv4 address (default\n"
      "127.0.0.1:9469; port 0 picks a free one)" },
    { OPT_BUDGET, "--budget", "SECONDS",
      "the most one scrape may take (default 5, from\n"
      "0.1 to 300): a process that has not answered by\n"
      "then is written as leakwatch_up 0" },
    { OPT_PPROF, "--pprof", "FILE",
      "write the parked threads to FILE as a gzipped\n"
      "pprof profile (\"-\": standard output) instead of\n"
      "printing the dump" },
    { OPT_MAN, "--man", NULL,
      "print the manual as a man page (roff): leakwatch(1),\n"
      "or with VERB leakwatch-VERB(1), as installed" },
    { OPT_BASH_COMPLETION, "--bash-completion", NULL,
      "print the bash completion script, as installed" },
    { OPT_ATTACH, "--attach", NULL,
      "judge PID from outside (ptrace) even when it has a\n"
      "leakwatch socket; without a socket that is what\n"
      "happens anyway" },
    { OPT_CORE, "--core", "FILE",
      "judge a core dump (gcore, systemd-coredump) instead\n"
      "of a running process; no PID" },
    { OPT_EXE, "--exe", "PATH", "the program of the --core dump, when the core\ndoes not lead to it" },
    { OPT_SINCE, "--since", "SECONDS",
      "you know every wait is at least SECONDS old (the\n"
      "process has hung that long): no sampling; a core\n"
      "has no other way to age its waits" },
    { OPT_AGE, "--settle", "MS",
      "from outside: sample every thread twice, MS\n"
      "milliseconds apart (default 1000); a wait counts\n"
      "once the same call lasted that long" },
    { OPT_HELP, "--help", NULL, "this manual (also -h)" },
};

static const struct optdef *opt(enum opt_id id)
{
    for (size_t i = 0; i < sizeof optdefs / sizeof optdefs[0]; i++)
        if (optdefs[i].id == id)
            return &optdefs[i];
    abort();
}

/* ---- the verbs ---- */

enum pid_arg { NO_PID, OPTIONAL_PID, REQUIRED_PID };

struct verb {
    const char *name;
    int (*run)(const struct lwc_options *o);
    enum pid_arg pid;
    bool takes_command;              /* run: CMD ARGS… after the options */
    const enum opt_id *opts;         /* ends with OPT_HELP */
    const char *title;               /* one line */
    const char *synopsis;
    const char *description;
    const char *exit_status;
    const char *environment;         /* the verb's own, before the common ones; may be NULL */
    const char *examples;
};

static int cmd_status(const struct lwc_options *o);
static int cmd_threads(const struct lwc_options *o);
static int cmd_help(const struct lwc_options *o);
static int cmd_version(const struct lwc_options *o);

static const enum opt_id status_opts[] = { OPT_JSON, OPT_ATTACH, OPT_CORE, OPT_EXE, OPT_SINCE, OPT_AGE, OPT_IGNORE,
                                           OPT_SUPPRESSIONS, OPT_HELP };
static const enum opt_id threads_opts[] = { OPT_ALL, OPT_JSON, OPT_PPROF, OPT_ATTACH, OPT_CORE, OPT_EXE, OPT_SINCE,
                                            OPT_AGE, OPT_IGNORE, OPT_SUPPRESSIONS, OPT_HELP };
static const enum opt_id watch_opts[] = { OPT_INTERVAL, OPT_COUNT, OPT_ATTACH, OPT_AGE, OPT_IGNORE, OPT_SUPPRESSIONS,
                                          OPT_HELP };
static const enum opt_id metrics_opts[] = { OPT_IGNORE, OPT_SUPPRESSIONS, OPT_HELP };
static const enum opt_id exporter_opts[] = { OPT_LISTEN, OPT_BUDGET, OPT_IGNORE, OPT_SUPPRESSIONS, OPT_HELP };
static const enum opt_id run_opts[] = { OPT_CHECK, OPT_SETTLE, OPT_TIMEOUT, OPT_IGNORE, OPT_SUPPRESSIONS, OPT_HELP };
static const enum opt_id help_opts[] = { OPT_MAN, OPT_BASH_COMPLETION, OPT_HELP };
static const enum opt_id plain_opts[] = { OPT_HELP };

#define ATTACH_NOTE                                                                                         \
    "A process with no leakwatch socket (started without the preload), or any\n"                              \
    "with --attach, is judged from outside: its threads are sampled twice\n"                                \
    "through /proc (--settle apart, 1 s by default: that is how a wait gets an\n"                            \
    "age), then stopped for a few milliseconds with ptrace while their stacks,\n"                            \
    "waits and memory are read and the preload's proofs run, then let go as\n"                              \
    "they were (a stopped process stays stopped; a wait the stop cut short is\n"                            \
    "restarted). The first line says so. What attach cannot know (how threads\n"                            \
    "were created, which exited, who used each fd) is in the notes, and no\n"                               \
    "verdict relies on it. --core FILE judges a core dump the same way (with\n"                             \
    "--since: a core has no other way to age its waits).\n"

#define ATTACH_ENVIRONMENT                                                                                  \
    "LEAKWATCH_ATTACH_HOLD_MS  a testing aid: keep the threads stopped that much\n"                           \
    "                          longer (to kill leakwatch mid-freeze)"

#define SUPPRESSION_NOTE                                                                                    \
    "Suppressed threads (--ignore, --suppressions, LEAKWATCH_SUPPRESSIONS) are\n"                            \
    "never reported and never counted as stuck; a line (JSON: \"suppressed\",\n"                            \
    "counts per pattern) says how many each pattern took."

static const struct verb verbs[] = {
    { "status", cmd_status, OPTIONAL_PID, false, status_opts,
      "processes under leakwatch and their thread counts by verdict",
      "leakwatch status [PID] [--json] [--attach] [--settle MS] [--since SECONDS]\n"
      "                        [--ignore PATTERN]... [--suppressions FILE]...\n"
      "       leakwatch status --core FILE [--exe PATH] [--since SECONDS] [--json] ...",
      "Without PID: every process running under the preload that this user may\n"
      "ask (root: every one), one line each: threads, parked threads and the\n"
      "count of each verdict (running, waiting, suspect, leaked, deadlocked).\n"
      "\n"
      "With PID: that process's summary: uptime, threads now, peak, created and\n"
      "exited, counts by verdict, the thread-count history as a sparkline (a\n"
      "mark per sample, the most threads seen in it), and the growth alarm,\n"
      "ON when the count keeps climbing and never comes back down: over the\n"
      "last 8 to 64 samples cut in four quarters, the lowest count rose in\n"
      "every quarter, ended above the first quarter's peak, and by 4 threads\n"
      "or more (docs/protocol.md, \"Growth alarm\").\n"
      "\n" ATTACH_NOTE "(From outside there is no history and no growth alarm.)\n\n" SUPPRESSION_NOTE,
      "0  no process shown has leaked or deadlocked threads\n"
      "1  a process shown has leaked or deadlocked threads (suppressed ones aside)\n"
      "2  usage error, a process could not be asked (no socket, timeout,\n"
      "   error or malformed reply) or, without a socket, attached to, or the\n"
      "   output could not be written (a reader that stops reading early, as\n"
      "   head does, is no error)",
      ATTACH_ENVIRONMENT,
      "leakwatch status\n"
      "leakwatch status 4242\n"
      "leakwatch status --json | jq '.processes[] | select(.summary.leaked > 0)'\n"
      "leakwatch status 4242 --ignore 'libfoo_*'\n"
      "leakwatch status --core core.4242 --since 600" },
    { "threads", cmd_threads, REQUIRED_PID, false, threads_opts,
      "what a process's threads wait on, and which can never wake",
      "leakwatch threads PID [--all] [--json] [--pprof FILE] [--attach] [--settle MS]\n"
      "                         [--since SECONDS] [--ignore PATTERN]... [--suppressions FILE]...\n"
      "       leakwatch threads --core FILE [--exe PATH] [--since SECONDS] [--all] [--json] ...",
      "The thread dump of PID: what every thread waits on, for how long, why it\n"
      "is stuck, and where (symbolized wait and creation stacks). By default\n"
      "threads are grouped by verdict, creation site and wait site with a\n"
      "count, stuck groups first; --all lists every thread. --json prints the\n"
      "JSON contract, always with every thread, stacks as frames {pc, module,\n"
      "offset, function, file, line}.\n"
      "\n"
      "--pprof FILE writes the parked threads as a gzipped pprof profile\n"
      "(profile.proto) instead: sample type threads/count, one sample per\n"
      "parked thread with its wait stack (functions and file:line resolved),\n"
      "labelled verdict, wait (the wait kind), thread (its name) and tid. `go\n"
      "tool pprof -top FILE`, `-tagfocus verdict=leaked`, `-http`, Pyroscope\n"
      "and Parca read it as a goroutine profile.\n"
      "\n" ATTACH_NOTE "\n" SUPPRESSION_NOTE,
      "0  the dump (or the profile) was written, whatever the verdicts\n"
      "2  usage error, the process could not be asked or attached to (not\n"
      "   there, traced by a debugger, ptrace not permitted), or FILE or the\n"
      "   output could not be written (a reader that stops early, as head\n"
      "   does, is no error)",
      ATTACH_ENVIRONMENT,
      "leakwatch threads 4242\n"
      "leakwatch threads 4242 --all\n"
      "leakwatch threads 4242 --json | jq '.threads[] | select(.verdict == \"leaked\")'\n"
      "leakwatch threads 4242 --pprof threads.pb.gz && go tool pprof -top threads.pb.gz\n"
      "leakwatch threads --core core.4242 --since 120" },
    { "watch", lwc_cmd_watch, REQUIRED_PID, false, watch_opts,
      "a refreshing summary of one process, like top",
      "leakwatch watch PID [--interval SECONDS] [--count N] [--attach] [--settle MS]\n"
      "                       [--ignore PATTERN]... [--suppressions FILE]...",
      "Shows PID's summary every interval: counts by verdict, threads now,\n"
      "peak, created and exited, the thread-count history and growth alarm,\n"
      "and the groups of stuck threads (deadlocked, leaked, suspect), each with\n"
      "its count, wait kind, how long it has been parked, where it waits and\n"
      "where it was made. A group that was not there at the previous refresh\n"
      "is marked \"new\" (highlighted in colour); \"+N\" says a group grew.\n"
      "\n"
      "On a terminal the summary is redrawn in place (on the alternate screen,\n"
      "as top does) and keys are read without echo: q or Ctrl-C quits and\n"
      "restores the terminal. Otherwise one summary is printed per interval,\n"
      "separated by a blank line, without escape codes, until SIGINT or SIGTERM\n"
      "or --count refreshes.\n"
      "\n" ATTACH_NOTE "Each refresh attaches again (and samples again: our own stop switches\n"
      "every thread out, so an age never carries over).\n\n" SUPPRESSION_NOTE,
      "0  quit: q, Ctrl-C, SIGINT, SIGTERM, --count refreshes done, or the\n"
      "   reader of the output went away\n"
      "2  usage error, the process could not be asked at the start, it went\n"
      "   away while watched, or the output could not be written",
      ATTACH_ENVIRONMENT,
      "leakwatch watch 4242\n"
      "leakwatch watch 4242 --interval 0.5\n"
      "leakwatch watch 4242 --count 3 > watch.log" },
    { "metrics", lwc_cmd_metrics, OPTIONAL_PID, false, metrics_opts,
      "Prometheus metrics of the processes under leakwatch",
      "leakwatch metrics [PID] [--ignore PATTERN]... [--suppressions FILE]...",
      "Prints the metrics of every process running under leakwatch (or of PID)\n"
      "in the Prometheus text exposition format 0.0.4, for a scraper (e.g.\n"
      "node_exporter's textfile collector). Every series has the labels pid and\n"
      "command:\n"
      "  leakwatch_up                          gauge: 1 answered, 0 could not be asked\n"
      "  leakwatch_threads{verdict}            gauge: threads by verdict\n"
      "  leakwatch_threads_suppressed          gauge: threads taken by suppressions\n"
      "  leakwatch_waits{kind}                 gauge: parked threads by wait kind\n"
      "  leakwatch_threads_created_total       counter: threads created\n"
      "  leakwatch_threads_exited_total        counter: threads exited\n"
      "  leakwatch_threads_peak                gauge: most threads at once\n"
      "  leakwatch_oldest_stuck_wait_seconds   gauge: longest wait of a leaked or\n"
      "                                        deadlocked thread, 0 if none\n"
      "  leakwatch_growth_alarm                gauge: 1 when the growth alarm is on\n"
      "  leakwatch_uptime_seconds              gauge: seconds under the preload\n"
      "Suppressed threads are counted only by leakwatch_threads_suppressed.",
      "0  the metrics were printed (a process that could not be asked shows\n"
      "   as leakwatch_up 0)\n"
      "2  usage error, PID could not be asked, or the output could not be\n"
      "   written",
      NULL,
      "leakwatch metrics\n"
      "leakwatch metrics 4242\n"
      "leakwatch metrics > lw.prom.tmp && mv lw.prom.tmp $TEXTFILE_DIR/lw.prom" },
    { "exporter", lwc_cmd_exporter, NO_PID, false, exporter_opts,
      "serve the metrics over HTTP for Prometheus to scrape",
      "leakwatch exporter [--listen HOST:PORT] [--budget SECONDS]\n"
      "                          [--ignore PATTERN]... [--suppressions FILE]...",
      "Serves the families of `leakwatch metrics` at http://HOST:PORT/metrics\n"
      "(default 127.0.0.1:9469), for every process under leakwatch that this\n"
      "user may ask (root: every one), until SIGINT, SIGTERM or SIGHUP. Each\n"
      "scrape asks every process anew, all at once, and waits for the answers\n"
      "for at most --budget seconds (less when Prometheus's\n"
      "X-Prometheus-Scrape-Timeout-Seconds header says it gives up sooner): a\n"
      "process that has not answered by then, hung or slow, is written as\n"
      "leakwatch_up 0, and the scrape is never held up by it. Concurrent\n"
      "scrapers are served at once, each with its own answers. Two families are\n"
      "the exporter's own:\n"
      "  leakwatch_ask_duration_seconds        gauge: seconds the process took to\n"
      "                                        answer (the budget when it did not)\n"
      "  leakwatch_scrape_duration_seconds     gauge: seconds the scrape took\n"
      "The line \"leakwatch exporter: serving http://HOST:PORT/metrics\" on stderr\n"
      "says where it listens (the port it got, with port 0). Alert rules for\n"
      "these metrics: docs/leakwatch-alerts.yml.\n"
      "\n" SUPPRESSION_NOTE,
      "0  stopped by SIGINT, SIGTERM or SIGHUP\n"
      "2  usage error, or it cannot listen on the address",
      "LEAKWATCH_TIMEOUT_MS            ignored: every ask is bounded by --budget",
      "leakwatch exporter\n"
      "leakwatch exporter --listen :9469 --budget 8\n"
      "curl -s http://127.0.0.1:9469/metrics | promtool check metrics" },
    { "run", lwc_cmd_run, NO_PID, true, run_opts,
      "run a command under leakwatch; --check fails on leaked threads",
      "leakwatch run [--check] [--settle MS] [--timeout SECONDS]\n"
      "                     [--ignore PATTERN]... [--suppressions FILE]...\n"
      "                     [--] CMD [ARGS]...",
      "Runs CMD (searched in PATH) with ARGS under the preload: LD_PRELOAD gets\n"
      "libleakwatch.so after whatever it already holds. Nothing is run, and the\n"
      "exit status is 2, for a CMD the dynamic loader would start without the\n"
      "preload: a statically linked program (no program interpreter), a\n"
      "set-user-ID or set-group-ID program or one with file capabilities (the\n"
      "loader ignores LD_PRELOAD in secure-execution mode), or a program of\n"
      "another ELF class or machine than the preload. A script is judged by its\n"
      "#! interpreter. Without --check or --timeout, run only runs CMD and\n"
      "exits with its status.\n"
      "\n"
      "--check is goleak's VerifyNone for C test suites. Every process of the\n"
      "run that exits normally (returns from main or calls exit) writes a\n"
      "report as it exits, in which the exiting thread counts as gone (it will\n"
      "never wake anyone again) and whatever was never shut down is judged.\n"
      "When CMD has exited, run prints on stderr the threads that were leaked\n"
      "or deadlocked at exit, grouped and symbolized as `leakwatch threads`\n"
      "shows them, suppressions applied, and exits 1 if there are any,\n"
      "otherwise with CMD's status. A process killed by a signal, or ended by\n"
      "_exit, writes no report: run says so.\n"
      "\n"
      "--settle defaults to 100 ms with --check or --timeout, instead of the\n"
      "1 s that suits long-running programs: the exit report is taken as the\n"
      "process exits, and a thread that parked a moment before (a worker that\n"
      "has just read its last message) must still be judged. The preload waits\n"
      "for such young waits to reach the settle time, so this costs an exit\n"
      "at most 0.1 s, and only when a wait is that young.\n"
      "\n"
      "--timeout: when CMD still runs after SECONDS, run asks every process of\n"
      "the run over its socket and prints their leaked and deadlocked threads\n"
      "(every thread, grouped, when there are none), says that CMD hung, kills\n"
      "CMD's process group (SIGTERM, then SIGKILL 2 s later) and exits 1.\n"
      "\n"
      "CMD runs in a process group of its own, given the terminal when run has\n"
      "it (so CMD can read it, and Ctrl-C and Ctrl-Z reach it); SIGINT, SIGTERM,\n"
      "SIGHUP and SIGQUIT sent to run are passed on to that group. With --check\n"
      "or --timeout the run's processes get a private LEAKWATCH_DIR (leakwatch\n"
      "status still finds them) and a private report directory, both removed\n"
      "at the end.\n"
      "\n" SUPPRESSION_NOTE,
      "N    CMD's own status (128+S when a signal S killed it), --check finding\n"
      "     nothing\n"
      "1    --check found leaked or deadlocked threads, or --timeout expired\n"
      "2    usage error, CMD refused (static, set-user-ID or set-group-ID, file\n"
      "     capabilities, another ELF class), or libleakwatch.so not found\n"
      "126  CMD could not be executed\n"
      "127  CMD not found",
      "LEAKWATCH_PRELOAD         libleakwatch.so to preload; default: the one next to\n"
      "                          this leakwatch (../preload/ in a build tree,\n"
      "                          ../" LEAKWATCH_LIBDIR "/ or ../lib/ when installed)\n"
      "LEAKWATCH_PRELOAD_PREFIX  a testing aid: put first in CMD's LD_PRELOAD (the\n"
      "                          sanitizer runtime, which must come first)\n"
      "LEAKWATCH_SETTLE_MS, LEAKWATCH_STALL_MS, LEAKWATCH_LOG, LEAKWATCH_HISTORY_MS\n"
      "                          passed on to CMD (--settle overrides the first)",
      "leakwatch run --check -- ./test_queue\n"
      "leakwatch run --check --timeout 60 --ignore 'libfoo_*' -- make check\n"
      "leakwatch run -- ./server --port 8080      (then, elsewhere: leakwatch status)" },
    { "help", cmd_help, NO_PID, false, help_opts, "the verbs, or one verb's manual",
      "leakwatch help [VERB] [--man]\n"
      "leakwatch help --bash-completion",
      "Without VERB, lists the verbs. With VERB, prints its manual, as\n"
      "`leakwatch VERB --help` does. --man prints the same as a man page, and\n"
      "--bash-completion the completion script: the build makes the installed\n"
      "pages and script this way, so they say what --help says.",
      "0  printed\n2  unknown verb", NULL, "leakwatch help run" },
    { "version", cmd_version, NO_PID, false, plain_opts, "the version", "leakwatch version",
      "Prints the version (also `leakwatch --version`).", "0  printed", NULL, "leakwatch version" },
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

#define COMMON_ENVIRONMENT                                                                                  \
    "LEAKWATCH_DIR, XDG_RUNTIME_DIR  where sockets are looked for first (processes\n"                        \
    "                                elsewhere are found through /proc as well)\n"                            \
    "LEAKWATCH_TIMEOUT_MS            how long one question to a process may take,\n"                         \
    "                                symbolizing included (default 10000)\n"                                 \
    "LEAKWATCH_SUPPRESSIONS          a suppressions file applied by every verb\n"                             \
    "NO_COLOR                        no colour, even on a terminal (colour is only\n"                         \
    "                                ever used on a terminal)"

/* ---- help ---- */

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

static bool verb_has(const struct verb *v, enum opt_id id)
{
    for (const enum opt_id *o = v->opts;; o++) {
        if (*o == id)
            return true;
        if (*o == OPT_HELP)
            return false;
    }
}

/* Each line of text, indented. */
static void print_indented(FILE *out, const char *indent, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, "\n");
        fprintf(out, "%s%.*s\n", n ? indent : "", (int)n, text);
        text += n + (text[n] == '\n');
    }
}

static void print_option(FILE *out, const struct optdef *d)
{
    char head[64];
    snprintf(head, sizeof head, "%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
    const char *text = d->help;
    size_t n = strcspn(text, "\n");
    fprintf(out, "  %-22s %.*s\n", head, (int)n, text);
    for (text += n; *text == '\n';) {
        text++;
        n = strcspn(text, "\n");
        fprintf(out, "  %-22s %.*s\n", "", (int)n, text);
        text += n;
    }
}

static void print_verb_help(FILE *out, const struct verb *v)
{
    fprintf(out, "leakwatch %s - %s\n\nusage: %s\n\n", v->name, v->title, v->synopsis);
    print_indented(out, "", v->description);
    fprintf(out, "\noptions:\n");
    for (const enum opt_id *o = v->opts;; o++) {
        print_option(out, opt(*o));
        if (*o == OPT_HELP)
            break;
    }
    fprintf(out, "\nexit status:\n");
    print_indented(out, "  ", v->exit_status);
    fprintf(out, "\nenvironment:\n");
    if (v->environment)
        print_indented(out, "  ", v->environment);
    print_indented(out, "  ", COMMON_ENVIRONMENT);
    fprintf(out, "\nexamples:\n");
    print_indented(out, "  ", v->examples);
}

#define OVERVIEW                                                                                            \
    "Finds the threads of a process that wait on something, and proves which can\n"                         \
    "never wake up: processes run with LD_PRELOAD=libleakwatch.so over their\n"                              \
    "socket, any other process from outside (ptrace), or a core file."

static void print_overview(FILE *out)
{
    fprintf(out, "usage: leakwatch VERB [ARGS]\n\n" OVERVIEW "\n\nverbs:\n");
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(out, "  %-8s %s\n", verbs[i].name, verbs[i].title);
    fprintf(out, "\n'leakwatch VERB --help' or 'leakwatch help VERB' for a verb's manual.\n"
                 "Exit status: 0 fine, 1 leaks found, 2 usage or connection error, or output\n"
                 "that cannot be written.\n\n"
                 "environment:\n");
    print_indented(out, "  ", COMMON_ENVIRONMENT);
}

/* ---- the manuals as data: man pages, completion ---- */

static struct lwc_manual manual_of(const struct verb *v)
{
    struct lwc_manual m = { .verb = v->name, .title = v->title, .synopsis = v->synopsis,
                            .description = v->description, .exit_status = v->exit_status,
                            .environment = v->environment, .examples = v->examples,
                            .takes_pid = v->pid != NO_PID, .takes_command = v->takes_command };
    for (const enum opt_id *o = v->opts; m.noptions < LWC_MANUAL_OPTIONS; o++) {
        const struct optdef *d = opt(*o);
        m.options[m.noptions++] = (struct lwc_manual_option){ d->name, d->arg, d->help };
        if (*o == OPT_HELP)
            break;
    }
    return m;
}

static const struct lwc_manual_overview overview = {
    .version = LEAKWATCH_VERSION,
    .summary = "find threads that wait for ever, and prove it",
    .description = OVERVIEW "\n"
                   "\n"
                   "Run a program with LD_PRELOAD=libleakwatch.so (libleakwatch(7)), or under\n"
                   "`leakwatch run`, and ask it with the verbs below. `leakwatch VERB --help`\n"
                   "prints each verb's manual, the same as its page.",
    .exit_status = "0  fine\n"
                   "1  leaked or deadlocked threads found (where a verb checks)\n"
                   "2  usage or connection error",
    .environment = COMMON_ENVIRONMENT,
};

static int print_manuals(const struct lwc_options *o)
{
    struct lwc_manual all[NVERBS];
    for (size_t i = 0; i < NVERBS; i++)
        all[i] = manual_of(&verbs[i]);
    if (o->bash_completion) {
        lwc_bash_completion(stdout, all, NVERBS);
    } else if (o->topic) {
        struct lwc_manual m = manual_of(find_verb(o->topic));
        lwc_manpage_verb(stdout, &overview, &m);
    } else {
        lwc_manpage_overview(stdout, &overview, all, NVERBS);
    }
    return fflush(stdout) == 0 ? EXIT_FINE : EXIT_USAGE;
}

/* ---- parsing ---- */

static int usage_error(const struct verb *v, const char *fmt, const char *arg)
{
    fprintf(stderr, "leakwatch %s: ", v->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: %s\n'leakwatch %s --help' for more.\n", v->synopsis, v->name);
    return EXIT_USAGE;
}

static bool parse_pid(const char *s, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > INT_MAX || !(*s >= '0' && *s <= '9'))
        return false;
    *out = (pid_t)v;
    return true;
}

static bool parse_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_count(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi || !(*s >= '0' && *s <= '9'))
        return false;
    *out = v;
    return true;
}

static int load_suppressions(const struct verb *v, struct lwc_options *o, const char *path)
{
    char err[1024];
    if (lwc_supp_load(o->supp, path, err, sizeof err))
        return EXIT_FINE;
    fprintf(stderr, "leakwatch %s: %s\n", v->name, err);
    return EXIT_USAGE;
}

/* Store one option's value; EXIT_USAGE with a message when it is bad. */
static int apply_option(const struct verb *v, const struct optdef *d, const char *value, struct lwc_options *o)
{
    switch (d->id) {
    case OPT_JSON: o->json = true; return EXIT_FINE;
    case OPT_ALL: o->all = true; return EXIT_FINE;
    case OPT_CHECK: o->check = true; return EXIT_FINE;
    case OPT_HELP: o->help = true; return EXIT_FINE;
    case OPT_MAN: o->man = true; return EXIT_FINE;
    case OPT_BASH_COMPLETION: o->bash_completion = true; return EXIT_FINE;
    case OPT_IGNORE:
        return lwc_supp_add(o->supp, value) ? EXIT_FINE : usage_error(v, "--ignore: an empty pattern", value);
    case OPT_SUPPRESSIONS: return load_suppressions(v, o, value);
    case OPT_INTERVAL:
        return parse_number(value, 0.1, 86400, &o->interval)
                   ? EXIT_FINE : usage_error(v, "--interval: not a number of seconds from 0.1 to 86400: '%s'", value);
    case OPT_COUNT:
        return parse_count(value, 1, LONG_MAX, &o->count)
                   ? EXIT_FINE : usage_error(v, "--count: not a positive whole number: '%s'", value);
    case OPT_SETTLE:
        return parse_count(value, 0, 86400000, &o->settle_ms)
                   ? EXIT_FINE : usage_error(v, "--settle: not a number of milliseconds (0 to 86400000): '%s'", value);
    case OPT_TIMEOUT:
        return parse_number(value, 0.001, 31536000, &o->timeout)
                   ? EXIT_FINE : usage_error(v, "--timeout: not a positive number of seconds: '%s'", value);
    case OPT_LISTEN: o->listen = value; return EXIT_FINE;
    case OPT_BUDGET:
        return parse_number(value, 0.1, 300, &o->budget)
                   ? EXIT_FINE : usage_error(v, "--budget: not a number of seconds from 0.1 to 300: '%s'", value);
    case OPT_PPROF:
        return *value ? (o->pprof = value, EXIT_FINE) : usage_error(v, "--pprof: an empty file name%s", "");
    case OPT_ATTACH: o->attach = true; return EXIT_FINE;
    case OPT_CORE: o->core = value; return EXIT_FINE;
    case OPT_EXE: o->exe = value; return EXIT_FINE;
    case OPT_SINCE:
        return parse_number(value, 0, 31536000, &o->since)
                   ? EXIT_FINE : usage_error(v, "--since: not a number of seconds (0 to a year): '%s'", value);
    case OPT_AGE:
        return parse_count(value, 0, 86400000, &o->settle_ms)
                   ? EXIT_FINE : usage_error(v, "--settle: not a number of milliseconds (0 to 86400000): '%s'", value);
    }
    return EXIT_USAGE;
}

/* "--name", "--name=value" or "--name value" (consuming argv[*i + 1]). */
static int parse_option(const struct verb *v, int argc, char **argv, int *i, struct lwc_options *o)
{
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0)
        a = "--help";
    size_t len = strcspn(a, "=");
    for (const enum opt_id *id = v->opts;; id++) {
        const struct optdef *d = opt(*id);
        if (strlen(d->name) == len && strncmp(d->name, a, len) == 0) {
            if (!d->arg && a[len] == '=')
                return usage_error(v, "%s takes no value", d->name);
            if (!d->arg)
                return apply_option(v, d, NULL, o);
            if (a[len] == '=')
                return apply_option(v, d, a + len + 1, o);
            if (*i + 1 >= argc)
                return usage_error(v, "%s needs a value", d->name);
            return apply_option(v, d, argv[++*i], o);
        }
        if (*id == OPT_HELP)
            break;
    }
    return usage_error(v, "unknown option '%s'", a);
}

/* A non-option argument: PID, the help verb's VERB, or the start of CMD. */
static int parse_positional(const struct verb *v, char **argv, int i, struct lwc_options *o, bool *command_started)
{
    const char *a = argv[i];
    if (v->takes_command) {
        o->cmd = &argv[i];
        *command_started = true;
        return EXIT_FINE;
    }
    if (v->run == cmd_help && !o->topic) {
        if (!find_verb(a)) {
            fprintf(stderr, "leakwatch: unknown verb '%s'; see 'leakwatch help'\n", a);
            return EXIT_USAGE;
        }
        o->topic = a;
        return EXIT_FINE;
    }
    if (v->pid != NO_PID && !o->pid) {
        if (!parse_pid(a, &o->pid))
            return usage_error(v, "not a process id: '%s'", a);
        return EXIT_FINE;
    }
    return usage_error(v, "unexpected argument '%s'", a);
}

static int parse_arguments(const struct verb *v, int argc, char **argv, struct lwc_options *o)
{
    bool options_done = false, command_started = false;
    for (int i = 0; i < argc && !command_started; i++) {
        int rc;
        if (!options_done && strcmp(argv[i], "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && argv[i][0] == '-' && argv[i][1])
            rc = parse_option(v, argc, argv, &i, o);
        else
            rc = parse_positional(v, argv, i, o, &command_started);
        if (rc != EXIT_FINE)
            return rc;
    }
    if (o->help)
        return EXIT_FINE;
    if (o->core && (o->pid || o->attach))
        return usage_error(v, "--core judges a core file: no PID, no --attach%s", "");
    if (o->exe && !o->core)
        return usage_error(v, "--exe names the program of a --core dump%s", "");
    if (v->pid == REQUIRED_PID && !o->pid && !o->core)
        return usage_error(v, "a process id is required%s", "");
    if (o->attach && !o->pid)
        return usage_error(v, "--attach needs a PID%s", "");
    if (v->takes_command && !o->cmd)
        return usage_error(v, "a command to run is required%s", "");
    return EXIT_FINE;
}

/* LEAKWATCH_SUPPRESSIONS, for the verbs that take suppressions. */
static int environment_suppressions(const struct verb *v, struct lwc_options *o)
{
    const char *path = getenv("LEAKWATCH_SUPPRESSIONS");
    if (!path || !*path || !verb_has(v, OPT_SUPPRESSIONS))
        return EXIT_FINE;
    return load_suppressions(v, o, path);
}

/* ---- status and threads ---- */

static bool has_stuck_threads(json_object *process)
{
    json_object *s = lwc_get(process, "summary");
    return lwc_int(s, "leaked", 0) > 0 || lwc_int(s, "deadlocked", 0) > 0;
}

/* What status shows of a process: no thread lists. */
static void drop_thread_lists(json_object *process)
{
    json_object_object_del(process, "threads");
    json_object_object_del(process, "exited_threads");
}

/* {"version":1,"processes":[{pid, command, summary, growth, suppressed}, …]} */
static json_object *status_json(json_object **views, size_t n)
{
    static const char *const keys[] = { "pid", "command", "summary", "growth", "suppressed" };
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "version", json_object_new_int(1));
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_new_object();
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            json_object_object_add(p, keys[k], json_object_get(lwc_get(views[i], keys[k])));
        json_object_array_add(arr, p);
    }
    json_object_object_add(o, "processes", arr);
    return o;
}

/* A process that ended while we asked it (gone, or a zombie) is simply not
 * listed any more: only a live process that did not answer is an error. */
static bool process_still_running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* A process that hung up on us may be in the middle of exiting (its server
 * stops at exit, before the process is a zombie): give it a moment to end
 * or to remove its socket before calling the silence an error. */
static bool process_went_away(const struct lwc_target *t)
{
    for (int tries = 0; tries < 25; tries++) {
        if (!process_still_running(t->pid))
            return true;
        bool socket_left = false;
        for (size_t k = 0; k < t->npaths; k++)
            socket_left |= access(t->paths[k], F_OK) == 0;
        if (!socket_left)
            return true;
        usleep(20 * 1000);
    }
    return false;
}

static int cmd_status_all(const struct lwc_options *o)
{
    struct lwc_target *targets;
    size_t n = lwc_list_targets(&targets), ok = 0;
    json_object **views = calloc(n ? n : 1, sizeof *views);
    bool stuck = false, failed = false;
    for (size_t i = 0; views && i < n; i++) {
        char err[1024];
        enum lwc_failure why;
        json_object *r = lwc_ask(&targets[i], lwc_summary_request(o->supp), &why, err, sizeof err);
        json_object *view = r ? lwc_explain(r, o->supp) : NULL;
        lwc_deadline_stop();
        if (r && !view)
            snprintf(err, sizeof err, "out of memory explaining the reply");
        json_object_put(r);
        if (view) {
            views[ok] = view;
            drop_thread_lists(views[ok]);
            stuck |= has_stuck_threads(views[ok++]);
        } else if (r) {
            fprintf(stderr, "leakwatch: pid %d: %s\n", (int)targets[i].pid, err);
            failed = true;
        } else if (why == LWC_FAILED && !process_went_away(&targets[i])) {
            /* Only a running process that did not answer is an error; one that is
             * gone, stale, another user's, or ended mid-question is not listed. */
            fprintf(stderr, "leakwatch: pid %d: %s\n", (int)targets[i].pid, err);
            failed = true;
        }
    }
    bool printable = true;
    for (size_t i = 0; !o->json && i < ok; i++)
        printable &= lwc_view_printable(views[i]);
    if (o->json) {
        json_object *doc = status_json(views, ok);
        lwc_print_json(stdout, doc);
        json_object_put(doc);
    } else if (printable) {
        struct lwc_style st = lwc_style_for(STDOUT_FILENO);
        lwc_render_status_table(stdout, views, ok, &st);
    }
    for (size_t i = 0; i < ok; i++)
        json_object_put(views[i]);
    free(views);
    lwc_free_targets(targets, n);
    return lwc_finish_output(failed || !printable ? EXIT_USAGE : stuck ? EXIT_LEAKS : EXIT_FINE);
}

/* The reply explained (NULL, said so, when out of memory); the question's
 * deadline ends here, before anything is printed. */
static json_object *explained(pid_t pid, json_object *reply, const struct lwc_options *o)
{
    json_object *view = lwc_explain(reply, o->supp);
    lwc_deadline_stop();
    if (!view)
        fprintf(stderr, "leakwatch: pid %d: out of memory explaining the reply\n", (int)pid);
    return view;
}

static int cmd_status(const struct lwc_options *o)
{
    if (!o->pid && !o->core)
        return cmd_status_all(o);
    struct lwc_asker asker;
    lwc_asker_init(&asker, o);
    json_object *r = lwc_asker_ask_or_say(&asker, lwc_summary_request(o->supp));
    lwc_asker_done(&asker);
    if (!r)
        return EXIT_USAGE;
    json_object *view = explained(o->pid, r, o);
    json_object_put(r);
    if (!view)
        return EXIT_USAGE;
    drop_thread_lists(view);
    int rc = has_stuck_threads(view) ? EXIT_LEAKS : EXIT_FINE;
    if (o->json) {
        json_object_object_del(view, "stacks");
        json_object_object_del(view, "modules");
        lwc_print_json(stdout, view);
    } else if (lwc_view_printable(view)) {
        struct lwc_style st = lwc_style_for(STDOUT_FILENO);
        lwc_render_status_one(stdout, view, &st);
    } else {
        rc = EXIT_USAGE;
    }
    json_object_put(view);
    return lwc_finish_output(rc);
}

static int cmd_threads(const struct lwc_options *o)
{
    struct lwc_asker asker;
    lwc_asker_init(&asker, o);
    lwc_set_waiting_work(lwc_symbolize_ahead, NULL);   /* the stacks' libc, while the process answers */
    json_object *r = lwc_asker_ask_or_say(&asker, "threads");
    lwc_set_waiting_work(NULL, NULL);
    lwc_asker_done(&asker);
    if (!r)
        return EXIT_USAGE;
    json_object *modules = json_object_get(lwc_array(r, "modules"));   /* (the view has none) */
    json_object *view = explained(o->pid, r, o);
    if (!view) {
        json_object_put(modules);
        json_object_put(r);
        return EXIT_USAGE;
    }
    int rc = EXIT_FINE;
    if (o->pprof) {
        rc = lwc_write_pprof(o->pprof, modules, view) == 0 ? EXIT_FINE : EXIT_USAGE;
    } else if (o->json) {
        lwc_print_json(stdout, view);
    } else if (lwc_view_printable(view)) {
        struct lwc_style st = lwc_style_for(STDOUT_FILENO);
        lwc_render_threads(stdout, view, o->all, &st);
    } else {
        rc = EXIT_USAGE;
    }
    json_object_put(modules);
    lwc_drop_at_exit(view);
    json_object_put(r);   /* (the view is the reply: the view's reference keeps it) */
    return lwc_finish_output(rc);
}

static int cmd_version(const struct lwc_options *o)
{
    (void)o;
    printf("leakwatch %s\n", LEAKWATCH_VERSION);
    return lwc_finish_output(EXIT_FINE);
}

static int cmd_help(const struct lwc_options *o)
{
    if (o && (o->man || o->bash_completion))
        return lwc_finish_output(print_manuals(o));
    if (o && o->topic)
        print_verb_help(stdout, find_verb(o->topic));
    else
        print_overview(stdout);
    return lwc_finish_output(EXIT_FINE);
}

int main(int argc, char **argv)
{
    setlocale(LC_CTYPE, "");   /* only to learn whether the terminal takes UTF-8 */
    /* A closed pipe is then told from other write errors (lwc_finish_output).
     * Not for run: its CMD inherits the caller's disposition. */
    if (argc < 2 || strcmp(argv[1], "run") != 0)
        signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        print_overview(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(NULL);
    if (!strcmp(argv[1], "--version"))
        return cmd_version(NULL);
    const struct verb *v = find_verb(argv[1]);
    if (!v) {
        fprintf(stderr, "leakwatch: unknown verb '%s'; see 'leakwatch help'\n", argv[1]);
        return EXIT_USAGE;
    }
    struct lwc_options o = { .interval = 2.0, .settle_ms = -1, .since = -1, .budget = 5.0, .supp = lwc_supp_new() };
    if (!o.supp)
        return EXIT_USAGE;
    int rc = parse_arguments(v, argc - 2, argv + 2, &o);
    if (rc == EXIT_FINE && o.help) {
        print_verb_help(stdout, v);
        rc = lwc_finish_output(rc);
    }
    else if (rc == EXIT_FINE && (rc = environment_suppressions(v, &o)) == EXIT_FINE)
        rc = v->run(&o);
    lwc_supp_free(o.supp);
    return rc;
}
