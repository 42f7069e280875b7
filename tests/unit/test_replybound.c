/*
 * test_replybound.c — the CLI's price of a reply (cli/replybound.c): known
 * shapes cost what json-c takes for them, nesting past the bound is refused,
 * and the pricing holds when several threads price replies at once (the
 * exporter asks every process in a thread of its own: a pricing kept in one
 * static struct went to depth -1 under that and read out of bounds).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../../cli/replybound.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A reply shaped like a real one: nested objects and arrays, keys, strings,
 * numbers, deep enough that a depth mixed up between two texts shows. */
static char *sample_reply(int threads, size_t *len)
{
    size_t cap = 4096 + (size_t)threads * 512, n = 0;
    char *s = malloc(cap);
    if (!s)
        abort();
    n += (size_t)snprintf(s + n, cap - n, "{\"version\":1,\"pid\":42,\"threads\":[");
    for (int i = 0; i < threads; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "%s{\"tid\":%d,\"name\":\"worker \\\"%d\\\"\",\"wait\":{\"kind\":\"cond\",\"stack\":"
                              "[[1,2,[3,[4,[5]]]],{\"a\":{\"b\":{\"c\":[true,false,null]}}}]}}",
                              i ? "," : "", 1000 + i, i);
    n += (size_t)snprintf(s + n, cap - n, "],\"notes\":[\"x\",\"y\"]}");
    *len = n;
    return s;
}

/* Unbalanced closers first, then a deep text: each thread's own walk must
 * not be moved by another's. */
static const char *const shapes[] = { "]]]]}}}}[1,2,3]", "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", "{\"k\":{\"k\":{}}}" };

struct job {
    const char *text;
    size_t len, want;
    int wrong;
};

static void *price_again_and_again(void *arg)
{
    struct job *jobs = arg;
    for (int round = 0; round < 20000; round++)
        for (int j = 0; j < 4; j++)
            if (lwc_reply_parse_cost(jobs[j].text, jobs[j].len) != jobs[j].want)
                __atomic_add_fetch(&jobs[j].wrong, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void test_concurrent_pricing(void)
{
    size_t len;
    char *reply = sample_reply(8, &len);
    struct job jobs[4] = { { reply, len, 0, 0 } };
    for (int j = 1; j < 4; j++)
        jobs[j] = (struct job){ shapes[j - 1], strlen(shapes[j - 1]), 0, 0 };
    for (int j = 0; j < 4; j++)
        jobs[j].want = lwc_reply_parse_cost(jobs[j].text, jobs[j].len);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, price_again_and_again, jobs) == 0, "pthread_create");
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int j = 0; j < 4; j++)
        CHECK(jobs[j].wrong == 0, "text %d priced differently %d times when 4 threads price at once", j,
              jobs[j].wrong);
    free(reply);
}

static void test_shapes(void)
{
    /* an object, an array, a key, a scalar, as json-c takes them */
    size_t empty_object = lwc_reply_parse_cost("{}", 2), empty_array = lwc_reply_parse_cost("[]", 2);
    CHECK(empty_object > empty_array && empty_array > 0, "{} %zu, [] %zu", empty_object, empty_array);
    size_t one_key = lwc_reply_parse_cost("{\"k\":1}", 7);
    CHECK(one_key > empty_object, "{\"k\":1} %zu, {} %zu", one_key, empty_object);
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    CHECK(lwc_reply_parse_cost(deep, sizeof deep) == SIZE_MAX, "300 levels priced, wanted refused");
    char why[256];
    CHECK(!lwc_reply_affordable(deep, sizeof deep, why, sizeof why) && strstr(why, "nested deeper"), "%s", why);
    size_t len;
    char *reply = sample_reply(100, &len);
    CHECK(lwc_reply_affordable(reply, len, why, sizeof why), "a real-shaped reply refused: %s", why);
    free(reply);
    /* many empty objects: the cost that was 270 times the size */
    size_t n = 1 << 16;
    char *objects = malloc(3 * n + 2);
    if (!objects)
        abort();
    objects[0] = '[';
    for (size_t i = 0; i < n; i++)
        memcpy(objects + 1 + 3 * i, i ? ",{}" : "{} ", 3);
    objects[3 * n + 1] = ']';
    CHECK(!lwc_reply_affordable(objects, 3 * n + 2, why, sizeof why) && strstr(why, "would take"), "%s", why);
    free(objects);
}

int main(void)
{
    test_shapes();
    test_concurrent_pricing();
    return checks_result("test_replybound");
}
