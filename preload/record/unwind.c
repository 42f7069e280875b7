/*
 * unwind.c — the calling thread's return addresses, from the DWARF call
 * frame information (.eh_frame) every x86-64 object carries, with one
 * process-wide cache of decoded frame rules.
 *
 * Why our own: libunwind's fast unw_backtrace keeps a 256 KiB trace cache
 * per thread that ever unwinds (a program with 1,000 parked threads paid
 * 260 MB for it), and its slow path costs 12-28 us a stack; it also probes
 * memory through a pipe of its own that an application may close under it.
 * Here a frame costs a hash lookup and two loads once its rule is cached,
 * and the cache is shared by all threads. tests/unit/test_unwind.c holds it
 * to libunwind's answers frame for frame, and to the true stack where
 * libunwind's is wrong.
 *
 * The promise is a shorter stack, never a wrong one. A frame is kept only
 * if its address lies in an executable segment of a loaded object (found
 * with _dl_find_object, lock-free and async-signal-safe since glibc 2.35,
 * and that object's program headers): code outside every object (JIT) ends
 * the stack, and is never remembered as such, since code may be mapped
 * there later.
 *
 * A rule says, for one code address, how to find the caller: where the
 * canonical frame address (CFA) is (rsp or rbp plus an offset) and where
 * the return address and the caller's rbp were saved, decoded once from the
 * FDE found through the object's .eh_frame_hdr. Besides those:
 *  - the sigreturn trampoline (glibc's __restore_rt: mov $15,%rax;
 *    syscall), recognised by its bytes as libunwind does: the interrupted
 *    context is read from the ucontext the kernel saved at the CFA and the
 *    walk goes on from the interrupted instruction (its rule looked up at
 *    that exact address, not at the byte before it);
 *  - code in an object but without an FDE (built with
 *    -fno-asynchronous-unwind-tables): the frame pointer is followed, but
 *    only when everything agrees (fp_step): rbp lies in the stack, aligned,
 *    above the frame, within 64 KiB of it; the word above it is code right
 *    after a call instruction; a direct call's target starts with
 *    push %rbp, in the same segment and before the frame's address, with no
 *    function described by an FDE in between; and no other return address
 *    lies between the frame's stack pointer and rbp (a function without a
 *    frame pointer leaves the caller's rbp in place, and following it would
 *    skip the caller: its return address is the word that betrays it).
 *    Frames reached from a signal frame never use it (their rbp may be
 *    mid-prologue);
 *  - anything else we do not follow (a CFA computed by a DWARF expression
 *    other than the trampoline's, registers saved in other registers) ends
 *    the stack there.
 *
 * The cache is keyed by address and tagged with a generation that our
 * dlclose wrapper advances after every dlclose: a library unloaded and
 * another loaded at the same address is decoded afresh. Rules for objects
 * loaded before the preload initialized (the program, its libraries, ld.so,
 * the vDSO), which glibc never unloads, hold in every generation. (An
 * object unloaded by a dlclose that does not reach this wrapper, from a
 * library opened with RTLD_DEEPBIND or inside glibc, is not seen; glibc
 * unloads its own only at exit. A plugin dlopened by a constructor that ran
 * before ours counts as never unloaded.) Entries are written under a
 * per-entry sequence counter, so a reader never uses half of one.
 *
 * Memory: stacks are read only from the calling thread's stack (it cannot
 * be unmapped under us) or, past a signal frame, the stack the ucontext
 * names, and only pages a process_vm_readv of one byte has found readable
 * (a neighbouring guard page is mapped, but not readable); the verified
 * range of the thread's own stack is remembered per thread. Objects'
 * memory (headers, unwind tables, code bytes, GOT slots) is read only at
 * addresses _dl_find_object has just placed in a loaded object's segment,
 * and never in an object a dlclose may be unmapping: the wrapper waits
 * (briefly, bounded) for walks reading objects to finish, and a walk that
 * meets a dlclose in progress reads only the objects that are never
 * unloaded, so it may stop short at a frame in another one. Nothing
 * allocates; errno is kept; the rule cache is mapped at init.
 */
#include "record/unwind.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ucontext.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- rules and their cache ---- */

enum { REG_RBP_DW = 6, REG_RSP_DW = 7, REG_RA_DW = 16 };
enum { SAVED_SAME, SAVED_OFFSET, SAVED_UNDEFINED, SAVED_OTHER };

/* What a code address's rule says. Every kind is a fact about code inside
 * a loaded object's executable segment; an address outside one has no rule
 * and is never cached. */
enum rule_kind {
    KIND_CFA = 1,     /* CFA = rsp or rbp + cfa_offset; return address (and maybe rbp) saved there */
    KIND_OUTERMOST,   /* the return address is undefined: the stack ends here */
    KIND_NO_FDE,      /* no FDE covers it: the frame-pointer fallback may step past it */
    KIND_SIGRETURN,   /* a return address at the sigreturn trampoline */
    KIND_OPAQUE,      /* an FDE we do not follow: the stack ends here */
};

/* 8 bytes: a cache hit is one load. */
struct rule {
    int32_t cfa_offset;
    int8_t ra_slot, rbp_slot;   /* saved at CFA + 8 * slot */
    uint8_t kind;               /* enum rule_kind */
    uint8_t flags;              /* RULE_* */
};
#define RULE_CFA_RBP 1u     /* the CFA is rbp + cfa_offset (else rsp + cfa_offset) */
#define RULE_RBP_SAVED 2u   /* the caller's rbp is saved at CFA + 8 * rbp_slot (else unchanged) */
#define RULE_PERMANENT 4u   /* code of an object loaded before us: valid in every generation */
_Static_assert(sizeof(struct rule) == 8, "a rule is one word");

/* 24 bytes. seq is even when the entry is stable, odd while a writer fills
 * it, 0 while it was never used. */
struct cache_entry {
    uint32_t seq;
    uint32_t generation;   /* the dlclose generation it was decoded in */
    uint64_t key;          /* the code address, | EXACT_KEY for exact lookups */
    struct rule rule;
};

#define CACHE_SIZE 32768u   /* power of two: 768 KiB, touched as used */
#define CACHE_HASH_SHIFT 49 /* 64 - log2(CACHE_SIZE) */
#define CACHE_PROBES 16u
#define EXACT_KEY (1ull << 63)   /* user addresses never have it */

static struct cache_entry *cache;

/* Advanced after every dlclose (see dlclose below). */
static uint32_t generation;

static uint64_t cache_hash(uint64_t key) { return (key * 0x9e3779b97f4a7c15ull) >> CACHE_HASH_SHIFT; }

/* The rule for key decoded in this generation, or one of kind 0. A stale
 * entry (an older generation) is skipped: a fresh one may lie further on. */
static inline __attribute__((always_inline)) struct rule cache_lookup(uint64_t key, uint32_t gen)
{
    uint64_t h = cache_hash(key);
    for (uint32_t i = 0; i < CACHE_PROBES; i++) {
        struct cache_entry *e = &cache[(h + i) & (CACHE_SIZE - 1)];
        uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (seq == 0)
            break;   /* never used: nothing lies further on */
        if ((seq & 1) || __atomic_load_n(&e->key, __ATOMIC_RELAXED) != key)
            continue;
        uint32_t g = __atomic_load_n(&e->generation, __ATOMIC_RELAXED);
        struct rule r;
        memcpy(&r, &e->rule, sizeof r);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq && (g == gen || (r.flags & RULE_PERMANENT)))
            return r;
    }
    return (struct rule){ .kind = 0 };
}

static void cache_store(uint64_t key, uint32_t gen, const struct rule *r)
{
    uint64_t h = cache_hash(key);
    for (uint32_t i = 0; i < CACHE_PROBES; i++) {
        struct cache_entry *e = &cache[(h + i) & (CACHE_SIZE - 1)];
        uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        if (seq != 0 && (__atomic_load_n(&e->generation, __ATOMIC_RELAXED) == gen ||
                         (__atomic_load_n(&e->rule.flags, __ATOMIC_RELAXED) & RULE_PERMANENT))) {
            if (__atomic_load_n(&e->key, __ATOMIC_RELAXED) == key)
                return;     /* someone stored it meanwhile */
            continue;       /* a live entry of another address */
        }
        /* Empty, or stale: ours. */
        if (!__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&e->key, key, __ATOMIC_RELAXED);
        __atomic_store_n(&e->generation, gen, __ATOMIC_RELAXED);
        memcpy(&e->rule, r, sizeof *r);
        __atomic_store_n(&e->seq, seq + 2 ? seq + 2 : 2, __ATOMIC_RELEASE);
        return;
    }
}

/* ---- loaded objects, and dlclose ---- */

#define PAGE 4096ull

/* Objects loaded before the preload started (the program, its libraries,
 * the preloads, ld.so, the vDSO): glibc never unloads them, so their rules
 * outlive every dlclose and their memory may be read while one runs. */
#define MAX_PERMANENT 512
struct range {
    uint64_t lo, hi;
};
static struct range permanent[MAX_PERMANENT];   /* sorted by lo */
static unsigned npermanent;

/* The pages an object's PT_LOAD segments span: [*lo, *hi), empty when none. */
static void loaded_span(const struct dl_phdr_info *info, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        *lo = (a & ~(PAGE - 1)) < *lo ? (a & ~(PAGE - 1)) : *lo;
        *hi = a + ph->p_memsz > *hi ? a + ph->p_memsz : *hi;
    }
}

static int note_permanent(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uint64_t lo, hi;
    loaded_span(info, &lo, &hi);
    if (lo >= hi || npermanent == MAX_PERMANENT)
        return 0;   /* (past MAX_PERMANENT, objects are treated as unloadable: only slower) */
    unsigned at = npermanent++;
    while (at > 0 && permanent[at - 1].lo > lo) {
        permanent[at] = permanent[at - 1];
        at--;
    }
    permanent[at] = (struct range){ lo, hi };
    return 0;
}

static bool is_permanent(uint64_t addr)
{
    unsigned lo = 0, hi = npermanent;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (addr < permanent[mid].lo)
            hi = mid;
        else if (addr >= permanent[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static unsigned object_readers;   /* walks reading some object's memory now */
static unsigned closing;          /* dlcloses in progress */
static int (*real_dlclose)(void *);

#define DLCLOSE_WAIT_YIELDS 1000

/* Enter a section that reads loaded objects' memory. true: a dlclose is in
 * progress, so only permanent objects may be read (any other may be
 * unmapped under us); a dlclose that starts later waits for us. */
static bool objects_enter(void)
{
    __atomic_add_fetch(&object_readers, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&closing, __ATOMIC_SEQ_CST) != 0;
}

static void objects_leave(void) { __atomic_sub_fetch(&object_readers, 1, __ATOMIC_RELEASE); }

/* A fork child has only the forking thread: no other walk or dlclose is in
 * progress there, whatever the counts say. */
static void forget_other_threads(void)
{
    __atomic_store_n(&object_readers, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&closing, 0, __ATOMIC_RELAXED);
}

static void resolve_dlclose(void)
{
    if (!__atomic_load_n(&real_dlclose, __ATOMIC_ACQUIRE)) {
        void *p = dlsym(RTLD_NEXT, "dlclose");
        __atomic_store_n(&real_dlclose, (int (*)(void *))p, __ATOMIC_RELEASE);
    }
}

/* ---- what each dlclose unloaded, for stacks kept from before it ---- */

#define UNLOADS 256      /* the last unloads remembered */
#define LISTED 128       /* unloadable objects a dlclose looks at (more: all count as unloaded) */

struct unload {
    uint64_t lo, hi;       /* the object's mapping */
    uint32_t generation;   /* the generation when its dlclose began: stacks kept since may point there */
};
static struct unload unloads[UNLOADS];
static uint32_t nunloads;          /* ever recorded; the ring holds the last UNLOADS */
static uint32_t forgotten_after;   /* the newest generation of an unload the ring dropped, if any */
static int unloads_lock;

static void lock_unloads(void)
{
    while (__atomic_exchange_n(&unloads_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void unlock_unloads(void) { __atomic_store_n(&unloads_lock, 0, __ATOMIC_RELEASE); }

static void note_unload(uint64_t lo, uint64_t hi, uint32_t gen)
{
    lock_unloads();
    struct unload *u = &unloads[nunloads++ % UNLOADS];
    if (nunloads > UNLOADS && u->generation > forgotten_after)
        forgotten_after = u->generation;
    *u = (struct unload){ lo, hi, gen };
    unlock_unloads();
}

struct listing {
    struct range r[LISTED];
    unsigned n;
    bool overflow;
};

/* dl_iterate_phdr: every object but the permanent ones. */
static int list_unloadable(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct listing *l = data;
    uint64_t lo, hi;
    loaded_span(info, &lo, &hi);
    if (lo >= hi || is_permanent(lo))
        return 0;
    if (l->n == LISTED)
        l->overflow = true;
    else
        l->r[l->n++] = (struct range){ lo, hi };
    return 0;
}

/* Zero the pcs (a stack kept since generation gen) that lie in code a
 * dlclose has unloaded since: what is there now, if anything, is not what
 * ran. */
void lw_unwind_forget_unloaded(uint64_t *pcs, uint32_t n, uint32_t gen)
{
    if (gen == __atomic_load_n(&generation, __ATOMIC_ACQUIRE))
        return;   /* no dlclose since */
    lock_unloads();
    uint32_t kept = nunloads < UNLOADS ? nunloads : UNLOADS;
    for (uint32_t i = 0; i < n; i++) {
        if (pcs[i] == 0 || is_permanent(pcs[i]))
            continue;
        /* (if the ring dropped an unload since, assume the worst) */
        bool gone = nunloads > UNLOADS && forgotten_after >= gen;
        for (uint32_t k = 0; !gone && k < kept; k++)
            gone = unloads[k].generation >= gen && pcs[i] >= unloads[k].lo && pcs[i] < unloads[k].hi;
        if (gone)
            pcs[i] = 0;
    }
    unlock_unloads();
}

uint32_t lw_unwind_generation(void) { return __atomic_load_n(&generation, __ATOMIC_ACQUIRE); }

/* The application's dlclose: walks reading objects finish first (one
 * interrupted by a signal whose handler never returns cannot hold it up
 * for more than DLCLOSE_WAIT_YIELDS yields), walks that start meanwhile
 * read only permanent objects, every other rule decoded before it is stale
 * afterwards, and what it unloaded is noted (lw_unwind_forget_unloaded). */
__attribute__((visibility("default"))) int dlclose(void *handle)
{
    resolve_dlclose();
    int (*fn)(void *) = __atomic_load_n(&real_dlclose, __ATOMIC_ACQUIRE);
    if (!fn) {
        errno = ENOSYS;
        return -1;
    }
    struct listing before = { .n = 0 };
    uint32_t gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
    dl_iterate_phdr(list_unloadable, &before);
    __atomic_add_fetch(&closing, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < DLCLOSE_WAIT_YIELDS && __atomic_load_n(&object_readers, __ATOMIC_SEQ_CST); i++)
        sched_yield();
    int rc = fn(handle);
    int saved = errno;
    if (before.overflow)
        note_unload(0, UINT64_MAX, gen);   /* too many to tell: every unloadable one */
    for (unsigned i = 0; i < before.n; i++) {
        struct dl_find_object now;
        if (_dl_find_object((void *)(uintptr_t)before.r[i].lo, &now) != 0 ||
            (uint64_t)(uintptr_t)now.dlfo_map_start != before.r[i].lo)
            note_unload(before.r[i].lo, before.r[i].hi, gen);
    }
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&closing, 1, __ATOMIC_SEQ_CST);
    errno = saved;
    return rc;
}

struct code_place {
    const uint8_t *map_start, *map_end;   /* the object's mapping (_dl_find_object) */
    const uint8_t *eh_frame_hdr;          /* NULL: none */
    uint64_t seg_lo, seg_hi;              /* the segment holding the address */
    bool permanent;                       /* loaded before us: never unloaded */
};

/* Whether addr lies in a PT_LOAD segment of a loaded object with all of
 * `flags` (PF_X for code, PF_R for data); the object and segment in *out.
 * Must run between objects_enter and objects_leave, and with `restricted`
 * (what objects_enter said) finds only permanent objects. The program
 * headers are found through the ELF header at the start of the object's
 * mapping (the first PT_LOAD maps the file from offset 0). */
static bool find_segment(bool restricted, uint64_t addr, uint32_t flags, struct code_place *out)
{
    struct dl_find_object info;
    if (addr < PAGE || _dl_find_object((void *)(uintptr_t)addr, &info) != 0)
        return false;
    const uint8_t *start = info.dlfo_map_start, *end = info.dlfo_map_end;
    size_t size = (size_t)(end - start);
    bool lasting = is_permanent((uint64_t)(uintptr_t)start);
    if ((restricted && !lasting) || end <= start || size < sizeof(ElfW(Ehdr)) || ((uintptr_t)start & (PAGE - 1)))
        return false;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)(const void *)start;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(ElfW(Phdr)) || (eh->e_phoff & 7) || eh->e_phoff > size ||
        (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) > size - eh->e_phoff)
        return false;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(const void *)(start + eh->e_phoff);
    uint64_t bias = 0;
    bool have_bias = false;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        if (!have_bias) {   /* the first PT_LOAD begins the mapping */
            bias = (uint64_t)(uintptr_t)start - (ph[i].p_vaddr & ~(PAGE - 1));
            have_bias = true;
        }
        uint64_t lo = bias + ph[i].p_vaddr, hi = lo + ph[i].p_memsz;
        if ((ph[i].p_flags & flags) == flags && addr >= lo && addr < hi && hi <= (uint64_t)(uintptr_t)end) {
            *out = (struct code_place){ start, end, info.dlfo_eh_frame, lo, hi, lasting };
            return true;
        }
    }
    return false;
}

/* ---- reading DWARF ---- */

struct cursor {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t read_fixed(struct cursor *c, size_t n)
{
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, c->p, n);   /* little-endian */
    c->p += n;
    return v;
}

static uint64_t read_uleb(struct cursor *c)
{
    uint64_t v = 0;
    for (unsigned shift = 0; !c->bad; shift += 7) {
        if (c->p >= c->end || shift > 63) {
            c->bad = true;
            break;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static int64_t read_sleb(struct cursor *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0;
    do {
        if (c->bad || c->p >= c->end || shift > 63) {
            c->bad = true;
            return 0;
        }
        b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= ~0ull << shift;
    return (int64_t)v;
}

#define PE_OMIT 0xff
#define PE_FORMAT 0x0f
#define PE_APPLICATION 0x70
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

/* An encoded pointer (DW_EH_PE_*); datarel is relative to base. Indirect
 * pointers are never dereferenced (only personality routines use them). */
static uint64_t read_encoded(struct cursor *c, uint8_t enc, uint64_t base)
{
    uint64_t at = (uint64_t)(uintptr_t)c->p, v;
    switch (enc & PE_FORMAT) {
    case 0x00: v = read_fixed(c, 8); break;
    case 0x01: v = read_uleb(c); break;
    case 0x02: v = read_fixed(c, 2); break;
    case 0x03: v = read_fixed(c, 4); break;
    case 0x04: v = read_fixed(c, 8); break;
    case 0x09: v = (uint64_t)read_sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)read_fixed(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)read_fixed(c, 4); break;
    case 0x0c: v = read_fixed(c, 8); break;
    default: c->bad = true; return 0;
    }
    switch (enc & PE_APPLICATION) {
    case 0: return v;
    case PE_PCREL: return v + at;
    case PE_DATAREL: return v + base;
    default: c->bad = true; return 0;
    }
}

/* ---- finding the FDE: .eh_frame_hdr's binary search table ---- */

enum fde_search { FDE_FOUND, FDE_NONE_BEFORE, FDE_NO_TABLE };

/* The last FDE whose start is <= pc (its start in *start): FDE_FOUND, or
 * FDE_NONE_BEFORE (pc precedes every FDE), or FDE_NO_TABLE (no sorted
 * table we can read: whether pc has an FDE cannot be told). */
static enum fde_search find_fde(const uint8_t *hdr, const uint8_t *map_end, uint64_t pc, const uint8_t **fde,
                                uint64_t *start)
{
    if (!hdr)
        return FDE_NONE_BEFORE;
    struct cursor c = { hdr, map_end, false };
    uint8_t version = (uint8_t)read_fixed(&c, 1), frame_enc = (uint8_t)read_fixed(&c, 1);
    uint8_t count_enc = (uint8_t)read_fixed(&c, 1), table_enc = (uint8_t)read_fixed(&c, 1);
    if (c.bad || version != 1 || table_enc != (PE_DATAREL | 0x0b) || count_enc == PE_OMIT || frame_enc == PE_OMIT)
        return FDE_NO_TABLE;
    read_encoded(&c, frame_enc, (uint64_t)(uintptr_t)hdr);
    uint64_t count = read_encoded(&c, count_enc, (uint64_t)(uintptr_t)hdr);
    if (c.bad || count > (uint64_t)(map_end - c.p) / 8)
        return FDE_NO_TABLE;
    if (count == 0)
        return FDE_NONE_BEFORE;
    const int32_t *table = (const int32_t *)(const void *)c.p;   /* (initial location, fde) pairs */
    uint64_t base = (uint64_t)(uintptr_t)hdr;
    size_t lo = 0, hi = (size_t)count;
    while (hi - lo > 1) {   /* the last entry whose start <= pc */
        size_t mid = lo + (hi - lo) / 2;
        if (base + (uint64_t)(int64_t)table[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    *start = base + (uint64_t)(int64_t)table[2 * lo];
    if (*start > pc)
        return FDE_NONE_BEFORE;
    *fde = (const uint8_t *)(uintptr_t)(base + (uint64_t)(int64_t)table[2 * lo + 1]);
    return FDE_FOUND;
}

/* ---- CIE and FDE ---- */

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_column;
    uint8_t fde_enc;
    bool has_z;
    struct cursor insns;
};

/* One entry's bounds: [start of its body, end). */
static bool entry_bounds(const uint8_t *at, const uint8_t *map_end, struct cursor *body)
{
    struct cursor c = { at, map_end, false };
    uint64_t len = read_fixed(&c, 4);
    if (len == 0xffffffffu)
        len = read_fixed(&c, 8);
    if (c.bad || len == 0 || len > (uint64_t)(map_end - c.p))
        return false;
    *body = (struct cursor){ c.p, c.p + len, false };
    return true;
}

static bool parse_cie(const uint8_t *at, const uint8_t *map_end, struct cie *cie)
{
    struct cursor c;
    if (!entry_bounds(at, map_end, &c) || read_fixed(&c, 4) != 0)
        return false;   /* a CIE's id is 0 in .eh_frame */
    uint8_t version = (uint8_t)read_fixed(&c, 1);
    if (c.bad || (version != 1 && version != 3))
        return false;
    const char *aug = (const char *)c.p;
    size_t aug_len = strnlen(aug, (size_t)(c.end - c.p));
    if (aug_len == (size_t)(c.end - c.p))
        return false;
    c.p += aug_len + 1;
    cie->code_align = read_uleb(&c);
    cie->data_align = read_sleb(&c);
    cie->ra_column = version == 1 ? read_fixed(&c, 1) : read_uleb(&c);
    cie->fde_enc = 0;
    cie->has_z = aug[0] == 'z';
    if (cie->has_z) {
        uint64_t data_len = read_uleb(&c);
        if (c.bad || data_len > (uint64_t)(c.end - c.p))
            return false;
        struct cursor d = { c.p, c.p + data_len, false };
        for (const char *a = aug + 1; *a && !d.bad; a++) {
            if (*a == 'R') {
                cie->fde_enc = (uint8_t)read_fixed(&d, 1);
            } else if (*a == 'P') {
                uint8_t enc = (uint8_t)read_fixed(&d, 1);
                read_encoded(&d, enc & 0x7f, 0);   /* the personality: skipped, never followed */
            } else if (*a == 'L') {
                read_fixed(&d, 1);
            } else if (*a != 'S' && *a != 'B') {
                return false;   /* an augmentation we do not know changes the layout */
            }
        }
        if (d.bad)
            return false;
        c.p += data_len;
    } else if (aug[0]) {
        return false;
    }
    cie->insns = c;
    return !c.bad && cie->ra_column == REG_RA_DW;
}

/* ---- running the CFA program up to pc ---- */

struct regs_state {
    uint8_t cfa_reg;
    bool cfa_expression;
    int64_t cfa_offset;
    uint8_t rbp, ra;        /* SAVED_* */
    int64_t rbp_at, ra_at;  /* SAVED_OFFSET: CFA + this */
};

#define STATE_STACK 8

struct cfa_machine {
    struct regs_state now, initial, saved[STATE_STACK];
    int depth;
    const struct cie *cie;
};

static void set_rule(struct cfa_machine *m, uint64_t reg, uint8_t kind, int64_t at)
{
    if (reg == REG_RBP_DW) {
        m->now.rbp = kind;
        m->now.rbp_at = at;
    } else if (reg == REG_RA_DW) {
        m->now.ra = kind;
        m->now.ra_at = at;
    }
}

static void restore_rule(struct cfa_machine *m, uint64_t reg)
{
    if (reg == REG_RBP_DW) {
        m->now.rbp = m->initial.rbp;
        m->now.rbp_at = m->initial.rbp_at;
    } else if (reg == REG_RA_DW) {
        m->now.ra = m->initial.ra;
        m->now.ra_at = m->initial.ra_at;
    }
}

static void skip_block(struct cursor *c)
{
    uint64_t len = read_uleb(c);
    if (c->bad || len > (uint64_t)(c->end - c->p))
        c->bad = true;
    else
        c->p += len;
}

/* Execute instructions while the location stays <= target; false if they
 * cannot be read. */
static bool run_cfa_program(struct cfa_machine *m, struct cursor c, uint64_t loc, uint64_t target, uint8_t enc)
{
    const int64_t da = m->cie->data_align;
    const uint64_t ca = m->cie->code_align;
    while (c.p < c.end && !c.bad) {
        uint8_t op = *c.p++;
        uint64_t advance = 0;
        switch (op >> 6) {
        case 1: advance = (op & 0x3f) * ca; break;
        case 2: set_rule(m, op & 0x3f, SAVED_OFFSET, (int64_t)read_uleb(&c) * da); continue;
        case 3: restore_rule(m, op & 0x3f); continue;
        default: break;
        }
        if (op >> 6 == 0) {
            uint64_t reg;
            switch (op) {
            case 0x00: continue;                                          /* nop */
            case 0x01: loc = read_encoded(&c, enc, 0); if (loc > target) return true; continue;   /* set_loc */
            case 0x02: advance = read_fixed(&c, 1) * ca; break;
            case 0x03: advance = read_fixed(&c, 2) * ca; break;
            case 0x04: advance = read_fixed(&c, 4) * ca; break;
            case 0x05: reg = read_uleb(&c); set_rule(m, reg, SAVED_OFFSET, (int64_t)read_uleb(&c) * da); continue;
            case 0x06: restore_rule(m, read_uleb(&c)); continue;
            case 0x07: set_rule(m, read_uleb(&c), SAVED_UNDEFINED, 0); continue;
            case 0x08: set_rule(m, read_uleb(&c), SAVED_SAME, 0); continue;
            case 0x09: reg = read_uleb(&c); read_uleb(&c); set_rule(m, reg, SAVED_OTHER, 0); continue;
            case 0x0a:                                                    /* remember_state */
                if (m->depth == STATE_STACK)
                    return false;
                m->saved[m->depth++] = m->now;
                continue;
            case 0x0b:                                                    /* restore_state */
                if (m->depth == 0)
                    return false;
                m->now = m->saved[--m->depth];
                continue;
            case 0x0c: m->now.cfa_reg = (uint8_t)read_uleb(&c); m->now.cfa_offset = (int64_t)read_uleb(&c);
                       m->now.cfa_expression = false; continue;
            case 0x0d: m->now.cfa_reg = (uint8_t)read_uleb(&c); m->now.cfa_expression = false; continue;
            case 0x0e: m->now.cfa_offset = (int64_t)read_uleb(&c); continue;
            case 0x0f: skip_block(&c); m->now.cfa_expression = true; continue;
            case 0x10: reg = read_uleb(&c); skip_block(&c); set_rule(m, reg, SAVED_OTHER, 0); continue;
            case 0x11: reg = read_uleb(&c); set_rule(m, reg, SAVED_OFFSET, read_sleb(&c) * da); continue;
            case 0x12: m->now.cfa_reg = (uint8_t)read_uleb(&c); m->now.cfa_offset = read_sleb(&c) * da;
                       m->now.cfa_expression = false; continue;
            case 0x13: m->now.cfa_offset = read_sleb(&c) * da; continue;
            case 0x14: reg = read_uleb(&c); read_uleb(&c); set_rule(m, reg, SAVED_OTHER, 0); continue;
            case 0x15: reg = read_uleb(&c); read_sleb(&c); set_rule(m, reg, SAVED_OTHER, 0); continue;
            case 0x16: reg = read_uleb(&c); skip_block(&c); set_rule(m, reg, SAVED_OTHER, 0); continue;
            case 0x2e: read_uleb(&c); continue;                           /* GNU_args_size */
            case 0x2f: reg = read_uleb(&c); set_rule(m, reg, SAVED_OFFSET, -(int64_t)read_uleb(&c) * da); continue;
            default: return false;
            }
        }
        if (c.bad)
            return false;
        loc += advance;
        if (loc > target)
            return true;
    }
    return !c.bad;
}

/* The FDE covering pc: true with its rule in *out (KIND_CFA, _OUTERMOST or
 * _OPAQUE, which a table or FDE we cannot read is too); false if none
 * covers pc. *prev_start: the start of the last FDE at or before pc, 0 if
 * none. */
static bool rule_from_fde(const struct code_place *o, uint64_t pc, struct rule *out, uint64_t *prev_start)
{
    const uint8_t *map_end = o->map_end, *fde = NULL;
    uint64_t fde_start = 0;
    *prev_start = 0;
    *out = (struct rule){ .kind = KIND_OPAQUE };
    switch (find_fde(o->eh_frame_hdr, map_end, pc, &fde, &fde_start)) {
    case FDE_NO_TABLE: return true;     /* cannot tell: opaque */
    case FDE_NONE_BEFORE: return false;
    case FDE_FOUND: break;
    }
    *prev_start = fde_start;
    struct cursor body;
    if (!entry_bounds(fde, map_end, &body))
        return true;
    const uint8_t *id_at = body.p;
    uint32_t cie_offset = (uint32_t)read_fixed(&body, 4);
    struct cie cie;
    if (body.bad || cie_offset == 0 || (uintptr_t)id_at < cie_offset ||
        !parse_cie(id_at - cie_offset, map_end, &cie))
        return true;
    uint64_t start = read_encoded(&body, cie.fde_enc, 0);
    uint64_t range = read_encoded(&body, cie.fde_enc & PE_FORMAT, 0);
    if (body.bad)
        return true;
    if (pc < start || pc - start >= range)
        return false;   /* the last FDE before pc ends before it */
    if (cie.has_z)
        skip_block(&body);
    struct cfa_machine m = { .cie = &cie };
    m.now = (struct regs_state){ .cfa_reg = REG_RSP_DW, .cfa_offset = 8, .rbp = SAVED_SAME, .ra = SAVED_OFFSET,
                                 .ra_at = -8 };
    if (!run_cfa_program(&m, cie.insns, 0, UINT64_MAX, cie.fde_enc))
        return true;
    m.initial = m.now;
    m.depth = 0;
    if (body.bad || !run_cfa_program(&m, body, start, pc, cie.fde_enc))
        return true;
    const struct regs_state *s = &m.now;
    if (s->ra == SAVED_UNDEFINED) {
        out->kind = KIND_OUTERMOST;
        return true;
    }
    if (s->cfa_expression || (s->cfa_reg != REG_RSP_DW && s->cfa_reg != REG_RBP_DW) || s->ra != SAVED_OFFSET ||
        (s->rbp != SAVED_SAME && s->rbp != SAVED_OFFSET) || s->cfa_offset != (int32_t)s->cfa_offset ||
        (s->ra_at & 7) || s->ra_at / 8 != (int8_t)(s->ra_at / 8) ||
        (s->rbp == SAVED_OFFSET && ((s->rbp_at & 7) || s->rbp_at / 8 != (int8_t)(s->rbp_at / 8))))
        return true;   /* (registers are saved in 8-byte slots near the CFA) */
    *out = (struct rule){ .kind = KIND_CFA, .cfa_offset = (int32_t)s->cfa_offset, .ra_slot = (int8_t)(s->ra_at / 8),
                          .rbp_slot = s->rbp == SAVED_OFFSET ? (int8_t)(s->rbp_at / 8) : 0,
                          .flags = (uint8_t)((s->cfa_reg == REG_RBP_DW ? RULE_CFA_RBP : 0) |
                                             (s->rbp == SAVED_OFFSET ? RULE_RBP_SAVED : 0)) };
    return true;
}

/* glibc's x86-64 sa_restorer, __restore_rt: mov $15 (rt_sigreturn), %rax; syscall. */
static const uint8_t sigreturn_code[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };

/* Decode the rule for code at pc: the byte before a return address, or the
 * exact address of an interrupted instruction. false: pc is not code of a
 * loaded object (or of one a dlclose in progress may be unmapping): no
 * rule, nothing cached. */
static __attribute__((noinline)) bool decode_rule(uint64_t pc, bool exact, struct rule *out)
{
    bool restricted = objects_enter();
    struct code_place o;
    bool code = find_segment(restricted, pc, PF_X, &o);
    if (code) {
        uint64_t ret = pc + 1, prev;
        if (!exact && o.seg_hi - ret >= sizeof sigreturn_code &&
            memcmp((const void *)(uintptr_t)ret, sigreturn_code, sizeof sigreturn_code) == 0)
            *out = (struct rule){ .kind = KIND_SIGRETURN };
        else if (!rule_from_fde(&o, pc, out, &prev))
            *out = (struct rule){ .kind = KIND_NO_FDE };
        if (o.permanent)
            out->flags |= RULE_PERMANENT;
    }
    objects_leave();
    return code;
}

/* Decode and cache the rule for pc; kind 0 if it is not code. */
static __attribute__((noinline)) struct rule rule_decoded(uint64_t key, uint64_t pc, bool exact, uint32_t gen)
{
    struct rule r;
    if (!decode_rule(pc, exact, &r))
        return (struct rule){ .kind = 0 };
    if (cache)
        cache_store(key, gen, &r);
    return r;
}

/* The rule for pc (exact: an interrupted instruction, else the byte before
 * a return address); kind 0 if pc is not code in a loaded object. */
static inline __attribute__((always_inline)) struct rule rule_for(uint64_t pc, bool exact, uint32_t gen)
{
    uint64_t key = pc | (exact ? EXACT_KEY : 0);
    if (cache) {
        struct rule r = cache_lookup(key, gen);
        if (r.kind)
            return r;
    }
    return rule_decoded(key, pc, exact, gen);
}

/* ---- reading stacks ---- */

/* The thread's own stack, verified readable from verified_lo to verified_hi
 * (kept across walks: pages above a thread's stack pointer stay mapped).
 * Kept masked, like every address in our records: our TLS lies in every
 * thread's static TLS, and a plain stack address there would look to a
 * reachability scan like a pointer into the frames of a parked thread. */
#define VERIFIED_MASK 0xa5c3f00dd15ea5e5ull   /* (registry.h's LW_ADDR_MASK) */
static __thread uint64_t verified_lo __attribute__((tls_model("initial-exec"))) = VERIFIED_MASK;
static __thread uint64_t verified_hi __attribute__((tls_model("initial-exec"))) = VERIFIED_MASK;

#define STACK_REACH (64ull << 20)   /* how far above its start a walk may read a stack */

/* Readable, not merely mapped: a guard page (PROT_NONE) is mapped too, and
 * mincore would say yes to it. Copying a byte with process_vm_readv gets
 * EFAULT there instead of a fault. */
static bool page_is_readable(uint64_t page)
{
    unsigned char byte;
    struct iovec local = { &byte, 1 }, remote = { (void *)(uintptr_t)page, 1 };
    int saved = errno;   /* a hook's caller must never see ours */
    bool readable = process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1;
    errno = saved;
    return readable;
}

/* A stack being read: words at floor and above, up to floor + STACK_REACH.
 * The calling thread's own stacks are read in place, each page checked
 * readable once ([floor's page, hi) is); another thread's stack (window
 * set) only through copies of one page at a time (process_vm_readv: a
 * stack unmapped meanwhile costs an EFAULT, never a fault). */
struct stack_view {
    uint64_t floor, hi;
    uint64_t own_lo;     /* the thread's own stack, verified from here (kept per thread); 0: another stack */
    uint64_t *window;    /* another thread's stack: its words [wlo, whi) copied here; NULL: our own */
    uint64_t wlo, whi;
};

static void view_own_stack(struct stack_view *v, uint64_t sp)
{
    uint64_t lo = verified_lo ^ VERIFIED_MASK, hi = verified_hi ^ VERIFIED_MASK;
    if (sp < lo || sp >= hi) {
        lo = hi = sp & ~(PAGE - 1);
        verified_lo = lo ^ VERIFIED_MASK;
        verified_hi = hi ^ VERIFIED_MASK;
    }
    *v = (struct stack_view){ sp, hi, lo, NULL, 0, 0 };
}

/* The walk moves to another stack (a signal handler's alternate stack
 * returned to the interrupted one): read the same way as the last. */
static void view_other_stack(struct stack_view *v, uint64_t sp)
{
    v->floor = sp;
    v->hi = sp & ~(PAGE - 1);
    v->own_lo = 0;
    v->wlo = v->whi = 0;
}

/* A word of a stack, read raw: any word of a frame, which AddressSanitizer
 * (in the sanitizer build) may have poisoned as a redzone. */
#ifdef __SANITIZE_ADDRESS__
static __attribute__((noinline, no_sanitize_address)) uint64_t stack_word(uint64_t addr)
{
    return *(const uint64_t *)(uintptr_t)addr;
}
#else
static inline uint64_t stack_word(uint64_t addr) { return *(const uint64_t *)(uintptr_t)addr; }
#endif

/* Check the pages up to addr + 8 readable (addr is above the view's hi). */
static __attribute__((noinline)) bool extend_view(struct stack_view *v, uint64_t addr)
{
    if (addr - v->floor > STACK_REACH)
        return false;
    while (addr + 8 > v->hi) {
        if (!page_is_readable(v->hi))
            return false;
        v->hi += PAGE;
        if (v->own_lo && v->own_lo == (verified_lo ^ VERIFIED_MASK))   /* (a walk in a signal handler may have moved it) */
            verified_hi = v->hi ^ VERIFIED_MASK;
    }
    return true;
}

/* Copy the page of another thread's stack that holds addr into the window. */
static __attribute__((noinline)) bool refill_window(struct stack_view *v, uint64_t addr)
{
    if (addr - v->floor > STACK_REACH)
        return false;
    uint64_t page = addr & ~(PAGE - 1);
    struct iovec local = { v->window, PAGE }, remote = { (void *)(uintptr_t)page, PAGE };
    int saved = errno;
    ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    errno = saved;
    if (n != (ssize_t)PAGE) {
        v->wlo = v->whi = 0;
        return false;
    }
    v->wlo = page;
    v->whi = page + PAGE;
    return true;
}

/* The word at addr, if it is 8-aligned, at or above the view's floor and
 * readable. */
static inline __attribute__((always_inline)) bool read_word(struct stack_view *v, uint64_t addr, uint64_t *out)
{
    if (addr < v->floor || (addr & 7))
        return false;
    if (__builtin_expect(v->window != NULL, 0)) {
        if ((addr < v->wlo || addr >= v->whi) && !refill_window(v, addr))
            return false;
        *out = v->window[(addr - v->wlo) / 8];
        return true;
    }
    if (addr + 8 > v->hi && !extend_view(v, addr))
        return false;
    *out = stack_word(addr);
    return true;
}

/* ---- the frame-pointer fallback, for code without an FDE ---- */

#define FP_MAX_FRAME (64u << 10)     /* a frame without CFI is followed only if smaller */
#define FP_MAX_FUNCTION (1u << 20)   /* how far a call site may lie from its function's start */

/* The instruction that ends at ret (a return address in o's code segment):
 * 0 if it is not a call, 1 for a call whose target we know (*target: the
 * function, through a PLT stub or GOT slot if that is how it calls), 2 for
 * an indirect call. Inside objects_enter. */
static int call_before(bool restricted, uint64_t ret, const struct code_place *o, uint64_t *target)
{
    const uint8_t *r = (const uint8_t *)(uintptr_t)ret;
    uint64_t room = ret - o->seg_lo;
    if (room >= 5 && r[-5] == 0xe8) {   /* call rel32 */
        int32_t rel;
        memcpy(&rel, r - 4, 4);
        uint64_t t = ret + (uint64_t)(int64_t)rel;
        /* A PLT stub: [endbr64] [bnd] jmp *slot(%rip). */
        struct code_place s;
        if (find_segment(restricted, t, PF_X, &s)) {
            const uint8_t *p = (const uint8_t *)(uintptr_t)t;
            uint64_t left = s.seg_hi - t;
            if (left >= 4 && p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) {
                p += 4;
                left -= 4;
            }
            if (left >= 1 && p[0] == 0xf2) {
                p++;
                left--;
            }
            struct code_place d;
            if (left >= 6 && p[0] == 0xff && p[1] == 0x25) {
                memcpy(&rel, p + 2, 4);
                uint64_t slot = (uint64_t)(uintptr_t)(p + 6) + (uint64_t)(int64_t)rel;
                if (find_segment(restricted, slot, PF_R, &d) && d.seg_hi - slot >= 8)
                    memcpy(&t, (const void *)(uintptr_t)slot, 8);
            }
        }
        *target = t;
        return 1;
    }
    if (room >= 6 && r[-6] == 0xff && r[-5] == 0x15) {   /* call *slot(%rip) (-fno-plt) */
        int32_t rel;
        memcpy(&rel, r - 4, 4);
        uint64_t slot = ret + (uint64_t)(int64_t)rel;
        struct code_place d;
        if (!find_segment(restricted, slot, PF_R, &d) || d.seg_hi - slot < 8)
            return 2;
        memcpy(target, (const void *)(uintptr_t)slot, 8);
        return 1;
    }
    /* call r/m64: FF /2, 2 to 7 bytes (ModRM, SIB, displacement). */
    for (uint64_t k = 2; k <= 7 && k <= room; k++) {
        if (r[-(int64_t)k] != 0xff)
            continue;
        uint8_t modrm = r[1 - (int64_t)k], mod = modrm >> 6, rm = modrm & 7;
        if (((modrm >> 3) & 7) != 2)
            continue;
        uint64_t len = 2;
        if (mod != 3 && rm == 4) {
            if (k < 3)
                continue;
            len++;
            if (mod == 0 && (r[2 - (int64_t)k] & 7) == 5)
                len += 4;
        }
        if (mod == 1)
            len += 1;
        else if (mod == 2 || (mod == 0 && rm == 5))
            len += 4;
        if (len == k)
            return 2;
    }
    return 0;
}

/* Whether w looks like a return address: code of a loaded object right
 * after a call instruction. Inside objects_enter. */
static bool is_return_address(bool restricted, uint64_t w)
{
    struct code_place o;
    uint64_t target;
    return w > PAGE && w < (1ull << 47) && find_segment(restricted, w - 1, PF_X, &o) &&
           call_before(restricted, w, &o, &target) != 0;
}

/* Whether code at entry begins [endbr64] push %rbp. */
static bool pushes_rbp_first(uint64_t entry, const struct code_place *o)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)entry;
    uint64_t left = o->seg_hi - entry;
    if (left >= 4 && p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa) {
        p += 4;
        left -= 4;
    }
    return left >= 1 && p[0] == 0x55;
}

/* Step from a frame at return address pc (code with no FDE) whose stack
 * pointer is sp, through the frame pointer bp: the caller's return address,
 * stack pointer and rbp, only when everything agrees (see the top of the
 * file). */
static bool fp_step(struct stack_view *v, uint64_t pc, uint64_t sp, uint64_t bp, uint64_t *ra, uint64_t *nsp,
                    uint64_t *nbp)
{
    uint64_t saved_bp, ret;
    /* Reading bp + 8 checks every page from sp up to it readable. */
    if ((bp & 15) || bp < sp || bp - sp > FP_MAX_FRAME || !read_word(v, bp, &saved_bp) ||
        !read_word(v, bp + 8, &ret) || ret <= PAGE)
        return false;
    bool restricted = objects_enter();
    struct code_place here, caller, callee;
    uint64_t target = 0, last_fde = 0;
    struct rule r;
    int call = 0;
    bool ok = find_segment(restricted, pc - 1, PF_X, &here) && find_segment(restricted, ret - 1, PF_X, &caller) &&
              (call = call_before(restricted, ret, &caller, &target)) != 0;
    if (ok && call == 1) {
        /* The call's target must be where this frame's function begins:
         * before pc in the same segment, not described by an FDE, no FDE
         * starting between it and pc, and its first act a push %rbp. */
        ok = target >= here.seg_lo && target < pc && pc - target <= FP_MAX_FUNCTION &&
             find_segment(restricted, target, PF_X, &callee) && callee.seg_lo == here.seg_lo &&
             pushes_rbp_first(target, &callee) && !rule_from_fde(&here, target, &r, &last_fde) &&
             !rule_from_fde(&here, pc, &r, &last_fde) && last_fde <= target;
    }
    for (uint64_t a = sp, w; ok && a < bp; a += 8)
        if (!read_word(v, a, &w) || is_return_address(restricted, w))
            ok = false;   /* a frame without a frame pointer lies in between */
    objects_leave();
    if (!ok)
        return false;
    *ra = ret;
    *nsp = bp + 16;
    *nbp = saved_bp;
    return true;
}

/* ---- the walk ---- */

void lw_unwind_init(void)
{
    void *p = mmap(NULL, sizeof(struct cache_entry) * CACHE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cache = p == MAP_FAILED ? NULL : p;
    resolve_dlclose();
    npermanent = 0;
    dl_iterate_phdr(note_permanent, NULL);
    pthread_atfork(NULL, NULL, forget_other_threads);
}

void lw_unwind_extent(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)cache;
    *hi = cache ? (uintptr_t)cache + sizeof(struct cache_entry) * CACHE_SIZE : 0;
}

#define UC_RIP offsetof(ucontext_t, uc_mcontext.gregs[REG_RIP])
#define UC_RSP offsetof(ucontext_t, uc_mcontext.gregs[REG_RSP])
#define UC_RBP offsetof(ucontext_t, uc_mcontext.gregs[REG_RBP])

/* Walk from an instruction at pc (exact: pc is the instruction itself, not
 * a return address) whose frame has stack pointer sp and rbp bp (when
 * bp_known), reading stacks through v: up to max return addresses. */
static inline __attribute__((always_inline)) int walk(struct stack_view *v, uint64_t pc, uint64_t sp, uint64_t bp,
                                                      bool bp_known, bool exact, uint64_t *pcs, int max,
                                                      uint32_t gen)
{
    int n = 0;
    if (max <= 0)
        return 0;
    struct rule r = rule_for(pc, exact, gen);
    if (!r.kind)
        return 0;
    while (n < max) {
        uint64_t ra, nsp, nbp = bp;
        bool nbp_known = bp_known, nexact = false;
        if (r.kind == KIND_CFA) {
            if ((r.flags & RULE_CFA_RBP) && !bp_known)
                break;
            uint64_t cfa = ((r.flags & RULE_CFA_RBP) ? bp : sp) + (uint64_t)(int64_t)r.cfa_offset;
            if (cfa <= sp || !read_word(v, cfa + 8 * (uint64_t)(int64_t)r.ra_slot, &ra))
                break;
            if (r.flags & RULE_RBP_SAVED)
                nbp_known = read_word(v, cfa + 8 * (uint64_t)(int64_t)r.rbp_slot, &nbp);
            nsp = cfa;
        } else if (r.kind == KIND_NO_FDE) {
            if (exact || !bp_known || !fp_step(v, pc, sp, bp, &ra, &nsp, &nbp))
                break;
            nbp_known = true;
        } else if (r.kind == KIND_SIGRETURN) {
            /* sp is the handler's CFA: the ucontext the kernel saved. */
            if (!read_word(v, sp + UC_RIP, &ra) || !read_word(v, sp + UC_RSP, &nsp) ||
                !read_word(v, sp + UC_RBP, &nbp) || nsp == 0 || (nsp & 7))
                break;
            if (nsp < v->floor || nsp - v->floor > STACK_REACH)
                view_other_stack(v, nsp);   /* the handler ran on an alternate stack */
            nbp_known = true;
            nexact = true;
        } else {
            break;   /* outermost, or a rule we do not follow */
        }
        if (ra == 0)
            break;
        struct rule next = rule_for(nexact ? ra : ra - 1, nexact, gen);
        if (!next.kind)
            break;   /* not code: never kept */
        pcs[n++] = ra;
        r = next;
        pc = ra;
        sp = nsp;
        bp = nbp;
        bp_known = nbp_known;
        exact = nexact;
    }
    return n;
}

__attribute__((noinline)) int lw_unwind(uint64_t *pcs, int max)
{
    uint64_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
    const uint32_t gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
    struct stack_view view;
    view_own_stack(&view, sp);
    /* pc: an instruction of ours, not a return address */
    return walk(&view, pc, sp, bp, true, true, pcs, max, gen);
}

int lw_unwind_other(const struct lw_frame_state *at, uint64_t *pcs, int max)
{
    uint64_t window[PAGE / 8];
    const uint32_t gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
    struct stack_view view = { at->sp, at->sp & ~(PAGE - 1), 0, window, 0, 0 };
    int n = walk(&view, at->pc, at->sp, at->bp, true, true, pcs, max, gen);
    /* The frame's own return address first, as it was when recorded: a
     * frame since popped and its memory reused is never walked on. */
    return n > 0 && pcs[0] == (at->ra_masked ^ LW_RA_MASK) ? n : 0;
}
