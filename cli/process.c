/*
 * process.c — the steps between a reply and any view of it, shared by every
 * verb (verbs.h): asking one process with the usual messages, symbolizing,
 * applying suppressions, judging growth, and the colour decision.
 */
#include "verbs.h"
#include "client.h"
#include "history.h"
#include "symbolize.h"

#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

json_object *lwc_explain(json_object *reply, const struct lwc_suppressions *supp)
{
    json_object *o;
    if (lwc_get(reply, "threads")) {
        pid_t pid = (pid_t)lwc_int(reply, "pid", 0);
        struct lwc_symbolizer *sym = lwc_symbolizer_new(lwc_array(reply, "modules"), pid > 0 ? pid : 0);
        o = lwc_public_process(reply, sym);
        lwc_symbolizer_free(sym);
    } else {
        o = shallow_copy(reply);
    }
    lwc_supp_apply(supp, o);
    json_object_object_add(o, "growth", lwc_growth_json(lwc_get(reply, "history")));
    return o;
}
