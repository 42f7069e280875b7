/*
 * sample.c — one look at every thread of a process through /proc (see
 * sample.h). The files are read relative to one /proc/PID/task directory
 * fd (the preload's reader, base/util.c): a thousand threads are three
 * thousand small reads.
 */
#include "attach/sample.h"
#include "base/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double boot_seconds(void)
{
    char buf[128];
    return lw_read_small_file("/proc/uptime", buf, sizeof buf) > 0 ? strtod(buf, NULL) : -1;
}

static uint64_t number_after(const char *text, const char *field)
{
    const char *at = strstr(text, field);
    return at ? strtoull(at + strlen(field), NULL, 10) : UINT64_MAX;
}

/* State letter and start time (field 22, clock ticks after boot). */
static void read_stat(const struct lw_task_dir *dir, struct lwa_task_sample *t)
{
    char buf[1024];
    t->state = '?';
    t->started = -1;
    if (lw_read_task_file(dir, t->tid, "stat", buf, sizeof buf) <= 0)
        return;
    const char *close_paren = strrchr(buf, ')');
    if (!close_paren || close_paren[1] != ' ')
        return;
    t->state = close_paren[2];
    const char *p = close_paren + 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        p = p ? p + 1 : NULL;
    }
    long ticks = sysconf(_SC_CLK_TCK);
    if (p && ticks > 0)
        t->started = (double)strtoull(p, NULL, 10) / (double)ticks;
}

static void read_task(const struct lw_task_dir *dir, struct lwa_task_sample *t)
{
    char buf[4096];
    struct lw_task_syscall sc;
    t->syscall_nr = -1;
    if (lw_task_syscall_in(dir, t->tid, &sc) && sc.nr >= 0) {
        t->syscall_nr = sc.nr;
        memcpy(t->args, sc.args, sizeof t->args);
        t->sp = sc.sp;
        t->pc = sc.pc;
    }
    t->switches = UINT64_MAX;
    if (lw_read_task_file(dir, t->tid, "status", buf, sizeof buf) > 0) {
        uint64_t v = number_after(buf, "\nvoluntary_ctxt_switches:");
        uint64_t nv = number_after(buf, "\nnonvoluntary_ctxt_switches:");
        if (v != UINT64_MAX && nv != UINT64_MAX)
            t->switches = v + nv;
    }
    if (lw_read_task_file(dir, t->tid, "comm", buf, sizeof buf) > 0) {
        size_t len = strcspn(buf, "\n");
        len = len < sizeof t->name - 1 ? len : sizeof t->name - 1;
        memcpy(t->name, buf, len);
        t->name[len] = 0;
    }
    read_stat(dir, t);
}

static int compare_task(const void *a, const void *b)
{
    pid_t x = ((const struct lwa_task_sample *)a)->tid, y = ((const struct lwa_task_sample *)b)->tid;
    return (x > y) - (x < y);
}

bool lwa_sample_take(struct lwa_sample *s, pid_t pid)
{
    memset(s, 0, sizeof *s);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    size_t cap = 64;
    s->tasks = malloc(cap * sizeof *s->tasks);
    struct dirent *de;
    while (s->tasks && (de = readdir(d))) {
        char *end;
        long tid = strtol(de->d_name, &end, 10);
        if (*end || tid <= 0)
            continue;
        if (s->n == cap) {
            struct lwa_task_sample *bigger = realloc(s->tasks, 2 * cap * sizeof *bigger);
            if (!bigger)
                break;
            s->tasks = bigger;
            cap *= 2;
        }
        s->tasks[s->n++] = (struct lwa_task_sample){ .tid = (pid_t)tid };
    }
    closedir(d);
    if (!s->tasks)
        return false;
    struct lw_task_dir dir;
    lw_task_dir_open_pid(&dir, pid);
    s->taken_ns = now_ns();
    s->boot_seconds = boot_seconds();
    for (size_t i = 0; i < s->n; i++)
        read_task(&dir, &s->tasks[i]);
    lw_task_dir_close(&dir);
    qsort(s->tasks, s->n, sizeof *s->tasks, compare_task);
    return true;
}

void lwa_sample_free(struct lwa_sample *s)
{
    free(s->tasks);
    memset(s, 0, sizeof *s);
}

const struct lwa_task_sample *lwa_sample_find(const struct lwa_sample *s, pid_t tid)
{
    struct lwa_task_sample key = { .tid = tid };
    return s->tasks ? bsearch(&key, s->tasks, s->n, sizeof key, compare_task) : NULL;
}

bool lwa_same_wait(const struct lwa_task_sample *a, const struct lwa_task_sample *b)
{
    return a && b && a->syscall_nr >= 0 && a->syscall_nr == b->syscall_nr && a->sp == b->sp && a->pc == b->pc &&
           memcmp(a->args, b->args, sizeof a->args) == 0 && a->switches != UINT64_MAX &&
           a->switches == b->switches;
}
