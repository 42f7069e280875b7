/*
 * socketpair_pingpong.c — two threads, one AF_UNIX stream socketpair, a
 * 1-byte message each way with blocking send() and recv(): main sends to
 * the partner's side and receives on its own, the partner echoes. One
 * operation = one round trip (two sends, two receives, most receives
 * park). Target ≤ 1.10× bare, and ≤ 1.05× with both threads pinned to one
 * CPU (scripts/bench runs both).
 */
#include "bench.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2];   /* main uses sv[0], the partner sv[1] */
static long rounds; /* warm-up + measured round trips */

static void *partner(void *arg)
{
    char c;
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        if (recv(sv[1], &c, 1, 0) != 1)
            bench_fail("partner recv", errno);
        if (send(sv[1], &c, 1, 0) != 1)
            bench_fail("partner send", errno);
    }
    return NULL;
}

static void loop(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (send(sv[0], &c, 1, 0) != 1)
            bench_fail("send", errno);
        if (recv(sv[0], &c, 1, 0) != 1)
            bench_fail("recv", errno);
    }
}

int main(int argc, char **argv)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        bench_fail("socketpair", errno);
    return bench_main(argc, argv, loop, partner, &rounds);
}
