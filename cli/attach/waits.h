/*
 * waits.h — what a thread seen from outside waits on (waits.c): from its
 * registers (the syscall it was stopped in, its arguments, whether the
 * kernel was going to restart it) and the names of its innermost frames
 * (pthread_cond_wait, __lll_lock_wait, __new_sem_wait_slow,
 * __pthread_clockjoin_ex, read, poll, epoll_wait...), the wait kind and
 * object the preload's hooks would have recorded: the mutex and its owner
 * (decoded by base/glibc_sync.h, the one header of glibc's object
 * layouts), the condvar, the semaphore, the joined thread (the futex on
 * its descriptor's tid), the fd, the poll set. The object's words are the
 * target's: read through the page cache, believed only where they decode.
 */
#ifndef LWA_WAITS_H
#define LWA_WAITS_H

#include "attach/freeze.h"
#include "attach/layout.h"
#include "attach/memory.h"
#include "core/fdsnap.h"
#include "core/snapshot.h"

#include <stdbool.h>

#define LWA_FRAMES_LOOKED_AT 10

struct lwa_wait_facts {
    bool parked;                    /* stopped inside a blocking syscall */
    struct lw_snap_wait wait;       /* source LW_SOURCE_INFERRED; seconds and start left to the caller */
    bool has_poll;
    struct lw_fd_wait poll;         /* its poll set, when a poll-style wait */
};

/* frames: the functions of the innermost frames (NULL: unknown), at most
 * LWA_FRAMES_LOOKED_AT. */
void lwa_classify_wait(const struct lwa_frozen_thread *t, const char *const *frames, size_t nframes,
                       struct lwa_memory *mem, const struct lwa_layout *layout, struct lwa_wait_facts *out);

/* The syscall a stopped thread was in when it stopped: its number, or -1
 * when it was running (stopped in user code, or its syscall had returned). */
int lwa_interrupted_syscall(const struct user_regs_struct *r);

#endif
