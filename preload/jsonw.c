/*
 * jsonw.c — the JSON writer (see jsonw.h). Runs only on the server thread,
 * so it may allocate; it never aborts.
 */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w)
{
    memset(w, 0, sizeof *w);
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *bigger = realloc(w->buf, cap);
        if (!bigger) {
            w->failed = true;
            return;
        }
        w->buf = bigger;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void puts_(struct jsonw *w, const char *s) { put(w, s, strlen(s)); }

/* Before any value or key: the comma that separates it from the previous one. */
static void separate(struct jsonw *w)
{
    if (w->depth > 0 && w->depth <= JSONW_MAX_DEPTH) {
        if (w->need_comma[w->depth - 1])
            put(w, ",", 1);
        w->need_comma[w->depth - 1] = true;
    }
}

static void open_(struct jsonw *w, const char *c)
{
    separate(w);
    puts_(w, c);
    if (w->depth < JSONW_MAX_DEPTH)
        w->need_comma[w->depth] = false;
    w->depth++;
}

static void close_(struct jsonw *w, const char *c)
{
    if (w->depth > 0)
        w->depth--;
    puts_(w, c);
}

void jsonw_begin_object(struct jsonw *w) { open_(w, "{"); }
void jsonw_end_object(struct jsonw *w) { close_(w, "}"); }
void jsonw_begin_array(struct jsonw *w) { open_(w, "["); }
void jsonw_end_array(struct jsonw *w) { close_(w, "]"); }

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;   /* overlong, out of range or a surrogate */
    return n;
}

static void escaped(struct jsonw *w, const char *s)
{
    put(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        size_t n = utf8_sequence(p);
        if (n == 0) {
            puts_(w, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            put(w, e, 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", *p);
            puts_(w, e);
            p++;
        } else {
            put(w, (const char *)p, n);
            p += n;
        }
    }
    put(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
    separate(w);
    escaped(w, key);
    put(w, ":", 1);
    /* the value that follows must not add a comma */
    if (w->depth > 0 && w->depth <= JSONW_MAX_DEPTH)
        w->need_comma[w->depth - 1] = false;
}

/* After a key, the value must not be separated; after it, the next must be. */
static void value_done(struct jsonw *w)
{
    if (w->depth > 0 && w->depth <= JSONW_MAX_DEPTH)
        w->need_comma[w->depth - 1] = true;
}

#define SCALAR(w, body) do { separate(w); body; value_done(w); } while (0)

void jsonw_string(struct jsonw *w, const char *s) { SCALAR(w, escaped(w, s)); }
void jsonw_bool(struct jsonw *w, bool v) { SCALAR(w, puts_(w, v ? "true" : "false")); }
void jsonw_null(struct jsonw *w) { SCALAR(w, puts_(w, "null")); }

void jsonw_int(struct jsonw *w, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    SCALAR(w, puts_(w, b));
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    SCALAR(w, puts_(w, b));
}

void jsonw_double(struct jsonw *w, double v)
{
    char b[48];
    if (!isfinite(v))
        snprintf(b, sizeof b, "null");
    else
        snprintf(b, sizeof b, "%.3f", v);
    SCALAR(w, puts_(w, b));
}

void jsonw_hex(struct jsonw *w, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "\"0x%llx\"", (unsigned long long)v);
    SCALAR(w, puts_(w, b));
}

void jsonw_hex_or_null(struct jsonw *w, uint64_t v)
{
    if (v)
        jsonw_hex(w, v);
    else
        jsonw_null(w);
}

void jsonw_raw_newline(struct jsonw *w) { put(w, "\n", 1); }
