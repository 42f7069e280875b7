/*
 * source_process.c — the operations a source shares whenever the process
 * it reads is alive (see source.h): memory with process_vm_readv on its
 * pid (this process's own included: an unmapped page is an error code,
 * never a fault), the mappings from /proc/PID/maps, and a parked thread's
 * stack pointer and argument registers from /proc/PID/task/TID/syscall.
 * Raw syscalls only: in the preload, read and close are hooked.
 */
#include "core/source.h"
#include "base/maps.h"
#include "base/util.h"

#include <string.h>
#include <sys/syscall.h>

size_t lw_process_read(const struct lw_source *src, void *dst, uint64_t addr, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)addr, len };
    long n = lw_raw_syscall6(SYS_process_vm_readv, src->pid, (long)&local, 1, (long)&remote, 1, 0);
    return n > 0 ? (size_t)n : 0;
}

long lw_process_read_many(const struct lw_source *src, void *dst, size_t len, const struct iovec *remote, size_t n)
{
    struct iovec local = { dst, len };
    long got = lw_raw_syscall6(SYS_process_vm_readv, src->pid, (long)&local, 1, (long)remote, (long)n, 0);
    return got < 0 ? -1 : got;
}

bool lw_process_maps(const struct lw_source *src, struct lw_maps *out)
{
    return lw_maps_read_pid(out, src->self ? 0 : src->pid);
}

/* ---- registers from /proc: a parked thread's saved stack pointer and
 * syscall arguments (six registers: the only ones of it we can see; its
 * callee-saved ones stay in the kernel) ---- */

void lw_process_threads_begin(const struct lw_source *src, struct lw_task_dir *dir)
{
    lw_task_dir_open_pid(dir, src->self ? 0 : src->pid);
}

bool lw_process_registers(const struct lw_task_dir *dir, int32_t tid, struct lw_regs *out)
{
    struct lw_task_syscall sc;
    memset(out, 0, sizeof *out);
    if (!lw_task_syscall_in(dir, tid, &sc) || sc.nr < 0)
        return false;
    memcpy(out->words, sc.args, sizeof sc.args);
    out->nwords = 6;
    out->sp = sc.sp;
    return true;
}

bool lw_process_threads_end(struct lw_task_dir *dir)
{
    bool ours = lw_task_dir_still_ours(dir);
    lw_task_dir_close(dir);
    return ours;
}
