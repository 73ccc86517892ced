/*
 * timer-queue.c: TimerQueue, the ordered set of one timer list's pending
 * timers: a sorted FIFO run for timers armed in deadline order, and a
 * 4-ary min-heap for the rest (timer-int.h describes the layout and holds
 * the inline insert and remove that arming and cancelling use).  This file
 * has the slower paths: growing, the sifts that go further than one step,
 * cancelling inside the run, and the attribute-filtered search.
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

#define HEAP_LINE 64

QEMU_BUILD_BUG_ON(sizeof(TimerEntry) * TIMER_HEAP_ARITY != HEAP_LINE);

/* Compact the run when it is longer than this and mostly holes. */
#define RUN_COMPACT_MIN 64
#define RUN_COMPACT_RATIO 4

/* The heap */

/*
 * The slot of @block where heap[0] goes so that heap[1] starts a cache
 * line; malloc's blocks are 16-byte aligned, so this is 0..3 entries in.
 */
static size_t heap_pad(void *block)
{
    uintptr_t first_child = (uintptr_t)block + sizeof(TimerEntry);

    return ((HEAP_LINE - first_child % HEAP_LINE) % HEAP_LINE) /
           sizeof(TimerEntry);
}

void qaio_int_timer_heap_grow(TimerQueue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 64;
    size_t old_pad = q->heap_alloc ? q->heap - (TimerEntry *)q->heap_alloc
                                   : 0;
    size_t pad;
    void *block;

    /* Room for the largest pad, so any alignment of the new block works. */
    block = realloc(q->heap_alloc,
                    (cap + HEAP_LINE / sizeof(TimerEntry) - 1) *
                    sizeof(TimerEntry));
    if (!block) {
        error_report("timer list: out of memory growing the heap to %zu "
                     "timers", cap);
        abort();
    }
    /*
     * realloc kept the bytes, not their alignment; large blocks are
     * remapped at the same page offset, so this move is for small ones.
     */
    pad = heap_pad(block);
    if (pad != old_pad && q->n) {
        memmove((TimerEntry *)block + pad, (TimerEntry *)block + old_pad,
                q->n * sizeof(TimerEntry));
    }
    q->heap_alloc = block;
    q->heap = (TimerEntry *)block + pad;
    q->cap = cap;
}

void qaio_int_timer_heap_sift_up(TimerQueue *q, size_t i, TimerEntry e)
{
    TimerEntry *heap = q->heap;

    while (i > 0) {
        size_t parent = (i - 1) / TIMER_HEAP_ARITY;

        if (!timer_entry_before(&e, &heap[parent])) {
            break;
        }
        timer_heap_place(heap, i, heap[parent]);
        i = parent;
    }
    timer_heap_place(heap, i, e);
}

void qaio_int_timer_heap_sift_down(TimerQueue *q, size_t i, TimerEntry e)
{
    TimerEntry *heap = q->heap;
    size_t n = q->n;

    for (;;) {
        size_t c = TIMER_HEAP_ARITY * i + 1;
        size_t best;

        if (c + TIMER_HEAP_ARITY <= n) {
            /* All four children exist: a small tournament. */
            size_t a = timer_entry_before(&heap[c + 1], &heap[c]) ? c + 1 : c;
            size_t b = timer_entry_before(&heap[c + 3], &heap[c + 2]) ? c + 3
                                                                      : c + 2;

            best = timer_entry_before(&heap[b], &heap[a]) ? b : a;
        } else if (c < n) {
            best = c;
            for (size_t j = c + 1; j < n; j++) {
                if (timer_entry_before(&heap[j], &heap[best])) {
                    best = j;
                }
            }
        } else {
            break;
        }
        if (timer_entry_before(&e, &heap[best])) {
            break;
        }
        timer_heap_place(heap, i, heap[best]);
        i = best;
    }
    timer_heap_place(heap, i, e);
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

    if (i >= q->n || (*best && !timer_entry_before(&q->heap[i], *best))) {
        return;
    }
    if (!((unsigned)q->heap[i].ts->attributes & excluded)) {
        *best = &q->heap[i];
        return;
    }
    c = TIMER_HEAP_ARITY * i + 1;
    for (size_t j = c; j < c + TIMER_HEAP_ARITY; j++) {
        heap_earliest_matching(q, j, excluded, best);
    }
}

/* The run */

static inline bool run_empty(TimerQueue *q)
{
    return q->run_head == q->run_tail;
}

void qaio_int_timer_run_grow(TimerQueue *q)
{
    size_t cap = q->run_cap ? q->run_cap * 2 : 64;
    TimerEntry *run = g_new(TimerEntry, cap);

    /* Positions do not change, so the timers need no update. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        run[pos & (cap - 1)] = *timer_run_entry(q, pos);
    }
    g_free(q->run);
    q->run = run;
    q->run_cap = cap;
}

/* Squeezes the holes out; live entries keep their order. */
static void run_compact(TimerQueue *q)
{
    uint64_t to = q->run_head;

    for (uint64_t from = q->run_head; from != q->run_tail; from++) {
        TimerEntry *e = timer_run_entry(q, from);

        if (!e->ts) {
            continue;
        }
        if (to != from) {
            *timer_run_entry(q, to) = *e;
            e->ts->heap_index = TIMER_IN_RUN | to;
        }
        to++;
    }
    q->run_tail = to;
}

void qaio_int_timer_run_remove(TimerQueue *q, uint64_t pos)
{
    assert(pos - q->run_head < q->run_tail - q->run_head &&
           timer_run_entry(q, pos)->ts);
    timer_run_entry(q, pos)->ts = NULL;
    q->run_live--;

    /* Keep both ends live: the head is the run's earliest timer. */
    while (!run_empty(q) && !timer_run_entry(q, q->run_head)->ts) {
        q->run_head++;
    }
    while (!run_empty(q) && !timer_run_entry(q, q->run_tail - 1)->ts) {
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

int64_t qaio_int_timer_queue_earliest_matching(TimerQueue *q,
                                               unsigned excluded)
{
    const TimerEntry *best = NULL;

    heap_earliest_matching(q, 0, excluded, &best);
    /* The run is sorted: its first matching entry is its earliest. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        const TimerEntry *e = timer_run_entry(q, pos);

        if (!e->ts) {
            continue;
        }
        if (best && !timer_entry_before(e, best)) {
            break;
        }
        if (!((unsigned)e->ts->attributes & excluded)) {
            best = e;
            break;
        }
    }
    return best ? best->expire_time : -1;
}
