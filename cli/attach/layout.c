/*
 * layout.c — glibc's internals in another process (see layout.h).
 */
#include "attach/layout.h"
#include "base/maps.h"
#include "base/util.h"
#include "core/glibc_malloc.h"
#include "core/glibc_thread.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TCB 8192u

/* ---- what leakwatch's own process tells ---- */

static struct {
    bool learned;
    char libc_build_id[64];
    uint64_t libc_base;
    uint32_t tcb_size;
    int32_t cancel_offset;
    int32_t tid_offset;
    int64_t tcache_key_offset;   /* from libc's base; -1 unknown */
} self = { .cancel_offset = -1, .tid_offset = -1, .tcache_key_offset = -1 };

static const struct lw_source_ops own_ops = { .read = lw_process_read, .read_many = lw_process_read_many,
                                              .maps = lw_process_maps };

static struct lw_source own_source(void)
{
    return (struct lw_source){ .ops = &own_ops, .pid = getpid(), .self = true };
}

static size_t note_build_id(const struct dl_phdr_info *info, char *hex, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        size_t align = ph->p_align == 8 ? 8 : 4;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            size_t name_room = (note->n_namesz + align - 1) & ~(align - 1);
            size_t desc_room = (note->n_descsz + align - 1) & ~(align - 1);
            size_t left = (size_t)(end - p) - sizeof *note;
            if (name_room > left || desc_room > left - name_room)
                break;
            const unsigned char *desc = (const unsigned char *)p + sizeof *note + name_room;
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(p + sizeof *note, "GNU", 4) == 0) {
                size_t k = 0;
                for (size_t j = 0; j < note->n_descsz && k + 3 <= size; j++) {
                    hex[k++] = digits[desc[j] >> 4];
                    hex[k++] = digits[desc[j] & 15];
                }
                hex[k] = 0;
                return k;
            }
            p = (const char *)desc + desc_room;
        }
    }
    return 0;
}

static int find_own_libc(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name, *base = name ? strrchr(name, '/') : NULL;
    if (!base || strcmp(base, "/libc.so.6") != 0)
        return 0;
    self.libc_base = info->dlpi_addr;
    note_build_id(info, self.libc_build_id, sizeof self.libc_build_id);
    return 1;
}

/* On a thread of our own (its descriptor at the top of its own stack
 * mapping): the descriptor's size, where cancelhandling is, where the tid
 * is (the only word of both our threads' descriptors holding their tids). */
static void *learn_on_a_thread(void *main_tp)
{
    struct lw_maps maps = LW_MAPS_INIT;
    uint64_t here = (uint64_t)(uintptr_t)&maps;
    if (!lw_maps_read(&maps))
        return NULL;
    const struct lw_mapping *stack = lw_maps_find(&maps, here);
    if (stack) {
        struct lw_thread_layout l = { .cancel_offset = -1 };
        lw_thread_layout_learn(&l, stack->lo, stack->hi);
        self.tcb_size = l.tcb_size;
        self.cancel_offset = l.cancel_offset;
        struct lw_source src = own_source();
        uint64_t tps[2] = { (uint64_t)(uintptr_t)main_tp, lw_thread_pointer() };
        int32_t tids[2] = { getpid(), (int32_t)syscall(SYS_gettid) };
        self.tid_offset = lw_thread_tid_offset(&src, tps, tids, 2, l.tcb_size);
    }
    lw_maps_free(&maps);
    return NULL;
}

/* Where tcache_key lives in our libc: the one word of its data and bss
 * holding our key. */
static void learn_tcache_key_offset(void)
{
    uint64_t key = lw_malloc_tcache_key();
    struct lw_maps maps = LW_MAPS_INIT;
    if (!key || !self.libc_base || !lw_maps_read(&maps))
        return;
    struct lw_source src = own_source();
    int64_t found = -1;
    bool in_libc = false;
    for (size_t i = 0; i < maps.n; i++) {
        const struct lw_mapping *m = &maps.v[i];
        const char *base = strrchr(m->name, '/');
        bool libc = base && strcmp(base, "/libc.so.6") == 0;
        bool bss = !m->name[0] && in_libc && i > 0 && maps.v[i - 1].hi == m->lo;
        in_libc = libc || bss;
        if (!(libc || bss) || !m->writable || !m->readable)
            continue;
        uint64_t words[512];
        for (uint64_t at = m->lo; at < m->hi; at += sizeof words) {
            size_t got = lw_source_read(&src, words, at, sizeof words);
            for (size_t k = 0; k < got / 8; k++) {
                if (words[k] != key)
                    continue;
                if (found >= 0) {
                    lw_maps_free(&maps);
                    return;   /* twice: not told */
                }
                found = (int64_t)(at + 8 * k - self.libc_base);
            }
        }
    }
    lw_maps_free(&maps);
    self.tcache_key_offset = found;
}

void lwa_layout_learn_self(void)
{
    if (self.learned)
        return;
    self.learned = true;
    dl_iterate_phdr(find_own_libc, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, learn_on_a_thread, (void *)pthread_self()) == 0)
        pthread_join(t, NULL);
    learn_tcache_key_offset();
}

/* ---- what the target tells ---- */

static void append(char *buf, size_t size, const char *what)
{
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? "; " : "", what);
}

static const struct lwa_frozen_thread *a_thread_apart(const struct lwa_frozen_thread *t, size_t n, pid_t pid)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].stopped && !t[i].gone && t[i].tid != pid && t[i].regs.fs_base)
            return &t[i];
    return NULL;
}

static void learn_descriptor(struct lwa_layout *l, const struct lw_source *src, const struct lw_maps *maps,
                             const struct lwa_frozen_thread *t, size_t n, pid_t pid)
{
    const struct lwa_frozen_thread *apart = a_thread_apart(t, n, pid);
    const struct lw_mapping *stack = apart ? lw_maps_find(maps, apart->regs.fs_base) : NULL;
    if (stack && stack->hi - apart->regs.fs_base <= MAX_TCB) {
        l->thread.tcb_size = (uint32_t)(stack->hi - apart->regs.fs_base);
        l->thread.tls_low = lw_thread_tls_low_from_dtv(src, apart->regs.fs_base, stack->lo);
    } else if (l->same_libc) {
        l->thread.tcb_size = self.tcb_size;
    }
    uint64_t *tps = calloc(n ? n : 1, sizeof *tps);
    int32_t *tids = calloc(n ? n : 1, sizeof *tids);
    size_t k = 0;
    for (size_t i = 0; tps && tids && i < n; i++)
        if (t[i].stopped && !t[i].gone && t[i].regs.fs_base) {
            tps[k] = t[i].regs.fs_base;
            tids[k++] = t[i].tid;
        }
    l->tid_offset = tps && tids && l->thread.tcb_size ? lw_thread_tid_offset(src, tps, tids, k, l->thread.tcb_size)
                                                       : -1;
    if (l->tid_offset < 0 && l->same_libc)
        l->tid_offset = self.tid_offset;
    free(tps);
    free(tids);
}

static bool in_use_by_a_thread(const struct lw_mapping *m, const struct lwa_frozen_thread *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].stopped || t[i].gone)
            return true;   /* a thread we know nothing of: nothing is dead */
        if ((t[i].regs.fs_base >= m->lo && t[i].regs.fs_base < m->hi) || (t[i].regs.rsp >= m->lo && t[i].regs.rsp < m->hi))
            return true;
    }
    return false;
}

/* A stack glibc keeps for a thread it may start later: a guard page below,
 * the descriptor of an exited thread at the top (it points at itself, as
 * tcbhead_t's tcb and self do, and its tid is 0 or less: the kernel clears
 * it when the thread exits, pthread_join sets -1; glibc's own test of a
 * free stack, FREE_P, is tid <= 0), and no live thread in it. */
static bool holds_dead_descriptor(const struct lw_source *src, const struct lwa_layout *l, uint64_t tp)
{
    uint64_t head[3];
    int32_t tid;
    return lw_source_read_all(src, head, tp, sizeof head) && head[0] == tp && head[2] == tp &&
           lw_source_read_all(src, &tid, tp + (uint64_t)l->tid_offset, sizeof tid) && tid <= 0;
}

static void find_cached_stacks(struct lwa_layout *l, const struct lw_source *src, const struct lw_maps *maps,
                               const struct lwa_frozen_thread *t, size_t n)
{
    if (l->tid_offset < 0 || !l->thread.tcb_size || !maps->n)
        return;
    size_t cap = 16;
    l->cached_tcbs = malloc(cap * sizeof *l->cached_tcbs);
    for (size_t i = 1; l->cached_tcbs && i < maps->n; i++) {
        const struct lw_mapping *m = &maps->v[i], *below = &maps->v[i - 1];
        if (!m->readable || !m->writable || m->shared || m->name[0] || below->hi != m->lo || below->readable ||
            below->writable || m->hi - m->lo <= l->thread.tcb_size || in_use_by_a_thread(m, t, n))
            continue;
        uint64_t tp = m->hi - l->thread.tcb_size;
        if (!holds_dead_descriptor(src, l, tp))
            continue;
        if (l->ncached_tcbs == cap) {
            uint64_t *bigger = realloc(l->cached_tcbs, 2 * cap * sizeof *bigger);
            if (!bigger)
                break;
            l->cached_tcbs = bigger;
            cap *= 2;
        }
        l->cached_tcbs[l->ncached_tcbs++] = tp;
    }
}

void lwa_layout_learn(struct lwa_layout *l, const struct lw_source *src, struct lwa_stacks *stacks,
                      const struct lwa_frozen_thread *threads, size_t n, pid_t pid)
{
    memset(l, 0, sizeof *l);
    l->thread.cancel_offset = -1;
    l->tid_offset = -1;
    uint64_t bias = 0;
    bool have_libc = lwa_stacks_module_build_id(stacks, "/libc.so.6", l->libc_build_id, sizeof l->libc_build_id, &bias);
    l->same_libc = have_libc && self.libc_build_id[0] && strcmp(self.libc_build_id, l->libc_build_id) == 0;
    if (l->same_libc) {
        l->thread.cancel_offset = self.cancel_offset;
        uint64_t key = 0;
        if (self.tcache_key_offset >= 0 &&
            lw_source_read_all(src, &key, bias + (uint64_t)self.tcache_key_offset, sizeof key))
            l->tcache_key = key;
    }
    struct lw_maps maps = LW_MAPS_INIT;
    if (src->ops->maps(src, &maps)) {
        learn_descriptor(l, src, &maps, threads, n, pid);
        find_cached_stacks(l, src, &maps, threads, n);
        lw_maps_free(&maps);
    }
    if (!have_libc)
        append(l->unknown, sizeof l->unknown, "no glibc libc.so.6 found: glibc's objects are not decoded");
    else if (!l->same_libc)
        append(l->unknown, sizeof l->unknown,
               "its libc is not leakwatch's build: cancellation states unknown (every thread counts as "
               "cancellable), malloc's tcache chunks count as in use");
    if (l->tid_offset < 0)
        append(l->unknown, sizeof l->unknown, "the thread descriptor's tid field was not found: stacks glibc keeps "
               "for exited threads count as live memory");
    if (!l->thread.tls_low)
        append(l->unknown, sizeof l->unknown, "static TLS not located: it counts as part of each stack");
}

void lwa_layout_free(struct lwa_layout *l)
{
    free(l->cached_tcbs);
    l->cached_tcbs = NULL;
    l->ncached_tcbs = 0;
}
