/*
 * hang_open.c — preloaded into the CLI by tests/cli/test_hostile.py (mode
 * hung-open): open() of a path with a component "HANG" never returns, as on
 * a filesystem whose server never answers (a FUSE mount's owner can make
 * one). Only a signal ends it: the CLI's watchdog must.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#undef _FILE_OFFSET_BITS   /* open and open64 are both defined here, each under its own name */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static int open_for_real(const char *name, const char *path, int flags, va_list ap)
{
    if (strstr(path, "/HANG/"))
        for (;;)
            pause();
    int (*real)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, name);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int fd = open_for_real("open", path, flags, ap);
    va_end(ap);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int fd = open_for_real("open64", path, flags, ap);
    va_end(ap);
    return fd;
}
