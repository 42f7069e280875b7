/*
 * snapshot.h — a consistent copy of what the preload knows about the process,
 * taken on the server thread, never on the application's threads.
 *
 * The snapshot is plain data (no pointers into the registry), so the analysis
 * (analysis.c) is a pure function of it and can be unit-tested on hand-built
 * snapshots. The server (server.c) renders snapshot + verdicts as JSON.
 */
#ifndef LW_SNAPSHOT_H
#define LW_SNAPSHOT_H

#include "record/records.h"

struct lw_source;

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* The public names (names.c). */
const char *lw_wait_kind_name(enum lw_wait_kind kind);
const char *lw_origin_name(enum lw_origin origin);
const char *lw_direction_name(enum lw_direction d);

enum lw_verdict { LW_RUNNING, LW_WAITING, LW_SUSPECT, LW_LEAKED, LW_DEADLOCKED, LW_VERDICT_COUNT };
const char *lw_verdict_name(enum lw_verdict v);

/* Rule 3: whether a live thread can reach the object of a memory wait. */
enum lw_reach {
    LW_REACH_NONE = 0,          /* not a candidate, or not scanned */
    LW_REACH_REACHABLE,
    LW_REACH_UNREACHABLE,       /* unreachable in this scan; not yet confirmed */
    LW_REACH_CONFIRMED,         /* unreachable in two scans at least a second apart, wait unchanged */
};

/* Rule 3, for a candidate that stays `waiting`: what keeps its object
 * reachable, as a garbage collector's path from a root (reachpath.c). */
enum lw_root_kind {
    LW_ROOT_NONE = 0,
    LW_ROOT_DATA,          /* a loaded module's data or bss */
    LW_ROOT_STACK,         /* a thread's stack: a live thread's, or a parked one's that can run again */
    LW_ROOT_TLS,           /* a thread's static TLS (its thread-locals) */
    LW_ROOT_THREAD,        /* a thread's descriptor (glibc's struct pthread: its thread-specific data) */
    LW_ROOT_REGISTERS,     /* a parked thread's syscall arguments */
    LW_ROOT_MAPPING,       /* any other mapping (anonymous memory, a file, shared memory, an unwalked heap) */
};
const char *lw_root_kind_name(enum lw_root_kind k);

enum lw_step_kind { LW_STEP_HEAP, LW_STEP_MMAPPED, LW_STEP_STACK, LW_STEP_TLS, LW_STEP_THREAD };
const char *lw_step_kind_name(enum lw_step_kind k);

#define LW_PATH_STEPS 12

struct lw_path_step {
    uint8_t kind;            /* enum lw_step_kind */
    int32_t tid;             /* a parked thread's part: whose, else 0 */
    uint64_t block, size;    /* a heap block as malloc returned it and its usable size; a thread's part: its range */
    uint64_t offset;         /* where in it lies the pointer to the next step (the last step: the object, or the pthread_t) */
};

struct lw_reach_path {
    enum lw_root_kind root;
    uint64_t root_address;   /* the root word (it points into the first step, or is the object itself); 0 for registers */
    uint64_t root_lo, root_hi;   /* the region it lies in: the mapping, or the thread's part */
    int32_t root_tid;        /* stack, TLS, descriptor, registers: whose; else 0 */
    uint64_t root_sp;        /* a stack root: that thread's stack pointer, 0 if unknown */
    uint64_t root_pc;        /* a stack root: the return address of the frame holding it, 0 if unknown */
    char root_name[64];      /* a mapping's name in /proc/self/maps ("" when anonymous) */
    bool by_handle;          /* what is reachable is the thread's pthread_t: pthread_cancel could end the wait */
    bool complete;           /* false: a root was not found within the search's limits */
    size_t nsteps;           /* may exceed LW_PATH_STEPS: then the first LW_PATH_STEPS - 1 and the last are kept */
    struct lw_path_step steps[LW_PATH_STEPS];
};

/* Where a wait record came from: a hook that saw the call, /proc alone
 * (the syscall and its arguments), or, seen from outside (attach, core),
 * inferred from the thread's registers and innermost frames. */
enum lw_wait_source { LW_SOURCE_HOOK, LW_SOURCE_PROC, LW_SOURCE_INFERRED };

/* What an fd waited on is, as /proc/self/fd and the channel table say. */
enum lw_chan_type {
    LW_CHAN_NONE = 0, LW_CHAN_PIPE, LW_CHAN_SOCKETPAIR, LW_CHAN_EVENTFD, LW_CHAN_FIFO, LW_CHAN_MQ,
    LW_CHAN_SOCKET, LW_CHAN_FILE, LW_CHAN_TTY, LW_CHAN_OTHER,
};
const char *lw_chan_type_name(enum lw_chan_type t);

#define LW_SNAP_OTHER_FDS 8
#define LW_SNAP_PROCS 4
#define LW_SNAP_PEERS 8

struct lw_snap_peer {
    int32_t tid;
    char name[16];
    bool exited;              /* no longer a thread of the process */
    double idle;              /* seconds since it last used the other end */
};

struct lw_snap_proc {
    int32_t pid;
    char command[16];
};

/* One channel end a wait is on (an fd of this process). */
struct lw_snap_channel {
    enum lw_chan_type type;
    char name[112];           /* the /proc/self/fd link: "pipe:[12345]", a FIFO's path... */
    uint64_t inode;
    int side;                 /* pipe: 0 read end, 1 write end; socketpair: 0/1; else 0 */
    bool tracked;             /* its creation was seen by a hook */
    int32_t creator;          /* tid, 0 if unknown */
    char creator_name[16];
    bool creator_exited;
    double age;               /* seconds since it was created, < 0 if unknown */
    uint32_t create_stack;
    bool exported;            /* one of its fds was sent to another process */
    bool stdio;               /* fdopen'ed: glibc uses it where no hook sees */
    bool users_overflow;      /* more users than recorded */
    bool named;               /* a FIFO or message queue that still has a name */
    int other_fds[LW_SNAP_OTHER_FDS];   /* fds of this process on the other end (the object itself for eventfd/mq/FIFO) */
    size_t nother_fds;        /* may exceed LW_SNAP_OTHER_FDS */
    bool other_fd_untracked;  /* one of them is a copy no hook saw made */
    struct lw_snap_proc procs[LW_SNAP_PROCS];   /* other processes holding the other end */
    size_t nprocs;            /* may exceed LW_SNAP_PROCS */
    bool procs_unknown;       /* not every process could be looked at */
    struct lw_snap_peer peers[LW_SNAP_PEERS];   /* threads that used the other end the other way */
    size_t npeers;
};

struct lw_snap_pollfd {
    int fd;
    enum lw_direction direction;
    int32_t channel;          /* index into snapshot->channels, -1 if none */
};

struct lw_snap_wait {
    enum lw_wait_kind kind;
    enum lw_wait_source source;
    uint64_t object;        /* address of the waited object, 0 if none */
    uint64_t aux;           /* second object (the mutex of a cond wait), 0 if none */
    int64_t fd;             /* -1 if not an fd wait */
    bool timed;             /* has a deadline */
    double remaining;       /* seconds to the deadline, when timed */
    double seconds;         /* seconds parked so far */
    uint64_t start_ns;      /* when the wait began (CLOCK_MONOTONIC; /proc waits: first seen): its identity */
    uint64_t hook_sp;       /* a hooked wait: the stack pointer of the hook's frame, which holds the caller's
                             * callee-saved registers; below it only glibc's and our frames (0: unknown) */
    int32_t owner;          /* owner / join target tid, 0 if unknown */
    uint64_t join_target;   /* pthread_t of a join (resolved to owner by snapshot) */
    int syscall_nr;         /* for LW_SOURCE_PROC: the syscall number, else -1 */
    bool shared;            /* process-shared object */
    bool robust;            /* robust mutex: the kernel wakes a waiter when the owner dies */
    bool owner_gone;        /* owner != 0 and no thread with that tid exists any more */
    enum lw_direction direction;
    enum lw_reach reach;    /* rule 3: what the reachability scan found (reach.c) */
    uint64_t reach_block;   /* the heap chunk holding the object, 0 if none */
    uint64_t reach_block_size;
    double unreachable_for; /* seconds since a scan first found it unreachable */
    uint32_t reach_path;    /* reachable: 1 + its index in snapshot->paths, 0 if none */
    bool sysv;              /* fd is a System V message queue id, not a descriptor */
    int32_t channel;        /* index into snapshot->channels, -1 if none */
    uint32_t pollfd_first;  /* poll-style waits: their set, in snapshot->pollfds */
    uint32_t npollfds;
    bool pollfds_truncated; /* the set is larger than what is listed */
};

struct lw_snap_thread {
    int32_t tid;
    char name[16];
    bool is_main;
    enum lw_origin origin;
    int32_t parent;             /* 0 if unknown */
    uint64_t start_routine;     /* 0 if unknown */
    double age;                 /* seconds since creation, < 0 if unknown */
    char proc_state;            /* state letter from /proc/self/task/TID/stat, '?' if unknown */
    bool waiting;               /* has a wait record */
    uint64_t pthread;           /* pthread_self() (its TCB), 0 if unknown */
    struct lw_snap_wait wait;
    uint32_t wait_stack;        /* stack id, 0 if none */
    uint32_t create_stack;      /* stack id, 0 if none */
};

struct lw_snapshot {
    int32_t pid;
    uint64_t taken_ns;          /* the monotonic instant every age, uptime and wait time here is measured at */
    double uptime;
    uint64_t created, exited;
    uint32_t peak;
    uint32_t settle_ms, stall_ms;
    uint64_t caught_signals;        /* SigCgt of /proc/self/status: handlers installed */

    struct lw_snap_thread *threads;
    size_t nthreads;
    struct lw_snap_exited *exited_threads;
    uint64_t *exited_pthreads;      /* their pthread_self() (TCB addresses), 0 if unknown; nexited entries */
    size_t nexited;
    uint64_t *cached_tcbs;          /* seen from outside: descriptors of exited threads in glibc's stack cache */
    size_t ncached_tcbs;
    struct lw_snap_stack *stacks;   /* only the stacks referenced by threads / exited */
    size_t nstacks;
    struct lw_snap_channel *channels;
    size_t nchannels;
    struct lw_snap_pollfd *pollfds;
    size_t npollfds;
    char reach_note[320];           /* what the reachability scan did, "" if it did not run */
    bool reach_frozen;              /* it read a frozen process: one scan is the proof (reach.c) */
    struct lw_source *source;       /* where the process is read (core/source.h); the analysis never looks */
    struct lw_reach_path *paths;    /* why reachable candidates are (wait.reach_path) */
    size_t npaths;
};

/* What a verdict points at, for the report's "counterpart" object. */
enum lw_counterpart_kind {
    LW_CP_NONE,
    LW_CP_OWNER,        /* cp_tid holds the object (mutex, write-locked rwlock, PI futex) */
    LW_CP_TARGET,       /* cp_tid is the thread being joined */
    LW_CP_CYCLE,        /* cycle[] lists the deadlocked threads, in wait order */
    LW_CP_CHANNEL,      /* wakers[]: the threads that made or used channel cp_channel (its history) */
    LW_CP_UNREACHABLE,  /* rule 3: the object, the block holding it, for how long it was unreachable */
};

#define LW_MAX_WAKERS 8

enum lw_waker_role { LW_ROLE_CREATOR, LW_ROLE_PEER };

/* A thread that made or used a waited-on channel (a counterpart, as its
 * history knows it), and why it will not end the wait: it exited, or is
 * stuck itself. Any other thread that can run could end it too (an fd is
 * a number): the list is the evidence, not every possible waker. */
struct lw_waker {
    int32_t tid;
    enum lw_waker_role role;
    bool exited;
    double exited_ago;        /* seconds, < 0 if unknown or alive */
    double idle;              /* seconds since it last used the channel, < 0 if unknown */
    enum lw_verdict verdict;  /* of a live thread: leaked, deadlocked; running/waiting for a suspect */
};

#define LW_MAX_CYCLE 16

/* How a wait on an fd, a signal or a child can end (null for memory waits). */
enum lw_wait_class { LW_CLASS_NONE = 0, LW_CLASS_IN_PROCESS, LW_CLASS_EXTERNAL, LW_CLASS_TIMED };
const char *lw_wait_class_name(enum lw_wait_class c);

/* One verdict per thread, parallel to snapshot->threads. */
struct lw_thread_verdict {
    enum lw_verdict verdict;
    enum lw_wait_class wait_class;
    char reason[768];
    enum lw_counterpart_kind cp_kind;
    int32_t cp_tid;             /* LW_CP_OWNER / LW_CP_TARGET */
    bool cp_exited;             /* cp_tid has exited */
    double cp_exited_ago;       /* seconds, < 0 if unknown */
    int32_t cp_blocked_on;      /* chain: the thread (further down) whose verdict this one inherits, 0 if none */
    int32_t cycle[LW_MAX_CYCLE];
    size_t ncycle;              /* may be larger than LW_MAX_CYCLE; only the first are listed */
    int32_t cp_channel;         /* LW_CP_CHANNEL: index into snapshot->channels */
    uint64_t cp_block;          /* LW_CP_UNREACHABLE: the heap chunk holding the object, 0 if none */
    uint64_t cp_block_size;
    double cp_unreachable_for;
    struct lw_waker wakers[LW_MAX_WAKERS];
    size_t nwakers;             /* may be larger than LW_MAX_WAKERS */
};

struct lw_analysis {
    struct lw_thread_verdict *verdicts;   /* snapshot->nthreads entries */
    size_t counts[LW_VERDICT_COUNT];
    size_t parked;
    bool quiescent;                       /* no live thread: the whole process is asleep */
    char note[256];                       /* process-level note, "" if none */
};

/* Take a snapshot of the registry and /proc/self/task. Server thread only.
 * Returns 0, or -1 with errno (ENOMEM). */
int lw_snapshot_take(struct lw_snapshot *snap);
void lw_snapshot_free(struct lw_snapshot *snap);

/* The settled (older than settle_ms at `now`), untimed waits on memory
 * that the registry holds, as a sum of their identities that changes when
 * one of them comes or goes, and their count: cheap (no /proc, no
 * allocation), for the background prover (monitor.c). */
uint64_t lw_snapshot_memory_waits(uint64_t now, uint32_t settle_ms, size_t *count);

/* The analysis: a pure function from a snapshot to verdicts (analysis.c). */
int lw_analyze(const struct lw_snapshot *snap, struct lw_analysis *out);
void lw_analysis_free(struct lw_analysis *a);

/* Rule 3 (reach.c, server thread): scan for the memory waits the analysis
 * left undecided, and record in the snapshot what was found (with the
 * two-scan rule). Then analyse again. 0, or -1 when no scan could be made. */
int lw_reach_scan(struct lw_snapshot *snap, const struct lw_analysis *a, bool want_paths);
bool lw_reach_is_candidate(const struct lw_snapshot *snap, size_t i, const struct lw_thread_verdict *v);
bool lw_reach_wants_recheck(void);    /* something was unreachable once: scan again soon */
/* When a scan could confirm what the last one found unreachable (two scans
 * at least a second apart), 0 if nothing waits for confirmation. */
uint64_t lw_reach_confirmation_due_ns(void);
/* ... and due within within_ns of now, or already (a query waits for it). */
bool lw_reach_confirmation_within(uint64_t now, uint64_t within_ns);
void lw_reach_release_idle(void);     /* the server's tick: unmap the arrays of a scan seconds old */
/* All the rules. With want_paths, every candidate that stays reachable gets
 * its path from a root (a thread dump wants them; a count does not). */
int lw_analyze_with_reach(struct lw_snapshot *snap, struct lw_analysis *a, bool want_paths);

/* Process-shared waits on objects in private memory are private: only
 * this process can reach them (snapmodel.c, through snap->source). */
void lw_snapshot_unshare_private(struct lw_snapshot *snap);

/* Syscall names for /proc-only waits (x86-64 numbers); NULL if unknown. */
const char *lw_syscall_name(int nr);

#endif
