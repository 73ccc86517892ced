/*
 * block/graph-lock.h: the part of QEMU's block-graph lock an AioContext
 * takes part in.
 *
 * Every AioContext registers itself at creation (register_aiocontext) and
 * unregisters at finalization; the registration holds the per-context reader
 * count that the graph read lock (coming with the coroutine layer) uses.
 * Both functions are thread-safe.
 */
#ifndef GRAPH_LOCK_H
#define GRAPH_LOCK_H

#include "qemu/osdep.h"
#include "qemu/clang-tsa.h"

typedef struct BdrvGraphRWlock BdrvGraphRWlock;

/* Allocate ctx->bdrv_graph and add it to the global list. */
void register_aiocontext(AioContext *ctx);
/* Remove ctx->bdrv_graph from the list, keeping any leftover reader count. */
void unregister_aiocontext(AioContext *ctx);

#endif /* GRAPH_LOCK_H */
