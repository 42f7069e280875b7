/*
 * judge.h — a stopped process (frozen, or a core file) judged by the
 * preload's engine (judge.c): each thread's stack and wait, glibc's
 * layouts there, the snapshot, the analysis and the reachability scan
 * (while the threads are stopped), then the fd part and the final
 * analysis, and the reply (reply.c).
 */
#ifndef LWA_JUDGE_H
#define LWA_JUDGE_H

#include "attach/freeze.h"
#include "attach/layout.h"
#include "attach/memory.h"
#include "attach/stacks.h"
#include "attach/waits.h"
#include "core/fdsnap.h"
#include "core/snapshot.h"
#include "symbolize.h"

#include <json-c/json.h>

/* One thread of what is judged. */
struct lwa_thread_view {
    const struct lwa_frozen_thread *t;   /* its registers (t->stopped false: not known) */
    char name[16];
    double age;                /* seconds since it started, < 0 unknown */
    double parked_for;         /* how long its wait is known to have lasted (samples, --since), 0 unknown */
    uint64_t parked_since_ns;  /* the first sample that saw the wait: its identity */
};

struct lwa_subject {
    pid_t pid;
    pid_t proc_pid;                    /* whose /proc/PID/fd: pid, or a live thread of a zombie leader's */
    const char *kind;                  /* "attach" | "core" */
    char command[4096];                /* its command line, "" unknown */
    char exe[4096];                    /* its program, "" unknown */
    const struct lwa_frozen_thread *frozen;   /* every thread's registers, sorted by tid */
    size_t nfrozen;
    struct lw_source *source;          /* direct reads (the scan); frozen when every thread stopped */
    struct lwa_memory *mem;            /* the page cache over it */
    struct lwa_stacks *stacks;
    struct lwc_symbolizer *sym;
    struct lwa_thread_view *threads;   /* sorted by tid */
    size_t nthreads;
    uint64_t caught_signals;           /* SigCgt; ~0 unknown */
    double uptime;                     /* seconds the process has run, < 0 unknown */
    unsigned settle_ms, stall_ms;
    const struct lw_fd_history *history;   /* what tells UNIX socket peers apart (sockpeers.c), or NULL */
};

struct lwa_judgement {
    struct lw_snapshot snap;
    struct lw_analysis analysis;
    bool analysed;
    struct lwa_layout layout;
    struct lwa_wait_facts *facts;      /* per thread */
    uint64_t (*pcs)[LW_MAX_FRAMES];    /* per thread: its stack */
    uint32_t *depth;
    double judge_ms;                   /* the time the judging took while stopped */
};

/* Everything that needs the threads stopped: stacks, waits, layouts, the
 * snapshot, the analysis, the reachability scan. 0, or -1 (no memory). */
int lwa_judge_stopped(struct lwa_subject *s, struct lwa_judgement *j, bool want_paths);
/* Then (the process running again): the fd part, the final analysis. */
int lwa_judge_finish(struct lwa_subject *s, struct lwa_judgement *j);
void lwa_judgement_free(struct lwa_judgement *j);

/* reply.c: the preload's reply (docs/protocol.md) for what was judged:
 * "source" (the subject's kind), the notes given first, and what the
 * attach did ("attach": facts, taken), or NULL with why. */
json_object *lwa_reply(const struct lwa_subject *s, const struct lwa_judgement *j, const char *const *notes,
                       size_t nnotes, json_object *attach_facts, char *why, size_t size);

/* The notes a reply from outside starts with (reply.c): a few formatted
 * lines, kept in place; past LWA_MAX_NOTES a note is dropped. */
#define LWA_MAX_NOTES 8
struct lwa_notes {
    char text[LWA_MAX_NOTES][512];
    const char *v[LWA_MAX_NOTES];
    size_t n;
};
void lwa_add_note(struct lwa_notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
