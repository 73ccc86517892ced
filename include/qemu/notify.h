/*
 * qemu/notify.h: Notifier and NotifierList, a list of callbacks run in
 * order by notifier_list_notify.  No locking: the owner serialises use.
 */
#ifndef QEMU_NOTIFY_H
#define QEMU_NOTIFY_H

#include "qemu/queue.h"

struct Notifier {
    void (*notify)(Notifier *notifier, void *data);
    QLIST_ENTRY(Notifier) node;
};

typedef struct NotifierList {
    QLIST_HEAD(, Notifier) notifiers;
} NotifierList;

#define NOTIFIER_LIST_INITIALIZER(head) \
    { QLIST_HEAD_INITIALIZER((head).notifiers) }

static inline void notifier_list_init(NotifierList *list)
{
    QLIST_INIT(&list->notifiers);
}

static inline void notifier_list_add(NotifierList *list, Notifier *notifier)
{
    QLIST_INSERT_HEAD(&list->notifiers, notifier, node);
}

static inline void notifier_remove(Notifier *notifier)
{
    QLIST_REMOVE(notifier, node);
}

static inline void notifier_list_notify(NotifierList *list, void *data)
{
    Notifier *notifier, *next;

    QLIST_FOREACH_SAFE(notifier, &list->notifiers, node, next) {
        notifier->notify(notifier, data);
    }
}

static inline bool notifier_list_empty(NotifierList *list)
{
    return QLIST_EMPTY(&list->notifiers);
}

#endif /* QEMU_NOTIFY_H */
