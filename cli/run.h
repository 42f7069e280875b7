/*
 * run.h — what `leakwatch run` decides before it starts anything
 * (run_prepare.c): where CMD and libleakwatch.so are, whether the dynamic
 * loader would preload into CMD at all, and the private directories of a
 * checked run. cmd_run.c starts, waits, times out and reports.
 */
#ifndef LWC_RUN_H
#define LWC_RUN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct lwc_run_plan {
    char exe[PATH_MAX];       /* CMD, found through PATH */
    char preload[PATH_MAX];   /* absolute path of libleakwatch.so */
    char tmp[PATH_MAX];       /* the private tree ("" when none) */
    char sockdir[PATH_MAX];   /* tmp/lw: the run's LEAKWATCH_DIR */
    char reports[PATH_MAX];   /* tmp/exit: the run's LEAKWATCH_EXIT_REPORT */
};

/* Each returns 0, or prints why on stderr and returns the exit status. */
int lwc_run_resolve(const char *cmd, char *exe, size_t size);     /* 126, 127 */
int lwc_run_find_preload(char *out, size_t size);                  /* 2 */
int lwc_run_check_loadable(const char *exe, const char *preload);  /* 2 */

/* Make the private tree (reports: with the report directory). */
bool lwc_run_make_dirs(struct lwc_run_plan *p, bool reports);
void lwc_run_remove_dirs(struct lwc_run_plan *p);

#endif
