/*
 * nonblocking_read.c — one thread, read() of one byte from an empty
 * O_NONBLOCK pipe, which fails with EAGAIN every time. One operation = one
 * read. A call that cannot block must cost only a cheap check in the hook
 * (target ≤ 1.10× bare; scripts/bench runs 1,000,000 of them).
 *
 * The program stays single-threaded, as such programs are: the kernel then
 * skips the file reference count in fdget, so a preload that started a thread
 * here would show up in this number too.
 */
#include "bench.h"

#include <fcntl.h>
#include <unistd.h>

static int fds[2];

static void loop(long n)
{
    char c;
    for (long i = 0; i < n; i++)
        if (read(fds[0], &c, 1) != -1 || errno != EAGAIN)
            bench_fail("read did not fail with EAGAIN", errno);
}

int main(int argc, char **argv)
{
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        bench_fail("pipe2", errno);
    return bench_main(argc, argv, loop, NULL, NULL);
}
