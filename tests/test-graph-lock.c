/*
 * test-graph-lock.c: the block-graph lock: coroutine readers in several
 * threads' contexts, the writer in the main loop.
 *
 * The writer must wait until every reader has left, and readers arriving
 * while it holds or waits for the lock must wait for it.  To know what
 * happened while bdrv_graph_wrlock() waited, the cases schedule a BH on
 * the main context before calling it: the BH runs inside the writer's
 * wait loop and inspects and releases the readers from there.  A stress
 * case checks the exclusion invariants over thousands of lock operations
 * with readers moving between threads while they hold the lock.
 * Registered with 'fdmon' and 'mt'.
 *
 * Threading: the main thread is the main loop and the writer; readers run
 * in coroutines of helper threads (tests/ctx-thread.h) and of the main
 * context.
 */
#include "qemu/osdep.h"
#include "block/aio.h"
#include "block/aio-wait.h"
#include "block/graph-lock.h"
#include "qapi/error.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qemu/processor.h"
#include "ctx-thread.h"

#define READER_THREADS 3

static GString *evlog;

static void G_GNUC_PRINTF(1, 2) ev(const char *fmt, ...)
{
    va_list ap;

    if (evlog->len) {
        g_string_append_c(evlog, ' ');
    }
    va_start(ap, fmt);
    g_string_append_vprintf(evlog, fmt, ap);
    va_end(ap);
}

/* ---- Single thread -------------------------------------------------- */

static void coroutine_fn rdlock_once_co(void *opaque)
{
    bdrv_graph_co_rdlock();
    assert_bdrv_graph_readable();
    bdrv_graph_co_rdunlock();
    ev("read");
}

static void test_uncontended(void)
{
    g_string_truncate(evlog, 0);
    qemu_coroutine_enter(qemu_coroutine_create(rdlock_once_co, NULL));

    bdrv_graph_wrlock();
    assert_bdrv_graph_writable();
    ev("write");
    bdrv_graph_wrunlock();

    bdrv_graph_rdlock_main_loop();
    bdrv_graph_rdunlock_main_loop();
    {
        GRAPH_RDLOCK_GUARD_MAINLOOP();
        ev("main-read");
    }
    g_assert_cmpstr(evlog->str, ==, "read write main-read");
}

static Coroutine *guard_co;

static void coroutine_fn guard_reader_co(void *opaque)
{
    {
        GRAPH_RDLOCK_GUARD();
        ev("guard-in");
        qemu_coroutine_yield();
    }
    ev("guard-out");
    WITH_GRAPH_RDLOCK_GUARD() {
        ev("with-guard");
    }
}

static void release_guard_bh(void *opaque)
{
    ev("bh");
    qemu_coroutine_enter(guard_co);
}

/* A main-context reader holds the lock; the writer polls until it leaves. */
static void test_writer_waits_for_main_context_reader(void)
{
    g_string_truncate(evlog, 0);
    guard_co = qemu_coroutine_create(guard_reader_co, NULL);
    qemu_coroutine_enter(guard_co);
    aio_bh_schedule_oneshot(qemu_get_aio_context(), release_guard_bh, NULL);
    bdrv_graph_wrlock();
    ev("writer");
    bdrv_graph_wrunlock();
    /*
     * Its second read lock came while the writer waited, so it waited for
     * the write section to end.
     */
    g_assert_cmpstr(evlog->str, ==,
                    "guard-in bh guard-out writer with-guard");
}

static bool main_reader_in;

static void coroutine_fn main_reader_co(void *opaque)
{
    bdrv_graph_co_rdlock();
    main_reader_in = true;
    bdrv_graph_co_rdunlock();
}

/* A main-context reader arriving during the write section waits for it. */
static void test_main_context_reader_waits_for_writer(void)
{
    main_reader_in = false;
    bdrv_graph_wrlock();
    qemu_coroutine_enter(qemu_coroutine_create(main_reader_co, NULL));
    g_assert_false(main_reader_in);
    bdrv_graph_wrunlock();
    /* Restarted by the unlock, in this context: done by now. */
    g_assert_true(main_reader_in);
}

/* ---- Readers in other threads ------------------------------------------ */

static struct {
    CtxThread t[READER_THREADS];
    Coroutine *reader[READER_THREADS];
    QemuSemaphore in;
    int inside;                 /* atomic: readers between lock and unlock */
    int finished;               /* atomic: readers that unlocked */

    bool bh_ran;                /* main thread only */
    int inside_seen_by_bh;      /* main thread only */

    Coroutine *late;            /* the late reader, in t[0] */
    bool late_reported;         /* atomic */
    bool late_in_at_report;     /* written before late_reported */
    bool late_in;               /* atomic */
    bool late_release;          /* t[0] only */
} gl;

static void coroutine_fn held_reader_co(void *opaque)
{
    int i = GPOINTER_TO_INT(opaque);

    bdrv_graph_co_rdlock();
    qatomic_inc(&gl.inside);
    gl.reader[i] = qemu_coroutine_self();
    qemu_sem_post(&gl.in);
    /* Hold the lock until release_reader_bh enters us. */
    qemu_coroutine_yield();
    qatomic_dec(&gl.inside);
    bdrv_graph_co_rdunlock();
    qatomic_inc(&gl.finished);
    aio_wait_kick();
}

static void start_reader_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(held_reader_co, opaque));
}

static void release_reader_bh(void *opaque)
{
    qemu_coroutine_enter(gl.reader[GPOINTER_TO_INT(opaque)]);
}

static void coroutine_fn late_reader_co(void *opaque)
{
    bdrv_graph_co_rdlock();
    qatomic_set(&gl.late_in, true);
    aio_wait_kick();
    qemu_coroutine_yield();
    bdrv_graph_co_rdunlock();
    qatomic_inc(&gl.finished);
    aio_wait_kick();
}

static void start_late_reader_bh(void *opaque)
{
    gl.late = qemu_coroutine_create(late_reader_co, NULL);
    qemu_coroutine_enter(gl.late);
    /* It either got in or is queued for the writer by now. */
    gl.late_in_at_report = qatomic_read(&gl.late_in);
    qatomic_store_release(&gl.late_reported, true);
    aio_wait_kick();
}

static void release_late_reader_bh(void *opaque)
{
    qemu_coroutine_enter(gl.late);
}

/* Runs inside bdrv_graph_wrlock()'s wait. */
static void during_wrlock_bh(void *opaque)
{
    int i;

    gl.bh_ran = true;
    gl.inside_seen_by_bh = qatomic_read(&gl.inside);

    /* A reader arriving now must queue behind the waiting writer. */
    aio_bh_schedule_oneshot(gl.t[0].ctx, start_late_reader_bh, NULL);
    AIO_WAIT_WHILE(NULL, !qatomic_load_acquire(&gl.late_reported));
    g_assert_false(gl.late_in_at_report);

    for (i = 0; i < READER_THREADS; i++) {
        aio_bh_schedule_oneshot(gl.t[i].ctx, release_reader_bh,
                                GINT_TO_POINTER(i));
    }
}

static void test_writer_waits_for_readers(void)
{
    int i;

    memset(&gl, 0, sizeof(gl));
    qemu_sem_init(&gl.in, 0);
    for (i = 0; i < READER_THREADS; i++) {
        ctx_thread_start(&gl.t[i], "graph-reader");
        aio_bh_schedule_oneshot(gl.t[i].ctx, start_reader_bh,
                                GINT_TO_POINTER(i));
    }
    for (i = 0; i < READER_THREADS; i++) {
        ctx_thread_sem_wait_or_abort(&gl.in, "readers");
    }
    g_assert_cmpint(qatomic_read(&gl.inside), ==, READER_THREADS);

    aio_bh_schedule_oneshot(qemu_get_aio_context(), during_wrlock_bh, NULL);
    bdrv_graph_wrlock();
    /* It waited (the BH ran inside) for all three to leave. */
    g_assert_true(gl.bh_ran);
    g_assert_cmpint(gl.inside_seen_by_bh, ==, READER_THREADS);
    g_assert_cmpint(qatomic_read(&gl.inside), ==, 0);
    g_assert_false(qatomic_read(&gl.late_in));
    assert_bdrv_graph_writable();
    bdrv_graph_wrunlock();

    /* The late reader is restarted in its own thread. */
    AIO_WAIT_WHILE(NULL, !qatomic_read(&gl.late_in));
    aio_bh_schedule_oneshot(gl.t[0].ctx, release_late_reader_bh, NULL);
    AIO_WAIT_WHILE(NULL, qatomic_read(&gl.finished) != READER_THREADS + 1);

    /* Nobody holds the lock: the writer gets in without waiting. */
    bdrv_graph_wrlock();
    bdrv_graph_wrunlock();

    ctx_threads_stop(gl.t, READER_THREADS);
    qemu_sem_destroy(&gl.in);
}

/* ---- Ordering through the lock alone ------------------------------------ */

/*
 * A reader and the writer that learn of each other only through the lock:
 * the other side is told by a relaxed flag, which orders nothing, so the
 * graph lock's own loads must be acquires for the reader's reads and the
 * writer's writes of @graph_value not to overlap (ThreadSanitizer, which
 * sees only atomic accesses and locks, reports a race otherwise).
 */
static int graph_value;         /* plain: the "graph" the lock protects */
static int order_flag;          /* relaxed only */
static int order_seen;
static QemuSemaphore order_done;

static void coroutine_fn reader_then_flag_co(void *opaque)
{
    bdrv_graph_co_rdlock();
    order_seen = graph_value;
    bdrv_graph_co_rdunlock();
    qatomic_set(&order_flag, 1);
}

static void reader_then_flag_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(reader_then_flag_co, NULL));
}

/* The writer comes after a reader that has left; it does not wait. */
static void test_writer_ordered_after_reader(void)
{
    CtxThread t;

    graph_value = 1;
    order_flag = 0;
    ctx_thread_start(&t, "graph-reader");
    aio_bh_schedule_oneshot(t.ctx, reader_then_flag_bh, NULL);
    while (!qatomic_read(&order_flag)) {
        cpu_relax();
    }
    bdrv_graph_wrlock();
    graph_value = 2;
    bdrv_graph_wrunlock();
    ctx_thread_stop(&t);
    g_assert_cmpint(order_seen, ==, 1);
}

static void coroutine_fn flag_then_reader_co(void *opaque)
{
    while (!qatomic_read(&order_flag)) {
        cpu_relax();
    }
    bdrv_graph_co_rdlock();
    order_seen = graph_value;
    bdrv_graph_co_rdunlock();
    qemu_sem_post(&order_done);
}

static void flag_then_reader_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(flag_then_reader_co, NULL));
}

/* The reader comes after a writer that has left; it does not wait. */
static void test_reader_ordered_after_writer(void)
{
    CtxThread t;

    graph_value = 1;
    order_flag = 0;
    order_seen = 0;
    qemu_sem_init(&order_done, 0);
    ctx_thread_start(&t, "graph-reader");
    aio_bh_schedule_oneshot(t.ctx, flag_then_reader_bh, NULL);
    bdrv_graph_wrlock();
    graph_value = 3;
    bdrv_graph_wrunlock();
    qatomic_set(&order_flag, 1);
    ctx_thread_sem_wait_or_abort(&order_done, "reader after writer");
    ctx_thread_stop(&t);
    g_assert_cmpint(order_seen, ==, 3);
    qemu_sem_destroy(&order_done);
}

/* ---- A reader that moves ------------------------------------------------ */

static void coroutine_fn moving_reader_co(void *opaque)
{
    bdrv_graph_co_rdlock();
    /* Lock counted in t[0], unlock in t[1]. */
    aio_co_reschedule_self(gl.t[1].ctx);
    bdrv_graph_co_rdunlock();
    qatomic_inc(&gl.finished);
    aio_wait_kick();
}

static void start_moving_reader_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(moving_reader_co, NULL));
}

/*
 * Per-context counts of +1 and -1 still add up to zero, also after the
 * contexts go away one by one (the leftover moves to the orphan count).
 */
static void test_reader_moves_between_contexts(void)
{
    memset(&gl, 0, sizeof(gl));
    ctx_thread_start(&gl.t[0], "graph-reader");
    ctx_thread_start(&gl.t[1], "graph-reader");
    aio_bh_schedule_oneshot(gl.t[0].ctx, start_moving_reader_bh, NULL);
    AIO_WAIT_WHILE(NULL, qatomic_read(&gl.finished) != 1);

    bdrv_graph_wrlock();
    bdrv_graph_wrunlock();
    ctx_thread_stop(&gl.t[0]);
    bdrv_graph_wrlock();
    bdrv_graph_wrunlock();
    ctx_thread_stop(&gl.t[1]);
    bdrv_graph_wrlock();
    bdrv_graph_wrunlock();
}

/* ---- Stress ------------------------------------------------------------ */

#define STRESS_READERS_PER_THREAD 5
#define STRESS_ITERATIONS 300
#define STRESS_WRITES 100
/* Cap on reader iterations while waiting for the writes to be done. */
#define STRESS_MAX_ITERATIONS 10000000

typedef struct StressReader {
    int where;                  /* the thread it runs in now */
    unsigned long iterations;   /* written before remaining is decremented */
} StressReader;

static StressReader stress_readers[READER_THREADS * STRESS_READERS_PER_THREAD];

static struct {
    int inside;                 /* atomic */
    bool writing;               /* atomic */
    unsigned long reads;        /* atomic */
    unsigned writes;            /* atomic */
    int remaining;              /* atomic */
} st;

static void coroutine_fn stress_reader_co(void *opaque)
{
    StressReader *r = opaque;
    unsigned long i;

    /* Keep reading until the writer is done, so every write overlaps. */
    for (i = 0; i < STRESS_ITERATIONS ||
                qatomic_read(&st.writes) < STRESS_WRITES; i++) {
        g_assert_cmpuint(i, <, STRESS_MAX_ITERATIONS);
        bdrv_graph_co_rdlock();
        g_assert_false(qatomic_read(&st.writing));
        qatomic_inc(&st.inside);
        if (i % 5 == 0) {
            /* Move while holding the lock. */
            r->where = (r->where + 1) % READER_THREADS;
            aio_co_reschedule_self(gl.t[r->where].ctx);
        } else if (i % 5 == 1) {
            aio_co_schedule(qemu_get_current_aio_context(),
                            qemu_coroutine_self());
            qemu_coroutine_yield();
        }
        g_assert_false(qatomic_read(&st.writing));
        qatomic_dec(&st.inside);
        qatomic_inc(&st.reads);
        bdrv_graph_co_rdunlock();
        if (i % 3 == 0) {
            aio_co_schedule(qemu_get_current_aio_context(),
                            qemu_coroutine_self());
            qemu_coroutine_yield();
        }
    }
    r->iterations = i;
    /* Publishes r->iterations; pairs with the main thread's final read. */
    qatomic_dec(&st.remaining);
    aio_wait_kick();
}

static void start_stress_reader_bh(void *opaque)
{
    qemu_coroutine_enter(qemu_coroutine_create(stress_reader_co, opaque));
}

static void test_stress(void)
{
    unsigned long total = 0;
    unsigned i;

    memset(&gl, 0, sizeof(gl));
    memset(&st, 0, sizeof(st));
    qatomic_set(&st.remaining, ARRAY_SIZE(stress_readers));
    for (i = 0; i < READER_THREADS; i++) {
        ctx_thread_start(&gl.t[i], "graph-stress");
    }
    for (i = 0; i < ARRAY_SIZE(stress_readers); i++) {
        stress_readers[i].where = i % READER_THREADS;
        stress_readers[i].iterations = 0;
        aio_bh_schedule_oneshot(gl.t[i % READER_THREADS].ctx,
                                start_stress_reader_bh, &stress_readers[i]);
    }

    while (qatomic_read(&st.writes) < STRESS_WRITES) {
        bdrv_graph_wrlock();
        qatomic_set(&st.writing, true);
        g_assert_cmpint(qatomic_read(&st.inside), ==, 0);
        qatomic_set(&st.writing, false);
        bdrv_graph_wrunlock();
        qatomic_inc(&st.writes);
    }
    AIO_WAIT_WHILE(NULL, qatomic_load_acquire(&st.remaining) > 0);

    for (i = 0; i < ARRAY_SIZE(stress_readers); i++) {
        g_assert_cmpuint(stress_readers[i].iterations, >=,
                         STRESS_ITERATIONS);
        total += stress_readers[i].iterations;
    }
    g_assert_cmpuint(qatomic_read(&st.reads), ==, total);
    g_test_message("%lu reads around %d writes", total, STRESS_WRITES);
    g_assert_cmpuint(qatomic_read(&st.writes), ==, STRESS_WRITES);
    g_assert_cmpint(qatomic_read(&st.inside), ==, 0);
    ctx_threads_stop(gl.t, READER_THREADS);
    /* Every count went back to zero. */
    bdrv_graph_wrlock();
    bdrv_graph_wrunlock();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qemu_init_main_loop(&error_abort);
    evlog = g_string_new(NULL);

    g_test_add_func("/graph-lock/uncontended", test_uncontended);
    g_test_add_func("/graph-lock/writer-waits-for-main-context-reader",
                    test_writer_waits_for_main_context_reader);
    g_test_add_func("/graph-lock/main-context-reader-waits-for-writer",
                    test_main_context_reader_waits_for_writer);
    g_test_add_func("/graph-lock/writer-waits-for-readers",
                    test_writer_waits_for_readers);
    g_test_add_func("/graph-lock/reader-moves-between-contexts",
                    test_reader_moves_between_contexts);
    g_test_add_func("/graph-lock/writer-ordered-after-reader",
                    test_writer_ordered_after_reader);
    g_test_add_func("/graph-lock/reader-ordered-after-writer",
                    test_reader_ordered_after_writer);
    g_test_add_func("/graph-lock/stress", test_stress);

    return g_test_run();
}
