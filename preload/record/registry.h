/*
 * registry.h — every thread of the process and what each one waits on.
 *
 * One fixed slot per live thread in a table mapped once at start-up (nothing
 * is allocated afterwards). A slot's wait record is written only by the thread
 * that owns it, under a per-slot sequence counter, so hooks take no lock and
 * the server thread reads a consistent copy or retries; a wait's stack is
 * walked by whoever reads the record first, from the frame its hook
 * recorded, so a call that returns without parking costs a few stores.
 * Exited threads leave a line in a bounded ring, which the proof rules need
 * ("owner 1234 exited").
 */
#ifndef LW_REGISTRY_H
#define LW_REGISTRY_H

#include "record/records.h"
#include "record/unwind.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef LW_MAX_THREADS   /* (tests/preload builds a small one to reach it) */
#define LW_MAX_THREADS 32768u
#endif
#define LW_EXIT_RING 4096u

/* Addresses of waited objects are stored masked, so leakwatch's own records
 * never look like references to those objects to a conservative scan. */
#define LW_ADDR_MASK 0xa5c3f00dd15ea5e5ull

/* What a wait's fd field and set pointers mean (lw_wait_rec.flags). */
#define LW_REC_FD 1u          /* fd is a file descriptor */
#define LW_REC_SYSV 2u        /* fd is a System V message queue id */
#define LW_REC_POLLFDS 4u     /* set[0] is a struct pollfd array of nfds entries */
#define LW_REC_FDSETS 8u      /* set[0..2] are select()'s read/write/except fd_sets, nfds their size */
#define LW_REC_EPOLL 16u      /* fd is an epoll instance: its set is in /proc/self/fdinfo */

struct lw_wait_rec {
    uint8_t kind;            /* enum lw_wait_kind, LW_WAIT_NONE when not waiting */
    uint8_t timed;
    uint8_t shared;
    uint8_t direction;       /* enum lw_direction */
    int32_t owner;           /* owner tid read from the object at entry, 0 if unknown */
    uint64_t object_masked;  /* object address ^ LW_ADDR_MASK (0 stays 0) */
    uint64_t aux_masked;
    int64_t fd;              /* -1 if none */
    uint64_t start_ns;       /* CLOCK_MONOTONIC */
    uint64_t deadline_ns;    /* CLOCK_MONOTONIC, 0 = none or unknown */
    uint32_t stack_id;
    uint32_t flags;          /* LW_REC_* */
    uint64_t set_masked[3];  /* poll/select sets in the waiter's memory, masked like objects */
    uint32_t nfds;
    uint32_t pad;
    /* Where the wait's stack is walked from when it is asked for (stack_id
     * 0): the hook's frame, live for as long as the wait lasts
     * (LW_FRAME_HERE; its stack and frame pointers masked like objects, its
 * return address as lw_frame_state keeps it). */
    uint64_t at_pc, at_sp_masked, at_bp_masked, at_ra_masked;
};

enum lw_slot_state { LW_SLOT_FREE = 0, LW_SLOT_STARTING, LW_SLOT_LIVE };

struct lw_slot {
    uint32_t seq;            /* odd while being written */
    uint32_t state;          /* enum lw_slot_state, changed with CAS */
    uint32_t next_free;      /* free-list link: index + 1, 0 = end */
    int32_t tid;
    int32_t parent_tid;
    uint32_t origin;         /* enum lw_origin */
    uint32_t create_stack;
    uint32_t pad;
    uint64_t pthread;        /* pthread_self() of the thread, 0 until it runs */
    uint64_t start_routine;
    uint64_t arg;            /* only while STARTING */
    uint64_t birth_ns;
    struct lw_wait_rec wait;
    /* The wait stack a reader walked for the record of sequence number
     * seq: (seq << 32) | stack id. Written by readers, never by the owner. */
    uint64_t walked_stack;
};

/* A wait in progress on the calling thread: where its stack is, and what
 * begin did, for end. Small and written whole: stale words in a frame of
 * ours would read as references to a reachability scan of this stack. */
struct lw_wait_frame {
    struct lw_frame_state at;   /* the frame making the call (LW_FRAME_HERE) */
    struct lw_slot *slot;       /* NULL: nothing recorded */
    uint32_t displaced;         /* 1: the record it displaced was kept (lw_wait_open) */
    uint32_t pad;
};

/* How many waits inside waits (a signal handler's wait while its thread
 * was in one) keep the record they displaced; a deeper one shows the
 * thread waiting in none once it returns. */
#define LW_NESTED_WAITS 2

void lw_registry_init(void);
void lw_registry_fork_child(void);
bool lw_registry_ready(void);

/* The calling thread's slot, adopting the thread if it has none; NULL when the
 * thread must not be recorded (internal, exiting, or the table is full). */
struct lw_slot *lw_registry_self_slow(void);
static inline struct lw_slot *lw_registry_self(void);
/* How many times a thread found the table full (LW_MAX_THREADS live threads)
 * and was not recorded; the report's notes say so. */
uint64_t lw_registry_full_count(void);

/* The calling thread's slot (NULL until it has one; LW_SLOT_NONE: never
 * recorded) and its re-entrancy depth: registry.c's, read here inline. */
#define LW_SLOT_NONE ((struct lw_slot *)1)
extern __thread struct lw_slot *lw_self_slot __attribute__((tls_model("initial-exec")));
extern __thread int lw_bypass_depth __attribute__((tls_model("initial-exec")));

/* Re-entrancy guard: true while leakwatch itself runs on this thread, or
 * on a thread that is never recorded (ours, or one past the table). */
static inline bool lw_hooks_bypassed(void) { return lw_bypass_depth != 0 || lw_self_slot == LW_SLOT_NONE; }

static inline struct lw_slot *lw_registry_self(void)
{
    struct lw_slot *s = lw_self_slot;
    if (__builtin_expect(s != NULL, 1))
        return s == LW_SLOT_NONE ? NULL : s;
    return lw_registry_self_slow();
}
void lw_bypass_enter(void);
void lw_bypass_leave(void);

/* Thread creation (the pthread_create hook). */
struct lw_slot *lw_registry_prepare_child(void *(*fn)(void *), void *arg, uint32_t create_stack);
void lw_registry_abandon_child(struct lw_slot *slot);
void *lw_registry_child_trampoline(void *slot);
/* For other trampolines (C11 threads): take ownership, get the routine. */
uintptr_t lw_registry_child_enter(void *slot, void **arg);
void lw_registry_mark_self_internal(void);

/* Wait records. A record may leave its stack to be walked when first
 * read (stack_id 0, at_* set): lw_wait_read walks it, once per record,
 * while the thread is still in that wait, and the copy carries its id.
 *
 * The owner writes its record in place: lw_wait_open (the record it
 * displaces, if any, kept; the slot's sequence counter odd) returns it,
 * the caller sets every field, lw_wait_close publishes it; lw_wait_closed
 * restores what it displaced (or no wait) when the call returns. */
struct lw_wait_rec *lw_wait_open(struct lw_slot *slot, struct lw_wait_frame *f);
void lw_wait_close(struct lw_slot *slot);
void lw_wait_closed(struct lw_wait_frame *f);
bool lw_wait_read(const struct lw_slot *slot, struct lw_slot *copy);

/* For snapshots (server thread). */
uint32_t lw_registry_high_water(void);
struct lw_slot *lw_registry_slot(uint32_t index);
size_t lw_registry_exited(struct lw_snap_exited *out, uint64_t *pthreads, size_t max, uint64_t now_ns);
void lw_registry_counters(uint64_t *created, uint64_t *exited, uint32_t *peak);
uint32_t lw_registry_live(void);   /* threads with a slot now */

/* Registry housekeeping, called about once a second by the server thread:
 * reclaims slots of threads that vanished without telling us. */
void lw_registry_tick(void);
void lw_registry_extent(uintptr_t *lo, uintptr_t *hi);   /* our mapping: never a root of a scan */
bool lw_is_internal_tid(pid_t tid);

#endif
