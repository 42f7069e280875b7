/*
 * source_self.c — the source the preload judges: this very process, read
 * from its server thread (see source.h). Memory and mappings as any live
 * process's (source_process.c); a parked thread's stack pointer and
 * argument registers from /proc/self/task/TID/syscall; and what only this
 * source has: leakwatch's own memory (its code and data, the registry,
 * the stack table, the unwinder's cache, the scan's own arrays and the
 * server thread's stack) is cut out of the roots, its heap blocks
 * (base/ownalloc.h) are listed for the walk to leave out, and glibc's thread
 * layout and tcache key are learned on the server thread itself.
 *
 * Preload only: it knows the recording layer's tables.
 */
#include "core/source.h"
#include "core/glibc_malloc.h"
#include "core/scan.h"
#include "base/ownalloc.h"
#include "base/util.h"
#include "record/registry.h"
#include "record/stacks.h"
#include "record/unwind.h"

#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- our own memory is never a root ---- */

static int skip_own_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct scan *s = data;
    uintptr_t probe = (uintptr_t)&skip_own_segments;
    bool ours = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && probe >= lo && probe < lo + ph->p_memsz)
            ours = true;
    }
    if (!ours)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t lo = info->dlpi_addr + ph->p_vaddr;
            scan_skip_range(s, lo & ~4095ull, (lo + ph->p_memsz + 4095) & ~4095ull);
        }
    }
    return 1;
}

static void skip_array(struct scan *s, const void *p, size_t cap, size_t elem)
{
    if (p)
        scan_skip_range(s, (uint64_t)(uintptr_t)p, ((uint64_t)(uintptr_t)p + cap * elem + 4095) & ~4095ull);
}

/* The preload's own heap blocks (base/ownalloc.h), copied into a mapping
 * of ours (kept from scan to scan) for the walk to leave out. With no room
 * for them the scan goes on without: a proof missed at worst. */
static struct lw_own_block *own;
static size_t own_cap;

static void list_own_blocks(struct scan *s)
{
    s->own = NULL;
    s->nown = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        size_t n = lw_own_blocks(own, own_cap);
        if (n <= own_cap) {
            s->own = own;
            s->nown = n;
            break;
        }
        size_t cap = (n + n / 2 + 255) & ~255ul;
        void *bigger = mmap(NULL, cap * sizeof *own, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (bigger == MAP_FAILED)
            break;
        if (own)
            munmap(own, own_cap * sizeof *own);
        own = bigger;
        own_cap = cap;
    }
    skip_array(s, own, own_cap, sizeof *own);
    uintptr_t lo, hi;
    lw_ownalloc_extent(&lo, &hi);
    scan_skip_range(s, lo, hi);
}

/* Our memory out of the roots; the server thread's own stack mapping
 * (the one we run on) shows where glibc puts a thread's TLS and
 * descriptor. */
static void self_prepare_scan(struct lw_source *src, struct scan *s)
{
    dl_iterate_phdr(skip_own_segments, s);
    uintptr_t lo, hi;
    lw_registry_extent(&lo, &hi);
    scan_skip_range(s, lo, hi);
    lw_stacks_extent(&lo, &hi);
    scan_skip_range(s, lo, hi);
    lw_unwind_extent(&lo, &hi);
    scan_skip_range(s, lo, hi);
    list_own_blocks(s);
    /* our scratch buffer: copies of the program's memory */
    scan_skip_range(s, (uint64_t)(uintptr_t)s->buf, (uint64_t)(uintptr_t)s->buf + READ_CHUNK);
    /* the arrays kept from the last scan: every block's address is in them */
#define SKIP_KEPT(p, cap) skip_array(s, s->p, s->cap, sizeof *s->p);
    SCAN_KEPT_ARRAYS(SKIP_KEPT)
#undef SKIP_KEPT
    struct mapping *me = scan_mapping_at(s, (uint64_t)(uintptr_t)&lo);
    if (me) {
        lw_thread_layout_learn(&src->layout, me->lo, me->hi);
        scan_skip_range(s, me->lo, me->hi);
    }
}

/* ---- parked threads' registers, from /proc/self/task ---- */

static struct lw_task_dir task_dir;

static void self_threads_begin(const struct lw_source *src)
{
    lw_process_threads_begin(src, &task_dir);
}

static bool self_registers(const struct lw_source *src, int32_t tid, struct lw_regs *out)
{
    (void)src;
    return lw_process_registers(&task_dir, tid, out);
}

static bool self_threads_end(const struct lw_source *src)
{
    (void)src;
    return lw_process_threads_end(&task_dir);
}

static uint64_t self_program_break(const struct lw_source *src)
{
    (void)src;
    return (uint64_t)(uintptr_t)sbrk(0);
}

static const struct lw_source_ops self_ops = {
    .read = lw_process_read,
    .read_many = lw_process_read_many,
    .maps = lw_process_maps,
    .threads_begin = self_threads_begin,
    .registers = self_registers,
    .threads_end = self_threads_end,
    .prepare_scan = self_prepare_scan,
    .program_break = self_program_break,
};

struct lw_source *lw_self_source(void)
{
    static struct lw_source self = { .ops = &self_ops, .self = true, .layout = { .cancel_offset = -1 } };
    self.pid = getpid();   /* (a fork child is another process) */
    if (!self.tcache_key)
        self.tcache_key = lw_malloc_tcache_key();   /* mallocs, once: never mid-scan */
    return &self;
}
