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

    /*
     * aio_co_reschedule_self(): the context to aio_co_schedule() this
     * coroutine in as soon as it has yielded, or NULL.  Set by the
     * coroutine itself just before it yields; read and cleared by the
     * qemu_aio_coroutine_enter() it yields to, in the same thread.
     */
    AioContext *reschedule_ctx;

    /*
     * Coroutine pool (coroutine.c): the first coroutine of a batch in the
     * global pool links the batches and counts its batch (the batch is
     * its pool_next chain).  Meaningless outside the global pool.
     */
    QSLIST_ENTRY(Coroutine) pool_batch_next;
    unsigned pool_batch_size;

    /*
     * This coroutine (or thread leader) runs coroutine_enter_finish()'s
     * loop, which takes care of what each coroutine it enters leaves
     * behind; its switches must not start a loop of their own.  Owned by
     * the coroutine itself.
     */
    bool in_enter_loop;
};

/*
 * The backend interface.  qemu_coroutine_new() returns a Coroutine
 * embedded in the backend's own, larger object (stack, saved registers);
 * qemu_coroutine_delete() frees it.  qemu_coroutine_switch() saves the
 * state of @from, resumes @to and returns, when control comes back to
 * @from, the action @from was resumed with; before switching it sets
 * coroutine_current to @to.  coroutine_leader() returns the calling
 * thread's leader (the pseudo-coroutine standing for the thread's own
 * stack), set up on first use.
 */
Coroutine *qemu_coroutine_new(void);
void qemu_coroutine_delete(Coroutine *co);
CoroutineAction qemu_coroutine_switch(Coroutine *from, Coroutine *to,
                                      CoroutineAction action);
Coroutine *coroutine_leader(void);

/*
 * The running coroutine of this thread; NULL until the thread first
 * needs one (qemu_coroutine_self() then sets it to the leader).  Written
 * by the backend's switch.  Read or written only by out-of-line
 * functions that do so before any switch, never after: a coroutine can
 * resume in another thread, and a thread-local address computed before a
 * switch may belong to the wrong thread after it.
 */
extern QAIO_THREAD_LOCAL Coroutine *coroutine_current;

/*
 * The end of an enter, for the backend's qemu_coroutine_switch().  When
 * @co gives control back to @caller (@action COROUTINE_YIELD or
 * COROUTINE_TERMINATE), @caller's own switch -- an enter of @co -- is
 * complete only after coroutine_enter_finish(@caller, @co, @action) if
 * coroutine_leave_needs_finish(@co, @caller, @action) says so: @co
 * terminated, woke coroutines that now must run, or asked to be
 * rescheduled (coroutine.c).  Nothing between the two sides of a switch
 * changes what it reads, so a backend may ask on either side: before
 * switching, the asm backend picks where @caller resumes (straight back
 * to whoever called qemu_aio_coroutine_enter(), or through
 * coroutine_enter_finish() first), so that the common case resumes with
 * no return instruction at all on x86-64 (a return right after a stack
 * switch is one the CPU's return predictor always gets wrong).  False for
 * COROUTINE_ENTER: whoever is entered resumes from a yield, which has
 * nothing to finish.
 */
static inline bool coroutine_leave_needs_finish(Coroutine *co,
                                                Coroutine *caller,
                                                CoroutineAction action)
{
    return action != COROUTINE_ENTER &&
           (action == COROUTINE_TERMINATE ||
            !QSIMPLEQ_EMPTY(&co->co_queue_wakeup) ||
            co->reschedule_ctx) &&
           !caller->in_enter_loop;
}

void coroutine_enter_finish(Coroutine *from, Coroutine *to,
                            CoroutineAction ret);

#endif /* QAIO_COROUTINE_INT_H */
