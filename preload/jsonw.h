/*
 * jsonw.h — a small JSON writer into a growable buffer, for the server thread.
 *
 * Commas are placed automatically; strings are escaped and always come out
 * as valid UTF-8 (invalid bytes become U+FFFD); non-finite numbers become
 * null. Out of memory sets a sticky flag checked once at the end.
 */
#ifndef LW_JSONW_H
#define LW_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_MAX_DEPTH 32

struct jsonw {
    char *buf;
    size_t len, cap;
    bool failed;
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
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
void jsonw_double(struct jsonw *w, double v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
void jsonw_hex(struct jsonw *w, uint64_t v);         /* "0x1a2b" */
void jsonw_hex_or_null(struct jsonw *w, uint64_t v); /* null for 0 */
void jsonw_raw_newline(struct jsonw *w);

#endif
