/*
 * attach.c — judging a live process from outside (see attach.h).
 *
 * The order of things, and why:
 *   1. Learn what leakwatch's own process can tell of glibc (layout.c),
 *      list the target's modules and read their unwind tables, warm the
 *      symbolizer: none of it may lengthen the freeze.
 *   2. Sample every thread through /proc, wait the settle time, sample
 *      again (every time: our own stop switches every thread out): a thread in
 *      the same syscall with the same arguments and no context switch in
 *      between has waited at least that long. That is the only age a wait
 *      seen from outside has (or --since, the person's word).
 *   3. Freeze (freeze.c): every thread stopped, its registers read.
 *   4. Judge while stopped (judge.c): stacks, waits, layouts, the
 *      snapshot, rules 1 and 2, and rule 3's scan over the frozen memory,
 *      where every register of every thread is visible: one scan is the
 *      proof.
 *   5. Let go, then the fd part (other processes' fd tables take time)
 *      and the final analysis; the reply.
 */
#include "attach/attach.h"
#include "attach/freeze.h"
#include "attach/judge.h"
#include "attach/layout.h"
#include "attach/sample.h"
#include "attach/sockpeers.h"
#include "base/maps.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STOP_TIMEOUT_MS 2000u

/* What one attach leaves the next (watch). Not the samples: our own stop
 * switches every thread out, so a sample taken before one freeze cannot
 * age a wait for the next. */
struct lwa_session {
    pid_t pid;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct lwa_session *lwa_session_new(pid_t pid)
{
    struct lwa_session *s = calloc(1, sizeof *s);
    if (s)
        s->pid = pid;
    return s;
}

void lwa_session_free(struct lwa_session *s)
{
    free(s);
}

/* ---- the frozen process as a source ---- */

static void no_threads_begin(const struct lw_source *src) { (void)src; }
static bool threads_end_fine(const struct lw_source *src) { (void)src; return true; }
static void nothing_to_prepare(struct lw_source *src, struct scan *s) { (void)src; (void)s; }

/* Every general register of a stopped thread may hold a pointer. */
static bool frozen_registers(const struct lw_source *src, int32_t tid, struct lw_regs *out)
{
    return lwa_thread_registers(lwa_frozen_thread(src->ctx, tid), out);
}

static const struct lw_source_ops frozen_ops = {
    .read = lw_process_read,
    .read_many = lw_process_read_many,
    .maps = lw_process_maps,
    .threads_begin = no_threads_begin,
    .registers = frozen_registers,
    .threads_end = threads_end_fine,
    .prepare_scan = nothing_to_prepare,
    .program_break = NULL,
};

/* ---- what /proc says of the process ---- */

static void read_command(pid_t pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    ssize_t n = lw_read_whole_file(path, out, size);
    if (n <= 0) {
        out[0] = 0;
        return;
    }
    while (n > 0 && out[n - 1] == 0)
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == 0)
            out[i] = ' ';
    out[n] = 0;
}

static void read_exe(pid_t pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, out, size - 1);
    out[n > 0 ? n : 0] = 0;
}

static uint64_t read_caught_signals(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (lw_read_small_file(path, buf, sizeof buf) <= 0)
        return ~0ull;
    const char *line = strstr(buf, "\nSigCgt:");
    return line ? strtoull(line + 8, NULL, 16) : ~0ull;
}

static double process_uptime(const struct lwa_sample *s, pid_t pid)
{
    const struct lwa_task_sample *main_thread = lwa_sample_find(s, pid);
    return main_thread && main_thread->started >= 0 && s->boot_seconds >= main_thread->started
               ? s->boot_seconds - main_thread->started : -1;
}

/* ---- ages from two samples ---- */

/* How long thread t's wait is known to have lasted: since the first
 * sample if both samples and its registers agree, else not at all. */
static void age_wait(struct lwa_thread_view *v, const struct lwa_sample *first, const struct lwa_sample *second,
                     uint64_t frozen_ns, double since)
{
    const struct lwa_frozen_thread *t = v->t;
    v->parked_for = 0;
    v->parked_since_ns = frozen_ns;
    if (!t->stopped || t->gone)
        return;
    if (since >= 0) {
        v->parked_for = since;
        v->parked_since_ns = first ? first->taken_ns : frozen_ns;
        return;
    }
    const struct lwa_task_sample *a = first ? lwa_sample_find(first, t->tid) : NULL;
    const struct lwa_task_sample *b = lwa_sample_find(second, t->tid);
    const struct user_regs_struct *r = &t->regs;
    if (!lwa_same_wait(a, b) || (long)r->orig_rax != b->syscall_nr || r->rsp != b->sp || r->rip != b->pc ||
        r->rdi != b->args[0] || r->rsi != b->args[1] || r->rdx != b->args[2])
        return;
    v->parked_for = (double)(frozen_ns - first->taken_ns) / 1e9;
    v->parked_since_ns = first->taken_ns;
}

static void name_thread(struct lwa_thread_view *v, const struct lwa_sample *second)
{
    const struct lwa_task_sample *b = lwa_sample_find(second, v->t->tid);
    v->age = b && b->started >= 0 && second->boot_seconds >= b->started ? second->boot_seconds - b->started : -1;
    if (b)
        memcpy(v->name, b->name, sizeof v->name);
}

/* ---- the notes ---- */

static json_object *attach_facts(const struct lwa_freeze *f, const struct lwa_judgement *j, double sampled_for,
                                 const struct lwa_options *o)
{
    json_object *a = json_object_new_object();
    double stopped_ms = (double)(f->thawed_ns - f->began_ns) / 1e6;
    json_object_object_add(a, "threads_stopped", json_object_new_int64((int64_t)(f->n - f->unstopped)));
    json_object_object_add(a, "stopped_ms", json_object_new_double(stopped_ms));
    json_object_object_add(a, "judged_ms", json_object_new_double(j->judge_ms));
    json_object_object_add(a, "was_stopped", json_object_new_boolean(f->was_stopped));
    json_object_object_add(a, "restarted_waits", json_object_new_int64((int64_t)f->restarted));
    json_object_object_add(a, "sampled_for", json_object_new_double(sampled_for));
    json_object_object_add(a, "since", o->since >= 0 ? json_object_new_double(o->since) : NULL);
    json_object_object_add(a, "same_libc", json_object_new_boolean(j->layout.same_libc));
    return a;
}

static void write_notes(struct lwa_notes *n, const struct lwa_freeze *f, const struct lwa_judgement *j,
                        double sampled_for, const struct lwa_options *o)
{
    lwa_add_note(n, "attached from outside (ptrace): %zu thread%s stopped for %.1f ms, then let go%s%s",
             f->n - f->unstopped, f->n - f->unstopped == 1 ? "" : "s", (double)(f->thawed_ns - f->began_ns) / 1e6,
             f->was_stopped ? "; the process was stopped (SIGSTOP) and is left stopped" : "",
             f->restarted ? "; waits that the stop cut short with EINTR were restarted" : "");
    if (f->unstopped)
        lwa_add_note(n, "%zu thread%s did not stop within %u ms (uninterruptible sleep?): no reachability proof",
                 f->unstopped, f->unstopped == 1 ? "" : "s", STOP_TIMEOUT_MS);
    if (o->since >= 0)
        lwa_add_note(n, "every wait is taken to be at least %.1fs old (--since)", o->since);
    else
        lwa_add_note(n, "waits are aged by two samples %.1fs apart (the same syscall, not one context switch): "
                 "a wait is judged once it lasted the settle time (%u ms)", sampled_for, o->settle_ms);
    lwa_add_note(n, "what attach cannot know: how threads were created (parents, start routines, creation stacks), "
             "which threads exited, who made and used each fd channel; no verdict relies on it");
    if (j->layout.unknown[0])
        lwa_add_note(n, "glibc layout: %s", j->layout.unknown);
}

/* ---- the attach ---- */

struct attach_run {
    struct lwa_session *session;
    pid_t live;                /* whose /proc and memory: the process, or a live thread when its main
                                  thread has exited (a zombie leader has no memory, maps or fds) */
    const struct lwa_options *o;
    struct lwa_sample first, second;
    struct lwa_freeze freeze;
    struct lw_source source;
    struct lwa_memory *mem;
    struct lwa_stacks *stacks;
    struct lwc_symbolizer *sym;
    json_object *modules;
    struct lwa_subject subject;
    struct lwa_judgement judgement;
    struct lwa_sockpeers *peers;
};

/* The process itself, or, when its main thread has exited, a live thread
 * of it: /proc/TID/ and process_vm_readv(TID) see the same memory. */
static pid_t live_thread_of(const struct lwa_sample *s, pid_t pid)
{
    const struct lwa_task_sample *main_thread = lwa_sample_find(s, pid);
    if (!main_thread || (main_thread->state != 'Z' && main_thread->state != 'X'))
        return pid;
    for (size_t i = 0; i < s->n; i++)
        if (s->tasks[i].state != 'Z' && s->tasks[i].state != 'X' && s->tasks[i].state != '?')
            return s->tasks[i].tid;
    return pid;
}

/* Before the freeze: samples, modules, unwind tables, symbols. */
static bool prepare(struct attach_run *r, char *why, size_t size)
{
    pid_t pid = r->session->pid;
    lwa_layout_learn_self();
    if (!lwa_sample_take(&r->first, pid)) {
        snprintf(why, size, "pid %d does not exist (or has exited)", (int)pid);
        return false;
    }
    r->live = live_thread_of(&r->first, pid);
    pid = r->live;
    r->source = (struct lw_source){ .ops = &frozen_ops, .pid = pid, .ctx = &r->freeze,
                                    .layout = { .cancel_offset = -1 } };
    r->mem = lwa_memory_new(&r->source);
    char err[512] = "";
    r->stacks = r->mem ? lwa_stacks_for_process(pid, r->mem, err, sizeof err) : NULL;
    r->modules = lwa_stacks_modules(r->stacks);
    r->sym = lwc_symbolizer_new(r->modules, pid);
    for (size_t i = 0; i < r->first.n; i++)   /* warm the symbol tables where threads sleep */
        if (r->first.tasks[i].syscall_nr >= 0) {
            struct lwc_frame f;
            lwc_symbolize(r->sym, r->first.tasks[i].pc, true, &f);
        }
    if (!r->stacks && err[0])
        snprintf(why, size, "%s", err);
    return r->mem != NULL;
}

static void wait_for_second_sample(struct attach_run *r)
{
    uint64_t due = r->first.taken_ns + (uint64_t)r->o->settle_ms * 1000000u;
    if (r->o->since < 0)
        while (now_ns() < due) {
            uint64_t left = due - now_ns();
            struct timespec ts = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
            nanosleep(&ts, NULL);
        }
    lwa_sample_take(&r->second, r->session->pid);   /* (gone meanwhile: the freeze says so) */
}

static bool make_subject(struct attach_run *r)
{
    struct lwa_subject *s = &r->subject;
    pid_t pid = r->session->pid;
    s->pid = pid;
    s->proc_pid = r->live;
    s->kind = "attach";
    read_command(r->live, s->command, sizeof s->command);
    read_exe(r->live, s->exe, sizeof s->exe);
    s->frozen = r->freeze.threads;
    s->nfrozen = r->freeze.n;
    s->source = &r->source;
    s->mem = r->mem;
    s->stacks = r->stacks;
    s->sym = r->sym;
    s->caught_signals = read_caught_signals(r->live);
    s->uptime = process_uptime(&r->second, pid);
    s->settle_ms = r->o->settle_ms;
    s->stall_ms = r->o->stall_ms;
    s->threads = calloc(r->freeze.n ? r->freeze.n : 1, sizeof *s->threads);
    if (!s->threads)
        return false;
    for (size_t i = 0; i < r->freeze.n; i++) {
        if (r->freeze.threads[i].gone)
            continue;
        struct lwa_thread_view *v = &s->threads[s->nthreads++];
        v->t = &r->freeze.threads[i];
        name_thread(v, &r->second);
        age_wait(v, r->first.tasks ? &r->first : NULL, &r->second, r->freeze.frozen_ns, r->o->since);
    }
    r->source.frozen = r->freeze.unstopped == 0;
    return true;
}

static void finish_run(struct attach_run *r)
{
    lwa_judgement_free(&r->judgement);
    free(r->subject.threads);
    lwa_freeze_free(&r->freeze);
    lwc_symbolizer_free(r->sym);
    json_object_put(r->modules);
    lwa_stacks_free(r->stacks);
    lwa_memory_free(r->mem);
    lwa_sockpeers_free(r->peers);
    lwa_sample_free(&r->first);
    lwa_sample_free(&r->second);
}

json_object *lwa_attach(struct lwa_session *session, const struct lwa_options *o, char *why, size_t size)
{
    struct attach_run r;
    memset(&r, 0, sizeof r);
    r.session = session;
    r.o = o;
    json_object *reply = NULL;
    char prepare_problem[512] = "";
    if (!prepare(&r, prepare_problem, sizeof prepare_problem)) {
        snprintf(why, size, "%s", prepare_problem[0] ? prepare_problem : "out of memory");
        finish_run(&r);
        return NULL;
    }
    wait_for_second_sample(&r);
    if (lwa_freeze(&r.freeze, session->pid, STOP_TIMEOUT_MS, why, size) != LWA_FROZEN) {
        finish_run(&r);
        return NULL;
    }
    if (!r.stacks) {
        snprintf(why, size, "%s", prepare_problem);
        finish_run(&r);
        return NULL;
    }
    lwa_freeze_hold_for_tests();
    bool judged = make_subject(&r) && lwa_judge_stopped(&r.subject, &r.judgement, o->want_paths) == 0;
    lwa_thaw(&r.freeze);
    r.peers = lwa_sockpeers_read(r.live);
    r.subject.history = lwa_sockpeers_history(r.peers);
    if (judged && lwa_judge_finish(&r.subject, &r.judgement) == 0) {
        struct lwa_notes notes = { .n = 0 };
        double sampled_for = r.first.tasks ? (double)(r.freeze.frozen_ns - r.first.taken_ns) / 1e9 : 0;
        write_notes(&notes, &r.freeze, &r.judgement, sampled_for, o);
        reply = lwa_reply(&r.subject, &r.judgement, notes.v, notes.n,
                          attach_facts(&r.freeze, &r.judgement, sampled_for, o), why, size);
    } else {
        snprintf(why, size, "out of memory judging pid %d", (int)session->pid);
    }
    finish_run(&r);
    return reply;
}
