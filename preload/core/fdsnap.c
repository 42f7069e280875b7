/*
 * fdsnap.c — the part of a snapshot about file descriptors: for every wait
 * on an fd (hooked or seen only in /proc), what the fd is (pipe end,
 * socketpair side, eventfd, FIFO, message queue, socket, file, terminal),
 * which fds of this process hold the other end, which other processes hold
 * it, who made it and which threads used the other end; for poll-style
 * waits, the set they watch.
 *
 * The kernel is the authority: /proc/self/fd says what each number is now,
 * and a channel-table entry (channels.c) is believed only when the inode
 * matches. The sets of parked poll/select calls are copied out of the
 * waiter's memory with process_vm_readv, and only when
 * /proc/self/task/TID/syscall shows the thread inside that very call. The
 * channel table is also garbage-collected here: a channel no fd refers to
 * any more is released.
 *
 * Runs on the server thread only; it may allocate and read /proc freely,
 * within bounds (a deadline for the scan of other processes).
 */
#include "record/channels.h"
#include "base/util.h"
#include "record/registry.h"
#include "core/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define MQUEUE_MAGIC 0x19800202
#define MAX_SET 256                 /* poll entries listed per wait */
#define MAX_POLLFDS_TOTAL 65536     /* poll entries listed per snapshot */
#define SCAN_BUDGET_NS 300000000ull /* looking at other processes: at most 0.3 s of our CPU time */
#define SCAN_WALL_NS 3000000000ull  /* and 3 s of wall time (we run at nice 10: a busy machine is slow to give us 0.3 s) */
#define SCAN_MAX_PROCESSES 16384

/* ---- what each fd of this process is ---- */

struct own_fd {
    int fd;
    enum lw_chan_type type;
    uint64_t inode;
    int access;           /* 0 read-only, 1 write-only, 2 read-write, -1 unknown */
    uint64_t eventfd_id;  /* 0 if unknown */
    bool named;           /* FIFO / mq with a name left */
    int32_t channel;      /* verified channel-table index, -1 */
    int side;             /* side of that channel */
    char link[112];
};


static uint64_t bracketed_number(const char *link, const char *prefix)
{
    size_t len = strlen(prefix);
    return strncmp(link, prefix, len) == 0 ? strtoull(link + len, NULL, 10) : 0;
}

/* flags (octal) and eventfd-id from /proc/self/fdinfo/N */
static void read_fdinfo(int fd, struct own_fd *o)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    if (lw_read_small_file(path, buf, sizeof buf) <= 0)
        return;
    const char *flags = strstr(buf, "flags:");
    if (flags) {
        unsigned long f = strtoul(flags + 6, NULL, 8);
        o->access = (f & O_ACCMODE) == O_RDONLY ? 0 : (f & O_ACCMODE) == O_WRONLY ? 1 : 2;
    }
    const char *id = strstr(buf, "eventfd-id:");
    if (id)
        o->eventfd_id = strtoull(id + 11, NULL, 10) + 1;   /* +1: ids start at 0 */
}

/* What the program's fd is, through /proc/self/fd/N: this thread's own
 * descriptor table may not be the program's (server.c keeps ours apart). */
static bool stat_program_fd(int fd, struct stat *st)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return stat(path, st) == 0;
}

static bool program_fd_is_mqueue(int fd)
{
    char path[64];
    struct statfs sfs;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return statfs(path, &sfs) == 0 && sfs.f_type == MQUEUE_MAGIC;
}

static void classify_path(int fd, struct own_fd *o)
{
    struct stat st;
    o->type = LW_CHAN_OTHER;
    if (!stat_program_fd(fd, &st))
        return;
    o->inode = st.st_ino;
    if (program_fd_is_mqueue(fd)) {
        o->type = LW_CHAN_MQ;
        o->named = st.st_nlink > 0;
    } else if (S_ISFIFO(st.st_mode)) {
        o->type = LW_CHAN_FIFO;
        o->named = st.st_nlink > 0;
        read_fdinfo(fd, o);
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
        o->type = LW_CHAN_FILE;
    } else if (S_ISCHR(st.st_mode) && (strncmp(o->link, "/dev/pts/", 9) == 0 || strncmp(o->link, "/dev/tty", 8) == 0 ||
                                        strcmp(o->link, "/dev/console") == 0)) {
        o->type = LW_CHAN_TTY;
    }
}

/* Believe the channel table's word for fd only if the kernel agrees. */
static void verify_channel(struct own_fd *o)
{
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
    if (ch->type == LW_CH_SOCKETPAIR)
        o->type = LW_CHAN_SOCKETPAIR;
}

static void describe_own_fd(int fd, struct own_fd *o)
{
    memset(o, 0, sizeof *o);
    o->fd = fd;
    o->access = -1;
    o->channel = -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, o->link, sizeof o->link - 1);
    if (n <= 0) {
        o->type = LW_CHAN_NONE;
        return;
    }
    o->link[n] = 0;
    if ((o->inode = bracketed_number(o->link, "pipe:["))) {
        o->type = LW_CHAN_PIPE;
        read_fdinfo(fd, o);
    } else if ((o->inode = bracketed_number(o->link, "socket:["))) {
        o->type = LW_CHAN_SOCKET;
    } else if (strncmp(o->link, "anon_inode:", 11) == 0) {
        struct stat st;
        o->inode = stat_program_fd(fd, &st) ? st.st_ino : 0;   /* one inode shared by every anonymous file */
        o->type = strcmp(o->link, "anon_inode:[eventfd]") == 0 ? LW_CHAN_EVENTFD : LW_CHAN_OTHER;
        if (o->type == LW_CHAN_EVENTFD)
            read_fdinfo(fd, o);
    } else {
        classify_path(fd, o);
    }
    verify_channel(o);
}

static int compare_own_fd(const void *a, const void *b)
{
    return ((const struct own_fd *)a)->fd - ((const struct own_fd *)b)->fd;
}

static size_t list_own_fds(struct own_fd **out)
{
    size_t n = 0, cap = 64;
    struct own_fd *fds = malloc(cap * sizeof *fds);
    DIR *dir = opendir("/proc/self/fd");
    if (!fds || !dir) {
        free(fds);
        if (dir)
            closedir(dir);
        *out = NULL;
        return 0;
    }
    int skip = dirfd(dir);
    struct dirent *de;
    while ((de = readdir(dir))) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end || fd < 0 || (fd == skip && !lw_fds_are_private))   /* (a private dirfd is not listed) */
            continue;
        if (n == cap) {
            struct own_fd *bigger = realloc(fds, 2 * cap * sizeof *fds);
            if (!bigger)
                break;
            fds = bigger;
            cap *= 2;
        }
        describe_own_fd((int)fd, &fds[n]);
        if (fds[n].type != LW_CHAN_NONE)
            n++;
    }
    closedir(dir);
    qsort(fds, n, sizeof *fds, compare_own_fd);
    *out = fds;
    return n;
}

static const struct own_fd *find_own_fd(const struct own_fd *fds, size_t n, int fd)
{
    struct own_fd key = { .fd = fd };
    return bsearch(&key, fds, n, sizeof key, compare_own_fd);
}

/* ---- garbage collection of the channel table ---- */

static void collect_channels(const struct own_fd *fds, size_t n, uint64_t listed_at)
{
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

/* ---- the other end ---- */

/* Does fd o hold the other end of a wait on `self` (for eventfd, mq and
 * FIFO: the same object, including self)? */
static bool is_other_end(const struct own_fd *self, const struct own_fd *o, const struct lw_channel *ch)
{
    switch (self->type) {
    case LW_CHAN_PIPE:
        return o->type == LW_CHAN_PIPE && o->inode == self->inode && o->access != self->access;
    case LW_CHAN_SOCKETPAIR:
        return ch && (o->type == LW_CHAN_SOCKETPAIR || o->type == LW_CHAN_SOCKET) && o->inode == ch->ino[1 - self->side];
    case LW_CHAN_EVENTFD:
        return o->type == LW_CHAN_EVENTFD && self->eventfd_id && o->eventfd_id == self->eventfd_id;
    case LW_CHAN_FIFO: case LW_CHAN_MQ:
        return o->type == self->type && o->inode == self->inode;
    default:
        return false;
    }
}

/* The link text another process shows for the other end ("" if there is
 * nothing to look for). */
static void other_end_link(const struct own_fd *self, const struct lw_channel *ch, char *out, size_t size)
{
    out[0] = 0;
    if (self->type == LW_CHAN_PIPE)
        snprintf(out, size, "pipe:[%llu]", (unsigned long long)self->inode);
    else if (self->type == LW_CHAN_SOCKETPAIR && ch)
        snprintf(out, size, "socket:[%llu]", (unsigned long long)ch->ino[1 - self->side]);
    else if (self->type == LW_CHAN_EVENTFD || self->type == LW_CHAN_FIFO || self->type == LW_CHAN_MQ)
        snprintf(out, size, "%s", self->link);
}

/* ---- building the snapshot's channel entries ---- */

struct build {
    struct lw_snapshot *snap;
    struct own_fd *fds;
    size_t nfds;
    size_t cap_channels;
    uint64_t now;
    /* tid -> thread, for names and liveness */
    const struct lw_snap_thread **by_tid;
};

static int compare_thread_ptr(const void *a, const void *b)
{
    int32_t x = (*(const struct lw_snap_thread *const *)a)->tid, y = (*(const struct lw_snap_thread *const *)b)->tid;
    return (x > y) - (x < y);
}

static const struct lw_snap_thread *live_thread(const struct build *b, int32_t tid)
{
    struct lw_snap_thread key = { .tid = tid };
    const struct lw_snap_thread *k = &key;
    const struct lw_snap_thread *const *hit =
        bsearch(&k, b->by_tid, b->snap->nthreads, sizeof *b->by_tid, compare_thread_ptr);
    return hit ? *hit : NULL;
}


static void add_peers(struct lw_snap_channel *c, const struct lw_channel *ch, int side, enum lw_direction dir)
{
    int peer_side = (ch->type == LW_CH_PIPE || ch->type == LW_CH_SOCKETPAIR) ? 1 - side : side;
    for (int use = 0; use < 2; use++) {
        /* a reader needs writers, a writer readers; a poll on both, both */
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

static void fill_from_table(struct build *b, struct lw_snap_channel *c, const struct own_fd *o,
                            enum lw_direction dir, struct lw_channel *copy)
{
    if (o->channel < 0 || !lw_channel_read((uint32_t)o->channel, copy))
        return;
    c->tracked = true;
    c->creator = copy->creator;
    c->age = b->now > copy->create_ns ? (double)(b->now - copy->create_ns) / 1e9 : 0;
    c->create_stack = copy->create_stack;
    c->exported = copy->flags & LW_CH_EXPORTED;
    c->stdio = copy->flags & LW_CH_STDIO;
    c->users_overflow = copy->flags & LW_CH_OVERFLOW;
    add_peers(c, copy, o->channel >= 0 ? o->side : 0, dir);
}

/* A new channel entry for fd (waited on in direction dir); its index, -1. */
static int32_t add_channel(struct build *b, int fd, enum lw_direction dir)
{
    const struct own_fd *o = find_own_fd(b->fds, b->nfds, fd);
    if (!o || b->snap->nchannels >= b->cap_channels)
        return -1;
    struct lw_snap_channel *c = &b->snap->channels[b->snap->nchannels];
    memset(c, 0, sizeof *c);
    c->type = o->type;
    snprintf(c->name, sizeof c->name, "%s", o->link);
    c->inode = o->inode;
    c->side = o->type == LW_CHAN_PIPE ? (o->access == 1) : o->side;
    c->age = -1;
    c->named = o->named;
    struct lw_channel copy, *ch = NULL;
    memset(&copy, 0, sizeof copy);
    fill_from_table(b, c, o, dir, &copy);
    if (c->tracked)
        ch = &copy;
    for (size_t i = 0; i < b->nfds; i++) {
        const struct own_fd *x = &b->fds[i];
        if (!is_other_end(o, x, ch))
            continue;
        if (c->nother_fds < LW_SNAP_OTHER_FDS)
            c->other_fds[c->nother_fds] = x->fd;
        c->nother_fds++;
        if (c->tracked && x->channel != o->channel)
            c->other_fd_untracked = true;
    }
    return (int32_t)b->snap->nchannels++;
}

/* ---- the sets of poll-style waits ---- */

static enum lw_direction events_direction(unsigned events)
{
    bool in = events & (POLLIN | POLLRDNORM | POLLPRI), out = events & (POLLOUT | POLLWRNORM);
    return in && out ? LW_DIR_BOTH : in ? LW_DIR_READ : out ? LW_DIR_WRITE : LW_DIR_NONE;
}

static void add_pollfd(struct build *b, struct lw_snap_wait *w, int fd, enum lw_direction dir)
{
    if (w->npollfds >= MAX_SET || b->snap->npollfds >= MAX_POLLFDS_TOTAL) {
        w->pollfds_truncated = true;
        return;
    }
    struct lw_snap_pollfd *p = &b->snap->pollfds[b->snap->npollfds++];
    p->fd = fd;
    p->direction = dir;
    p->channel = add_channel(b, fd, dir);
    w->npollfds++;
}

static void poll_set_from_pollfds(struct build *b, struct lw_snap_wait *w, uint64_t addr, uint32_t n)
{
    struct pollfd chunk[64];
    for (uint32_t done = 0; done < n; done += 64) {
        uint32_t k = n - done < 64 ? n - done : 64;
        if (!lw_read_memory(chunk, addr + done * sizeof *chunk, k * sizeof *chunk)) {
            w->pollfds_truncated = true;
            return;
        }
        for (uint32_t i = 0; i < k; i++)
            if (chunk[i].fd >= 0)
                add_pollfd(b, w, chunk[i].fd, events_direction((unsigned)chunk[i].events));
    }
}

static void poll_set_from_fdsets(struct build *b, struct lw_snap_wait *w, const uint64_t set[3], uint32_t nfds)
{
    fd_set r, wr;
    FD_ZERO(&r);
    FD_ZERO(&wr);
    if (nfds > FD_SETSIZE)
        nfds = FD_SETSIZE;
    size_t bytes = (nfds + 63) / 64 * 8;
    if ((set[0] && !lw_read_memory(&r, set[0], bytes)) || (set[1] && !lw_read_memory(&wr, set[1], bytes))) {
        w->pollfds_truncated = true;
        return;
    }
    for (int fd = 0; fd < (int)nfds; fd++) {
        bool in = set[0] && FD_ISSET(fd, &r), out = set[1] && FD_ISSET(fd, &wr);
        if (in || out)
            add_pollfd(b, w, fd, in && out ? LW_DIR_BOTH : in ? LW_DIR_READ : LW_DIR_WRITE);
    }
}

/* An epoll set, from /proc/self/fdinfo/EPFD ("tfd: FD events: MASK ..." a
 * line), read with raw syscalls (never through a function we hook). */
#define FDINFO_MAX (256u << 10)

static void poll_set_from_epoll(struct build *b, struct lw_snap_wait *w, int epfd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    char *text = malloc(FDINFO_MAX);
    ssize_t len = text ? lw_read_whole_file(path, text, FDINFO_MAX) : -1;
    if (len < 0 || (size_t)len >= FDINFO_MAX - 1) {   /* unreadable, or maybe cut */
        w->pollfds_truncated = true;
        free(text);
        return;
    }
    for (char *line = text, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        int fd;
        unsigned events;
        if (sscanf(line, "tfd: %d events: %x", &fd, &events) == 2)
            add_pollfd(b, w, fd, events_direction(events));
    }
    free(text);
}

/* Only a set that the thread is still waiting on right now is read. */
static void add_poll_set(struct build *b, struct lw_snap_thread *t, const struct lw_wait_rec *rec)
{
    struct lw_snap_wait *w = &t->wait;
    w->pollfd_first = (uint32_t)b->snap->npollfds;
    if (rec->flags & LW_REC_EPOLL) {
        poll_set_from_epoll(b, w, (int)rec->fd);
        return;
    }
    uint64_t set[3];
    for (int i = 0; i < 3; i++)
        set[i] = rec->set_masked[i] ? rec->set_masked[i] ^ LW_ADDR_MASK : 0;
    struct lw_task_syscall sc;
    bool same = false;
    if (lw_task_syscall(t->tid, &sc) && sc.nr >= 0) {
        if (rec->flags & LW_REC_POLLFDS)
            same = (sc.nr == SYS_poll || sc.nr == SYS_ppoll) && sc.args[0] == set[0] && sc.args[1] == rec->nfds;
        else
            same = (sc.nr == SYS_select || sc.nr == SYS_pselect6) && sc.args[1] == set[0] && sc.args[2] == set[1];
    }
    if (!same) {
        w->pollfds_truncated = true;   /* not in that call (any more): the set is unknown */
        return;
    }
    if (rec->flags & LW_REC_POLLFDS)
        poll_set_from_pollfds(b, w, set[0], rec->nfds);
    else
        poll_set_from_fdsets(b, w, set, rec->nfds);
}

/* ---- other processes ---- */

struct target {
    char link[112];
    uint64_t eventfd_id;   /* for eventfds: must match too */
    struct lw_snap_channel *channel;
};

static void note_holder(struct lw_snap_channel *c, int32_t pid)
{
    for (size_t i = 0; i < c->nprocs && i < LW_SNAP_PROCS; i++)
        if (c->procs[i].pid == pid)
            return;
    if (c->nprocs < LW_SNAP_PROCS) {
        c->procs[c->nprocs].pid = pid;
        char path[64], buf[64];
        snprintf(path, sizeof path, "/proc/%d/comm", pid);
        if (lw_read_small_file(path, buf, sizeof buf) > 0) {
            size_t len = strcspn(buf, "\n");
            if (len > sizeof c->procs[c->nprocs].command - 1)
                len = sizeof c->procs[c->nprocs].command - 1;
            memcpy(c->procs[c->nprocs].command, buf, len);
            c->procs[c->nprocs].command[len] = 0;
        }
    }
    c->nprocs++;
}

static uint64_t fdinfo_eventfd_id(int32_t pid, const char *fd)
{
    char path[300], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%s", pid, fd);
    if (lw_read_small_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *id = strstr(buf, "eventfd-id:");
    return id ? strtoull(id + 11, NULL, 10) + 1 : 0;
}

static bool is_descendant(int32_t pid, int32_t self)
{
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        if (lw_read_small_file(path, buf, sizeof buf) <= 0)
            return false;
        const char *close_paren = strrchr(buf, ')');
        int ppid;
        if (!close_paren || sscanf(close_paren + 2, "%*c %d", &ppid) != 1)
            return false;
        if (ppid == self)
            return true;
        pid = ppid;
    }
    return false;
}

static void scan_process(int32_t pid, struct target *targets, size_t ntargets, bool tracked_only)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *dir = opendir(path);
    if (!dir) {
        /* A process we may not look into can hold our channel only if it
         * inherited it (a descendant), unless the channel came from outside. */
        if (errno != ENOENT && (!tracked_only || is_descendant(pid, getpid())))
            for (size_t i = 0; i < ntargets; i++)
                targets[i].channel->procs_unknown = true;
        return;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char link_path[300], link[112];
        snprintf(link_path, sizeof link_path, "/proc/%d/fd/%s", pid, de->d_name);
        ssize_t n = readlink(link_path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        for (size_t i = 0; i < ntargets; i++) {
            if (strcmp(link, targets[i].link) != 0)
                continue;
            if (targets[i].eventfd_id && fdinfo_eventfd_id(pid, de->d_name) != targets[i].eventfd_id)
                continue;
            note_holder(targets[i].channel, pid);
        }
    }
    closedir(dir);
}

/* Which other processes hold the other end of each in-process-looking
 * channel wait: every readable /proc/PID/fd, within a time budget. */
static void scan_other_processes(struct target *targets, size_t ntargets)
{
    if (!ntargets)
        return;
    bool tracked_only = true;
    for (size_t i = 0; i < ntargets; i++)
        tracked_only &= targets[i].channel->tracked;
    DIR *proc = opendir("/proc");
    if (!proc) {
        for (size_t i = 0; i < ntargets; i++)
            targets[i].channel->procs_unknown = true;
        return;
    }
    int32_t self = getpid();
    uint64_t cpu_deadline = lw_thread_cpu_ns() + SCAN_BUDGET_NS, wall_deadline = lw_now_ns() + SCAN_WALL_NS;
    size_t seen = 0;
    struct dirent *de;
    while ((de = readdir(proc))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        if (++seen > SCAN_MAX_PROCESSES || lw_thread_cpu_ns() > cpu_deadline || lw_now_ns() > wall_deadline) {
            for (size_t i = 0; i < ntargets; i++)
                targets[i].channel->procs_unknown = true;
            break;
        }
        scan_process((int32_t)pid, targets, ntargets, tracked_only);
    }
    closedir(proc);
}

/* ---- names: who made it, who used it, and whether they still exist ---- */

static void name_person(const struct build *b, int32_t tid, char name[16], bool *exited)
{
    const struct lw_snap_thread *t = live_thread(b, tid);
    *exited = t == NULL;
    name[0] = 0;
    if (t) {
        memcpy(name, t->name, 16);
        return;
    }
    for (size_t i = 0; i < b->snap->nexited; i++)
        if (b->snap->exited_threads[i].tid == tid) {
            memcpy(name, b->snap->exited_threads[i].name, 16);
            break;
        }
    name[15] = 0;
}

static void name_people(const struct build *b)
{
    for (size_t i = 0; i < b->snap->nchannels; i++) {
        struct lw_snap_channel *c = &b->snap->channels[i];
        if (c->creator)
            name_person(b, c->creator, c->creator_name, &c->creator_exited);
        for (size_t k = 0; k < c->npeers; k++)
            name_person(b, c->peers[k].tid, c->peers[k].name, &c->peers[k].exited);
    }
}

/* ---- the pass ---- */

static bool wants_fd_info(const struct lw_snap_thread *t, const struct lw_wait_rec *rec)
{
    if (!t->waiting)
        return false;
    if (rec)
        return (rec->flags & (LW_REC_FD | LW_REC_POLLFDS | LW_REC_FDSETS)) != 0;
    return t->wait.fd >= 0;
}

static enum lw_direction syscall_direction(int nr)
{
    switch (nr) {
    case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv: case SYS_recvfrom: case SYS_recvmsg:
    case SYS_recvmmsg:
        return LW_DIR_READ;
    case SYS_write: case SYS_writev: case SYS_pwrite64: case SYS_pwritev: case SYS_sendto: case SYS_sendmsg:
    case SYS_sendmmsg:
        return LW_DIR_WRITE;
    default:
        return LW_DIR_NONE;
    }
}

int lw_snapshot_fds(struct lw_snapshot *snap, const struct lw_wait_rec *const *recs)
{
    size_t want = 0;
    for (size_t i = 0; i < snap->nthreads; i++) {
        snap->threads[i].wait.channel = -1;
        if (wants_fd_info(&snap->threads[i], recs[i]))
            want++;
    }
    uint64_t listed_at = lw_now_ns();
    /* Channel ages are compared with thread ages (rule 4: was a thread born
     * after the channel?): measure them at the snapshot's instant, not at
     * this later one. On a busy machine the two can be a tenth of a second
     * apart, and a channel made just after the main thread started would
     * look older than it, making main a possible waker of every channel. */
    struct build b = { .snap = snap, .now = snap->taken_ns ? snap->taken_ns : listed_at };
    b.nfds = list_own_fds(&b.fds);
    collect_channels(b.fds, b.nfds, listed_at);
    if (!want) {
        free(b.fds);
        return 0;
    }
    b.cap_channels = want + MAX_POLLFDS_TOTAL / 16;
    snap->channels = calloc(b.cap_channels, sizeof *snap->channels);
    snap->pollfds = calloc(MAX_POLLFDS_TOTAL, sizeof *snap->pollfds);
    b.by_tid = malloc((snap->nthreads ? snap->nthreads : 1) * sizeof *b.by_tid);
    if (!snap->channels || !snap->pollfds || !b.by_tid) {
        free(b.fds);
        free(b.by_tid);
        return -1;
    }
    for (size_t i = 0; i < snap->nthreads; i++)
        b.by_tid[i] = &snap->threads[i];
    qsort(b.by_tid, snap->nthreads, sizeof *b.by_tid, compare_thread_ptr);

    for (size_t i = 0; i < snap->nthreads; i++) {
        struct lw_snap_thread *t = &snap->threads[i];
        const struct lw_wait_rec *rec = recs[i];
        if (!wants_fd_info(t, rec))
            continue;
        struct lw_snap_wait *w = &t->wait;
        if (!rec)
            w->direction = syscall_direction(w->syscall_nr);
        if (w->fd >= 0 && !w->sysv)
            w->channel = add_channel(&b, (int)w->fd, w->direction);
        if (rec && (rec->flags & (LW_REC_POLLFDS | LW_REC_FDSETS | LW_REC_EPOLL)))
            add_poll_set(&b, t, rec);
    }

    /* Holders elsewhere, for the channels that could otherwise be in-process. */
    struct target *targets = calloc(snap->nchannels ? snap->nchannels : 1, sizeof *targets);
    size_t ntargets = 0;
    for (size_t i = 0; targets && i < snap->nchannels; i++) {
        struct lw_snap_channel *c = &snap->channels[i];
        const struct own_fd *o = NULL;
        for (size_t k = 0; k < b.nfds && !o; k++)
            if (strcmp(b.fds[k].link, c->name) == 0 && b.fds[k].inode == c->inode)
                o = &b.fds[k];
        if (!o)
            continue;
        struct lw_channel copy, *ch = NULL;
        if (o->channel >= 0 && lw_channel_read((uint32_t)o->channel, &copy))
            ch = &copy;
        other_end_link(o, ch, targets[ntargets].link, sizeof targets[ntargets].link);
        if (!targets[ntargets].link[0])
            continue;
        targets[ntargets].eventfd_id = o->type == LW_CHAN_EVENTFD ? o->eventfd_id : 0;
        if (o->type == LW_CHAN_EVENTFD && !o->eventfd_id)
            c->procs_unknown = true;   /* an old kernel: eventfds cannot be told apart */
        targets[ntargets].channel = c;
        ntargets++;
    }
    scan_other_processes(targets, ntargets);
    free(targets);
    name_people(&b);
    free(b.by_tid);
    free(b.fds);
    return 0;
}
