/*
 * qemu/lockable.h: QemuLockable, one handle for any of QEMU's lock types,
 * and scope-bound lock guards built on it.
 *
 * A QemuLockable pairs a lock object with its lock and unlock functions, so
 * that code such as qemu_co_queue_wait() can release and re-take whatever
 * lock its caller holds: a QemuMutex, QemuRecMutex, CoMutex or QemuSpin.
 * The handles made by QEMU_MAKE_LOCKABLE are compound literals with the
 * lifetime of the enclosing block, so nothing is allocated.
 *
 * Threading: a QemuLockable adds no state of its own; the rules are those
 * of the lock behind it (a CoMutex only from coroutine context).
 */
#ifndef QEMU_LOCKABLE_H
#define QEMU_LOCKABLE_H

#include "qemu/osdep.h"
#include "qemu/coroutine-core.h"
#include "qemu/thread.h"
#include "qemu/error-report.h"

typedef void QemuLockUnlockFunc(void *);

typedef struct QemuLockable {
    void *object;
    QemuLockUnlockFunc *lock;
    QemuLockUnlockFunc *unlock;
} QemuLockable;

/*
 * The NULL test lives in a function rather than in the macro: written in
 * the macro, it would make the compiler warn that the address of a named
 * lock "will always evaluate as true".
 */
static inline QEMU_ALWAYS_INLINE QemuLockable *
qemu_make_lockable(void *x, QemuLockable *lockable)
{
    return x ? lockable : NULL;
}

/* The plain NULL (type void *) case of QEMU_MAKE_LOCKABLE. */
static inline QEMU_ALWAYS_INLINE QemuLockable *
qemu_null_lockable(void *x)
{
    if (x != NULL) {
        error_report("QEMU_MAKE_LOCKABLE: a void pointer that is not NULL "
                     "is not a lock; pass the lock with its own type");
        abort();
    }
    return NULL;
}

/* Adapters from each lock type's functions to QemuLockUnlockFunc. */
#define QML_FUNC_(name)                                             \
    static inline void qemu_lockable_ ## name ## _lock(void *x)     \
    {                                                               \
        qemu_ ## name ## _lock(x);                                  \
    }                                                               \
    static inline void qemu_lockable_ ## name ## _unlock(void *x)   \
    {                                                               \
        qemu_ ## name ## _unlock(x);                                \
    }

QML_FUNC_(mutex)
QML_FUNC_(rec_mutex)
QML_FUNC_(co_mutex)
QML_FUNC_(spin)

#undef QML_FUNC_

/* A compound literal: it lives as long as the block the macro is used in. */
#define QML_OBJ_(x, name) (&(QemuLockable) {                        \
        .object = (x),                                              \
        .lock = qemu_lockable_ ## name ## _lock,                    \
        .unlock = qemu_lockable_ ## name ## _unlock                 \
    })

/**
 * QEMU_MAKE_LOCKABLE: make a QemuLockable for a lock of any supported type
 * @x: a QemuMutex *, QemuRecMutex *, CoMutex *, QemuSpin *, a QemuLockable *
 *     (returned as is), or NULL
 *
 * Returns: a QemuLockable valid until the end of the enclosing block, or
 * NULL if @x is NULL (the literal NULL, or a null pointer of a lock type).
 */
#define QEMU_MAKE_LOCKABLE(x)                                               \
    _Generic((x), QemuLockable *: (x),                                      \
             void *: qemu_null_lockable(x),                                 \
             QemuMutex *: qemu_make_lockable((x), QML_OBJ_(x, mutex)),      \
             QemuRecMutex *: qemu_make_lockable((x), QML_OBJ_(x, rec_mutex)), \
             CoMutex *: qemu_make_lockable((x), QML_OBJ_(x, co_mutex)),     \
             QemuSpin *: qemu_make_lockable((x), QML_OBJ_(x, spin)))

/**
 * QEMU_MAKE_LOCKABLE_NONNULL: QEMU_MAKE_LOCKABLE for a lock known to exist
 * @x: a QemuMutex *, QemuRecMutex *, CoMutex *, QemuSpin * or
 *     QemuLockable *, never NULL
 *
 * Returns: a QemuLockable valid until the end of the enclosing block.
 */
#define QEMU_MAKE_LOCKABLE_NONNULL(x)                                   \
    _Generic((x), QemuLockable *: (x),                                  \
             QemuMutex *: QML_OBJ_(x, mutex),                           \
             QemuRecMutex *: QML_OBJ_(x, rec_mutex),                    \
             CoMutex *: QML_OBJ_(x, co_mutex),                          \
             QemuSpin *: QML_OBJ_(x, spin))

/**
 * qemu_lockable_lock: take the lock behind @x
 * @x: the handle
 *
 * Context: that of the lock (coroutine context for a CoMutex).
 */
static inline void qemu_lockable_lock(QemuLockable *x)
{
    x->lock(x->object);
}

/**
 * qemu_lockable_unlock: release the lock behind @x
 * @x: the handle
 */
static inline void qemu_lockable_unlock(QemuLockable *x)
{
    x->unlock(x->object);
}

/* The guards' constructor and destructor (g_autoptr cleanup). */
static inline QemuLockable *qemu_lockable_auto_lock(QemuLockable *x)
{
    qemu_lockable_lock(x);
    return x;
}

static inline void qemu_lockable_auto_unlock(QemuLockable *x)
{
    if (x) {
        qemu_lockable_unlock(x);
    }
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuLockable, qemu_lockable_auto_unlock)

#define WITH_QEMU_LOCK_GUARD_(x, var)                                   \
    for (g_autoptr(QemuLockable) var =                                  \
             qemu_lockable_auto_lock(QEMU_MAKE_LOCKABLE_NONNULL((x)));  \
         var;                                                           \
         qemu_lockable_auto_unlock(var), var = NULL)

/**
 * WITH_QEMU_LOCK_GUARD: run the following statement with @x held
 * @x: the lock (any type QEMU_MAKE_LOCKABLE_NONNULL takes)
 *
 * The lock is released when the statement ends, however it ends: normally,
 * by break, or by return or goto out of it.  Use it as a loop header:
 *
 *     WITH_QEMU_LOCK_GUARD(&s->lock) {
 *         ...
 *     }
 */
#define WITH_QEMU_LOCK_GUARD(x) \
    WITH_QEMU_LOCK_GUARD_((x), glue(qemu_lockable_auto, __COUNTER__))

/**
 * QEMU_LOCK_GUARD: hold @x until the end of the enclosing block
 * @x: the lock (any type QEMU_MAKE_LOCKABLE takes, not NULL)
 *
 * A declaration: the lock is taken here and released when the block is
 * left by any path.
 */
#define QEMU_LOCK_GUARD(x)                                          \
    g_autoptr(QemuLockable)                                         \
    glue(qemu_lockable_auto, __COUNTER__) G_GNUC_UNUSED =           \
        qemu_lockable_auto_lock(QEMU_MAKE_LOCKABLE((x)))

#endif /* QEMU_LOCKABLE_H */
