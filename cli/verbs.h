/*
 * verbs.h — what the verbs share: the options of one command line (parsed
 * by main.c from each verb's own option table), the exit codes, the verbs
 * that live in files of their own (run, watch, metrics, exporter), and the
 * steps every verb takes to explain a process (process.c).
 */
#ifndef LWC_VERBS_H
#define LWC_VERBS_H

#include "render.h"
#include "suppress.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

enum { EXIT_FINE = 0, EXIT_LEAKS = 1, EXIT_USAGE = 2 };

struct lwc_options {
    bool json, all, check, help;
    bool attach;                    /* --attach: judge from outside even when a socket exists */
    const char *core;               /* --core FILE: judge a core dump */
    const char *exe;                /* --exe PATH: the program of that core */
    double since;                   /* --since SECONDS: every wait is at least this old; < 0 not given */
    bool man, bash_completion;      /* help --man, --bash-completion */
    const char *topic;              /* help VERB */
    pid_t pid;                      /* 0: none given */
    double interval;                /* watch --interval, seconds */
    long count;                     /* watch --count: refreshes, 0 = until quit */
    long settle_ms;                 /* run --settle, -1 when not given */
    double timeout;                 /* run --timeout, seconds, 0 = none */
    char **cmd;                     /* run: CMD ARGS…, NULL-terminated (inside argv) */
    const char *listen;             /* exporter --listen, NULL for the default */
    double budget;                  /* exporter --budget, seconds */
    const char *pprof;              /* threads --pprof FILE, NULL when not asked */
    struct lwc_suppressions *supp;  /* --ignore, --suppressions, LEAKWATCH_SUPPRESSIONS */
};

int lwc_cmd_run(const struct lwc_options *o);
int lwc_cmd_watch(const struct lwc_options *o);
int lwc_cmd_metrics(const struct lwc_options *o);
int lwc_cmd_exporter(const struct lwc_options *o);

/* Colour for a stream: a terminal, and NO_COLOR unset or empty. */
struct lwc_style lwc_style_for(int fd);

/* Ask one process; on failure print "leakwatch: [pid N: ]why" on stderr and
 * return NULL. */
json_object *lwc_ask_pid(pid_t pid, const char *request);

/* Where one process's replies come from (process.c): its socket; without
 * one, or with --attach, an attach from outside (cli/attach/, its samples
 * kept from one refresh to the next); or --core, a core file. */
struct lwa_session;
struct lwc_asker {
    const struct lwc_options *o;
    struct lwa_session *session;
};
void lwc_asker_init(struct lwc_asker *a, const struct lwc_options *o);
void lwc_asker_done(struct lwc_asker *a);
/* One reply ("status" or "threads"), or NULL with why in err; *gone: the
 * process is not there (any more). */
json_object *lwc_asker_ask(struct lwc_asker *a, const char *request, char *err, size_t size, bool *gone);
/* The same, printing "leakwatch: why" on stderr when it fails. */
json_object *lwc_asker_ask_or_say(struct lwc_asker *a, const char *request);

/* The view of one reply every verb shows: stacks symbolized into frames
 * when the reply has threads (the public JSON contract), suppressions
 * applied ("suppressed", summary.suppressed), and the growth alarm judged
 * from the history ("growth"). Made in place: the reply itself, changed (a
 * new reference to it); its stack table and modules are gone then. */
json_object *lwc_explain(json_object *reply, const struct lwc_suppressions *supp);

/* Replies to ask for: "threads" when suppressions need the stacks. */
const char *lwc_summary_request(const struct lwc_suppressions *supp);

/* A view about to be shown as text: every string escaped for a terminal
 * (printable.h). false, with a message, when out of memory. */
bool lwc_view_printable(json_object *view);

/* The verb's exit code rc once stdout is flushed: a write that failed is
 * an error (exit 2 and a message, /dev/full), except that a reader that
 * went away (a closed pipe: head) ends the command quietly with rc.
 * SIGPIPE is ignored (main.c) so that it can be told. */
int lwc_finish_output(int rc);
/* A reply the command is done with, just before it exits: kept reachable
 * until exit instead of freed object by object (see process.c). */
void lwc_drop_at_exit(json_object *o);

#endif
