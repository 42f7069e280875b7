/*
 * channels.c — the per-fd classification cache and the channel table (see
 * channels.h for what they are for).
 *
 * Both live in .bss and are written by the application's threads inside the
 * hooks, so everything here is lock-free, allocation-free, async-signal-safe
 * and leaves errno alone: a read() in a signal handler may land here. The
 * kernel is asked through raw syscalls, never through functions we hook.
 */
#include "record/channels.h"
#include "base/lifecycle.h"
#include "base/util.h"
#include "record/stacks.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <sys/syscall.h>

uint64_t lw_fdmap[LW_FDMAP_SIZE];

struct lw_channel lw_channel_table[LW_MAX_CHANNELS];
#define channels lw_channel_table   /* (shorter, here) */
static uint32_t high_water;   /* slots [0, high_water) have been used */
static uint32_t next_hint;    /* where the search for a free slot starts */

enum { SLOT_FREE = 0, SLOT_SETTING_UP = 1, SLOT_LIVE = LW_CHANNEL_LIVE };

#define ENTRY_INDEX_SHIFT LW_ENTRY_INDEX_SHIFT
#define ENTRY_GEN_SHIFT LW_ENTRY_GEN_SHIFT
#define ENTRY_GEN_MASK LW_ENTRY_GEN_MASK

/* ---- classification ---- */

static uint64_t fifo_entry(const struct stat *st);

static bool stat_fd(int fd, struct stat *st)
{
    return lw_raw_syscall6(SYS_fstat, fd, (long)st, 0, 0, 0, 0) == 0;
}

#define MQUEUE_MAGIC 0x19800202

/* Regular files never block; a POSIX message queue looks like one. */
static bool never_blocks(int fd, const struct stat *st, long status_flags)
{
    if (status_flags & O_NONBLOCK)
        return true;
    if (S_ISREG(st->st_mode)) {
        struct statfs fs;
        return lw_raw_syscall6(SYS_fstatfs, fd, (long)&fs, 0, 0, 0, 0) != 0 || fs.f_type != MQUEUE_MAGIC;
    }
    return S_ISDIR(st->st_mode) || S_ISBLK(st->st_mode);
}

static int socket_option(int fd, int name)
{
    int value = 0;
    socklen_t len = sizeof value;
    return lw_raw_syscall6(SYS_getsockopt, fd, SOL_SOCKET, name, (long)&value, (long)&len, 0) == 0 ? value : -1;
}

/* Which calls on this fd may be tried without blocking first (channels.h).
 * A socket's receive low-water mark makes a blocking read wait for that
 * much where a non-blocking one returns what there is; a stream socket's
 * write may be cut short without blocking where the blocking one goes on;
 * (except a short one on an AF_UNIX stream socket: channels.h); an eventfd
 * write and FIFOs (on this kernel) refuse RWF_NOWAIT. */
static uint64_t try_bits(int fd, const struct stat *st, uint64_t entry)
{
    if (S_ISFIFO(st->st_mode))
        return LW_FD_TRY_READ | LW_FD_TRY_SMALL_WRITE;
    if (S_ISSOCK(st->st_mode)) {
        int type = socket_option(fd, SO_TYPE);
        uint64_t bits = LW_FD_SOCKET | (socket_option(fd, SO_RCVLOWAT) == 1 ? LW_FD_TRY_READ : 0);
        if (socket_option(fd, SO_DOMAIN) == AF_UNIX)
            bits |= type == SOCK_DGRAM || type == SOCK_SEQPACKET ? LW_FD_TRY_WRITE
                    : type == SOCK_STREAM                        ? LW_FD_TRY_SHORT_SEND
                                                                 : 0;
        return bits;
    }
    const struct lw_channel *ch = lw_channel_of(entry);
    if ((st->st_mode & S_IFMT) == 0 && ch && ch->type == LW_CH_EVENTFD)
        return LW_FD_TRY_READ;
    return 0;
}

#define CLASS_BITS (LW_FD_KNOWN | LW_FD_NEVER_BLOCKS | LW_FD_TRIES | LW_FD_SOCKET)

uint64_t lw_fd_classify(int fd)
{
    uint64_t entry = lw_fd_entry(fd);
    if (entry & LW_FD_KNOWN)
        return entry;
    if ((unsigned)fd >= LW_FDMAP_SIZE)
        return 0;   /* not cached: treated as "may block" */
    struct stat st;
    long status = lw_raw_syscall6(SYS_fcntl, fd, F_GETFL, 0, 0, 0, 0);
    if (status < 0 || !stat_fd(fd, &st))
        return entry;   /* not an open fd: the call will fail by itself */
    uint64_t bits = LW_FD_KNOWN;
    if (never_blocks(fd, &st, status))
        bits |= LW_FD_NEVER_BLOCKS;
    else
        bits |= try_bits(fd, &st, entry);
    if (S_ISFIFO(st.st_mode) && !(entry & LW_FD_CHANNEL))
        bits |= fifo_entry(&st);
    /* Keep whatever channel bits another thread set meanwhile. */
    uint64_t seen = entry;
    while (!__atomic_compare_exchange_n(&lw_fdmap[fd], &seen, (seen & ~CLASS_BITS) | bits,
                                        true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return (seen & ~CLASS_BITS) | bits;
}

/* ---- the channel table ---- */

static void start_counting(struct lw_channel *ch, const int *fds, int nfds);

static uint64_t entry_for(uint32_t index, uint32_t gen, int side)
{
    return ((uint64_t)index << ENTRY_INDEX_SHIFT) | ((uint64_t)(gen & ENTRY_GEN_MASK) << ENTRY_GEN_SHIFT) |
           LW_FD_CHANNEL | (side ? LW_FD_SIDE : 0);
}

static uint64_t coarse_now(void) { return lw_coarse_raw_ns(); }

double lw_use_seconds_ago(uint64_t last_ns)
{
    uint64_t now = coarse_now();
    return now > last_ns ? (double)(now - last_ns) / 1e9 : 0;
}

void lw_channel_note_use(uint64_t entry, enum lw_use use)
{
    struct lw_channel *ch = lw_channel_of(entry);
    if (ch)
        lw_channel_used(ch, entry, use, coarse_now());
}

void lw_channel_used(struct lw_channel *ch, uint64_t entry, enum lw_use use, uint64_t now)
{
    struct lw_channel_user *users = ch->users[lw_fd_side(entry)][use];
    int32_t tid = lw_gettid();
    for (unsigned k = 0; k < LW_CHANNEL_USERS; k++) {
        int32_t seen = __atomic_load_n(&users[k].tid, __ATOMIC_RELAXED);
        /* On failure another thread took this entry, and `seen` is its tid. */
        if (seen == 0)
            (void)__atomic_compare_exchange_n(&users[k].tid, &seen, tid, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        if (seen == 0 || seen == tid) {
            /* The coarse clock ticks every few ms: the store is rare, so
             * threads sharing a channel do not fight over its cache line. */
            if (__atomic_load_n(&users[k].last_ns, __ATOMIC_RELAXED) != now)
                __atomic_store_n(&users[k].last_ns, now, __ATOMIC_RELAXED);
            return;
        }
    }
    if (!(__atomic_load_n(&ch->flags, __ATOMIC_RELAXED) & LW_CH_OVERFLOW))
        __atomic_fetch_or(&ch->flags, LW_CH_OVERFLOW, __ATOMIC_RELAXED);
}

static struct lw_channel *claim_channel(uint32_t *index)
{
    uint32_t start = __atomic_load_n(&next_hint, __ATOMIC_RELAXED);
    for (uint32_t n = 0; n < LW_MAX_CHANNELS; n++) {
        uint32_t i = (start + n) % LW_MAX_CHANNELS;
        uint32_t expected = SLOT_FREE;
        if (__atomic_load_n(&channels[i].state, __ATOMIC_RELAXED) != SLOT_FREE ||
            !__atomic_compare_exchange_n(&channels[i].state, &expected, SLOT_SETTING_UP, false,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&next_hint, (i + 1) % LW_MAX_CHANNELS, __ATOMIC_RELAXED);
        uint32_t hw = __atomic_load_n(&high_water, __ATOMIC_RELAXED);
        while (hw < i + 1 && !__atomic_compare_exchange_n(&high_water, &hw, i + 1, true,
                                                          __ATOMIC_RELEASE, __ATOMIC_RELAXED))
            ;
        *index = i;
        return &channels[i];
    }
    return NULL;   /* full: the channel goes untracked (no proof will rest on it) */
}

void lw_fd_created_channel(const int *fds, int nfds, enum lw_channel_type type)
{
    uint32_t index;
    struct lw_channel *ch = claim_channel(&index);
    if (!ch)
        return;
    uint32_t gen = ch->gen + 1;
    memset(ch->users, 0, sizeof ch->users);
    ch->type = type;
    ch->flags = 0;
    ch->ino[0] = ch->ino[1] = 0;
    ch->dev = 0;
    for (int side = 0; side < nfds && side < 2; side++) {
        struct stat st;
        if (type != LW_CH_EVENTFD && stat_fd(fds[side], &st))
            ch->ino[side] = st.st_ino;
    }
    if (nfds == 1)
        ch->ino[1] = ch->ino[0];
    ch->creator = lw_gettid();
    ch->create_ns = lw_stamp_ns();
    ch->create_stack = lw_stack_capture();
    start_counting(ch, fds, nfds);
    __atomic_store_n(&ch->gen, gen, __ATOMIC_RELAXED);
    __atomic_store_n(&ch->state, SLOT_LIVE, __ATOMIC_RELEASE);
    for (int side = 0; side < nfds && side < 2; side++)
        if ((unsigned)fds[side] < LW_FDMAP_SIZE)
            __atomic_store_n(&lw_fdmap[fds[side]], entry_for(index, gen, side), __ATOMIC_RELAXED);
}

/* ---- counting the bytes in a single-threaded program's pipes ---- */

/* Bumped whenever another process may have come to hold our fds. */
uint32_t lw_channels_sharing_gen = 1;
#define sharing_gen lw_channels_sharing_gen

void lw_channels_shared(void) { __atomic_add_fetch(&sharing_gen, 1, __ATOMIC_RELEASE); }

#define PIPE_PAGE LW_PIPE_PAGE

/* A new channel: a pipe made while the server has not started is counted
 * from now on (it is empty, and only this process holds it). */
static void start_counting(struct lw_channel *ch, const int *fds, int nfds)
{
    __atomic_store_n(&ch->private_gen, 0, __ATOMIC_RELAXED);
    ch->level = 0;
    ch->slots = 0;
    if (ch->type != LW_CH_PIPE || nfds != 2 || !lw_lifecycle_armed())
        return;
    long size = lw_raw_syscall6(SYS_fcntl, fds[0], F_GETPIPE_SZ, 0, 0, 0, 0);
    if (size < PIPE_PAGE)
        return;
    ch->slots = (uint32_t)(size / PIPE_PAGE);
    __atomic_store_n(&ch->private_gen, __atomic_load_n(&sharing_gen, __ATOMIC_ACQUIRE), __ATOMIC_RELAXED);
}

/* (lw_pipe_cannot_block and lw_pipe_moved are inline in channels.h.) */

void lw_fd_pipe_uncounted(int fd)
{
    struct lw_channel *ch = lw_fds_are_private ? NULL : lw_channel_of(lw_fd_entry(fd));
    if (ch && __atomic_load_n(&ch->private_gen, __ATOMIC_RELAXED))
        __atomic_store_n(&ch->private_gen, 0, __ATOMIC_RELEASE);
}

/* A FIFO made by a hooked mkfifo: creator, stack and time are recorded
 * there; its fds, opened by path where no hook sees them, join it on first
 * use by inode (fifo_entry). */
void lw_fifo_created(uint64_t dev, uint64_t ino)
{
    uint32_t index;
    struct lw_channel *ch = claim_channel(&index);
    if (!ch)
        return;
    memset(ch->users, 0, sizeof ch->users);
    ch->type = LW_CH_FIFO;
    ch->flags = 0;
    ch->ino[0] = ch->ino[1] = ino;
    ch->dev = dev;
    ch->creator = lw_gettid();
    ch->create_ns = lw_stamp_ns();
    ch->create_stack = lw_stack_capture();
    start_counting(ch, NULL, 0);
    __atomic_store_n(&ch->gen, ch->gen + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&ch->state, SLOT_LIVE, __ATOMIC_RELEASE);
}

/* The channel bits of a FIFO fd on first use: the FIFO mkfifo made, if the
 * inode matches one (a linear search, once per fd), else none. */
static uint64_t fifo_entry(const struct stat *st)
{
    uint32_t hw = __atomic_load_n(&high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_channel *ch = &channels[i];
        if (__atomic_load_n(&ch->state, __ATOMIC_ACQUIRE) == SLOT_LIVE && ch->type == LW_CH_FIFO &&
            ch->ino[0] == st->st_ino && ch->dev == st->st_dev)
            return entry_for(i, __atomic_load_n(&ch->gen, __ATOMIC_RELAXED), 0);
    }
    return 0;
}

/* ---- descriptor bookkeeping ---- */

__thread bool lw_fds_are_private __attribute__((tls_model("initial-exec")));

void lw_fd_forget(int fd)
{
    if ((unsigned)fd < LW_FDMAP_SIZE && !lw_fds_are_private)
        __atomic_store_n(&lw_fdmap[fd], 0, __ATOMIC_RELAXED);
}

void lw_fd_forget_range(unsigned first, unsigned last)
{
    if (lw_fds_are_private)
        return;
    if (last >= LW_FDMAP_SIZE)
        last = LW_FDMAP_SIZE - 1;
    for (unsigned fd = first; fd <= last && fd < LW_FDMAP_SIZE; fd++)
        if (__atomic_load_n(&lw_fdmap[fd], __ATOMIC_RELAXED))   /* leave untouched pages untouched */
            __atomic_store_n(&lw_fdmap[fd], 0, __ATOMIC_RELAXED);
}

void lw_fd_copy(int from, int to)
{
    if ((unsigned)to < LW_FDMAP_SIZE && !lw_fds_are_private)
        __atomic_store_n(&lw_fdmap[to], lw_fd_entry(from), __ATOMIC_RELAXED);
}

void lw_fd_flags_changed(int fd)
{
    if ((unsigned)fd < LW_FDMAP_SIZE && !lw_fds_are_private)
        __atomic_fetch_and(&lw_fdmap[fd], ~CLASS_BITS, __ATOMIC_RELAXED);
}

void lw_fd_no_tries(int fd)
{
    if ((unsigned)fd < LW_FDMAP_SIZE && !lw_fds_are_private && (lw_fd_entry(fd) & LW_FD_TRIES))
        __atomic_fetch_and(&lw_fdmap[fd], ~LW_FD_TRIES, __ATOMIC_RELAXED);
}

void lw_fd_mark(int fd, uint32_t channel_flag)
{
    struct lw_channel *ch = lw_fds_are_private ? NULL : lw_channel_of(lw_fd_entry(fd));
    if (ch && !(__atomic_load_n(&ch->flags, __ATOMIC_RELAXED) & channel_flag))
        __atomic_fetch_or(&ch->flags, channel_flag, __ATOMIC_RELAXED);
}

/* In a fork child the forking thread has a new tid: what it created and
 * used is still its own. Every other thread of the parent is gone here. */
void lw_channels_fork_child(int32_t old_tid, int32_t new_tid)
{
    lw_channels_shared();   /* the parent holds every fd the child has */
    uint32_t hw = __atomic_load_n(&high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_channel *ch = &channels[i];
        if (ch->state != SLOT_LIVE)
            continue;
        if (ch->creator == old_tid)
            ch->creator = new_tid;
        for (int side = 0; side < 2; side++)
            for (int use = 0; use < 2; use++)
                for (unsigned k = 0; k < LW_CHANNEL_USERS; k++)
                    if (ch->users[side][use][k].tid == old_tid)
                        ch->users[side][use][k].tid = new_tid;
    }
}

/* ---- for the snapshot ---- */

uint32_t lw_channels_high_water(void) { return __atomic_load_n(&high_water, __ATOMIC_ACQUIRE); }
struct lw_channel *lw_channel_slot(uint32_t index) { return &channels[index]; }

bool lw_channel_read(uint32_t index, struct lw_channel *copy)
{
    const struct lw_channel *ch = &channels[index];
    if (__atomic_load_n(&ch->state, __ATOMIC_ACQUIRE) != SLOT_LIVE)
        return false;
    memcpy(copy, (const void *)ch, sizeof *copy);
    return copy->state == SLOT_LIVE;
}

void lw_channel_release(uint32_t index, uint32_t gen)
{
    struct lw_channel *ch = &channels[index];
    uint32_t expected = SLOT_LIVE;
    if (__atomic_load_n(&ch->gen, __ATOMIC_RELAXED) != gen)
        return;
    __atomic_compare_exchange_n(&ch->state, &expected, SLOT_FREE, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
