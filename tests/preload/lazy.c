/*
 * lazy.c — a single-threaded program: prints its thread count ("THREADS n"),
 * waits for a line on stdin, then sleeps ("PARKING"). Under the preload it
 * must stay single-threaded, with no socket, until it parks.
 */
#include <stdio.h>
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
    printf("THREADS %d\n", thread_count());
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    printf("PARKING\n");
    fflush(stdout);
    sleep(30);
    return 0;
}
