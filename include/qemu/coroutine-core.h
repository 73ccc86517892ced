/*
 * qemu/coroutine-core.h: coroutines, the part block/aio.h needs.
 *
 * A coroutine is a function with its own stack that can suspend itself
 * (qemu_coroutine_yield) and be resumed later (qemu_coroutine_enter), in
 * the same thread or, through aio_co_schedule(), in another one.  The
 * rest of the coroutine API (CoMutex's struct, CoQueue, CoRwlock, sleeping)
 * is in qemu/coroutine.h, which includes this header.
 *
 * Threading: a coroutine runs in one thread at a time.  Everything here
 * acts on the calling thread's current coroutine, except the entering
 * functions, which the caller may use only on a coroutine nobody else can
 * enter at the same time (it has yielded and its waker is this caller).
 * To wake a coroutine from another thread use aio_co_wake() or
 * aio_co_schedule() (block/aio.h).
 *
 * Thread-local variables read inside a coroutine must go through the
 * accessors of qemu/coroutine-tls.h: a coroutine may resume in another
 * thread, and a compiler may keep the address of a __thread variable
 * across the yield.
 */
#ifndef QEMU_COROUTINE_CORE_H
#define QEMU_COROUTINE_CORE_H

#include "qemu/osdep.h"

/**
 * Coroutine: an opaque coroutine handle.
 *
 * Created by qemu_coroutine_create(); freed (or returned to the coroutine
 * pool) automatically when its entry function returns.
 */
typedef struct Coroutine Coroutine;

/* A mutex for coroutines; the struct is in qemu/coroutine.h. */
typedef struct CoMutex CoMutex;

/**
 * CoroutineEntry: the function a coroutine runs
 * @opaque: the pointer given to qemu_coroutine_create()
 *
 * When it returns, the coroutine terminates and control goes back to
 * whoever entered it last.
 */
typedef void coroutine_fn CoroutineEntry(void *opaque);

/**
 * qemu_coroutine_create: create a coroutine
 * @entry: the function to run
 * @opaque: its argument
 *
 * The coroutine does not run until it is entered.  Creation takes a
 * coroutine from this thread's pool when one is there, so it allocates
 * nothing in a steady state.  Aborts if no stack can be allocated.
 *
 * Returns: the new coroutine.
 */
Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque);

/**
 * qemu_coroutine_enter: run @coroutine until it yields or terminates
 * @coroutine: a coroutine that is not running
 *
 * Same as qemu_aio_coroutine_enter() with the calling thread's current
 * AioContext.  Aborts, naming the problem, if @coroutine is running (it
 * or one of its callers entered it: "re-entered recursively"), has
 * terminated, or was scheduled with aio_co_schedule() and has not run yet.
 */
void qemu_coroutine_enter(Coroutine *coroutine);

/**
 * qemu_coroutine_enter_if_inactive: enter @co unless it is running
 * @co: the coroutine
 *
 * Does nothing if @co has been entered and has not yielded since.
 */
void qemu_coroutine_enter_if_inactive(Coroutine *co);

/**
 * qemu_aio_coroutine_enter: run @co in @ctx until it yields or terminates
 * @ctx: the AioContext @co now belongs to (qemu_coroutine_get_aio_context)
 * @co: a coroutine that is not running
 *
 * Coroutines that @co wakes with aio_co_wake()/aio_co_enter() in @ctx
 * while it runs are queued and entered, in order, as soon as @co yields or
 * terminates, before this function returns; they do not nest.  Must be
 * called from @ctx's thread.  Aborts like qemu_coroutine_enter().
 */
void qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co);

/**
 * qemu_coroutine_yield: give control back to the caller
 *
 * The coroutine stays suspended until someone enters it again, possibly
 * in another thread.  Aborts if called outside a coroutine.
 */
void coroutine_fn qemu_coroutine_yield(void);

/**
 * qemu_coroutine_get_aio_context: the context @co last ran in
 * @co: the coroutine
 *
 * Returns: the AioContext given to qemu_aio_coroutine_enter() the last
 * time @co was entered (NULL if it was entered from a thread that has no
 * current context).
 */
AioContext *qemu_coroutine_get_aio_context(Coroutine *co);

/**
 * qemu_coroutine_self: the running coroutine
 *
 * Outside a coroutine this returns the thread's own pseudo-coroutine,
 * which stands for the thread's stack; never NULL.
 *
 * Returns: the running coroutine.
 */
Coroutine *qemu_coroutine_self(void);

/**
 * qemu_in_coroutine: whether the caller runs in a coroutine
 *
 * Returns: true inside a coroutine, false on a thread's own stack.
 */
bool qemu_in_coroutine(void);

/**
 * qemu_coroutine_entered: whether @co is running
 * @co: the coroutine
 *
 * Returns: true from the moment @co is entered until it yields or
 * terminates (also while it has entered another coroutine).
 */
bool qemu_coroutine_entered(Coroutine *co);

/**
 * qemu_co_mutex_init: initialise a CoMutex
 * @mutex: the mutex, unlocked afterwards
 */
void qemu_co_mutex_init(CoMutex *mutex);

/**
 * qemu_co_mutex_lock: take @mutex, yielding while another coroutine
 * holds it
 * @mutex: the mutex
 *
 * Coroutine context only.  Waiters get the mutex in FIFO order, also
 * across AioContexts.
 */
void coroutine_fn qemu_co_mutex_lock(CoMutex *mutex);

/**
 * qemu_co_mutex_unlock: release @mutex
 * @mutex: a mutex the calling coroutine holds
 *
 * The next waiter, if any, is woken with aio_co_wake().
 */
void coroutine_fn qemu_co_mutex_unlock(CoMutex *mutex);

#endif /* QEMU_COROUTINE_CORE_H */
