/*
 * waits.c — a stopped thread's wait, inferred from its registers and its
 * innermost frames (see waits.h).
 *
 * The syscall says how it sleeps (futex, read, poll...); only the frames
 * say what for: every glibc primitive sleeps in futex. Names are compared
 * without glibc's decorations: leading underscores and __GI_ aliases,
 * symbol versions (@@GLIBC_2.3.2), clone suffixes (.constprop.0) and the
 * time64 suffix. Without debug symbols the public names (pthread_cond_wait
 * in .dynsym) still decide, a frame or two further out.
 */
#include "attach/waits.h"
#include "base/glibc_sync.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

/* The kernel's restart codes: a syscall cut short by our stop. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516

int lwa_interrupted_syscall(const struct user_regs_struct *r)
{
    long nr = (long)r->orig_rax, ret = (long)r->rax;
    if (nr < 0)
        return -1;
    if (ret == -ERESTARTSYS || ret == -ERESTARTNOINTR || ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK ||
        ret == -EINTR)
        return (int)nr;
    return -1;
}

/* ---- frame names ---- */

/* "__GI___pthread_cond_wait@@GLIBC_2.3.2" -> "pthread_cond_wait" */
static void plain_name(const char *name, char *out, size_t size)
{
    out[0] = 0;
    if (!name)
        return;
    if (strncmp(name, "__GI_", 5) == 0)
        name += 5;
    while (*name == '_')
        name++;
    size_t len = strcspn(name, "@.");
    if (len >= size)
        len = size - 1;
    memcpy(out, name, len);
    out[len] = 0;
    if (len > 2 && strcmp(out + len - 2, "64") == 0)
        out[len - 2] = 0;
}

enum frame_role {
    ROLE_NONE, ROLE_LOCK_WAIT, ROLE_MUTEX, ROLE_COND, ROLE_SEM, ROLE_JOIN, ROLE_RWLOCK_READ, ROLE_RWLOCK_WRITE,
    ROLE_BARRIER, ROLE_SYSCALL_FN, ROLE_PRIVATE_LOCK,
};

static const struct {
    const char *name;
    enum frame_role role;
} roles[] = {
    { "lll_lock_wait", ROLE_LOCK_WAIT },
    { "lll_lock_wait_private", ROLE_PRIVATE_LOCK },
    { "pthread_mutex_lock", ROLE_MUTEX }, { "pthread_mutex_lock_full", ROLE_MUTEX },
    { "pthread_mutex_timedlock", ROLE_MUTEX }, { "pthread_mutex_clocklock", ROLE_MUTEX },
    { "pthread_mutex_clocklock_common", ROLE_MUTEX }, { "pthread_mutex_cond_lock", ROLE_MUTEX },
    { "pthread_mutex_cond_lock_full", ROLE_MUTEX }, { "futex_lock_pi", ROLE_MUTEX }, { "mtx_lock", ROLE_MUTEX },
    { "mtx_timedlock", ROLE_MUTEX },
    { "pthread_cond_wait", ROLE_COND }, { "pthread_cond_wait_common", ROLE_COND },
    { "pthread_cond_timedwait", ROLE_COND }, { "pthread_cond_clockwait", ROLE_COND }, { "cnd_wait", ROLE_COND },
    { "cnd_timedwait", ROLE_COND },
    { "new_sem_wait_slow", ROLE_SEM }, { "new_sem_wait", ROLE_SEM }, { "sem_wait", ROLE_SEM },
    { "sem_timedwait", ROLE_SEM }, { "sem_clockwait", ROLE_SEM }, { "do_futex_wait", ROLE_SEM },
    { "pthread_clockjoin_ex", ROLE_JOIN }, { "pthread_join", ROLE_JOIN }, { "pthread_timedjoin_np", ROLE_JOIN },
    { "pthread_clockjoin_np", ROLE_JOIN }, { "thrd_join", ROLE_JOIN },
    { "pthread_rwlock_rdlock", ROLE_RWLOCK_READ }, { "pthread_rwlock_rdlock_full", ROLE_RWLOCK_READ },
    { "pthread_rwlock_timedrdlock", ROLE_RWLOCK_READ }, { "pthread_rwlock_clockrdlock", ROLE_RWLOCK_READ },
    { "pthread_rwlock_wrlock", ROLE_RWLOCK_WRITE }, { "pthread_rwlock_wrlock_full", ROLE_RWLOCK_WRITE },
    { "pthread_rwlock_timedwrlock", ROLE_RWLOCK_WRITE }, { "pthread_rwlock_clockwrlock", ROLE_RWLOCK_WRITE },
    { "pthread_barrier_wait", ROLE_BARRIER },
    { "syscall", ROLE_SYSCALL_FN },
};

static enum frame_role role_of(const char *function)
{
    char name[96];
    plain_name(function, name, sizeof name);
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(roles[i].name, name) == 0)
            return roles[i].role;
    return ROLE_NONE;
}

/* The first frame that names a primitive, innermost first; a lock wait
 * is a mutex's only when a mutex's function (or a condvar's, re-locking
 * its mutex) calls it. */
static enum frame_role futex_role(const char *const *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum frame_role r = role_of(frames[i]);
        if (r == ROLE_NONE)
            continue;
        if (r != ROLE_LOCK_WAIT)
            return r;
        for (size_t k = i + 1; k < n && k <= i + 4; k++) {
            enum frame_role outer = role_of(frames[k]);
            if (outer == ROLE_MUTEX || outer == ROLE_COND)
                return ROLE_MUTEX;
        }
        return ROLE_PRIVATE_LOCK;
    }
    return ROLE_NONE;
}

/* ---- futex waits: the object and its owner ---- */

static void decode_mutex(struct lw_snap_wait *w, struct lwa_memory *mem, uint64_t uaddr, bool lock_pi)
{
    pthread_mutex_t m;
    w->kind = LW_WAIT_MUTEX;
    w->object = uaddr;   /* __data.__lock is its first word */
    if (!lwa_memory_read_all(mem, &m, uaddr, sizeof m)) {
        w->owner = 0;
        return;
    }
    struct lw_mutex_words words = lw_mutex_words_of(&m);
    w->robust = lw_mutex_is_robust(words);
    w->shared = w->shared || lw_mutex_is_shared(words);
    w->owner = lw_mutex_owner(words);
    if (lock_pi && !(words.kind & LW_MUTEX_KIND_PRIO_INHERIT))
        w->owner = lw_futex_word_owner((uint32_t)words.lock);   /* a PI lock, not a mutex we know */
}

/* A condvar's waiters sleep on __g_signals[g], at offset 40 or 44 of the
 * 8-aligned object (glibc 2.25 and later, leakwatch's own build checked):
 * the object starts 40 or 44 bytes before, when its waiter count agrees. */
static uint64_t cond_base(struct lwa_memory *mem, const struct lwa_layout *layout, uint64_t uaddr)
{
    uint64_t base = uaddr - ((uaddr & 7) ? 44 : 40);
    unsigned wrefs;
    if (!layout->same_libc || (uaddr & 3) || uaddr < 44 ||
        !lwa_memory_read_all(mem, &wrefs, base + offsetof(pthread_cond_t, __data.__wrefs), sizeof wrefs) ||
        (wrefs >> 3) == 0)
        return uaddr;   /* the futex word lies inside the object: enough for every rule */
    return base;
}

/* An rwlock's waiters sleep on __wrphase_futex (8) or __writers_futex (12). */
static void decode_rwlock(struct lw_snap_wait *w, struct lwa_memory *mem, const struct lwa_layout *layout,
                          uint64_t uaddr, bool write)
{
    w->kind = write ? LW_WAIT_RWLOCK_WRITE : LW_WAIT_RWLOCK_READ;
    w->object = uaddr;
    uint64_t base = uaddr - ((uaddr & 7) ? 12 : 8);
    pthread_rwlock_t rw;
    if (!layout->same_libc || (uaddr & 3) || uaddr < 12 || !lwa_memory_read_all(mem, &rw, base, sizeof rw))
        return;
    int32_t writer = lw_rwlock_writer(&rw);
    unsigned readers = __atomic_load_n(&rw.__data.__readers, __ATOMIC_RELAXED);
    if (writer > 0 && !(readers & LW_RWLOCK_WRLOCKED))
        return;   /* the words do not agree: no owner */
    w->object = base;
    w->owner = writer > 0 ? writer : 0;
    w->shared = w->shared || lw_rwlock_is_shared(&rw);
}

/* pthread_join sleeps on the target's descriptor's tid, expecting it. */
static void decode_join(struct lw_snap_wait *w, struct lwa_memory *mem, const struct lwa_layout *layout,
                        uint64_t uaddr, uint32_t expected)
{
    int32_t tid;
    w->kind = LW_WAIT_JOIN;
    w->object = layout->tid_offset >= 0 && uaddr > (uint64_t)layout->tid_offset ? uaddr - (uint64_t)layout->tid_offset
                                                                                  : uaddr;
    w->join_target = w->object;
    w->shared = false;   /* the kernel's wake at thread exit is shared; only the target's exit ends it */
    if (lwa_memory_read_all(mem, &tid, uaddr, sizeof tid) && tid > 0 && (uint32_t)tid == expected)
        w->owner = tid;
}

static void classify_futex(struct lwa_wait_facts *out, const struct user_regs_struct *r, const char *const *frames,
                           size_t n, struct lwa_memory *mem, const struct lwa_layout *layout)
{
    struct lw_snap_wait *w = &out->wait;
    uint64_t uaddr = r->rdi;
    int op = (int)r->rsi;
    int cmd = op & FUTEX_CMD_MASK;
    bool lock_pi = cmd == FUTEX_LOCK_PI || cmd == 13 /* FUTEX_LOCK_PI2 */;
    w->timed = r->r10 != 0;
    w->shared = !(op & FUTEX_PRIVATE_FLAG);
    w->object = uaddr;
    switch (futex_role(frames, n)) {
    case ROLE_MUTEX: case ROLE_LOCK_WAIT:
        decode_mutex(w, mem, uaddr, lock_pi);
        break;
    case ROLE_COND:
        w->kind = LW_WAIT_COND;
        w->object = cond_base(mem, layout, uaddr);
        break;
    case ROLE_SEM:
        w->kind = LW_WAIT_SEM;
        break;
    case ROLE_BARRIER:
        w->kind = LW_WAIT_BARRIER;
        break;
    case ROLE_JOIN:
        decode_join(w, mem, layout, uaddr, (uint32_t)r->rdx);
        break;
    case ROLE_RWLOCK_READ: case ROLE_RWLOCK_WRITE:
        decode_rwlock(w, mem, layout, uaddr, futex_role(frames, n) == ROLE_RWLOCK_WRITE);
        break;
    case ROLE_SYSCALL_FN: {
        /* syscall(SYS_futex, ...) from the program: std::atomic::wait, std::future, hand-made locks */
        uint32_t word;
        w->kind = LW_WAIT_FUTEX;
        if (lock_pi && lwa_memory_read_all(mem, &word, uaddr, sizeof word))
            w->owner = lw_futex_word_owner(word);
        break;
    }
    default:
        w->kind = LW_WAIT_SYSCALL;   /* a glibc-internal lock, pthread_once...: seen as /proc shows it */
        break;
    }
}

/* ---- everything else, by syscall ---- */

static void fd_wait(struct lw_snap_wait *w, enum lw_wait_kind kind, uint64_t fd, enum lw_direction dir)
{
    w->kind = kind;
    w->fd = (int64_t)(int)fd;
    w->direction = dir;
}

static void poll_wait(struct lwa_wait_facts *out, enum lw_poll_form form, const uint64_t set[3], uint32_t nfds,
                      int epfd, struct lwa_memory *mem)
{
    out->wait.kind = LW_WAIT_POLL;
    out->has_poll = true;
    out->poll.form = form;
    memcpy(out->poll.set, set, sizeof out->poll.set);
    out->poll.nfds = nfds;
    out->poll.epfd = epfd;
    out->poll.set_current = true;   /* its registers name it: it is in that very call */
    if (form == LW_POLL_EPOLL)
        out->wait.fd = epfd;
    if (form == LW_POLL_FDS && nfds <= 65536)
        lwa_memory_keep(mem, set[0], (size_t)nfds * 8);   /* copied while frozen, read later */
    for (int i = 0; form == LW_POLL_FDSETS && i < 3; i++)
        if (set[i])
            lwa_memory_keep(mem, set[i], 128);
}

static void classify_syscall(struct lwa_wait_facts *out, const struct user_regs_struct *r, int nr,
                             struct lwa_memory *mem)
{
    struct lw_snap_wait *w = &out->wait;
    uint64_t a0 = r->rdi, a1 = r->rsi, a2 = r->rdx, a3 = r->r10, a4 = r->r8;
    switch (nr) {
    case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv: case SYS_recvfrom: case SYS_recvmsg:
    case SYS_recvmmsg:
        fd_wait(w, LW_WAIT_FD_READ, a0, LW_DIR_READ);
        w->timed = nr == SYS_recvmmsg && a4 != 0;
        break;
    case SYS_write: case SYS_writev: case SYS_pwrite64: case SYS_pwritev: case SYS_sendto: case SYS_sendmsg:
    case SYS_sendmmsg:
        fd_wait(w, LW_WAIT_FD_WRITE, a0, LW_DIR_WRITE);
        break;
    case SYS_poll: case SYS_ppoll: {
        uint64_t set[3] = { a0, 0, 0 };
        poll_wait(out, LW_POLL_FDS, set, (uint32_t)a1, -1, mem);
        w->timed = nr == SYS_poll ? (int)a2 >= 0 : a2 != 0;
        break;
    }
    case SYS_select: case SYS_pselect6: {
        uint64_t set[3] = { a1, a2, a3 };
        poll_wait(out, LW_POLL_FDSETS, set, (uint32_t)a0, -1, mem);
        w->timed = a4 != 0;
        break;
    }
    case SYS_epoll_wait: case SYS_epoll_pwait: case 441: {
        uint64_t none[3] = { 0, 0, 0 };
        poll_wait(out, LW_POLL_EPOLL, none, 0, (int)a0, mem);
        w->timed = nr == 441 ? a3 != 0 : (int)a3 >= 0;
        break;
    }
    case SYS_accept: case SYS_accept4: case SYS_connect:
        fd_wait(w, LW_WAIT_SOCKET, a0, LW_DIR_NONE);
        break;
    case SYS_nanosleep: case SYS_clock_nanosleep:
        w->kind = LW_WAIT_SLEEP;
        w->timed = true;
        break;
    case SYS_rt_sigtimedwait: case SYS_pause: case SYS_rt_sigsuspend:
        w->kind = LW_WAIT_SIGNAL;
        w->timed = nr == SYS_rt_sigtimedwait && a2 != 0;
        break;
    case SYS_wait4: case SYS_waitid:
        w->kind = LW_WAIT_CHILD;
        break;
    case SYS_mq_timedreceive: case SYS_mq_timedsend:
        fd_wait(w, nr == SYS_mq_timedreceive ? LW_WAIT_MQ_RECEIVE : LW_WAIT_MQ_SEND, a0,
                nr == SYS_mq_timedreceive ? LW_DIR_READ : LW_DIR_WRITE);
        w->timed = a4 != 0;
        break;
    case SYS_msgrcv: case SYS_msgsnd:
        fd_wait(w, nr == SYS_msgrcv ? LW_WAIT_MQ_RECEIVE : LW_WAIT_MQ_SEND, a0,
                nr == SYS_msgrcv ? LW_DIR_READ : LW_DIR_WRITE);
        w->sysv = true;
        break;
    default:
        w->kind = LW_WAIT_SYSCALL;   /* as /proc would show it: external unless it is a futex */
        if (nr == SYS_flock || nr == SYS_fcntl)
            w->fd = (int64_t)(int)a0;
        break;
    }
}

void lwa_classify_wait(const struct lwa_frozen_thread *t, const char *const *frames, size_t nframes,
                       struct lwa_memory *mem, const struct lwa_layout *layout, struct lwa_wait_facts *out)
{
    memset(out, 0, sizeof *out);
    struct lw_snap_wait *w = &out->wait;
    w->fd = -1;
    w->syscall_nr = -1;
    w->channel = -1;
    int nr = t->stopped && !t->gone ? lwa_interrupted_syscall(&t->regs) : -1;
    if (nr < 0)
        return;
    out->parked = true;
    w->source = LW_SOURCE_INFERRED;
    w->syscall_nr = nr;
    if (nframes > LWA_FRAMES_LOOKED_AT)
        nframes = LWA_FRAMES_LOOKED_AT;
    if (nr == SYS_futex)
        classify_futex(out, &t->regs, frames, nframes, mem, layout);
    else
        classify_syscall(out, &t->regs, nr, mem);
}
