/*
 * reference.h — what the request protocol (docs/protocol.md, "Requests")
 * says should become of a byte stream, written plainly and independently of
 * preload/serve/request.c, for the fuzz targets to compare against: the first
 * newline within the first 256 bytes ends the line; a "\r" before it is
 * dropped; the line must be printable ASCII; no newline within 256 bytes is a
 * bad request; a stream that ends sooner is a hang-up.
 */
#ifndef LW_FUZZ_REFERENCE_H
#define LW_FUZZ_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum expected_outcome { EXPECT_LINE, EXPECT_NOT_PRINTABLE, EXPECT_TOO_LONG, EXPECT_HANG_UP };

struct expected_request {
    enum expected_outcome outcome;
    size_t newline_at;   /* EXPECT_LINE and EXPECT_NOT_PRINTABLE: index of the newline */
    size_t line_len;     /* EXPECT_LINE: the line's length without "\r\n" */
    const char *verb;    /* EXPECT_LINE: "ping", "status", "threads", "hooks" or NULL */
};

static inline struct expected_request expect_request(const unsigned char *data, size_t size)
{
    struct expected_request e = { EXPECT_HANG_UP, 0, 0, NULL };
    size_t window = size < 256 ? size : 256;
    size_t i = 0;
    while (i < window && data[i] != '\n')
        i++;
    if (i == window) {
        e.outcome = size >= 256 ? EXPECT_TOO_LONG : EXPECT_HANG_UP;
        return e;
    }
    e.newline_at = i;
    size_t end = (i > 0 && data[i - 1] == '\r') ? i - 1 : i;
    for (size_t k = 0; k < end; k++) {
        if (data[k] < 0x20 || data[k] > 0x7e) {
            e.outcome = EXPECT_NOT_PRINTABLE;
            return e;
        }
    }
    e.outcome = EXPECT_LINE;
    e.line_len = end;
    static const char *const verbs[] = { "ping", "status", "threads", "hooks" };
    for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
        if (strlen(verbs[v]) == end && memcmp(verbs[v], data, end) == 0)
            e.verb = verbs[v];
    return e;
}

#endif
