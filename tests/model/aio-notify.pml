/*
 * aio-notify.pml: Promela model of the wake-up protocol between the
 * AioContext home thread (aio_poll, or the GSource prepare/check/dispatch
 * cycle) and other threads calling qemu_bh_schedule / aio_notify.
 *
 * Threads: one "home" process owns the context and loops forever on
 * aio_poll(ctx, true) (with -DNONBLOCKING also aio_poll(ctx, false), with
 * -DGSOURCE also GLib main loop iterations: prepare, poll, check,
 * dispatch; chosen nondeterministically each time round).  NPROD
 * "producer" processes each schedule a BH ROUNDS times and wait for its
 * callback to run before scheduling again, like a thread that posts work
 * and waits for the ack; one callback also schedules a BH from the home
 * thread, and that BH's callback reschedules it once more, which puts it
 * on the home thread's own list (bh_local) if ctx->bh_list is empty.  A "flusher" process drains store buffers at arbitrary moments
 * and a "watchdog" fires when nothing else can move.
 *
 * The model follows src/aio-notify.c, aio-posix.c, aio-gsource.c and
 * aio-bh.c, fast paths included: aio_notify_accept() with nothing to clear
 * neither stores nor fences, aio_bh_poll() with an empty list does no
 * exchange, and aio_notify() from the home thread while it dispatches
 * returns at once if notify_me is 0.
 *
 * Memory model: loads execute in program order; stores to the two plain
 * shared variables (notify_me, notified) go to a per-thread, per-location
 * store buffer and reach memory later, in any order (so both store->load
 * and store->store reordering are possible, i.e. weaker than x86-TSO).  A
 * load first looks in the thread's own buffer.  smp_mb() and every atomic
 * read-modify-write (fetch_or, fetch_and, xchg, cmpxchg: all full barriers
 * in QEMU's atomics) drain the thread's buffer; a release store drains it
 * before buffering itself; smp_wmb() drains it (it is always followed by a
 * store here, so draining is exactly "earlier stores before later ones").
 * A store to a location that already has a buffered store drains that one
 * first (buffer depth one per location).  The EventNotifier (eventfd) is a
 * kernel object: its set / test-and-clear are single atomic steps that do
 * not drain the buffer.  Loads are never moved: the loads whose order
 * matters are separated by smp_mb() or smp_rmb(), and moving a load after
 * a later store could only publish that store earlier.
 *
 * Properties (see README.md): no lost wake-up and no lost BH (watchdog
 * assertion when the system is stuck, plus valid end states), no BH run
 * twice for one schedule and no BH on two lists (assertions).
 *
 * Switches: GSOURCE, NONBLOCKING, SHARED_BH, NPROD (1-2), ROUNDS,
 * OTHER_WAKEUPS and ACCEPT_ALWAYS (QEMU's unconditional clear in
 * aio_notify_accept) choose the configuration.  With no BUG_* define the model
 * is the C code; each BUG_* define (BUG_POLL_NO_MB, BUG_NOTIFY_NO_MB,
 * BUG_PREPARE_NO_MB, BUG_ACCEPT_NO_MB, BUG_SKIP_SET, BUG_PUSH_ALWAYS,
 * BUG_ACCEPT_LATE, BUG_TIMEOUT_SKIPS_LOCAL) breaks one rule of it;
 * check-models.sh knows which of them spin must reject.
 */

#ifndef NPROD
#define NPROD 2
#endif
#ifndef ROUNDS
#define ROUNDS 2
#endif

/*
 * BH ids: the producers' BHs (-DSHARED_BH: all producers schedule the same
 * one, for idempotence races), then SELF_BH, which the home thread
 * schedules from a callback (aio_notify() from a dispatching home thread).
 */
#ifdef SHARED_BH
#define NPBH 1
#define BH_OF(p) 0
#else
#define NPBH NPROD
#define BH_OF(p) (p)
#endif
#define SELF_BH NPBH
#define NBH (NPBH + 1)

#define BH_PENDING   1
#define BH_SCHEDULED 2

/*
 * How many times the wait may end because some other fd handler or GLib
 * source became ready.  Bounded so that the watchdog can still see a home
 * thread that sleeps forever.
 */
#ifndef OTHER_WAKEUPS
#define OTHER_WAKEUPS 1
#endif

/* aio_compute_timeout() result "-1": block until the notifier fires. */
#define TIMEOUT_INF  1

/* ---- shared state (names follow the C code) ---- */
byte notify_me;            /* bit 0: GSource prepare..check; 1..: aio_poll */
bool notified;
bool notifier;             /* ctx->notifier: eventfd counter non-zero */
byte bh_list;              /* ctx->bh_list, as a set of BH ids */
byte bh_local;             /* priv->bh_local: home thread only */
byte bh_slice;             /* the BHListSlice of the running aio_bh_poll */
byte bh_flags[NBH];

/* ---- store buffers: one slot per (thread, location) ---- */
bool home_sb_notify_me_valid;
byte home_sb_notify_me;
bool home_sb_notified_valid;
bool home_sb_notified;
bool producer_sb_notified_valid[NPROD];  /* producers only store true */

/*
 * ---- ghost state: read only by assertions and the producers' ack wait,
 * never by the protocol ----
 */
byte sched_gen[NBH];       /* schedules so far (one per fetch_or) */
byte done_gen[NBH];        /* sched_gen covered by the last run */
byte producers_done;
bool self_bh_scheduled;
bool self_bh_rescheduled;

byte other_wakeups;        /* waits ended by some other fd or source */

/* ---- memory primitives ---- */

inline home_flush()
{
    if
    :: home_sb_notify_me_valid ->
        notify_me = home_sb_notify_me;
        home_sb_notify_me_valid = false
    :: else
    fi;
    if
    :: home_sb_notified_valid ->
        notified = home_sb_notified;
        home_sb_notified_valid = false
    :: else
    fi
}

inline producer_flush(p)
{
    if
    :: producer_sb_notified_valid[p] ->
        notified = true;
        producer_sb_notified_valid[p] = false
    :: else
    fi
}

#define HOME_LOAD_NOTIFY_ME \
    (home_sb_notify_me_valid -> home_sb_notify_me : notify_me)
#define HOME_LOAD_NOTIFIED \
    (home_sb_notified_valid -> home_sb_notified : notified)

/*
 * The home thread is the only writer of notify_me, so the callers make its
 * read-modify-write (a load, then a buffered store) one step: no other
 * thread can tell the difference.
 */
inline home_store_notify_me(v)
{
    atomic {
        if
        :: home_sb_notify_me_valid -> notify_me = home_sb_notify_me
        :: else
        fi;
        home_sb_notify_me = v;
        home_sb_notify_me_valid = true
    }
}

/* qatomic_store_release(): earlier accesses first, then this store. */
inline home_store_release_notify_me(v)
{
    atomic {
        home_flush();
        home_sb_notify_me = v;
        home_sb_notify_me_valid = true
    }
}

inline home_store_notified(v)
{
    atomic {
        if
        :: home_sb_notified_valid -> notified = home_sb_notified
        :: else
        fi;
        home_sb_notified = v;
        home_sb_notified_valid = true
    }
}

inline home_smp_mb()
{
    atomic { home_flush() }
}

/* ---- the protocol ---- */

/*
 * The BH lists aio_bh_timeout() walks: bh_local (home thread only) and
 * ctx->bh_list.
 */
#ifdef BUG_TIMEOUT_SKIPS_LOCAL
#define LISTED_BHS (bh_list)
#else
#define LISTED_BHS (bh_list | bh_local)
#endif

/*
 * aio_compute_timeout(): 0 if a scheduled BH sits on a BH list (the slice
 * list is empty outside aio_bh_poll here), else "infinite".  A walk of the
 * list is plain loads; the head is read once and BHs only ever get pushed
 * at the head, so one step reading the whole set is faithful.
 */
inline aio_compute_timeout(t)
{
    atomic {
        t = TIMEOUT_INF;
        b = 0;
        do
        :: b < NBH ->
            if
            :: (LISTED_BHS & (1 << b)) && (bh_flags[b] & BH_SCHEDULED) ->
                t = 0
            :: else
            fi;
            b++
        :: else -> break
        od
    }
}

/*
 * aio_notify_accept(): if notified is set, clear it, then a full barrier so
 * that the clear is ordered before the reads of BH flags / the BH list
 * that follow (pairs with smp_wmb() in aio_notify()).  If it is clear
 * there is nothing to do (the smp_rmb() there orders loads only, which the
 * model never reorders); -DACCEPT_ALWAYS clears it unconditionally.
 */
#ifdef ACCEPT_ALWAYS
#define ACCEPT_FAST_PATH false
#else
#define ACCEPT_FAST_PATH (!HOME_LOAD_NOTIFIED)
#endif

inline aio_notify_accept()
{
    if
    :: ACCEPT_FAST_PATH
    :: else ->
        home_store_notified(false);
#ifndef BUG_ACCEPT_NO_MB
        home_smp_mb()
#else
        skip
#endif
    fi
}

/*
 * qemu_bh_schedule(SELF_BH) from a callback in the home thread.  Its
 * aio_notify() returns at once when notify_me is 0, because the home
 * thread is dispatching (aio_dispatching_ctx == ctx) and looks at the BH
 * lists again before it next blocks.  From SELF_BH's own callback (@own)
 * the BH goes onto bh_local, without an atomic push, if ctx->bh_list is
 * empty when loaded.
 */
inline self_bh_schedule(own)
{
    atomic {
        home_flush();
        old = bh_flags[SELF_BH];
        bh_flags[SELF_BH] = old | BH_PENDING | BH_SCHEDULED;
        sched_gen[SELF_BH]++
    }
    if
    :: !(old & BH_PENDING) && own && bh_list == 0 ->
        assert(!((bh_list | bh_local | bh_slice) & (1 << SELF_BH)));
        bh_local = bh_local | (1 << SELF_BH)
    :: !(old & BH_PENDING) && !(own && bh_list == 0) ->
        atomic {
            home_flush();
            assert(!((bh_list | bh_local | bh_slice) & (1 << SELF_BH)));
            bh_list = bh_list | (1 << SELF_BH)
        }
    :: else
    fi;
    if
    :: HOME_LOAD_NOTIFY_ME == 0
    :: else ->
        atomic {
            home_flush();           /* smp_wmb() */
            home_sb_notified = true;
            home_sb_notified_valid = true
        }
        home_smp_mb();
        if
        :: notify_me != 0 -> notifier = true
        :: else
        fi
    fi
}

/*
 * aio_bh_poll(): if ctx->bh_list is not empty, take it into a slice with
 * an atomic exchange (with nothing to take, no exchange and no barrier),
 * and bh_local with plain accesses; then aio_bh_dequeue() each BH (private
 * unlink + fetch_and of ~(BH_PENDING | BH_SCHEDULED)) and run it if it was
 * scheduled.  The fetch_and decides the run, so that is where the ghost
 * done_gen catches up with sched_gen.  BH 0's first callback schedules
 * SELF_BH, whose first callback reschedules itself.
 */
inline aio_bh_poll()
{
    if
    :: bh_list == 0
    :: else ->
        atomic {
            home_flush();
            bh_slice = bh_list;
            bh_list = 0
        }
    fi;
    d_step {
        bh_slice = bh_slice | bh_local;
        bh_local = 0
    }
    do
    :: bh_slice == 0 -> break
    :: else ->
        atomic {
            home_flush();
            b = 0;
            do
            :: bh_slice & (1 << b) -> break
            :: else -> b++
            od;
            bh_slice = bh_slice & ~(1 << b);
            old = bh_flags[b];
            bh_flags[b] = old & ~(BH_PENDING | BH_SCHEDULED);
            if
            :: old & BH_SCHEDULED ->
                /* one run per batch of schedules, and at least one new */
                assert(done_gen[b] < sched_gen[b]);
                done_gen[b] = sched_gen[b]
            :: else -> b = NBH      /* not run */
            fi
        }
        /* aio_bh_call() */
        if
        :: b == 0 && !self_bh_scheduled ->
            self_bh_scheduled = true;
            self_bh_schedule(false)
        :: b == SELF_BH && !self_bh_rescheduled ->
            self_bh_rescheduled = true;
            self_bh_schedule(true)
        :: else
        fi
    od
}

/*
 * The context's own notifier handler (aio_context_notifier_cb): runs in
 * dispatch, after aio_bh_poll(), only if the wait reported the eventfd
 * readable; event_notifier_test_and_clear() zeroes the counter, including
 * any increment that arrived after the wait.
 */
inline notifier_cb()
{
    if
    :: ev_ready -> notifier = false; ev_ready = false
    :: else
    fi
}

active proctype home()
{
    byte tmo, b, old, nm;
    bool blocking = true;
    bool use_notify_me, ev_ready, gsource, dispatch;

    do
    :: true ->
        /* what the home thread runs this time round */
        if
        :: skip                         /* aio_poll(ctx, true) */
#ifdef NONBLOCKING
        :: blocking = false             /* aio_poll(ctx, false) */
#endif
#ifdef GSOURCE
        :: gsource = true               /* g_main_context_iteration() */
#endif
        fi;
        if
        :: gsource ->
            /*
             * aio_ctx_prepare(): set bit 0 before computing the timeout.
             * Pairs with smp_mb() in aio_notify().
             */
            atomic {
                nm = HOME_LOAD_NOTIFY_ME;
                home_store_notify_me(nm | 1);
                nm = 0
            }
#ifndef BUG_PREPARE_NO_MB
            home_smp_mb();
#endif
            aio_compute_timeout(tmo)
        :: else ->
            /* aio_poll(ctx, blocking) */
            if
            :: blocking -> aio_compute_timeout(tmo)
            :: else -> tmo = 0
            fi;
            use_notify_me = (tmo != 0);
            if
            :: use_notify_me ->
                atomic {
                    nm = HOME_LOAD_NOTIFY_ME;
                    home_store_notify_me(nm + 2);
                    nm = 0
                }
#ifndef BUG_POLL_NO_MB
                /* write notify_me before reading notified */
                home_smp_mb();
#endif
                if
                :: HOME_LOAD_NOTIFIED -> tmo = 0
                :: else
                fi
            :: else
            fi
        fi;

        /* fdmon wait / g_poll() on the notifier's fd */
        if
        :: tmo == 0 -> ev_ready = notifier
        :: tmo == 0 && !gsource ->
            /* aio_poll skips the wait when timeout is 0 and !need_wait */
            ev_ready = false
        :: tmo != 0 ->
end_wait:
            notifier -> ev_ready = true
        :: tmo != 0 && other_wakeups < OTHER_WAKEUPS ->
            /* another fd or GSource ended the wait; ours may be ready too */
            other_wakeups++;
            ev_ready = notifier
        fi;

        if
        :: gsource && tmo == 0 ->
            /*
             * aio_ctx_prepare() returned TRUE: GLib skips check and goes
             * straight to dispatch, so bit 0 stays set and notified is not
             * accepted in this iteration (both only cost a spare wake-up).
             */
            aio_bh_poll();
            notifier_cb()
        :: gsource && tmo != 0 ->
            /* aio_ctx_check() */
            atomic {
                nm = HOME_LOAD_NOTIFY_ME;
                home_store_release_notify_me(nm & ~1);
                nm = 0
            }
#ifndef BUG_ACCEPT_LATE
            aio_notify_accept();
#endif
            atomic {
                dispatch = ev_ready;
                b = 0;
                do
                :: b < NBH ->
                    if
                    :: (LISTED_BHS & (1 << b)) &&
                       (bh_flags[b] & BH_SCHEDULED) -> dispatch = true
                    :: else
                    fi;
                    b++
                :: else -> break
                od
            }
#ifdef BUG_ACCEPT_LATE
            aio_notify_accept();
#endif
            if
            :: dispatch ->
                /* aio_ctx_dispatch() -> aio_dispatch() */
                aio_bh_poll();
                notifier_cb()
            :: else
            fi
        :: !gsource ->
            if
            :: use_notify_me ->
                /* finish the wait before dropping our share */
                atomic {
                    nm = HOME_LOAD_NOTIFY_ME;
                    home_store_release_notify_me(nm - 2);
                    nm = 0
                }
            :: else
            fi;
#ifndef BUG_ACCEPT_LATE
            aio_notify_accept();
#endif
            aio_bh_poll();
#ifdef BUG_ACCEPT_LATE
            aio_notify_accept();
#endif
            notifier_cb()
        fi;

        /* locals are dead here; zero them so equal states compare equal */
        d_step {
            tmo = 0; b = 0; old = 0;
            blocking = true; use_notify_me = false; gsource = false;
            dispatch = false
        }
    od
}

proctype producer(byte p)
{
    byte b = BH_OF(p);
    byte old, my, r;
    bool was_notified;

    r = 0;
    do
    :: r < ROUNDS ->
        /*
         * qemu_bh_schedule() -> aio_bh_enqueue(bh, BH_SCHEDULED): the
         * fetch_or pairs with the fetch_and in aio_bh_dequeue(); only the
         * caller that sets BH_PENDING pushes, so the BH is on one list.
         */
        atomic {
            producer_flush(p);
            old = bh_flags[b];
            bh_flags[b] = old | BH_PENDING | BH_SCHEDULED;
            sched_gen[b]++;
            my = sched_gen[b]
        }
#ifdef BUG_PUSH_ALWAYS
        if
        :: true ->
#else
        if
        :: !(old & BH_PENDING) ->
#endif
            /* QSLIST_INSERT_HEAD_ATOMIC: cmpxchg, a full barrier */
            atomic {
                producer_flush(p);
                assert(!((bh_list | bh_local | bh_slice) & (1 << b)));
                bh_list = bh_list | (1 << b)
            }
        :: else
        fi;

        /* aio_notify() */
#ifdef BUG_SKIP_SET
        /* "optimised": only the first notifier since the accept sets it */
        atomic {
            producer_flush(p);
            was_notified = notified;
            notified = true
        }
#else
        /*
         * smp_wmb(): the BH list before notified (pairs with the smp_mb()
         * in aio_notify_accept()), then the store of notified.
         */
        atomic {
            producer_flush(p);
            producer_sb_notified_valid[p] = true
        }
#ifndef BUG_NOTIFY_NO_MB
        /* smp_mb(): notified before reading notify_me; pairs with aio_poll */
        atomic { producer_flush(p) }
#endif
#endif
        if
        :: notify_me != 0 && !was_notified ->
            notifier = true        /* event_notifier_set() */
        :: else
        fi;

        /* harness: wait for the callback to ack this schedule */
        done_gen[b] >= my;
        d_step {
            r++; old = 0; my = 0; was_notified = false
        }
    :: else -> break
    od;
    producers_done++
}

/* Drains buffered stores at arbitrary moments (they all get there). */
active proctype flusher()
{
end_flusher:
    do
    :: atomic {
           home_sb_notify_me_valid ->
           notify_me = home_sb_notify_me;
           home_sb_notify_me_valid = false
       }
    :: atomic {
           home_sb_notified_valid ->
           notified = home_sb_notified;
           home_sb_notified_valid = false
       }
    :: atomic {
           producer_sb_notified_valid[0] ->
           notified = true;
           producer_sb_notified_valid[0] = false
       }
#if NPROD > 1
    :: atomic {
           producer_sb_notified_valid[1] ->
           notified = true;
           producer_sb_notified_valid[1] = false
       }
#endif
    od
}

/*
 * "timeout" is true only when no other statement in the system can run:
 * the home thread is blocked in its wait and every producer is blocked or
 * finished.  At that point every producer must be finished and every
 * schedule must have been followed by a run; otherwise a wake-up (or a
 * BH) was lost and the home thread sleeps forever with work queued.
 */
active proctype watchdog()
{
    byte i;

    timeout ->
    assert(producers_done == NPROD);
    i = 0;
    do
    :: i < NBH ->
        assert(done_gen[i] == sched_gen[i]);
        i++
    :: else -> break
    od
}

init
{
    byte i;

    atomic {
        i = 0;
        do
        :: i < NPROD -> run producer(i); i++
        :: else -> break
        od
    }
}
