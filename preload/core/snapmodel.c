/*
 * snapmodel.c — what any snapshot needs, whoever took it (the preload's
 * registry, or an attach from outside): freeing it, and process-shared
 * objects in private memory.
 *
 * A process-shared condvar, semaphore or mutex, or a futex word waited on
 * without FUTEX_PRIVATE_FLAG (libstdc++'s std::future does that), can only
 * be reached by another process through a MAP_SHARED mapping: in private
 * memory (the heap, a stack, a private file mapping, even after fork: the
 * child's copy is its own) the kernel keys the futex by the process's
 * address space, so only that process can wake it. Such waits are private
 * for the analysis, as they are in fact. The preload and an attach from
 * outside ask the same question of the mappings their source lists.
 */
#include "core/snapshot.h"
#include "core/source.h"
#include "base/maps.h"

#include <stdlib.h>
#include <string.h>

void lw_snapshot_free(struct lw_snapshot *snap)
{
    free(snap->threads);
    free(snap->exited_threads);
    free(snap->exited_pthreads);
    free(snap->cached_tcbs);
    free(snap->stacks);
    free(snap->channels);
    free(snap->pollfds);
    free(snap->paths);
    memset(snap, 0, sizeof *snap);
}

void lw_snapshot_unshare_private(struct lw_snapshot *snap)
{
    bool any = false;
    for (size_t i = 0; i < snap->nthreads && !any; i++)
        any = snap->threads[i].waiting && snap->threads[i].wait.shared;
    if (!any || !snap->source)
        return;
    struct lw_maps maps = LW_MAPS_INIT;
    if (!snap->source->ops->maps(snap->source, &maps))
        return;   /* unknown: they stay shared, which proves less, never more */
    for (size_t i = 0; i < snap->nthreads; i++) {
        struct lw_snap_wait *w = &snap->threads[i].wait;
        if (!snap->threads[i].waiting || !w->shared || !w->object)
            continue;
        const struct lw_mapping *where = lw_maps_find(&maps, w->object);
        if (!where || !where->shared)
            w->shared = false;
    }
    lw_maps_free(&maps);
}
