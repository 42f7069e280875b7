/*
 * check.h — the unit tests' one assertion: CHECK(cond, fmt, ...) counts a
 * failure and says where and why, and the test goes on (so one run lists
 * every broken case); main returns checks_result("name").
 */
#ifndef LW_TEST_CHECK_H
#define LW_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, "\n");                                                    \
        }                                                                             \
    } while (0)

static inline int checks_result(const char *name)
{
    if (failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
