/*
 * layout.h — glibc's internals in another process, learned without
 * experimenting on it (layout.c). The preload learns by doing, in the
 * process itself: it toggles its own cancellation state to find the
 * cancelhandling word, and frees a chunk to read the tcache key. From
 * outside that is done in leakwatch's own process instead, and believed
 * for the target only when the target maps the very same libc build
 * (GNU build-id); otherwise those facts stay unknown, which proves less,
 * never more. What the target's own data says is read there: its static
 * TLS layout from a thread's DTV, the offset of a descriptor's tid field
 * from its live threads, the descriptors of exited threads whose stacks
 * glibc keeps cached.
 */
#ifndef LWA_LAYOUT_H
#define LWA_LAYOUT_H

#include "attach/freeze.h"
#include "attach/stacks.h"
#include "core/source.h"

#include <stdbool.h>
#include <stdint.h>

struct lwa_layout {
    bool same_libc;            /* the target's libc is leakwatch's own build */
    char libc_build_id[64];    /* the target's, "" unknown */
    struct lw_thread_layout thread;
    int32_t tid_offset;        /* of struct pthread's tid, -1 unknown */
    uint64_t tcache_key;       /* the target's, 0 unknown */
    uint64_t *cached_tcbs;     /* descriptors of exited threads in glibc's stack cache */
    size_t ncached_tcbs;
    char unknown[256];         /* what could not be learned, for the notes; "" if all */
};

/* Learn what leakwatch's own process can tell (its libc's build-id, the
 * offsets of cancelhandling and tid, where tcache_key lives): once, before
 * any freeze (it starts a thread and mallocs). */
void lwa_layout_learn_self(void);

/* Everything about the target (frozen, or a core) read through src; its
 * threads' registers give their descriptors (fs_base). */
void lwa_layout_learn(struct lwa_layout *l, const struct lw_source *src, struct lwa_stacks *stacks,
                      const struct lwa_frozen_thread *threads, size_t n, pid_t pid);
void lwa_layout_free(struct lwa_layout *l);

#endif
