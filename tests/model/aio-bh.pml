/*
 * aio-bh.pml: Promela model of bottom-half scheduling against
 * aio_bh_poll()'s list slices, including a nested aio_bh_poll() called
 * from a BH callback.
 *
 * Threads: the "home" process owns the AioContext and calls aio_bh_poll()
 * until the producers are done and both BH lists are empty; two "producer"
 * processes call qemu_bh_schedule() from other threads.  The BHs:
 *   bh0: scheduled twice by producer 0 and once by producer 1, so that
 *        schedules race with each other (idempotence while BH_PENDING) and
 *        with aio_bh_dequeue(); the first time, its callback reschedules
 *        bh0 itself, which takes the home thread's own list (bh_local)
 *        when ctx->bh_list is empty, racing with the producers' schedules
 *        of bh0, and then schedules bh2.
 *   bh1: scheduled once by producer 1; its callback runs a nested
 *        aio_bh_poll(), as a callback that calls aio_poll() would.
 *   bh2: scheduled from bh0's callback, i.e. while aio_bh_poll() runs.
 * The wake-up protocol (aio_notify) is left out here; aio-notify.pml has it.
 *
 * Memory model: sequentially consistent.  Every access to shared BH state
 * in the C code is an atomic read-modify-write (fetch_or, fetch_and, the
 * cmpxchg of QSLIST_INSERT_HEAD_ATOMIC, the xchg of QSLIST_MOVE_ATOMIC),
 * all full barriers, except the emptiness check of ctx->bh_list before a
 * push onto bh_local, a load that the model makes a step of its own; the
 * slices and bh_local are private to the home thread.  Lists are sets of
 * BH ids and aio_bh_dequeue() takes any member, which covers the LIFO
 * order of the real singly linked lists (and leaves out the order between
 * ctx->bh_list and bh_local; the C comments argue that one).
 *
 * Properties (assertions; see README.md):
 *   - a BH is never on two lists at once (a push only when BH_PENDING was
 *     clear, i.e. qemu_bh_schedule is idempotent while pending);
 *   - no BH runs twice for one schedule, none is lost (final check);
 *   - a BH pushed after an aio_bh_poll() call took its slice does not run
 *     in that call (it waits for the next call, or a nested one);
 *   - a nested aio_bh_poll() returns only after every BH that was on
 *     ctx->bh_list or on an outer slice when it started has been dequeued;
 *   - every process ends (valid end state).
 *
 * With no BUG_* define the model is the C code; each of BUG_PUSH_ALWAYS,
 * BUG_CLEAR_BEFORE_REMOVE, BUG_NONATOMIC_STEAL, BUG_RESTEAL,
 * BUG_OWN_SLICE_ONLY, BUG_LOCAL_IGNORES_PENDING and BUG_NESTED_SKIPS_LOCAL
 * breaks one rule of it, and check-models.sh expects spin to reject each.
 */

#define NPROD 2
#define NBH 3
#define BIT(b) (1 << (b))

#define BH_PENDING   1
#define BH_SCHEDULED 2

/* ---- shared state (names follow the C code) ---- */
byte bh_list;              /* ctx->bh_list, as a set of BH ids */
byte bh_flags[NBH];
byte bh_local;             /* priv->bh_local: home thread only */

/*
 * Home thread only: the BHListSlice of the outer aio_bh_poll() call
 * (index 1) and of the nested one (index 2), and whether each is still on
 * ctx->bh_slice_list (appended at the tail, so 1 is always before 2).
 */
byte bh_slice[3];
bool bh_slice_queued[3];
byte depth;                /* active aio_bh_poll() calls */

/* ---- ghost state for the properties ---- */
byte sched_gen[NBH];       /* schedules so far */
byte done_gen[NBH];        /* sched_gen covered by the last run */
byte fresh[3];             /* BHs pushed since call d took its slice */
byte oblig[3];             /* BHs call d must dequeue before returning */
byte producers_done;
bool bh2_scheduled;
bool bh0_rescheduled;

#ifdef BUG_RESTEAL
#define RETURN_OK ((bh_list | bh_local) == 0)
#else
#define RETURN_OK true
#endif

#define ON_LIST(b) ((bh_list | bh_local | bh_slice[1] | bh_slice[2]) & BIT(b))

/* A push (onto either list) during call d: the BH waits for the next. */
inline mark_fresh(b)
{
    if
    :: depth >= 1 -> fresh[1] = fresh[1] | BIT(b)
    :: else
    fi;
    if
    :: depth >= 2 -> fresh[2] = fresh[2] | BIT(b)
    :: else
    fi
}

/*
 * qemu_bh_schedule() -> aio_bh_enqueue(bh, BH_SCHEDULED): the fetch_or
 * pairs with the fetch_and in aio_bh_dequeue(); only the caller that set
 * BH_PENDING pushes.  (aio_notify() follows; see aio-notify.pml.)
 */
inline qemu_bh_schedule(b, old)
{
    atomic {
        old = bh_flags[b];
        bh_flags[b] = old | BH_PENDING | BH_SCHEDULED;
        sched_gen[b]++
    }
    if
#ifdef BUG_PUSH_ALWAYS
    :: true ->
#else
    :: !(old & BH_PENDING) ->
#endif
        /* QSLIST_INSERT_HEAD_ATOMIC */
        atomic {
            assert(!ON_LIST(b));
            bh_list = bh_list | BIT(b);
            mark_fresh(b)
        }
    :: else
    fi
}

/*
 * qemu_bh_schedule() of a BH from its own callback, in the home thread
 * (aio_bh_running == bh): the same fetch_or; if it turned BH_PENDING on,
 * then a plain load of ctx->bh_list, and if that was empty a plain push
 * onto bh_local, else the atomic push.  A producer may push other BHs
 * between the load and the push.
 */
inline self_bh_schedule(b, old)
{
    atomic {
        old = bh_flags[b];
        bh_flags[b] = old | BH_PENDING | BH_SCHEDULED;
        sched_gen[b]++
    }
    if
#ifdef BUG_LOCAL_IGNORES_PENDING
    :: true ->
#else
    :: !(old & BH_PENDING) ->
#endif
        list_empty = (bh_list == 0);
        if
        :: list_empty ->
            atomic {
                assert(!ON_LIST(b));
                bh_local = bh_local | BIT(b);
                mark_fresh(b)
            }
        :: else ->
            atomic {
                assert(!ON_LIST(b));
                bh_list = bh_list | BIT(b);
                mark_fresh(b)
            }
        fi
    :: else
    fi
}

/*
 * Start of aio_bh_poll(): QSLIST_MOVE_ATOMIC takes ctx->bh_list into a new
 * slice, and bh_local (home thread only) is moved into another, both
 * appended to ctx->bh_slice_list.  The two slices of one call are one set
 * here.
 */
inline aio_bh_poll_enter()
{
    depth++;
    atomic {
        oblig[depth] = bh_list | bh_local | bh_slice[1] | bh_slice[2];
        bh_slice[depth] = bh_list;
#ifdef BUG_NONATOMIC_STEAL
    }
    /* read the head, then store NULL: a push in between is lost */
    atomic {
#endif
        bh_list = 0;
#ifdef BUG_NESTED_SKIPS_LOCAL
        /* a nested call leaves bh_local to the outer ones */
        if
        :: depth == 1 ->
            bh_slice[depth] = bh_slice[depth] | bh_local;
            bh_local = 0
        :: else
        fi;
#else
        bh_slice[depth] = bh_slice[depth] | bh_local;
        bh_local = 0;
#endif
        fresh[depth] = 0;
        bh_slice_queued[depth] = true
    }
}

/*
 * The fetch_and in aio_bh_dequeue() decides whether the callback runs, so
 * that is where a run accounts for the schedules before it: at least one
 * new one (else it would be a second run for one schedule), and all of them.
 */
inline BH_RUN_COMMIT(b, old)
{
    if
    :: old & BH_SCHEDULED ->
        assert(done_gen[b] < sched_gen[b]);
        done_gen[b] = sched_gen[b]
    :: else
    fi
}

active proctype home()
{
    byte s, b, old, old2;
    bool list_empty;            /* self_bh_schedule(): ctx->bh_list empty */

    /* harness: like a test that polls until all the work has been run */
    do
    :: producers_done == NPROD && bh_list == 0 && bh_local == 0 -> break
    :: else ->
        /* aio_bh_poll(ctx) */
        aio_bh_poll_enter();
        do
        :: true ->
            /* s = QSIMPLEQ_FIRST(&ctx->bh_slice_list) */
            if
#ifdef BUG_OWN_SLICE_ONLY
            /* each call walks only the slice it took itself */
            :: bh_slice_queued[depth] -> s = depth
#else
            :: bh_slice_queued[1] -> s = 1
            :: !bh_slice_queued[1] && bh_slice_queued[2] -> s = 2
#endif
            :: else -> s = 0
            fi;
            if
#ifdef BUG_RESTEAL
            /* "drain until empty": take ctx->bh_list again in this call */
            :: s == 0 && (bh_list | bh_local) != 0 ->
                atomic {
                    bh_slice[depth] = bh_list | bh_local;
                    bh_list = 0;
                    bh_local = 0;
                    bh_slice_queued[depth] = true
                }
#endif
            :: s == 0 && RETURN_OK ->
                /* this aio_bh_poll() call returns */
                assert(oblig[depth] == 0);
                atomic {
                    fresh[depth] = 0;
                    depth--
                }
                if
                :: depth == 0 -> break
                :: else        /* back in the outer call's loop */
                fi
            :: s != 0 && bh_slice[s] == 0 ->
                bh_slice_queued[s] = false
            :: s != 0 && bh_slice[s] != 0 ->
                /* aio_bh_dequeue(): QSLIST_REMOVE_HEAD, then fetch_and */
                if
                :: bh_slice[s] & BIT(0) -> b = 0
                :: bh_slice[s] & BIT(1) -> b = 1
                :: bh_slice[s] & BIT(2) -> b = 2
                fi;
                /* only BHs pushed before some call took its slice */
                assert(!(fresh[depth] & BIT(b)));
#ifdef BUG_CLEAR_BEFORE_REMOVE
                atomic {
                    old = bh_flags[b];
                    bh_flags[b] = old & ~(BH_PENDING | BH_SCHEDULED);
                    BH_RUN_COMMIT(b, old)
                }
                bh_slice[s] = bh_slice[s] & ~BIT(b);
#else
                atomic {
                    bh_slice[s] = bh_slice[s] & ~BIT(b);
                    old = bh_flags[b];
                    bh_flags[b] = old & ~(BH_PENDING | BH_SCHEDULED);
                    BH_RUN_COMMIT(b, old)
                }
#endif
                oblig[1] = oblig[1] & ~BIT(b);
                oblig[2] = oblig[2] & ~BIT(b);
                if
                :: old & BH_SCHEDULED ->
                    /* aio_bh_call(): the callback */
                    if
                    :: b == 0 && !bh2_scheduled ->
                        /* bh0 first: it may find ctx->bh_list empty */
                        if
                        :: !bh0_rescheduled ->
                            bh0_rescheduled = true;
                            self_bh_schedule(0, old2)
                        :: else
                        fi;
                        bh2_scheduled = true;
                        qemu_bh_schedule(2, old2)
                    :: b == 1 && depth == 1 ->
                        /* the callback calls aio_bh_poll() (via aio_poll) */
                        aio_bh_poll_enter()
                    :: else
                    fi
                :: else
                fi
            fi
        od
    od;

    /* no BH lost: every schedule was followed by a run */
    b = 0;
    do
    :: b < NBH ->
        assert(done_gen[b] == sched_gen[b] && bh_flags[b] == 0);
        b++
    :: else -> break
    od
}

active proctype producer0()
{
    byte old;

    qemu_bh_schedule(0, old);
    qemu_bh_schedule(0, old);
    producers_done++
}

active proctype producer1()
{
    byte old;

    qemu_bh_schedule(0, old);
    qemu_bh_schedule(1, old);
    producers_done++
}
