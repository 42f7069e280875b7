/*
 * ownalloc.h — the preload's own heap blocks, known as ours (ownalloc.c).
 *
 * Every malloc, calloc, realloc and free in the preload's code goes through
 * ownalloc.c (hidden definitions: the program's calls never see them). The
 * memory is still the program's allocator's; each block we hold is
 * remembered, so that a scan of this process counts none of it as the
 * program's (core/source_self.c): a stale pointer of the program's into a
 * chunk it freed, which our snapshot then got from malloc, must not make
 * the snapshot's copies of the waited objects' addresses a path to them.
 */
#ifndef LW_OWNALLOC_H
#define LW_OWNALLOC_H

#include <stddef.h>
#include <stdint.h>

/* One block of ours: the address malloc returned and the size word of its
 * chunk header (glibc's: the chunk's size with its low flag bits), read
 * while the block cannot be freed. */
struct lw_own_block {
    uint64_t addr;
    uint64_t size_word;
};

/* Bind the program's allocator (the constructor calls it; the first
 * allocation would otherwise). */
void lw_ownalloc_init(void);

/* Copy up to cap of our live blocks to out; returns how many there are (more
 * than cap: call again with room for them). */
size_t lw_own_blocks(struct lw_own_block *out, size_t cap);

/* The table's own memory (never a root of a scan: it holds our blocks'
 * addresses). */
void lw_ownalloc_extent(uintptr_t *lo, uintptr_t *hi);

/* fork: the parent's forking thread holds the table across fork(). */
void lw_ownalloc_fork_prepare(void);
void lw_ownalloc_fork_parent(void);
void lw_ownalloc_fork_child(void);

#endif
