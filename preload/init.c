/*
 * init.c — start-up and shut-down of the preload.
 *
 * The constructor binds every real function, maps the registry, the stack
 * table and the unwinder's rule cache, registers the fork handlers and
 * arranges for the server thread to start. Hooks called before it runs
 * (from other libraries' constructors) work: they bind lazily and record
 * nothing until the registry is ready.
 *
 * The server does not start here but at the process's first thread creation
 * or first park (see server.c for why): a single-threaded program that never
 * blocks in a hooked call stays single-threaded and is not listed. The hooks
 * ring the lifecycle (base/lifecycle.h) at those moments; this file, the one
 * that knows every layer, tells it what to do.
 *
 * The layers, bottom up (no file includes a header of a layer above its own):
 *   base/       util (clocks, raw syscalls, /proc, memory reads), maps, lifecycle
 *   record/     what the hooks record: registry, stacks, unwinder, channels,
 *               internal threads
 *   interpose/  the hooks: tables, wrappers, the per-fd cache's fast path
 *   core/       snapshot, glibc layouts, analysis, reachability
 *   serve/      server, request, report, monitor
 */
#include "base/lifecycle.h"
#include "base/ownalloc.h"
#include "base/util.h"
#include "interpose/interpose.h"
#include "record/channels.h"
#include "record/registry.h"
#include "record/stacks.h"
#include "serve/serve.h"

#include <errno.h>
#include <pthread.h>

/* The report lock first, then the set of our own blocks (its lock is
 * taken by any of our allocations, reports included). */
static void fork_prepare(void)
{
    lw_server_fork_prepare();
    lw_ownalloc_fork_prepare();
}

static void fork_parent(void)
{
    lw_ownalloc_fork_parent();
    lw_channels_shared();   /* the child holds every fd we have */
    lw_server_fork_parent();
}

static void fork_child(void)
{
    int32_t parent_tid = lw_gettid();   /* still the cached tid of the forking thread */
    lw_ownalloc_fork_child();
    lw_registry_fork_child();
    lw_channels_fork_child(parent_tid, lw_gettid());
    lw_monitor_fork_child();
    lw_server_fork_child();
}

__attribute__((constructor)) static void leakwatch_init(void)
{
    int saved = errno;
    lw_start_ns = lw_stamp_ns();
    lw_ownalloc_init();
    lw_settings_load();
    lw_hooks_resolve_all();
    lw_note_signal_handlers_at_start();
    lw_stacks_init();
    lw_registry_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    lw_monitor_init();
    static const struct lw_lifecycle serving = { lw_server_start, lw_server_at_exit };
    lw_lifecycle_register(&serving);
    lw_server_start_later();
    if (lw_monitor_wants_server_now())
        lw_lifecycle_first_activity();   /* LEAKWATCH_LOG asked for a timer: start it now */
    errno = saved;
}

__attribute__((destructor)) static void leakwatch_fini(void)
{
    int saved = errno;
    lw_monitor_at_exit();
    lw_server_at_exit();
    errno = saved;
}
