/*
 * reach.c — rule 3, reachability: can any thread that may still run reach
 * the condvar, semaphore, futex word or barrier a parked thread waits on?
 * A conservative mark, as LeakSanitizer does for memory leaks, without
 * hooking malloc:
 *
 *   blocks   glibc malloc chunks, found by walking the main arena ([heap]),
 *            every per-thread heap (64 MiB-aligned mappings that start with
 *            a heap_info) and every mmapped chunk; each walk must validate
 *            from start to end, or the whole region counts as a root.
 *            The stacks of parked candidates (and of stuck threads) are
 *            blocks too: a live pointer into one reaches what is there.
 *   roots    every other readable, writable mapping: module data, live
 *            threads' stacks and TLS, other allocators, shared memory —
 *            except leakwatch's own memory and its server thread.
 *   mark     every aligned word of a root or a marked block that points
 *            into a block (interior pointers count) marks it; marked blocks
 *            are scanned in turn. A candidate whose object turns out
 *            reachable may wake, so its stack joins the roots and the mark
 *            goes on, to a fixpoint.
 *
 * What no scan can see: registers. A parked thread's argument registers
 * are in /proc/self/task/TID/syscall and count as roots; its callee-saved
 * registers and a running thread's registers stay out of sight, so a
 * pointer held only in a register for the two scans (a thread computing
 * for seconds with the object in rbx, say) would go unseen. So would one
 * held only by the kernel (a timer's or an aio request's sigevent value).
 *
 * Memory is only read with process_vm_readv, in bounded batches, so a page
 * the program unmaps mid-scan costs an error (the region is then treated
 * as reachable), never a crash; no thread of the program is stopped or
 * signalled. An object is reported unreachable only if two scans at least a
 * second apart agree with the wait unchanged in between.
 */
#include "lw.h"
#include "registry.h"
#include "snapshot.h"
#include "stacks.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEAP_MAX_SIZE (64ull << 20)   /* glibc's per-thread heap alignment on 64-bit */
#define CHUNK_HDR 16u
#define MIN_CHUNK 32u
#define SIZE_BITS 7ull
#define IS_MMAPPED 2ull
#define READ_CHUNK (1u << 20)         /* bytes per process_vm_readv */
#define BATCH_IOVECS 512
#define CONFIRM_NS 1000000000ull      /* two scans at least a second apart */
#define MAX_CONFIRM 4096
#define UNRECORDED UINT32_MAX
#define GRANULE_SHIFT 9               /* block_of's index: a few blocks per 512 bytes at most */
#define MAX_EDGES (1u << 24)          /* 128 MiB of recorded pointers at most; beyond, chunks are read twice */
#define FILTER_SHIFT 21               /* the filter's granule: 2 MiB */
#define FILTER_BITS (1ull << (47 - FILTER_SHIFT))

/* ---- reading memory that is not ours ---- */

static pid_t self_pid;

static size_t read_remote(void *dst, uint64_t src, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)src, len };
    long n = lw_raw_syscall6(SYS_process_vm_readv, self_pid, (long)&local, 1, (long)&remote, 1, 0);
    return n > 0 ? (size_t)n : 0;
}

/* ---- mappings ---- */

enum map_kind { MAP_SKIP, MAP_ROOT, MAP_HEAP };

/* A run of blocks, with a per-page index into them (see block_of). */
struct region {
    uint64_t lo, hi;
    size_t first, last;     /* blocks [first, last) */
    uint32_t *page_first;   /* per granule of 2^GRANULE_SHIFT bytes: its first block, relative to first */
};

struct mapping {
    uint64_t lo, hi;
    bool readable, writable, shared, anonymous;
    char name[64];
    enum map_kind kind;
};

/* A parked thread's stack part, a block of its own (see place_stacks). */
struct pseudo {
    uint64_t start;
    size_t thread;           /* index into the snapshot's threads */
};

struct scan {
    struct mapping *maps;
    size_t nmaps, capmaps;
    /* blocks, sorted by start, never overlapping */
    uint64_t *start, *end;
    unsigned char *marked;
    size_t nblocks, cap;
    uint32_t *edge_first;    /* per block: its pointers in edges[], or UNRECORDED */
    uint32_t *edge_n;
    uint64_t *edges;         /* pointer-like words of heap chunks, read while walking */
    size_t nedges, capedges;
    bool recording;          /* false once edges[] is full: later chunks are read again to mark */
    bool incomplete;         /* out of memory while marking: no proof from this scan */
    uint64_t *filter;        /* one bit per 2 MiB of address space that may hold a block */
    struct pseudo *pseudo;   /* the stack pseudo-blocks, by start once sorted */
    size_t npseudo, cappseudo;
    uint32_t *work;          /* worklist of block indexes */
    size_t nwork, capwork;
    uint64_t *roots_lo, *roots_hi;
    size_t nroots, caproots;
    uint64_t bytes_scanned;
    char problem[96];        /* what the scan could not understand */
    struct region *regions;  /* the lookup index over blocks (block_of) */
    size_t nregions;
    size_t last_found;       /* block_of's guess */
    unsigned char *buf;
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap * 2 : 1024;
    while (cap2 < need)
        cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q)
        return false;
    *p = q;
    *cap = cap2;
    return true;
}

static bool parse_maps(struct scan *s)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, inode;
        char perms[8], path[256] = "";
        if (sscanf(line, "%llx-%llx %7s %*s %*s %llu %255[^\n]", &lo, &hi, perms, &inode, path) < 4)
            continue;
        if (!grow((void **)&s->maps, &s->capmaps, s->nmaps + 1, sizeof *s->maps)) {
            fclose(f);
            return false;
        }
        struct mapping *m = &s->maps[s->nmaps++];
        memset(m, 0, sizeof *m);
        m->lo = lo;
        m->hi = hi;
        m->readable = perms[0] == 'r';
        m->writable = perms[1] == 'w';
        m->shared = perms[3] == 's';
        const char *p = path;
        while (*p == ' ')
            p++;
        size_t len = strnlen(p, sizeof m->name - 1);
        memcpy(m->name, p, len);
        m->name[len] = 0;
        m->anonymous = inode == 0;
        m->kind = m->readable && (m->writable || m->anonymous) ? MAP_ROOT : MAP_SKIP;
        if (strcmp(m->name, "[vvar]") == 0 || strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0)
            m->kind = MAP_SKIP;
    }
    fclose(f);
    return true;
}

static struct mapping *mapping_at(struct scan *s, uint64_t addr)
{
    size_t lo = 0, hi = s->nmaps;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->maps[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nmaps && s->maps[lo].lo <= addr ? &s->maps[lo] : NULL;
}

/* Cut [lo, hi) out of the roots: it is ours, or a block now. A mapping cut
 * in the middle is split in two roots around a skipped part. */
static void skip_range(struct scan *s, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (m->hi <= lo || m->lo >= hi || m->kind != MAP_ROOT)
            continue;
        if (lo <= m->lo && hi >= m->hi) {
            m->kind = MAP_SKIP;
        } else if (lo <= m->lo) {
            m->lo = hi;                      /* the head goes */
        } else if (hi >= m->hi) {
            m->hi = lo;                      /* the tail goes */
        } else if (grow((void **)&s->maps, &s->capmaps, s->nmaps + 2, sizeof *s->maps)) {
            m = &s->maps[i];
            struct mapping mid = *m, tail = *m;
            mid.lo = lo;
            mid.hi = hi;
            mid.kind = MAP_SKIP;
            tail.lo = hi;
            m->hi = lo;
            memmove(&s->maps[i + 3], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof *s->maps);
            s->maps[i + 1] = mid;
            s->maps[i + 2] = tail;
            s->nmaps += 2;
            i += 2;
        }
    }
}

/* ---- blocks ---- */

/* The block arrays grow while the heaps are being walked, the server
 * thread's own arena among them: they live in mappings of their own, so
 * the walk never sees malloc change under it. */
static bool grow_mapped(void **p, size_t old_cap, size_t new_cap, size_t elem)
{
    void *q = *p ? mremap(*p, old_cap * elem, new_cap * elem, MREMAP_MAYMOVE)
                 : mmap(NULL, new_cap * elem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return false;
    *p = q;
    return true;
}

static void free_mapped(void *p, size_t cap, size_t elem)
{
    if (p)
        munmap(p, cap * elem);
}

static bool reserve_blocks(struct scan *s, size_t more)
{
    if (s->nblocks + more <= s->cap)
        return true;
    size_t cap = s->cap ? 2 * s->cap : 65536;
    while (cap < s->nblocks + more)
        cap *= 2;
    if (!grow_mapped((void **)&s->start, s->cap, cap, sizeof *s->start) ||
        !grow_mapped((void **)&s->end, s->cap, cap, sizeof *s->end) ||
        !grow_mapped((void **)&s->edge_first, s->cap, cap, sizeof *s->edge_first) ||
        !grow_mapped((void **)&s->edge_n, s->cap, cap, sizeof *s->edge_n))
        return false;   /* (a partial grow leaves every array at least the old size) */
    s->cap = cap;
    return true;
}

/* Room must have been reserved. */
static inline void put_new_block(struct scan *s, uint64_t start, uint64_t end)
{
    size_t b = s->nblocks++;
    s->start[b] = start;
    s->end[b] = end;
    s->edge_first[b] = UNRECORDED;
    s->edge_n[b] = 0;
}

/* A block; owner >= 0 makes it that thread's stack pseudo-block. */
static bool add_block(struct scan *s, uint64_t start, uint64_t end, int32_t owner)
{
    if (end <= start)
        return true;
    if (!reserve_blocks(s, 1))
        return false;
    if (owner >= 0) {
        if (!grow((void **)&s->pseudo, &s->cappseudo, s->npseudo + 1, sizeof *s->pseudo))
            return false;
        s->pseudo[s->npseudo++] = (struct pseudo){ start, (size_t)owner };
    }
    put_new_block(s, start, end);
    return true;
}

/* ---- the filter: which words may point into a block ---- */

static bool filter_alloc(struct scan *s)
{
    void *p = mmap(NULL, FILTER_BITS / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    s->filter = p == MAP_FAILED ? NULL : p;
    return s->filter != NULL;
}

/* Every private writable mapping may hold blocks (heaps, mmapped chunks,
 * parked stacks): set its granules. Over-inclusive is only slower. */
static void filter_fill(struct scan *s)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        const struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT || !m->writable || m->shared || (m->hi >> 47))
            continue;
        for (uint64_t g = m->lo >> FILTER_SHIFT; g <= (m->hi - 1) >> FILTER_SHIFT; g++)
            s->filter[g >> 6] |= 1ull << (g & 63);
    }
}

static inline bool may_point_into_a_block(const struct scan *s, uint64_t v)
{
    uint64_t g = v >> FILTER_SHIFT;
    return g < FILTER_BITS && (s->filter[g >> 6] >> (g & 63) & 1);
}

/* Walk the chunks of [first, limit): every size must be sane and the walk
 * must end exactly at limit (the top chunk). Adds the chunks as blocks and
 * returns true, or adds nothing and returns false.
 *
 * The heap comes through a window of READ_CHUNK bytes, so walking it costs
 * a syscall per MiB, not per chunk; and since every chunk's words pass
 * through the window anyway, the pointer-like ones are recorded as the
 * chunk's edges then, so that marking need not read the heap a second
 * time. */
struct window {
    uint64_t base;
    size_t len;
};

/* Make [at, need) visible in the window (need - at <= READ_CHUNK). */
static bool window_covers(struct scan *s, struct window *w, uint64_t at, uint64_t need, uint64_t limit)
{
    if (at >= w->base && need <= w->base + w->len)
        return true;
    size_t want = limit - at < READ_CHUNK ? (size_t)(limit - at) : READ_CHUNK;
    w->base = at;
    w->len = read_remote(s->buf, at, want);
    return need <= w->base + w->len;
}

static bool reserve_edges(struct scan *s, size_t more)
{
    if (more > MAX_EDGES - s->nedges)
        return false;
    if (s->nedges + more <= s->capedges)
        return true;
    size_t cap = s->capedges ? s->capedges : 1u << 16;
    while (cap < s->nedges + more)
        cap *= 2;
    if (!grow_mapped((void **)&s->edges, s->capedges, cap, sizeof *s->edges))
        return false;
    s->capedges = cap;
    return true;
}

/* The pointer-like words of block b, which the window holds. */
static void record_edges(struct scan *s, const struct window *w, size_t b)
{
    uint64_t lo = s->start[b], hi = s->end[b];
    size_t n = (size_t)(hi - lo) / 8;
    if (!reserve_edges(s, n)) {
        s->recording = false;
        return;
    }
    const unsigned char *p = s->buf + (lo - w->base);
    size_t first = s->nedges, e = first;
    for (size_t k = 0; k < n; k++) {
        uint64_t v;
        memcpy(&v, p + 8 * k, 8);
        s->edges[e] = v;                          /* kept only if it may point into a block */
        e += may_point_into_a_block(s, v);
    }
    s->nedges = e;
    s->edge_first[b] = (uint32_t)first;
    s->edge_n[b] = (uint32_t)(e - first);
    s->bytes_scanned += hi - lo;
}

static bool walk_chunks(struct scan *s, uint64_t first, uint64_t limit)
{
    size_t mark = s->nblocks, mark_edges = s->nedges;
    uint64_t mark_bytes = s->bytes_scanned;
    uint64_t at = first;
    struct window w = { 0, 0 };
    while (at < limit) {
        if (limit - at < CHUNK_HDR || !window_covers(s, &w, at, at + CHUNK_HDR, limit))
            goto bad;
        uint64_t size_field;
        memcpy(&size_field, s->buf + (at - w.base) + 8, 8);
        uint64_t size = size_field & ~SIZE_BITS;
        if (size < MIN_CHUNK || (size & 15) || size > limit - at || (size_field & IS_MMAPPED))
            goto bad;
        /* An in-use chunk's user area runs into the next chunk's prev_size
         * field: [chunk + 16, next chunk + 8), what malloc_usable_size says. */
        uint64_t user_end = at + size + 8 <= limit ? at + size + 8 : limit;
        if (s->nblocks == s->cap && !reserve_blocks(s, 1))
            goto bad;
        put_new_block(s, at + CHUNK_HDR, user_end);
        if (s->recording && user_end - at <= READ_CHUNK && window_covers(s, &w, at, user_end, limit))
            record_edges(s, &w, s->nblocks - 1);
        at += size;
    }
    if (at == limit)
        return true;
bad:
    s->nblocks = mark;
    s->nedges = mark_edges;
    s->bytes_scanned = mark_bytes;
    return false;
}

/* The main arena: chunks from the start of [heap] (after alignment padding)
 * to its end. */
static bool walk_main_heap(struct scan *s, struct mapping *m)
{
    for (uint64_t first = m->lo; first < m->lo + 64; first += 16)
        if (walk_chunks(s, first, m->hi))
            return true;
    return false;
}

/* The main arena: chunks from the start of [heap] to the break. The break
 * may have moved since /proc/self/maps was read (this scan allocates, maybe
 * in the main arena): then walk to where it is now, if nothing else was
 * mapped there. */
static void find_main_heap(struct scan *s, struct mapping *m)
{
    bool walked = walk_main_heap(s, m);
    if (!walked) {
        uint64_t brk_now = (uint64_t)(uintptr_t)sbrk(0);
        size_t i = (size_t)(m - s->maps);
        uint64_t next_lo = i + 1 < s->nmaps ? s->maps[i + 1].lo : UINT64_MAX;
        if (brk_now != m->hi && brk_now > m->lo && brk_now <= next_lo) {
            uint64_t old_hi = m->hi;
            m->hi = brk_now;
            walked = walk_main_heap(s, m);
            if (!walked)
                m->hi = old_hi;
        }
    }
    if (walked)
        m->kind = MAP_HEAP;
    else
        snprintf(s->problem, sizeof s->problem, "the main heap could not be walked (kept as a root)");
}

/* A heap that grew (mprotect'ed more of its reservation) after
 * /proc/self/maps was read — our own arena does, as this scan allocates:
 * its readable part now reaches lo + size, into the PROT_NONE rest of the
 * reservation that follows it. Move the boundary; false if what follows is
 * not that. */
static bool heap_grew_since_maps(struct scan *s, struct mapping *m, uint64_t size)
{
    size_t i = (size_t)(m - s->maps);
    if (i + 1 >= s->nmaps)
        return false;
    struct mapping *rest = &s->maps[i + 1];
    if (rest->lo != m->hi || rest->readable || rest->writable || rest->hi < m->lo + size)
        return false;
    m->hi = rest->lo = m->lo + size;
    return true;
}

/* A per-thread heap: heap_info { ar_ptr, prev, size, mprotect_size, pagesize }
 * at a 64 MiB-aligned start; chunks follow it (after the arena itself in an
 * arena's first heap), up to start + size. */
static void find_thread_heap(struct scan *s, struct mapping *m)
{
    uint64_t info[5];
    if ((m->lo & (HEAP_MAX_SIZE - 1)) || read_remote(info, m->lo, sizeof info) != sizeof info)
        return;
    uint64_t size = info[2], mprotect = info[3];
    if (size < 4096 || size > HEAP_MAX_SIZE || mprotect < size)
        return;
    if (m->lo + size > m->hi && !heap_grew_since_maps(s, m, size))
        return;
    for (uint64_t first = m->lo + 48; first < m->lo + 4096; first += 16)
        if (walk_chunks(s, first, m->lo + size)) {
            m->kind = MAP_HEAP;   /* beyond size: heap space not handed out yet, nothing live there */
            return;
        }
}

/* Allocations above the mmap threshold: each one chunk with IS_MMAPPED set,
 * in its own mapping; the kernel merges neighbouring mappings, so walk them
 * one after the other to the end of the mapping. */
static void find_mmapped_chunks(struct scan *s, struct mapping *m)
{
    size_t i = (size_t)(m - s->maps);   /* m moves if the array grows */
    size_t mark = s->nblocks;
    uint64_t at = m->lo;
    while (at < m->hi) {
        uint64_t hdr[2];
        if (read_remote(hdr, at, sizeof hdr) != sizeof hdr)
            break;
        uint64_t size = hdr[1] & ~SIZE_BITS;
        if (!(hdr[1] & IS_MMAPPED) || hdr[0] != 0 || size < 4096 || (size & 4095) || size > m->hi - at)
            break;
        if (!add_block(s, at + CHUNK_HDR, at + size, -1))
            break;
        at += size;
    }
    if (at == m->hi) {
        m->kind = MAP_HEAP;
    } else if (at > m->lo && grow((void **)&s->maps, &s->capmaps, s->nmaps + 1, sizeof *s->maps)) {
        /* Chunks, then a neighbour the kernel merged in: keep the chunks,
         * and the rest stays a root. */
        m = &s->maps[i];
        struct mapping rest = *m;
        rest.lo = at;
        m->hi = at;
        m->kind = MAP_HEAP;
        memmove(&s->maps[i + 2], &s->maps[i + 1], (s->nmaps - i - 1) * sizeof *s->maps);
        s->maps[i + 1] = rest;
        s->nmaps++;
    } else {
        s->nblocks = mark;   /* not (only) malloc's: a root */
    }
}

static void find_heaps(struct scan *s)
{
    for (size_t i = 0; i < s->nmaps; i++) {
        struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT || m->shared || !m->writable)
            continue;
        if (strcmp(m->name, "[heap]") == 0)
            find_main_heap(s, m);
        else if (m->anonymous && !m->name[0] && !(m->lo & (HEAP_MAX_SIZE - 1)))
            find_thread_heap(s, m);
        if (m->kind == MAP_ROOT && m->anonymous && !m->name[0])
            find_mmapped_chunks(s, m);
    }
}

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
            skip_range(s, lo & ~4095ull, (lo + ph->p_memsz + 4095) & ~4095ull);
        }
    }
    return 1;
}

static void skip_array(struct scan *s, const void *p, size_t cap, size_t elem)
{
    if (p)
        skip_range(s, (uint64_t)(uintptr_t)p, ((uint64_t)(uintptr_t)p + cap * elem + 4095) & ~4095ull);
}

static void skip_own_memory(struct scan *s)
{
    dl_iterate_phdr(skip_own_segments, s);
    uintptr_t lo, hi;
    lw_registry_extent(&lo, &hi);
    skip_range(s, lo, hi);
    lw_stacks_extent(&lo, &hi);
    skip_range(s, lo, hi);
    lw_unwind_extent(&lo, &hi);
    skip_range(s, lo, hi);
    /* our scratch buffer: copies of the program's memory */
    skip_range(s, (uint64_t)(uintptr_t)s->buf, (uint64_t)(uintptr_t)s->buf + READ_CHUNK);
    /* the arrays kept from the last scan: every block's address is in them */
    skip_array(s, s->start, s->cap, sizeof *s->start);
    skip_array(s, s->end, s->cap, sizeof *s->end);
    skip_array(s, s->edge_first, s->cap, sizeof *s->edge_first);
    skip_array(s, s->edge_n, s->cap, sizeof *s->edge_n);
    skip_array(s, s->edges, s->capedges, sizeof *s->edges);
    /* the server thread's own stack (and TLS): the mapping we run on */
    struct mapping *me = mapping_at(s, (uint64_t)(uintptr_t)&lo);
    if (me)
        skip_range(s, me->lo, me->hi);
}

/* ---- threads: live stacks are roots, parked candidates' are blocks ---- */

struct thread_info {
    int32_t tid;
    uint64_t sp;              /* saved stack pointer (parked), 0 if unknown */
    uint64_t args[6];         /* its syscall's arguments, when parked */
    uint64_t tp;              /* pthread_self(): the TCB, at the top of a pthread stack */
    bool candidate;           /* judged here */
    bool excluded;            /* stuck by another rule, or a candidate: not a root */
    size_t block;             /* its stack pseudo-block, or SIZE_MAX */
    uint64_t object;
    int reachable;            /* -1 unknown, 0 no, 1 yes */
    size_t object_block;      /* the block holding its object, or SIZE_MAX */
};

/* A parked thread's saved stack pointer and syscall arguments (six
 * registers: the only registers of it we can see; its callee-saved ones
 * stay in the kernel, see the header). 0: not in a syscall. */
static uint64_t saved_registers(int32_t tid, uint64_t args[6])
{
    struct lw_task_syscall sc;
    if (!lw_task_syscall(tid, &sc) || sc.nr < 0)
        return 0;
    memcpy(args, sc.args, sizeof sc.args);
    return sc.sp;
}

/* The stack part of a thread's stack mapping: from its stack pointer up to
 * its TCB (pthread threads keep their static TLS and TCB at the top). */
static void stack_part(struct scan *s, const struct thread_info *t, uint64_t *lo, uint64_t *hi)
{
    *lo = *hi = 0;
    struct mapping *m = t->sp ? mapping_at(s, t->sp) : NULL;
    if (!m && t->tp)
        m = mapping_at(s, t->tp);
    if (!m)
        return;
    *lo = t->sp && t->sp >= m->lo ? (t->sp > m->lo + 128 ? t->sp - 128 : m->lo) : m->lo;   /* the red zone */
    *hi = m->hi;
    /* Up to the TCB: the static TLS below it belongs with the stack (a
     * thread-local pointer is the thread's as much as a local is). Cutting
     * any of it would lose pointers; keeping too much only keeps more. */
    if (t->tp > *lo && t->tp < m->hi)
        *hi = t->tp;
}

/* ---- marking ---- */

/* The index that makes a lookup cheap: blocks are grouped in regions
 * (runs of blocks with no gap over 1 MiB: one heap, one stack), and each
 * region keeps, per 4 KiB page, the first block that ends past the page's
 * start, so a lookup is a search among few regions, then among the blocks
 * of one page. */
static size_t search_blocks(const struct scan *s, size_t lo, size_t hi, uint64_t addr)
{
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->end[mid] <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void free_regions(struct scan *s)
{
    for (size_t i = 0; i < s->nregions; i++)
        free(s->regions[i].page_first);
    free(s->regions);
    s->regions = NULL;
    s->nregions = 0;
}

static bool add_region(struct scan *s, size_t first, size_t last, size_t *cap)
{
    if (!grow((void **)&s->regions, cap, s->nregions + 1, sizeof *s->regions))
        return false;
    struct region *r = &s->regions[s->nregions++];
    r->lo = s->start[first] & ~((1ull << GRANULE_SHIFT) - 1);
    r->hi = s->end[last - 1];
    r->first = first;
    r->last = last;
    size_t pages = (size_t)((r->hi - r->lo) >> GRANULE_SHIFT) + 2;
    r->page_first = malloc(pages * sizeof *r->page_first);
    if (!r->page_first)
        return false;
    size_t b = first;
    for (size_t p = 0; p < pages; p++) {
        uint64_t page_lo = r->lo + ((uint64_t)p << GRANULE_SHIFT);
        while (b < last && s->end[b] <= page_lo)
            b++;
        r->page_first[p] = (uint32_t)(b - first);
    }
    return true;
}

static bool build_regions(struct scan *s)
{
    size_t cap = 0, first = 0;
    for (size_t i = 1; i <= s->nblocks; i++)
        if (i == s->nblocks || s->start[i] - s->end[i - 1] > (1u << 20)) {
            if (!add_region(s, first, i, &cap))
                return false;
            first = i;
        }
    return true;
}

static size_t find_block(const struct scan *s, uint64_t addr)
{
    size_t lo = 0, hi = s->nregions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->regions[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->nregions || addr < s->regions[lo].lo)
        return SIZE_MAX;
    const struct region *r = &s->regions[lo];
    size_t p = (size_t)((addr - r->lo) >> GRANULE_SHIFT);
    size_t b = search_blocks(s, r->first + r->page_first[p], r->first + r->page_first[p + 1] + 1 < r->last
                                                                 ? r->first + r->page_first[p + 1] + 1 : r->last, addr);
    return b < r->last && s->start[b] <= addr ? b : SIZE_MAX;
}

/* The block holding addr, or SIZE_MAX. Pointers often come in address
 * order (an array of objects allocated one after another, a list built in
 * order): the last block found and its successor are tried first. */
static size_t block_of(struct scan *s, uint64_t addr)
{
    size_t h = s->last_found;
    for (size_t k = h; k < h + 2 && k < s->nblocks; k++)
        if (addr >= s->start[k] && addr < s->end[k])
            return s->last_found = k;
    size_t b = find_block(s, addr);
    if (b != SIZE_MAX)
        s->last_found = b;
    return b;
}

static void mark(struct scan *s, size_t b)
{
    if (b == SIZE_MAX || s->marked[b])
        return;
    s->marked[b] = 1;
    if (s->nwork == s->capwork) {
        size_t cap = s->capwork ? 2 * s->capwork : 65536;
        if (!grow_mapped((void **)&s->work, s->capwork, cap, sizeof *s->work)) {
            s->incomplete = true;   /* a marked block left unscanned: this scan proves nothing */
            return;
        }
        s->capwork = cap;
    }
    s->work[s->nwork++] = (uint32_t)b;
}

static void scan_words(struct scan *s, const unsigned char *p, size_t len, uint64_t lo_bound, uint64_t hi_bound)
{
    s->bytes_scanned += len;
    for (size_t off = 0; off + 8 <= len; off += 8) {
        uint64_t v;
        memcpy(&v, p + off, 8);
        if (v < lo_bound || v >= hi_bound)
            continue;
        mark(s, block_of(s, v));
    }
}

/* Scan [lo, hi) of the program's memory in bounded reads; an unreadable
 * stretch is skipped (it cannot hold anything we could read either). */
static void scan_range(struct scan *s, uint64_t lo, uint64_t hi, uint64_t lb, uint64_t hb)
{
    lo = (lo + 7) & ~7ull;
    while (lo < hi) {
        size_t len = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
        size_t got = read_remote(s->buf, lo, len);
        if (got)
            scan_words(s, s->buf, got, lb, hb);
        lo += got ? got : 4096;
        lo &= ~7ull;
    }
}

static int compare_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Take up to BATCH_IOVECS marked blocks (a big one alone), in address order. */
static size_t take_batch(struct scan *s, size_t *idx, uint64_t lb, uint64_t hb)
{
    size_t n = 0, total = 0;
    while (s->nwork && n < BATCH_IOVECS) {
        size_t b = s->work[s->nwork - 1];
        if (s->edge_first[b] != UNRECORDED) {   /* read while walking: its pointers are known */
            s->nwork--;
            const uint64_t *e = s->edges + s->edge_first[b];
            for (uint32_t k = 0; k < s->edge_n[b]; k++)
                if (e[k] >= lb && e[k] < hb)
                    mark(s, block_of(s, e[k]));
            continue;
        }
        size_t len = s->end[b] - s->start[b];
        if (len > READ_CHUNK / 4) {   /* a big block goes alone, in chunks */
            if (n)
                break;
            s->nwork--;
            scan_range(s, s->start[b], s->end[b], lb, hb);
            continue;
        }
        if (total + len > READ_CHUNK / 2)
            break;
        s->nwork--;
        idx[n++] = b;
        total += len;
    }
    /* block order is address order; marks made while walking an array
     * come off the stack descending: reversing is enough then */
    bool descending = true;
    for (size_t k = 1; k < n && descending; k++)
        descending = idx[k] < idx[k - 1];
    if (descending) {
        for (size_t k = 0; k < n / 2; k++) {
            size_t t = idx[k];
            idx[k] = idx[n - 1 - k];
            idx[n - 1 - k] = t;
        }
    } else {
        qsort(idx, n, sizeof *idx, compare_index);
    }
    return n;
}

/* Scan marked blocks, many per process_vm_readv: neighbours (a gap of at
 * most 256 bytes) are read as one stretch, so a dense heap is read in
 * large pieces. */
static void drain_worklist(struct scan *s, uint64_t lb, uint64_t hb)
{
    size_t idx[BATCH_IOVECS], local_off[BATCH_IOVECS];
    struct iovec remote[BATCH_IOVECS];
    while (s->nwork) {
        size_t n = take_batch(s, idx, lb, hb);
        if (!n)
            continue;
        size_t nio = 0, total = 0;
        for (size_t k = 0; k < n; k++) {
            uint64_t st = s->start[idx[k]], en = s->end[idx[k]];
            struct iovec *last = nio ? &remote[nio - 1] : NULL;
            uint64_t last_end = last ? (uint64_t)(uintptr_t)last->iov_base + last->iov_len : 0;
            if (last && st >= last_end && st - last_end <= 256 && total + (en - last_end) <= READ_CHUNK) {
                total += en - last_end;
                last->iov_len += en - last_end;
            } else {
                if (total + (en - st) > READ_CHUNK)
                    break;   /* cannot happen: a batch is at most half the buffer plus gaps */
                remote[nio++] = (struct iovec){ (void *)(uintptr_t)st, en - st };
                total += en - st;
            }
            local_off[k] = total - (en - st);
        }
        struct iovec local = { s->buf, total };
        long got = lw_raw_syscall6(SYS_process_vm_readv, self_pid, (long)&local, 1, (long)remote, (long)nio, 0);
        size_t k = 0;
        for (; k < n; k++) {
            size_t len = s->end[idx[k]] - s->start[idx[k]];
            if (got < 0 || local_off[k] + len > (size_t)got)
                break;
            scan_words(s, s->buf + local_off[k], len, lb, hb);
        }
        for (; k < n; k++)   /* after a fault: the rest one by one (the buffer is free now) */
            scan_range(s, s->start[idx[k]], s->end[idx[k]], lb, hb);
    }
}

/* ---- the scan ---- */

struct block_entry {
    uint64_t start, end;
    uint32_t edge_first, edge_n;
};

static int compare_entry(const void *a, const void *b)
{
    uint64_t x = ((const struct block_entry *)a)->start, y = ((const struct block_entry *)b)->start;
    return (x > y) - (x < y);
}

static void put_block(struct scan *s, size_t k, const struct block_entry *e)
{
    s->start[k] = e->start;
    s->end[k] = e->end;
    s->edge_first[k] = e->edge_first;
    s->edge_n[k] = e->edge_n;
}

/* Sort blocks by start. The heap walks add them in order; only the stack
 * pseudo-blocks appended after them are out of place: sort those few and
 * merge them in from the back, in place. */
static bool sort_blocks(struct scan *s)
{
    size_t n = s->nblocks, h = 1;
    while (h < n && s->start[h - 1] < s->start[h])
        h++;
    if (h >= n)
        return true;
    size_t k = n - h;
    struct block_entry *tail = malloc(k * sizeof *tail);
    if (!tail)
        return false;
    for (size_t i = 0; i < k; i++)
        tail[i] = (struct block_entry){ s->start[h + i], s->end[h + i], s->edge_first[h + i], s->edge_n[h + i] };
    qsort(tail, k, sizeof *tail, compare_entry);
    size_t i = h, j = k, pos = n;
    while (j > 0) {
        if (i > 0 && s->start[i - 1] > tail[j - 1].start) {
            i--;
            struct block_entry e = { s->start[i], s->end[i], s->edge_first[i], s->edge_n[i] };
            put_block(s, --pos, &e);
        } else {
            put_block(s, --pos, &tail[--j]);
        }
    }
    free(tail);
    return true;
}

static bool is_memory_wait(const struct lw_snap_wait *w)
{
    switch (w->kind) {
    case LW_WAIT_COND: case LW_WAIT_SEM: case LW_WAIT_BARRIER:
        return true;
    case LW_WAIT_FUTEX: case LW_WAIT_MUTEX: case LW_WAIT_RWLOCK_READ: case LW_WAIT_RWLOCK_WRITE:
        return w->owner <= 0;   /* an owner is rule 1's business */
    case LW_WAIT_SYSCALL:
        return w->syscall_nr == 202 && w->object;
    default:
        return false;
    }
}

bool lw_reach_is_candidate(const struct lw_snapshot *snap, size_t i, const struct lw_thread_verdict *v)
{
    const struct lw_snap_thread *t = &snap->threads[i];
    const struct lw_snap_wait *w = &t->wait;
    return v->verdict == LW_WAITING && t->waiting && w->seconds * 1000 >= snap->settle_ms && !w->timed &&
           !w->shared && w->object && is_memory_wait(w);
}

/* Results kept from one scan to the next, for the two-scan rule. */
struct sighting {
    int32_t tid;
    uint64_t object;
    uint64_t wait_start;      /* the wait's start: the same wait, unchanged, has the same */
    uint64_t first_ns;        /* first scan that found it unreachable */
    uint32_t scans;
};
static struct sighting sightings[MAX_CONFIRM];
static size_t nsightings;
static bool recheck_wanted;

bool lw_reach_wants_recheck(void) { return recheck_wanted; }

static struct sighting *find_sighting(int32_t tid, uint64_t object, uint64_t wait_start_ns)
{
    for (size_t i = 0; i < nsightings; i++)
        if (sightings[i].tid == tid && sightings[i].object == object &&
            sightings[i].wait_start == wait_start_ns)
            return &sightings[i];
    return NULL;
}

static void gather_threads(const struct lw_snapshot *snap, const struct lw_analysis *a,
                           struct thread_info *ti)
{
    for (size_t i = 0; i < snap->nthreads; i++) {
        const struct lw_snap_thread *t = &snap->threads[i];
        enum lw_verdict v = a->verdicts[i].verdict;
        ti[i] = (struct thread_info){ .tid = t->tid, .tp = t->pthread, .block = SIZE_MAX, .reachable = -1,
                                      .object_block = SIZE_MAX };
        ti[i].candidate = lw_reach_is_candidate(snap, i, &a->verdicts[i]);
        ti[i].excluded = ti[i].candidate || v == LW_LEAKED || v == LW_DEADLOCKED;
        ti[i].object = t->wait.object;
        if (t->waiting)
            ti[i].sp = saved_registers(t->tid, ti[i].args);
    }
}

/* Live threads' stacks (whole: TLS and TCB included) are roots; excluded
 * threads' stack parts become pseudo-blocks, and the rest of their mapping
 * (TLS, TCB) is neither. */
static void place_stacks(struct scan *s, struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!ti[i].excluded) {
            /* A live parked thread: its stack below the saved stack pointer
             * (and the red zone) is dead, and stale pointers there prove
             * nothing. */
            struct mapping *m = ti[i].sp ? mapping_at(s, ti[i].sp) : NULL;
            if (m && m->kind == MAP_ROOT && ti[i].sp - 128 > m->lo)
                skip_range(s, m->lo, (ti[i].sp - 128) & ~7ull);
            continue;
        }
        uint64_t lo, hi;
        stack_part(s, &ti[i], &lo, &hi);
        struct mapping *m = lo ? mapping_at(s, lo) : NULL;
        if (!m || m->kind != MAP_ROOT || hi <= lo) {
            ti[i].excluded = ti[i].candidate = false;   /* no stack found: keep it a root */
            continue;
        }
        uint64_t mlo = m->lo, mhi = m->hi;
        skip_range(s, mlo, mhi);
        if (hi > lo && add_block(s, lo, hi, (int32_t)i))
            ti[i].block = s->nblocks - 1;
    }
}

/* The stacks of threads that have exited: glibc keeps them mapped in its
 * stack cache, full of stale pointers (the frames a request thread ran
 * before it gave up), for a thread it may start later. Below the TCB that
 * memory is dead and no root; the TCB itself stays one (an unjoined
 * thread's return value lives there). A stack counts as glibc's and dead
 * only if: it held an exited thread's TCB near its top, a guard page lies
 * right below it, and no live thread has its TCB or stack pointer in it
 * (a cached stack handed to a new thread is that thread's again). With a
 * live thread whose TCB we do not know, nothing is skipped. */
#define TCB_NEAR_TOP (256u << 10)

static bool stack_in_use(const struct thread_info *ti, size_t n, const struct mapping *m)
{
    for (size_t i = 0; i < n; i++)
        if ((ti[i].tp >= m->lo && ti[i].tp < m->hi) || (ti[i].sp >= m->lo && ti[i].sp < m->hi))
            return true;
    return false;
}

static void skip_dead_stacks(struct scan *s, const struct lw_snapshot *snap, const struct thread_info *ti, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ti[i].tp)
            return;
    for (size_t k = 0; k < snap->nexited && snap->exited_pthreads; k++) {
        uint64_t tcb = snap->exited_pthreads[k];
        struct mapping *m = tcb ? mapping_at(s, tcb) : NULL;
        if (!m || m->kind != MAP_ROOT || m->shared || m->hi - tcb > TCB_NEAR_TOP || m == s->maps)
            continue;
        const struct mapping *below = m - 1;
        if (below->hi != m->lo || below->readable || below->writable || stack_in_use(ti, n, m))
            continue;
        skip_range(s, m->lo, tcb & ~7ull);
    }
}

/* Roots we refuse to read: a sanitizer's shadow memory or a huge sparse
 * reservation would take for ever and fill page tables with zero pages.
 * A scan that skips a root proves nothing (see lw_reach_scan). */
#define MAX_ROOT_MAPPING (4ull << 30)
#define MAX_ROOT_TOTAL (16ull << 30)

static bool roots_too_large(struct scan *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->nmaps; i++) {
        const struct mapping *m = &s->maps[i];
        if (m->kind != MAP_ROOT)
            continue;
        total += m->hi - m->lo;
        if (m->hi - m->lo > MAX_ROOT_MAPPING || total > MAX_ROOT_TOTAL) {
            snprintf(s->problem, sizeof s->problem, "a %llu MiB mapping at 0x%llx is too large to scan: no proof",
                     (unsigned long long)((m->hi - m->lo) >> 20), (unsigned long long)m->lo);
            return true;
        }
    }
    return false;
}

static void collect_roots(struct scan *s)
{
    for (size_t i = 0; i < s->nmaps; i++)
        if (s->maps[i].kind == MAP_ROOT && grow((void **)&s->roots_lo, &s->caproots, s->nroots + 1, sizeof *s->roots_lo)) {
            size_t cap = s->caproots;
            s->roots_hi = realloc(s->roots_hi, cap * sizeof *s->roots_hi);
            if (!s->roots_hi)
                return;
            s->roots_lo[s->nroots] = s->maps[i].lo;
            s->roots_hi[s->nroots] = s->maps[i].hi;
            s->nroots++;
        }
}

/* Mark from the roots, then let every candidate whose object is reachable
 * add its stack, until nothing changes. */
static void mark_to_fixpoint(struct scan *s, struct thread_info *ti, size_t n)
{
    uint64_t lb = s->nblocks ? s->start[0] : 0, hb = s->nblocks ? s->end[s->nblocks - 1] : 0;
    for (size_t r = 0; r < s->nroots; r++)
        scan_range(s, s->roots_lo[r], s->roots_hi[r], lb, hb);
    for (size_t i = 0; i < n; i++)   /* the argument registers of live parked threads are roots too */
        if (!ti[i].excluded && ti[i].sp)
            scan_words(s, (const unsigned char *)ti[i].args, sizeof ti[i].args, lb, hb);
    drain_worklist(s, lb, hb);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n; i++) {
            if (!ti[i].candidate || ti[i].reachable == 1)
                continue;
            size_t b = block_of(s, ti[i].object);
            ti[i].object_block = b;
            /* Outside every block (a global, a live stack, memory we do not
             * understand): reachable, conservatively. */
            bool reachable = b == SIZE_MAX || s->marked[b];
            if (!reachable)
                continue;
            ti[i].reachable = 1;
            changed = true;

            if (ti[i].block != SIZE_MAX)
                mark(s, block_of(s, s->start[ti[i].block]));   /* it may wake: its stack counts now */
        }
        drain_worklist(s, lb, hb);
    }
    for (size_t i = 0; i < n; i++)
        if (ti[i].candidate && ti[i].reachable != 1)
            ti[i].reachable = 0;
}

/* ---- the block arrays outlive a scan by a few seconds ----
 * Scans come in pairs (the two-scan rule) or once a second while someone
 * watches; mapping tens of MiB of arrays afresh each time costs a page
 * fault per 4 KiB (a tenth of a scan). So they are kept for the next scan
 * and unmapped by the server's tick once SPARE_NS has passed without one
 * (or longer than a scan answers for, below: the next scan finds them). */
#define SPARE_NS 3000000000ull

static uint64_t remembered_took_ns;   /* how long the last real scan took */

static struct scan spare;   /* only the block and edge arrays, with their capacities */
static uint64_t spare_since_ns;

static void release_arrays(struct scan *s)
{
    free_mapped(s->start, s->cap, sizeof *s->start);
    free_mapped(s->end, s->cap, sizeof *s->end);
    free_mapped(s->edge_first, s->cap, sizeof *s->edge_first);
    free_mapped(s->edge_n, s->cap, sizeof *s->edge_n);
    free_mapped(s->edges, s->capedges, sizeof *s->edges);
    s->start = s->end = s->edges = NULL;
    s->edge_first = s->edge_n = NULL;
    s->cap = s->capedges = 0;
}

static void move_arrays(struct scan *to, struct scan *from)
{
    to->start = from->start;
    to->end = from->end;
    to->edge_first = from->edge_first;
    to->edge_n = from->edge_n;
    to->cap = from->cap;
    to->edges = from->edges;
    to->capedges = from->capedges;
    from->start = from->end = from->edges = NULL;
    from->edge_first = from->edge_n = NULL;
    from->cap = from->capedges = 0;
}

void lw_reach_release_idle(void)
{
    uint64_t keep = 4 * remembered_took_ns + 1000000000ull > SPARE_NS ? 4 * remembered_took_ns + 1000000000ull
                                                                       : SPARE_NS;
    if ((spare.cap || spare.capedges) && lw_now_ns() - spare_since_ns >= keep)
        release_arrays(&spare);
}

static void free_scan(struct scan *s)
{
    free_regions(s);
    release_arrays(&spare);
    move_arrays(&spare, s);
    spare_since_ns = lw_now_ns();
    if (s->filter)
        munmap(s->filter, FILTER_BITS / 8);
    free_mapped(s->work, s->capwork, sizeof *s->work);
    free(s->maps); free(s->marked); free(s->pseudo);
    free(s->roots_lo); free(s->roots_hi);
    if (s->buf)
        munmap(s->buf, READ_CHUNK);
}

/* ---- which blocks are stacks ---- */

static int compare_pseudo(const void *a, const void *b)
{
    uint64_t x = ((const struct pseudo *)a)->start, y = ((const struct pseudo *)b)->start;
    return (x > y) - (x < y);
}

/* After the sort: each parked thread learns its stack pseudo-block's index. */
static void place_pseudo_blocks(struct scan *s, struct thread_info *ti)
{
    qsort(s->pseudo, s->npseudo, sizeof *s->pseudo, compare_pseudo);
    for (size_t k = 0; k < s->npseudo; k++) {
        size_t b = search_blocks(s, 0, s->nblocks, s->pseudo[k].start);
        if (b < s->nblocks && s->start[b] == s->pseudo[k].start)
            ti[s->pseudo[k].thread].block = b;
        else
            s->incomplete = true;   /* cannot happen; if it did, that stack could not join the roots */
    }
}

static bool is_pseudo_block(const struct scan *s, size_t b)
{
    size_t lo = 0, hi = s->npseudo;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->pseudo[mid].start < s->start[b])
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->npseudo && s->pseudo[lo].start == s->start[b];
}

/* Record this scan's findings in the snapshot, with the two-scan rule. */
static void record_results(struct lw_snapshot *snap, const struct thread_info *ti, const struct scan *s)
{
    static struct sighting next[MAX_CONFIRM];
    size_t nnext = 0;
    uint64_t now = lw_now_ns();
    recheck_wanted = false;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!ti[i].candidate)
            continue;
        struct lw_snap_wait *w = &snap->threads[i].wait;
        uint64_t key = w->start_ns;   /* the wait's own start: unchanged wait, same key */
        if (ti[i].reachable) {
            w->reach = LW_REACH_REACHABLE;
            continue;
        }
        w->reach = LW_REACH_UNREACHABLE;
        if (ti[i].object_block != SIZE_MAX && !is_pseudo_block(s, ti[i].object_block)) {
            w->reach_block = s->start[ti[i].object_block];   /* what malloc returned */
            w->reach_block_size = s->end[ti[i].object_block] - s->start[ti[i].object_block];
        }
        struct sighting *seen = find_sighting(ti[i].tid, w->object, key);
        struct sighting cur = seen ? *seen : (struct sighting){ ti[i].tid, w->object, key, now, 0 };
        cur.scans++;
        w->unreachable_for = (double)(now - cur.first_ns) / 1e9;
        if (cur.scans >= 2 && now - cur.first_ns >= CONFIRM_NS)
            w->reach = LW_REACH_CONFIRMED;
        else
            recheck_wanted = true;
        if (nnext < MAX_CONFIRM)
            next[nnext++] = cur;
    }
    memcpy(sightings, next, nnext * sizeof *next);
    nsightings = nnext;
}

/* ---- a recent scan answers for a while ----
 * Every report wants the scan's findings, and a busy client (or a hundred)
 * may ask many times a second: a scan younger than REUSE_NS (or four times
 * its own duration: a scan of a huge heap competes with the program for
 * memory bandwidth, so it runs at most a fifth of the time) answers for the
 * same candidate waits (same thread, object and wait start) without reading
 * the program again. A new candidate means a new scan. The two-scan rule
 * counts only real scans, which are at least a second apart anyway. */
#define REUSE_NS 500000000ull

struct remembered {
    int32_t tid;
    uint64_t object, start_ns;
    enum lw_reach reach;
    uint64_t block, block_size;
    double unreachable_for;
};

static struct remembered remembered[MAX_CONFIRM];
static size_t nremembered;
static uint64_t remembered_ns;
static char remembered_note[sizeof ((struct lw_snapshot *)0)->reach_note];

static const struct remembered *find_remembered(const struct lw_snap_thread *t)
{
    for (size_t k = 0; k < nremembered; k++)
        if (remembered[k].tid == t->tid && remembered[k].object == t->wait.object &&
            remembered[k].start_ns == t->wait.start_ns)
            return &remembered[k];
    return NULL;
}

static void remember_scan(const struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t started, uint64_t now)
{
    nremembered = 0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
            continue;
        if (nremembered == MAX_CONFIRM) {
            nremembered = 0;   /* too many to look up: scan every time */
            return;
        }
        const struct lw_snap_thread *t = &snap->threads[i];
        remembered[nremembered++] = (struct remembered){ t->tid, t->wait.object, t->wait.start_ns, t->wait.reach,
                                                         t->wait.reach_block, t->wait.reach_block_size,
                                                         t->wait.unreachable_for };
    }
    remembered_ns = now;
    remembered_took_ns = now - started;
    snprintf(remembered_note, sizeof remembered_note, "%s", snap->reach_note);
}

/* Answer from the last scan if it is recent and knew every candidate. */
static bool answer_from_last_scan(struct lw_snapshot *snap, const struct lw_analysis *a, uint64_t now)
{
    uint64_t reuse = 4 * remembered_took_ns > REUSE_NS ? 4 * remembered_took_ns : REUSE_NS;
    if (!nremembered || now - remembered_ns >= reuse)
        return false;
    for (size_t i = 0; i < snap->nthreads; i++)
        if (lw_reach_is_candidate(snap, i, &a->verdicts[i]) && !find_remembered(&snap->threads[i]))
            return false;
    double age = (double)(now - remembered_ns) / 1e9;
    for (size_t i = 0; i < snap->nthreads; i++) {
        if (!lw_reach_is_candidate(snap, i, &a->verdicts[i]))
            continue;
        const struct remembered *r = find_remembered(&snap->threads[i]);
        struct lw_snap_wait *w = &snap->threads[i].wait;
        w->reach = r->reach;
        w->reach_block = r->block;
        w->reach_block_size = r->block_size;
        w->unreachable_for = r->reach == LW_REACH_REACHABLE ? 0 : r->unreachable_for + age;
    }
    int len = snprintf(snap->reach_note, sizeof snap->reach_note, "%.250s", remembered_note);
    snprintf(snap->reach_note + len, sizeof snap->reach_note - (size_t)len, " (the scan of %.0f ms ago)", age * 1e3);
    return true;
}

int lw_reach_scan(struct lw_snapshot *snap, const struct lw_analysis *a)
{
    size_t n = snap->nthreads, candidates = 0;
    for (size_t i = 0; i < n; i++)
        candidates += lw_reach_is_candidate(snap, i, &a->verdicts[i]);
    nremembered = candidates ? nremembered : 0;
    if (!candidates) {
        nsightings = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: no candidate waits, no scan");
        return 0;
    }
    uint64_t t0 = lw_now_ns();
    if (answer_from_last_scan(snap, a, t0))
        return 0;
    self_pid = getpid();
    struct scan s;
    memset(&s, 0, sizeof s);
    move_arrays(&s, &spare);
    struct thread_info *ti = calloc(n, sizeof *ti);
    s.buf = mmap(NULL, READ_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s.buf == MAP_FAILED)
        s.buf = NULL;
    if (!ti || !s.buf || !parse_maps(&s)) {
        free(ti);
        free_scan(&s);
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: no scan (out of memory or no /proc)");
        return -1;
    }
    skip_own_memory(&s);
    s.recording = filter_alloc(&s);
    if (s.recording)
        filter_fill(&s);
    find_heaps(&s);
    gather_threads(snap, a, ti);
    place_stacks(&s, ti, n);
    skip_dead_stacks(&s, snap, ti, n);
    if (roots_too_large(&s)) {
        /* Not reading everything would make "unreachable" unsound: no scan. */
        nsightings = nremembered = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note, "reachability: %zu candidate wait%s, no scan: %s",
                 candidates, candidates == 1 ? "" : "s", s.problem);
        free(ti);
        free_scan(&s);
        return 0;
    }
    collect_roots(&s);
    if (!sort_blocks(&s) || !build_regions(&s) || !(s.marked = calloc(s.nblocks ? s.nblocks : 1, 1))) {
        free(ti);
        free_scan(&s);
        return -1;
    }
    place_pseudo_blocks(&s, ti);
    mark_to_fixpoint(&s, ti, n);
    if (s.incomplete) {
        nsightings = nremembered = 0;
        recheck_wanted = false;
        snprintf(snap->reach_note, sizeof snap->reach_note,
                 "reachability: %zu candidate wait%s, no proof: out of memory while marking", candidates,
                 candidates == 1 ? "" : "s");
        free(ti);
        free_scan(&s);
        return 0;
    }
    record_results(snap, ti, &s);
    snprintf(snap->reach_note, sizeof snap->reach_note,
             "reachability: %zu candidate wait%s, %.1f MiB scanned in %.1f ms%s%s", candidates,
             candidates == 1 ? "" : "s", (double)s.bytes_scanned / (1 << 20), (double)(lw_now_ns() - t0) / 1e6,
             s.problem[0] ? "; " : "", s.problem);
    remember_scan(snap, a, t0, lw_now_ns());
    free(ti);
    free_scan(&s);
    return 0;
}

/* The whole judgement: rules 1, 2 and 4, then the scan for what they left
 * undecided, then the analysis again with its findings (rule 3). */
int lw_analyze_with_reach(struct lw_snapshot *snap, struct lw_analysis *a)
{
    if (lw_analyze(snap, a) != 0)
        return -1;
    size_t candidates = 0;
    for (size_t i = 0; i < snap->nthreads; i++)
        candidates += lw_reach_is_candidate(snap, i, &a->verdicts[i]);
    if (lw_reach_scan(snap, a) != 0 || !candidates)
        return 0;
    lw_analysis_free(a);
    return lw_analyze(snap, a);
}
