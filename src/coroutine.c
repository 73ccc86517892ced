/*
 * coroutine.c: the portable part of coroutines.
 *
 * Owns qemu_coroutine_create/enter/yield and the checks that turn misuse
 * into an abort with a message, the processing of co_queue_wakeup (the
 * coroutines woken by a running coroutine in its own context are entered
 * after it yields, never nested inside it), the thread's current
 * coroutine (qemu_coroutine_self) and the coroutine pool.  The machine
 * switch and the thread's leader belong to the backend (coroutine-int.h).
 *
 * The pool: creating a coroutine means mapping a stack (tens of
 * microseconds), so terminated coroutines are kept for reuse.  Each thread
 * has a pool of up to pool_max_size coroutines that only it touches; when
 * it overflows, the whole local pool moves as one batch to a global pool
 * (at most global_pool_max() coroutines, under global_pool.lock), where a
 * thread whose local pool ran dry takes a batch back.  So a thread that
 * creates coroutines which terminate in another thread costs one lock per
 * batch, and create + enter + terminate in one thread allocates nothing.
 * A thread's pool moves to the global pool (or is freed) when the thread
 * exits.  The caps keep the number of stack mappings bounded: see
 * co_stack_pool_hard_max().
 *
 * Threading: a coroutine runs in one thread at a time; the local pool is
 * the thread's own (see local_pool for why plain TLS is safe there), the
 * global pool is under its lock.
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/coroutine-tls.h"     /* QEMU_CO_TLS_FN_ */
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "block/aio.h"
#include "coroutine-int.h"
#include "coroutine-backend.h"

/* The default per-thread pool size (QEMU's, too). */
#define POOL_DEFAULT_SIZE 64

/* The global pool holds up to this many times the per-thread size. */
#define GLOBAL_POOL_FACTOR 4

/* ---- The pool ----------------------------------------------------------- */

#if CONFIG_COROUTINE_POOL

typedef struct CoroutinePool {
    QSLIST_HEAD(, Coroutine) list;      /* linked by pool_next */
    unsigned size;
    bool registered;                    /* pool_key set for this thread */
} CoroutinePool;

/* Per-thread capacity; qemu_coroutine_inc/dec_pool_size.  Atomic. */
static unsigned pool_max_size = POOL_DEFAULT_SIZE;

static struct {
    QemuMutex lock;
    QSLIST_HEAD(, Coroutine) batches;   /* linked by pool_batch_next */
    unsigned size;          /* coroutines in all batches; written under
                             * lock, read without it as a hint */
    unsigned hard_max;      /* from co_stack_pool_hard_max(), constant */
} global_pool;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_key;

/*
 * This thread's pool.  Reached only from qemu_coroutine_create() (out of
 * line, so its address is computed afresh in whichever thread calls) and
 * from coroutine_delete(), which runs in qemu_aio_coroutine_enter() once
 * the coroutine it entered has given control back -- in the thread that
 * entered it.
 */
static QAIO_THREAD_LOCAL CoroutinePool local_pool;

static void pool_thread_exit(void *opaque);

static void pool_init_once(void)
{
    qemu_mutex_init(&global_pool.lock);
    global_pool.hard_max = co_stack_pool_hard_max();
    if (pthread_key_create(&pool_key, pool_thread_exit)) {
        error_report("coroutine pool: pthread_key_create failed");
        abort();
    }
}

static unsigned global_pool_max(void)
{
    unsigned want = qatomic_read(&pool_max_size) * GLOBAL_POOL_FACTOR;

    return MIN(want, global_pool.hard_max);
}

/*
 * Hand the whole local pool to the global pool as one batch.  Returns
 * false, leaving the local pool as it is, if the global pool is full.
 */
static bool pool_move_to_global(CoroutinePool *p)
{
    Coroutine *batch = QSLIST_FIRST(&p->list);
    bool moved = false;

    if (!batch) {
        return true;
    }
    batch->pool_batch_size = p->size;

    qemu_mutex_lock(&global_pool.lock);
    if (global_pool.size + p->size <= global_pool_max()) {
        QSLIST_INSERT_HEAD(&global_pool.batches, batch, pool_batch_next);
        qatomic_set(&global_pool.size, global_pool.size + p->size);
        moved = true;
    }
    qemu_mutex_unlock(&global_pool.lock);

    if (moved) {
        QSLIST_INIT(&p->list);
        p->size = 0;
    }
    return moved;
}

/*
 * Make sure the thread's pool is handed on when the thread exits: before
 * the pool first holds anything, whether a terminated coroutine
 * (pool_put) or a batch taken from the global pool.
 */
static void pool_register(CoroutinePool *p)
{
    if (unlikely(!p->registered)) {
        pthread_once(&pool_once, pool_init_once);
        pthread_setspecific(pool_key, p);
        p->registered = true;
    }
}

/* Refill an empty local pool with a batch from the global pool. */
static bool pool_take_from_global(CoroutinePool *p)
{
    Coroutine *batch;

    if (!qatomic_read(&global_pool.size)) {
        return false;
    }
    pool_register(p);
    qemu_mutex_lock(&global_pool.lock);
    batch = QSLIST_FIRST(&global_pool.batches);
    if (batch) {
        QSLIST_REMOVE_HEAD(&global_pool.batches, pool_batch_next);
        qatomic_set(&global_pool.size,
                    global_pool.size - batch->pool_batch_size);
    }
    qemu_mutex_unlock(&global_pool.lock);

    if (!batch) {
        return false;
    }
    p->list.slh_first = batch;
    p->size = batch->pool_batch_size;
    return true;
}

/* pthread key destructor: the exiting thread's pool. */
static void pool_thread_exit(void *opaque)
{
    CoroutinePool *p = opaque;
    Coroutine *co;

    if (pool_move_to_global(p)) {
        return;
    }
    while ((co = QSLIST_FIRST(&p->list))) {
        QSLIST_REMOVE_HEAD(&p->list, pool_next);
        qemu_coroutine_delete(co);
    }
    p->size = 0;
}

static Coroutine *pool_get(void)
{
    CoroutinePool *p = &local_pool;
    Coroutine *co = QSLIST_FIRST(&p->list);

    if (unlikely(!co)) {
        if (!pool_take_from_global(p)) {
            return NULL;
        }
        co = QSLIST_FIRST(&p->list);
    }
    QSLIST_REMOVE_HEAD(&p->list, pool_next);
    p->size--;
    return co;
}

/* Keep @co for reuse; false if every pool is full. */
static bool pool_put(Coroutine *co)
{
    CoroutinePool *p = &local_pool;
    unsigned max = qatomic_read(&pool_max_size);

    pool_register(p);
    if (unlikely(p->size >= max)) {
        /* Trim after qemu_coroutine_dec_pool_size, then spill. */
        while (p->size > max) {
            Coroutine *old = QSLIST_FIRST(&p->list);

            QSLIST_REMOVE_HEAD(&p->list, pool_next);
            p->size--;
            qemu_coroutine_delete(old);
        }
        if (max == 0 || !pool_move_to_global(p)) {
            return false;
        }
    }
    QSLIST_INSERT_HEAD(&p->list, co, pool_next);
    p->size++;
    return true;
}

void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size)
{
    qatomic_add(&pool_max_size, additional_pool_size);
}

void qemu_coroutine_dec_pool_size(unsigned int removing_pool_size)
{
    unsigned old = qatomic_fetch_sub(&pool_max_size, removing_pool_size);

    if (old < removing_pool_size) {
        error_report("qemu_coroutine_dec_pool_size: removing %u from a "
                     "pool size of %u; each decrease must undo an "
                     "earlier qemu_coroutine_inc_pool_size",
                     removing_pool_size, old);
        abort();
    }
}

#else /* !CONFIG_COROUTINE_POOL */

static Coroutine *pool_get(void)
{
    return NULL;
}

static bool pool_put(Coroutine *co)
{
    return false;
}

void qemu_coroutine_inc_pool_size(unsigned int additional_pool_size)
{
}

void qemu_coroutine_dec_pool_size(unsigned int removing_pool_size)
{
}

#endif /* CONFIG_COROUTINE_POOL */

/* ---- Life cycle --------------------------------------------------------- */

QAIO_THREAD_LOCAL Coroutine *coroutine_current;

/*
 * This thread's running coroutine, for the out-of-line functions below
 * (see coroutine_current for why only those).
 */
static inline Coroutine *coroutine_self_inline(void)
{
    Coroutine *self = coroutine_current;

    if (unlikely(!self)) {
        self = coroutine_leader();
        coroutine_current = self;
    }
    return self;
}

Coroutine * QEMU_CO_TLS_FN_ qemu_coroutine_self(void)
{
    return coroutine_self_inline();
}

bool QEMU_CO_TLS_FN_ qemu_in_coroutine(void)
{
    Coroutine *self = coroutine_current;

    return self && self->caller;
}

Coroutine * QEMU_CO_TLS_FN_
qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co = pool_get();

    if (!co) {
        co = qemu_coroutine_new();
    }
    co->entry = entry;
    co->entry_arg = opaque;
    co->ctx = NULL;
    QSIMPLEQ_INIT(&co->co_queue_wakeup);
    return co;
}

/* @co has terminated: recycle or free it.  Entering it again aborts. */
static void coroutine_delete(Coroutine *co)
{
    if (unlikely(co->locks_held)) {
        error_report("coroutine %p terminated holding %zu coroutine "
                     "lock(s); a coroutine must release its CoMutexes "
                     "and CoRwlocks before it returns",
                     (void *)co, co->locks_held);
        abort();
    }
    co->caller = NULL;
    co->entry = NULL;
    co->entry_arg = NULL;
    if (!pool_put(co)) {
        qemu_coroutine_delete(co);
    }
}

/*
 * Abort, naming the rule, unless @to may be entered now; then make @from
 * its caller and @ctx its context.
 */
static inline void coroutine_prepare_enter(Coroutine *from, Coroutine *to,
                                           AioContext *ctx)
{
    /*
     * The scheduler's cmpxchg published @to (and its co_queue_next links)
     * before @to could reach us; this read pairs with it.
     */
    const char *scheduled = qatomic_read(&to->scheduled);

    if (unlikely(scheduled)) {
        error_report("qemu_aio_coroutine_enter: Co-routine %p was already "
                     "scheduled in '%s'; nobody else may enter it until "
                     "it has run", (void *)to, scheduled);
        abort();
    }
    if (unlikely(!to->entry)) {
        error_report("qemu_aio_coroutine_enter: Co-routine %p has "
                     "terminated; a terminated coroutine cannot be entered "
                     "again", (void *)to);
        abort();
    }
    if (unlikely(to->caller)) {
        error_report("qemu_aio_coroutine_enter: Co-routine %p re-entered "
                     "recursively: it is running (it has not yielded since "
                     "it was last entered)", (void *)to);
        abort();
    }

    to->caller = from;
    to->ctx = ctx;
    /*
     * Publish to->ctx before the coroutine runs and hands itself to
     * anything that may aio_co_wake() it from another thread; pairs with
     * the read barrier in aio_co_wake().
     */
    smp_wmb();
}

/*
 * The enter fast path: nothing to do once @co gives control back unless
 * coroutine_leave_needs_finish(), and then the switch runs
 * coroutine_enter_finish() before it returns.  A tail call, like the one
 * in qemu_coroutine_yield(): the asm backend then resumes our caller
 * directly (coroutine-asm.c).
 */
void QEMU_CO_TLS_FN_
qemu_aio_coroutine_enter(AioContext *ctx, Coroutine *co)
{
    Coroutine *from = coroutine_self_inline();

    coroutine_prepare_enter(from, co, ctx);
    qemu_coroutine_switch(from, co, COROUTINE_ENTER);
}

void coroutine_enter_finish(Coroutine *from, Coroutine *to,
                            CoroutineAction ret)
{
    QSIMPLEQ_HEAD(, Coroutine) pending = QSIMPLEQ_HEAD_INITIALIZER(pending);
    AioContext *ctx = to->ctx;

    /*
     * One flat loop, however long the chain of coroutines waking each
     * other: a nested call per coroutine would eat the stack.
     */
    from->in_enter_loop = true;
    for (;;) {
        AioContext *resched;

        /*
         * What @to woke while it ran goes first, in order, before what
         * was already pending: depth first, like nested calls would be.
         */
        QSIMPLEQ_PREPEND(&pending, &to->co_queue_wakeup);

        if (ret == COROUTINE_TERMINATE) {
            coroutine_delete(to);
        } else {
            assert(ret == COROUTINE_YIELD);
            resched = to->reschedule_ctx;
            if (resched) {
                /* aio_co_reschedule_self(): @to has yielded, hand it over. */
                to->reschedule_ctx = NULL;
                aio_co_schedule(resched, to);
            }
        }

        to = QSIMPLEQ_FIRST(&pending);
        if (!to) {
            break;
        }
        QSIMPLEQ_REMOVE_HEAD(&pending, co_queue_next);
        coroutine_prepare_enter(from, to, ctx);
        ret = qemu_coroutine_switch(from, to, COROUTINE_ENTER);
    }
    from->in_enter_loop = false;
}

void qemu_coroutine_enter(Coroutine *co)
{
    qemu_aio_coroutine_enter(qemu_get_current_aio_context(), co);
}

void qemu_coroutine_enter_if_inactive(Coroutine *co)
{
    if (!qemu_coroutine_entered(co)) {
        qemu_coroutine_enter(co);
    }
}

void coroutine_fn QEMU_CO_TLS_FN_ qemu_coroutine_yield(void)
{
    Coroutine *self = coroutine_self_inline();
    Coroutine *to = self->caller;

    if (unlikely(!to)) {
        error_report("qemu_coroutine_yield: not in a coroutine; only a "
                     "running coroutine can yield");
        abort();
    }
    self->caller = NULL;
    qemu_coroutine_switch(self, to, COROUTINE_YIELD);
}

bool qemu_coroutine_entered(Coroutine *co)
{
    return co->caller != NULL;
}

AioContext *qemu_coroutine_get_aio_context(Coroutine *co)
{
    return co->ctx;
}
