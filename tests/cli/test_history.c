/*
 * test_history.c — unit test of the growth alarm and the sparkline
 * (cli/history.c) on hand-made histories: each case states the samples, the
 * verdict and the exact reason, so a change of the rule (cli/history.c's
 * header, docs/protocol.md "Growth alarm") must change this file too.
 */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            failures++;                                                                                    \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                    \
            printf(__VA_ARGS__);                                                                           \
            printf("\n");                                                                                  \
        }                                                                                                  \
    } while (0)

static void expect(const char *name, const long *s, size_t n, double interval, bool alarm, const char *reason)
{
    struct lwc_growth g;
    lwc_growth_judge(s, n, interval, &g);
    CHECK(g.alarm == alarm, "%s: alarm %d, wanted %d (%s)", name, g.alarm, alarm, g.reason);
    CHECK(strcmp(g.reason, reason) == 0, "%s: reason\n  got:    %s\n  wanted: %s", name, g.reason, reason);
}

static long *ramp(size_t n, long start, long step)
{
    long *s = calloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = start + (long)i * step;
    return s;
}

static void test_too_short(void)
{
    long s[] = { 1, 2, 3, 4, 5, 6, 7 };
    expect("none", s, 0, 1, false, "not enough history yet: 0 samples, 8 needed");
    expect("one", s, 1, 1, false, "not enough history yet: 1 sample, 8 needed");
    expect("seven", s, 7, 1, false, "not enough history yet: 7 samples, 8 needed");
}

static void test_steady_leak(void)
{
    long *s = ramp(32, 1, 1);
    expect("ramp 1..32", s, 32, 1, true,
           "the thread count kept climbing and never came back down: the lowest count in each quarter of the "
           "last 32s rose every time (1, 9, 17, 25), +24 threads, above the first quarter's peak of 8");
    free(s);
    /* the fixture's pace: ~3 threads a second, 8 one-second samples */
    long creep[] = { 1, 4, 7, 11, 14, 17, 21, 24 };
    expect("creep", creep, 8, 1, true,
           "the thread count kept climbing and never came back down: the lowest count in each quarter of the "
           "last 8s rose every time (1, 7, 14, 21), +20 threads, above the first quarter's peak of 4");
    /* the interval doubles when the preload compacts its ring */
    expect("creep, 2s samples", creep, 8, 2, true,
           "the thread count kept climbing and never came back down: the lowest count in each quarter of the "
           "last 16s rose every time (1, 7, 14, 21), +20 threads, above the first quarter's peak of 4");
}

static void test_noisy_leak(void)
{
    /* a pool swinging by 10 around a level that leaks one thread a sample */
    long s[64];
    for (int i = 0; i < 64; i++)
        s[i] = 50 + i + (i * 7 % 11);
    struct lwc_growth g;
    lwc_growth_judge(s, 64, 1, &g);
    CHECK(g.alarm, "noisy leak: no alarm: %s", g.reason);
}

static void test_healthy(void)
{
    long grew_once[] = { 1, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8 };
    expect("grew once", grew_once, 12, 1, false,
           "the lowest count in each quarter of the last 12s was 1, 8, 8, 8: it did not rise every time");
    long warm_up[] = { 1, 1, 2, 2, 3, 3, 4, 4 };
    expect("warm-up", warm_up, 8, 1, false,
           "the lowest count in each quarter of the last 8s rose (1, 2, 3, 4) by only 3, less than 4 threads");
    long noise[] = { 10, 20, 11, 21, 12, 22, 13, 23 };
    expect("noise", noise, 8, 1, false,
           "the lowest count in each quarter of the last 8s rose (10, 11, 12, 13) but stayed within the first "
           "quarter's range (up to 20)");
    long back_down[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 2, 2, 2, 2 };
    expect("came back down", back_down, 16, 1, false,
           "the lowest count in each quarter of the last 16s was 1, 5, 9, 2: it did not rise every time");
    long flat[16];
    for (int i = 0; i < 16; i++)
        flat[i] = 7;
    expect("flat", flat, 16, 1, false,
           "the lowest count in each quarter of the last 16s was 7, 7, 7, 7: it did not rise every time");
}

/* Only the most recent samples count: at most 64, a multiple of 4. */
static void test_window(void)
{
    long s[164];
    for (int i = 0; i < 100; i++)
        s[i] = 5;
    for (int i = 100; i < 164; i++)
        s[i] = 5 + (i - 100);
    struct lwc_growth g;
    lwc_growth_judge(s, 164, 1, &g);
    CHECK(g.alarm, "flat then leaking: no alarm: %s", g.reason);
    for (int i = 0; i < 64; i++)
        s[i] = 5 + i;
    for (int i = 64; i < 164; i++)
        s[i] = 70;
    lwc_growth_judge(s, 164, 1, &g);
    CHECK(!g.alarm, "leaked then flat: alarm: %s", g.reason);
    long ten[] = { 100, 50, 1, 4, 7, 11, 14, 17, 21, 24 };   /* n = 10: the last 8 */
    expect("ten", ten, 10, 1, true,
           "the thread count kept climbing and never came back down: the lowest count in each quarter of the "
           "last 8s rose every time (1, 7, 14, 21), +20 threads, above the first quarter's peak of 4");
}

static void test_sparkline(void)
{
    char buf[512];
    long up[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    CHECK(lwc_sparkline(buf, sizeof buf, up, 8, 60, true) == 8 && strcmp(buf, "▁▂▃▄▅▆▇█") == 0, "utf8: %s", buf);
    CHECK(lwc_sparkline(buf, sizeof buf, up, 8, 60, false) == 8 && strcmp(buf, ".:-=+*#@") == 0, "ascii: %s", buf);
    long flat[] = { 3, 3, 3 };
    CHECK(lwc_sparkline(buf, sizeof buf, flat, 3, 60, false) == 3 && strcmp(buf, "...") == 0, "flat: %s", buf);
    long two[] = { 10, 24 };
    CHECK(lwc_sparkline(buf, sizeof buf, two, 2, 60, true) == 2 && strcmp(buf, "▁█") == 0, "two: %s", buf);
    long *many = ramp(120, 0, 1);
    many[119] = 0;   /* a bucket shows its largest sample */
    CHECK(lwc_sparkline(buf, sizeof buf, many, 120, 60, false) == 60 && buf[0] == '.' && buf[59] == '@',
          "120 samples in 60 marks: %s", buf);
    free(many);
    CHECK(lwc_sparkline(buf, sizeof buf, up, 0, 60, true) == 0 && buf[0] == 0, "empty: %s", buf);
    CHECK(lwc_sparkline(buf, 10, up, 8, 60, true) == 3, "a small buffer takes whole marks only");
}

static void test_span(void)
{
    char buf[32];
    lwc_format_span(buf, sizeof buf, 8);
    CHECK(strcmp(buf, "8s") == 0, "8s: %s", buf);
    lwc_format_span(buf, sizeof buf, 64);
    CHECK(strcmp(buf, "1m04s") == 0, "1m04s: %s", buf);
    lwc_format_span(buf, sizeof buf, 7380);
    CHECK(strcmp(buf, "2h03m") == 0, "2h03m: %s", buf);
}

int main(void)
{
    test_too_short();
    test_steady_leak();
    test_noisy_leak();
    test_healthy();
    test_window();
    test_sparkline();
    test_span();
    if (failures) {
        printf("%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
