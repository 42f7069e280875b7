/*
 * test_jsonw.c — unit test of the preload's JSON writer (preload/serve/jsonw.c).
 *
 * The server's replies carry bytes the host process chose (thread names,
 * paths, command lines), so the writer must produce valid JSON and valid
 * UTF-8 whatever it is given. This checks exact output for commas, nesting,
 * escapes, UTF-8 repair, numbers and addresses, the sticky error flag, and
 * finally feeds random byte strings through jsonw_string and validates every
 * result with an independent checker. Prints each failure; exits non-zero if
 * any.
 */
#include "serve/jsonw.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect_output(const char *what, struct jsonw *w, const char *want)
{
    const char *got = w->buf ? w->buf : "";
    if (w->failed) {
        printf("FAIL %s: the writer reported failure\n", what);
        failures++;
    } else if (strcmp(got, want) != 0) {
        printf("FAIL %s:\n  want %s\n  got  %s\n", what, want, got);
        failures++;
    }
    jsonw_free(w);
}

static void expect_true(const char *what, int cond)
{
    if (!cond) {
        printf("FAIL %s\n", what);
        failures++;
    }
}

/* The JSON text of one string written at top level. */
static void expect_string(const char *what, const char *in, const char *want)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_string(&w, in);
    expect_output(what, &w, want);
}

static void test_commas_and_nesting(void)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_begin_object(&w);
    jsonw_key(&w, "a");
    jsonw_int(&w, 1);
    jsonw_key(&w, "b");
    jsonw_begin_array(&w);
    jsonw_int(&w, 2);
    jsonw_begin_object(&w);
    jsonw_end_object(&w);
    jsonw_begin_array(&w);
    jsonw_end_array(&w);
    jsonw_null(&w);
    jsonw_end_array(&w);
    jsonw_key(&w, "c");
    jsonw_begin_object(&w);
    jsonw_key(&w, "d");
    jsonw_bool(&w, true);
    jsonw_key(&w, "e");
    jsonw_bool(&w, false);
    jsonw_end_object(&w);
    jsonw_key(&w, "f");
    jsonw_string(&w, "x");
    jsonw_end_object(&w);
    jsonw_raw_newline(&w);
    expect_output("commas and nesting", &w,
                  "{\"a\":1,\"b\":[2,{},[],null],\"c\":{\"d\":true,\"e\":false},\"f\":\"x\"}\n");

    jsonw_init(&w);
    jsonw_begin_array(&w);
    jsonw_end_array(&w);
    expect_output("empty array", &w, "[]");

    jsonw_init(&w);
    jsonw_begin_array(&w);
    for (int i = 0; i < 3; i++) {
        jsonw_begin_array(&w);
        jsonw_int(&w, i);
        jsonw_int(&w, i);
        jsonw_end_array(&w);
    }
    jsonw_end_array(&w);
    expect_output("arrays in an array", &w, "[[0,0],[1,1],[2,2]]");
}

static void test_escapes(void)
{
    expect_string("quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"");
    expect_string("newline, return, tab", "1\n2\r3\t", "\"1\\n2\\r3\\t\"");
    expect_string("other control bytes", "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    expect_string("slash is left alone", "/a/b", "\"/a/b\"");
    expect_string("NULL is the empty string", NULL, "\"\"");
    expect_string("empty string", "", "\"\"");

    struct jsonw w;
    jsonw_init(&w);
    jsonw_begin_object(&w);
    jsonw_key(&w, "k\"\n");
    jsonw_int(&w, 0);
    jsonw_end_object(&w);
    expect_output("keys are escaped", &w, "{\"k\\\"\\n\":0}");
}

static void test_utf8(void)
{
    expect_string("2-byte", "\xc3\xa9", "\"\xc3\xa9\"");
    expect_string("3-byte", "\xe2\x82\xac", "\"\xe2\x82\xac\"");
    expect_string("4-byte", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");
    expect_string("U+10FFFF", "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
    expect_string("lone continuation", "a\x80z", "\"a\\ufffdz\"");
    expect_string("0xff", "\xff", "\"\\ufffd\"");
    expect_string("overlong slash", "\xc0\xaf", "\"\\ufffd\\ufffd\"");
    expect_string("overlong 3-byte", "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_string("surrogate", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_string("above U+10FFFF", "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    expect_string("truncated at the end", "ok\xe2\x82", "\"ok\\ufffd\\ufffd\"");
    expect_string("truncated before ASCII", "\xe2\x82x", "\"\\ufffd\\ufffdx\"");
    expect_string("lead byte then lead byte", "\xc3\xc3\xa9", "\"\\ufffd\xc3\xa9\"");
}

static void test_numbers(void)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_begin_array(&w);
    jsonw_int(&w, INT64_MIN);
    jsonw_int(&w, -1);
    jsonw_uint(&w, UINT64_MAX);
    jsonw_double(&w, 1.5);
    jsonw_double(&w, -0.25);
    jsonw_double(&w, 12.3456);
    jsonw_double(&w, NAN);
    jsonw_double(&w, INFINITY);
    jsonw_double(&w, -INFINITY);
    jsonw_end_array(&w);
    expect_output("numbers", &w,
                  "[-9223372036854775808,-1,18446744073709551615,1.500,-0.250,12.346,null,null,null]");

    jsonw_init(&w);
    jsonw_double(&w, 1e300);
    expect_true("a huge double stays short", w.len < 30 && !w.failed);
    expect_true("a huge double is a number", w.buf && strtod(w.buf, NULL) == 1e300);
    jsonw_free(&w);
}

static void test_addresses(void)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_begin_array(&w);
    jsonw_hex(&w, 0);
    jsonw_hex(&w, 0xdeadbeefULL);
    jsonw_hex(&w, UINT64_MAX);
    jsonw_hex_or_null(&w, 0);
    jsonw_hex_or_null(&w, 0x10);
    jsonw_end_array(&w);
    expect_output("addresses", &w, "[\"0x0\",\"0xdeadbeef\",\"0xffffffffffffffff\",null,\"0x10\"]");
}

static void test_sticky_failure(void)
{
    struct jsonw w;
    jsonw_init(&w);
    for (int i = 0; i < JSONW_MAX_DEPTH + 2; i++)
        jsonw_begin_array(&w);
    expect_true("nesting too deep sets failed", w.failed);
    jsonw_int(&w, 1);
    expect_true("failed is sticky", w.failed);
    jsonw_free(&w);

    jsonw_init(&w);
    for (int i = 0; i < JSONW_MAX_DEPTH; i++)
        jsonw_begin_array(&w);
    for (int i = 0; i < JSONW_MAX_DEPTH; i++)
        jsonw_end_array(&w);
    expect_true("the deepest allowed nesting works", !w.failed && w.len == 2 * JSONW_MAX_DEPTH);
    jsonw_free(&w);

    jsonw_init(&w);
    jsonw_end_object(&w);
    expect_true("an end without a begin sets failed", w.failed);
    jsonw_free(&w);
}

static void test_growth(void)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_begin_array(&w);
    for (int i = 0; i < 100000; i++)
        jsonw_int(&w, 7);
    jsonw_end_array(&w);
    int ok = !w.failed && w.len == 2 + 100000 + 99999 && w.buf[0] == '[' && w.buf[w.len - 1] == ']' &&
             strlen(w.buf) == w.len;
    expect_true("a large buffer grows and stays terminated", ok);
    jsonw_free(&w);
}

/* ---- an independent checker: is s exactly one valid JSON string of
 * valid UTF-8, with no raw control characters? ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int utf8_valid_at(const unsigned char *p, size_t left, size_t *n)
{
    unsigned char c = p[0];
    uint32_t cp;
    if (c < 0x80) { *n = 1; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { *n = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { *n = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { *n = 4; cp = c & 0x07; }
    else return 0;
    if (left < *n) return 0;
    for (size_t i = 1; i < *n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((*n == 3 && cp < 0x800) || (*n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return 1;
}

static int is_valid_json_string(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    if (len < 2 || p[0] != '"' || end[-1] != '"')
        return 0;
    for (p++; p < end - 1;) {
        if (*p == '"' || *p < 0x20)
            return 0;
        if (*p == '\\') {
            if (p + 1 >= end - 1) return 0;
            char e = (char)p[1];
            if (e == 'u') {
                if (p + 6 > end - 1) return 0;
                for (int i = 2; i < 6; i++)
                    if (hex_value((char)p[i]) < 0) return 0;
                p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                p += 2;
            } else {
                return 0;
            }
            continue;
        }
        size_t n;
        if (!utf8_valid_at(p, (size_t)(end - 1 - p), &n))
            return 0;
        p += n;
    }
    return p == end - 1;
}

static void test_random_bytes_always_valid(void)
{
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    char in[64];
    int bad = 0;
    for (int round = 0; round < 20000 && bad < 5; round++) {
        size_t n = 0, len = (size_t)(round % 63);
        while (n < len) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char c = (char)(state >> 24);
            if (c)
                in[n++] = c;
        }
        in[n] = 0;
        struct jsonw w;
        jsonw_init(&w);
        jsonw_string(&w, in);
        if (w.failed || !w.buf || !is_valid_json_string(w.buf, w.len)) {
            printf("FAIL random bytes: invalid output for input of %zu bytes:", n);
            for (size_t i = 0; i < n; i++)
                printf(" %02x", (unsigned char)in[i]);
            printf("\n  got %s\n", w.buf ? w.buf : "(nothing)");
            failures++;
            bad++;
        }
        jsonw_free(&w);
    }
}

static void test_checker_itself(void)
{
    expect_true("checker accepts a valid string", is_valid_json_string("\"a\\u0001\xc3\xa9\"", 11));
    expect_true("checker rejects a raw control byte", !is_valid_json_string("\"a\x01\"", 4));
    expect_true("checker rejects a bad byte", !is_valid_json_string("\"\xff\"", 3));
    expect_true("checker rejects an inner quote", !is_valid_json_string("\"a\"b\"", 5));
}

int main(void)
{
    test_commas_and_nesting();
    test_escapes();
    test_utf8();
    test_numbers();
    test_addresses();
    test_sticky_failure();
    test_growth();
    test_checker_itself();
    test_random_bytes_always_valid();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("jsonw: all tests passed\n");
    return 0;
}
