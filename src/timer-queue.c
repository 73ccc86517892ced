/*
 * timer-queue.c: TimerQueue, the ordered set of one timer list's pending
 * timers: a sorted FIFO run for timers armed in deadline order, and a
 * 4-ary min-heap with tombstones for the rest (timer-int.h describes the
 * layout and holds the inline insert and remove that arming and
 * cancelling use).  This file has the slower paths: growing, rebuilding
 * the heap without its tombstones, taking out its root, cancelling inside
 * the run, and the attribute-filtered search.
 *
 * Costs: arming is O(1) when the deadline is not earlier than the newest
 * one in the run, O(log n) otherwise; cancelling is O(1) amortised, except
 * for the heap's root; taking out the earliest timer is O(1) amortised in
 * the run, O(log n) in the heap, plus O(log n) for each tombstone that
 * reaches the root.  Ties between equal deadlines are broken by the
 * timers' arming sequence numbers, so they fire in arming order across
 * both structures.
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

/* Moves the heap into a block of @cap entries. */
static void heap_resize(TimerQueue *q, size_t cap)
{
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

void qaio_int_timer_heap_grow(TimerQueue *q)
{
    /*
     * Half tombstones: rebuilding costs a write to each live timer, at
     * most one per slot it frees, and keeps the heap at most four times
     * the size the live timers need.
     */
    if (q->dead && q->dead >= q->n / 2) {
        qaio_int_timer_heap_compact(q);
        return;
    }
    heap_resize(q, q->cap ? q->cap * 2 : 64);
}

/*
 * Puts @e at heap slot @i, moving it towards the leaves; with @track,
 * tells each timer that moves its new slot.
 */
static inline QEMU_ALWAYS_INLINE void heap_sift_down(TimerQueue *q, size_t i,
                                                     TimerEntry e, bool track)
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
        if (track) {
            timer_heap_place(heap, i, heap[best]);
        } else {
            heap[i] = heap[best];
        }
        i = best;
    }
    if (track) {
        timer_heap_place(heap, i, e);
    } else {
        heap[i] = e;
    }
}

void qaio_int_timer_heap_compact(TimerQueue *q)
{
    TimerEntry *heap = q->heap;
    size_t n = 0;

    /*
     * Squeeze the tombstones out, re-establish the order bottom-up (linear
     * time), and only then tell the timers where they are: one write each,
     * independent of one another, instead of one per move.
     */
    for (size_t i = 0; i < q->n; i++) {
        if (!timer_entry_dead(&heap[i])) {
            heap[n++] = heap[i];
        }
    }
    q->n = n;
    q->dead = 0;
    /* From the last slot with a child, (n - 2) / 4, up to the root. */
    for (size_t i = n > 1 ? (n - 2) / TIMER_HEAP_ARITY + 1 : 0; i-- > 0;) {
        heap_sift_down(q, i, heap[i], false);
    }
    for (size_t i = 0; i < n; i++) {
        heap[i].ts->heap_index = i;
    }
}

/* Drops the tombstones at the end; the root is live, so it stops there. */
static void heap_trim(TimerQueue *q)
{
    while (q->n && timer_entry_dead(&q->heap[q->n - 1])) {
        q->n--;
        q->dead--;
    }
}

/* Takes out heap[0], live or not; the last entry takes its place. */
static void heap_take_root(TimerQueue *q)
{
    TimerEntry last = q->heap[--q->n];

    if (!q->n) {
        return;
    }
    /* Slot 0 still holds the departing root: keep it out of the trim. */
    while (q->n > 1 && timer_entry_dead(&q->heap[q->n - 1])) {
        q->n--;
        q->dead--;
    }
    heap_sift_down(q, 0, last, true);
}

void qaio_int_timer_heap_remove_end(TimerQueue *q, size_t i)
{
    if (i != 0) {
        /* The last entry: nothing moves. */
        q->n--;
        heap_trim(q);
        return;
    }
    if (q->n - q->dead == 1) {
        /* The last live entry: the tombstones go with it. */
        q->n = 0;
        q->dead = 0;
        return;
    }
    heap_take_root(q);
    /*
     * Some live entry is left, so this stops.  Popping a tombstone costs a
     * whole sift from the root, as much as firing a timer, and in a large
     * heap a chain of dependent cache misses; once tombstones are an
     * eighth of the live entries, a rebuild (sequential, and its writes to
     * the timers independent of one another) is the cheaper way.
     */
    while (timer_entry_dead(&q->heap[0])) {
        if (q->dead >= TIMER_HEAP_DEAD_MIN &&
            q->dead * TIMER_HEAP_POP_RATIO >= q->n - q->dead) {
            qaio_int_timer_heap_compact(q);
            break;
        }
        q->dead--;
        heap_take_root(q);
    }
}

/*
 * Lowers *@best to the earliest entry at or below slot @i whose timer has
 * no attribute in @excluded.  A matching slot ends the descent (its
 * subtree only holds later entries), and so does an entry not before
 * *@best, so only non-matching timers (and tombstones) earlier than the
 * answer are visited.
 */
static void heap_earliest_matching(TimerQueue *q, size_t i,
                                   unsigned excluded,
                                   const TimerEntry **best)
{
    size_t c;

    if (i >= q->n || (*best && !timer_entry_before(&q->heap[i], *best))) {
        return;
    }
    if (!timer_entry_dead(&q->heap[i]) &&
        !((unsigned)q->heap[i].ts->attributes & excluded)) {
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
