/*
 * glibc_thread.c — the parts of glibc's thread descriptor the
 * reachability scan needs, learned on the calling thread rather than
 * assumed (see glibc_thread.h).
 */
#include "core/glibc_thread.h"
#include "core/source.h"
#include "base/util.h"

#include <link.h>
#include <pthread.h>
#include <string.h>

#define CANCELSTATE_BIT 1u        /* cancelhandling: set while cancellation is disabled */
#define MAX_TCB 8192u

uint64_t lw_thread_pointer(void)
{
    return (uint64_t)(uintptr_t)pthread_self();
}

struct tls_search {
    uint64_t tp, lo;
    int64_t low;
};

/* Each module's TLS block in the calling thread: those in its static TLS
 * (between its stack and its descriptor) give the lowest offset. */
static int note_tls_block(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct tls_search *s = data;
    uint64_t block = (uint64_t)(uintptr_t)info->dlpi_tls_data;
    if (block && block >= s->lo && block < s->tp) {
        int64_t off = -(int64_t)(s->tp - block);
        if (off < s->low)
            s->low = off;
    }
    return 0;
}

static int64_t learn_tls_low(uint64_t tp, uint64_t stack_lo)
{
    struct tls_search s = { tp, stack_lo, 0 };
    dl_iterate_phdr(note_tls_block, &s);
    return s.low & ~15ll;
}

/* Toggle our own cancel state and see which word of our descriptor
 * changes by exactly that bit; -1 unless exactly one does. */
static int32_t learn_cancel_offset(uint64_t tp, uint32_t tcb_size)
{
    static uint32_t before[MAX_TCB / 4], after[MAX_TCB / 4];
    size_t n = (tcb_size < MAX_TCB ? tcb_size : MAX_TCB) / 4;
    int old, back;
    if (!n || !lw_read_memory(before, tp, n * 4) || pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old) != 0)
        return -1;
    bool read = lw_read_memory(after, tp, n * 4);
    if (old == PTHREAD_CANCEL_DISABLE) {
        /* It was disabled already: watch it being enabled instead. */
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &back);
        memcpy(before, after, n * 4);
        read = read && lw_read_memory(after, tp, n * 4);
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &back);
        for (size_t k = 0; k < n; k++) {   /* before: disabled, after: enabled */
            uint32_t t = before[k];
            before[k] = after[k];
            after[k] = t;
        }
    } else {
        pthread_setcancelstate(old, &back);
    }
    if (!read)
        return -1;
    int32_t found = -1;
    for (size_t k = 0; k < n; k++) {
        if (before[k] == after[k])
            continue;
        if ((before[k] ^ after[k]) != CANCELSTATE_BIT || !(after[k] & CANCELSTATE_BIT) || found >= 0)
            return -1;
        found = (int32_t)(k * 4);
    }
    return found;
}

void lw_thread_layout_learn(struct lw_thread_layout *l, uint64_t stack_lo, uint64_t stack_hi)
{
    static bool learned;
    static uint32_t tcb_size;
    static int32_t cancel_offset = -1;
    uint64_t tp = lw_thread_pointer();
    if (!learned && tp > stack_lo && tp < stack_hi && stack_hi - tp <= MAX_TCB) {
        tcb_size = (uint32_t)(stack_hi - tp);
        cancel_offset = learn_cancel_offset(tp, tcb_size);
        learned = true;
    }
    l->tcb_size = tcb_size;
    l->cancel_offset = cancel_offset;
    l->tls_low = tp > stack_lo && tp < stack_hi ? learn_tls_low(tp, stack_lo) : 0;
}

bool lw_thread_cancel_word(const struct lw_thread_layout *l, uint64_t tp, uint64_t *addr)
{
    if (l->cancel_offset < 0 || !tp)
        return false;
    *addr = tp + (uint64_t)l->cancel_offset;
    return true;
}

bool lw_thread_cancel_enabled(uint32_t handling)
{
    return !(handling & CANCELSTATE_BIT);
}

/* ---- learned from another process's own data ----
 * tcbhead_t starts { tcb, dtv, self }: the DTV pointer at tp + 8 points
 * one entry past its length word; entry i (16 bytes: the block, what to
 * free) is module i's TLS block for that thread. */
#define DTV_ENTRY 16u
#define MAX_DTV_ENTRIES 4096u

int64_t lw_thread_tls_low_from_dtv(const struct lw_source *src, uint64_t tp, uint64_t stack_lo)
{
    uint64_t dtv, len;
    if (!tp || tp <= stack_lo || !lw_source_read_all(src, &dtv, tp + 8, 8) || dtv < DTV_ENTRY ||
        !lw_source_read_all(src, &len, dtv - DTV_ENTRY, 8))
        return 0;
    int64_t low = 0;
    uint64_t entries[2 * 64];
    for (uint64_t i = 1; i <= len && i <= MAX_DTV_ENTRIES; i += 64) {
        uint64_t k = len - i + 1 < 64 ? len - i + 1 : 64;
        size_t got = lw_source_read(src, entries, dtv + i * DTV_ENTRY, (size_t)k * DTV_ENTRY) / DTV_ENTRY;
        for (size_t j = 0; j < got; j++) {
            uint64_t block = entries[2 * j];
            if (block >= stack_lo && block < tp && -(int64_t)(tp - block) < low)
                low = -(int64_t)(tp - block);
        }
        if (got < k)
            break;
    }
    return low & ~15ll;
}

int32_t lw_thread_tid_offset(const struct lw_source *src, const uint64_t *tps, const int32_t *tids, size_t n,
                             uint32_t tcb_size)
{
    static uint32_t words[MAX_TCB / 4];
    uint64_t common[MAX_TCB / 4 / 64];   /* a bit per word: it held the tid of every thread so far */
    size_t nwords = (tcb_size < MAX_TCB ? tcb_size : MAX_TCB) / 4, threads = 0;
    memset(common, 0xff, sizeof common);
    for (size_t t = 0; t < n && nwords; t++) {
        if (!tps[t] || tids[t] <= 0 || !lw_source_read_all(src, words, tps[t], nwords * 4))
            continue;
        for (size_t k = 0; k < nwords; k++)
            if (words[k] != (uint32_t)tids[t])
                common[k / 64] &= ~(1ull << (k % 64));
        threads++;
    }
    int32_t found = -1;
    for (size_t k = 0; k < nwords && threads >= 2; k++) {
        if (!(common[k / 64] >> (k % 64) & 1))
            continue;
        if (found >= 0)
            return -1;   /* two places agree: neither is known to be it */
        found = (int32_t)(k * 4);
    }
    return found;
}
