/*
 * symbolize.h — program counters to module, function and file:line.
 */
#ifndef LWC_SYMBOLIZE_H
#define LWC_SYMBOLIZE_H

#include <json-c/json.h>
#include <stdint.h>

struct lwc_frame {
    uint64_t pc;
    const char *module;     /* path, NULL if no module contains pc */
    uint64_t offset;        /* pc - module base */
    const char *function;   /* NULL if unknown */
    const char *file;       /* NULL if unknown */
    int line;               /* 0 if unknown */
};

struct lwc_symbolizer;

/* From a reply's "modules" array. */
struct lwc_symbolizer *lwc_symbolizer_new(json_object *modules);
void lwc_symbolizer_free(struct lwc_symbolizer *s);
/* Fill f for pc; strings stay valid until the symbolizer is freed. */
void lwc_symbolize(struct lwc_symbolizer *s, uint64_t pc, struct lwc_frame *f);

#endif
