/*
 * memory.h — the target's memory as the attach reads it (memory.c): pages
 * copied while the process is frozen and kept, so that unwinding, the
 * objects' words and the poll sets all see one moment, and a stack read
 * twice costs one syscall. The reachability scan, which reads everything
 * once, goes straight to the process (process_vm_readv) or to the core.
 * A page that cannot be read is remembered as such: never a fault, never
 * a retry. Everything read here is the target's, and hostile: callers
 * bound-check what they make of it.
 */
#ifndef LWA_MEMORY_H
#define LWA_MEMORY_H

#include "core/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lwa_memory;

/* Pages of the process the source reads (its read op is used on a miss). */
struct lwa_memory *lwa_memory_new(const struct lw_source *src);
void lwa_memory_free(struct lwa_memory *m);

/* Copy [addr, addr + len): bytes copied from the start (short at the
 * first page that cannot be read). */
size_t lwa_memory_read(struct lwa_memory *m, void *dst, uint64_t addr, size_t len);
bool lwa_memory_read_all(struct lwa_memory *m, void *dst, uint64_t addr, size_t len);

/* Copy [addr, addr + len) into the cache now (while frozen), for later. */
void lwa_memory_keep(struct lwa_memory *m, uint64_t addr, size_t len);

/* A source whose reads come from the cache (the rest of its operations are
 * src's): what the snapshot's fd part reads poll sets through. */
void lwa_memory_source(struct lwa_memory *m, struct lw_source *out);

#endif
