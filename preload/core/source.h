/*
 * source.h — where the core reads the process it judges. One engine (the
 * snapshot model, glibc's layouts, the analysis, the reachability scan),
 * three sources:
 *
 *   this process    the preload, on its server thread (source_self.c):
 *                   memory through process_vm_readv on itself, the
 *                   mappings from /proc/self/maps, a parked thread's
 *                   registers from /proc/self/task/TID/syscall (its stack
 *                   pointer and six argument registers), its own memory
 *                   cut out of the scan, glibc's layouts learned on itself;
 *   a frozen process  the CLI attached from outside (cli/attach/): the same
 *                   reads on another pid, every register of every thread
 *                   (ptrace), layouts learned from the target's own data
 *                   and, where glibc is the same build, in the CLI;
 *   a core file     the CLI reading a core dump: memory from its PT_LOAD
 *                   segments, registers from its NT_PRSTATUS notes.
 *
 * The operations are few and plain so that the preload's own path costs
 * one indirect call per read it already made (a read is a syscall). A
 * frozen source (every thread stopped, every register visible) makes one
 * scan a proof: nothing moves while it reads (see reach.c).
 */
#ifndef LW_SOURCE_H
#define LW_SOURCE_H

#include "core/glibc_thread.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct lw_maps;
struct scan;

/* A thread's registers as the reachability scan counts them: its stack
 * pointer, and the words that may hold pointers (every general register
 * of a frozen thread; a parked thread's six syscall arguments in-process). */
#define LW_REGS_MAX 24
struct lw_regs {
    uint64_t sp;              /* 0: unknown (a running thread seen from inside) */
    uint64_t words[LW_REGS_MAX];
    uint32_t nwords;
};

struct lw_source;

struct lw_source_ops {
    /* Copy [addr, addr + len) into dst: the bytes copied from the start
     * (short at the first byte that cannot be read), never a fault. */
    size_t (*read)(const struct lw_source *src, void *dst, uint64_t addr, size_t len);
    /* Many ranges at once into dst, back to back, as process_vm_readv:
     * bytes copied (short at the first failure), or -1. */
    long (*read_many)(const struct lw_source *src, void *dst, size_t len, const struct iovec *remote, size_t n);
    /* The mappings, sorted by address. */
    bool (*maps)(const struct lw_source *src, struct lw_maps *out);
    /* Registers of many threads: begin, one call per thread, end (false:
     * what was read may be wrong, the scan proves nothing). */
    void (*threads_begin)(const struct lw_source *src);
    bool (*registers)(const struct lw_source *src, int32_t tid, struct lw_regs *out);
    bool (*threads_end)(const struct lw_source *src);
    /* Before the scan reads anything: cut the reader's own memory out of
     * the roots (only this process has any) and fill src->layout. */
    void (*prepare_scan)(struct lw_source *src, struct scan *s);
    /* The program break now, for a main heap that grew since its mapping
     * was listed (0: it cannot have). */
    uint64_t (*program_break)(const struct lw_source *src);
};

struct lw_source {
    const struct lw_source_ops *ops;
    int32_t pid;                    /* whose memory */
    bool self;                      /* this very process: the scan's own mappings land in it */
    bool frozen;                    /* every thread stopped, every register known */
    uint64_t tcache_key;            /* glibc's tcache_key in that process, 0 unknown */
    struct lw_thread_layout layout; /* glibc's thread descriptor there */
    void *ctx;                      /* the source's own state */
};

static inline size_t lw_source_read(const struct lw_source *src, void *dst, uint64_t addr, size_t len)
{
    return src->ops->read(src, dst, addr, len);
}

static inline bool lw_source_read_all(const struct lw_source *src, void *dst, uint64_t addr, size_t len)
{
    return src->ops->read(src, dst, addr, len) == len;
}

/* The operations of a live process read from outside with
 * process_vm_readv (source_process.c): read, read_many and maps on
 * src->pid; registers from /proc/PID/task/TID/syscall. A source for this
 * process or a frozen one starts from these. */
struct lw_task_dir;
size_t lw_process_read(const struct lw_source *src, void *dst, uint64_t addr, size_t len);
long lw_process_read_many(const struct lw_source *src, void *dst, size_t len, const struct iovec *remote, size_t n);
bool lw_process_maps(const struct lw_source *src, struct lw_maps *out);
void lw_process_threads_begin(const struct lw_source *src, struct lw_task_dir *dir);
bool lw_process_registers(const struct lw_task_dir *dir, int32_t tid, struct lw_regs *out);
bool lw_process_threads_end(struct lw_task_dir *dir);

/* For a source's prepare_scan: what it cannot show (memory a core file
 * omits) makes this scan prove nothing, and says why (scanmem.c). */
void lw_scan_cannot_prove(struct scan *s, const char *why);

/* This process, as the preload reads it (source_self.c, preload only). */
struct lw_source *lw_self_source(void);

#endif
