/*
 * hooks.c — the wrappers around every hooked call, generated from hooks.def,
 * plus the hooks that do not fit the table: pthread_create and thrd_create
 * (threads are born here), syscall (raw futex waits) and the internal-thread
 * starter.
 *
 * Fast path: resolve once, one relaxed read of the object's lock word, and a
 * tail call to the real function when the call will not park. Slow path:
 * record a wait (kind, object, owner, deadline, interned stack) in the
 * thread's own slot, call the real function, restore the previous record.
 * errno is preserved around everything of ours; the real function's return
 * value and errno reach the caller untouched; a thread cancelled inside a
 * cancellation point leaves no record behind (pthread_cleanup_push).
 */
#include "interpose/hookcore.h"
#include "base/util.h"
#include "base/glibc_sync.h"
#include "base/lifecycle.h"
#include "interpose/interpose.h"
#include "record/channels.h"
#include "record/registry.h"
#include "record/stacks.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

/* ---- reading glibc 2.36 objects (the caller's own live object, as glibc
 * reads it; the decoding is base/glibc_sync.h's) ---- */

/* The fast-path test: a relaxed read of the lock word. A free mutex is 0. */
static inline bool mutex_may_park(pthread_mutex_t *m)
{
    return __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) != 0;
}

/* Per kind, whether a call that looked like it may park really will (the
 * slow path's closer look at a mutex: ceiling, owner relocking). */
static bool wait_will_park(enum lw_wait_kind kind, uintptr_t object)
{
    if (kind == LW_WAIT_MUTEX && object)
        return lw_mutex_lock_parks(lw_mutex_words_of((pthread_mutex_t *)object), lw_gettid());
    return true;
}

static inline bool rwlock_read_will_park(pthread_rwlock_t *rw)
{
    return lw_rwlock_read_parks(__atomic_load_n(&rw->__data.__readers, __ATOMIC_RELAXED));
}

static inline bool rwlock_write_will_park(pthread_rwlock_t *rw)
{
    return lw_rwlock_write_parks(__atomic_load_n(&rw->__data.__readers, __ATOMIC_RELAXED));
}

static inline bool sem_will_park(sem_t *s)
{
    return lw_sem_wait_parks(__atomic_load_n((uint64_t *)(void *)s, __ATOMIC_RELAXED));
}

static clockid_t cond_clock(pthread_cond_t *cv)
{
    return lw_cond_clock(__atomic_load_n(&cv->__data.__wrefs, __ATOMIC_RELAXED));
}

/* Owner tid and process-shared flag of the object a wait is on. */
static void read_owner_and_sharing(enum lw_wait_kind kind, uintptr_t object, int32_t *owner, bool *shared)
{
    *owner = 0;
    *shared = false;
    if (!object)
        return;
    switch (kind) {
    case LW_WAIT_MUTEX: {
        struct lw_mutex_words words = lw_mutex_words_of((pthread_mutex_t *)object);
        *owner = lw_mutex_owner(words);
        *shared = lw_mutex_is_shared(words);
        break;
    }
    case LW_WAIT_RWLOCK_READ:
    case LW_WAIT_RWLOCK_WRITE:
        *owner = lw_rwlock_writer((pthread_rwlock_t *)object);
        *shared = lw_rwlock_is_shared((pthread_rwlock_t *)object);
        break;
    case LW_WAIT_COND:
        *shared = lw_cond_is_shared(__atomic_load_n(&((pthread_cond_t *)object)->__data.__wrefs, __ATOMIC_RELAXED));
        break;
    case LW_WAIT_SEM:
        *shared = lw_sem_is_shared(__atomic_load_n((int *)(object + LW_SEM_PRIVATE_OFFSET), __ATOMIC_RELAXED));
        break;
    default:
        break;
    }
}

/* ---- recording a wait on a memory object ---- */

static void wait_begin(struct lw_wait_frame *f, enum lw_wait_kind kind, uintptr_t object,
                       uint64_t deadline, int32_t owner, bool shared, uintptr_t aux)
{
    struct lw_wait_rec *w = lw_wait_begin(f);
    if (!w)
        return;
    w->kind = (uint8_t)kind;
    w->shared = shared;
    w->direction = LW_DIR_NONE;
    w->owner = owner;
    w->object_masked = object ? object ^ LW_ADDR_MASK : 0;
    w->aux_masked = aux ? aux ^ LW_ADDR_MASK : 0;
    w->fd = -1;
    w->flags = 0;
    w->set_masked[0] = w->set_masked[1] = w->set_masked[2] = 0;
    w->nfds = 0;
    lw_wait_stamp(f, w, lw_now_ns(), deadline);
}

static void wait_begin_on(struct lw_wait_frame *f, enum lw_wait_kind kind, uintptr_t object,
                          uintptr_t aux, uint64_t deadline)
{
    int32_t owner;
    bool shared;
    read_owner_and_sharing(kind, object, &owner, &shared);
    wait_begin(f, kind, object, deadline, owner, shared, aux);
    /* After the record: the first client may connect at once. */
    if (lw_may_start_server_in(kind))
        lw_lifecycle_first_activity();
}

/* ---- the generated wrappers ---- */

/* The wrapper is split so the exported function is only the fast path (no
 * stack frame: a load, a test and a tail jump through the real pointer); the
 * recording lives in a cold function of its own. Each real pointer starts at
 * a first-call function that binds it, so the fast path needs no NULL test. */
#define WAIT(ret, name, params, args, version, kind, may_park, object, aux, deadline, cancel) \
    static ret first_##name params;                                                         \
    static ret (*real_##name) params = first_##name;                                        \
    static __attribute__((noinline, cold)) ret first_##name params                          \
    {                                                                                       \
        lw_resolve((void **)&real_##name, #name, version);                                     \
        return real_##name args;                                                            \
    }                                                                                       \
    static __attribute__((noinline, cold)) ret slow_##name params                           \
    {                                                                                       \
        if (lw_hooks_bypassed() || !wait_will_park(kind, (uintptr_t)(object)))              \
            return real_##name args;                                                        \
        return LW_RECORDED_CALL(ret,                                                        \
            wait_begin_on(&frame_, kind, (uintptr_t)(object), (uintptr_t)(aux), (deadline)),    \
            real_##name args, cancel);                                                      \
    }                                                                                       \
    LW_EXPORT ret name params                                                               \
    {                                                                                       \
        if (LW_LIKELY(!(may_park)))                                                         \
            return real_##name args;                                                        \
        return slow_##name args;                                                            \
    }
#include "hooks.def"
#undef WAIT

/* ---- syscall(): raw futex waits (C++20 atomic::wait, hand-rolled locks) ---- */

static long (*real_syscall)(long, ...);

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif

struct futex_waiter {   /* struct futex_waitv of linux/futex.h, which may be missing */
    uint64_t val, uaddr;
    uint32_t flags, reserved;
};

static inline bool futex_call_will_park(long nr, long op)
{
    if (nr == SYS_futex_waitv)
        return true;
    if (nr != SYS_futex)
        return false;
    switch (op & FUTEX_CMD_MASK) {
    case FUTEX_WAIT: case FUTEX_WAIT_BITSET: case FUTEX_LOCK_PI:
    case FUTEX_LOCK_PI2: case FUTEX_WAIT_REQUEUE_PI:
        return true;
    default:
        return false;
    }
}

static void futex_wait_begin(struct lw_wait_frame *f, long nr, long a1, long a2, long a4, long a5)
{
    uintptr_t object = (uintptr_t)a1;
    uint64_t deadline = NO_DEADLINE;
    int32_t owner = 0;
    bool shared = false;
    struct timespec t;
    if (nr == SYS_futex_waitv) {
        struct futex_waiter w;
        object = lw_copy_from_app(&w, (void *)a1, sizeof w) ? (uintptr_t)w.uaddr : 0;
        shared = object && !(w.flags & FUTEX_PRIVATE_FLAG);
        if (a4)
            deadline = lw_copy_from_app(&t, (void *)a4, sizeof t) ? lw_deadline_from_abs((clockid_t)a5, &t) : UNKNOWN_DEADLINE;
    } else {
        int cmd = (int)(a2 & FUTEX_CMD_MASK);
        shared = !(a2 & FUTEX_PRIVATE_FLAG);
        if (cmd == FUTEX_LOCK_PI || cmd == FUTEX_LOCK_PI2) {
            uint32_t word;
            if (lw_copy_from_app(&word, (void *)a1, sizeof word))
                owner = lw_futex_word_owner(word);
        }
        if (a4 && cmd == FUTEX_WAIT) {
            deadline = lw_rel_deadline_copied((const struct timespec *)a4);
        } else if (a4) {
            clockid_t clock = (cmd == FUTEX_LOCK_PI || (a2 & FUTEX_CLOCK_REALTIME)) ? CLOCK_REALTIME : CLOCK_MONOTONIC;
            deadline = lw_copy_from_app(&t, (void *)a4, sizeof t) ? lw_deadline_from_abs(clock, &t) : UNKNOWN_DEADLINE;
        }
    }
    wait_begin(f, LW_WAIT_FUTEX, object, deadline, owner, shared, 0);
}

/* Six longs are forwarded whatever the caller passed, exactly as glibc's own
 * assembly syscall() does (it loads the sixth from the caller's stack); with
 * fewer arguments that slot was never written, which AddressSanitizer would
 * flag, so this one function is not instrumented. */
LW_EXPORT __attribute__((no_sanitize("address"))) long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (LW_UNLIKELY(!real_syscall))
        lw_resolve((void **)&real_syscall, "syscall", NULL);
    if (LW_UNLIKELY(nr == SYS_clone || nr == SYS_clone3 || nr == SYS_fork || nr == SYS_vfork))
        lw_channels_shared();   /* another process may hold our fds: record/channels.h */
    if (LW_LIKELY(!futex_call_will_park(nr, a2)) || lw_hooks_bypassed())
        return real_syscall(nr, a1, a2, a3, a4, a5, a6);
    return LW_RECORDED_CALL(long, futex_wait_begin(&frame_, nr, a1, a2, a4, a5),
                            real_syscall(nr, a1, a2, a3, a4, a5, a6), 0);
}

/* ---- pthread_create: every thread's birth ---- */

static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* Claim a slot for the thread about to be created; NULL: create it untracked. */
static struct lw_slot *prepare_child(uintptr_t fn, void *arg)
{
    if (lw_hooks_bypassed() || !lw_registry_ready())
        return NULL;
    int saved_errno = errno;
    lw_lifecycle_first_activity();
    lw_bypass_enter();
    lw_registry_self();   /* make sure the parent is known */
    struct lw_slot *slot = lw_registry_prepare_child((void *(*)(void *))fn, arg, lw_stack_capture());
    lw_bypass_leave();
    errno = saved_errno;
    return slot;
}

LW_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (LW_UNLIKELY(!real_pthread_create))
        lw_resolve((void **)&real_pthread_create, "pthread_create", NULL);
    struct lw_slot *slot = prepare_child((uintptr_t)fn, arg);
    if (!slot)
        return real_pthread_create(th, attr, fn, arg);
    int rc = real_pthread_create(th, attr, lw_registry_child_trampoline, slot);
    if (rc != 0)
        lw_registry_abandon_child(slot);
    return rc;
}

/* C11 threads: glibc's thrd_create reaches pthread_create internally, past
 * our hook, and runs an int-returning routine; wrap it in a trampoline of
 * the same type. */
static int (*real_thrd_create)(thrd_t *, thrd_start_t, void *);

static int c11_trampoline(void *slot)
{
    void *arg;
    thrd_start_t fn = (thrd_start_t)lw_registry_child_enter(slot, &arg);
    return fn(arg);
}

LW_EXPORT int thrd_create(thrd_t *th, thrd_start_t fn, void *arg)
{
    if (LW_UNLIKELY(!real_thrd_create))
        lw_resolve((void **)&real_thrd_create, "thrd_create", NULL);
    struct lw_slot *slot = prepare_child((uintptr_t)fn, arg);
    if (!slot)
        return real_thrd_create(th, fn, arg);
    int rc = real_thrd_create(th, c11_trampoline, slot);
    if (rc != thrd_success)
        lw_registry_abandon_child(slot);
    return rc;
}

/* ---- _exit: leave no socket file behind ---- */

/* Programs that end with _exit() (dash's exit builtin, a child after a
 * failed exec) skip destructors; unlink our socket here too. unlink is
 * async-signal-safe, as _exit must stay. */
static void (*real__exit)(int);
static void (*real__Exit)(int);

LW_EXPORT __attribute__((noreturn)) void _exit(int status)
{
    if (LW_UNLIKELY(!real__exit))
        lw_resolve((void **)&real__exit, "_exit", NULL);
    lw_lifecycle_exiting();
    real__exit(status);
    __builtin_unreachable();
}

LW_EXPORT __attribute__((noreturn)) void _Exit(int status)
{
    if (LW_UNLIKELY(!real__Exit))
        lw_resolve((void **)&real__Exit, "_Exit", NULL);
    lw_lifecycle_exiting();
    real__Exit(status);
    __builtin_unreachable();
}

/* ---- the binding table, for start-up resolution and the `hooks` request ---- */

static const struct lw_binding bindings[] = {
#define WAIT(ret, name, params, args, version, kind, will_park, object, aux, deadline, cancel) \
    { #name, version, (void **)&real_##name },
#include "hooks.def"
#undef WAIT
    { "syscall", NULL, (void **)&real_syscall },
    { "pthread_create", NULL, (void **)&real_pthread_create },
    { "thrd_create", NULL, (void **)&real_thrd_create },
    { "_exit", NULL, (void **)&real__exit },
    { "_Exit", NULL, (void **)&real__Exit },
};

/* Every binding: this file's, then fdhooks.c's, then signals.c's. */
static const struct lw_binding *binding_at(size_t i)
{
    size_t own = sizeof bindings / sizeof bindings[0];
    if (i < own)
        return &bindings[i];
    i -= own;
    return i < lw_fd_binding_count ? &lw_fd_bindings[i] : &lw_signal_bindings[i - lw_fd_binding_count];
}

static size_t binding_count(void)
{
    return sizeof bindings / sizeof bindings[0] + lw_fd_binding_count + lw_signal_binding_count;
}

void lw_hooks_resolve_all(void)
{
    for (size_t i = 0; i < binding_count(); i++)
        lw_resolve(binding_at(i)->real, binding_at(i)->name, binding_at(i)->version);
}

size_t lw_hooks_describe(struct lw_hook_binding *out, size_t max)
{
    size_t n = binding_count();
    for (size_t i = 0; i < n && i < max; i++) {
        const struct lw_binding *b = binding_at(i);
        out[i].name = b->name;
        out[i].version = b->version;
        out[i].address = __atomic_load_n(b->real, __ATOMIC_ACQUIRE);
    }
    return n;
}
