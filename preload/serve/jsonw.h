/*
 * jsonw.h — a small JSON writer into a growable heap buffer, for the server
 * thread (it allocates; the application's threads never call it).
 *
 * Why not snprintf by hand: every reply must be valid JSON whatever the
 * process hands us (thread names and paths are arbitrary bytes), so commas,
 * escaping and UTF-8 repair live in one place. Commas are placed
 * automatically; strings always come out as valid UTF-8 (each invalid byte
 * becomes U+FFFD); non-finite numbers become null. Out of memory, nesting
 * deeper than JSONW_MAX_DEPTH or an unbalanced end sets a sticky `failed`
 * flag: the caller checks it once, at the end, and never sends such a buffer.
 */
#ifndef LW_JSONW_H
#define LW_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_MAX_DEPTH 32

struct jsonw {
    char *buf;          /* NUL-terminated once anything was written */
    size_t len, cap;
    bool failed;        /* sticky: the buffer must not be sent */
    int depth;
    bool need_comma[JSONW_MAX_DEPTH];
};

void jsonw_init(struct jsonw *w);
void jsonw_free(struct jsonw *w);
void jsonw_begin_object(struct jsonw *w);
void jsonw_end_object(struct jsonw *w);
void jsonw_begin_array(struct jsonw *w);
void jsonw_end_array(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_string(struct jsonw *w, const char *s);    /* NULL writes "" */
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
void jsonw_double(struct jsonw *w, double v);         /* "%.3f"; null when not finite */
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
void jsonw_hex(struct jsonw *w, uint64_t v);          /* "0x1a2b" (lower case) */
void jsonw_hex_or_null(struct jsonw *w, uint64_t v);  /* null for 0 */
void jsonw_raw_newline(struct jsonw *w);              /* the reply's terminating "\n" */

#endif
