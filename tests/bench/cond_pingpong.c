/*
 * cond_pingpong.c — two threads hand a token back and forth under one mutex,
 * each sleeping on its own condition variable until the token is its own.
 * One operation = one round trip (two hand-offs, two cond waits). Every wait
 * parks, so this measures the hooks' recorded path (target ≤ 1.10× bare).
 */
#include "bench.h"

#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_main = PTHREAD_COND_INITIALIZER;
static pthread_cond_t to_partner = PTHREAD_COND_INITIALIZER;
static int partner_turn; /* the token: 0 = main holds it, 1 = partner */
static long rounds;      /* warm-up + measured round trips */

static void *partner(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (long i = 0; i < rounds; i++) {
        while (!partner_turn)
            pthread_cond_wait(&to_partner, &lock);
        partner_turn = 0;
        pthread_cond_signal(&to_main);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void loop(long n)
{
    pthread_mutex_lock(&lock);
    for (long i = 0; i < n; i++) {
        partner_turn = 1;
        pthread_cond_signal(&to_partner);
        while (partner_turn)
            pthread_cond_wait(&to_main, &lock);
    }
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv)
{
    return bench_main(argc, argv, loop, partner, &rounds);
}
