/*
 * process.c — the steps between a reply and any view of it, shared by every
 * verb (verbs.h): asking one process with the usual messages, symbolizing,
 * applying suppressions, judging growth, the colour decision, making a view
 * safe for a terminal, and finishing the output (every write checked).
 */
#include "verbs.h"
#include "attach/attach.h"
#include "client.h"
#include "deadline.h"
#include "history.h"
#include "printable.h"
#include "symbolize.h"

#include <errno.h>
#include <langinfo.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lwc_style lwc_style_for(int fd)
{
    const char *no_color = getenv("NO_COLOR");
    const char *charset = nl_langinfo(CODESET);   /* main called setlocale(LC_CTYPE, "") */
    return (struct lwc_style){ .color = isatty(fd) && !(no_color && *no_color),
                               .utf8 = charset && strcmp(charset, "UTF-8") == 0 };
}

json_object *lwc_ask_pid(pid_t pid, const char *request)
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
    if (!reply)
        lwc_deadline_stop();
    if (!reply && why != LWC_FAILED)
        fprintf(stderr, "leakwatch: %s\n", err);
    else if (!reply)
        fprintf(stderr, "leakwatch: pid %d: %s\n", (int)pid, err);
    return reply;
}

/* ---- where replies come from ---- */

void lwc_asker_init(struct lwc_asker *a, const struct lwc_options *o)
{
    a->o = o;
    a->session = NULL;
}

void lwc_asker_done(struct lwc_asker *a)
{
    lwa_session_free(a->session);
    a->session = NULL;
}

static struct lwa_options attach_options(const struct lwc_options *o, const char *request)
{
    return (struct lwa_options){ .settle_ms = o->settle_ms >= 0 ? (unsigned)o->settle_ms : 1000u,
                                 .stall_ms = 30000u, .since = o->since,
                                 .want_paths = strcmp(request, "threads") == 0 };
}

/* Judged from outside; "attach": {"why": …} says why it was not asked. */
static json_object *ask_from_outside(struct lwc_asker *a, const char *request, const char *why_outside, char *err,
                                     size_t size, bool *gone)
{
    if (!a->session && !(a->session = lwa_session_new(a->o->pid))) {
        snprintf(err, size, "out of memory");
        return NULL;
    }
    struct lwa_options ao = attach_options(a->o, request);
    json_object *reply = lwa_attach(a->session, &ao, err, size);
    if (!reply) {
        *gone = kill(a->o->pid, 0) != 0 && errno == ESRCH;
        return NULL;
    }
    /* The process is detached: from here on the question's deadline bounds
     * what is left, symbolizing (never the freeze: the watchdog's _exit
     * must not land while the process is held). The caller stops it. */
    lwc_deadline_start(a->o->pid);
    json_object *facts = lwc_get(reply, "attach");
    if (facts)
        json_object_object_add(facts, "why", json_object_new_string(why_outside));
    return reply;
}

json_object *lwc_asker_ask(struct lwc_asker *a, const char *request, char *err, size_t size, bool *gone)
{
    *gone = false;
    if (a->o->core) {
        struct lwa_options ao = attach_options(a->o, request);
        return lwa_judge_core(a->o->core, a->o->exe, &ao, err, size);
    }
    if (a->o->attach || a->session)
        return ask_from_outside(a, request, a->o->attach ? "--attach" : "no leakwatch socket", err, size, gone);
    struct lwc_target t;
    enum lwc_failure why = LWC_NOT_LISTENING;
    json_object *reply = NULL;
    if (lwc_find_target(a->o->pid, &t, err, size)) {
        reply = lwc_ask(&t, request, &why, err, size);
        lwc_clear_target(&t);
    }
    if (reply)
        return reply;
    lwc_deadline_stop();   /* (no watchdog while attaching) */
    if (why == LWC_FAILED)
        return NULL;
    if (why == LWC_NOT_ITS_OWN) {
        /* Someone else answers in its name: not attached to behind the
         * person's back either (--attach says they know). */
        size_t len = strlen(err);
        if (len < size)
            snprintf(err + len, size - len, " (--attach judges pid %d from outside)", (int)a->o->pid);
        return NULL;
    }
    if (kill(a->o->pid, 0) != 0 && errno == ESRCH) {
        snprintf(err, size, "no such process: %d", (int)a->o->pid);
        *gone = true;
        return NULL;
    }
    return ask_from_outside(a, request, "no leakwatch socket", err, size, gone);
}

json_object *lwc_asker_ask_or_say(struct lwc_asker *a, const char *request)
{
    char err[1024] = "";
    bool gone;
    json_object *reply = lwc_asker_ask(a, request, err, sizeof err, &gone);
    if (!reply && (a->o->core || gone))
        fprintf(stderr, "leakwatch: %s\n", err);
    else if (!reply)
        fprintf(stderr, "leakwatch: pid %d: %s\n", (int)a->o->pid, err);
    return reply;
}

const char *lwc_summary_request(const struct lwc_suppressions *supp)
{
    return lwc_supp_count(supp) ? "threads" : "status";
}

/* The symbolizer opened no more module files once the deadline was near:
 * say so among the notes (the reply's own array, or a new one). */
static void note_cut_short(json_object *o)
{
    json_object *notes = lwc_array(o, "notes");
    if (!notes) {
        notes = json_object_new_array();
        json_object_object_add(o, "notes", notes);
    }
    char note[160];
    snprintf(note, sizeof note, "symbolization stopped near LEAKWATCH_TIMEOUT_MS (%d ms): the frames of the modules "
             "not read by then show module+offset", lwc_timeout_ms());
    json_object_array_add(notes, json_object_new_string(note));
}

json_object *lwc_explain(json_object *reply, const struct lwc_suppressions *supp)
{
    json_object *o;
    if (lwc_get(reply, "threads")) {
        pid_t pid = (pid_t)lwc_int(reply, "pid", 0);
        struct lwc_symbolizer *sym = lwc_symbolizer_new(lwc_array(reply, "modules"), pid > 0 ? pid : 0);
        o = lwc_public_process(reply, sym);
        if (o && lwc_symbolizer_cut_short(sym))
            note_cut_short(o);
        lwc_symbolizer_free(sym);
    } else {
        o = json_object_get(reply);
    }
    if (!o)
        return NULL;
    lwc_supp_apply(supp, o);
    json_object_object_add(o, "growth", lwc_growth_json(lwc_get(reply, "history")));
    return o;
}

bool lwc_view_printable(json_object *view)
{
    if (lwc_make_printable(view))
        return true;
    fprintf(stderr, "leakwatch: out of memory making the report safe to print\n");
    return false;
}

/* The reader of a pipe or socket went away (head, grep -q): poll says
 * POLLERR on its writing end. */
static bool reader_went_away(int fd)
{
    struct stat st;
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) && poll(&p, 1, 0) == 1 &&
           (p.revents & POLLERR);
}

/* A reply of 10,000 threads and its view are trees of about a million
 * objects: freeing them one by one took a fifth of `threads --json`'s time,
 * just before exit hands all the memory back at once. A command about to
 * exit leaves them here instead, still reachable (a leak checker sees
 * nothing lost); past the slots they are freed as usual. */
static json_object *left_until_exit[4];

void lwc_drop_at_exit(json_object *o)
{
    for (size_t i = 0; o && i < sizeof left_until_exit / sizeof *left_until_exit; i++)
        if (!left_until_exit[i]) {
            left_until_exit[i] = o;
            return;
        }
    json_object_put(o);
}

int lwc_finish_output(int rc)
{
    errno = 0;
    bool flushed = fflush(stdout) == 0;
    int err = errno;
    if (flushed && !ferror(stdout))
        return rc;
    if (err == EPIPE || reader_went_away(STDOUT_FILENO))
        return rc;   /* the reader had read enough: not an error, and nothing to say */
    if (err)
        fprintf(stderr, "leakwatch: cannot write the output: %s\n", strerror(err));
    else   /* (it failed earlier, and stdio kept no errno: as coreutils says it) */
        fprintf(stderr, "leakwatch: cannot write the output: write error\n");
    return EXIT_USAGE;
}
