/*
 * symbolize.h — program counters to module, offset, function and file:line,
 * in the CLI (the preload only reports raw pcs and its module list).
 */
#ifndef LWC_SYMBOLIZE_H
#define LWC_SYMBOLIZE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lwc_frame {
    uint64_t pc;
    const char *module;     /* path, NULL if no module contains pc */
    uint64_t offset;        /* pc - module base */
    const char *function;   /* NULL if unknown */
    const char *file;       /* NULL if unknown */
    int line;               /* 0 if unknown */
    bool inlined;           /* a function inlined at pc into the frame after it */
};

struct lwc_symbolizer;

/* From a reply's "modules" array; pid lets module files be found under
 * /proc/PID/root when the path does not lead to the same file here. */
struct lwc_symbolizer *lwc_symbolizer_new(json_object *modules, pid_t pid);
void lwc_symbolizer_free(struct lwc_symbolizer *s);

/* Read glibc's libc (the CLI's own: every thread's stack passes through
 * start_thread or __libc_start_main there, and libc6-dbg's compressed
 * DWARF takes ~40 ms to open) while the process works on its answer
 * (lwc_set_waiting_work): a symbolizer made later takes it over for a
 * module of the same path and build-id, and reads the file itself
 * otherwise. One step; returns false (nothing more to do). For a CLI that
 * symbolizes on one thread (the exporter never reads ahead). */
bool lwc_symbolize_ahead(void *unused);

/* Some module was left unread because the question's deadline was near
 * (deadline.h): its frames show module+offset only. */
bool lwc_symbolizer_cut_short(const struct lwc_symbolizer *s);

/* Fill f for pc: the real (outermost) function at pc, with its own line
 * (the call site of what is inlined there). return_address: pc is where a
 * call returns to, so pc - 1 is looked up. Strings stay valid until the
 * symbolizer is freed. */
void lwc_symbolize(struct lwc_symbolizer *s, uint64_t pc, bool return_address, struct lwc_frame *f);

/* Every frame at pc, innermost first, as a debugger shows them: the
 * functions inlined at pc (inlined = true, the innermost at the line of pc,
 * each outer one at the line of its call to the one before), then the real
 * function (the last). Sets *frames to an array the symbolizer keeps (cached
 * per pc) and returns its length; 0 only when out of memory. */
size_t lwc_symbolize_frames(struct lwc_symbolizer *s, uint64_t pc, bool return_address,
                            const struct lwc_frame **frames);

/* A data address (a global): the module holding it (its path, or NULL) and
 * the name of the object there, with *offset into it; NULL if none is
 * named (no symbol table, or a gap between objects). */
const char *lwc_symbolize_data(struct lwc_symbolizer *s, uint64_t addr, const char **module, uint64_t *offset);

#endif
