/*
 * stacks.c — stack capture (unwind.c), of the calling thread or of a
 * thread parked in a hooked call (walked from the frame its hook recorded),
 * and a lock-free intern table.
 *
 * The intern table is open-addressed, fixed-size and append-only: an entry
 * goes EMPTY -> WRITING (claimed with CAS) -> READY (frames published with a
 * release store). Readers only trust READY entries; a full table yields 0
 * (no stack), counted for the report's notes.
 */
#include "record/stacks.h"
#include "base/util.h"
#include "record/registry.h"
#include "record/unwind.h"

#include <errno.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#ifndef LW_STACK_TABLE_SIZE   /* (tests/preload builds a small one to fill it) */
#define LW_STACK_TABLE_SIZE 16384u
#endif
#define TABLE_SIZE LW_STACK_TABLE_SIZE   /* power of two */
#define MAX_PROBES 64u
#define CAPTURE_DEPTH (LW_MAX_FRAMES + 8)

enum { ENTRY_EMPTY = 0, ENTRY_WRITING, ENTRY_READY };

struct entry {
    uint32_t state;
    uint32_t depth;
    uint64_t hash;
    uint32_t generation;   /* the dlclose generation of its latest capture (lw_unwind_generation) */
    uint32_t pad;
    uint64_t pcs[LW_MAX_FRAMES];
};

static struct entry *table;
static const char *problem = "stacks not initialized";
static uint64_t lost;                        /* captures not kept: the table was full */
static uintptr_t self_text_lo, self_text_hi;   /* our own code, skipped */

static int find_own_text(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t probe = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (probe >= lo && probe < hi) {
            self_text_lo = lo;
            self_text_hi = hi;
            return 1;
        }
    }
    return 0;
}

void lw_stacks_init(void)
{
    table = mmap(NULL, sizeof(struct entry) * TABLE_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (table == MAP_FAILED) {
        table = NULL;
        problem = "stack table could not be mapped";
        return;
    }
    dl_iterate_phdr(find_own_text, (void *)(uintptr_t)&lw_stacks_init);
    lw_unwind_init();
    problem = NULL;
}

const char *lw_stacks_problem(void) { return problem; }

uint64_t lw_stacks_lost(void) { return __atomic_load_n(&lost, __ATOMIC_RELAXED); }

uint32_t lw_stack_generation(uint32_t id)
{
    if (!table || id == 0 || id > TABLE_SIZE)
        return 0;
    return __atomic_load_n(&table[id - 1].generation, __ATOMIC_RELAXED);
}

uint32_t lw_stacks_capacity(void) { return TABLE_SIZE; }

void lw_stacks_extent(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)table;
    *hi = table ? (uintptr_t)table + sizeof(struct entry) * TABLE_SIZE : 0;
}

static uint64_t hash_frames(const uint64_t *pcs, int n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h ? h : 1;
}

static bool entry_matches(const struct entry *e, uint64_t h, const uint64_t *pcs, int n)
{
    if (e->hash != h || e->depth != (uint32_t)n)
        return false;
    for (int i = 0; i < n; i++)
        if (e->pcs[i] != pcs[i])
            return false;
    return true;
}

/* A capture of a stack already kept, in generation gen: the pcs were code
 * then, as they were when first kept (the same addresses). */
static void note_generation(struct entry *e, uint32_t gen)
{
    uint32_t was = __atomic_load_n(&e->generation, __ATOMIC_RELAXED);
    while ((int32_t)(gen - was) > 0 &&
           !__atomic_compare_exchange_n(&e->generation, &was, gen, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static uint32_t intern(const uint64_t *pcs, int n, uint32_t gen)
{
    uint64_t h = hash_frames(pcs, n);
    for (uint32_t probe = 0; probe < MAX_PROBES; probe++) {
        uint32_t idx = (uint32_t)(h + probe) & (TABLE_SIZE - 1);
        struct entry *e = &table[idx];
        uint32_t state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
        if (state == ENTRY_READY) {
            if (!entry_matches(e, h, pcs, n))
                continue;
            note_generation(e, gen);
            return idx + 1;
        }
        if (state == ENTRY_WRITING)
            continue;   /* someone is filling it; a duplicate elsewhere is harmless */
        if (!__atomic_compare_exchange_n(&e->state, &state, ENTRY_WRITING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            if (state == ENTRY_READY && entry_matches(e, h, pcs, n)) {
                note_generation(e, gen);
                return idx + 1;
            }
            continue;
        }
        e->hash = h;
        e->depth = (uint32_t)n;
        __atomic_store_n(&e->generation, gen, __ATOMIC_RELAXED);
        for (int i = 0; i < n; i++)
            e->pcs[i] = pcs[i];
        __atomic_store_n(&e->state, ENTRY_READY, __ATOMIC_RELEASE);
        return idx + 1;
    }
    __atomic_add_fetch(&lost, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Intern the n frames of pcs that follow our own leading ones. */
static uint32_t keep(const uint64_t *pcs, int n, uint32_t gen)
{
    int first = 0;
    while (first < n && pcs[first] >= self_text_lo && pcs[first] < self_text_hi)
        first++;
    n -= first;
    if (n <= 0)
        return 0;
    if (n > LW_MAX_FRAMES)
        n = LW_MAX_FRAMES;
    return intern(pcs + first, n, gen);
}

__attribute__((noinline)) uint32_t lw_stack_capture(void)
{
    if (!table)
        return 0;
    uint64_t pcs[CAPTURE_DEPTH];
    int saved = errno;   /* the hooked call's caller must find errno as it left it */
    uint32_t gen = lw_unwind_generation();
    int n = lw_unwind(pcs, CAPTURE_DEPTH);
    errno = saved;
    return keep(pcs, n, gen);
}

uint32_t lw_stack_capture_at(const struct lw_frame_state *at)
{
    if (!table)
        return 0;
    uint64_t pcs[CAPTURE_DEPTH];
    int saved = errno;
    uint32_t gen = lw_unwind_generation();
    int n = lw_unwind_other(at, pcs, CAPTURE_DEPTH);
    errno = saved;
    return keep(pcs, n, gen);
}

bool lw_stack_get(uint32_t id, struct lw_snap_stack *out)
{
    if (!table || id == 0 || id > TABLE_SIZE)
        return false;
    const struct entry *e = &table[id - 1];
    if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != ENTRY_READY)
        return false;
    out->id = id;
    out->depth = e->depth > LW_MAX_FRAMES ? LW_MAX_FRAMES : e->depth;
    memcpy(out->pcs, e->pcs, sizeof(uint64_t) * out->depth);
    return true;
}
