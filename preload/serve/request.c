/*
 * request.c — parsing the one-line requests of docs/protocol.md (see
 * request.h). Moved out of server.c so that the parser can be fuzzed on its
 * own (tests/fuzz/fuzz_request.c) without a socket, a thread or the preload.
 */
#include "serve/request.h"

#include <string.h>

static bool line_is_printable_ascii(const char *line, const char *end)
{
    for (const unsigned char *c = (const unsigned char *)line; c < (const unsigned char *)end; c++)
        if (*c < 0x20 || *c > 0x7e)   /* a NUL too */
            return false;
    return true;
}

enum lw_request_progress lw_request_examine(char *buf, size_t len, bool *more, const char **error)
{
    char *nl = memchr(buf, '\n', len);
    if (nl) {
        if (nl > buf && nl[-1] == '\r')
            nl--;
        if (!line_is_printable_ascii(buf, nl)) {
            *error = "bad request: only printable ASCII is accepted";
            return LW_REQUEST_BAD;
        }
        *more = buf + len > nl + 1 + (*nl == '\r');
        *nl = 0;
        return LW_REQUEST_LINE;
    }
    if (len >= LW_REQUEST_MAX) {
        *error = "bad request: longer than 256 bytes";
        return LW_REQUEST_BAD;
    }
    return LW_REQUEST_INCOMPLETE;
}

enum lw_request_verb lw_request_verb(const char *line)
{
    static const struct {
        const char *name;
        enum lw_request_verb verb;
    } verbs[] = {
        { "threads", LW_VERB_THREADS },
        { "status", LW_VERB_STATUS },
        { "ping", LW_VERB_PING },
        { "hooks", LW_VERB_HOOKS },
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(line, verbs[i].name) == 0)
            return verbs[i].verb;
    return LW_VERB_UNKNOWN;
}
