/*
 * analysis_rules.h — what the analysis's files share (analysis.c, the
 * driver; waitfacts.c, what every rule asks of a snapshot; describe.c, the
 * sentences; owners.c, rule 1; liveness.c, rules 2 and 3 and which
 * threads can run again; wakers.c, channel history, rule 4's reasons and
 * suspect). Internal to the analysis: one pure
 * function from a snapshot to verdicts (core/snapshot.h, lw_analyze).
 */
#ifndef LW_ANALYSIS_RULES_H
#define LW_ANALYSIS_RULES_H

#include "core/snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Where each thread is: by tid, its name and its index in snap->threads. */
struct tid_name {
    int32_t tid;
    const char *name;
};

struct tid_pos {
    int32_t tid;
    size_t index;
};

/* Handlers that never end an application wait: glibc's own (SIGCANCEL,
 * SIGSETXID: signals 32 and 33, in every threaded process's SigCgt), and
 * those of synchronous faults (SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV,
 * SIGSYS: crash reporters and sanitizers), which run only where the fault
 * happened, on a thread that is not parked. Bit n-1 is signal n. */
#define SIGNAL_BIT(n) (1ull << ((n) - 1))
#define GLIBC_INTERNAL_SIGNALS (SIGNAL_BIT(32) | SIGNAL_BIT(33) | SIGNAL_BIT(4) | SIGNAL_BIT(5) | SIGNAL_BIT(7) | \
                                SIGNAL_BIT(8) | SIGNAL_BIT(11) | SIGNAL_BIT(31))

/* One analysis's state, passed to every rule. */
struct ctx {
    const struct lw_snapshot *snap;
    struct lw_analysis *out;
    struct tid_name *names;       /* sorted by tid */
    struct tid_pos *positions;    /* sorted by tid: where each thread is in snap->threads */
    double settle;
    double stall;
    bool app_signal_handlers;
};

/* Who may end a parked thread's wait (liveness.c, "what can run again"). */
enum wake_model { WAKE_LIVE, WAKE_OWNER, WAKE_NOBODY, WAKE_ANYONE, WAKE_JUDGED };

/* describe.c */
int compare_tid_name(const void *a, const void *b);   /* (by tid) */
void describe_tid(char *buf, size_t size, const struct tid_name *index, size_t n, int32_t tid);
void describe_wait(char *out, size_t size, const struct lw_snapshot *snap, const struct lw_snap_thread *t,
                   const struct tid_name *index, size_t n);
void format_duration(char *buf, size_t size, double seconds);
void describe_object(char *buf, size_t size, const struct lw_snap_wait *w);
void describe_edge(char *buf, size_t size, const struct ctx *c, const struct lw_snap_thread *t);
void describe_others(char *out, size_t size, const struct ctx *c, size_t i);

/* waitfacts.c */
long thread_index(const struct ctx *c, int32_t tid);   /* in snap->threads, or -1 */
const struct lw_snap_exited *exited_thread(const struct lw_snapshot *snap, int32_t tid);
bool is_settled(const struct ctx *c, const struct lw_snap_thread *t);
bool is_channel_wait(const struct lw_snap_wait *w);
bool channel_in_process(const struct lw_snap_channel *c);
enum lw_wait_class classify_wait(const struct lw_snapshot *snap, const struct lw_snap_wait *w);

/* owners.c */
bool has_owner_edge(const struct ctx *c, const struct lw_snap_thread *t);
void set_counterpart(struct lw_thread_verdict *v, const struct lw_snap_thread *t);
int judge_owner_edges(struct ctx *c);
void judge_owner_chains(struct ctx *c, const unsigned char *model);

/* liveness.c */
void judge_quiescence(struct ctx *c);
int judge_by_liveness(struct ctx *c);

/* wakers.c */
void judge_channel_leak(struct ctx *c, size_t i);
void refresh_waker_verdicts(struct ctx *c);
void judge_suspects(struct ctx *c);

/* analysis.c */
int compare_tid_pos(const void *a, const void *b);    /* (by tid) */

#endif
