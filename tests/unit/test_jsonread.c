/*
 * test_jsonread.c — cli/jsonread.c against json-c's own tokener: whatever
 * text the fast reader takes, it must build exactly the object json-c's
 * parse builds (the same JSON printed, the same type at every node); what
 * it declines, json-c decides. Hand-written cases (jsonw's escapes, every
 * number form, json-c's extensions, which it must decline), a reply the
 * preload writes, then random documents and random damage to them, from a
 * fixed seed (JSONREAD_SEED=N replays another).
 */
#include "check.h"
#include "jsonread.h"
#include "jsonread_oracle.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t taken, declined;

/* The oracle: fast is NULL, or what json-c builds. */
static void compare(const char *text, size_t len, const char *what)
{
    json_object *fast = lwc_json_read_object(text, len);
    json_object *slow = tokener_parse(text, len);
    if (fast) {
        taken++;
        CHECK(slow, "%s: taken, but json-c refuses it: %.*s", what, (int)(len < 200 ? len : 200), text);
        if (slow)
            CHECK(same_tree(fast, slow), "%s: %.*s: %s vs json-c's %s", what, (int)(len < 300 ? len : 300), text, json_object_to_json_string_ext(fast, FLAGS),
                  json_object_to_json_string_ext(slow, FLAGS));
    } else {
        declined++;
    }
    json_object_put(fast);
    json_object_put(slow);
}

static void taken_as_json_c(const char *text)
{
    json_object *fast = lwc_json_read_object(text, strlen(text));
    CHECK(fast, "strict JSON declined: %s", text);
    json_object_put(fast);
    compare(text, strlen(text), "case");
}

static void declined_for_json_c(const char *text)
{
    json_object *fast = lwc_json_read_object(text, strlen(text));
    CHECK(!fast, "should be left to json-c: %s", text);
    json_object_put(fast);
}

static void hand_written(void)
{
    static const char *const strict[] = {
        "{}", " {} \n", "{\"a\":{}}", "{\"a\":[]}", "{\"a\":[1,2,[3,{}]]}",
        "{\"a\":1,\"b\":-1,\"c\":0,\"d\":123456789012345678,\"e\":-123456789012345678}",
        "{\"a\":2.50,\"b\":1e3,\"c\":1E+2,\"d\":-0.5,\"e\":0.0,\"f\":1.5e-300,\"g\":12.345678901234567890}",
        "{\"t\":true,\"f\":false,\"n\":null}",
        "{\"s\":\"plain\",\"e\":\"\",\"q\":\"a\\\"b\\\\c\\/d\",\"c\":\"\\b\\f\\n\\r\\t\"}",
        "{\"u\":\"\\u0001\\u001f\\u007f\\u00e9\\u20ac\\uffff\",\"z\":\"a\\u0000b\"}",
        "{\"raw\":\"\xc3\xa9 \xe2\x82\xac \xff\"}",
        "{\"dup\":1,\"x\":2,\"dup\":3}", "{\"dup\":{\"a\":1},\"dup\":null}",
        "{\"k\\\"ey\":1,\"k\\u00e9y\":2}",
        "{ \"a\" : [ 1 , 2 ] , \"b\" : { } }",
        "{\"version\":1,\"threads\":[{\"tid\":305,\"age\":2.693,\"wait\":{\"kind\":\"sem\",\"fd\":null}}]}",
    };
    for (size_t i = 0; i < sizeof strict / sizeof *strict; i++)
        taken_as_json_c(strict[i]);
    static const char *const extensions[] = {
        "", "   ", "[]", "1", "\"s\"", "null", "{", "{\"a\":1", "{\"a\":1}x", "{\"a\":1}{}",
        "{\"a\":1,}", "{\"a\":[1,2,]}", "{'a':1}", "{\"a\":TRUE}", "{\"a\":True}", "{\"a\":NaN}",
        "{\"a\":-Infinity}", "{\"a\":01}", "{\"a\":-0}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}",
        "{\"a\":1e}", "{\"a\":1234567890123456789}", "{\"a\":99999999999999999999}",
        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\x41\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", "{/* c */\"a\":1}", "{\"a\":1 // c\n}",
        "{\"a\\u0000b\":1}", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{\"a\":\"unterminated}",
    };
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++) {
        declined_for_json_c(extensions[i]);
        compare(extensions[i], strlen(extensions[i]), "extension");
    }
    /* nesting: json-c's limit (128) is past the reader's */
    char deep[600];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"a\":");
    for (int i = 0; i < 125; i++)
        deep[n++] = '[';
    for (int i = 0; i < 125; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    taken_as_json_c(deep);
    n = (size_t)sprintf(deep, "{\"a\":");
    for (int i = 0; i < 200; i++)
        deep[n++] = '[';
    for (int i = 0; i < 200; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    declined_for_json_c(deep);
    compare(deep, n, "deep");
}

/* ---- random documents ---- */

static uint64_t rng;

static uint32_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

struct text {
    char *p;
    size_t n, cap;
};

static void put(struct text *t, const char *s, size_t len)
{
    if (t->n + len + 1 > t->cap) {
        t->cap = (t->n + len + 1) * 2;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, s, len);
    t->n += len;
    t->p[t->n] = 0;
}

static void puts_(struct text *t, const char *s) { put(t, s, strlen(s)); }

static void random_space(struct text *t)
{
    static const char *const ws[] = { "", "", "", " ", "\n", "\t ", "\r\n" };
    puts_(t, ws[next_random() % 7]);
}

static void random_string(struct text *t)
{
    static const char *const pieces[] = { "a", "key", "tid", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b",
                                          "\\f", "\\r", "\\u0041", "\\u00e9", "\\u20ac", "\\ud83d\\ude00",
                                          "\\u0000", "\xc3\xa9", "\xff", "0x7f", "waits on" };
    puts_(t, "\"");
    for (unsigned k = next_random() % 5; k; k--)
        puts_(t, pieces[next_random() % (sizeof pieces / sizeof *pieces)]);
    puts_(t, "\"");
}

static void random_number(struct text *t)
{
    char buf[64];
    switch (next_random() % 5) {
    case 0: snprintf(buf, sizeof buf, "%u", next_random() % 1000); break;
    case 1: snprintf(buf, sizeof buf, "-%u", next_random() % 100000 + 1); break;
    case 2: snprintf(buf, sizeof buf, "%llu", (unsigned long long)next_random() * next_random() * 1000); break;
    case 3: snprintf(buf, sizeof buf, "%u.%03u", next_random() % 100, next_random() % 1000); break;
    default: snprintf(buf, sizeof buf, "%u.%ue%s%u", next_random() % 10, next_random() % 10,
                      next_random() % 2 ? "-" : "+", next_random() % 300); break;
    }
    puts_(t, buf);
}

static void random_value(struct text *t, int depth)
{
    unsigned pick = next_random() % (depth > 6 ? 6 : 8);
    switch (pick) {
    case 0: puts_(t, "true"); break;
    case 1: puts_(t, "false"); break;
    case 2: puts_(t, "null"); break;
    case 3: random_number(t); break;
    case 4: case 5: random_string(t); break;
    case 6:
        puts_(t, "[");
        for (unsigned k = next_random() % 4, first = 1; k; k--, first = 0) {
            if (!first)
                puts_(t, ",");
            random_space(t);
            random_value(t, depth + 1);
            random_space(t);
        }
        puts_(t, "]");
        break;
    default:
        puts_(t, "{");
        for (unsigned k = next_random() % 5, first = 1; k; k--, first = 0) {
            if (!first)
                puts_(t, ",");
            random_space(t);
            random_string(t);
            random_space(t);
            puts_(t, ":");
            random_space(t);
            random_value(t, depth + 1);
        }
        puts_(t, "}");
        break;
    }
}

static void random_documents(unsigned count)
{
    struct text t = { 0 };
    for (unsigned i = 0; i < count; i++) {
        t.n = 0;
        random_space(&t);
        puts_(&t, "{\"r\":");
        random_value(&t, 0);
        puts_(&t, ",\"s\":");
        random_value(&t, 0);
        puts_(&t, "}");
        random_space(&t);
        compare(t.p, t.n, "random");
        /* then damaged: a byte changed, dropped or doubled */
        for (int d = 0; d < 4 && t.n; d++) {
            char *copy = malloc(t.n + 2);
            size_t at = next_random() % t.n, n = t.n;
            memcpy(copy, t.p, t.n);
            static const char bytes[] = "{}[]:,\"\\0123456789.eE+-tfnu \x01\xff";
            switch (next_random() % 3) {
            case 0: copy[at] = bytes[next_random() % (sizeof bytes - 1)]; break;
            case 1: memmove(copy + at, copy + at + 1, n - at - 1); n--; break;
            default: memmove(copy + at + 1, copy + at, n - at); n++; break;
            }
            copy[n] = 0;
            if (!memchr(copy, 0, n))
                compare(copy, n, "damaged");
            free(copy);
        }
    }
    free(t.p);
}

/* A reply as the preload writes it, 10,000 threads' worth in shape. */
static void a_reply(void)
{
    struct text t = { 0 };
    puts_(&t, "{\"version\":1,\"pid\":22249,\"command\":\"park_many 10000\",\"uptime\":4.749,"
              "\"notes\":[\"reachability: 1 candidate wait, 4.3 MiB scanned in 61.3 ms\"],\"threads\":[");
    for (int i = 0; i < 2000; i++) {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "%s{\"tid\":%d,\"name\":\"park_many\",\"main\":false,\"age\":2.%03d,\"wait\":{\"kind\":\"cond\","
                 "\"object\":\"0x55f4bfcd21c0\",\"fd\":null,\"timeout\":false,\"reach_path\":%d},\"reason\":"
                 "\"waits on condition variable 0x55f4bfcd21c0\",\"wait_stack\":%d}",
                 i ? "," : "", 1000 + i, i % 1000, i % 3, 4000 + i % 7);
        puts_(&t, buf);
    }
    puts_(&t, "]}\n");
    json_object *fast = lwc_json_read_object(t.p, t.n);
    CHECK(fast && json_object_array_length(json_object_object_get(fast, "threads")) == 2000,
          "the reply should be taken whole");
    json_object_put(fast);
    compare(t.p, t.n, "reply");
    free(t.p);
}

/* The exporter parses on many threads at once: keys new to the shared
 * table, added by four threads together, each tree still json-c's. */
#define AT_ONCE 4

static void *parse_on_a_thread(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg, wrong = 0;
    char text[256];
    for (unsigned i = 0; i < 3000; i++) {
        int n = snprintf(text, sizeof text, "{\"k%u\":%u,\"shared\":[%u,\"t%u\"],\"k%u\":{\"k%u\":true}}",
                         i % 700, id, i, id, (i * 7 + id) % 900, i % 50);
        json_object *fast = lwc_json_read_object(text, (size_t)n), *slow = tokener_parse(text, (size_t)n);
        wrong += !fast || !slow || !same_tree(fast, slow);
        json_object_put(fast);
        json_object_put(slow);
    }
    return (void *)(uintptr_t)wrong;
}

static void threads_at_once(void)
{
    pthread_t t[AT_ONCE];
    for (unsigned i = 0; i < AT_ONCE; i++)
        CHECK(pthread_create(&t[i], NULL, parse_on_a_thread, (void *)(uintptr_t)i) == 0, "pthread_create");
    for (unsigned i = 0; i < AT_ONCE; i++) {
        void *wrong = NULL;
        pthread_join(t[i], &wrong);
        CHECK(!wrong, "thread %u: %zu trees not json-c's", i, (size_t)(uintptr_t)wrong);
    }
}

int main(void)
{
    const char *seed = getenv("JSONREAD_SEED");
    rng = seed ? strtoull(seed, NULL, 0) : 0x9e3779b97f4a7c15ull;
    if (!rng)
        rng = 1;
    hand_written();
    a_reply();
    random_documents(20000);
    threads_at_once();
    printf("jsonread: %zu texts taken (each the tree json-c builds), %zu left to json-c (seed %s)\n", taken, declined,
           seed ? seed : "default");
    CHECK(taken > 10000 && declined > 10000, "the random texts should exercise both ways: %zu taken, %zu declined",
          taken, declined);
    return checks_result("jsonread");
}
