/*
 * qemu/host-utils.h: arithmetic helpers QEMU code (and qemu/timer.h) use.
 */
#ifndef HOST_UTILS_H
#define HOST_UTILS_H

#include "qemu/osdep.h"

/* (a * b) / c without overflowing the intermediate product. */
static inline uint64_t muldiv64(uint64_t a, uint32_t b, uint32_t c)
{
    return (uint64_t)(((unsigned __int128)a * b) / c);
}

static inline int clz32(uint32_t val) { return val ? __builtin_clz(val) : 32; }
static inline int clz64(uint64_t val) { return val ? __builtin_clzll(val) : 64; }
static inline int ctz32(uint32_t val) { return val ? __builtin_ctz(val) : 32; }
static inline int ctz64(uint64_t val) { return val ? __builtin_ctzll(val) : 64; }
static inline int ctpop32(uint32_t val) { return __builtin_popcount(val); }
static inline int ctpop64(uint64_t val) { return __builtin_popcountll(val); }

static inline bool is_power_of_2(uint64_t value)
{
    return value && !(value & (value - 1));
}

static inline uint64_t pow2floor(uint64_t value)
{
    return value ? 0x8000000000000000ull >> clz64(value) : 0;
}

static inline uint64_t pow2ceil(uint64_t value)
{
    int n = clz64(value - 1);

    if (!n) {
        return !value;      /* value - 1 wrapped: 1 for 0, 0 when too large */
    }
    return 0x8000000000000000ull >> (n - 1);
}

#endif /* HOST_UTILS_H */
