/*
 * block/graph-lock.h: QEMU's block-graph lock, a readers-writer lock whose
 * readers are coroutines in any AioContext and whose writer is the main
 * loop.
 *
 * Every AioContext registers itself at creation (register_aiocontext) and
 * unregisters at finalization; the registration holds the context's reader
 * count.  A reader costs one increment of its own context's count and a
 * check of a global "writer" flag, with no shared cache line written.  The
 * writer raises the flag and runs the main loop until the counts of all
 * contexts add up to zero.  Readers that arrive while the flag is up take
 * their count back and wait on a CoQueue until the writer leaves.
 *
 * Differences from QEMU 9.x, which keeps the flag down while the writer
 * polls and relies on draining all block devices (which qaio does not
 * have) to keep new readers out: here the flag stays up for the whole
 * wait, so a stream of readers cannot starve the writer.  The price: a
 * coroutine already holding the read lock must not take it again while a
 * writer may be waiting (the nested call would queue behind the writer,
 * which waits for the outer read lock).
 *
 * Threading: register/unregister from any thread.  Readers in coroutine
 * context in any thread that runs an AioContext; the writer and the
 * main-loop readers in the main thread, outside coroutine context.
 */
#ifndef GRAPH_LOCK_H
#define GRAPH_LOCK_H

#include "qemu/osdep.h"
#include "qemu/clang-tsa.h"

/*
 * A placeholder object for clang's thread-safety analysis, which QEMU
 * code names in annotations.  qaio runs no such analysis.
 */
typedef struct BdrvGraphLock {
    char unused;
} BdrvGraphLock;

extern BdrvGraphLock graph_lock;

/* Annotations of functions and fields; they expand to nothing here. */
#define GRAPH_WRLOCK TSA_REQUIRES(graph_lock)
#define GRAPH_RDLOCK TSA_REQUIRES_SHARED(graph_lock)
#define GRAPH_UNLOCKED TSA_EXCLUDES(graph_lock)
#define GRAPH_RDLOCK_PTR TSA_GUARDED_BY(graph_lock)
#define GRAPH_WRLOCK_PTR TSA_GUARDED_BY(graph_lock)
#define GRAPH_UNLOCKED_PTR

typedef struct BdrvGraphRWlock BdrvGraphRWlock;

/* Allocate ctx->bdrv_graph and add it to the global list. */
void register_aiocontext(AioContext *ctx);
/* Remove ctx->bdrv_graph from the list, keeping any leftover reader count. */
void unregister_aiocontext(AioContext *ctx);

/**
 * bdrv_graph_wrlock: take the graph lock for writing
 *
 * Raises the writer flag, so that new readers wait, then runs the main
 * loop (AIO_WAIT_WHILE) until no reader is left in any context.  Not
 * recursive.
 *
 * Context: the main thread, outside coroutine context.
 */
void no_coroutine_fn TSA_ACQUIRE(graph_lock) TSA_NO_TSA
bdrv_graph_wrlock(void);

/**
 * bdrv_graph_wrunlock: release the write lock
 *
 * Restarts the readers that queued meanwhile (each in its own context),
 * then runs the bottom halves scheduled in the main context.
 *
 * Context: the main thread, outside coroutine context.
 */
void no_coroutine_fn TSA_RELEASE(graph_lock) TSA_NO_TSA
bdrv_graph_wrunlock(void);

/**
 * bdrv_graph_co_rdlock: take the graph lock for reading
 *
 * Waits while a writer holds or waits for the lock.  A reader may move to
 * another context before unlocking; the counts still add up.
 *
 * Context: coroutine, in a thread that runs an AioContext.
 */
void coroutine_fn TSA_ACQUIRE_SHARED(graph_lock) TSA_NO_TSA
bdrv_graph_co_rdlock(void);

/**
 * bdrv_graph_co_rdunlock: release a read lock
 *
 * Context: coroutine, in a thread that runs an AioContext.
 */
void coroutine_fn TSA_RELEASE_SHARED(graph_lock) TSA_NO_TSA
bdrv_graph_co_rdunlock(void);

/**
 * bdrv_graph_rdlock_main_loop: read-lock the graph from the main loop
 *
 * The writer runs only in the main loop, so outside coroutine context the
 * main thread reads the graph safely as it is; this only checks the
 * caller.  Context: the main thread, outside coroutine context.
 */
void TSA_ACQUIRE_SHARED(graph_lock) TSA_NO_TSA
bdrv_graph_rdlock_main_loop(void);

/* The counterpart of bdrv_graph_rdlock_main_loop(). */
void TSA_RELEASE_SHARED(graph_lock) TSA_NO_TSA
bdrv_graph_rdunlock_main_loop(void);

/*
 * assert_bdrv_graph_readable: the caller may read the graph.  Checks
 * nothing unless CONFIG_DEBUG_GRAPH_LOCK is defined (the full check takes
 * the registry lock).
 */
void GRAPH_RDLOCK assert_bdrv_graph_readable(void);

/* assert_bdrv_graph_writable: the caller is the main loop and writes. */
void GRAPH_WRLOCK assert_bdrv_graph_writable(void);

/* ---- Scope guards ------------------------------------------------------ */

typedef struct GraphLockable {
    char unused;
} GraphLockable;

/* A distinct non-NULL pointer; the guard only tests it against NULL. */
#define GML_OBJ_() (&(GraphLockable) { 0 })

static inline GraphLockable *TSA_ACQUIRE_SHARED(graph_lock) TSA_NO_TSA
coroutine_fn graph_lockable_auto_lock(GraphLockable *x)
{
    bdrv_graph_co_rdlock();
    return x;
}

static inline void TSA_RELEASE_SHARED(graph_lock) TSA_NO_TSA
coroutine_fn graph_lockable_auto_unlock(GraphLockable *x)
{
    (void)x;
    bdrv_graph_co_rdunlock();
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GraphLockable, graph_lockable_auto_unlock)

#define WITH_GRAPH_RDLOCK_GUARD_(var)                                   \
    for (g_autoptr(GraphLockable) var = graph_lockable_auto_lock(GML_OBJ_()); \
         var;                                                           \
         graph_lockable_auto_unlock(var), var = NULL)

/**
 * WITH_GRAPH_RDLOCK_GUARD: run the following statement with the graph
 * read-locked
 *
 * Context: coroutine.
 */
#define WITH_GRAPH_RDLOCK_GUARD() \
    WITH_GRAPH_RDLOCK_GUARD_(glue(graph_lockable_auto, __COUNTER__))

/**
 * GRAPH_RDLOCK_GUARD: read-lock the graph until the end of the block
 *
 * Context: coroutine.
 */
#define GRAPH_RDLOCK_GUARD(x)                                       \
    g_autoptr(GraphLockable)                                        \
    glue(graph_lockable_auto, __COUNTER__) G_GNUC_UNUSED =          \
        graph_lockable_auto_lock(GML_OBJ_())

typedef struct GraphLockableMainloop {
    char unused;
} GraphLockableMainloop;

#define GMLML_OBJ_() (&(GraphLockableMainloop) { 0 })

static inline GraphLockableMainloop *TSA_ACQUIRE_SHARED(graph_lock)
TSA_NO_TSA graph_lockable_auto_lock_mainloop(GraphLockableMainloop *x)
{
    bdrv_graph_rdlock_main_loop();
    return x;
}

static inline void TSA_RELEASE_SHARED(graph_lock) TSA_NO_TSA
graph_lockable_auto_unlock_mainloop(GraphLockableMainloop *x)
{
    (void)x;
    bdrv_graph_rdunlock_main_loop();
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GraphLockableMainloop,
                              graph_lockable_auto_unlock_mainloop)

/**
 * GRAPH_RDLOCK_GUARD_MAINLOOP: bdrv_graph_rdlock_main_loop() until the end
 * of the block
 *
 * Context: the main thread, outside coroutine context.
 */
#define GRAPH_RDLOCK_GUARD_MAINLOOP(x)                              \
    g_autoptr(GraphLockableMainloop)                                \
    glue(graph_lockable_auto, __COUNTER__) G_GNUC_UNUSED =          \
        graph_lockable_auto_lock_mainloop(GMLML_OBJ_())

#endif /* GRAPH_LOCK_H */
