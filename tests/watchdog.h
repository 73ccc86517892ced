/*
 * watchdog.h: the hang detector the multithreaded tests share.
 *
 * A lost wake-up leaves a thread asleep for ever.  A test calls
 * watchdog_start(), progress() whenever it gets anywhere, and
 * watchdog_stop(); if progress() is not called for WATCHDOG_MS the
 * watchdog thread aborts naming the case.  Healthy runs make progress
 * thousands of times a second, so this is a hang detector, not a timing
 * assertion.  A test may define WATCHDOG_MS before including this.
 */
#ifndef QAIO_TESTS_WATCHDOG_H
#define QAIO_TESTS_WATCHDOG_H

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/thread.h"

#ifndef WATCHDOG_MS
#define WATCHDOG_MS 10000
#endif

static struct {
    QemuThread thread;
    QemuSemaphore stop;
    const char *what;
} watchdog;

static unsigned long wd_progress;

static inline void progress(void)
{
    qatomic_inc(&wd_progress);
}

static void *watchdog_fn(void *opaque)
{
    unsigned long last = qatomic_read(&wd_progress);

    while (qemu_sem_timedwait(&watchdog.stop, WATCHDOG_MS) != 0) {
        unsigned long now = qatomic_read(&wd_progress);

        if (now == last) {
            fprintf(stderr, "watchdog: %s (QAIO_FDMON=%s) made no progress "
                    "for %d ms (stuck after %lu steps)\n", watchdog.what,
                    g_getenv("QAIO_FDMON") ?: "", WATCHDOG_MS, now);
            abort();
        }
        last = now;
    }
    return NULL;
}

static inline void watchdog_start(const char *what)
{
    watchdog.what = what;
    qatomic_set(&wd_progress, 0);
    qemu_sem_init(&watchdog.stop, 0);
    qemu_thread_create(&watchdog.thread, "watchdog", watchdog_fn, NULL,
                       QEMU_THREAD_JOINABLE);
}

static inline void watchdog_stop(void)
{
    qemu_sem_post(&watchdog.stop);
    qemu_thread_join(&watchdog.thread);
    qemu_sem_destroy(&watchdog.stop);
}

/* Wait for @sem; abort naming @what if it takes more than WATCHDOG_MS. */
static inline void sem_wait_or_abort(QemuSemaphore *sem, const char *what)
{
    if (qemu_sem_timedwait(sem, WATCHDOG_MS) != 0) {
        fprintf(stderr, "watchdog: no %s within %d ms (QAIO_FDMON=%s)\n",
                what, WATCHDOG_MS, g_getenv("QAIO_FDMON") ?: "");
        abort();
    }
}

#endif /* QAIO_TESTS_WATCHDOG_H */
