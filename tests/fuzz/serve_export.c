/*
 * serve_export.c — compiled into the fuzz build of the preload only
 * (scripts/fuzz builds libleakwatch-fuzz.so from every preload source plus
 * this file):
 * exports the server's connection handler, which libleakwatch.so keeps
 * hidden, so that fuzz_serve.c can hand it one end of a socketpair.
 */
#include "interpose/interpose.h"
#include "serve/serve.h"

LW_EXPORT void lw_fuzz_serve_connection(int fd)
{
    lw_server_serve_connection(fd);
}
