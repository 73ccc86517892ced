/*
 * aio-bh.c: bottom halves.
 *
 * Owns QEMUBH: creation, scheduling, cancelling, deletion, and
 * aio_bh_poll(), which runs them in the context's home thread.
 *
 * Threading: qemu_bh_schedule, qemu_bh_cancel and qemu_bh_delete may be
 * called from any thread and from signal handlers: they only use atomic
 * operations on bh->flags and a lock-free push on ctx->bh_list (or, from
 * the BH's own callback, a push onto priv->bh_local).
 * aio_bh_schedule_oneshot may be called from any thread, but not from a
 * signal handler: it allocates.  aio_bh_poll and aio_bh_call run in the
 * home thread only; the slices (ctx->bh_slice_list) and priv->bh_local
 * are home-thread data.
 *
 * The protocol: setting BH_PENDING (with an atomic fetch_or) gives the
 * setter the right to push the BH onto ctx->bh_list; the consumer unlinks a
 * BH and only then clears BH_PENDING (atomic fetch_and), so a BH is on at
 * most one list at a time and is never lost.  A BH that reschedules itself
 * from its own callback goes onto the home thread's own list instead
 * (priv->bh_local, no atomic push and no exchange to take it back) when
 * ctx->bh_list is empty; see aio_bh_enqueue().  Model:
 * tests/model/aio-bh.pml.
 */
#include "qemu/osdep.h"
#include "aio-int.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"

QEMUBH *aio_bh_new_full(AioContext *ctx, QEMUBHFunc *cb, void *opaque,
                        const char *name, MemReentrancyGuard *reentrancy_guard)
{
    QEMUBH *bh = g_new(QEMUBH, 1);

    *bh = (QEMUBH){
        .ctx = ctx,
        .cb = cb,
        .opaque = opaque,
        .name = name,
        .reentrancy_guard = reentrancy_guard,
    };
    return bh;
}

/*
 * The BH whose callback aio_bh_poll() is running in this thread, if any.
 * Set only around the callback itself: while it is set, this thread does
 * not touch the context's bh_local list except through aio_bh_enqueue(),
 * so a signal handler interrupting the callback may push there too.
 */
static QAIO_THREAD_LOCAL QEMUBH *aio_bh_running;

/*
 * Mark @bh with @new_flags and make sure it is queued.  Async-signal-safe:
 * no locks, no allocation.  After the push the home thread may run and free
 * the BH at any moment, so @bh is not touched again.
 *
 * A BH rescheduling itself from its own callback, the loop of a busy
 * producer, goes onto bh_local, the home thread's own list, without an
 * atomic push (and the next aio_bh_poll() takes it without an exchange),
 * provided ctx->bh_list is empty: the BH is then older than whatever is
 * pushed there later, and aio_bh_poll() runs ctx->bh_list first, which is
 * the newest-first order of a single list.  As everywhere, the fetch_or
 * that turned BH_PENDING on gave us the right to push: no other thread,
 * and no signal handler interrupting us, pushes the BH meanwhile.
 */
static inline void aio_bh_enqueue(QEMUBH *bh, unsigned new_flags)
{
    AioContext *ctx = bh->ctx;
    unsigned old_flags;

    /*
     * Full barrier; pairs with the fetch_and in aio_bh_dequeue().  Whoever
     * turns BH_PENDING on pushes the BH.
     */
    old_flags = qatomic_fetch_or(&bh->flags, BH_PENDING | new_flags);
    if (!(old_flags & BH_PENDING)) {
        if (bh == aio_bh_running && !qatomic_read(&ctx->bh_list.slh_first)) {
            BHList *local = &aio_priv(ctx)->bh_local;

            bh->next.sle_next = local->slh_first;
            qatomic_set(&local->slh_first, bh);
        } else {
            QSLIST_INSERT_HEAD_ATOMIC(&ctx->bh_list, bh, next);
        }
    }
    if (!aio_notify_unneeded(ctx)) {
        aio_notify(ctx);
    }
}

/* Unlink the first BH of @head; returns it with the flags it had. */
static QEMUBH *aio_bh_dequeue(BHList *head, unsigned *flags)
{
    QEMUBH *bh = QSLIST_FIRST(head);

    if (!bh) {
        return NULL;
    }
    QSLIST_REMOVE_HEAD(head, next);

    /*
     * Clear BH_PENDING only now that the BH is off the list, so a concurrent
     * qemu_bh_schedule() pushes it again instead of assuming it is queued.
     * Pairs with the fetch_or in aio_bh_enqueue().
     */
    *flags = qatomic_fetch_and(&bh->flags,
                               ~(BH_PENDING | BH_SCHEDULED | BH_IDLE));
    return bh;
}

void aio_bh_schedule_oneshot_full(AioContext *ctx, QEMUBHFunc *cb,
                                  void *opaque, const char *name)
{
    QEMUBH *bh = aio_bh_new_full(ctx, cb, opaque, name, NULL);

    aio_bh_enqueue(bh, BH_SCHEDULED | BH_ONESHOT);
}

void qemu_bh_schedule(QEMUBH *bh)
{
    aio_bh_enqueue(bh, BH_SCHEDULED);
}

void qemu_bh_schedule_idle(QEMUBH *bh)
{
    aio_bh_enqueue(bh, BH_SCHEDULED | BH_IDLE);
}

void qemu_bh_cancel(QEMUBH *bh)
{
    qatomic_and(&bh->flags, ~BH_SCHEDULED);
}

/*
 * Guarded callbacks running in this thread, innermost first.  A callback
 * that deletes its own BH may free the guard's owner before returning, so
 * qemu_bh_delete() disengages the guard at once and aio_bh_call() must not
 * touch it afterwards.
 */
typedef struct BHGuardFrame {
    QEMUBH *bh;
    MemReentrancyGuard *guard;      /* NULL once disengaged early */
    struct BHGuardFrame *outer;
} BHGuardFrame;

static QAIO_THREAD_LOCAL BHGuardFrame *bh_guard_frames;

void qemu_bh_delete(QEMUBH *bh)
{
    const char *name = bh->name;
    BHGuardFrame *frame;
    unsigned old_flags;

    for (frame = bh_guard_frames; frame; frame = frame->outer) {
        if (frame->bh == bh && frame->guard) {
            frame->guard->engaged_in_io = false;
            frame->guard = NULL;
        }
    }

    old_flags = qatomic_read(&bh->flags);
    if (old_flags & BH_DELETED) {
        error_report("qemu_bh_delete: bottom half '%s' deleted twice",
                     name ? name : "(unnamed)");
        abort();
    }
    aio_bh_enqueue(bh, BH_DELETED);
}

void aio_bh_call(QEMUBH *bh)
{
    MemReentrancyGuard *guard = bh->reentrancy_guard;
    BHGuardFrame frame;

    if (!guard) {
        bh->cb(bh->opaque);
        return;
    }

    if (guard->engaged_in_io) {
        /* Its owner is inside a guarded callback already: do not re-enter. */
        warn_report("bottom half '%s' not run: its reentrancy guard is "
                    "engaged", bh->name ? bh->name : "(unnamed)");
        return;
    }

    frame = (BHGuardFrame){ .bh = bh, .guard = guard, .outer = bh_guard_frames };
    bh_guard_frames = &frame;
    guard->engaged_in_io = true;

    bh->cb(bh->opaque);

    if (frame.guard) {
        frame.guard->engaged_in_io = false;
    }
    bh_guard_frames = frame.outer;
}

int aio_bh_poll(AioContext *ctx)
{
    BHList *local = &aio_priv(ctx)->bh_local;
    QEMUBH *outer_running;
    BHListSlice slice;
    BHListSlice local_slice;
    BHListSlice *s;
    bool progress = false;

    if (!qatomic_read(&ctx->bh_list.slh_first) && !local->slh_first &&
        QSIMPLEQ_EMPTY(&ctx->bh_slice_list)) {
        return false;
    }

    outer_running = aio_bh_running;
    if (outer_running) {
        /* Called from a callback: keep its BH off bh_local while we work. */
        aio_bh_running = NULL;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    }

    /*
     * Take everything scheduled so far; later BHs wait for the next call.
     * ctx->bh_list holds the newer BHs, so its slice goes first.
     */
    if (qatomic_read(&ctx->bh_list.slh_first)) {
        QSLIST_MOVE_ATOMIC(&slice.bh_list, &ctx->bh_list);
        QSIMPLEQ_INSERT_TAIL(&ctx->bh_slice_list, &slice, next);
    }
    if (local->slh_first) {
        local_slice.bh_list = *local;
        QSLIST_INIT(local);
        QSIMPLEQ_INSERT_TAIL(&ctx->bh_slice_list, &local_slice, next);
    }

    /*
     * Work through every slice, outermost first: a nested call (a BH
     * callback running aio_poll) finishes the BHs of the calls around it.
     * Every call empties the slice list before it returns, so no slice
     * outlives its frame.
     */
    while ((s = QSIMPLEQ_FIRST(&ctx->bh_slice_list))) {
        unsigned flags;
        QEMUBH *bh = aio_bh_dequeue(&s->bh_list, &flags);

        if (!bh) {
            QSIMPLEQ_REMOVE_HEAD(&ctx->bh_slice_list, next);
            continue;
        }

        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (!(flags & BH_IDLE)) {
                progress = true;
            }
            aio_metric_add(ctx, bh_calls, 1);
            aio_bh_running = bh;
            /* aio_bh_call(), without the call for unguarded BHs. */
            if (likely(!bh->reentrancy_guard)) {
                bh->cb(bh->opaque);
            } else {
                aio_bh_call(bh);
            }
            aio_bh_running = NULL;
        }
        if (unlikely(flags & (BH_DELETED | BH_ONESHOT))) {
            g_free(bh);
        }
    }

    /* Our lists are all done with: the callback's BH may use bh_local. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    aio_bh_running = outer_running;
    return progress;
}

/*
 * 0 if a BH is scheduled, BH_IDLE_TIMEOUT_NS if only idle BHs are, -1 if
 * none.  Home thread only; other threads may push meanwhile, which is fine:
 * a push also notifies.
 */
int64_t aio_bh_timeout(AioContext *ctx)
{
    int64_t timeout = -1;
    BHListSlice *s;
    QEMUBH *bh;

    /* Where a BH that keeps rescheduling itself is. */
    for (bh = qatomic_read(&aio_priv(ctx)->bh_local.slh_first); bh;
         bh = bh->next.sle_next) {
        unsigned flags = qatomic_read(&bh->flags);

        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (!(flags & BH_IDLE)) {
                return 0;
            }
            timeout = BH_IDLE_TIMEOUT_NS;
        }
    }

    /* The acquire load pairs with the push's compare-and-swap. */
    for (bh = qatomic_rcu_read(&ctx->bh_list.slh_first); bh;
         bh = bh->next.sle_next) {
        unsigned flags = qatomic_read(&bh->flags);

        if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
            if (!(flags & BH_IDLE)) {
                return 0;
            }
            timeout = BH_IDLE_TIMEOUT_NS;
        }
    }

    QSIMPLEQ_FOREACH(s, &ctx->bh_slice_list, next) {
        QSLIST_FOREACH(bh, &s->bh_list, next) {
            unsigned flags = qatomic_read(&bh->flags);

            if ((flags & (BH_SCHEDULED | BH_DELETED)) == BH_SCHEDULED) {
                if (!(flags & BH_IDLE)) {
                    return 0;
                }
                timeout = BH_IDLE_TIMEOUT_NS;
            }
        }
    }
    return timeout;
}

/*
 * Free every BH still queued when the context goes away, without running
 * any.  A BH that was scheduled but never deleted belongs to a user who
 * still holds a pointer to it; say so.
 */
void aio_bh_list_free_all(AioContext *ctx)
{
    unsigned flags;
    QEMUBH *bh;

    assert(QSIMPLEQ_EMPTY(&ctx->bh_slice_list));
    while ((bh = aio_bh_dequeue(&ctx->bh_list, &flags)) ||
           (bh = aio_bh_dequeue(&aio_priv(ctx)->bh_local, &flags))) {
        if (!(flags & (BH_DELETED | BH_ONESHOT))) {
            warn_report("bottom half '%s' freed with its AioContext; "
                        "it was scheduled but never deleted",
                        bh->name ? bh->name : "(unnamed)");
        }
        g_free(bh);
    }
}
