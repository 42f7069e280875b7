/*
 * fdsnap.h — the part of a snapshot about file descriptors (fdsnap.c),
 * whoever reads the process: what each waited fd is, which fds of the
 * process hold the other end, which other processes do, and the sets of
 * poll-style waits. What the preload's hooks recorded about an fd (who
 * made the channel, who used it) comes in through a history
 * (fdhistory.c); from outside there is none, and the CLI only tells which
 * UNIX sockets are each other's peers.
 */
#ifndef LW_FDSNAP_H
#define LW_FDSNAP_H

#include "core/snapshot.h"

#include <stdbool.h>
#include <stdint.h>

/* One fd of the process, as /proc/PID/fd and fdinfo say. */
struct lw_fd_info {
    int fd;
    enum lw_chan_type type;
    uint64_t inode;
    uint64_t peer_inode;  /* a connected UNIX socket's other end (0 unknown): a socketpair's */
    int access;           /* 0 read-only, 1 write-only, 2 read-write, -1 unknown */
    uint64_t eventfd_id;  /* 0 if unknown */
    bool named;           /* FIFO / mq with a name left */
    int32_t channel;      /* the history's handle of its channel, -1 none */
    int side;             /* side of that channel */
    char link[112];
};

/* What a recorder knows about fds beyond the kernel's word (NULL: nothing). */
struct lw_fd_history {
    /* Recognise an fd just described (its channel, side, a socketpair's
     * type and peer inode), believed only where the kernel agrees. */
    void (*identify)(void *ctx, struct lw_fd_info *o);
    /* Every fd of the process was listed at listed_at: what no fd names
     * any more may be forgotten. */
    void (*forget_unused)(void *ctx, const struct lw_fd_info *fds, size_t n, uint64_t listed_at);
    /* The channel's history: creator, age, users of the other end (for a
     * wait in direction dir), whether it was sent away or fdopen'ed. */
    void (*describe)(void *ctx, struct lw_snap_channel *c, const struct lw_fd_info *o, enum lw_direction dir,
                     uint64_t now);
    void *ctx;
};

/* How a poll-style wait names its set (its registers or its hook record). */
enum lw_poll_form { LW_POLL_NONE = 0, LW_POLL_FDS, LW_POLL_FDSETS, LW_POLL_EPOLL };

struct lw_fd_wait {
    enum lw_poll_form form;
    uint64_t set[3];          /* pollfd array; or read, write, except fd_sets */
    uint32_t nfds;
    int epfd;
    bool set_current;         /* the thread is known to be in that very call now (else the set is unknown) */
};

struct lw_fdsnap_env {
    int32_t pid;                           /* whose /proc/PID/fd */
    const struct lw_source *source;        /* to read poll sets from its memory */
    const struct lw_fd_history *history;   /* NULL: none */
    bool private_fds;                      /* the caller's descriptor table is not the target's (the
                                              preload's server thread): its listing's fd is none of the target's */
};

/* Channels and poll sets of the fd waits of snap's threads; fd_waits[i]
 * is thread i's poll set, NULL when it has none. 0, or -1 (no memory). */
int lw_fdsnap_build(struct lw_snapshot *snap, const struct lw_fdsnap_env *env,
                    const struct lw_fd_wait *const *fd_waits);

/* The channel table's history (fdhistory.c, preload only). */
extern const struct lw_fd_history lw_channel_history;

/* The direction of a syscall's fd wait (read, recv..., write, send...). */
enum lw_direction lw_syscall_direction(int nr);

#endif
