/*
 * corefile.c — a core dump judged as a frozen process (see attach.h): a
 * core is the process stopped for good. Its PT_LOAD segments are the
 * memory (what the dump left out cannot be read), its NT_PRSTATUS notes
 * every thread's registers, NT_FILE the names of the mappings, NT_AUXV
 * where the program and the vDSO are, NT_PRPSINFO the command; libdwfl
 * finds the modules' files (--exe helps it to the program).
 *
 * What a core cannot say, and how that is kept from proving too much:
 *   - how old a wait is: --since, or nothing is settled;
 *   - the fds: no /proc/PID/fd (fd waits stay external: live);
 *   - which mappings were shared: process-shared waits stay shared;
 *   - the signal handlers: every signal counts as handled;
 *   - the program break: the heap is the lowest anonymous writable segment
 *     within 1 GiB above the program (where the kernel puts it), and only
 *     if the scan can walk it as glibc's chunks end to end;
 *   - guard pages: gdb's gcore writes PROT_NONE mappings as readable
 *     zeros; an anonymous read-only segment that holds only zeros is taken
 *     for what it is, unreadable (it holds no pointer either way);
 *   - writable anonymous memory the dump omitted (MADV_DONTDUMP, a
 *     coredump_filter): a root unread, so the scan proves nothing.
 * The core file is hostile input: every note, offset and size is checked
 * against the file before it is used.
 */
#include "attach/attach.h"
#include "attach/judge.h"
#include "attach/memory.h"
#include "attach/stacks.h"
#include "base/maps.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <unistd.h>

#define BRK_REACH (1ull << 30)    /* the kernel puts the break within 1 GiB above the program */

struct segment {
    uint64_t lo, hi;          /* in the process */
    uint64_t offset, filesz;  /* in the core: the dumped part, from lo */
    uint32_t flags;           /* PF_R, PF_W, PF_X */
};

struct named_range {
    uint64_t lo, hi;
    const char *name;         /* into the NT_FILE note */
};

struct core {
    int fd;
    Elf *elf;
    const unsigned char *image;
    size_t size;
    struct segment *seg;      /* sorted by lo */
    size_t nseg;
    struct named_range *files;
    size_t nfiles;
    struct lwa_frozen_thread *threads;
    size_t nthreads, capthreads;
    pid_t pid;
    char command[96];
    uint64_t entry, vdso;     /* AT_ENTRY, AT_SYSINFO_EHDR */
    struct lw_mapping *maps;
    size_t nmaps;
    char problem[96];
};

/* ---- memory ---- */

static const struct segment *segment_at(const struct core *c, uint64_t addr)
{
    size_t lo = 0, hi = c->nseg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->seg[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nseg && c->seg[lo].lo <= addr ? &c->seg[lo] : NULL;
}

static size_t core_read(const struct lw_source *src, void *dst, uint64_t addr, size_t len)
{
    const struct core *c = src->ctx;
    size_t done = 0;
    while (done < len) {
        uint64_t at = addr + done;
        const struct segment *s = segment_at(c, at);
        if (!s || at - s->lo >= s->filesz)
            break;
        size_t take = (size_t)(s->filesz - (at - s->lo));
        if (take > len - done)
            take = len - done;
        memcpy((unsigned char *)dst + done, c->image + s->offset + (at - s->lo), take);
        done += take;
    }
    return done;
}

static long core_read_many(const struct lw_source *src, void *dst, size_t len, const struct iovec *remote, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i < n && done < len; i++) {
        size_t want = remote[i].iov_len < len - done ? remote[i].iov_len : len - done;
        size_t got = core_read(src, (unsigned char *)dst + done, (uint64_t)(uintptr_t)remote[i].iov_base, want);
        done += got;
        if (got < want)
            break;
    }
    return (long)done;
}

static bool core_maps(const struct lw_source *src, struct lw_maps *out)
{
    const struct core *c = src->ctx;
    return lw_maps_set(out, c->maps, c->nmaps);
}

static void no_threads_begin(const struct lw_source *src) { (void)src; }
static bool threads_end_fine(const struct lw_source *src) { (void)src; return true; }

static bool core_registers(const struct lw_source *src, int32_t tid, struct lw_regs *out)
{
    const struct core *c = src->ctx;
    for (size_t i = 0; i < c->nthreads; i++)
        if (c->threads[i].tid == tid)
            return lwa_thread_registers(&c->threads[i], out);
    return false;
}

static void core_prepare_scan(struct lw_source *src, struct scan *s)
{
    const struct core *c = src->ctx;
    if (c->problem[0])
        lw_scan_cannot_prove(s, c->problem);
}

static const struct lw_source_ops core_ops = {
    .read = core_read,
    .read_many = core_read_many,
    .maps = core_maps,
    .threads_begin = no_threads_begin,
    .registers = core_registers,
    .threads_end = threads_end_fine,
    .prepare_scan = core_prepare_scan,
    .program_break = NULL,
};

/* ---- notes ---- */

static void add_thread(struct core *c, const unsigned char *desc, size_t size)
{
    struct elf_prstatus st;
    if (size < sizeof st)
        return;
    memcpy(&st, desc, sizeof st);
    if (c->nthreads == c->capthreads) {
        size_t cap = c->capthreads ? 2 * c->capthreads : 64;
        struct lwa_frozen_thread *bigger = realloc(c->threads, cap * sizeof *bigger);
        if (!bigger)
            return;
        c->threads = bigger;
        c->capthreads = cap;
    }
    struct lwa_frozen_thread *t = &c->threads[c->nthreads++];
    memset(t, 0, sizeof *t);
    t->tid = st.pr_pid;
    t->stopped = true;
    memcpy(&t->regs, st.pr_reg, sizeof t->regs < sizeof st.pr_reg ? sizeof t->regs : sizeof st.pr_reg);
}

static void take_psinfo(struct core *c, const unsigned char *desc, size_t size)
{
    struct elf_prpsinfo ps;
    if (size < sizeof ps)
        return;
    memcpy(&ps, desc, sizeof ps);
    c->pid = ps.pr_pid;
    size_t len = strnlen(ps.pr_psargs, sizeof ps.pr_psargs);
    memcpy(c->command, ps.pr_psargs, len);
    c->command[len] = 0;
    while (len && c->command[len - 1] == ' ')
        c->command[--len] = 0;
}

static void take_auxv(struct core *c, const unsigned char *desc, size_t size)
{
    for (size_t off = 0; off + 16 <= size; off += 16) {
        uint64_t kv[2];
        memcpy(kv, desc + off, 16);
        if (kv[0] == AT_ENTRY)
            c->entry = kv[1];
        else if (kv[0] == AT_SYSINFO_EHDR)
            c->vdso = kv[1];
    }
}

/* NT_FILE: count, page size, count × {start, end, page offset}, names. */
static void take_files(struct core *c, const unsigned char *desc, size_t size)
{
    uint64_t head[2];
    if (size < 16)
        return;
    memcpy(head, desc, 16);
    uint64_t count = head[0];
    if (count > (size - 16) / 24 || count > 1000000)
        return;
    const char *name = (const char *)desc + 16 + count * 24, *end = (const char *)desc + size;
    c->files = calloc(count ? count : 1, sizeof *c->files);
    for (uint64_t i = 0; c->files && i < count && name < end; i++) {
        uint64_t r[3];
        memcpy(r, desc + 16 + i * 24, 24);
        size_t len = strnlen(name, (size_t)(end - name));
        if (name + len >= end)
            break;   /* a name without its NUL: stop */
        c->files[c->nfiles++] = (struct named_range){ r[0], r[1], name };
        name += len + 1;
    }
}

static void read_notes(struct core *c, const unsigned char *p, size_t size)
{
    size_t off = 0;
    while (off + sizeof(Elf64_Nhdr) <= size) {
        Elf64_Nhdr h;
        memcpy(&h, p + off, sizeof h);
        size_t name_room = (h.n_namesz + 3) & ~3u, desc_room = (h.n_descsz + 3) & ~3u;
        size_t at = off + sizeof h;
        if (name_room > size - at || desc_room > size - at - name_room || h.n_descsz > desc_room)
            break;
        const unsigned char *desc = p + at + name_room;
        if (h.n_type == NT_PRSTATUS)
            add_thread(c, desc, h.n_descsz);
        else if (h.n_type == NT_PRPSINFO)
            take_psinfo(c, desc, h.n_descsz);
        else if (h.n_type == NT_AUXV)
            take_auxv(c, desc, h.n_descsz);
        else if (h.n_type == NT_FILE)
            take_files(c, desc, h.n_descsz);
        off = at + name_room + desc_room;
    }
}

/* ---- segments and mappings ---- */

static int compare_segment(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->lo, y = ((const struct segment *)b)->lo;
    return (x > y) - (x < y);
}

static bool read_segments(struct core *c)
{
    size_t n;
    if (elf_getphdrnum(c->elf, &n) != 0 || !(c->seg = calloc(n ? n : 1, sizeof *c->seg)))
        return false;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(c->elf, (int)i, &ph))
            continue;
        if (ph.p_type == PT_NOTE && ph.p_offset <= c->size && ph.p_filesz <= c->size - ph.p_offset)
            read_notes(c, c->image + ph.p_offset, ph.p_filesz);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0 || ph.p_vaddr + ph.p_memsz < ph.p_vaddr)
            continue;
        uint64_t filesz = ph.p_offset <= c->size ? ph.p_filesz : 0;
        if (filesz > c->size - ph.p_offset)
            filesz = c->size - ph.p_offset;   /* a truncated core: what is there */
        if (filesz > ph.p_memsz)
            filesz = ph.p_memsz;
        c->seg[c->nseg++] = (struct segment){ ph.p_vaddr, ph.p_vaddr + ph.p_memsz, ph.p_offset, filesz, ph.p_flags };
    }
    qsort(c->seg, c->nseg, sizeof *c->seg, compare_segment);
    for (size_t i = 1; i < c->nseg; i++)
        if (c->seg[i].lo < c->seg[i - 1].hi)
            return false;   /* overlapping: not a core we understand */
    return c->nseg > 0;
}

static const char *file_at(const struct core *c, uint64_t addr)
{
    for (size_t i = 0; i < c->nfiles; i++)
        if (addr >= c->files[i].lo && addr < c->files[i].hi)
            return c->files[i].name;
    return NULL;
}

static bool all_zero(const struct core *c, const struct segment *s)
{
    const unsigned char *p = c->image + s->offset;
    for (uint64_t i = 0; i < s->filesz; i++)
        if (p[i])
            return false;
    return true;
}

/* The program's highest address: where the break starts above. */
static uint64_t program_end(const struct core *c)
{
    const char *exe = c->entry ? file_at(c, c->entry) : NULL;
    uint64_t end = 0;
    for (size_t i = 0; exe && i < c->nfiles; i++)
        if (strcmp(c->files[i].name, exe) == 0 && c->files[i].hi > end)
            end = c->files[i].hi;
    return end;
}

static void name_mapping(struct core *c, struct lw_mapping *m, const struct segment *s)
{
    const char *file = file_at(c, s->lo);
    if (file)
        snprintf(m->name, sizeof m->name, "%s", file);
    else if (s->lo == c->vdso && c->vdso)
        snprintf(m->name, sizeof m->name, "[vdso]");
    else if (s->lo >= 0xffffffffff600000ull)
        snprintf(m->name, sizeof m->name, "[vsyscall]");
}

static void note_omitted(struct core *c, const struct segment *s)
{
    if (!c->problem[0])
        snprintf(c->problem, sizeof c->problem, "the core omits %llu KiB of writable memory at 0x%llx: no proof",
                 (unsigned long long)((s->hi - s->lo - s->filesz) >> 10), (unsigned long long)(s->lo + s->filesz));
}

static bool build_maps(struct core *c)
{
    c->maps = calloc(c->nseg, sizeof *c->maps);
    if (!c->maps)
        return false;
    uint64_t brk_from = program_end(c);
    bool heap_named = false;
    for (size_t i = 0; i < c->nseg; i++) {
        const struct segment *s = &c->seg[i];
        struct lw_mapping *m = &c->maps[c->nmaps++];
        *m = (struct lw_mapping){ .lo = s->lo, .hi = s->hi, .readable = (s->flags & PF_R) != 0,
                                  .writable = (s->flags & PF_W) != 0, .executable = (s->flags & PF_X) != 0 };
        name_mapping(c, m, s);
        m->anonymous = !file_at(c, s->lo);
        if (m->anonymous && !m->writable && m->readable && all_zero(c, s))
            m->readable = false;   /* a guard page or an unused reservation, as gcore writes them */
        if (m->anonymous && m->writable && s->filesz < s->hi - s->lo)
            note_omitted(c, s);
        bool after_bss = i > 0 && c->seg[i - 1].hi == s->lo;
        if (!heap_named && brk_from && m->anonymous && m->writable && !m->name[0] && s->lo >= brk_from &&
            s->lo - brk_from < BRK_REACH && !after_bss) {
            snprintf(m->name, sizeof m->name, "[heap]");   /* walked only if it is glibc's chunks end to end */
            heap_named = true;
        }
    }
    return true;
}

/* ---- the judging ---- */

static bool open_core(struct core *c, const char *path, char *why, size_t size)
{
    memset(c, 0, sizeof *c);
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        snprintf(why, size, "%s: cannot open: %m", path);
        return false;
    }
    elf_version(EV_CURRENT);
    c->elf = elf_begin(c->fd, ELF_C_READ_MMAP, NULL);
    GElf_Ehdr eh;
    if (!c->elf || !gelf_getehdr(c->elf, &eh) || eh.e_type != ET_CORE || eh.e_machine != EM_X86_64 ||
        gelf_getclass(c->elf) != ELFCLASS64) {
        snprintf(why, size, "%s: not an x86-64 core file", path);
        return false;
    }
    c->image = (const unsigned char *)elf_rawfile(c->elf, &c->size);
    if (!c->image || !read_segments(c) || !c->nthreads || !build_maps(c)) {
        snprintf(why, size, "%s: a core file leakwatch cannot read (no segments or no threads)", path);
        return false;
    }
    if (!c->pid)
        c->pid = c->threads[0].tid;
    return true;
}

static void close_core(struct core *c)
{
    free(c->seg);
    free(c->files);
    free(c->threads);
    free(c->maps);
    if (c->elf)
        elf_end(c->elf);
    if (c->fd >= 0)
        close(c->fd);
}

static int compare_thread(const void *a, const void *b)
{
    pid_t x = ((const struct lwa_frozen_thread *)a)->tid, y = ((const struct lwa_frozen_thread *)b)->tid;
    return (x > y) - (x < y);
}

static bool make_subject(struct lwa_subject *s, struct core *c, struct lw_source *src, const struct lwa_options *o)
{
    memset(s, 0, sizeof *s);
    s->pid = c->pid;
    s->kind = "core";
    snprintf(s->command, sizeof s->command, "%s", c->command);
    const char *exe = c->entry ? file_at(c, c->entry) : NULL;
    snprintf(s->exe, sizeof s->exe, "%s", exe ? exe : "");
    qsort(c->threads, c->nthreads, sizeof *c->threads, compare_thread);
    s->frozen = c->threads;
    s->nfrozen = c->nthreads;
    s->source = src;
    s->caught_signals = ~0ull;   /* not in a core: every signal counts as handled */
    s->uptime = -1;
    s->settle_ms = o->settle_ms;
    s->stall_ms = o->stall_ms;
    s->threads = calloc(c->nthreads, sizeof *s->threads);
    if (!s->threads)
        return false;
    for (size_t i = 0; i < c->nthreads; i++) {
        struct lwa_thread_view *v = &s->threads[s->nthreads++];
        v->t = &c->threads[i];
        v->age = -1;
        v->parked_for = o->since >= 0 ? o->since : 0;
    }
    return true;
}

static json_object *core_facts(const char *path, const struct lwa_options *o, const struct lwa_judgement *j)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "core", json_object_new_string(path));
    json_object_object_add(a, "since", o->since >= 0 ? json_object_new_double(o->since) : NULL);
    json_object_object_add(a, "same_libc", json_object_new_boolean(j->layout.same_libc));
    return a;
}

json_object *lwa_judge_core(const char *path, const char *exe, const struct lwa_options *o, char *why, size_t size)
{
    struct core c;
    json_object *reply = NULL;
    if (!open_core(&c, path, why, size)) {
        close_core(&c);
        return NULL;
    }
    lwa_layout_learn_self();
    struct lw_source src = { .ops = &core_ops, .pid = c.pid, .frozen = true, .ctx = &c,
                             .layout = { .cancel_offset = -1 } };
    struct lwa_memory *mem = lwa_memory_new(&src);
    struct lwa_stacks *stacks = mem ? lwa_stacks_for_core(c.elf, exe, mem, why, size) : NULL;
    json_object *modules = lwa_stacks_modules(stacks);
    struct lwc_symbolizer *sym = lwc_symbolizer_new(modules, 0);
    struct lwa_subject s;
    struct lwa_judgement j;
    memset(&s, 0, sizeof s);
    memset(&j, 0, sizeof j);
    bool made = stacks && make_subject(&s, &c, &src, o);
    s.mem = mem;
    s.stacks = stacks;
    s.sym = sym;
    if (made && lwa_judge_stopped(&s, &j, o->want_paths) == 0 &&
        lwa_judge_finish(&s, &j) == 0) {
        struct lwa_notes notes = { .n = 0 };
        lwa_add_note(&notes, "a core file: %zu thread%s as they were when it was dumped", c.nthreads,
                 c.nthreads == 1 ? "" : "s");
        if (o->since >= 0)
            lwa_add_note(&notes, "every wait is taken to be at least %.1fs old (--since)", o->since);
        else
            lwa_add_note(&notes, "no wait in a core has an age: nothing is judged before --since says how old the "
                     "waits are (how long the process had hung when it was dumped)");
        lwa_add_note(&notes, "what a core cannot tell: fds and channels (no /proc), which mappings were shared, "
                 "the signal handlers (every signal counts as handled), thread names, how threads were "
                 "created; no verdict relies on it");
        if (j.layout.unknown[0])
            lwa_add_note(&notes, "glibc layout: %s", j.layout.unknown);
        reply = lwa_reply(&s, &j, notes.v, notes.n, core_facts(path, o, &j), why, size);
    } else if (stacks) {
        snprintf(why, size, "%s: out of memory judging the core", path);
    }
    lwa_judgement_free(&j);
    free(s.threads);
    lwc_symbolizer_free(sym);
    json_object_put(modules);
    lwa_stacks_free(stacks);
    lwa_memory_free(mem);
    close_core(&c);
    return reply;
}
