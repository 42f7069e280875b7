/*
 * fdhistory.c — what the preload's hooks recorded about fd channels, as
 * the snapshot's fd part (fdsnap.c) asks for it: which channel an fd
 * belongs to (believed only where the kernel's inode agrees), who made it,
 * when, and which threads used the other end. The channel table is also
 * garbage-collected here: a channel no fd refers to any more is released.
 *
 * Preload only (it reads the recording layer's channel table); from
 * outside there is no history.
 */
#include "core/fdsnap.h"
#include "record/channels.h"

#include <stdlib.h>
#include <string.h>

/* Believe the channel table's word for an fd only if the kernel agrees. */
static void identify(void *ctx, struct lw_fd_info *o)
{
    (void)ctx;
    uint64_t entry = lw_fd_entry(o->fd);
    struct lw_channel *ch = lw_channel_of(entry);
    if (!ch)
        return;
    int side = lw_fd_side(entry);
    bool same = false;
    switch (ch->type) {
    case LW_CH_PIPE: same = o->type == LW_CHAN_PIPE && ch->ino[0] == o->inode; break;
    case LW_CH_SOCKETPAIR: same = o->type == LW_CHAN_SOCKET && ch->ino[side] == o->inode; break;
    case LW_CH_EVENTFD: same = o->type == LW_CHAN_EVENTFD; break;
    case LW_CH_MQ: same = o->type == LW_CHAN_MQ && ch->ino[0] == o->inode; break;
    case LW_CH_FIFO: same = o->type == LW_CHAN_FIFO && ch->ino[0] == o->inode; break;
    default: break;
    }
    if (!same)
        return;
    o->channel = (int32_t)(ch - lw_channel_slot(0));
    o->side = side;
    if (ch->type == LW_CH_SOCKETPAIR) {
        o->type = LW_CHAN_SOCKETPAIR;
        o->peer_inode = ch->ino[1 - side];
    }
}

static void forget_unused(void *ctx, const struct lw_fd_info *fds, size_t n, uint64_t listed_at)
{
    (void)ctx;
    uint32_t hw = lw_channels_high_water();
    if (!hw)
        return;
    bool *referenced = calloc(hw, sizeof *referenced);
    if (!referenced)
        return;
    for (size_t i = 0; i < n; i++)
        if (fds[i].channel >= 0 && (uint32_t)fds[i].channel < hw)
            referenced[fds[i].channel] = true;
    for (uint32_t i = 0; i < hw; i++) {
        struct lw_channel copy;
        if (!referenced[i] && lw_channel_read(i, &copy) && copy.create_ns < listed_at)
            lw_channel_release(i, copy.gen);
    }
    free(referenced);
}

/* The threads that used the other end the other way (a reader needs
 * writers, a writer readers; a poll on both, both). */
static void add_peers(struct lw_snap_channel *c, const struct lw_channel *ch, int side, enum lw_direction dir)
{
    int peer_side = (ch->type == LW_CH_PIPE || ch->type == LW_CH_SOCKETPAIR) ? 1 - side : side;
    for (int use = 0; use < 2; use++) {
        if ((dir == LW_DIR_READ && use != LW_USE_WRITE) || (dir == LW_DIR_WRITE && use != LW_USE_READ))
            continue;
        for (unsigned k = 0; k < LW_CHANNEL_USERS && c->npeers < LW_SNAP_PEERS; k++) {
            const struct lw_channel_user *u = &ch->users[peer_side][use][k];
            if (!u->tid)
                continue;
            bool dup = false;
            for (size_t j = 0; j < c->npeers; j++)
                dup |= c->peers[j].tid == u->tid;
            if (dup)
                continue;
            c->peers[c->npeers].tid = u->tid;
            c->peers[c->npeers].idle = lw_use_seconds_ago(u->last_ns);
            c->npeers++;
        }
    }
}

static void describe(void *ctx, struct lw_snap_channel *c, const struct lw_fd_info *o, enum lw_direction dir,
                     uint64_t now)
{
    (void)ctx;
    struct lw_channel copy;
    if (o->channel < 0 || !lw_channel_read((uint32_t)o->channel, &copy))
        return;
    c->tracked = true;
    c->creator = copy.creator;
    c->age = now > copy.create_ns ? (double)(now - copy.create_ns) / 1e9 : 0;
    c->create_stack = copy.create_stack;
    c->exported = copy.flags & LW_CH_EXPORTED;
    c->stdio = copy.flags & LW_CH_STDIO;
    c->users_overflow = copy.flags & LW_CH_OVERFLOW;
    add_peers(c, &copy, o->side, dir);
}

const struct lw_fd_history lw_channel_history = { identify, forget_unused, describe, NULL };
