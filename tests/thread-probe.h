/*
 * thread-probe.h: for tests that must know another thread is blocked.
 *
 * A test cannot see a thread block, but Linux shows each thread's scheduler
 * state in /proc.  A thread in state 'S' sleeps in a system call; combined
 * with a look at the data structure showing that the thread announced
 * itself as a waiter, that tells a test the thread is blocked where it
 * should be, without sleeping for an arbitrary time.
 */
#ifndef TESTS_THREAD_PROBE_H
#define TESTS_THREAD_PROBE_H

#include "qemu/osdep.h"
#include <sched.h>

/* Scheduler state letter of thread @tid of this process, or 0 if gone. */
static inline char thread_probe_state(int tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/stat", tid);
    g_autofree char *stat = NULL;
    char *end;

    if (!g_file_get_contents(path, &stat, NULL, NULL)) {
        return 0;
    }
    /* "tid (comm) S ...": comm may contain anything, so find the last ')'. */
    end = strrchr(stat, ')');
    if (!end || end[1] != ' ') {
        return 0;
    }
    return end[2];
}

/*
 * Yield until thread @tid sleeps in the kernel.  Returns false if it exited
 * instead, or did not sleep within a generous cap of iterations (each reads
 * /proc).
 */
static inline bool thread_probe_wait_sleeping(int tid)
{
    int i;

    for (i = 0; i < 1000000; i++) {
        char state = thread_probe_state(tid);

        if (state == 'S') {
            return true;
        }
        if (state == 0 || state == 'Z' || state == 'X') {
            return false;
        }
        sched_yield();
    }
    return false;
}

/* Read /proc/self/task/<tid>/comm without the newline; g_free it. */
static inline char *thread_probe_comm(int tid)
{
    g_autofree char *path = g_strdup_printf("/proc/self/task/%d/comm", tid);
    char *comm = NULL;

    if (!g_file_get_contents(path, &comm, NULL, NULL)) {
        return NULL;
    }
    g_strchomp(comm);
    return comm;
}

#endif /* TESTS_THREAD_PROBE_H */
