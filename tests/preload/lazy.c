/*
 * lazy.c — a single-threaded program: sleeps a little, three ways (a sleep
 * may be a signal handler's: it must not start the server), prints "IDLE",
 * waits for a line on stdin (through stdio, whose read no hook sees), then
 * parks on a semaphore with a timeout ("PARKING"). Under the preload it
 * must stay single-threaded, with no socket, until that park
 * (test_lazy.py reads its tasks from /proc).
 */
#include <semaphore.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    struct timespec moment = { 0, 20 * 1000 * 1000 };
    usleep(1000);
    nanosleep(&moment, NULL);
    sleep(0);
    printf("IDLE\n");
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
