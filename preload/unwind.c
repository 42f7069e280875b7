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
 * and the cache is shared by all threads.
 *
 * A rule says, for one return address, where the canonical frame address
 * (CFA) is (rsp or rbp plus an offset) and where the return address and
 * the caller's rbp were saved. It is decoded once from the FDE that
 * _dl_find_object (lock-free and async-signal-safe since glibc 2.35) finds
 * through the module's .eh_frame_hdr. Anything we do not decode (a CFA
 * computed by a DWARF expression: signal trampolines, PLT stubs; code with
 * no unwind information: JIT) ends the stack there: a short stack, never a
 * wrong one.
 *
 * Memory: only the calling thread's own stack is read (it cannot be
 * unmapped under us), and only pages a process_vm_readv of one byte has
 * found readable (a neighbouring guard page is mapped, but not readable);
 * the verified range is remembered per thread. Unwind tables are
 * read only for code on this stack, whose module cannot be unloaded while
 * it is there. Nothing allocates; the rule cache is mapped at init.
 */
#include "unwind.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- rules and their cache ---- */

enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };
enum { RULE_SAME, RULE_OFFSET, RULE_UNDEFINED, RULE_OTHER };

struct rule {
    int32_t cfa_offset;
    int16_t ra_offset, rbp_offset;   /* saved at CFA + offset */
    uint8_t cfa_reg;                 /* REG_RSP or REG_RBP */
    uint8_t rbp_rule;                /* RULE_SAME or RULE_OFFSET */
    uint8_t outermost;               /* the return address is undefined: the stack ends here */
    uint8_t usable;                  /* 0: we cannot step past this frame */
};

struct cache_entry {
    uint64_t pc;       /* 0 empty, 1 being written, else the key (release-stored last) */
    struct rule rule;
};

#define CACHE_SIZE 32768u   /* power of two; 16 bytes each */
#define CACHE_PROBES 16u
#define WRITING 1u

static struct cache_entry *cache;

static bool cache_lookup(uint64_t pc, struct rule *out)
{
    uint64_t h = (pc * 0x9e3779b97f4a7c15ull) >> 49;
    for (uint32_t i = 0; i < CACHE_PROBES; i++) {
        struct cache_entry *e = &cache[(h + i) & (CACHE_SIZE - 1)];
        uint64_t key = __atomic_load_n(&e->pc, __ATOMIC_ACQUIRE);
        if (key == pc) {
            *out = e->rule;
            return true;
        }
        if (key == 0)
            return false;
    }
    return false;
}

static void cache_store(uint64_t pc, const struct rule *r)
{
    uint64_t h = (pc * 0x9e3779b97f4a7c15ull) >> 49;
    for (uint32_t i = 0; i < CACHE_PROBES; i++) {
        struct cache_entry *e = &cache[(h + i) & (CACHE_SIZE - 1)];
        uint64_t key = __atomic_load_n(&e->pc, __ATOMIC_ACQUIRE);
        if (key == pc)
            return;
        if (key != 0)
            continue;
        if (!__atomic_compare_exchange_n(&e->pc, &key, WRITING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;   /* someone else took the slot: look further */
        e->rule = *r;
        __atomic_store_n(&e->pc, pc, __ATOMIC_RELEASE);
        return;
    }
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

static const uint8_t *find_fde(const uint8_t *hdr, const uint8_t *map_end, uint64_t pc)
{
    struct cursor c = { hdr, map_end, false };
    uint8_t version = (uint8_t)read_fixed(&c, 1), frame_enc = (uint8_t)read_fixed(&c, 1);
    uint8_t count_enc = (uint8_t)read_fixed(&c, 1), table_enc = (uint8_t)read_fixed(&c, 1);
    if (c.bad || version != 1 || table_enc != (PE_DATAREL | 0x0b) || count_enc == PE_OMIT || frame_enc == PE_OMIT)
        return NULL;   /* no sorted table (or not the usual one): no stack past here */
    read_encoded(&c, frame_enc, (uint64_t)(uintptr_t)hdr);
    uint64_t count = read_encoded(&c, count_enc, (uint64_t)(uintptr_t)hdr);
    if (c.bad || count == 0 || count > (uint64_t)(map_end - c.p) / 8)
        return NULL;
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
    if (base + (uint64_t)(int64_t)table[2 * lo] > pc)
        return NULL;
    return (const uint8_t *)(uintptr_t)(base + (uint64_t)(int64_t)table[2 * lo + 1]);
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
    return !c.bad && cie->ra_column == REG_RA;
}

/* ---- running the CFA program up to pc ---- */

struct regs_state {
    uint8_t cfa_reg;
    bool cfa_expression;
    int64_t cfa_offset;
    uint8_t rbp, ra;        /* RULE_* */
    int64_t rbp_at, ra_at;  /* RULE_OFFSET: CFA + this */
};

#define STATE_STACK 8

struct cfa_machine {
    struct regs_state now, initial, saved[STATE_STACK];
    int depth;
    const struct cie *cie;
};

static void set_rule(struct cfa_machine *m, uint64_t reg, uint8_t kind, int64_t at)
{
    if (reg == REG_RBP) {
        m->now.rbp = kind;
        m->now.rbp_at = at;
    } else if (reg == REG_RA) {
        m->now.ra = kind;
        m->now.ra_at = at;
    }
}

static void restore_rule(struct cfa_machine *m, uint64_t reg)
{
    if (reg == REG_RBP) {
        m->now.rbp = m->initial.rbp;
        m->now.rbp_at = m->initial.rbp_at;
    } else if (reg == REG_RA) {
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
        case 2: set_rule(m, op & 0x3f, RULE_OFFSET, (int64_t)read_uleb(&c) * da); continue;
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
            case 0x05: reg = read_uleb(&c); set_rule(m, reg, RULE_OFFSET, (int64_t)read_uleb(&c) * da); continue;
            case 0x06: restore_rule(m, read_uleb(&c)); continue;
            case 0x07: set_rule(m, read_uleb(&c), RULE_UNDEFINED, 0); continue;
            case 0x08: set_rule(m, read_uleb(&c), RULE_SAME, 0); continue;
            case 0x09: reg = read_uleb(&c); read_uleb(&c); set_rule(m, reg, RULE_OTHER, 0); continue;
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
            case 0x10: reg = read_uleb(&c); skip_block(&c); set_rule(m, reg, RULE_OTHER, 0); continue;
            case 0x11: reg = read_uleb(&c); set_rule(m, reg, RULE_OFFSET, read_sleb(&c) * da); continue;
            case 0x12: m->now.cfa_reg = (uint8_t)read_uleb(&c); m->now.cfa_offset = read_sleb(&c) * da;
                       m->now.cfa_expression = false; continue;
            case 0x13: m->now.cfa_offset = read_sleb(&c) * da; continue;
            case 0x14: reg = read_uleb(&c); read_uleb(&c); set_rule(m, reg, RULE_OTHER, 0); continue;
            case 0x15: reg = read_uleb(&c); read_sleb(&c); set_rule(m, reg, RULE_OTHER, 0); continue;
            case 0x16: reg = read_uleb(&c); skip_block(&c); set_rule(m, reg, RULE_OTHER, 0); continue;
            case 0x2e: read_uleb(&c); continue;                           /* GNU_args_size */
            case 0x2f: reg = read_uleb(&c); set_rule(m, reg, RULE_OFFSET, -(int64_t)read_uleb(&c) * da); continue;
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

/* Decode the rule for code at pc (already the call site for return
 * addresses). */
static bool decode_rule(uint64_t pc, struct rule *out)
{
    struct dl_find_object info;
    if (_dl_find_object((void *)(uintptr_t)pc, &info) != 0 || !info.dlfo_eh_frame)
        return false;
    const uint8_t *map_end = info.dlfo_map_end;
    const uint8_t *fde = find_fde(info.dlfo_eh_frame, map_end, pc);
    struct cursor body;
    if (!fde || !entry_bounds(fde, map_end, &body))
        return false;
    const uint8_t *id_at = body.p;
    uint32_t cie_offset = (uint32_t)read_fixed(&body, 4);
    struct cie cie;
    if (body.bad || cie_offset == 0 || !parse_cie(id_at - cie_offset, map_end, &cie))
        return false;
    uint64_t start = read_encoded(&body, cie.fde_enc, 0);
    uint64_t range = read_encoded(&body, cie.fde_enc & PE_FORMAT, 0);
    if (body.bad || pc < start || pc - start >= range)
        return false;
    if (cie.has_z)
        skip_block(&body);
    struct cfa_machine m = { .cie = &cie };
    m.now = (struct regs_state){ .cfa_reg = REG_RSP, .cfa_offset = 8, .rbp = RULE_SAME, .ra = RULE_OFFSET, .ra_at = -8 };
    if (!run_cfa_program(&m, cie.insns, 0, UINT64_MAX, cie.fde_enc))
        return false;
    m.initial = m.now;
    m.depth = 0;
    if (body.bad || !run_cfa_program(&m, body, start, pc, cie.fde_enc))
        return false;
    const struct regs_state *s = &m.now;
    *out = (struct rule){ .usable = 1 };
    if (s->ra == RULE_UNDEFINED) {
        out->outermost = 1;
        return true;
    }
    if (s->cfa_expression || (s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP) || s->ra != RULE_OFFSET ||
        (s->rbp != RULE_SAME && s->rbp != RULE_OFFSET) || s->cfa_offset != (int32_t)s->cfa_offset ||
        s->ra_at != (int16_t)s->ra_at || s->rbp_at != (int16_t)s->rbp_at)
        return false;
    out->cfa_reg = s->cfa_reg;
    out->cfa_offset = (int32_t)s->cfa_offset;
    out->ra_offset = (int16_t)s->ra_at;
    out->rbp_rule = s->rbp;
    out->rbp_offset = (int16_t)s->rbp_at;
    return true;
}

static struct rule rule_for(uint64_t pc)
{
    struct rule r;
    if (cache && cache_lookup(pc, &r))
        return r;
    if (!decode_rule(pc, &r))
        r = (struct rule){ .usable = 0 };
    if (cache)
        cache_store(pc, &r);
    return r;
}

/* ---- reading our own stack ---- */

static __thread uint64_t verified_lo __attribute__((tls_model("initial-exec"))) = 0xa5c3f00dd15ea5e5ull;
static __thread uint64_t verified_hi __attribute__((tls_model("initial-exec"))) = 0xa5c3f00dd15ea5e5ull;

#define PAGE 4096ull
#define VERIFIED_MASK 0xa5c3f00dd15ea5e5ull   /* (registry.h's LW_ADDR_MASK) */

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

/* The word at addr, if it lies in mapped stack above sp. The verified range
 * is kept masked (like every address in our records): our TLS is part of
 * every thread's static TLS, and a plain stack address there would look to
 * a reachability scan like a pointer into this thread's frames. */
static bool read_stack_word(uint64_t sp, uint64_t addr, uint64_t *out)
{
    if (addr < sp || (addr & 7))
        return false;
    uint64_t lo = verified_lo ^ VERIFIED_MASK, hi = verified_hi ^ VERIFIED_MASK;
    if (sp < lo || sp >= hi) {
        lo = sp & ~(PAGE - 1);
        hi = lo + PAGE;
    }
    bool ok = true;
    while (ok && addr + 8 > hi) {
        if (addr - hi > (64ull << 20) || !page_is_readable(hi))
            ok = false;
        else
            hi += PAGE;
    }
    verified_lo = lo ^ VERIFIED_MASK;
    verified_hi = hi ^ VERIFIED_MASK;
    if (!ok)
        return false;
    *out = *(const uint64_t *)(uintptr_t)addr;
    return true;
}

/* ---- the walk ---- */

void lw_unwind_init(void)
{
    void *p = mmap(NULL, sizeof(struct cache_entry) * CACHE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cache = p == MAP_FAILED ? NULL : p;
}

void lw_unwind_extent(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)cache;
    *hi = cache ? (uintptr_t)cache + sizeof(struct cache_entry) * CACHE_SIZE : 0;
}

__attribute__((noinline)) int lw_unwind(uint64_t *pcs, int max)
{
    uint64_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
    const uint64_t stack_floor = sp;
    bool bp_known = true;
    int n = 0;
    for (uint64_t lookup = pc; n < max;) {
        struct rule r = rule_for(lookup);
        if (!r.usable || r.outermost || (r.cfa_reg == REG_RBP && !bp_known))
            break;
        uint64_t cfa = (r.cfa_reg == REG_RSP ? sp : bp) + (uint64_t)(int64_t)r.cfa_offset, ra;
        if (cfa <= sp || !read_stack_word(stack_floor, cfa + (uint64_t)(int64_t)r.ra_offset, &ra) || ra == 0)
            break;
        if (r.rbp_rule == RULE_OFFSET)
            bp_known = read_stack_word(stack_floor, cfa + (uint64_t)(int64_t)r.rbp_offset, &bp);
        sp = cfa;
        pcs[n++] = ra;
        lookup = ra - 1;   /* the call instruction: the return address may begin the next function */
    }
    return n;
}
