/*
 * main.c — the leakwatch command: one row per verb in the table below, in
 * the manner of git's command table. Exit codes: 0 fine, 1 leaks found
 * (where a verb checks), 2 usage or connection error.
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

static void print_json(json_object *o)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool has_stuck_threads(json_object *reply)
{
    json_object *s = lwc_get(reply, "summary");
    return lwc_int(s, "leaked", 0) > 0 || lwc_int(s, "deadlocked", 0) > 0;
}

/* Ask one process; on failure print "leakwatch: pid N: why" and return NULL. */
static json_object *ask_pid(pid_t pid, const char *request)
{
    struct lwc_target t;
    char err[512];
    if (!lwc_find_target(pid, &t, err, sizeof err)) {
        fprintf(stderr, "leakwatch: %s\n", err);
        return NULL;
    }
    json_object *reply = lwc_ask(&t, request, err, sizeof err);
    if (!reply)
        fprintf(stderr, "leakwatch: pid %d: %s\n", (int)pid, err);
    return reply;
}

/* ---- verbs ---- */

static int cmd_status_all(const struct options *opt)
{
    struct lwc_target *targets;
    size_t n = lwc_list_targets(&targets);
    json_object **replies = calloc(n ? n : 1, sizeof *replies);
    size_t ok = 0;
    bool stuck = false;
    for (size_t i = 0; replies && i < n; i++) {
        char err[512];
        json_object *r = lwc_ask(&targets[i], "status", err, sizeof err);
        if (!r)
            continue;   /* it exited meanwhile, or refused us: not ours to list */
        replies[ok++] = r;
        stuck |= has_stuck_threads(r);
    }
    if (opt->json) {
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        json_object_object_add(o, "version", json_object_new_int(1));
        for (size_t i = 0; i < ok; i++) {
            json_object *p = json_object_new_object();
            json_object_object_add(p, "pid", json_object_get(lwc_get(replies[i], "pid")));
            json_object_object_add(p, "command", json_object_get(lwc_get(replies[i], "command")));
            json_object_object_add(p, "summary", json_object_get(lwc_get(replies[i], "summary")));
            json_object_array_add(arr, p);
        }
        json_object_object_add(o, "processes", arr);
        print_json(o);
        json_object_put(o);
    } else {
        struct lwc_style st = style();
        lwc_render_status_table(stdout, replies, ok, &st);
    }
    for (size_t i = 0; i < ok; i++)
        json_object_put(replies[i]);
    free(replies);
    free(targets);
    return stuck ? EXIT_LEAKS : EXIT_FINE;
}

static int cmd_status(const struct options *opt)
{
    if (!opt->pid)
        return cmd_status_all(opt);
    json_object *r = ask_pid(opt->pid, "status");
    if (!r)
        return EXIT_USAGE;
    if (opt->json) {
        print_json(r);
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
    struct lwc_symbolizer *sym = lwc_symbolizer_new(lwc_get(r, "modules"));
    json_object *pub = lwc_public_process(r, sym);
    if (opt->json) {
        print_json(pub);
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
      "thread counts by verdict. With PID: that process's summary.\n"
      "Exits 1 if any process shown has leaked or deadlocked threads.",
      true, false, false },
    { "threads", cmd_threads, "leakwatch threads PID [--all] [--json]",
      "The thread dump of PID: what every thread waits on, for how long, why it is\n"
      "stuck, and where (symbolized wait and creation stacks). By default threads\n"
      "are grouped by verdict, creation site and wait site with a count, stuck\n"
      "groups first; --all lists every thread; --json prints the JSON contract.",
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
                 "2 usage or connection error. NO_COLOR disables colour.\n");
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
