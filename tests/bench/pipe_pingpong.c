/*
 * pipe_pingpong.c — two threads, two pipes, a 1-byte message each way with
 * blocking read() and write(): main writes to the partner's pipe and reads
 * its own, the partner echoes. One operation = one round trip (two writes,
 * two reads, most of which park). Target ≤ 1.10× bare.
 */
#include "bench.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

static int to_main[2], to_partner[2];
static long rounds; /* warm-up + measured round trips */

static void *partner(void *arg)
{
    char c;
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        if (read(to_partner[0], &c, 1) != 1)
            bench_fail("partner read", errno);
        if (write(to_main[1], &c, 1) != 1)
            bench_fail("partner write", errno);
    }
    return NULL;
}

static void loop(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(to_partner[1], &c, 1) != 1)
            bench_fail("write", errno);
        if (read(to_main[0], &c, 1) != 1)
            bench_fail("read", errno);
    }
}

int main(int argc, char **argv)
{
    if (pipe2(to_main, O_CLOEXEC) != 0 || pipe2(to_partner, O_CLOEXEC) != 0)
        bench_fail("pipe2", errno);
    return bench_main(argc, argv, loop, partner, &rounds);
}
