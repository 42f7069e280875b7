/*
 * report.c — renders the versioned JSON replies (docs/protocol.md): the
 * process object with its threads, stacks and loaded modules, and the small
 * ping / hooks / error replies. Raw program counters and the module list go
 * out as they are; symbolizing them is the CLI's job, never the host's.
 */
#include "serve/report.h"
#include "base/util.h"
#include "interpose/interpose.h"
#include "serve/history.h"
#include "record/registry.h"
#include "record/stacks.h"
#include "record/unwind.h"

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

static void write_hook_binding(struct jsonw *w, const struct lw_hook_binding *b)
{
    jsonw_begin_object(w);
    jsonw_key(w, "name");
    jsonw_string(w, b->name);
    jsonw_key(w, "version");
    if (b->version)
        jsonw_string(w, b->version);
    else
        jsonw_null(w);
    jsonw_key(w, "address");
    jsonw_hex_or_null(w, (uint64_t)(uintptr_t)b->address);
    jsonw_key(w, "resolved");
    jsonw_bool(w, b->address != NULL);
    jsonw_end_object(w);
}

void lw_report_hooks(struct jsonw *w)
{
    /* lw_hooks_describe returns how many bindings there are, which may be
     * more than it had room to fill: grow once and ask again. */
    size_t cap = 256, n = 0;
    struct lw_hook_binding *b = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct lw_hook_binding *bigger = realloc(b, cap * sizeof *b);
        if (!bigger) {
            free(b);
            w->failed = true;
            return;
        }
        b = bigger;
        n = lw_hooks_describe(b, cap);
        if (n <= cap)
            break;
        cap = n;
    }
    if (n > cap)
        n = cap;
    begin_reply(w);
    jsonw_key(w, "hooks");
    jsonw_begin_array(w);
    for (size_t i = 0; i < n; i++)
        write_hook_binding(w, &b[i]);
    jsonw_end_array(w);
    jsonw_end_object(w);
    jsonw_raw_newline(w);
    free(b);
}

/* ---- process identity ---- */

/* /proc/self/cmdline, its NUL-separated arguments joined by spaces (the
 * first 4 KiB: enough to recognise a program). */
static void write_command(struct jsonw *w)
{
    char buf[4096];
    size_t len = 0;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
            len += (size_t)n;
        close(fd);
    }
    while (len > 0 && buf[len - 1] == 0)
        len--;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    buf[len] = 0;
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

/* The GNU build-id of a loaded object, as hex, from its PT_NOTE segments.
 * Notes are part of the loaded image and stay mapped while dl_iterate_phdr
 * holds the loader lock, so they are read directly. Returns the number of
 * hex digits written (0: none found). */
static size_t find_build_id(const struct dl_phdr_info *info, char *hex, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE || ph->p_memsz < sizeof(ElfW(Nhdr)))
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;   /* notes in an 8-aligned segment pad to 8 */
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            size_t name_room = (note->n_namesz + align - 1) & ~(align - 1);
            size_t desc_room = (note->n_descsz + align - 1) & ~(align - 1);
            size_t left = (size_t)(end - p) - sizeof *note;
            if (name_room > left || note->n_descsz > left - name_room)
                break;   /* malformed: stop rather than read past the segment */
            const char *name = p + sizeof *note;
            const unsigned char *desc = (const unsigned char *)name + name_room;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t out = 0;
                for (size_t k = 0; k < note->n_descsz && out + 3 <= size; k++) {
                    hex[out++] = digits[desc[k] >> 4];
                    hex[out++] = digits[desc[k] & 15];
                }
                hex[out] = 0;
                return out;
            }
            if (desc_room > left - name_room)
                break;
            p = (const char *)desc + desc_room;
        }
    }
    return 0;
}

struct module_walk {
    struct jsonw *w;
    bool first;   /* the first object dl_iterate_phdr reports is the program itself */
};

static int write_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct module_walk *walk = data;
    struct jsonw *w = walk->w;
    bool is_program = walk->first;
    walk->first = false;
    char path[4096];
    const char *name = info->dlpi_name;
    if ((!name || !*name) && is_program) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = 0;
        name = path;
    }
    if (!name || !*name)
        return 0;   /* an object without a name cannot be symbolized anyway */
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
    return w->failed;   /* out of memory: stop walking */
}

static void write_modules(struct jsonw *w)
{
    struct module_walk walk = { .w = w, .first = true };
    jsonw_key(w, "modules");
    jsonw_begin_array(w);
    dl_iterate_phdr(write_module, &walk);
    jsonw_end_array(w);
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
        /* After the module list: a frame in code unloaded since the stack
         * was taken (which that list may already show something else in)
         * is written as 0, unknown. */
        uint64_t pcs[LW_MAX_FRAMES];
        uint32_t depth = snap->stacks[i].depth < LW_MAX_FRAMES ? snap->stacks[i].depth : LW_MAX_FRAMES;
        memcpy(pcs, snap->stacks[i].pcs, sizeof(uint64_t) * depth);
        lw_unwind_forget_unloaded(pcs, depth, lw_stack_generation(snap->stacks[i].id));
        for (uint32_t k = 0; k < depth; k++)
            jsonw_hex(w, pcs[k]);
        jsonw_end_array(w);
    }
    jsonw_end_object(w);
}

/* The fixed tables' limits, once reached: what is missing since. */
static void write_limit_notes(struct jsonw *w)
{
    char note[256];
    uint64_t full = lw_registry_full_count(), lost = lw_stacks_lost();
    if (full) {
        snprintf(note, sizeof note, "threads not recorded: the thread table (%u threads alive at once) was full "
                 "%llu times; those threads are seen only through /proc, with no stacks", LW_MAX_THREADS,
                 (unsigned long long)full);
        jsonw_string(w, note);
    }
    if (lost) {
        snprintf(note, sizeof note, "stacks not kept: the stack table (%u distinct stacks) was full for %llu "
                 "captures; those waits and threads have no stack", lw_stacks_capacity(), (unsigned long long)lost);
        jsonw_string(w, note);
    }
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
    lw_report_write_settings(w, snap);
    lw_report_write_summary(w, snap, a);
    jsonw_key(w, "created");
    jsonw_uint(w, snap->created);
    jsonw_key(w, "exited");
    jsonw_uint(w, snap->exited);
    jsonw_key(w, "peak");
    jsonw_uint(w, snap->peak);
    lw_history_write(w);
    jsonw_key(w, "notes");
    jsonw_begin_array(w);
    lw_report_write_judgement_notes(w, snap, a);
    if (lw_stacks_problem()) {
        char why[160];
        snprintf(why, sizeof why, "stacks are not recorded: %s", lw_stacks_problem());
        jsonw_string(w, why);
    }
    write_limit_notes(w);
    jsonw_end_array(w);
    if (kind == LW_REPORT_THREADS) {
        write_modules(w);
        write_stacks(w, snap);
        lw_report_write_paths(w, snap);
        lw_report_write_threads(w, snap, a);
        lw_report_write_exited(w, snap);
    }
    jsonw_end_object(w);
    jsonw_raw_newline(w);
}
