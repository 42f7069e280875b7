/*
 * blocking_read_ready.c — one thread, a blocking pipe (no O_NONBLOCK) that
 * always has data: write one byte, read it back. Neither call parks, but
 * on a descriptor that could block the hook cannot know that in advance:
 * a program whose server has not started (this one) tries each call
 * without blocking first, and one whose server runs records it with a few
 * stores. One operation = one write+read pair. Target ≤ 1.10× bare.
 */
#include "bench.h"

#include <fcntl.h>
#include <unistd.h>

static int fds[2];

static void loop(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(fds[1], &c, 1) != 1)
            bench_fail("write", errno);
        if (read(fds[0], &c, 1) != 1)
            bench_fail("read", errno);
    }
}

int main(int argc, char **argv)
{
    if (pipe2(fds, O_CLOEXEC) != 0)
        bench_fail("pipe2", errno);
    return bench_main(argc, argv, loop, NULL, NULL);
}
