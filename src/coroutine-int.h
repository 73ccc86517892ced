/*
 * coroutine-int.h: the Coroutine object and the interface between the
 * portable coroutine code (coroutine.c) and a switch backend
 * (coroutine-asm-*.S + coroutine-asm.c, or coroutine-ucontext.c; meson
 * picks one at build time).
 *
 * Threading: a coroutine runs in one thread at a time; it may resume in a
 * different thread after yielding (aio_co_schedule).  Fields are owned by
 * whoever runs or holds the coroutine, except where noted.
 */
#ifndef QAIO_COROUTINE_INT_H
#define QAIO_COROUTINE_INT_H

#include "qemu/osdep.h"
#include "qemu/queue.h"
#include "qemu/coroutine-core.h"

typedef enum {
    COROUTINE_YIELD = 1,
    COROUTINE_TERMINATE = 2,
    COROUTINE_ENTER = 3,
} CoroutineAction;

struct Coroutine {
    CoroutineEntry *entry;
    void *entry_arg;
    /* Who entered us and gets control back when we yield; NULL if idle. */
    Coroutine *caller;

    /* In a coroutine pool, after termination. */
    QSLIST_ENTRY(Coroutine) pool_next;

    /* CoMutexes and other coroutine locks held (for assertions). */
    size_t locks_held;

    /* The context the coroutine last ran in (set when it is entered). */
    AioContext *ctx;

    /*
     * The name of the function that scheduled the coroutine and has not
     * run it yet (aio_co_schedule, qemu_co_sleep_ns, ...), or NULL.
     * Atomic: set by the scheduler, cleared when the coroutine is entered;
     * a second scheduling aborts naming the first.
     */
    const char *scheduled;

    /* In a CoQueue, or in another coroutine's co_queue_wakeup. */
    QSIMPLEQ_ENTRY(Coroutine) co_queue_next;

    /*
     * Coroutines to enter once this one yields or terminates (aio_co_wake
     * and aio_co_enter of a coroutine of the same context, called from
     * inside this coroutine, queue here instead of nesting).
     */
    QSIMPLEQ_HEAD(, Coroutine) co_queue_wakeup;

    /* In ctx->scheduled_coroutines. */
    QSLIST_ENTRY(Coroutine) co_scheduled_next;
};

/*
 * The backend interface.  qemu_coroutine_new() returns a Coroutine
 * embedded in the backend's own, larger object (stack, saved registers);
 * qemu_coroutine_delete() frees it.  qemu_coroutine_switch() saves the
 * state of @from, resumes @to and returns, when control comes back to
 * @from, the action @from was resumed with.  qemu_coroutine_self() and
 * qemu_in_coroutine() are also the backend's (they read its per-thread
 * current coroutine).
 */
Coroutine *qemu_coroutine_new(void);
void qemu_coroutine_delete(Coroutine *co);
CoroutineAction qemu_coroutine_switch(Coroutine *from, Coroutine *to,
                                      CoroutineAction action);

#endif /* QAIO_COROUTINE_INT_H */
