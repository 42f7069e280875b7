/*
 * records.h — the words the recording layer and everything above it share:
 * the kinds of wait a hook records, where a thread came from, which way an
 * fd wait goes, and the two records the recorder hands to a snapshot as
 * they are (an interned stack, an exited thread). They live here, below
 * the snapshot, so that what records never depends on what reads.
 */
#ifndef LW_RECORDS_H
#define LW_RECORDS_H

#include <stdbool.h>
#include <stdint.h>

/* Wait kinds, in the order of the public names (lw_wait_kind_name). */
enum lw_wait_kind {
    LW_WAIT_NONE = 0,
    LW_WAIT_MUTEX, LW_WAIT_COND, LW_WAIT_RWLOCK_READ, LW_WAIT_RWLOCK_WRITE,
    LW_WAIT_SEM, LW_WAIT_BARRIER, LW_WAIT_JOIN, LW_WAIT_FUTEX,
    LW_WAIT_FD_READ, LW_WAIT_FD_WRITE, LW_WAIT_POLL,
    LW_WAIT_MQ_RECEIVE, LW_WAIT_MQ_SEND, LW_WAIT_SLEEP, LW_WAIT_SIGNAL,
    LW_WAIT_CHILD, LW_WAIT_SOCKET, LW_WAIT_SYSCALL,
    LW_WAIT_KIND_COUNT
};


enum lw_origin { LW_ORIGIN_MAIN, LW_ORIGIN_PTHREAD, LW_ORIGIN_ADOPTED, LW_ORIGIN_PROC };

/* Which way a wait on an fd goes. */
enum lw_direction { LW_DIR_NONE = 0, LW_DIR_READ, LW_DIR_WRITE, LW_DIR_BOTH };

#define LW_MAX_FRAMES 32

struct lw_snap_stack {
    uint32_t id;
    uint32_t depth;
    uint64_t pcs[LW_MAX_FRAMES];
};

struct lw_snap_exited {
    int32_t tid;
    char name[16];
    double exited_ago;
    uint64_t start_routine;
    uint32_t create_stack;
};

#endif
