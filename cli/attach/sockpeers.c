/*
 * sockpeers.c — UNIX sockets' peers from NETLINK_SOCK_DIAG (see
 * sockpeers.h). The diagnostics list the sockets of this network
 * namespace; a target in another one shows none: its sockets then stay
 * plain sockets, the world outside, which proves less, never more.
 */
#include "attach/sockpeers.h"

#include <dirent.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_LISTEN_STATE 10

struct peer {
    uint64_t inode, peer;
    unsigned state;
};

struct lwa_sockpeers {
    struct peer *v;           /* sorted by inode */
    size_t n;
    uint64_t *own;            /* the socket inodes the process holds, sorted */
    size_t nown;
    bool talks_outside;       /* a UNIX socket to another process (or unconnected): fds may be in flight */
    struct lw_fd_history history;
};

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int compare_peer(const void *a, const void *b)
{
    return compare_u64(&((const struct peer *)a)->inode, &((const struct peer *)b)->inode);
}

static bool owns(const struct lwa_sockpeers *p, uint64_t inode)
{
    return p->own && bsearch(&inode, p->own, p->nown, sizeof *p->own, compare_u64);
}

static const struct peer *find_peer(const struct lwa_sockpeers *p, uint64_t inode)
{
    struct peer key = { .inode = inode };
    return p->v ? bsearch(&key, p->v, p->n, sizeof key, compare_peer) : NULL;
}

/* ---- the process's own sockets ---- */

static void list_own_sockets(struct lwa_sockpeers *p, pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    size_t cap = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char link_path[320], link[64];
        snprintf(link_path, sizeof link_path, "%s/%s", path, de->d_name);
        ssize_t len = readlink(link_path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = 0;
        unsigned long long inode;
        if (sscanf(link, "socket:[%llu]", &inode) != 1)
            continue;
        if (p->nown == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *bigger = realloc(p->own, cap * sizeof *bigger);
            if (!bigger)
                break;
            p->own = bigger;
        }
        p->own[p->nown++] = inode;
    }
    if (d)
        closedir(d);
    if (p->own)
        qsort(p->own, p->nown, sizeof *p->own, compare_u64);
}

/* ---- the kernel's diagnostics ---- */

static void add_peer(struct lwa_sockpeers *p, size_t *cap, uint64_t inode, uint64_t peer, unsigned state)
{
    if (p->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        struct peer *bigger = realloc(p->v, *cap * sizeof *bigger);
        if (!bigger)
            return;
        p->v = bigger;
    }
    p->v[p->n++] = (struct peer){ inode, peer, state };
}

static void take_message(struct lwa_sockpeers *p, size_t *cap, const struct nlmsghdr *h)
{
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m))
        return;
    uint64_t peer = 0;
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t))
            peer = *(const uint32_t *)RTA_DATA(a);
    add_peer(p, cap, m->udiag_ino, peer, m->udiag_state);
}

static bool dump_unix_sockets(struct lwa_sockpeers *p)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return false;
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } q = { .h = { .nlmsg_len = sizeof q, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
            .r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER } };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    bool done = sendto(fd, &q, sizeof q, 0, (struct sockaddr *)&kernel, sizeof kernel) == (ssize_t)sizeof q;
    size_t cap = 0;
    static char buf[64 << 10];
    bool complete = false;
    while (done && !complete) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        int left = (int)n;
        for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                complete = h->nlmsg_type == NLMSG_DONE;
                done = complete;
                break;
            }
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY)
                take_message(p, &cap, h);
        }
    }
    close(fd);
    if (p->v)
        qsort(p->v, p->n, sizeof *p->v, compare_peer);
    return complete;
}

/* A socket of the process that can carry fds out of it: connected to a
 * socket it does not hold, or unconnected and not listening (a datagram
 * socket can send to any address). */
static void judge_outside_talk(struct lwa_sockpeers *p, bool complete)
{
    p->talks_outside = !complete && p->nown > 0;
    for (size_t i = 0; i < p->nown && !p->talks_outside; i++) {
        const struct peer *x = find_peer(p, p->own[i]);
        if (!x)
            continue;   /* not a UNIX socket (TCP, netlink...): no fds travel there */
        p->talks_outside = x->peer ? !owns(p, x->peer) : x->state != TCP_LISTEN_STATE;
    }
}

/* ---- as a history ---- */

static void identify(void *ctx, struct lw_fd_info *o)
{
    const struct lwa_sockpeers *p = ctx;
    const struct peer *x = o->type == LW_CHAN_SOCKET ? find_peer(p, o->inode) : NULL;
    if (!x || !x->peer)
        return;
    o->peer_inode = x->peer;
    if (owns(p, x->peer))
        o->type = LW_CHAN_SOCKETPAIR;   /* both ends here: in-process, as a socketpair */
}

static void forget_nothing(void *ctx, const struct lw_fd_info *fds, size_t n, uint64_t listed_at)
{
    (void)ctx;
    (void)fds;
    (void)n;
    (void)listed_at;
}

static void describe(void *ctx, struct lw_snap_channel *c, const struct lw_fd_info *o, enum lw_direction dir,
                     uint64_t now)
{
    (void)o;
    (void)dir;
    (void)now;
    const struct lwa_sockpeers *p = ctx;
    if (p->talks_outside)
        c->procs_unknown = true;   /* one of its fds may be in flight to another process */
}

struct lwa_sockpeers *lwa_sockpeers_read(pid_t pid)
{
    struct lwa_sockpeers *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    list_own_sockets(p, pid);
    bool complete = dump_unix_sockets(p);
    judge_outside_talk(p, complete);
    p->history = (struct lw_fd_history){ identify, forget_nothing, describe, p };
    return p;
}

void lwa_sockpeers_free(struct lwa_sockpeers *p)
{
    if (!p)
        return;
    free(p->v);
    free(p->own);
    free(p);
}

const struct lw_fd_history *lwa_sockpeers_history(struct lwa_sockpeers *p)
{
    return p ? &p->history : NULL;
}
