/*
 * attach.h — judging a process that was not started under leakwatch, from
 * outside (attach.c), or a core file (corefile.c): the same snapshot
 * model, the same analysis and reachability scan as the preload's (the
 * engine in preload/core, linked into this program), fed from ptrace,
 * /proc and libdwfl instead of hooks. The answer is the preload's reply
 * (docs/protocol.md) with "source":"attach" or "core", so that every verb
 * shows it the same way.
 */
#ifndef LWA_ATTACH_H
#define LWA_ATTACH_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lwa_options {
    unsigned settle_ms;      /* a wait counts once it lasted this long (two samples this far apart) */
    unsigned stall_ms;       /* the suspect threshold */
    double since;            /* --since: the person says every wait is at least this old; < 0 not said */
    bool want_paths;         /* rule 3's paths for what stays reachable (a thread dump wants them) */
};

/* One process attached to again and again (watch). */
struct lwa_session;
struct lwa_session *lwa_session_new(pid_t pid);
void lwa_session_free(struct lwa_session *s);

/* Attach to the session's process, judge it, let it go: the reply (a new
 * reference), or NULL with why (exit code 2 for every failure). */
json_object *lwa_attach(struct lwa_session *s, const struct lwa_options *o, char *why, size_t size);

/* A core file (with the program, when the core does not lead to it). */
json_object *lwa_judge_core(const char *core, const char *exe, const struct lwa_options *o, char *why, size_t size);

#endif
