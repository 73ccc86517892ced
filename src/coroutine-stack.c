/*
 * coroutine-stack.c: coroutine stacks.
 *
 * Owns the allocation of the stacks the switch backends run coroutines
 * on, their size (QAIO_COROUTINE_STACK_SIZE, default 1 MiB like QEMU),
 * their guard pages and their registration with valgrind.
 *
 * Each stack is a private anonymous mapping with a PROT_NONE guard page at
 * its low end: a coroutine that overflows its stack faults at the guard
 * instead of writing into whatever lies below.  Pages are touched lazily,
 * so a 1 MiB stack costs a few KiB of memory until it is used.
 *
 * Linux quirk: a guard page splits the mapping in two, so each stack costs
 * two of the process's vm.max_map_count mappings (65530 by default), and
 * mmap() fails with ENOMEM past that -- long before memory runs out.  So
 * the guarded stacks are rationed to (max_map_count - 5000) / 2, leaving
 * room for everything else in the process; beyond that, stacks come from
 * slabs of SLAB_STACKS stacks sharing one mapping (one guard page below
 * the whole slab) and a warning says that they lack guard pages.  Slab
 * stacks are recycled through a free list and never unmapped.
 *
 * Threading: any thread may allocate and free stacks; the counters are
 * atomic and the slab free list is under slab_lock.
 */
#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qemu/atomic.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"
#include "coroutine-backend.h"

#ifdef CONFIG_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#define DEFAULT_STACK_SIZE (1 << 20)
#define MIN_STACK_SIZE (16 << 10)
#define MAX_STACK_SIZE ((size_t)1 << 30)

/* Mappings left to the rest of the process before stacks lose guards. */
#define MAPPINGS_RESERVED 5000

/* Stacks per slab once the guarded stacks are used up. */
#define SLAB_STACKS 64

static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static size_t page_size;
static size_t stack_size;
static unsigned guarded_budget;
static unsigned guarded_live;          /* atomic */
static unsigned stacks_live;           /* atomic; guarded and slab */

static QemuMutex slab_lock;
static void *slab_free_list;           /* under slab_lock; link at hi - 8 */

static size_t parse_stack_size(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        return 0;
    }
    if (*end == 'k' || *end == 'K') {
        v <<= 10;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v <<= 20;
        end++;
    }
    if (*end || v < MIN_STACK_SIZE || v > MAX_STACK_SIZE) {
        return 0;
    }
    return v;
}

static unsigned read_max_map_count(void)
{
    g_autofree char *contents = NULL;
    unsigned long v;

    if (!g_file_get_contents("/proc/sys/vm/max_map_count", &contents,
                             NULL, NULL)) {
        return UINT_MAX;
    }
    v = strtoul(contents, NULL, 10);
    return v > UINT_MAX ? UINT_MAX : v;
}

static void stack_init_once(void)
{
    const char *env = g_getenv("QAIO_COROUTINE_STACK_SIZE");
    unsigned max_maps = read_max_map_count();

    page_size = sysconf(_SC_PAGESIZE);
    stack_size = DEFAULT_STACK_SIZE;
    if (env && *env) {
        size_t want = parse_stack_size(env);

        if (want) {
            stack_size = want;
        } else {
            warn_report("QAIO_COROUTINE_STACK_SIZE=%s is not a size between "
                        "%d KiB and %zu MiB; using %d KiB", env,
                        MIN_STACK_SIZE >> 10, MAX_STACK_SIZE >> 20,
                        DEFAULT_STACK_SIZE >> 10);
        }
    }
    stack_size = QEMU_ALIGN_UP(stack_size, page_size);

    if (max_maps == UINT_MAX) {
        guarded_budget = UINT_MAX;
    } else if (max_maps > 2 * MAPPINGS_RESERVED) {
        guarded_budget = (max_maps - MAPPINGS_RESERVED) / 2;
    } else {
        guarded_budget = max_maps / 4;
    }
    qemu_mutex_init(&slab_lock);
}

size_t co_stack_size(void)
{
    pthread_once(&stack_once, stack_init_once);
    return stack_size;
}

unsigned co_stack_count(void)
{
    return qatomic_read(&stacks_live);
}

unsigned co_stack_pool_hard_max(void)
{
    pthread_once(&stack_once, stack_init_once);
    return guarded_budget;
}

static G_NORETURN void stack_alloc_failed(size_t bytes, int err)
{
    error_report("qemu_coroutine_create: cannot map a %zu KiB coroutine "
                 "stack: %s (%u guarded stacks live)", bytes >> 10,
                 g_strerror(err), qatomic_read(&guarded_live));
    abort();
}

/* One stack with a guard page of its own: two mappings. */
static bool stack_alloc_guarded(CoroutineStack *st)
{
    size_t size = stack_size + page_size;
    void *map;

    map = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        stack_alloc_failed(stack_size, errno);
    }
    if (mprotect(map, page_size, PROT_NONE) < 0) {
        int err = errno;

        munmap(map, size);
        if (err == ENOMEM) {
            /* Out of mappings after all (others use them too). */
            return false;
        }
        stack_alloc_failed(stack_size, err);
    }
    st->map = map;
    st->map_size = size;
    st->lo = (char *)map + page_size;
    st->hi = (char *)map + size;
    st->slab = false;
    return true;
}

/* Map a slab and put all its stacks on the free list; under slab_lock. */
static void slab_refill_locked(void)
{
    size_t size = SLAB_STACKS * stack_size + page_size;
    char *map;
    int i;

    map = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (map == MAP_FAILED) {
        stack_alloc_failed(stack_size, errno);
    }
    /* Best effort: the slab's lowest stack gets a guard page. */
    mprotect(map, page_size, PROT_NONE);

    for (i = 0; i < SLAB_STACKS; i++) {
        char *hi = map + page_size + (size_t)(i + 1) * stack_size;

        *(void **)(hi - sizeof(void *)) = slab_free_list;
        slab_free_list = hi;
    }
}

static void stack_alloc_slab(CoroutineStack *st)
{
    char *hi;

    warn_report_once("coroutine stacks: more than %u stacks are live, the "
                     "limit vm.max_map_count allows with guard pages; "
                     "further stacks have no guard page of their own",
                     guarded_budget);

    qemu_mutex_lock(&slab_lock);
    if (!slab_free_list) {
        slab_refill_locked();
    }
    hi = slab_free_list;
    slab_free_list = *(void **)(hi - sizeof(void *));
    qemu_mutex_unlock(&slab_lock);

    st->map = NULL;
    st->map_size = 0;
    st->hi = hi;
    st->lo = hi - stack_size;
    st->slab = true;
}

void co_stack_alloc(CoroutineStack *st)
{
    pthread_once(&stack_once, stack_init_once);

    if (qatomic_fetch_inc(&guarded_live) < guarded_budget &&
        stack_alloc_guarded(st)) {
        /* guarded */
    } else {
        qatomic_dec(&guarded_live);
        stack_alloc_slab(st);
    }

    qatomic_inc(&stacks_live);

#ifdef CONFIG_VALGRIND_H
    st->valgrind_id = VALGRIND_STACK_REGISTER(st->lo, st->hi);
#endif
}

void co_stack_free(CoroutineStack *st)
{
#ifdef CONFIG_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(st->valgrind_id);
#endif

    if (st->slab) {
        /* Give the memory back but keep the mapping for the next stack. */
        madvise(st->lo, stack_size, MADV_DONTNEED);
        qemu_mutex_lock(&slab_lock);
        *(void **)((char *)st->hi - sizeof(void *)) = slab_free_list;
        slab_free_list = st->hi;
        qemu_mutex_unlock(&slab_lock);
    } else {
        munmap(st->map, st->map_size);
        qatomic_dec(&guarded_live);
    }
    qatomic_dec(&stacks_live);
    st->lo = st->hi = st->map = NULL;
}
