/*
 * process.c — the steps between a reply and any view of it, shared by every
 * verb (verbs.h): asking one process with the usual messages, symbolizing,
 * applying suppressions, judging growth, the colour decision, making a view
 * safe for a terminal, and finishing the output (every write checked).
 */
#include "verbs.h"
#include "client.h"
#include "deadline.h"
#include "history.h"
#include "printable.h"
#include "symbolize.h"

#include <errno.h>
#include <langinfo.h>
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
    if (!reply && why == LWC_NOT_LISTENING)
        fprintf(stderr, "leakwatch: %s\n", err);
    else if (!reply)
        fprintf(stderr, "leakwatch: pid %d: %s\n", (int)pid, err);
    return reply;
}

const char *lwc_summary_request(const struct lwc_suppressions *supp)
{
    return lwc_supp_count(supp) ? "threads" : "status";
}

/* Every field but "threads"-sized ones, shared: for replies without threads. */
static json_object *shallow_copy(json_object *reply)
{
    json_object *o = json_object_new_object();
    json_object_object_foreach(reply, key, val)
        json_object_object_add(o, key, json_object_get(val));
    return o;
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
        o = shallow_copy(reply);
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
