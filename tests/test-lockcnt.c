/*
 * test-lockcnt.c: QemuLockCnt (qemu/lockcnt.h).
 *
 * The blocking cases look inside the Linux implementation: the two low bits
 * of lockcnt->count are the lock state (0 free, 1 locked, 2 locked with
 * sleepers, see src/lockcnt.c).  That plus the thread's scheduler state
 * shows that a thread is asleep in the operation under test, so "it did not
 * finish before the unlock" is a fact rather than a matter of timing.
 *
 * The stress case frees and replaces a shared object whenever the count is
 * zero while walkers read it; a walker reaching freed memory is caught by
 * ASan, or by the object's magic number without it, and a missing ordering
 * by TSan.
 */
#include "qemu/osdep.h"
#include "qemu/lockcnt.h"
#include "qemu/thread.h"
#include "thread-probe.h"

#define LC_BITS_FREE    0u
#define LC_BITS_LOCKED  1u
#define LC_BITS_WAITERS 2u

#ifdef CONFIG_LINUX
static unsigned lock_bits(QemuLockCnt *lc)
{
    return qatomic_read(&lc->count) & 3u;
}
#endif

static void assert_lock_bits(QemuLockCnt *lc, unsigned bits)
{
#ifdef CONFIG_LINUX
    g_assert_cmpuint(lock_bits(lc), ==, bits);
#endif
}

static void test_single_thread(void)
{
    QemuLockCnt lc;

    qemu_lockcnt_init(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    assert_lock_bits(&lc, LC_BITS_FREE);

    qemu_lockcnt_inc(&lc);
    qemu_lockcnt_inc(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 2);
    qemu_lockcnt_dec(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 1);

    /* Sole walker: dec_if_lock takes the lock and drops the count. */
    g_assert_true(qemu_lockcnt_dec_if_lock(&lc));
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    assert_lock_bits(&lc, LC_BITS_LOCKED);

    /* inc_and_unlock: back to one walker, lock free. */
    qemu_lockcnt_inc_and_unlock(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 1);
    assert_lock_bits(&lc, LC_BITS_FREE);

    /* Two walkers: dec_if_lock changes nothing. */
    qemu_lockcnt_inc(&lc);
    g_assert_false(qemu_lockcnt_dec_if_lock(&lc));
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 2);
    assert_lock_bits(&lc, LC_BITS_FREE);

    /* dec_and_lock locks only on the way to zero. */
    g_assert_false(qemu_lockcnt_dec_and_lock(&lc));
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 1);
    assert_lock_bits(&lc, LC_BITS_FREE);
    g_assert_true(qemu_lockcnt_dec_and_lock(&lc));
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    assert_lock_bits(&lc, LC_BITS_LOCKED);
    qemu_lockcnt_unlock(&lc);
    assert_lock_bits(&lc, LC_BITS_FREE);

    /* The lock leaves the count alone; a non-zero count ignores the lock. */
    qemu_lockcnt_lock(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    qemu_lockcnt_inc_and_unlock(&lc);
    qemu_lockcnt_lock(&lc);
    qemu_lockcnt_inc(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 2);
    assert_lock_bits(&lc, LC_BITS_LOCKED);
    qemu_lockcnt_dec(&lc);
    qemu_lockcnt_dec(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    assert_lock_bits(&lc, LC_BITS_LOCKED);
    qemu_lockcnt_unlock(&lc);

    qemu_lockcnt_destroy(&lc);
}

static void test_dec_at_zero_aborts(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        QemuLockCnt lc;

        qemu_lockcnt_init(&lc);
        qemu_lockcnt_dec(&lc);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    expected = g_strdup_printf("%s: qemu_lockcnt_dec: QemuLockCnt count was "
                               "already zero\n", g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

static void test_unlock_unlocked_aborts(void)
{
    g_autofree char *expected = NULL;

#ifndef CONFIG_LINUX
    g_test_skip("the mutex fallback leaves this to pthreads");
    return;
#endif
    if (g_test_subprocess()) {
        QemuLockCnt lc;

        qemu_lockcnt_init(&lc);
        qemu_lockcnt_unlock(&lc);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    expected = g_strdup_printf("%s: qemu_lockcnt_unlock: QemuLockCnt unlocked "
                               "while not locked\n", g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

/* A walker may start while the lock is held, as long as the count is not 0 */

typedef struct Walker {
    QemuLockCnt *lc;
    QemuEvent done;
} Walker;

static void *walk_once_thread(void *opaque)
{
    Walker *w = opaque;

    qemu_lockcnt_inc(w->lc);
    qemu_lockcnt_dec(w->lc);
    qemu_event_set(&w->done);
    return NULL;
}

static void test_inc_nonzero_ignores_lock(void)
{
    QemuLockCnt lc;
    Walker w = { .lc = &lc };
    QemuThread thread;

    qemu_lockcnt_init(&lc);
    qemu_event_init(&w.done, false);
    qemu_lockcnt_inc(&lc);
    qemu_lockcnt_lock(&lc);
    qemu_thread_create(&thread, "walker", walk_once_thread, &w,
                       QEMU_THREAD_JOINABLE);
    /* With the lock still held: if the walker waited for it, we hang here. */
    qemu_event_wait(&w.done);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 1);
    qemu_lockcnt_unlock(&lc);
    qemu_thread_join(&thread);
    qemu_lockcnt_dec(&lc);
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, 0);
    qemu_event_destroy(&w.done);
    qemu_lockcnt_destroy(&lc);
}

/* Operations that must wait for the lock holder */

typedef enum BlockedOp {
    OP_INC,             /* count 0, lock held */
    OP_LOCK,            /* lock held */
    OP_DEC_AND_LOCK,    /* count 1, lock held */
    OP_DEC_IF_LOCK,     /* count 1, lock held */
} BlockedOp;

typedef struct Blocker {
    QemuLockCnt *lc;
    BlockedOp op;
    QemuEvent ready;        /* thread -> main: about to call op */
    QemuEvent done;         /* thread -> main: op returned */
    int tid;
    bool finished;          /* atomic: op returned */
    bool result;
    unsigned count_after;
} Blocker;

static void *blocker_thread(void *opaque)
{
    Blocker *b = opaque;
    bool locked = true;

    b->tid = qemu_get_thread_id();
    /* Setting an event never sleeps: the next sleep is in the op. */
    qemu_event_set(&b->ready);
    switch (b->op) {
    case OP_INC:
        qemu_lockcnt_inc(b->lc);
        locked = false;
        b->result = true;
        break;
    case OP_LOCK:
        qemu_lockcnt_lock(b->lc);
        b->result = true;
        break;
    case OP_DEC_AND_LOCK:
        b->result = locked = qemu_lockcnt_dec_and_lock(b->lc);
        break;
    case OP_DEC_IF_LOCK:
        b->result = locked = qemu_lockcnt_dec_if_lock(b->lc);
        break;
    }
    qatomic_set(&b->finished, true);
    b->count_after = qemu_lockcnt_count(b->lc);
    if (locked) {
        qemu_lockcnt_unlock(b->lc);
    }
    qemu_event_set(&b->done);
    return NULL;
}

/*
 * Run @op in a thread while we hold the lock with @count walkers; check
 * that it sleeps until we unlock, then returns @result leaving the count at
 * @count_after.
 */
static void check_waits_for_unlock(BlockedOp op, unsigned count,
                                   bool result, unsigned count_after)
{
    QemuLockCnt lc;
    Blocker b = { .lc = &lc, .op = op };
    QemuThread thread;
    unsigned i;

#ifndef CONFIG_LINUX
    g_test_skip("needs the Linux implementation's lock bits");
    return;
#endif
    qemu_lockcnt_init(&lc);
    for (i = 0; i < count; i++) {
        qemu_lockcnt_inc(&lc);
    }
    qemu_lockcnt_lock(&lc);
    qemu_event_init(&b.ready, false);
    qemu_event_init(&b.done, false);
    qemu_thread_create(&thread, "blocker", blocker_thread, &b,
                       QEMU_THREAD_JOINABLE);
    qemu_event_wait(&b.ready);

#ifdef CONFIG_LINUX
    /* It announces itself as a sleeper... */
    for (i = 0; i < 10000000 && lock_bits(&lc) != LC_BITS_WAITERS; i++) {
        sched_yield();
    }
    g_assert_cmpuint(lock_bits(&lc), ==, LC_BITS_WAITERS);
#endif
    /* ...goes to sleep, and is still inside the operation. */
    g_assert_true(thread_probe_wait_sleeping(b.tid));
    g_assert_false(qatomic_read(&b.finished));
    g_assert_cmpuint(qemu_lockcnt_count(&lc), ==, count);

    qemu_lockcnt_unlock(&lc);
    qemu_event_wait(&b.done);
    qemu_thread_join(&thread);
    g_assert_true(b.finished);
    g_assert_true(b.result == result);
    g_assert_cmpuint(b.count_after, ==, count_after);
    assert_lock_bits(&lc, LC_BITS_FREE);

    while (qemu_lockcnt_count(&lc) > 0) {
        qemu_lockcnt_dec(&lc);
    }
    qemu_event_destroy(&b.ready);
    qemu_event_destroy(&b.done);
    qemu_lockcnt_destroy(&lc);
}

static void test_inc_zero_waits_for_lock(void)
{
    check_waits_for_unlock(OP_INC, 0, true, 1);
}

static void test_lock_waits_for_lock(void)
{
    check_waits_for_unlock(OP_LOCK, 0, true, 0);
}

static void test_dec_and_lock_waits_for_lock(void)
{
    check_waits_for_unlock(OP_DEC_AND_LOCK, 1, true, 0);
}

static void test_dec_if_lock_waits_for_lock(void)
{
    check_waits_for_unlock(OP_DEC_IF_LOCK, 1, true, 0);
}

/* Stress: walkers read a shared object that is replaced when nobody walks */

#define OBJ_MAGIC 0x0b1ec7u
#define OBJ_DEAD  0xdeadu

#ifdef QEMU_SANITIZE_THREAD
#define STRESS_ITERATIONS 200000
#else
#define STRESS_ITERATIONS 1000000
#endif

/* Iterations a replacement lingers between unpublishing and freeing. */
#define STRESS_WINDOW 200

typedef struct Obj {
    unsigned magic;
    unsigned gen;           /* number of replacements before this one */
} Obj;

typedef enum WalkerEnd {
    END_DEC,
    END_DEC_AND_LOCK,
    END_DEC_IF_LOCK,
} WalkerEnd;

static const WalkerEnd walker_ends[] = {
    END_DEC, END_DEC, END_DEC_AND_LOCK, END_DEC_IF_LOCK,
};
#define STRESS_WALKERS ARRAY_SIZE(walker_ends)

typedef struct Stress {
    QemuLockCnt lc;
    Obj *cur;               /* rcu_read/rcu_set; replaced under the lock */
    unsigned replaced;      /* under the lock */
    unsigned bad_replace;   /* atomic: replacements with walkers inside */
    unsigned walkers_left;  /* atomic */
    QemuEvent start;        /* lets all threads go at once */
} Stress;

typedef struct StressWalker {
    Stress *s;
    WalkerEnd end;
    unsigned walks;
    unsigned bad;           /* freed object or generation going back */
} StressWalker;

/* Called with the lock held; replaces the object if nobody walks. */
static void stress_replace(Stress *s)
{
    Obj *old, *new;
    unsigned held = qatomic_read(&s->lc.count);
    int i;

    if (qemu_lockcnt_count(&s->lc) != 0) {
        qatomic_inc(&s->bad_replace);
        return;
    }
    old = s->cur;
    new = g_new(Obj, 1);
    new->magic = OBJ_MAGIC;
    new->gen = old->gen + 1;
    qatomic_rcu_set(&s->cur, new);
    /*
     * Give a walker that wrongly got in time to reach @old: it would read
     * the writes below (TSan, ASan, the magic check) and leave the count
     * non-zero, which no inc may do while we hold the lock at zero.
     */
    for (i = 0; i < STRESS_WINDOW; i++) {
        if (qatomic_read(&s->lc.count) != held) {
            break;
        }
    }
    old->magic = OBJ_DEAD;
    g_free(old);
    if (qemu_lockcnt_count(&s->lc) != 0) {
        qatomic_inc(&s->bad_replace);
    }
    s->replaced++;
}

static void *stress_walker_thread(void *opaque)
{
    StressWalker *w = opaque;
    Stress *s = w->s;
    unsigned last_gen = 0;
    int i;

    qemu_event_wait(&s->start);
    for (i = 0; i < STRESS_ITERATIONS; i++) {
        Obj *o;

        qemu_lockcnt_inc(&s->lc);
        o = qatomic_rcu_read(&s->cur);
        if (o->magic != OBJ_MAGIC || o->gen < last_gen) {
            w->bad++;
        }
        last_gen = o->gen;
        w->walks++;

        switch (w->end) {
        case END_DEC:
            qemu_lockcnt_dec(&s->lc);
            break;
        case END_DEC_AND_LOCK:
            if (qemu_lockcnt_dec_and_lock(&s->lc)) {
                stress_replace(s);
                qemu_lockcnt_unlock(&s->lc);
            }
            break;
        case END_DEC_IF_LOCK:
            if (qemu_lockcnt_dec_if_lock(&s->lc)) {
                stress_replace(s);
                qemu_lockcnt_unlock(&s->lc);
            } else {
                qemu_lockcnt_dec(&s->lc);
            }
            break;
        }
    }
    qatomic_dec(&s->walkers_left);
    return NULL;
}

/* Takes the lock over and over, replacing when the count is zero. */
static void *stress_freer_thread(void *opaque)
{
    Stress *s = opaque;
    unsigned rounds = 0;

    qemu_event_wait(&s->start);
    while (qatomic_read(&s->walkers_left) > 0) {
        int i;

        qemu_lockcnt_lock(&s->lc);
        /*
         * Walkers already inside may finish and new ones may join them;
         * give the count a chance to drain, which exercises "lock held,
         * then the count drops to zero" (the acquire in qemu_lockcnt_count).
         */
        for (i = 0; i < STRESS_WINDOW; i++) {
            if (qemu_lockcnt_count(&s->lc) == 0) {
                stress_replace(s);
                break;
            }
        }
        if (rounds++ % 2) {
            qemu_lockcnt_unlock(&s->lc);
        } else {
            /* Become a walker on the way out, as aio_poll does. */
            Obj *o;

            qemu_lockcnt_inc_and_unlock(&s->lc);
            o = qatomic_rcu_read(&s->cur);
            if (o->magic != OBJ_MAGIC) {
                qatomic_inc(&s->bad_replace);
            }
            qemu_lockcnt_dec(&s->lc);
        }
    }
    return NULL;
}

static void test_stress(void)
{
    Stress s = { .walkers_left = STRESS_WALKERS };
    StressWalker walkers[STRESS_WALKERS];
    QemuThread threads[STRESS_WALKERS], freer;
    unsigned i;

    qemu_lockcnt_init(&s.lc);
    s.cur = g_new(Obj, 1);
    s.cur->magic = OBJ_MAGIC;
    s.cur->gen = 0;
    qemu_event_init(&s.start, false);

    qemu_thread_create(&freer, "freer", stress_freer_thread, &s,
                       QEMU_THREAD_JOINABLE);
    for (i = 0; i < STRESS_WALKERS; i++) {
        walkers[i] = (StressWalker) { .s = &s, .end = walker_ends[i] };
        qemu_thread_create(&threads[i], "walker", stress_walker_thread,
                           &walkers[i], QEMU_THREAD_JOINABLE);
    }
    qemu_event_set(&s.start);
    for (i = 0; i < STRESS_WALKERS; i++) {
        qemu_thread_join(&threads[i]);
        g_assert_cmpuint(walkers[i].walks, ==, STRESS_ITERATIONS);
        g_assert_cmpuint(walkers[i].bad, ==, 0);
    }
    qemu_thread_join(&freer);
    g_test_message("%u replacements while walking", s.replaced);

    g_assert_cmpuint(s.bad_replace, ==, 0);
    g_assert_cmpuint(qemu_lockcnt_count(&s.lc), ==, 0);
    assert_lock_bits(&s.lc, LC_BITS_FREE);
    /* One more, so that the check below cannot pass on zero of each. */
    qemu_lockcnt_lock(&s.lc);
    stress_replace(&s);
    qemu_lockcnt_unlock(&s.lc);
    /* Every replacement happened once, in order: none lost, none doubled. */
    g_assert_cmpuint(s.replaced, >, 0);
    g_assert_cmpuint(s.cur->gen, ==, s.replaced);
    g_free(s.cur);
    qemu_event_destroy(&s.start);
    qemu_lockcnt_destroy(&s.lc);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lockcnt/single-thread/transitions", test_single_thread);
    g_test_add_func("/lockcnt/misuse/dec-at-zero-aborts",
                    test_dec_at_zero_aborts);
    g_test_add_func("/lockcnt/misuse/unlock-unlocked-aborts",
                    test_unlock_unlocked_aborts);
    g_test_add_func("/lockcnt/inc/nonzero-ignores-lock",
                    test_inc_nonzero_ignores_lock);
    g_test_add_func("/lockcnt/inc/zero-waits-for-unlock",
                    test_inc_zero_waits_for_lock);
    g_test_add_func("/lockcnt/lock/waits-for-unlock",
                    test_lock_waits_for_lock);
    g_test_add_func("/lockcnt/dec-and-lock/waits-for-unlock",
                    test_dec_and_lock_waits_for_lock);
    g_test_add_func("/lockcnt/dec-if-lock/waits-for-unlock",
                    test_dec_if_lock_waits_for_lock);
    g_test_add_func("/lockcnt/stress/no-walker-sees-freed-object",
                    test_stress);
    return g_test_run();
}
