/*
 * closer.c — a daemon-style program: it starts a thread (so leakwatch's
 * server runs), closes every descriptor from 3 up, then listens on a UNIX
 * socket of its own (which takes the lowest free number: often the one
 * leakwatch's listener had) and answers each connection with "mine\n".
 * Prints "LISTENING fd=N path=P". Usage: closer PATH
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static sem_t never;

static void *parked(void *arg)
{
    (void)arg;
    sem_wait(&never);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    sem_init(&never, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, parked, NULL);
    usleep(300000);                       /* leakwatch's server is listening by now */
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 8) != 0)
        return 1;
    printf("LISTENING fd=%d path=%s\n", fd, argv[1]);
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        (void)!write(c, "mine\n", 5);
        close(c);
    }
}
