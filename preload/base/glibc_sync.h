/*
 * glibc_sync.h — glibc 2.36's synchronisation objects, decoded in one place.
 *
 * What a mutex, rwlock, condvar, semaphore or PI futex word says about who
 * holds it and whether a caller will park, as pure functions of the object's
 * words. The hooks apply them to the caller's live object (relaxed loads, as
 * glibc itself reads it); the snapshot applies them to a copy it read with
 * process_vm_readv (the object may be freed under us); an attach from outside
 * applies them to words read from another process. The names of the bits are
 * glibc's own (nptl/pthreadP.h, nptl/pthread_rwlock_common.c,
 * nptl/pthread_cond_common.c, sysdeps/nptl/internaltypes.h).
 *
 * Lowest layer: includes nothing of ours.
 */
#ifndef LW_GLIBC_SYNC_H
#define LW_GLIBC_SYNC_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* A futex word that names its owner (PI futexes, robust and PI mutexes)
 * keeps the tid in its low 30 bits (linux/futex.h FUTEX_TID_MASK). */
#define LW_FUTEX_TID_MASK 0x3fffffffu

static inline int32_t lw_futex_word_owner(uint32_t word)
{
    return (int32_t)(word & LW_FUTEX_TID_MASK);
}

/* ---- pthread_mutex_t ---- */

/* Bits of __data.__kind (PTHREAD_MUTEX_*_NP internal flags). */
#define LW_MUTEX_KIND_ROBUST 16
#define LW_MUTEX_KIND_PRIO_INHERIT 32
#define LW_MUTEX_KIND_PRIO_PROTECT 64
#define LW_MUTEX_KIND_PSHARED 128
/* A priority-protected mutex keeps its ceiling above bit 19 of the lock. */
#define LW_MUTEX_PP_LOCK_BITS ((1 << 19) - 1)

/* The three words of a mutex that say who holds it. */
struct lw_mutex_words {
    int lock, kind, owner;
};

static inline struct lw_mutex_words lw_mutex_words_of(const pthread_mutex_t *m)
{
    struct lw_mutex_words w = {
        .lock = __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED),
        .kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED),
        .owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED),
    };
    return w;
}

/* The lock word without a priority ceiling: 0 when the mutex is free. */
static inline int lw_mutex_lock_bits(struct lw_mutex_words w)
{
    return (w.kind & LW_MUTEX_KIND_PRIO_PROTECT) ? (w.lock & LW_MUTEX_PP_LOCK_BITS) : w.lock;
}

/* The holder's tid, 0 when free. Robust and PI mutexes keep it in the lock
 * word itself; the others in __owner. */
static inline int32_t lw_mutex_owner(struct lw_mutex_words w)
{
    int lock = lw_mutex_lock_bits(w);
    if (lock == 0)
        return 0;
    if (w.kind & (LW_MUTEX_KIND_ROBUST | LW_MUTEX_KIND_PRIO_INHERIT))
        return lw_futex_word_owner((uint32_t)lock);
    return w.owner;
}

static inline bool lw_mutex_is_robust(struct lw_mutex_words w)
{
    return (w.kind & LW_MUTEX_KIND_ROBUST) != 0;
}

static inline bool lw_mutex_is_shared(struct lw_mutex_words w)
{
    return (w.kind & LW_MUTEX_KIND_PSHARED) != 0;
}

/* Whether thread `self` locking it now parks: a held mutex parks every
 * other thread; relocked by its owner, a normal or adaptive mutex parks for
 * ever (a self-deadlock) and recursive and error-checking ones return. */
static inline bool lw_mutex_lock_parks(struct lw_mutex_words w, int32_t self)
{
    int32_t owner = lw_mutex_owner(w);
    if (lw_mutex_lock_bits(w) == 0)
        return false;
    if (owner == 0 || owner != self)
        return true;
    int type = w.kind & 3;
    return type != PTHREAD_MUTEX_RECURSIVE && type != PTHREAD_MUTEX_ERRORCHECK;
}

/* ---- pthread_rwlock_t: __readers holds the phase, the writer bit and the
 * reader count above bit 3 ---- */

#define LW_RWLOCK_WRPHASE 1u
#define LW_RWLOCK_WRLOCKED 2u
#define LW_RWLOCK_READER_SHIFT 3

static inline bool lw_rwlock_read_parks(unsigned readers)
{
    return (readers & (LW_RWLOCK_WRPHASE | LW_RWLOCK_WRLOCKED)) != 0;
}

static inline bool lw_rwlock_write_parks(unsigned readers)
{
    return (readers >> LW_RWLOCK_READER_SHIFT) != 0 || (readers & LW_RWLOCK_WRLOCKED) != 0;
}

/* The writer holding it (__cur_writer), 0 when none. */
static inline int32_t lw_rwlock_writer(const pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__cur_writer, __ATOMIC_RELAXED);
}

static inline bool lw_rwlock_is_shared(const pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__shared, __ATOMIC_RELAXED) != 0;
}

/* ---- pthread_cond_t: __wrefs bit 0 is process-shared, bit 1 the clock ---- */

static inline clockid_t lw_cond_clock(unsigned wrefs)
{
    return (wrefs & 2u) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

static inline bool lw_cond_is_shared(unsigned wrefs)
{
    return (wrefs & 1u) != 0;
}

/* ---- sem_t (64-bit layout): the value in the low 32 bits of the first
 * word, the futex "private" argument at offset 8 (0 private, 128 shared) ---- */

#define LW_SEM_PRIVATE_OFFSET 8

static inline bool lw_sem_wait_parks(uint64_t first_word)
{
    return (uint32_t)first_word == 0;
}

static inline bool lw_sem_is_shared(int private_word)
{
    return private_word != 0;
}

#endif
