/*
 * fdcache.h — how an fd hook consults the per-fd word the recording layer
 * keeps (record/channels.h) on its fast path: one relaxed load, and a
 * call that surely cannot block and touches no channel passes straight to
 * the real function.
 */
#ifndef LW_FDCACHE_H
#define LW_FDCACHE_H

#include "record/channels.h"

#include <stdbool.h>
#include <stdint.h>

/* The entry says a call on its fd surely cannot block. */
static inline bool lw_fd_never_blocks(uint64_t entry)
{
    return (entry & (LW_FD_KNOWN | LW_FD_NEVER_BLOCKS)) == (LW_FD_KNOWN | LW_FD_NEVER_BLOCKS);
}

/* True when a call on fd surely cannot block and touches no channel. */
static inline bool lw_fd_passes_through(int fd)
{
    return (lw_fd_entry(fd) & (LW_FD_KNOWN | LW_FD_NEVER_BLOCKS | LW_FD_CHANNEL)) == (LW_FD_KNOWN | LW_FD_NEVER_BLOCKS);
}

#endif
