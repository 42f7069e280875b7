/*
 * stacks.h — every thread's stack from its registers, with elfutils'
 * libdwfl (stacks.c), the library eu-stack is built on: the modules of a
 * live process (/proc/PID/maps) or of a core file, call frame information
 * from their .eh_frame (or debug files), the thread's registers as the
 * freeze or the core read them, and its memory through the page cache
 * (memory.h). Signal frames and frame-pointer code unwind there too.
 */
#ifndef LWA_STACKS_H
#define LWA_STACKS_H

#include "attach/freeze.h"
#include "attach/memory.h"

#include <gelf.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lwa_stacks;

/* A live process's modules, reported and primed (their ELF files opened,
 * their unwind tables read): do this before freezing it. */
struct lwa_stacks *lwa_stacks_for_process(pid_t pid, struct lwa_memory *mem, char *why, size_t size);
/* A core file's (exe: the program, when the core does not lead to it). */
struct lwa_stacks *lwa_stacks_for_core(Elf *core, const char *exe, struct lwa_memory *mem, char *why, size_t size);
void lwa_stacks_free(struct lwa_stacks *s);

/* The program counters of t's stack, innermost first (the first is where
 * it is, the others return addresses): how many, at most max. */
size_t lwa_stacks_unwind(struct lwa_stacks *s, const struct lwa_frozen_thread *t, uint64_t *pcs, size_t max);

/* [{"path","base","build_id"}] as docs/protocol.md's "modules" (new
 * reference): what the symbolizer and the reply need. */
json_object *lwa_stacks_modules(struct lwa_stacks *s);

/* The GNU build-id (hex) of the loaded module whose file name ends in
 * `suffix` ("/libc.so.6"), and its load bias; false if none. */
bool lwa_stacks_module_build_id(struct lwa_stacks *s, const char *suffix, char *hex, size_t size, uint64_t *bias);

#endif
