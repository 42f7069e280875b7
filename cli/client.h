/*
 * client.h — finding processes under leakwatch and asking them questions.
 */
#ifndef LWC_CLIENT_H
#define LWC_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

struct lwc_target {
    pid_t pid;
    char path[4096];   /* the socket, as the CLI can reach it */
};

/* Every live process with a leakwatch socket this user can see. Returns the
 * count; *out is malloc'ed (free it). Stale sockets we own are removed. */
size_t lwc_list_targets(struct lwc_target **out);

/* The socket of one process. false with a message in err when there is none. */
bool lwc_find_target(pid_t pid, struct lwc_target *out, char *err, size_t errsize);

/* Send one request line and parse the JSON reply. NULL with a message in
 * err on any failure (connection, timeout, malformed reply, error reply). */
json_object *lwc_ask(const struct lwc_target *t, const char *request, char *err, size_t errsize);

/* Small accessors that tolerate missing or mistyped fields. */
int64_t lwc_int(json_object *o, const char *key, int64_t fallback);
double lwc_double(json_object *o, const char *key, double fallback);
const char *lwc_str(json_object *o, const char *key, const char *fallback);
json_object *lwc_get(json_object *o, const char *key);   /* NULL if missing or null */

#endif
