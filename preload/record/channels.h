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
#define LW_FD_TRIES (LW_FD_TRY_READ | LW_FD_TRY_SMALL_WRITE | LW_FD_TRY_WRITE)

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

struct lw_channel {
    uint32_t state;          /* 0 free, 1 being set up, 2 live */
    uint32_t gen;            /* bumped at each reuse of the slot (low 16 bits go in fd entries) */
    uint32_t type;           /* enum lw_channel_type */
    uint32_t flags;          /* LW_CH_* */
    uint64_t ino[2];         /* kernel inode of side 0 and side 1 (equal for pipes, 0 if unknown) */
    uint64_t dev;            /* FIFO: the device of its inode */
    int32_t creator;
    uint32_t create_stack;
    uint64_t create_ns;      /* CLOCK_MONOTONIC */
    struct lw_channel_user users[2][2][LW_CHANNEL_USERS];   /* [side][enum lw_use][k] */
};

/* The slot an fd entry names, or NULL if the entry is not a live channel's. */
struct lw_channel *lw_channel_of(uint64_t entry);
static inline int lw_fd_side(uint64_t entry) { return (entry & LW_FD_SIDE) ? 1 : 0; }

/* The calling thread used the channel of entry in direction use. Cheap:
 * a handful of loads and, a few hundred times a second at most, a store. */
void lw_channel_note_use(uint64_t entry, enum lw_use use);

/* Hooks' bookkeeping (all async-signal-safe, errno untouched). */
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
