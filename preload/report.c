/*
 * report.c — renders the versioned JSON replies (docs/protocol.md): the
 * process object with its threads, stacks and loaded modules, and the small
 * ping / hooks / error replies. Raw program counters and the module list go
 * out as they are; symbolizing them is the CLI's job, never the host's.
 */
#include "report.h"
#include "lw.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROTOCOL_VERSION 1

static void begin_reply(struct jsonw *w)
{
    jsonw_begin_object(w);
    jsonw_key(w, "version");
    jsonw_int(w, PROTOCOL_VERSION);
    jsonw_key(w, "pid");
    jsonw_int(w, getpid());
}

void lw_report_error(struct jsonw *w, const char *message)
{
    jsonw_begin_object(w);
    jsonw_key(w, "version");
    jsonw_int(w, PROTOCOL_VERSION);
    jsonw_key(w, "error");
    jsonw_string(w, message);
    jsonw_end_object(w);
    jsonw_raw_newline(w);
}

void lw_report_ping(struct jsonw *w)
{
    begin_reply(w);
    jsonw_key(w, "ok");
    jsonw_bool(w, true);
    jsonw_end_object(w);
    jsonw_raw_newline(w);
}

void lw_report_hooks(struct jsonw *w)
{
    struct lw_hook_binding b[128];
    size_t n = lw_hooks_describe(b, 128);
    if (n > 128)
        n = 128;
    begin_reply(w);
    jsonw_key(w, "hooks");
    jsonw_begin_array(w);
    for (size_t i = 0; i < n; i++) {
        jsonw_begin_object(w);
        jsonw_key(w, "name");
        jsonw_string(w, b[i].name);
        jsonw_key(w, "version");
        if (b[i].version)
            jsonw_string(w, b[i].version);
        else
            jsonw_null(w);
        jsonw_key(w, "address");
        jsonw_hex_or_null(w, (uint64_t)(uintptr_t)b[i].address);
        jsonw_key(w, "resolved");
        jsonw_bool(w, b[i].address != NULL);
        jsonw_end_object(w);
    }
    jsonw_end_array(w);
    jsonw_end_object(w);
    jsonw_raw_newline(w);
}

/* ---- process identity ---- */

static void write_command(struct jsonw *w)
{
    char buf[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0) {
        jsonw_string(w, "");
        return;
    }
    buf[n] = 0;
    for (ssize_t i = 0; i < n - 1; i++)   /* arguments joined by spaces */
        if (buf[i] == 0)
            buf[i] = ' ';
    jsonw_string(w, buf);
}

static void write_exe(struct jsonw *w)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) {
        jsonw_null(w);
        return;
    }
    path[n] = 0;
    jsonw_string(w, path);
}

/* ---- modules ---- */

/* The GNU build-id of a loaded object, from its PT_NOTE segments, which are
 * mapped and stay mapped while dl_iterate_phdr holds the loader lock. */
static size_t find_build_id(const struct dl_phdr_info *info, char *hex, size_t size)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof *note;
            const unsigned char *desc = (const unsigned char *)name + ((note->n_namesz + 3) & ~3u);
            if ((const char *)desc + note->n_descsz > end)
                break;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t out = 0;
                for (size_t k = 0; k < note->n_descsz && out + 3 <= size; k++)
                    out += (size_t)snprintf(hex + out, size - out, "%02x", desc[k]);
                return out;
            }
            p = (const char *)desc + ((note->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

static int write_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct jsonw *w = data;
    char path[4096];
    const char *name = info->dlpi_name;
    if (!name || !*name) {   /* the main program */
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = 0;
        name = path;
    }
    if (!*name)
        return 0;
    char build_id[129];
    jsonw_begin_object(w);
    jsonw_key(w, "path");
    jsonw_string(w, name);
    jsonw_key(w, "base");
    jsonw_hex(w, (uint64_t)info->dlpi_addr);
    jsonw_key(w, "build_id");
    if (find_build_id(info, build_id, sizeof build_id))
        jsonw_string(w, build_id);
    else
        jsonw_null(w);
    jsonw_end_object(w);
    return 0;
}

/* ---- threads ---- */

static void write_stack_ref(struct jsonw *w, uint32_t id)
{
    if (id)
        jsonw_uint(w, id);
    else
        jsonw_null(w);
}

static void write_wait(struct jsonw *w, const struct lw_snap_thread *t)
{
    const struct lw_snap_wait *x = &t->wait;
    jsonw_begin_object(w);
    jsonw_key(w, "kind");
    jsonw_string(w, lw_wait_kind_name(x->kind));
    jsonw_key(w, "object");
    jsonw_hex_or_null(w, x->object);
    jsonw_key(w, "fd");
    if (x->fd >= 0)
        jsonw_int(w, x->fd);
    else
        jsonw_null(w);
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
    jsonw_string(w, x->source == LW_SOURCE_PROC ? "proc" : "hook");
    jsonw_key(w, "syscall");
    const char *sc = x->source == LW_SOURCE_PROC ? lw_syscall_name(x->syscall_nr) : NULL;
    if (sc)
        jsonw_string(w, sc);
    else if (x->source == LW_SOURCE_PROC)
        jsonw_int(w, x->syscall_nr);
    else
        jsonw_null(w);
    jsonw_end_object(w);
}

static void write_counterpart(struct jsonw *w, const struct lw_thread_verdict *v)
{
    if (v->cp_kind == LW_CP_NONE) {
        jsonw_null(w);
        return;
    }
    jsonw_begin_object(w);
    if (v->cp_kind == LW_CP_CYCLE) {
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

static void write_thread(struct jsonw *w, const struct lw_snap_thread *t, const struct lw_thread_verdict *v)
{
    jsonw_begin_object(w);
    jsonw_key(w, "tid");
    jsonw_int(w, t->tid);
    jsonw_key(w, "name");
    jsonw_string(w, t->name);
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
        write_wait(w, t);
    else
        jsonw_null(w);
    jsonw_key(w, "reason");
    jsonw_string(w, v->reason);
    jsonw_key(w, "counterpart");
    write_counterpart(w, v);
    jsonw_key(w, "wait_stack");
    write_stack_ref(w, t->waiting ? t->wait_stack : 0);
    jsonw_key(w, "create_stack");
    write_stack_ref(w, t->create_stack);
    jsonw_end_object(w);
}

static void write_summary(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a)
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

static void write_stacks(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "stacks");
    jsonw_begin_object(w);
    for (size_t i = 0; i < snap->nstacks; i++) {
        char id[16];
        snprintf(id, sizeof id, "%u", snap->stacks[i].id);
        jsonw_key(w, id);
        jsonw_begin_array(w);
        for (uint32_t k = 0; k < snap->stacks[i].depth; k++)
            jsonw_hex(w, snap->stacks[i].pcs[k]);
        jsonw_end_array(w);
    }
    jsonw_end_object(w);
}

static void write_exited(struct jsonw *w, const struct lw_snapshot *snap)
{
    jsonw_key(w, "exited_threads");
    jsonw_begin_array(w);
    for (size_t i = 0; i < snap->nexited; i++) {
        const struct lw_snap_exited *x = &snap->exited_threads[i];
        jsonw_begin_object(w);
        jsonw_key(w, "tid");
        jsonw_int(w, x->tid);
        jsonw_key(w, "name");
        jsonw_string(w, x->name);
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

void lw_report_process(struct jsonw *w, const struct lw_snapshot *snap, const struct lw_analysis *a,
                       enum lw_report_kind kind)
{
    begin_reply(w);
    jsonw_key(w, "command");
    write_command(w);
    jsonw_key(w, "exe");
    write_exe(w);
    jsonw_key(w, "uptime");
    jsonw_double(w, snap->uptime);
    jsonw_key(w, "settings");
    jsonw_begin_object(w);
    jsonw_key(w, "settle_ms");
    jsonw_uint(w, snap->settle_ms);
    jsonw_key(w, "stall_ms");
    jsonw_uint(w, snap->stall_ms);
    jsonw_end_object(w);
    write_summary(w, snap, a);
    jsonw_key(w, "created");
    jsonw_uint(w, snap->created);
    jsonw_key(w, "exited");
    jsonw_uint(w, snap->exited);
    jsonw_key(w, "peak");
    jsonw_uint(w, snap->peak);
    jsonw_key(w, "notes");
    jsonw_begin_array(w);
    if (a->note[0])
        jsonw_string(w, a->note);
    jsonw_end_array(w);
    if (kind == LW_REPORT_THREADS) {
        jsonw_key(w, "modules");
        jsonw_begin_array(w);
        dl_iterate_phdr(write_module, w);
        jsonw_end_array(w);
        write_stacks(w, snap);
        jsonw_key(w, "threads");
        jsonw_begin_array(w);
        for (size_t i = 0; i < snap->nthreads; i++)
            write_thread(w, &snap->threads[i], &a->verdicts[i]);
        jsonw_end_array(w);
        write_exited(w, snap);
    }
    jsonw_end_object(w);
    jsonw_raw_newline(w);
}
