/*
 * futex_pingpong.c — two threads hand a token through two futex words with
 * raw syscall(SYS_futex, FUTEX_WAIT_PRIVATE / FUTEX_WAKE_PRIVATE), the way
 * hand-rolled locks and C++20 atomic::wait do. One operation = one round
 * trip. Target ≤ 1.10× bare.
 */
#include "bench.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One word per direction: 1 = token delivered, 0 = empty (waiters sleep on 0). */
static uint32_t to_main, to_partner;
static long rounds; /* warm-up + measured round trips */

static void give(uint32_t *w)
{
    __atomic_store_n(w, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void take(uint32_t *w)
{
    while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == 0)
        if (syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) != 0 &&
            errno != EAGAIN && errno != EINTR)
            bench_fail("FUTEX_WAIT", errno);
    __atomic_store_n(w, 0, __ATOMIC_RELAXED);
}

static void *partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        take(&to_partner);
        give(&to_main);
    }
    return NULL;
}

static void loop(long n)
{
    for (long i = 0; i < n; i++) {
        give(&to_partner);
        take(&to_main);
    }
}

int main(int argc, char **argv)
{
    return bench_main(argc, argv, loop, partner, &rounds);
}
