/*
 * channels.h — what the fd hooks record about every file descriptor: one
 * word per fd (what kind of file it is: can a call on it block at all? does
 * it name a channel?), and the table of fd "channels" created under the
 * preload (pipes, socketpairs, eventfds, POSIX message queues) with their
 * creator and the threads that used each side. How a hook consults the
 * word on its fast path is the interposition layer's (interpose/fdcache.h).
 *
 * The hooks keep both up to date (creation, dup, close, fcntl, fork); the
 * snapshot checks every claim against /proc/self/fd before it believes it,
 * so a descriptor closed behind our back (glibc-internal close) can cost a
 * missed record, never a wrong one.
 */
#ifndef LW_CHANNELS_H
#define LW_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- the per-fd cache ----
 * One 64-bit word per fd below LW_FDMAP_SIZE (demand-zero .bss: only the
 * pages of fds in use are ever touched). Higher fds are never cached. */
#define LW_FDMAP_SIZE (1u << 20)

#define LW_FD_KNOWN 1ull        /* the bits below were read from the kernel */
#define LW_FD_NEVER_BLOCKS 2ull /* regular file, directory, block device or O_NONBLOCK */
#define LW_FD_CHANNEL 4ull      /* bits 16..63 name a channel and its side */
#define LW_FD_SIDE 8ull         /* side 1 of the channel (pipe write end, socketpair's second) */
/* Calls a hook may first make without blocking (RWF_NOWAIT, MSG_DONTWAIT)
 * because the kernel then returns exactly what the blocking call would
 * have, whenever the blocking call would not have waited: */
#define LW_FD_TRY_READ 16ull        /* reads: a pipe or FIFO, an eventfd, a socket with no receive low-water mark */
#define LW_FD_TRY_SMALL_WRITE 32ull /* writes of up to PIPE_BUF bytes (a pipe or FIFO: all or nothing) */
#define LW_FD_TRY_WRITE 64ull       /* writes of any size (an AF_UNIX datagram or seqpacket socket: all or nothing) */
/* Writes and sends of up to LW_SHORT_SEND bytes on an AF_UNIX stream
 * socket: the kernel queues them as one buffer, all or nothing, as long as
 * that is under half the send buffer (less 64 bytes), and the smallest
 * send buffer a program can set is 4,608 bytes (2 x 2,304). */
#define LW_FD_TRY_SHORT_SEND 256ull
#define LW_SHORT_SEND 2048
#define LW_FD_TRIES (LW_FD_TRY_READ | LW_FD_TRY_SMALL_WRITE | LW_FD_TRY_WRITE | LW_FD_TRY_SHORT_SEND)
#define LW_FD_SOCKET 128ull         /* a socket: read() is recv(0) (tried as MSG_DONTWAIT: no iovec to copy in) */

extern uint64_t lw_fdmap[LW_FDMAP_SIZE];

static inline uint64_t lw_fd_entry(int fd)
{
    return (unsigned)fd < LW_FDMAP_SIZE ? __atomic_load_n(&lw_fdmap[fd], __ATOMIC_RELAXED) : 0;
}

/* The entry of fd, classifying it first if it is not known yet (one fstat
 * and one F_GETFL). Async-signal-safe; errno untouched. */
uint64_t lw_fd_classify(int fd);

/* ---- channels ---- */
#define LW_MAX_CHANNELS 8192u
#define LW_CHANNEL_USERS 4u

enum lw_channel_type { LW_CH_NONE = 0, LW_CH_PIPE, LW_CH_SOCKETPAIR, LW_CH_EVENTFD, LW_CH_MQ, LW_CH_FIFO };

enum lw_use { LW_USE_READ = 0, LW_USE_WRITE = 1 };

#define LW_CH_EXPORTED 1u   /* one of its fds was sent to another process (SCM_RIGHTS) */
#define LW_CH_STDIO 2u      /* fdopen'ed: glibc reads and writes it where no hook sees */
#define LW_CH_OVERFLOW 4u   /* more users than recorded: the user sets are incomplete */

struct lw_channel_user {
    int32_t tid;
    uint32_t pad;
    uint64_t last_ns;   /* CLOCK_MONOTONIC_COARSE of the last use */
};

/* Seconds since a use stamped at last_ns (the coarse clock), for reports. */
double lw_use_seconds_ago(uint64_t last_ns);

/* What the hooks read on every call comes first (one cache line). */
struct lw_channel {
    uint32_t state;          /* 0 free, 1 being set up, 2 live */
    uint32_t gen;            /* bumped at each reuse of the slot (low 16 bits go in fd entries) */
    uint32_t type;           /* enum lw_channel_type */
    uint32_t flags;          /* LW_CH_* */
    /* A pipe made while the server had not started: the bytes in it, as
     * the hooks count them, while they alone can move any (see
     * lw_pipe_cannot_block). */
    int64_t level;
    uint32_t slots;          /* its capacity in pages (F_GETPIPE_SZ at creation) */
    uint32_t private_gen;    /* lw_channels_shared's count at creation; 0: not counted */
    uint64_t ino[2];         /* kernel inode of side 0 and side 1 (equal for pipes, 0 if unknown) */
    uint64_t dev;            /* FIFO: the device of its inode */
    int32_t creator;
    uint32_t create_stack;
    uint64_t create_ns;      /* CLOCK_MONOTONIC */
    struct lw_channel_user users[2][2][LW_CHANNEL_USERS];   /* [side][enum lw_use][k] */
} __attribute__((aligned(64)));

/* The slot an fd entry names, or NULL if the entry is not a live channel's
 * (inline: every fd hook's slow path asks). */
#define LW_CHANNEL_LIVE 2u
#define LW_ENTRY_INDEX_SHIFT 32
#define LW_ENTRY_GEN_SHIFT 16
#define LW_ENTRY_GEN_MASK 0xffffull
extern struct lw_channel lw_channel_table[LW_MAX_CHANNELS];   /* (channels.c's) */

static inline struct lw_channel *lw_channel_of(uint64_t entry)
{
    if (!(entry & LW_FD_CHANNEL))
        return NULL;
    uint64_t index = entry >> LW_ENTRY_INDEX_SHIFT;
    if (index >= LW_MAX_CHANNELS)
        return NULL;
    struct lw_channel *ch = &lw_channel_table[index];
    if (__atomic_load_n(&ch->state, __ATOMIC_ACQUIRE) != LW_CHANNEL_LIVE ||
        (__atomic_load_n(&ch->gen, __ATOMIC_RELAXED) & LW_ENTRY_GEN_MASK) !=
            ((entry >> LW_ENTRY_GEN_SHIFT) & LW_ENTRY_GEN_MASK))
        return NULL;
    return ch;
}
static inline int lw_fd_side(uint64_t entry) { return (entry & LW_FD_SIDE) ? 1 : 0; }

/* The calling thread used the channel of entry in direction use. Cheap:
 * a handful of loads and, a few hundred times a second at most, a store.
 * lw_channel_used does it for a channel already found (lw_channel_of),
 * at now, a reading of lw_coarse_raw_ns the caller had. */
void lw_channel_note_use(uint64_t entry, enum lw_use use);
void lw_channel_used(struct lw_channel *ch, uint64_t entry, enum lw_use use, uint64_t now);

/* ---- pipes a single-threaded program made ----
 * While the server has not started (a single-threaded program, as a rule),
 * the hooks count the bytes every read and write moves through the pipes
 * the program made meanwhile, as long as no other process can hold an end
 * (no fork, spawn or clone since, none sent away, no FILE on it, no splice
 * into or out of it): then a read of a pipe that holds bytes, or a write
 * of at most PIPE_BUF bytes into one with a free slot (fewer bytes in it
 * than slots), cannot block, and the hook knows it without asking the
 * kernel. An end held by a process of ours unseen (a read the count did
 * not see would make it go negative) stops the counting on that pipe. */
void lw_fd_pipe_uncounted(int fd);   /* bytes moved where no hook counts (splice, F_SETPIPE_SZ...) */
void lw_channels_shared(void);       /* another process may now hold any of our fds (fork, spawn...) */

#define LW_PIPE_PAGE 4096   /* a pipe slot; PIPE_BUF */
extern uint32_t lw_channels_sharing_gen;   /* (channels.c's: bumped by lw_channels_shared) */

/* Whether ch is a pipe whose bytes are still counted. */
static inline bool lw_pipe_counted(const struct lw_channel *ch)
{
    if (ch->type != LW_CH_PIPE || (__atomic_load_n(&ch->flags, __ATOMIC_RELAXED) & (LW_CH_EXPORTED | LW_CH_STDIO)))
        return false;
    uint32_t gen = __atomic_load_n(&ch->private_gen, __ATOMIC_ACQUIRE);
    return gen && gen == __atomic_load_n(&lw_channels_sharing_gen, __ATOMIC_ACQUIRE);
}

/* Side 0 is a pipe's read end, side 1 its write end. A read needs a byte
 * in the pipe; a write of up to PIPE_BUF bytes a free slot, and every slot
 * in use holds a byte at least. */
static inline bool lw_pipe_cannot_block(const struct lw_channel *ch, uint64_t entry, enum lw_use use, size_t n)
{
    if (!lw_pipe_counted(ch))
        return false;
    int64_t level = __atomic_load_n(&ch->level, __ATOMIC_ACQUIRE);
    if (use == LW_USE_READ)
        return lw_fd_side(entry) == 0 && level > 0;
    return lw_fd_side(entry) == 1 && n <= LW_PIPE_PAGE && level < (int64_t)ch->slots;
}

/* n > 0 bytes went through an end of ch. A read the count did not expect
 * (it would go negative) means an end is held where no hook counts. The
 * count is kept with plain loads and stores: it is consulted only while
 * the program has one thread and no signal handler (fdhooks.c), so no
 * other hook can move bytes between the two. */
static inline __attribute__((always_inline)) void lw_pipe_moved(struct lw_channel *ch, uint64_t entry,
                                                                enum lw_use use, int64_t n)
{
    if (!lw_pipe_counted(ch) || lw_fd_side(entry) != (use == LW_USE_READ ? 0 : 1))
        return;
    int64_t level = __atomic_load_n(&ch->level, __ATOMIC_RELAXED) + (use == LW_USE_WRITE ? n : -n);
    __atomic_store_n(&ch->level, level, __ATOMIC_RELAXED);
    if (level < 0)
        __atomic_store_n(&ch->private_gen, 0, __ATOMIC_RELAXED);
}

/* A thread whose descriptors live in a table of its own (the server
 * thread, server.c): the numbers it opens, copies and closes name nothing of
 * the program's, so the bookkeeping below ignores them. */
extern __thread bool lw_fds_are_private __attribute__((tls_model("initial-exec")));

/* Hooks' bookkeeping (all async-signal-safe, errno untouched; nothing for
 * a thread whose descriptors are private). */
void lw_fd_created_channel(const int *fds, int nfds, enum lw_channel_type type);
/* mkfifo/mkfifoat made a FIFO with this inode: its fds join it when first used. */
void lw_fifo_created(uint64_t dev, uint64_t ino);
void lw_fd_forget(int fd);                 /* closed */
void lw_fd_forget_range(unsigned first, unsigned last);
void lw_fd_copy(int from, int to);         /* dup2/dup3/F_DUPFD: `to` is the same open file as `from` */
void lw_fd_flags_changed(int fd);          /* F_SETFL, FIONBIO, SO_RCVLOWAT: classify again on next use */
void lw_fd_no_tries(int fd);               /* the kernel refused a non-blocking try (EOPNOTSUPP) */
void lw_fd_mark(int fd, uint32_t channel_flag);
void lw_channels_fork_child(int32_t old_tid, int32_t new_tid);

/* For the snapshot (server thread). */
uint32_t lw_channels_high_water(void);
struct lw_channel *lw_channel_slot(uint32_t index);
bool lw_channel_read(uint32_t index, struct lw_channel *copy);
void lw_channel_release(uint32_t index, uint32_t gen);   /* no fd refers to it any more */

#endif
