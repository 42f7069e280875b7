/*
 * lazy.c — a single-threaded program: prints its thread count ("THREADS n"),
 * sleeps a little (a sleep may be a signal handler's: it must not start the
 * server), waits for a line on stdin, then parks on a semaphore with a
 * timeout ("PARKING"). Under the preload it must stay single-threaded, with
 * no socket, until that park.
 */
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            sscanf(line + 8, "%d", &n);
    if (f)
        fclose(f);
    return n;
}

int main(void)
{
    usleep(1000);
    printf("THREADS %d\n", thread_count());
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    printf("PARKING\n");
    fflush(stdout);
    sem_t never;
    sem_init(&never, 0, 0);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    sem_timedwait(&never, &deadline);
    return 0;
}
