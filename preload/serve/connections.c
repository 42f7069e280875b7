/*
 * connections.c — the server's clients, many at once (see connections.h).
 *
 * Once, the server took one connection at a time, each allowed 2 s to say
 * its line and 5 s to take its reply: six silent clients made every real
 * question time out, and so did a thousand idle connections. Now every
 * connection is a small state machine moved along by the server's one poll:
 * reading its request line, queued for its answer, waiting for a confirming
 * scan, sending, draining. Nothing here blocks, and no lock is held while a
 * client is talked to (answers are made under the report lock by server.c,
 * and sent after it is released).
 *
 * Every descriptor is checked to still be the socket we accepted (its type,
 * device and inode) before each recv, send, shutdown and close. The server
 * keeps its descriptors in a table of its own (server.c), where the program
 * cannot reach them; when it cannot, a program that closes every fd and
 * opens its own may be given our number, and what then arrives on it is not
 * ours to read, answer or close: such a connection is forgotten, never
 * touched again.
 *
 * Bounds: the table's capacity (LW_CONNS_MAX with a table of our own,
 * LW_CONNS_SHARED in the program's, where each connection takes a number
 * the program may need); when it is full, the connection that has been
 * silent longest (accepted first, its line still incomplete) is shed, so
 * that idle connections can never keep a real question out; a request line
 * within 2 s; a reply sent within 5 s; replies being sent hold at most
 * REPLY_BYTES_BUDGET of memory (always at least one), further answers wait
 * their turn; a drain, at most 100 ms and 16 KiB.
 */
#include "serve/connections.h"
#include "base/util.h"
#include "serve/report.h"
#include "serve/request.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define READ_DEADLINE_MS 2000
#define WRITE_DEADLINE_MS 5000
#define DRAIN_DEADLINE_MS 100
#define DRAIN_MAX 16384
#define REPLY_BYTES_BUDGET ((size_t)64 << 20)

enum conn_state {
    CONN_FREE,
    CONN_READING,      /* its request line is not complete yet */
    CONN_QUEUED,       /* complete: its answer waits its turn */
    CONN_CONFIRMING,   /* its answer waits for a confirming scan, due at `deadline` */
    CONN_SENDING,
    CONN_DRAINING,     /* answered: what the client still sends is read briefly, then it is closed */
};

struct conn {
    enum conn_state state;
    int fd;
    dev_t dev;
    ino_t ino;
    bool callers;        /* lw_conns_serve_one's: its caller closes fd */
    bool more;           /* bytes followed the request line */
    bool drain_after;    /* after the reply, drain (an error reply, or bytes after the line) */
    bool waited;         /* waited once for a confirming scan already */
    uint64_t since;      /* accepted */
    uint64_t deadline;   /* of the current state */
    size_t len;          /* READING: bytes of the line so far; DRAINING: bytes drained */
    size_t sent;
    struct jsonw reply;
    char line[LW_REQUEST_MAX + 1];
};

static struct conn table[LW_CONNS_MAX];
static size_t capacity = LW_CONNS_SHARED;
static uint16_t polled[LW_CONNS_MAX];   /* lw_conns_poll_set's entry i is table[polled[i]] */
static size_t npolled;

static long raw(long nr, long a1, long a2, long a3, long a4)
{
    return lw_raw_syscall6(nr, a1, a2, a3, a4, 0, 0);
}

static uint64_t ms_from(uint64_t now, int ms)
{
    return now + (uint64_t)ms * 1000000u;
}

/* ---- identity ---- */

/* fd is still the socket accepted as c (type, device, inode). */
static bool is_ours(const struct conn *c)
{
    struct stat st;
    return raw(SYS_fstat, c->fd, (long)&st, 0, 0) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == c->dev &&
           st.st_ino == c->ino;
}

/* The slot is free again; the descriptor is closed only if it is still
 * ours (and not our caller's). */
static void release(struct conn *c)
{
    if (!c->callers && is_ours(c))
        raw(SYS_close, c->fd, 0, 0, 0);
    jsonw_free(&c->reply);
    c->state = CONN_FREE;
}

static bool open_conn(struct conn *c, int fd, bool callers, uint64_t now)
{
    struct stat st;
    if (raw(SYS_fstat, fd, (long)&st, 0, 0) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    c->callers = callers;
    c->since = now;
    jsonw_init(&c->reply);
    return true;
}

/* ---- the states ---- */

static void start_sending(struct conn *c, bool drain_after, uint64_t now)
{
    if (c->reply.failed) {
        jsonw_free(&c->reply);
        lw_report_error(&c->reply, "out of memory while building the reply");
    }
    c->state = CONN_SENDING;
    c->sent = 0;
    c->drain_after = drain_after;
    c->deadline = ms_from(now, WRITE_DEADLINE_MS);
}

static void start_error(struct conn *c, const char *message, uint64_t now)
{
    jsonw_free(&c->reply);
    lw_report_error(&c->reply, message);
    start_sending(c, true, now);
}

/* Closing a socket with unread input resets it, and the peer may lose our
 * reply: read what it sent (a little, briefly) before closing. */
static void start_draining(struct conn *c, uint64_t now)
{
    jsonw_free(&c->reply);
    if (!is_ours(c)) {
        release(c);
        return;
    }
    raw(SYS_shutdown, c->fd, SHUT_WR, 0, 0);
    c->state = CONN_DRAINING;
    c->len = 0;
    c->deadline = ms_from(now, DRAIN_DEADLINE_MS);
}

static bool peer_is_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return false;
    return cred.uid == 0 || cred.uid == geteuid();
}

static void refuse_peer(struct conn *c, uint64_t now)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    char msg[128];
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        snprintf(msg, sizeof msg, "permission denied: the peer's credentials are unknown");
    else
        snprintf(msg, sizeof msg, "permission denied: uid %u may not query process %d", (unsigned)cred.uid,
                 (int)getpid());
    start_error(c, msg, now);
}

static void begin(struct conn *c, uint64_t now)
{
    if (!peer_is_allowed(c->fd)) {
        refuse_peer(c, now);
        return;
    }
    c->state = CONN_READING;
    c->len = 0;
    c->deadline = ms_from(now, READ_DEADLINE_MS);
}

/* The client closed its socket after sending (a half-close, shutdown of
 * its writing side only, still waits for the reply and is no hang-up). */
static bool peer_hung_up(const struct conn *c)
{
    struct pollfd p = { .fd = c->fd, .events = POLLOUT };
    return raw(SYS_poll, (long)&p, 1, 0, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* What one recv brought: a complete line (queued), a bad request (an error
 * reply), a hang-up, or more to wait for. What makes a line is request.c's. */
static void read_some(struct conn *c, uint64_t now)
{
    long n = raw(SYS_recvfrom, c->fd, (long)(c->line + c->len), (long)(LW_REQUEST_MAX - c->len), MSG_DONTWAIT);
    if (n == -EAGAIN || n == -EINTR)
        return;
    if (n <= 0) {
        if (c->len > 0)
            start_error(c, "bad request: the connection ended before a newline", now);
        else
            release(c);   /* said nothing: nothing to answer */
        return;
    }
    c->len += (size_t)n;
    const char *error = NULL;
    switch (lw_request_examine(c->line, c->len, &c->more, &error)) {
    case LW_REQUEST_LINE:
        c->state = CONN_QUEUED;
        break;
    case LW_REQUEST_BAD:
        start_error(c, error, now);
        break;
    case LW_REQUEST_INCOMPLETE:
        break;
    }
}

static void send_some(struct conn *c, uint64_t now)
{
    while (c->sent < c->reply.len) {
        long n = raw(SYS_sendto, c->fd, (long)(c->reply.buf + c->sent), (long)(c->reply.len - c->sent),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n == -EAGAIN || n == -EINTR)
            return;
        if (n <= 0) {
            release(c);   /* the client went away */
            return;
        }
        c->sent += (size_t)n;
    }
    if (c->drain_after)
        start_draining(c, now);
    else
        release(c);
}

static void drain_some(struct conn *c)
{
    char sink[LW_REQUEST_MAX];
    long n = raw(SYS_recvfrom, c->fd, (long)sink, sizeof sink, MSG_DONTWAIT);
    if (n == -EAGAIN || n == -EINTR)
        return;
    if (n > 0)
        c->len += (size_t)n;
    if (n <= 0 || c->len >= DRAIN_MAX)
        release(c);   /* ended, or streams for ever: simply closed */
}

/* What answers a request line (server.c's, given at setup). */
static lw_answerer answer_with;

/* The answer, now or (a finding awaits its confirming scan) later. */
static void answer(struct conn *c)
{
    if (peer_hung_up(c)) {
        release(c);   /* nobody to read it: no snapshot, scan or report for nothing */
        return;
    }
    uint64_t due = 0;
    if (answer_with(c->line, &c->reply, c->waited, &due) == LW_ANSWER_LATER) {
        c->state = CONN_CONFIRMING;
        c->waited = true;
        c->deadline = due;
        return;
    }
    uint64_t now = lw_now_ns();
    start_sending(c, c->more, now);   /* one request per connection: what followed it is drained */
    if (is_ours(c))
        send_some(c, now);   /* most replies fit the socket's buffer at once */
    else
        release(c);
}

/* A connection's events (revents) and deadline. */
static void step(struct conn *c, short revents, uint64_t now)
{
    if (c->state == CONN_FREE)
        return;
    if ((revents & POLLNVAL) || !is_ours(c)) {
        release(c);   /* (not ours any more: forgotten, not closed) */
        return;
    }
    switch (c->state) {
    case CONN_READING:
        if (revents & (POLLIN | POLLHUP | POLLERR))
            read_some(c, now);
        else if (now >= c->deadline)
            start_error(c, "request timed out: send one line within 2 seconds", now);
        break;
    case CONN_CONFIRMING:
        if (now >= c->deadline)
            c->state = CONN_QUEUED;
        break;
    case CONN_SENDING:
        if (revents & (POLLOUT | POLLHUP | POLLERR))
            send_some(c, now);
        else if (now >= c->deadline)
            release(c);   /* a client that stops reading is dropped */
        break;
    case CONN_DRAINING:
        if (revents & (POLLIN | POLLHUP | POLLERR))
            drain_some(c);
        else if (now >= c->deadline)
            release(c);
        break;
    case CONN_QUEUED:
    case CONN_FREE:
        break;
    }
}

/* ---- the table ---- */

void lw_conns_setup(size_t cap, lw_answerer answerer)
{
    capacity = cap < LW_CONNS_MAX ? cap : LW_CONNS_MAX;
    answer_with = answerer;
}

static struct conn *free_slot(void)
{
    for (size_t i = 0; i < capacity; i++)
        if (table[i].state == CONN_FREE)
            return &table[i];
    return NULL;
}

static struct conn *oldest_silent(void)
{
    struct conn *oldest = NULL;
    for (size_t i = 0; i < capacity; i++)
        if (table[i].state == CONN_READING && (!oldest || table[i].since < oldest->since))
            oldest = &table[i];
    return oldest;
}

bool lw_conns_can_take_more(void)
{
    return free_slot() || oldest_silent();
}

bool lw_conns_shed_oldest_silent(void)
{
    struct conn *c = oldest_silent();
    if (!c)
        return false;
    release(c);
    return true;
}

void lw_conns_add(int fd)
{
    uint64_t now = lw_now_ns();
    struct conn *c = free_slot();
    if (!c && lw_conns_shed_oldest_silent())
        c = free_slot();
    if (!c || !open_conn(c, fd, false, now)) {
        raw(SYS_close, fd, 0, 0, 0);   /* just accepted: ours */
        return;
    }
    begin(c, now);
    if (c->state == CONN_SENDING)
        send_some(c, now);
    else
        read_some(c, now);   /* a client says its line as soon as it is connected: then it is no longer silent */
}

static short events_of(const struct conn *c)
{
    switch (c->state) {
    case CONN_READING:
    case CONN_DRAINING:
        return POLLIN;
    case CONN_SENDING:
        return POLLOUT;
    default:
        return 0;
    }
}

size_t lw_conns_poll_set(struct pollfd *fds, size_t max)
{
    npolled = 0;
    for (size_t i = 0; i < capacity && npolled < max; i++) {
        if (table[i].state == CONN_FREE)
            continue;
        fds[npolled] = (struct pollfd){ .fd = table[i].fd, .events = events_of(&table[i]) };
        polled[npolled++] = (uint16_t)i;
    }
    return npolled;
}

static size_t bytes_being_sent(void)
{
    size_t total = 0;
    for (size_t i = 0; i < capacity; i++)
        if (table[i].state == CONN_SENDING)
            total += table[i].reply.len;
    return total;
}

static bool budget_allows_another(void)
{
    size_t in_flight = bytes_being_sent();
    return in_flight == 0 || in_flight < REPLY_BYTES_BUDGET;
}

int lw_conns_poll_timeout(int ceiling_ms)
{
    uint64_t now = lw_now_ns(), soonest = ms_from(now, ceiling_ms);
    bool queued = false;
    for (size_t i = 0; i < capacity; i++) {
        const struct conn *c = &table[i];
        queued |= c->state == CONN_QUEUED;
        if (c->state != CONN_FREE && c->state != CONN_QUEUED && c->deadline < soonest)
            soonest = c->deadline;
    }
    if (queued && budget_allows_another())
        return 0;   /* (otherwise a send that makes room wakes poll) */
    return soonest <= now ? 0 : (int)((soonest - now) / 1000000u) + 1;
}

/* The queued answers, the first accepted first, while the replies being
 * sent stay within budget (one is always allowed). */
static void answer_queued(void)
{
    for (;;) {
        struct conn *next = NULL;
        for (size_t i = 0; i < capacity; i++)
            if (table[i].state == CONN_QUEUED && (!next || table[i].since < next->since))
                next = &table[i];
        if (!next || !budget_allows_another())
            return;
        answer(next);
    }
}

void lw_conns_step(const struct pollfd *fds, size_t n)
{
    uint64_t now = lw_now_ns();
    for (size_t k = 0; k < n && k < npolled; k++)   /* every connection is in the poll set */
        step(&table[polled[k]], fds[k].revents, now);
    answer_queued();
}

void lw_conns_serve_one(int fd, lw_answerer answerer)
{
    answer_with = answerer;
    struct conn c;
    uint64_t now = lw_now_ns();
    if (!open_conn(&c, fd, true, now))
        return;
    begin(&c, now);
    while (c.state != CONN_FREE) {
        if (c.state == CONN_QUEUED) {
            answer(&c);
            continue;
        }
        struct pollfd p = { .fd = c.fd, .events = events_of(&c) };
        uint64_t t = lw_now_ns();
        long ms = c.deadline > t ? (long)((c.deadline - t) / 1000000u) + 1 : 0;
        raw(SYS_poll, (long)&p, p.events ? 1 : 0, ms, 0);
        step(&c, p.events ? p.revents : 0, lw_now_ns());
    }
}

void lw_conns_fork_child(void)
{
    for (size_t i = 0; i < LW_CONNS_MAX; i++) {
        struct conn *c = &table[i];
        if (c->state == CONN_FREE)
            continue;   /* (untouched slots stay untouched: a fork child pays nothing for them) */
        if (!c->callers && is_ours(c))
            raw(SYS_close, c->fd, 0, 0, 0);   /* a copy in the child's table (the program's table was ours) */
        memset(c, 0, sizeof *c);              /* its reply buffer is the parent's business */
    }
    npolled = 0;
}
