/*
 * pprof.h — the parked threads of one process as a gzipped pprof profile
 * (pprof.c), for `leakwatch threads PID --pprof FILE`.
 */
#ifndef LWC_PPROF_H
#define LWC_PPROF_H

#include <json-c/json.h>

/* Write the profile of view (the public process object, suppressions
 * applied) to path ("-": standard output); modules is the "modules" array
 * of the preload's reply the view was made from (the build-ids). 0, or -1
 * with a message on stderr. */
int lwc_write_pprof(const char *path, json_object *modules, json_object *view);

#endif
