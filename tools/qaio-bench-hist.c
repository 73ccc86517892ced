/*
 * tools/qaio-bench-hist.c: qaio-bench's latency histogram (see the layout
 * in qaio-bench.h).  A fixed array of counters instead of a list of
 * samples: recording is a few instructions and no allocation whatever the
 * run length, and percentiles are a walk over the buckets.
 *
 * Threading: none; each worker has its own Hist, merged by the main thread
 * once the workers are done.
 */
#include "qemu/osdep.h"
#include "qaio-bench.h"

void hist_reset(Hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

static unsigned hist_index(uint64_t v)
{
    unsigned msb;

    if (v < HIST_SUB) {
        return v;
    }
    msb = 63 - __builtin_clzll(v);
    /*
     * Group msb - HIST_SUB_BITS + 1 covers [2^msb, 2^(msb+1)); within it the
     * HIST_SUB_BITS bits after the leading one pick the bucket.
     */
    return (msb - HIST_SUB_BITS + 1) * HIST_SUB +
           (unsigned)((v >> (msb - HIST_SUB_BITS)) - HIST_SUB);
}

/* The lowest value of bucket @i, and its width. */
static uint64_t hist_bucket_low(unsigned i, uint64_t *width)
{
    unsigned group = i / HIST_SUB;
    uint64_t sub = i % HIST_SUB;

    if (group == 0) {
        *width = 1;
        return sub;
    }
    *width = 1ull << (group - 1);
    return (HIST_SUB + sub) << (group - 1);
}

void hist_add(Hist *h, uint64_t ns)
{
    h->buckets[hist_index(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns < h->min_ns) {
        h->min_ns = ns;
    }
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

void hist_merge(Hist *dst, const Hist *src)
{
    unsigned i;

    if (!src->count) {
        return;
    }
    for (i = 0; i < HIST_BUCKETS; i++) {
        dst->buckets[i] += src->buckets[i];
    }
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    dst->min_ns = MIN(dst->min_ns, src->min_ns);
    dst->max_ns = MAX(dst->max_ns, src->max_ns);
}

uint64_t hist_quantile(const Hist *h, double q)
{
    uint64_t rank, seen = 0, low, width, v;
    unsigned i;

    if (!h->count) {
        return 0;
    }
    rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count) {
        rank++;                 /* ceil() without libm */
    }
    rank = MAX(rank, (uint64_t)1);
    rank = MIN(rank, h->count);
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            break;
        }
    }
    assert(i < HIST_BUCKETS);
    low = hist_bucket_low(i, &width);
    v = low + width / 2;
    return MIN(MAX(v, h->min_ns), h->max_ns);
}
