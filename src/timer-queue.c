/*
 * timer-queue.c: TimerQueue, the ordered set of one timer list's pending
 * timers: a sorted FIFO run for timers armed in deadline order, and a
 * 4-ary min-heap for the rest (timer-int.h describes the layout).
 *
 * Costs: arming is O(1) when the deadline is not earlier than the newest
 * one in the run, O(log n) otherwise; taking out the earliest timer or
 * cancelling any timer is O(1) amortised in the run, O(log n) in the heap.
 * Ties between equal deadlines are broken by the arming sequence number
 * inside the key, so they fire in arming order across both structures.
 *
 * Threading: none of its own; every function runs under the owning list's
 * active_timers_lock.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "timer-int.h"

#define HEAP_ARITY 4

/*
 * keys[] starts this many slots into a cache-line-aligned block, so that
 * keys[1..4], keys[5..8], ... (the children of one slot) each fill exactly
 * one 64-byte line.
 */
#define KEYS_PAD 3
#define KEYS_ALIGN 64

QEMU_BUILD_BUG_ON(sizeof(TimerKey) * HEAP_ARITY != KEYS_ALIGN);

/* Compact the run when it is longer than this and mostly holes. */
#define RUN_COMPACT_MIN 64
#define RUN_COMPACT_RATIO 4

static inline TimerKey timer_key(int64_t expire_time, uint64_t seq)
{
    return ((TimerKey)(uint64_t)expire_time << 64) | seq;
}

static inline int64_t timer_key_expire(TimerKey key)
{
    return (int64_t)(uint64_t)(key >> 64);
}

/* The heap */

static void heap_grow(TimerQueue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 64;
    void *block;

    if (posix_memalign(&block, KEYS_ALIGN,
                       (cap + KEYS_PAD) * sizeof(TimerKey))) {
        error_report("timer list: out of memory growing the heap to %zu "
                     "timers", cap);
        abort();
    }
    if (q->n) {
        memcpy((TimerKey *)block + KEYS_PAD, q->keys,
               q->n * sizeof(TimerKey));
    }
    free(q->keys_alloc);
    q->keys_alloc = block;
    q->keys = (TimerKey *)block + KEYS_PAD;
    q->timers = g_renew(QEMUTimer *, q->timers, cap);
    q->cap = cap;
}

static inline void heap_move(TimerQueue *q, size_t to, size_t from)
{
    q->keys[to] = q->keys[from];
    q->timers[to] = q->timers[from];
    q->timers[to]->heap_index = to;
}

static inline void heap_place(TimerQueue *q, size_t i, TimerKey key,
                              QEMUTimer *ts)
{
    q->keys[i] = key;
    q->timers[i] = ts;
    ts->heap_index = i;
}

/* Moves the hole at @i towards the root, then fills it with @key/@ts. */
static void heap_sift_up(TimerQueue *q, size_t i, TimerKey key,
                         QEMUTimer *ts)
{
    while (i > 0) {
        size_t parent = (i - 1) / HEAP_ARITY;

        if (key >= q->keys[parent]) {
            break;
        }
        heap_move(q, i, parent);
        i = parent;
    }
    heap_place(q, i, key, ts);
}

/* Moves the hole at @i towards the leaves, then fills it with @key/@ts. */
static void heap_sift_down(TimerQueue *q, size_t i, TimerKey key,
                           QEMUTimer *ts)
{
    const TimerKey *keys = q->keys;
    size_t n = q->n;

    for (;;) {
        size_t c = HEAP_ARITY * i + 1;
        size_t best;

        if (c + HEAP_ARITY <= n) {
            /* All four children exist: a branch-light tournament. */
            size_t a = keys[c + 1] < keys[c] ? c + 1 : c;
            size_t b = keys[c + 3] < keys[c + 2] ? c + 3 : c + 2;

            best = keys[b] < keys[a] ? b : a;
        } else if (c < n) {
            best = c;
            for (size_t j = c + 1; j < n; j++) {
                if (keys[j] < keys[best]) {
                    best = j;
                }
            }
        } else {
            break;
        }
        if (key < keys[best]) {
            break;
        }
        heap_move(q, i, best);
        i = best;
    }
    heap_place(q, i, key, ts);
}

static void heap_remove(TimerQueue *q, size_t i)
{
    size_t last = --q->n;
    TimerKey key;

    if (i == last) {
        return;
    }
    key = q->keys[last];
    if (i > 0 && key < q->keys[(i - 1) / HEAP_ARITY]) {
        heap_sift_up(q, i, key, q->timers[last]);
    } else {
        heap_sift_down(q, i, key, q->timers[last]);
    }
}

/*
 * Lowers *@best to the smallest key at or below slot @i that belongs to a
 * timer with no attribute in @excluded.  A matching slot ends the descent
 * (its subtree only holds larger keys), and so does a key no smaller than
 * *@best, so only non-matching timers earlier than the answer are visited.
 */
static void heap_earliest_matching(TimerQueue *q, size_t i,
                                   unsigned excluded, TimerKey *best)
{
    size_t c;

    if (i >= q->n || q->keys[i] >= *best) {
        return;
    }
    if (!((unsigned)q->timers[i]->attributes & excluded)) {
        *best = q->keys[i];
        return;
    }
    c = HEAP_ARITY * i + 1;
    for (size_t j = c; j < c + HEAP_ARITY; j++) {
        heap_earliest_matching(q, j, excluded, best);
    }
}

/* The run */

static inline TimerRunEntry *run_entry(TimerQueue *q, uint64_t pos)
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
    TimerRunEntry *run = g_new(TimerRunEntry, cap);

    /* Positions do not change, so the timers need no update. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        run[pos & (cap - 1)] = *run_entry(q, pos);
    }
    g_free(q->run);
    q->run = run;
    q->run_cap = cap;
}

static inline void run_append(TimerQueue *q, TimerKey key, QEMUTimer *ts)
{
    TimerRunEntry *e;

    if (q->run_tail - q->run_head == q->run_cap) {
        run_grow(q);
    }
    e = run_entry(q, q->run_tail);
    e->key = key;
    e->ts = ts;
    ts->heap_index = TIMER_IN_RUN | q->run_tail;
    q->run_tail++;
    q->run_live++;
}

/* Squeezes the holes out; live entries keep their order. */
static void run_compact(TimerQueue *q)
{
    uint64_t to = q->run_head;

    for (uint64_t from = q->run_head; from != q->run_tail; from++) {
        TimerRunEntry *e = run_entry(q, from);

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
    free(q->keys_alloc);
    g_free(q->timers);
    g_free(q->run);
}

void qaio_int_timer_queue_insert(TimerQueue *q, QEMUTimer *ts,
                                 int64_t expire_time)
{
    TimerKey key = timer_key(expire_time, q->next_seq++);

    if (run_empty(q) || key > run_entry(q, q->run_tail - 1)->key) {
        run_append(q, key, ts);
        return;
    }
    if (q->n == q->cap) {
        heap_grow(q);
    }
    q->n++;
    heap_sift_up(q, q->n - 1, key, ts);
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
        assert(where < q->n && q->timers[where] == ts);
        heap_remove(q, where);
    }
}

QEMUTimer *qaio_int_timer_queue_first(TimerQueue *q, int64_t *expire_time)
{
    TimerRunEntry *head;

    if (run_empty(q)) {
        if (!q->n) {
            return NULL;
        }
        *expire_time = timer_key_expire(q->keys[0]);
        return q->timers[0];
    }
    head = run_entry(q, q->run_head);
    if (q->n && q->keys[0] < head->key) {
        *expire_time = timer_key_expire(q->keys[0]);
        return q->timers[0];
    }
    *expire_time = timer_key_expire(head->key);
    return head->ts;
}

int64_t qaio_int_timer_queue_earliest_matching(TimerQueue *q,
                                               unsigned excluded)
{
    TimerKey best = ~(TimerKey)0;

    heap_earliest_matching(q, 0, excluded, &best);
    /* The run is sorted: its first matching entry is its earliest. */
    for (uint64_t pos = q->run_head; pos != q->run_tail; pos++) {
        TimerRunEntry *e = run_entry(q, pos);

        if (e->key >= best) {
            break;
        }
        if (e->ts && !((unsigned)e->ts->attributes & excluded)) {
            best = e->key;
            break;
        }
    }
    return best == ~(TimerKey)0 ? -1 : timer_key_expire(best);
}
