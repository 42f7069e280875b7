/*
 * reach_heap.c — the reachability scan's workload (scripts/bench, section
 * "reach"): a program with a big, live heap and one thread the scan must
 * judge, doing memory-bound work of its own all the while.
 *
 *   reach_heap MIB
 *
 * Allocates MIB MiB of 64-byte malloc chunks (malloc(48)), every one
 * reachable from a global array (itself one big malloc'd block), then starts
 * one "candidate" thread parked for ever on a condvar inside a heap block
 * that main drops (so every query of the preload's socket scans the whole
 * heap). Prints "READY pid=N blocks=N mib=N" and then, once a second,
 * "TICK ops=N": how many units of work main did in that second (a unit: read
 * a pseudo-random block through the array and update it; cache-missing,
 * memory-bound, so it feels a scan streaming through memory on another
 * CPU). Runs until killed. Errors go to stderr with exit 1; usage errors
 * exit 2.
 */
#include "bench.h"

#include <unistd.h>

#define CHUNK_BYTES 64   /* malloc(48): 48 + 8 bytes of header, rounded to 16 */
#define REQUEST 48

struct rendezvous {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int taken;
};

static uint64_t **blocks;   /* the global array: every block reachable from here */
static size_t nblocks;

static void *candidate(void *arg)
{
    struct rendezvous *rv = arg;
    pthread_setname_np(pthread_self(), "candidate");
    pthread_mutex_lock(&rv->lock);
    while (!rv->taken)
        pthread_cond_wait(&rv->changed, &rv->lock);
    pthread_mutex_unlock(&rv->lock);
    return NULL;
}

/* The rendezvous is dropped when this returns: no live thread can reach it. */
static __attribute__((noinline)) void start_candidate(void)
{
    struct rendezvous *rv = calloc(1, sizeof *rv);
    if (!rv)
        bench_fail("calloc", ENOMEM);
    pthread_mutex_init(&rv->lock, NULL);
    pthread_cond_init(&rv->changed, NULL);
    pthread_t th;
    bench_check(pthread_create(&th, NULL, candidate, rv), "pthread_create");
    pthread_detach(th);
    explicit_bzero(&rv, sizeof rv);
}

static __attribute__((noinline)) void scrub_stack(void)
{
    char buf[64 * 1024];
    explicit_bzero(buf, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

static __attribute__((noinline)) void fill_heap(long mib)
{
    nblocks = (size_t)mib * (1u << 20) / CHUNK_BYTES;
    blocks = malloc(nblocks * sizeof *blocks);
    if (!blocks)
        bench_fail("malloc (the array)", ENOMEM);
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t *b = malloc(REQUEST);
        if (!b)
            bench_fail("malloc (a block)", ENOMEM);
        b[0] = i * 0x9e3779b97f4a7c15ull;   /* data, not pointers */
        b[1] = 0;
        blocks[i] = b;
    }
}

int main(int argc, char **argv)
{
    char *end;
    long mib = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end != '\0' || mib <= 0 || mib > (1L << 20)) {
        fprintf(stderr, "usage: %s MIB\n", argc > 0 ? argv[0] : "reach_heap");
        return 2;
    }
    fill_heap(mib);
    start_candidate();
    scrub_stack();
    printf("READY pid=%d blocks=%zu mib=%ld\n", (int)getpid(), nblocks, mib);
    fflush(stdout);

    uint64_t x = 88172645463325252ull, ops = 0, sink = 0;
    uint64_t next = bench_now_ns() + 1000000000ull;
    for (;;) {
        for (int k = 0; k < 4096; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t *b = blocks[x % nblocks];
            b[1] += b[0] ^ x;
            sink += b[1];
        }
        ops += 4096;
        uint64_t now = bench_now_ns();
        if (now >= next) {
            printf("TICK ops=%llu\n", (unsigned long long)ops);
            if (fflush(stdout) != 0)
                return 1;
            ops = 0;
            next += 1000000000ull;
            if (next < now)
                next = now + 1000000000ull;   /* stopped (SIGSTOP, a slow machine): start over */
        }
        if (sink == 1)   /* keeps the work observable */
            fputc('.', stderr);
    }
}
