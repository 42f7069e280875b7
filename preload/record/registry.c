/*
 * registry.c — the thread table: slots, adoption, creation, exit, the exit
 * ring and the per-slot seqlock that lets hooks publish waits without locks.
 *
 * Why this shape: hooks run on the application's threads, possibly inside
 * signal handlers, so they may not allocate or lock. Every thread therefore
 * owns one preallocated slot, found through an initial-exec TLS pointer, and is
 * the only writer of its wait record. Slots are recycled through a lock-free
 * free list (a Treiber stack with a tag against ABA); the table never grows,
 * so a million create/exit cycles leave its memory flat.
 */
#include "record/registry.h"
#include "base/util.h"
#include "record/stacks.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>


struct exit_entry {
    uint32_t seq;
    int32_t tid;
    char name[16];
    uint64_t exit_ns;
    uint64_t start_routine;
    uint64_t pthread;
    uint32_t create_stack;
};

static struct lw_slot *slots;            /* LW_MAX_THREADS entries */
static struct lw_wait_rec (*displaced)[LW_NESTED_WAITS];   /* per slot: records nested waits displaced */
static struct exit_entry *exit_ring;     /* LW_EXIT_RING entries */
static uint64_t free_head;               /* (tag << 32) | (index + 1) */
static uint32_t high_water;              /* slots ever handed out */
static uint64_t full_count;              /* claims that found every slot taken */
static uint64_t exit_pos;
static uint64_t n_created, n_exited;
static uint32_t n_live, n_peak;
static pthread_key_t exit_key;
static bool ready;

#define MAX_INTERNAL 8
static pid_t internal_tids[MAX_INTERNAL];

__thread struct lw_slot *lw_self_slot __attribute__((tls_model("initial-exec")));
__thread int lw_bypass_depth __attribute__((tls_model("initial-exec")));

void lw_bypass_enter(void) { lw_bypass_depth++; }
void lw_bypass_leave(void) { lw_bypass_depth--; }
bool lw_registry_ready(void) { return __atomic_load_n(&ready, __ATOMIC_ACQUIRE); }

/* ---- slot allocation ---- */

static struct lw_slot *pop_free_slot(void)
{
    uint64_t head = __atomic_load_n(&free_head, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t idx1 = (uint32_t)head;
        if (idx1 == 0)
            return NULL;
        uint32_t next = __atomic_load_n(&slots[idx1 - 1].next_free, __ATOMIC_RELAXED);
        uint64_t repl = ((head >> 32) + 1) << 32 | next;
        if (__atomic_compare_exchange_n(&free_head, &head, repl, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return &slots[idx1 - 1];
    }
}

static void push_free_slot(struct lw_slot *s)
{
    uint32_t idx1 = (uint32_t)(s - slots) + 1;
    uint64_t head = __atomic_load_n(&free_head, __ATOMIC_RELAXED);
    for (;;) {
        __atomic_store_n(&s->next_free, (uint32_t)head, __ATOMIC_RELAXED);
        uint64_t repl = ((head >> 32) + 1) << 32 | idx1;
        if (__atomic_compare_exchange_n(&free_head, &head, repl, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            return;
    }
}

/* Claim a slot and move it FREE -> STARTING. NULL when the table is full. */
static struct lw_slot *claim_slot(void)
{
    struct lw_slot *s = pop_free_slot();
    if (!s) {
        uint32_t idx = __atomic_load_n(&high_water, __ATOMIC_RELAXED);
        do {
            if (idx >= LW_MAX_THREADS) {
                __atomic_add_fetch(&full_count, 1, __ATOMIC_RELAXED);
                return NULL;
            }
        } while (!__atomic_compare_exchange_n(&high_water, &idx, idx + 1, true, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
        s = &slots[idx];
    }
    __atomic_store_n(&s->state, LW_SLOT_STARTING, __ATOMIC_RELEASE);
    return s;
}

/* Begin/end a write of a slot's fields under its sequence counter. */
static void slot_write_begin(struct lw_slot *s)
{
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq | 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void slot_write_end(struct lw_slot *s)
{
    uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELEASE);
}

static void count_live_thread(void)
{
    uint32_t live = __atomic_add_fetch(&n_live, 1, __ATOMIC_RELAXED);
    uint32_t peak = __atomic_load_n(&n_peak, __ATOMIC_RELAXED);
    while (live > peak && !__atomic_compare_exchange_n(&n_peak, &peak, live, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void fill_identity(struct lw_slot *s, uint32_t origin, int32_t parent, uint64_t fn, uint32_t stack)
{
    slot_write_begin(s);
    s->tid = 0;
    s->parent_tid = parent;
    s->origin = origin;
    s->create_stack = stack;
    s->pthread = 0;
    s->start_routine = fn;
    s->birth_ns = lw_stamp_ns();
    memset(&s->wait, 0, sizeof s->wait);
    s->wait.fd = -1;
    slot_write_end(s);
}

/* The running thread takes ownership of a STARTING slot. */
static void become_owner(struct lw_slot *s)
{
    slot_write_begin(s);
    s->tid = lw_gettid();
    s->pthread = (uint64_t)pthread_self();
    s->arg = 0;
    slot_write_end(s);
    __atomic_store_n(&s->state, LW_SLOT_LIVE, __ATOMIC_RELEASE);
    lw_self_slot = s;
    pthread_setspecific(exit_key, s);
}

/* ---- exit ---- */

static void record_exit(const struct lw_slot *s)
{
    uint64_t pos = __atomic_fetch_add(&exit_pos, 1, __ATOMIC_RELAXED);
    struct exit_entry *e = &exit_ring[pos % LW_EXIT_RING];
    uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
    __atomic_store_n(&e->seq, seq | 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    e->tid = s->tid;
    memset(e->name, 0, sizeof e->name);
    if (s->tid == lw_gettid())
        prctl(PR_GET_NAME, e->name, 0, 0, 0);
    e->exit_ns = lw_stamp_ns();
    e->start_routine = s->start_routine;
    e->pthread = s->pthread;
    e->create_stack = s->create_stack;
    __atomic_store_n(&e->seq, (seq | 1u) + 1, __ATOMIC_RELEASE);
}

/* Free a LIVE slot exactly once (the owner and the sweep may race). */
static void release_live_slot(struct lw_slot *s)
{
    uint32_t expected = LW_SLOT_LIVE;
    if (!__atomic_compare_exchange_n(&s->state, &expected, LW_SLOT_FREE, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    record_exit(s);
    slot_write_begin(s);
    s->tid = 0;
    s->wait.kind = LW_WAIT_NONE;
    slot_write_end(s);
    __atomic_add_fetch(&n_exited, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&n_live, 1, __ATOMIC_RELAXED);
    push_free_slot(s);
}

/* pthread key destructor: runs late in every exiting pthread (after the start
 * routine and C++ thread_local destructors), also on cancel and pthread_exit. */
static void on_thread_exit(void *p)
{
    int saved = errno;
    struct lw_slot *s = p;
    lw_self_slot = LW_SLOT_NONE;
    if (s && s != LW_SLOT_NONE)
        release_live_slot(s);
    errno = saved;
}

/* ---- public entry points ---- */

void lw_registry_init(void)
{
    size_t slot_bytes = sizeof(struct lw_slot) * LW_MAX_THREADS;
    size_t ring_bytes = sizeof(struct exit_entry) * LW_EXIT_RING;
    size_t nested_bytes = sizeof *displaced * LW_MAX_THREADS;
    void *p = mmap(NULL, slot_bytes + ring_bytes + nested_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return;
    slots = p;
    exit_ring = (struct exit_entry *)((char *)p + slot_bytes);
    displaced = (struct lw_wait_rec (*)[LW_NESTED_WAITS])((char *)p + slot_bytes + ring_bytes);
    if (pthread_key_create(&exit_key, on_thread_exit) != 0)
        return;
    __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
    /* The thread running the constructor is normally the main thread. */
    lw_registry_self();
}

struct lw_slot *lw_registry_self_slow(void)
{
    struct lw_slot *s = lw_self_slot;
    if (s != NULL)
        return s == LW_SLOT_NONE ? NULL : s;
    if (!lw_registry_ready())
        return NULL;
    s = claim_slot();
    if (!s) {
        lw_self_slot = LW_SLOT_NONE;
        return NULL;
    }
    lw_bypass_enter();   /* (a hook adopting its thread: nothing here may record) */
    pid_t tid = lw_gettid();
    bool is_main = tid == getpid();
    fill_identity(s, is_main ? LW_ORIGIN_MAIN : LW_ORIGIN_ADOPTED, 0, 0, 0);
    if (is_main)
        s->birth_ns = lw_start_ns;
    count_live_thread();
    become_owner(s);
    lw_bypass_leave();
    return s;
}

struct lw_slot *lw_registry_prepare_child(void *(*fn)(void *), void *arg, uint32_t create_stack)
{
    if (!lw_registry_ready())
        return NULL;
    struct lw_slot *s = claim_slot();
    if (!s)
        return NULL;
    fill_identity(s, LW_ORIGIN_PTHREAD, lw_gettid(), (uint64_t)(uintptr_t)fn, create_stack);
    s->arg = (uint64_t)(uintptr_t)arg;
    return s;
}

void lw_registry_abandon_child(struct lw_slot *s)
{
    __atomic_store_n(&s->state, LW_SLOT_FREE, __ATOMIC_RELEASE);
    push_free_slot(s);
}

uintptr_t lw_registry_child_enter(void *p, void **arg)
{
    struct lw_slot *s = p;
    uintptr_t fn = (uintptr_t)s->start_routine;
    *arg = (void *)(uintptr_t)s->arg;
    __atomic_add_fetch(&n_created, 1, __ATOMIC_RELAXED);
    count_live_thread();
    become_owner(s);
    return fn;
}

void *lw_registry_child_trampoline(void *p)
{
    void *arg;
    void *(*fn)(void *) = (void *(*)(void *))lw_registry_child_enter(p, &arg);
    return fn(arg);
}

void lw_registry_mark_self_internal(void)
{
    pid_t tid = lw_gettid();
    for (int i = 0; i < MAX_INTERNAL; i++) {
        pid_t expected = 0;
        if (__atomic_compare_exchange_n(&internal_tids[i], &expected, tid, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            break;
    }
    lw_self_slot = LW_SLOT_NONE;
}

bool lw_is_internal_tid(pid_t tid)
{
    for (int i = 0; i < MAX_INTERNAL; i++)
        if (__atomic_load_n(&internal_tids[i], __ATOMIC_ACQUIRE) == tid)
            return true;
    return false;
}

/* The depth of nested waits each slot's owner is in (owner-only). */
static __thread uint32_t nested_depth __attribute__((tls_model("initial-exec")));

struct lw_wait_rec *lw_wait_open(struct lw_slot *s, struct lw_wait_frame *f)
{
    f->slot = s;
    f->displaced = 0;
    if (__builtin_expect(s->wait.kind != LW_WAIT_NONE, 0)) {
        /* A wait inside a wait: a signal handler's (or a record a
         * cancellation or a longjmp left behind, kept alike). */
        if (nested_depth < LW_NESTED_WAITS) {
            displaced[s - slots][nested_depth++] = s->wait;
            f->displaced = 1;
        }
    }
    slot_write_begin(s);
    return &s->wait;
}

void lw_wait_close(struct lw_slot *s) { slot_write_end(s); }

void lw_wait_closed(struct lw_wait_frame *f)
{
    struct lw_slot *s = f->slot;
    if (!s)
        return;
    slot_write_begin(s);
    if (__builtin_expect(f->displaced, 0) && nested_depth > 0)
        s->wait = displaced[s - slots][--nested_depth];
    else
        s->wait.kind = LW_WAIT_NONE;
    slot_write_end(s);
}

/* A consistent copy of slot s. A writer preempted inside its (short) write
 * leaves the sequence odd for as long as it is off the CPU: after a few
 * spins, yield to let it finish, a bounded number of times (a thread
 * stopped mid-write by a debugger would otherwise hold us for ever). false:
 * no consistent copy, and the thread is seen only through /proc. */
#define READ_SPINS 64
#define READ_YIELDS 200

static bool read_consistent(const struct lw_slot *s, struct lw_slot *copy, uint32_t *seq)
{
    for (int tries = 0; tries < READ_SPINS + READ_YIELDS; tries++) {
        if (tries >= READ_SPINS)
            sched_yield();
        uint32_t before = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (before & 1u)
            continue;
        memcpy(copy, (const void *)s, sizeof *copy);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == before) {
            *seq = before;
            return true;
        }
    }
    return false;
}

/* The stack of the wait in copy (read at sequence number seq), walked from
 * the frame its hook recorded, or remembered from an earlier reader of the
 * same record. false: the thread left that wait meanwhile, so what the walk
 * read may be anything. */
static bool walk_wait_stack(const struct lw_slot *s, uint32_t seq, struct lw_slot *copy)
{
    uint64_t walked = __atomic_load_n(&s->walked_stack, __ATOMIC_ACQUIRE);
    if ((uint32_t)(walked >> 32) == seq) {
        copy->wait.stack_id = (uint32_t)walked;
        return true;
    }
    const struct lw_wait_rec *w = &copy->wait;
    struct lw_frame_state at = { w->at_pc, w->at_sp_masked ^ LW_ADDR_MASK, w->at_bp_masked ^ LW_ADDR_MASK,
                                 w->at_ra_masked };
    uint32_t id = lw_stack_capture_at(&at);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq)
        return false;
    /* Only readers write it; any of them stores the same answer. */
    __atomic_store_n((uint64_t *)&s->walked_stack, (uint64_t)seq << 32 | id, __ATOMIC_RELEASE);
    copy->wait.stack_id = id;
    return true;
}

#define WALK_ATTEMPTS 4

bool lw_wait_read(const struct lw_slot *s, struct lw_slot *copy)
{
    for (int attempt = 0; attempt < WALK_ATTEMPTS; attempt++) {
        uint32_t seq;
        if (!read_consistent(s, copy, &seq))
            return false;
        const struct lw_wait_rec *w = &copy->wait;
        if (w->kind == LW_WAIT_NONE || w->stack_id || !w->at_pc || copy->tid == lw_gettid() ||
            walk_wait_stack(s, seq, copy))
            return true;
    }
    return true;   /* a thread that keeps moving: its latest wait, without a stack */
}

uint32_t lw_registry_high_water(void) { return __atomic_load_n(&high_water, __ATOMIC_ACQUIRE); }
struct lw_slot *lw_registry_slot(uint32_t index) { return &slots[index]; }

uint64_t lw_registry_full_count(void) { return __atomic_load_n(&full_count, __ATOMIC_RELAXED); }

void lw_registry_extent(uintptr_t *lo, uintptr_t *hi)
{
    *lo = (uintptr_t)slots;
    *hi = slots ? (uintptr_t)slots + sizeof(struct lw_slot) * LW_MAX_THREADS + sizeof(struct exit_entry) * LW_EXIT_RING +
                      sizeof *displaced * LW_MAX_THREADS
                : 0;
}

uint32_t lw_registry_live(void) { return __atomic_load_n(&n_live, __ATOMIC_RELAXED); }

void lw_registry_counters(uint64_t *created, uint64_t *exited, uint32_t *peak)
{
    *created = __atomic_load_n(&n_created, __ATOMIC_RELAXED);
    *exited = __atomic_load_n(&n_exited, __ATOMIC_RELAXED);
    *peak = __atomic_load_n(&n_peak, __ATOMIC_RELAXED);
}

size_t lw_registry_exited(struct lw_snap_exited *out, uint64_t *pthreads, size_t max, uint64_t now_ns)
{
    if (!exit_ring)
        return 0;
    uint64_t end = __atomic_load_n(&exit_pos, __ATOMIC_ACQUIRE);
    uint64_t begin = end > LW_EXIT_RING ? end - LW_EXIT_RING : 0;
    size_t n = 0;
    for (uint64_t pos = end; pos-- > begin && n < max;) {   /* newest first */
        const struct exit_entry *e = &exit_ring[pos % LW_EXIT_RING];
        struct exit_entry copy;
        uint32_t before = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (before & 1u)
            continue;
        memcpy(&copy, e, sizeof copy);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != before || copy.tid == 0)
            continue;
        struct lw_snap_exited *x = &out[n];
        x->tid = copy.tid;
        memcpy(x->name, copy.name, sizeof x->name);
        x->name[15] = 0;
        x->exited_ago = copy.exit_ns <= now_ns ? (double)(now_ns - copy.exit_ns) / 1e9 : 0;
        x->start_routine = copy.start_routine;
        x->create_stack = copy.create_stack;
        if (pthreads)
            pthreads[n] = copy.pthread;
        n++;
    }
    return n;
}

/* Threads that vanished without running their key destructor (raw clone
 * threads, SYS_exit) are noticed here and their slots reclaimed. */
void lw_registry_tick(void)
{
    if (!lw_registry_ready())
        return;
    pid_t pid = getpid();
    uint32_t hw = lw_registry_high_water();
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_slot *s = &slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != LW_SLOT_LIVE)
            continue;
        int32_t tid = __atomic_load_n(&s->tid, __ATOMIC_RELAXED);
        if (tid <= 0)
            continue;
        if (lw_raw_syscall6(SYS_tgkill, pid, tid, 0, 0, 0, 0) == -ESRCH)
            release_live_slot(s);
    }
}

/* In the child of fork only the forking thread exists. Keep its slot (moved
 * to index 0), forget every other thread, the exit ring and the counters. */
void lw_registry_fork_child(void)
{
    lw_forget_tid();
    memset(internal_tids, 0, sizeof internal_tids);
    if (!lw_registry_ready())
        return;
    struct lw_slot *mine = lw_self_slot;
    free_head = 0;
    exit_pos = 0;
    n_created = n_exited = 0;
    n_live = n_peak = 0;
    if (mine == LW_SLOT_NONE || mine == NULL) {
        high_water = 0;
        lw_self_slot = NULL;
        lw_registry_self();
        return;
    }
    if (mine != &slots[0]) {
        memcpy(&slots[0], mine, sizeof *mine);
        memcpy(displaced[0], displaced[mine - slots], sizeof displaced[0]);   /* (forked in a handler, in a wait) */
    }
    high_water = 1;
    struct lw_slot *s = &slots[0];
    s->seq &= ~1u;
    s->state = LW_SLOT_LIVE;
    s->tid = lw_gettid();
    s->origin = getpid() == s->tid ? LW_ORIGIN_MAIN : s->origin;
    s->pthread = (uint64_t)pthread_self();
    lw_self_slot = s;
    pthread_setspecific(exit_key, s);
    count_live_thread();
}
