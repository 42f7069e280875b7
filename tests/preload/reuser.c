/*
 * reuser.c — a daemon-style program that closes every descriptor and gives
 * the numbers leakwatch's sockets had to sockets of its own, while a client
 * of leakwatch is connected and silent (issue 15, item 1: the server once
 * read the program's message as a request, wrote an error reply into the
 * program's socket and closed it).
 *
 * It starts a thread (so leakwatch's server runs) and prints READY. On "go"
 * (a line on stdin) it notes every socket it holds from fd 3 up (leakwatch's
 * listener and connections, as far as this process's table shows them),
 * closes fds 3 to 1023, and for each noted number makes a socketpair whose
 * one end is given that number, with a message waiting on it. SECONDS later
 * (past leakwatch's 2 s read deadline) it checks each: its message still
 * there, whole; nothing written into it by anyone else; still open, still
 * the same socket. Prints "TOOK fds=N,M" and then "RESULT ok" or
 * "RESULT bad: ...". Usage: reuser SECONDS
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TAKEN 64
#define PEER_FDS_FROM 600   /* the other ends live far above the numbers taken */

struct taken {
    int fd, peer;
    ino_t ino;
    char message[64];
};

static sem_t never;

static void *parked(void *arg)
{
    (void)arg;
    sem_wait(&never);
    return NULL;
}

static bool is_socket_fd(const char *dir, const char *name)
{
    char path[300], link[64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 0)
        return false;
    link[n] = 0;
    return strncmp(link, "socket:", 7) == 0;
}

/* The numbers of the sockets this process holds from 3 up. */
static size_t socket_numbers(int *out, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < max) {
        int fd = atoi(de->d_name);
        if (fd >= 3 && fd != dirfd(d) && is_socket_fd("/proc/self/fd", de->d_name))
            out[n++] = fd;
    }
    if (d)
        closedir(d);
    return n;
}

static bool take_number(struct taken *t, int fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return false;
    t->fd = fd;
    t->peer = fcntl(sv[1], F_DUPFD, PEER_FDS_FROM);
    close(sv[1]);
    if (sv[0] != fd) {
        dup2(sv[0], fd);
        close(sv[0]);
    }
    struct stat st;
    fstat(fd, &st);
    t->ino = st.st_ino;
    snprintf(t->message, sizeof t->message, "the program's own message on fd %d\n", fd);
    return write(t->peer, t->message, strlen(t->message)) == (ssize_t)strlen(t->message);
}

/* "" if fd is untouched, else what happened to it. */
static const char *what_happened(const struct taken *t)
{
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return "closed by someone else";
    if (st.st_ino != t->ino)
        return "closed and replaced by someone else";
    char got[256];
    ssize_t n = recv(t->fd, got, sizeof got - 1, MSG_DONTWAIT);
    if (n != (ssize_t)strlen(t->message) || memcmp(got, t->message, (size_t)n) != 0)
        return "its message was read by someone else";
    n = recv(t->peer, got, sizeof got - 1, MSG_DONTWAIT);
    if (n > 0)
        return "someone else wrote into it";
    if (n == 0)
        return "someone else shut it down";
    return "";
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 3;
    sem_init(&never, 0, 0);
    pthread_t th;
    pthread_create(&th, NULL, parked, NULL);
    printf("READY pid=%d\n", (int)getpid());
    fflush(stdout);
    char go[16];
    if (!fgets(go, sizeof go, stdin))
        return 2;
    int numbers[MAX_TAKEN];
    size_t n = socket_numbers(numbers, MAX_TAKEN);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    struct taken taken[MAX_TAKEN];
    printf("TOOK fds=");
    for (size_t i = 0; i < n; i++) {
        if (!take_number(&taken[i], numbers[i])) {
            printf("\nRESULT bad: cannot make a socketpair for fd %d: %s\n", numbers[i], strerror(errno));
            return 1;
        }
        printf("%s%d", i ? "," : "", numbers[i]);
    }
    printf("\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    for (size_t i = 0; i < n; i++) {
        const char *why = what_happened(&taken[i]);
        if (*why) {
            printf("RESULT bad: fd %d: %s\n", taken[i].fd, why);
            return 1;
        }
    }
    printf("RESULT ok\n");
    fflush(stdout);
    pause();
    return 0;
}
