/*
 * ownalloc.c — malloc, calloc, realloc and free for the preload's own code,
 * and the set of blocks they hand out (see ownalloc.h for why).
 *
 * The four functions are hidden definitions: the linker binds every call
 * the preload's objects make (the shared engine's too) to them, and the
 * program, its libraries and glibc itself keep calling the program's
 * allocator. That allocator (the first malloc in the process's global scope:
 * the executable's, a preloaded one, or glibc's; looked up by name, since
 * ours is not in that scope) still gives the memory, so a block of ours can
 * be freed by ours, and a block glibc made for us (open_memstream's text,
 * strdup's copy: handed to the program's API callers) freed by ours too: it
 * is not in the set, and goes to that allocator's free.
 *
 * The rule this file cannot check: a block of ours is freed by our free
 * only. Handing one to code that frees or grows it (getline's buffer, a
 * string the program will free) would leave its address in the set after
 * the program got the chunk back: a scan would then take a live block of
 * the program's for none, and a proof could be false.
 *
 * The set: open addressing on the block's address, in a mapping of its own
 * (never the heap it describes), under one lock held only for the table's
 * update, never across a call into the allocator. A block the table could
 * not record (no memory to grow it) is simply not known as ours: a scan
 * counts it as the program's, which costs a proof at worst, never makes a
 * false one.
 */
#include "base/ownalloc.h"
#include "base/util.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN void *malloc(size_t size);
HIDDEN void *calloc(size_t n, size_t size);
HIDDEN void *realloc(void *p, size_t size);
HIDDEN void free(void *p);

/* glibc's own entry points: the allocator before the lookup below is done
 * (it is, in the constructor, before any thread of ours exists). */
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);

static struct allocator {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
} program = { __libc_malloc, __libc_calloc, __libc_realloc, __libc_free };
static bool bound;

void lw_ownalloc_init(void)
{
    if (__atomic_load_n(&bound, __ATOMIC_ACQUIRE))
        return;
    struct allocator a = {
        (void *(*)(size_t))dlsym(RTLD_DEFAULT, "malloc"),
        (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "calloc"),
        (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "realloc"),
        (void (*)(void *))dlsym(RTLD_DEFAULT, "free"),
    };
    /* All four from one allocator, or glibc's four: never a mix. Blocks
     * made before this point came from glibc's and are freed here later:
     * only a program with an allocator of its own and a block of ours that
     * old would mix them, and the constructor binds before any. */
    if (a.malloc && a.calloc && a.realloc && a.free)
        program = a;
    __atomic_store_n(&bound, true, __ATOMIC_RELEASE);
}

/* ---- the set ---- */

#define EMPTY 0u
#define TOMBSTONE 1u   /* (blocks are 16-byte aligned: no address is 1) */
#define FIRST_CAP 1024u

static lw_lock_t lock = LW_LOCK_INIT;
static uint64_t *slots;      /* cap entries, a mapping of its own */
static size_t cap, used, live;   /* used: live + tombstones */

static size_t slot_of(uint64_t addr, size_t capacity)
{
    return (size_t)(((addr >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (capacity - 1);
}

static void put(uint64_t *table, size_t capacity, uint64_t addr)
{
    size_t i = slot_of(addr, capacity);
    while (table[i] != EMPTY)
        i = (i + 1) & (capacity - 1);
    table[i] = addr;
}

/* Room for one more: a table twice the live count's need, tombstones gone. */
static bool make_room(void)
{
    if (slots && (used + 1) * 2 <= cap)
        return true;
    size_t want = FIRST_CAP;
    while (want < (live + 1) * 4)
        want *= 2;
    uint64_t *table = mmap(NULL, want * sizeof *table, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (table == MAP_FAILED)
        return false;
    for (size_t i = 0; slots && i < cap; i++)
        if (slots[i] > TOMBSTONE)
            put(table, want, slots[i]);
    if (slots)
        munmap(slots, cap * sizeof *slots);
    slots = table;
    cap = want;
    used = live;
    return true;
}

static void remember(void *p)
{
    if (!p)
        return;
    lw_lock(&lock);
    if (make_room()) {
        put(slots, cap, (uint64_t)(uintptr_t)p);
        used++;
        live++;
    }
    lw_unlock(&lock);
}

static void forget(void *p)
{
    uint64_t addr = (uint64_t)(uintptr_t)p;
    lw_lock(&lock);
    for (size_t i = slots ? slot_of(addr, cap) : 0; slots && slots[i] != EMPTY; i = (i + 1) & (cap - 1))
        if (slots[i] == addr) {
            slots[i] = TOMBSTONE;
            live--;
            break;
        }
    lw_unlock(&lock);
}

/* ---- the four functions ---- */

static const struct allocator *allocator(void)
{
    if (!__atomic_load_n(&bound, __ATOMIC_ACQUIRE))
        lw_ownalloc_init();
    return &program;
}

void *malloc(size_t size)
{
    void *p = allocator()->malloc(size);
    remember(p);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = allocator()->calloc(n, size);
    remember(p);
    return p;
}

void *realloc(void *p, size_t size)
{
    if (p)
        forget(p);
    void *q = allocator()->realloc(p, size);
    if (q)
        remember(q);
    else if (p && size)
        remember(p);   /* it failed: p is still ours */
    return q;
}

void free(void *p)
{
    if (!p)
        return;
    forget(p);
    allocator()->free(p);
}

/* ---- for the scan ---- */

/* Only glibc's chunks are walked, and only their size words mean anything
 * to the scan: with another allocator none are listed. */
static bool allocator_is_glibcs(void)
{
    return allocator()->malloc == __libc_malloc;
}

size_t lw_own_blocks(struct lw_own_block *out, size_t room)
{
    size_t n = 0;
    if (!allocator_is_glibcs())
        return 0;
    lw_lock(&lock);
    for (size_t i = 0; slots && i < cap; i++) {
        if (slots[i] <= TOMBSTONE)
            continue;
        if (n < room) {
            /* the chunk's size word, just below the address (read without
             * faulting: another allocator may keep nothing there) */
            out[n].addr = slots[i];
            if (!lw_read_memory(&out[n].size_word, (uintptr_t)slots[i] - 8, 8))
                out[n].size_word = 0;
        }
        n++;
    }
    lw_unlock(&lock);
    return n;
}

void lw_ownalloc_extent(uintptr_t *lo, uintptr_t *hi)
{
    lw_lock(&lock);
    *lo = (uintptr_t)slots;
    *hi = slots ? (uintptr_t)(slots + cap) : 0;
    lw_unlock(&lock);
}

void lw_ownalloc_fork_prepare(void) { lw_lock(&lock); }
void lw_ownalloc_fork_parent(void) { lw_unlock(&lock); }
void lw_ownalloc_fork_child(void) { lock = (lw_lock_t)LW_LOCK_INIT; }
