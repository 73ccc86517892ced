/*
 * timer-queue.c: TimerQueue, the ordered set of one timer list's pending
 * timers: a sorted FIFO run for timers armed in deadline order, and a
 * 4-ary min-heap for the rest (timer-int.h describes the layout).
 *
 * Costs: arming is O(1) when the deadline is not earlier than the newest
 * one in the run, O(log n) otherwise; taking out the earliest timer or
 * cancelling any timer is O(1) amortised in the run, O(log n) in the heap.
 * Ties between equal deadlines are broken by the timers' arming sequence
 * numbers, so they fire in arming order across both structures.
 *
 * Threading: none of its own; every function runs under the owning list's
 * active_timers_lock.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "timer-int.h"

#define HEAP_ARITY 4

/*
 * heap[] starts this many entries into a cache-line-aligned block, so that
 * heap[1..4], heap[5..8], ... (the children of one slot) each fill exactly
 * one 64-byte line.
 */
#define HEAP_PAD 3
#define HEAP_ALIGN 64

QEMU_BUILD_BUG_ON(sizeof(TimerEntry) * HEAP_ARITY != HEAP_ALIGN);

/* Compact the run when it is longer than this and mostly holes. */
#define RUN_COMPACT_MIN 64
#define RUN_COMPACT_RATIO 4

/* Whether live entry @a fires before live entry @b. */
static inline bool entry_before(const TimerEntry *a, const TimerEntry *b)
{
    if (a->expire_time != b->expire_time) {
        return a->expire_time < b->expire_time;
    }
    return a->ts->arm_seq < b->ts->arm_seq;
}

/* The heap */

static void heap_grow(TimerQueue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 64;
    void *block;

    if (posix_memalign(&block, HEAP_ALIGN,
                       (cap + HEAP_PAD) * sizeof(TimerEntry))) {
        error_report("timer list: out of memory growing the heap to %zu "
                     "timers", cap);
        abort();
    }
    if (q->n) {
        memcpy((TimerEntry *)block + HEAP_PAD, q->heap,
               q->n * sizeof(TimerEntry));
    }
    free(q->heap_alloc);
    q->heap_alloc = block;
    q->heap = (TimerEntry *)block + HEAP_PAD;
    q->cap = cap;
}

static inline void heap_place(TimerQueue *q, size_t i, TimerEntry e)
{
    q->heap[i] = e;
    e.ts->heap_index = i;
}

/*
 * Puts a newly armed @e at slot @i, moving it towards the root.  It was
 * armed last, so it goes behind any equal deadline without comparing
 * sequence numbers.  Returns the slot where it ends.
 */
static size_t heap_sift_up_new(TimerQueue *q, size_t i, TimerEntry e)
{
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_ARITY;

        if (e.expire_time >= q->heap[parent].expire_time) {
            break;
        }
        heap_place(q, i, q->heap[parent]);
        i = parent;
    }
    heap_place(q, i, e);
    return i;
}

/* Puts @e at slot @i, moving it towards the root. */
static void heap_sift_up(TimerQueue *q, size_t i, TimerEntry e)
{
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_ARITY;

        if (!entry_before(&e, &q->heap[parent])) {
            break;
        }
        heap_place(q, i, q->heap[parent]);
        i = parent;
    }
    heap_place(q, i, e);
}

/* Puts @e at slot @i, moving it towards the leaves. */
static void heap_sift_down(TimerQueue *q, size_t i, TimerEntry e)
{
    const TimerEntry *heap = q->heap;
    size_t n = q->n;

    for (;;) {
        size_t c = HEAP_ARITY * i + 1;
        size_t best;

        if (c + HEAP_ARITY <= n) {
            /* All four children exist: a small tournament. */
            size_t a = entry_before(&heap[c + 1], &heap[c]) ? c + 1 : c;
            size_t b = entry_before(&heap[c + 3], &heap[c + 2]) ? c + 3
                                                                : c + 2;

            best = entry_before(&heap[b], &heap[a]) ? b : a;
        } else if (c < n) {
            best = c;
            for (size_t j = c + 1; j < n; j++) {
                if (entry_before(&heap[j], &heap[best])) {
                    best = j;
                }
            }
        } else {
            break;
        }
        if (entry_before(&e, &heap[best])) {
            break;
        }
        heap_place(q, i, heap[best]);
        i = best;
    }
    heap_place(q, i, e);
}

static void heap_remove(TimerQueue *q, size_t i)
{
    size_t last = --q->n;
    TimerEntry e;

    if (i == last) {
        return;
    }
    e = q->heap[last];
    /*
     * Compare with the departing entry first: its line is about to be
     * written anyway, and when @e is later (it usually is: it comes from a
     * leaf) it cannot move up, which saves touching the parent.
     */
    if (i > 0 && entry_before(&e, &q->heap[i]) &&
        entry_before(&e, &q->heap[(i - 1) / HEAP_ARITY])) {
        heap_sift_up(q, i, e);
    } else {
        heap_sift_down(q, i, e);
    }
}

/*
 * Lowers *@best to the earliest entry at or below slot @i whose timer has
 * no attribute in @excluded.  A matching slot ends the descent (its
 * subtree only holds later entries), and so does an entry not before
 * *@best, so only non-matching timers earlier than the answer are visited.
 */
static void heap_earliest_matching(TimerQueue *q, size_t i,
                                   unsigned excluded,
                                   const TimerEntry **best)
{
    size_t c;

    if (i >= q->n || (*best && !entry_before(&q->heap[i], *best))) {
        return;
    }
    if (!((unsigned)q->heap[i].ts->attributes & excluded)) {
        *best = &q->heap[i];
        return;
    }
    c = HEAP_ARITY * i + 1;
    for (size_t j = c; j < c + HEAP_ARITY; j++) {
        heap_earliest_matching(q, j, excluded, best);
    }
}

/* The run */

static inline TimerEntry *run_entry(TimerQueue *q, uint64_t pos)
{
    return &q->run[pos & (q->run_cap - 1)];
}

static inline bool run_empty(TimerQueue *q)
{
    return q->run_head == q->run_tail;
}

static void run_grow(TimerQueue *q)
{
    size_t cap = q->run_cap ? q->run_cap * 2 : 64;
    TimerEntry *run = g_new(TimerEntry, cap);

    /* Positions do not change, so the timers need no update. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        run[pos & (cap - 1)] = *run_entry(q, pos);
    }
    g_free(q->run);
    q->run = run;
    q->run_cap = cap;
}

static inline void run_append(TimerQueue *q, TimerEntry e)
{
    if (q->run_tail - q->run_head == q->run_cap) {
        run_grow(q);
    }
    *run_entry(q, q->run_tail) = e;
    e.ts->heap_index = TIMER_IN_RUN | q->run_tail;
    q->run_tail++;
    q->run_live++;
}

/* Squeezes the holes out; live entries keep their order. */
static void run_compact(TimerQueue *q)
{
    uint64_t to = q->run_head;

    for (uint64_t from = q->run_head; from != q->run_tail; from++) {
        TimerEntry *e = run_entry(q, from);

        if (!e->ts) {
            continue;
        }
        if (to != from) {
            *run_entry(q, to) = *e;
            e->ts->heap_index = TIMER_IN_RUN | to;
        }
        to++;
    }
    q->run_tail = to;
}

static void run_remove(TimerQueue *q, uint64_t pos)
{
    run_entry(q, pos)->ts = NULL;
    q->run_live--;

    /* Keep both ends live: the head is the run's earliest timer. */
    while (!run_empty(q) && !run_entry(q, q->run_head)->ts) {
        q->run_head++;
    }
    while (!run_empty(q) && !run_entry(q, q->run_tail - 1)->ts) {
        q->run_tail--;
    }
    if (q->run_tail - q->run_head > RUN_COMPACT_MIN &&
        q->run_tail - q->run_head > RUN_COMPACT_RATIO * q->run_live) {
        run_compact(q);
    }
}

/* The queue */

void qaio_int_timer_queue_destroy(TimerQueue *q)
{
    assert(qaio_int_timer_queue_count(q) == 0);
    free(q->heap_alloc);
    g_free(q->run);
}

bool qaio_int_timer_queue_insert(TimerQueue *q, QEMUTimer *ts,
                                 int64_t expire_time)
{
    TimerEntry e = { .expire_time = expire_time, .ts = ts };

    ts->arm_seq = q->next_seq++;
    /*
     * Armed last, @ts goes behind any timer with an equal deadline: behind
     * the run's tail, and it is the earliest only if strictly earlier than
     * the other structure's first entry.
     */
    if (run_empty(q)) {
        run_append(q, e);
        return !q->n || expire_time < q->heap[0].expire_time;
    }
    if (expire_time >= run_entry(q, q->run_tail - 1)->expire_time) {
        run_append(q, e);
        return false;
    }
    if (q->n == q->cap) {
        heap_grow(q);
    }
    q->n++;
    return heap_sift_up_new(q, q->n - 1, e) == 0 &&
           expire_time < run_entry(q, q->run_head)->expire_time;
}

void qaio_int_timer_queue_remove(TimerQueue *q, QEMUTimer *ts)
{
    uint64_t where = ts->heap_index;

    if (where & TIMER_IN_RUN) {
        uint64_t pos = where & ~TIMER_IN_RUN;

        assert(pos - q->run_head < q->run_tail - q->run_head &&
               run_entry(q, pos)->ts == ts);
        run_remove(q, pos);
    } else {
        assert(where < q->n && q->heap[where].ts == ts);
        heap_remove(q, where);
    }
}

QEMUTimer *qaio_int_timer_queue_first(TimerQueue *q, int64_t *expire_time)
{
    const TimerEntry *first;

    if (run_empty(q)) {
        if (!q->n) {
            return NULL;
        }
        first = &q->heap[0];
    } else {
        first = run_entry(q, q->run_head);
        if (q->n && entry_before(&q->heap[0], first)) {
            first = &q->heap[0];
        }
    }
    *expire_time = first->expire_time;
    return first->ts;
}

int64_t qaio_int_timer_queue_earliest_matching(TimerQueue *q,
                                               unsigned excluded)
{
    const TimerEntry *best = NULL;

    heap_earliest_matching(q, 0, excluded, &best);
    /* The run is sorted: its first matching entry is its earliest. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        const TimerEntry *e = run_entry(q, pos);

        if (!e->ts) {
            continue;
        }
        if (best && !entry_before(e, best)) {
            break;
        }
        if (!((unsigned)e->ts->attributes & excluded)) {
            best = e;
            break;
        }
    }
    return best ? best->expire_time : -1;
}
