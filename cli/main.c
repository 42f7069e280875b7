/*
 * main.c — the leakwatch command: one row per verb in the table below, in
 * the manner of git's command table, so adding a verb is one function and one
 * row. Options are parsed the same way for every verb (--help, --json, --all,
 * a PID). Exit codes: 0 fine, 1 leaks found (where a verb checks), 2 usage or
 * connection error. The verbs only glue client.c (asking), symbolize.c and
 * the renderers together.
 */
#include "client.h"
#include "render.h"
#include "symbolize.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef LEAKWATCH_VERSION
#define LEAKWATCH_VERSION "unknown"
#endif

enum { EXIT_FINE = 0, EXIT_LEAKS = 1, EXIT_USAGE = 2 };

struct options {
    bool json, all, help;
    pid_t pid;          /* 0: none given */
};

struct verb {
    const char *name;
    int (*run)(const struct options *opt);
    const char *usage;
    const char *help;
    bool takes_pid, needs_pid, has_all;
};

static struct lwc_style style(void)
{
    const char *no_color = getenv("NO_COLOR");
    return (struct lwc_style){ .color = isatty(STDOUT_FILENO) && !(no_color && *no_color) };
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "leakwatch: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return EXIT_USAGE;
}

static bool has_stuck_threads(json_object *reply)
{
    json_object *s = lwc_get(reply, "summary");
    return lwc_int(s, "leaked", 0) > 0 || lwc_int(s, "deadlocked", 0) > 0;
}

/* Ask one process; on failure print "leakwatch: [pid N: ]why", return NULL. */
static json_object *ask_pid(pid_t pid, const char *request)
{
    struct lwc_target t;
    char err[1024];
    enum lwc_failure why;
    if (!lwc_find_target(pid, &t, err, sizeof err)) {
        fprintf(stderr, "leakwatch: %s\n", err);
        return NULL;
    }
    json_object *reply = lwc_ask(&t, request, &why, err, sizeof err);
    lwc_clear_target(&t);
    if (!reply && why == LWC_NOT_LISTENING)
        fprintf(stderr, "leakwatch: %s\n", err);
    else if (!reply)
        fprintf(stderr, "leakwatch: pid %d: %s\n", (int)pid, err);
    return reply;
}

/* {"version":1,"processes":[{pid, command, summary}, …]} */
static json_object *status_json(json_object **replies, size_t n)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "version", json_object_new_int(1));
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "pid", json_object_get(lwc_get(replies[i], "pid")));
        json_object_object_add(p, "command", json_object_get(lwc_get(replies[i], "command")));
        json_object_object_add(p, "summary", json_object_get(lwc_get(replies[i], "summary")));
        json_object_array_add(arr, p);
    }
    json_object_object_add(o, "processes", arr);
    return o;
}

/* ---- verbs ---- */

static int cmd_status_all(const struct options *opt)
{
    struct lwc_target *targets;
    size_t n = lwc_list_targets(&targets);
    json_object **replies = calloc(n ? n : 1, sizeof *replies);
    size_t ok = 0;
    bool stuck = false, failed = false;
    for (size_t i = 0; replies && i < n; i++) {
        char err[1024];
        enum lwc_failure why;
        json_object *r = lwc_ask(&targets[i], "status", &why, err, sizeof err);
        if (r) {
            replies[ok++] = r;
            stuck |= has_stuck_threads(r);
        } else if (why == LWC_FAILED) {   /* gone, stale or another user's: not listed, not an error */
            fprintf(stderr, "leakwatch: pid %d: %s\n", (int)targets[i].pid, err);
            failed = true;
        }
    }
    if (opt->json) {
        json_object *o = status_json(replies, ok);
        lwc_print_json(stdout, o);
        json_object_put(o);
    } else {
        struct lwc_style st = style();
        lwc_render_status_table(stdout, replies, ok, &st);
    }
    for (size_t i = 0; i < ok; i++)
        json_object_put(replies[i]);
    free(replies);
    lwc_free_targets(targets, n);
    return failed ? EXIT_USAGE : stuck ? EXIT_LEAKS : EXIT_FINE;
}

static int cmd_status(const struct options *opt)
{
    if (!opt->pid)
        return cmd_status_all(opt);
    json_object *r = ask_pid(opt->pid, "status");
    if (!r)
        return EXIT_USAGE;
    if (opt->json) {
        lwc_print_json(stdout, r);
    } else {
        struct lwc_style st = style();
        lwc_render_status_one(stdout, r, &st);
    }
    int rc = has_stuck_threads(r) ? EXIT_LEAKS : EXIT_FINE;
    json_object_put(r);
    return rc;
}

static int cmd_threads(const struct options *opt)
{
    json_object *r = ask_pid(opt->pid, "threads");
    if (!r)
        return EXIT_USAGE;
    struct lwc_symbolizer *sym = lwc_symbolizer_new(lwc_array(r, "modules"), opt->pid);
    json_object *pub = lwc_public_process(r, sym);
    if (opt->json) {
        lwc_print_json(stdout, pub);
    } else {
        struct lwc_style st = style();
        lwc_render_threads(stdout, pub, opt->all, &st);
    }
    json_object_put(pub);
    lwc_symbolizer_free(sym);
    json_object_put(r);
    return EXIT_FINE;
}

static int cmd_help(const struct options *opt);
static int cmd_version(const struct options *opt)
{
    (void)opt;
    printf("leakwatch %s\n", LEAKWATCH_VERSION);
    return EXIT_FINE;
}

static const struct verb verbs[] = {
    { "status", cmd_status, "leakwatch status [PID] [--json]",
      "Without PID: every process running under leakwatch, one line each with its\n"
      "thread counts by verdict. With PID: that process's summary (uptime, threads\n"
      "created, exited and peak, counts by verdict).\n"
      "Exits 1 if any process shown has leaked or deadlocked threads, 2 if a process\n"
      "could not be asked (no socket, timeout, error or malformed reply).",
      true, false, false },
    { "threads", cmd_threads, "leakwatch threads PID [--all] [--json]",
      "The thread dump of PID: what every thread waits on, for how long, why it is\n"
      "stuck, and where (symbolized wait and creation stacks). By default threads\n"
      "are grouped by verdict, creation site and wait site with a count, stuck\n"
      "groups first; --all lists every thread. --json prints the JSON contract,\n"
      "always with every thread, stacks as frames {pc, module, offset, function,\n"
      "file, line}.",
      true, true, true },
    { "help", cmd_help, "leakwatch help [VERB]", "Shows the verbs, or one verb's help.", false, false, false },
    { "version", cmd_version, "leakwatch version", "Prints the version.", false, false, false },
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

static void print_verb_help(FILE *out, const struct verb *v)
{
    fprintf(out, "usage: %s\n\n%s\n", v->usage, v->help);
    if (v->takes_pid && v->name[0] != 'h')
        fprintf(out, "\n  --json   machine-readable output (versioned JSON)\n");
    if (v->has_all)
        fprintf(out, "  --all    every thread instead of groups\n");
}

static void print_overview(FILE *out)
{
    fprintf(out, "usage: leakwatch VERB [ARGS]\n\n"
                 "Finds the threads of processes run with LD_PRELOAD=libleakwatch.so that wait\n"
                 "on something, and proves which can never wake up.\n\nverbs:\n");
    for (size_t i = 0; i < NVERBS; i++)
        fprintf(out, "  %s\n", verbs[i].usage);
    fprintf(out, "\n'leakwatch VERB --help' for details. Exit status: 0 fine, 1 leaks found,\n"
                 "2 usage or connection error.\n\n"
                 "environment:\n"
                 "  LEAKWATCH_DIR, XDG_RUNTIME_DIR  where sockets are looked for first (processes\n"
                 "                                  elsewhere are found through /proc as well)\n"
                 "  LEAKWATCH_TIMEOUT_MS            how long to wait for a process (default 10000)\n"
                 "  NO_COLOR                        no colour, even on a terminal\n");
}

static int cmd_help(const struct options *opt)
{
    (void)opt;
    print_overview(stdout);
    return EXIT_FINE;
}

static bool parse_pid(const char *s, pid_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > INT_MAX)
        return false;
    *out = (pid_t)v;
    return true;
}

static int parse_options(const struct verb *v, int argc, char **argv, struct options *opt)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            opt->help = true;
        else if (!strcmp(a, "--json") && v->takes_pid)
            opt->json = true;
        else if (!strcmp(a, "--all") && v->has_all)
            opt->all = true;
        else if (a[0] != '-' && v->takes_pid && !opt->pid) {
            if (!parse_pid(a, &opt->pid))
                return fail("not a process id: '%s'", a);
        } else if (v->run == cmd_help && a[0] != '-') {
            const struct verb *target = find_verb(a);
            if (!target)
                return fail("unknown verb '%s'; see 'leakwatch help'", a);
            print_verb_help(stdout, target);
            exit(EXIT_FINE);
        } else {
            fprintf(stderr, "leakwatch %s: unexpected argument '%s'\n", v->name, a);
            print_verb_help(stderr, v);
            return EXIT_USAGE;
        }
    }
    if (!opt->help && v->needs_pid && !opt->pid) {
        fprintf(stderr, "leakwatch %s: a process id is required\n", v->name);
        print_verb_help(stderr, v);
        return EXIT_USAGE;
    }
    return EXIT_FINE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(NULL);
    if (!strcmp(argv[1], "--version"))
        return cmd_version(NULL);
    const struct verb *v = find_verb(argv[1]);
    if (!v)
        return fail("unknown verb '%s'; see 'leakwatch help'", argv[1]);
    struct options opt = { 0 };
    int rc = parse_options(v, argc - 2, argv + 2, &opt);
    if (rc != EXIT_FINE)
        return rc;
    if (opt.help) {
        print_verb_help(stdout, v);
        return EXIT_FINE;
    }
    return v->run(&opt);
}
