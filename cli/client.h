/*
 * client.h — finding processes under leakwatch and asking them questions.
 *
 * Discovery only collects candidate socket paths (no connection is made);
 * lwc_ask tries them in order, removes stale ones, and returns the parsed
 * reply. Kept apart from rendering so every verb asks the same way.
 */
#ifndef LWC_CLIENT_H
#define LWC_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LWC_MAX_PATHS 8

struct lwc_target {
    pid_t pid;
    uid_t euid;                   /* the process's effective uid (when euid_known) */
    bool euid_known;
    size_t npaths;
    char *paths[LWC_MAX_PATHS];   /* candidate sockets, best first (malloc'ed) */
};

/* Why lwc_ask failed: decides the message and whether status lists hide it. */
enum lwc_failure {
    LWC_OK,
    LWC_NOT_LISTENING,   /* every candidate is stale, gone, or not ours to open */
    LWC_FAILED,          /* timeout, malformed reply, error reply, I/O error */
    LWC_NOT_ITS_OWN,     /* a socket named after the process is served by another one: not asked (and,
                            like a process without a socket, not listed) */
};

/* Every live process with a leakwatch socket this user can see, sorted by
 * pid. Returns the count; *out is malloc'ed (lwc_free_targets). */
size_t lwc_list_targets(struct lwc_target **out);
void lwc_free_targets(struct lwc_target *t, size_t n);

/* The sockets in one directory (e.g. a private LEAKWATCH_DIR), whether or
 * not their processes still exist, sorted by pid; *out as above. */
size_t lwc_list_targets_in(const char *dir, struct lwc_target **out);

/* Candidate sockets of one process. false with a message in err when the
 * process does not exist or has no candidate socket. */
bool lwc_find_target(pid_t pid, struct lwc_target *out, char *err, size_t errsize);
void lwc_clear_target(struct lwc_target *t);

/* Send one request line and parse the JSON reply (a new reference). NULL with
 * *why set and a message in err on any failure (made printable: it may
 * quote the process or a path). Starts the question's deadline
 * (deadline.h): the caller stops it once the reply is explained. Only a
 * socket whose peer is t->pid itself, running as its euid or root, is
 * asked. */
json_object *lwc_ask(const struct lwc_target *t, const char *request, enum lwc_failure *why,
                     char *err, size_t errsize);

/* Work for the wait between a request and its reply (the process may take
 * a tenth of a second to answer): until the first byte arrives, lwc_ask
 * calls step(ctx) again and again, each call a bounded piece of work,
 * until it returns false. Set before lwc_ask, on the thread that asks;
 * NULL: none. */
void lwc_set_waiting_work(bool (*step)(void *ctx), void *ctx);

/* Exactly one JSON object in text, within what parsing it may cost
 * (replybound.h); NULL with a message in err (out of memory said so). */
json_object *lwc_parse_reply(const char *text, size_t len, char *err, size_t errsize);

/* Small accessors that tolerate missing or mistyped fields. */
int64_t lwc_int(json_object *o, const char *key, int64_t fallback);
double lwc_double(json_object *o, const char *key, double fallback);
const char *lwc_str(json_object *o, const char *key, const char *fallback);
json_object *lwc_get(json_object *o, const char *key);   /* NULL if missing or null */
json_object *lwc_array(json_object *o, const char *key);  /* NULL unless an array */
size_t lwc_len(json_object *array);                        /* 0 unless an array */

/* A realloc'd array of n elements (capacity *cap) with room for one more:
 * items itself, or a copy of twice the capacity (`first` for an empty one);
 * NULL when out of memory, items and *cap untouched. */
void *lwc_room_for_one(void *items, size_t *cap, size_t n, size_t elem, size_t first);

#endif
