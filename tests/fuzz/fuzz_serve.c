/*
 * fuzz_serve.c — libFuzzer target for the whole answer path of the
 * preload's socket: each input is written to one end of a socketpair, which
 * is then half-closed (so a request without a newline ends in a hang-up, not
 * in the 2 s read deadline), and the other end is handed to the server's own
 * connection handler (lw_server_serve_connection, through
 * serve_export.c): peer check, read, parse, snapshot, analysis, rendering,
 * send, drain. The reply is then read and checked against reference.h: one
 * line of JSON, a data reply ({"version":1,"pid":...) exactly when the
 * request is a known verb, a versioned error otherwise, nothing only for a
 * client that said nothing.
 *
 * The preload is linked as a shared library (libleakwatch-fuzz.so, built by
 * scripts/fuzz with the same sanitizers and coverage); nothing preloads it,
 * so its hooks interpose on nothing and it reports on this process as it
 * finds it.
 */
#include "reference.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void lw_fuzz_serve_connection(int fd);

#define REPLY_MAX (1u << 20)

static void fail(const char *what, const char *reply, size_t len)
{
    fprintf(stderr, "fuzz_serve: %s; reply (%zu bytes): %.*s\n", what, len, (int)(len < 600 ? len : 600),
            reply ? reply : "");
    abort();
}

static void write_request(int fd, const uint8_t *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            fail("cannot write the request into the socketpair", NULL, 0);
        }
        data += n;
        size -= (size_t)n;
    }
}

/* Everything the server sent until it closed (it has, by now). */
static char *read_reply(int fd, size_t *len)
{
    char *buf = malloc(REPLY_MAX + 1);
    if (!buf)
        fail("out of memory", NULL, 0);
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + *len, REPLY_MAX - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET)
            break;
        if (n < 0)
            fail("cannot read the reply", NULL, 0);
        if (n == 0)
            break;
        *len += (size_t)n;
        if (*len == REPLY_MAX)
            fail("a reply of 1 MiB or more", buf, *len);
    }
    buf[*len] = 0;
    return buf;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_reply(const struct expected_request *e, size_t request_size, const char *reply, size_t len)
{
    if (len == 0) {
        if (request_size != 0)
            fail("no reply to a non-empty request", reply, len);
        return;
    }
    if (request_size == 0)
        fail("a reply to a client that said nothing", reply, len);
    if (reply[len - 1] != '\n' || memchr(reply, '\n', len) != reply + len - 1)
        fail("the reply is not exactly one line", reply, len);
    if (strlen(reply) != len)
        fail("a NUL inside the reply", reply, len);
    if (e->outcome == EXPECT_LINE && e->verb) {
        if (!starts_with(reply, "{\"version\":1,\"pid\":"))
            fail("a known verb did not get a data reply", reply, len);
    } else if (!starts_with(reply, "{\"version\":1,\"error\":\"")) {
        fail("a bad request did not get a versioned error", reply, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;   /* more than a socketpair's buffer surely holds; the server reads 256 bytes anyway */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        fail("socketpair", NULL, 0);
    int big = 4 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);   /* the reply fits: no reader thread needed */
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);                           /* as accept4(..., SOCK_NONBLOCK) gives it */
    write_request(sv[0], data, size);
    shutdown(sv[0], SHUT_WR);
    lw_fuzz_serve_connection(sv[1]);
    close(sv[1]);
    size_t len;
    char *reply = read_reply(sv[0], &len);
    close(sv[0]);
    struct expected_request e = expect_request(data, size);
    check_reply(&e, size, reply, len);
    free(reply);
    return 0;
}
