/*
 * suppress.h — suppressions, as goleak has them: patterns naming the
 * functions (or creation sites, or libraries) of threads that are meant to
 * live forever, such as a library's timer thread. A suppressed thread is
 * never reported and never counted as stuck; every report says how many
 * threads each pattern suppressed.
 */
#ifndef LWC_SUPPRESS_H
#define LWC_SUPPRESS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct lwc_suppressions;

struct lwc_suppressions *lwc_supp_new(void);
void lwc_supp_free(struct lwc_suppressions *s);

/* One pattern (an fnmatch glob); false when out of memory or empty. */
bool lwc_supp_add(struct lwc_suppressions *s, const char *pattern);
/* A file of patterns, one a line, '#' starts a comment. false with a
 * message in err when it cannot be read. */
bool lwc_supp_load(struct lwc_suppressions *s, const char *path, char *err, size_t errsize);
size_t lwc_supp_count(const struct lwc_suppressions *s);

/* The first pattern that matches a public thread object (symbolized
 * frames): a function, "FILE:LINE" or module file name in its wait or
 * creation stack, or its start routine's name. NULL when none does. */
const char *lwc_supp_match(const struct lwc_suppressions *s, json_object *thread);

/* Apply to a public process object: drop the suppressed threads from
 * "threads", take them out of the summary's verdict and parked counts
 * (summary.threads keeps counting every thread), and set
 * "suppressed": {PATTERN: count, ...} (every pattern, 0 when it took no
 * thread) and summary.suppressed. Objects
 * without a thread list get an empty "suppressed". Returns how many
 * threads were dropped. s may be NULL (no patterns). */
size_t lwc_supp_apply(const struct lwc_suppressions *s, json_object *process);

/* "3 threads suppressed (libfoo_timer_thread)" or "(a: 2, b*: 1)", from a
 * process object's "suppressed"; false (buf empty) when there are none. */
bool lwc_supp_describe(json_object *process, char *buf, size_t size);

#endif
