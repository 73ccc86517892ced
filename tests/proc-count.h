/*
 * proc-count.h: counting this process's threads and open file descriptors
 * through /proc, for the tests that check nothing leaked.
 *
 * /proc/self/fd is read through a GDir, whose own fd is open while it
 * counts, so a count is one more than the fds a test holds; tests only
 * compare counts taken the same way.
 *
 * Threading: any thread; the counts are of the whole process.
 */
#ifndef QAIO_TESTS_PROC_COUNT_H
#define QAIO_TESTS_PROC_COUNT_H

#include "qemu/osdep.h"

static inline int count_dir_entries(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    int n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    return n;
}

static inline int count_fds(void)
{
    return count_dir_entries("/proc/self/fd");
}

static inline int count_threads(void)
{
    return count_dir_entries("/proc/self/task");
}

/*
 * Wait, with a cap, until at most @n threads are left: the kernel reaps a
 * joined thread's task shortly after pthread_join() returns, so it may
 * still be listed for a moment.
 */
static inline bool threads_back_to(int n)
{
    int i;

    for (i = 0; i < 1000000; i++) {
        if (count_threads() <= n) {
            return true;
        }
        g_thread_yield();
    }
    return false;
}

#endif
