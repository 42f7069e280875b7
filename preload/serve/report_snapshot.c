/*
 * report_snapshot.c — the parts of the process object (docs/protocol.md)
 * that are a snapshot and its analysis written out: threads, waits,
 * channels, counterparts, rule 3's paths, the summary and settings. Pure
 * functions of the snapshot, shared by the preload's replies (report.c)
 * and the CLI's attach from outside, so that both say the same thing the
 * same way.
 */
#include "serve/report.h"

#include <stdio.h>
#include <string.h>

/* ---- threads ---- */

/* A string from a fixed-size array of the snapshot: never read past the
 * array, even if it lacks its NUL. */
void lw_report_write_fixed_string(struct jsonw *w, const char *s, size_t size)
{
    char copy[1024];
    size_t n = strnlen(s, size < sizeof copy ? size : sizeof copy - 1);
    memcpy(copy, s, n);
    copy[n] = 0;
    jsonw_string(w, copy);
}

static void write_stack_ref(struct jsonw *w, uint32_t id)
{
    if (id)
        jsonw_uint(w, id);
    else
        jsonw_null(w);
}

/* For a wait seen only in /proc (or inferred from outside): the blocking syscall's name, or
 * "syscall_<nr>" for one we have no name for (still a string, as the
 * protocol says); null for waits a hook recorded. */
static void write_syscall_name(struct jsonw *w, const struct lw_snap_wait *x)
{
    if (x->source == LW_SOURCE_HOOK || x->syscall_nr < 0) {
        jsonw_null(w);
        return;
    }
    const char *name = lw_syscall_name(x->syscall_nr);
    char unnamed[32];
    if (!name) {
        snprintf(unnamed, sizeof unnamed, "syscall_%d", x->syscall_nr);
        name = unnamed;
    }
    jsonw_string(w, name);
}

static void write_string_or_null(struct jsonw *w, const char *s)
{
    if (s)
        jsonw_string(w, s);
    else
        jsonw_null(w);
}

static void write_person(struct jsonw *w, int32_t tid, const char *name, bool exited)
{
    jsonw_begin_object(w);
    jsonw_key(w, "tid");
    jsonw_int(w, tid);
    jsonw_key(w, "name");
    lw_report_write_fixed_string(w, name, 16);
    jsonw_key(w, "exited");
    jsonw_bool(w, exited);
}

static void write_other_end(struct jsonw *w, const struct lw_snap_channel *c)
{
    jsonw_begin_object(w);
    jsonw_key(w, "fds");
    jsonw_begin_array(w);
    for (size_t i = 0; i < c->nother_fds && i < LW_SNAP_OTHER_FDS; i++)
        jsonw_int(w, c->other_fds[i]);
    jsonw_end_array(w);
    jsonw_key(w, "processes");
    jsonw_begin_array(w);
    for (size_t i = 0; i < c->nprocs && i < LW_SNAP_PROCS; i++) {
        jsonw_begin_object(w);
        jsonw_key(w, "pid");
        jsonw_int(w, c->procs[i].pid);
        jsonw_key(w, "command");
        lw_report_write_fixed_string(w, c->procs[i].command, sizeof c->procs[i].command);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_key(w, "complete");   /* every process could be looked at */
    jsonw_bool(w, !c->procs_unknown && c->nprocs <= LW_SNAP_PROCS && c->nother_fds <= LW_SNAP_OTHER_FDS);
    jsonw_end_object(w);
}

static void write_channel(struct jsonw *w, const struct lw_snapshot *snap, int32_t index)
{
    if (index < 0 || (size_t)index >= snap->nchannels) {
        jsonw_null(w);
        return;
    }
    const struct lw_snap_channel *c = &snap->channels[index];
    jsonw_begin_object(w);
    jsonw_key(w, "type");
    jsonw_string(w, lw_chan_type_name(c->type));
    jsonw_key(w, "name");
    lw_report_write_fixed_string(w, c->name, sizeof c->name);
    jsonw_key(w, "inode");
    jsonw_uint(w, c->inode);
    jsonw_key(w, "tracked");
    jsonw_bool(w, c->tracked);
    jsonw_key(w, "creator");
    if (c->creator) {
        write_person(w, c->creator, c->creator_name, c->creator_exited);
        jsonw_end_object(w);
    } else {
        jsonw_null(w);
    }
    jsonw_key(w, "create_stack");
    write_stack_ref(w, c->create_stack);
    jsonw_key(w, "age");
    if (c->age >= 0)
        jsonw_double(w, c->age);
    else
        jsonw_null(w);
    jsonw_key(w, "other_end");
    write_other_end(w, c);
    jsonw_key(w, "peers");
    jsonw_begin_array(w);
    for (size_t i = 0; i < c->npeers; i++) {
        write_person(w, c->peers[i].tid, c->peers[i].name, c->peers[i].exited);
        jsonw_key(w, "idle");   /* null: used before the server's clock ran */
        if (c->peers[i].idle >= 0)
            jsonw_double(w, c->peers[i].idle);
        else
            jsonw_null(w);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_key(w, "exported");
    jsonw_bool(w, c->exported);
    jsonw_key(w, "stdio");
    jsonw_bool(w, c->stdio);
    jsonw_end_object(w);
}

static void write_poll_set(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_snap_wait *x)
{
    if (x->kind != LW_WAIT_POLL) {
        jsonw_null(w);
        return;
    }
    jsonw_begin_array(w);
    for (uint32_t i = 0; i < x->npollfds && x->pollfd_first + i < snap->npollfds; i++) {
        const struct lw_snap_pollfd *p = &snap->pollfds[x->pollfd_first + i];
        jsonw_begin_object(w);
        jsonw_key(w, "fd");
        jsonw_int(w, p->fd);
        jsonw_key(w, "direction");
        write_string_or_null(w, lw_direction_name(p->direction));
        jsonw_key(w, "channel");
        write_channel(w, snap, p->channel);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
}

static void write_int_or_null(struct jsonw *w, int64_t v)
{
    if (v)
        jsonw_int(w, v);
    else
        jsonw_null(w);
}

/* Rule 3: what keeps a candidate's object reachable (docs/protocol.md):
 * one entry of the reply's "paths" table (many waits share one). */
static void write_reach_path(struct jsonw *w, const struct lw_reach_path *p)
{
    jsonw_begin_object(w);
    jsonw_key(w, "root");
    jsonw_begin_object(w);
    jsonw_key(w, "kind");
    write_string_or_null(w, lw_root_kind_name(p->root));
    jsonw_key(w, "address");
    jsonw_hex_or_null(w, p->root_address);
    jsonw_key(w, "tid");
    write_int_or_null(w, p->root_tid);
    jsonw_key(w, "sp");
    jsonw_hex_or_null(w, p->root_sp);
    jsonw_key(w, "pc");   /* stack: the frame holding the root word (a return address into it) */
    jsonw_hex_or_null(w, p->root_pc);
    jsonw_key(w, "region");
    jsonw_begin_array(w);
    jsonw_hex_or_null(w, p->root_lo);
    jsonw_hex_or_null(w, p->root_hi);
    jsonw_end_array(w);
    jsonw_key(w, "name");
    if (p->root == LW_ROOT_MAPPING)
        lw_report_write_fixed_string(w, p->root_name, sizeof p->root_name);
    else
        jsonw_null(w);
    jsonw_end_object(w);
    jsonw_key(w, "by_handle");
    jsonw_bool(w, p->by_handle);
    jsonw_key(w, "complete");
    jsonw_bool(w, p->complete);
    jsonw_key(w, "steps");
    jsonw_uint(w, p->nsteps);
    jsonw_key(w, "chain");
    jsonw_begin_array(w);
    for (size_t i = 0; i < p->nsteps && i < LW_PATH_STEPS; i++) {
        const struct lw_path_step *st = &p->steps[i];
        jsonw_begin_object(w);
        jsonw_key(w, "kind");
        jsonw_string(w, lw_step_kind_name(st->kind));
        jsonw_key(w, "block");
        jsonw_hex_or_null(w, st->block);
        jsonw_key(w, "size");
        jsonw_uint(w, st->size);
        jsonw_key(w, "offset");
        jsonw_uint(w, st->offset);
        jsonw_key(w, "tid");
        write_int_or_null(w, st->tid);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_end_object(w);
}

static void write_wait(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_snap_thread *t,
                       const struct lw_thread_verdict *v)
{
    const struct lw_snap_wait *x = &t->wait;
    jsonw_begin_object(w);
    jsonw_key(w, "kind");
    jsonw_string(w, lw_wait_kind_name(x->kind));
    jsonw_key(w, "object");
    jsonw_hex_or_null(w, x->object);
    jsonw_key(w, "fd");
    if (x->fd >= 0 && !x->sysv)
        jsonw_int(w, x->fd);
    else
        jsonw_null(w);
    if (x->sysv) {
        jsonw_key(w, "queue_id");   /* a System V message queue */
        jsonw_int(w, x->fd);
    }
    jsonw_key(w, "timeout");
    jsonw_bool(w, x->timed);
    jsonw_key(w, "remaining");
    if (x->timed && x->source == LW_SOURCE_HOOK && x->remaining != 0)
        jsonw_double(w, x->remaining);
    else
        jsonw_null(w);
    jsonw_key(w, "seconds");
    jsonw_double(w, x->seconds);
    jsonw_key(w, "owner");
    if (x->owner > 0)
        jsonw_int(w, x->owner);
    else
        jsonw_null(w);
    jsonw_key(w, "aux");
    jsonw_hex_or_null(w, x->aux);
    jsonw_key(w, "shared");
    jsonw_bool(w, x->shared);
    jsonw_key(w, "source");
    jsonw_string(w, x->source == LW_SOURCE_PROC ? "proc" : x->source == LW_SOURCE_INFERRED ? "inferred" : "hook");
    jsonw_key(w, "syscall");
    write_syscall_name(w, x);
    jsonw_key(w, "reach");   /* rule 3: null (not a candidate), reachable, unreachable, confirmed */
    {
        static const char *const reach[] = { NULL, "reachable", "unreachable", "confirmed" };
        write_string_or_null(w, (unsigned)x->reach < 4 ? reach[x->reach] : NULL);
    }
    jsonw_key(w, "reach_path");   /* an id in "paths" */
    if (x->reach == LW_REACH_REACHABLE && x->reach_path && x->reach_path <= snap->npaths)
        jsonw_uint(w, x->reach_path);
    else
        jsonw_null(w);
    jsonw_key(w, "direction");
    write_string_or_null(w, lw_direction_name(x->direction));
    jsonw_key(w, "class");
    write_string_or_null(w, lw_wait_class_name(v->wait_class));
    jsonw_key(w, "channel");
    write_channel(w, snap, x->channel);
    jsonw_key(w, "fds");
    write_poll_set(w, snap, x);
    if (x->kind == LW_WAIT_POLL) {
        jsonw_key(w, "fds_complete");
        jsonw_bool(w, !x->pollfds_truncated);
    }
    jsonw_end_object(w);
}

static void write_counterpart(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_thread_verdict *v)
{
    if (v->cp_kind == LW_CP_NONE) {
        jsonw_null(w);
        return;
    }
    jsonw_begin_object(w);
    if (v->cp_kind == LW_CP_UNREACHABLE) {
        jsonw_key(w, "unreachable");
        jsonw_bool(w, true);
        jsonw_key(w, "block");
        jsonw_hex_or_null(w, v->cp_block);
        jsonw_key(w, "block_size");
        if (v->cp_block)
            jsonw_uint(w, v->cp_block_size);
        else
            jsonw_null(w);
        jsonw_key(w, "unreachable_for");
        jsonw_double(w, v->cp_unreachable_for);
    } else if (v->cp_kind == LW_CP_CHANNEL) {
        static const char *const roles[] = { "creator", "user" };
        if (v->cp_channel >= 0 && (size_t)v->cp_channel < snap->nchannels) {
            const struct lw_snap_channel *c = &snap->channels[v->cp_channel];
            jsonw_key(w, "channel");
            jsonw_string(w, c->name);
            jsonw_key(w, "other_end_fds");
            jsonw_begin_array(w);
            for (size_t i = 0; i < c->nother_fds && i < LW_SNAP_OTHER_FDS; i++)
                jsonw_int(w, c->other_fds[i]);
            jsonw_end_array(w);
        }
        jsonw_key(w, "wakers");
        jsonw_begin_array(w);
        for (size_t i = 0; i < v->nwakers && i < LW_MAX_WAKERS; i++) {
            const struct lw_waker *k = &v->wakers[i];
            jsonw_begin_object(w);
            jsonw_key(w, "tid");
            jsonw_int(w, k->tid);
            jsonw_key(w, "role");
            jsonw_string(w, roles[k->role]);
            jsonw_key(w, "exited");
            jsonw_bool(w, k->exited);
            jsonw_key(w, "exited_ago");
            if (k->exited && k->exited_ago >= 0)
                jsonw_double(w, k->exited_ago);
            else
                jsonw_null(w);
            jsonw_key(w, "verdict");
            if (k->exited)
                jsonw_null(w);
            else
                jsonw_string(w, lw_verdict_name(k->verdict));
            jsonw_key(w, "idle");
            if (k->idle >= 0)
                jsonw_double(w, k->idle);
            else
                jsonw_null(w);
            jsonw_end_object(w);
        }
        jsonw_end_array(w);
    } else if (v->cp_kind == LW_CP_CYCLE) {
        jsonw_key(w, "cycle");
        jsonw_begin_array(w);
        for (size_t i = 0; i < v->ncycle && i < LW_MAX_CYCLE; i++)
            jsonw_int(w, v->cycle[i]);
        jsonw_end_array(w);
    } else {
        jsonw_key(w, v->cp_kind == LW_CP_TARGET ? "target" : "owner");
        jsonw_int(w, v->cp_tid);
        jsonw_key(w, "exited");
        jsonw_bool(w, v->cp_exited);
        if (v->cp_exited && v->cp_exited_ago >= 0) {
            jsonw_key(w, "exited_ago");
            jsonw_double(w, v->cp_exited_ago);
        }
    }
    if (v->cp_blocked_on) {
        jsonw_key(w, "chain");
        jsonw_int(w, v->cp_blocked_on);
    }
    jsonw_end_object(w);
}

static void write_thread(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_snap_thread *t,
                         const struct lw_thread_verdict *v)
{
    jsonw_begin_object(w);
    jsonw_key(w, "tid");
    jsonw_int(w, t->tid);
    jsonw_key(w, "name");
    lw_report_write_fixed_string(w, t->name, sizeof t->name);
    jsonw_key(w, "main");
    jsonw_bool(w, t->is_main);
    jsonw_key(w, "origin");
    jsonw_string(w, lw_origin_name(t->origin));
    jsonw_key(w, "parent");
    if (t->parent > 0)
        jsonw_int(w, t->parent);
    else
        jsonw_null(w);
    jsonw_key(w, "start_routine");
    jsonw_hex_or_null(w, t->start_routine);
    jsonw_key(w, "age");
    if (t->age >= 0)
        jsonw_double(w, t->age);
    else
        jsonw_null(w);
    jsonw_key(w, "verdict");
    jsonw_string(w, lw_verdict_name(v->verdict));
    jsonw_key(w, "state");
    jsonw_string(w, t->waiting ? "parked" : "running");
    jsonw_key(w, "wait");
    if (t->waiting)
        write_wait(w, snap, t, v);
    else
        jsonw_null(w);
    jsonw_key(w, "reason");
    lw_report_write_fixed_string(w, v->reason, sizeof v->reason);
    jsonw_key(w, "counterpart");
    write_counterpart(w, snap, v);
    jsonw_key(w, "wait_stack");
    write_stack_ref(w, t->waiting ? t->wait_stack : 0);
    jsonw_key(w, "create_stack");
    write_stack_ref(w, t->create_stack);
    jsonw_end_object(w);
}

void lw_report_write_settings(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "settings");
    jsonw_begin_object(w);
    jsonw_key(w, "settle_ms");
    jsonw_uint(w, snap->settle_ms);
    jsonw_key(w, "stall_ms");
    jsonw_uint(w, snap->stall_ms);
    jsonw_end_object(w);
}

void lw_report_write_summary(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    jsonw_key(w, "summary");
    jsonw_begin_object(w);
    jsonw_key(w, "threads");
    jsonw_uint(w, snap->nthreads);
    for (int v = 0; v < LW_VERDICT_COUNT; v++) {
        jsonw_key(w, lw_verdict_name((enum lw_verdict)v));
        jsonw_uint(w, a->counts[v]);
    }
    jsonw_key(w, "parked");
    jsonw_uint(w, a->parked);
    jsonw_end_object(w);
}

void lw_report_write_paths(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "paths");
    jsonw_begin_object(w);
    for (size_t i = 0; i < snap->npaths; i++) {
        char id[24];
        snprintf(id, sizeof id, "%zu", i + 1);
        jsonw_key(w, id);
        write_reach_path(w, &snap->paths[i]);
    }
    jsonw_end_object(w);
}

void lw_report_write_exited(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "exited_threads");
    jsonw_begin_array(w);
    for (size_t i = 0; i < snap->nexited; i++) {
        const struct lw_snap_exited *x = &snap->exited_threads[i];
        jsonw_begin_object(w);
        jsonw_key(w, "tid");
        jsonw_int(w, x->tid);
        jsonw_key(w, "name");
        lw_report_write_fixed_string(w, x->name, sizeof x->name);
        jsonw_key(w, "exited_ago");
        jsonw_double(w, x->exited_ago);
        jsonw_key(w, "start_routine");
        jsonw_hex_or_null(w, x->start_routine);
        jsonw_key(w, "create_stack");
        write_stack_ref(w, x->create_stack);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
}

void lw_report_write_threads(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    jsonw_key(w, "threads");
    jsonw_begin_array(w);
    for (size_t i = 0; i < snap->nthreads; i++)
        write_thread(w, snap, &snap->threads[i], &a->verdicts[i]);
    jsonw_end_array(w);
}

void lw_report_write_judgement_notes(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a)
{
    if (a->note[0])
        lw_report_write_fixed_string(w, a->note, sizeof a->note);
    if (snap->reach_note[0])
        lw_report_write_fixed_string(w, snap->reach_note, sizeof snap->reach_note);
}
