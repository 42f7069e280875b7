/*
 * jsonw.c — the JSON writer (see jsonw.h). Runs only on the server thread,
 * so it may allocate; it never aborts and never reads past a string's NUL.
 */
#include "serve/jsonw.h"

#include <math.h>   /* isfinite */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

void jsonw_init(struct jsonw *w)
{
    memset(w, 0, sizeof *w);
}

void jsonw_free(struct jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* ---- the buffer ---- */

static bool make_room_for(struct jsonw *w, size_t n)
{
    if (w->len + n + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n + 1) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    char *bigger = realloc(w->buf, cap);
    if (!bigger)
        return false;
    w->buf = bigger;
    w->cap = cap;
    return true;
}

static void append_bytes(struct jsonw *w, const char *s, size_t n)
{
    if (w->failed)
        return;
    if (!make_room_for(w, n)) {
        w->failed = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

static void append_text(struct jsonw *w, const char *s)
{
    append_bytes(w, s, strlen(s));
}

/* ---- commas ---- */

/* Before a value or a key: the comma that separates it from the previous
 * one in the same container. A key clears the flag again, so the value that
 * follows it is not separated from its key. */
static void separate_from_previous(struct jsonw *w)
{
    if (w->depth <= 0 || w->depth > JSONW_MAX_DEPTH)
        return;
    if (w->need_comma[w->depth - 1])
        append_bytes(w, ",", 1);
    w->need_comma[w->depth - 1] = true;
}

static void open_container(struct jsonw *w, const char *bracket)
{
    separate_from_previous(w);
    if (w->depth >= JSONW_MAX_DEPTH) {
        w->failed = true;   /* deeper than we can track commas for */
        return;
    }
    append_text(w, bracket);
    w->need_comma[w->depth] = false;
    w->depth++;
}

static void close_container(struct jsonw *w, const char *bracket)
{
    if (w->depth <= 0) {
        w->failed = true;   /* an end without a begin */
        return;
    }
    w->depth--;
    append_text(w, bracket);
}

void jsonw_begin_object(struct jsonw *w) { open_container(w, "{"); }
void jsonw_end_object(struct jsonw *w) { close_container(w, "}"); }
void jsonw_begin_array(struct jsonw *w) { open_container(w, "["); }
void jsonw_end_array(struct jsonw *w) { close_container(w, "]"); }

/* ---- strings ---- */

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when the byte
 * at s does not start one: a stray continuation byte, a truncated sequence
 * (the NUL terminator fails the continuation test, so we never read past
 * it), an overlong form, a surrogate or a code point above U+10FFFF. */
static size_t utf8_sequence_length(const unsigned char *s)
{
    unsigned char lead = s[0];
    size_t n;
    uint32_t cp;
    if (lead < 0x80)
        return 1;
    if ((lead & 0xe0) == 0xc0) { n = 2; cp = lead & 0x1f; }
    else if ((lead & 0xf0) == 0xe0) { n = 3; cp = lead & 0x0f; }
    else if ((lead & 0xf8) == 0xf0) { n = 4; cp = lead & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const uint32_t smallest[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < smallest[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void append_control_escape(struct jsonw *w, unsigned char c)
{
    switch (c) {
    case '\n': append_bytes(w, "\\n", 2); return;
    case '\r': append_bytes(w, "\\r", 2); return;
    case '\t': append_bytes(w, "\\t", 2); return;
    default: {
        char e[6] = { '\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15] };
        append_bytes(w, e, sizeof e);
    }
    }
}

/* How many bytes from p on need no escape and are plain ASCII: copied
 * as one piece (a reply of 10,000 threads is mostly such runs). */
static size_t plain_run(const unsigned char *p)
{
    size_t n = 0;
    while (p[n] >= 0x20 && p[n] < 0x7f && p[n] != '"' && p[n] != '\\')
        n++;
    return n;
}

static void append_quoted(struct jsonw *w, const char *s)
{
    append_bytes(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && !w->failed) {
        size_t n = plain_run(p);
        if (n) {
            append_bytes(w, (const char *)p, n);
            p += n;
            continue;
        }
        n = utf8_sequence_length(p);
        if (n == 0) {
            append_bytes(w, "\\ufffd", 6);
            p++;
        } else if (*p == '"' || *p == '\\') {
            char e[2] = { '\\', (char)*p };
            append_bytes(w, e, 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            append_control_escape(w, *p);
            p++;
        } else {
            append_bytes(w, (const char *)p, n);   /* one well-formed code point */
            p += n;
        }
    }
    append_bytes(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
    separate_from_previous(w);
    append_quoted(w, key);
    append_bytes(w, ":", 1);
    if (w->depth > 0 && w->depth <= JSONW_MAX_DEPTH)
        w->need_comma[w->depth - 1] = false;
}

/* ---- scalars ---- */

static void append_value(struct jsonw *w, const char *text)
{
    separate_from_previous(w);
    append_text(w, text);
}

void jsonw_string(struct jsonw *w, const char *s)
{
    separate_from_previous(w);
    append_quoted(w, s);
}

void jsonw_bool(struct jsonw *w, bool v) { append_value(w, v ? "true" : "false"); }
void jsonw_null(struct jsonw *w) { append_value(w, "null"); }

void jsonw_int(struct jsonw *w, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    append_value(w, b);
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    append_value(w, b);
}

/* Three decimals for the times we report; huge magnitudes in exponent form
 * (still a JSON number) rather than hundreds of digits. */
void jsonw_double(struct jsonw *w, double v)
{
    char b[48];
    if (!isfinite(v))
        snprintf(b, sizeof b, "null");
    else if (v > -1e15 && v < 1e15)
        snprintf(b, sizeof b, "%.3f", v);
    else
        snprintf(b, sizeof b, "%.17g", v);
    append_value(w, b);
}

void jsonw_hex(struct jsonw *w, uint64_t v)
{
    char b[24], *p = b + sizeof b;
    *--p = 0;
    *--p = '"';
    do {
        *--p = hex_digits[v & 15];
        v >>= 4;
    } while (v);
    *--p = 'x';
    *--p = '0';
    *--p = '"';
    append_value(w, p);
}

void jsonw_hex_or_null(struct jsonw *w, uint64_t v)
{
    if (v)
        jsonw_hex(w, v);
    else
        jsonw_null(w);
}

void jsonw_raw_newline(struct jsonw *w)
{
    append_bytes(w, "\n", 1);
}
