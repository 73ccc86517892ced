/*
 * qemu/event_notifier.h: a level-triggered, fd-backed wake-up flag.
 *
 * On Linux an eventfd (rfd == wfd); elsewhere, or where eventfd fails, a
 * non-blocking pipe.  event_notifier_set is async-signal-safe and may be
 * called from any thread; test_and_clear belongs to the thread that polls
 * the read fd.
 */
#ifndef QEMU_EVENT_NOTIFIER_H
#define QEMU_EVENT_NOTIFIER_H

#include "qemu/osdep.h"

struct EventNotifier {
    int rfd;
    int wfd;
    bool initialized;
};

typedef void EventNotifierHandler(EventNotifier *);

/* Returns 0, or -errno if no fd could be had; @active starts it set. */
int event_notifier_init(EventNotifier *e, int active);
void event_notifier_cleanup(EventNotifier *e);
/* Returns 0 or -errno. */
int event_notifier_set(EventNotifier *e);
/* Returns non-zero if the notifier was set, and leaves it clear. */
int event_notifier_test_and_clear(EventNotifier *e);
/* Wrap an existing fd (e.g. an eventfd made elsewhere); rfd == wfd == @fd. */
void event_notifier_init_fd(EventNotifier *e, int fd);
/* The fd to poll for readability, or -1 if not initialized. */
int event_notifier_get_fd(const EventNotifier *e);
int event_notifier_get_wfd(const EventNotifier *e);

#endif /* QEMU_EVENT_NOTIFIER_H */
