/*
 * qemu/typedefs.h: forward declarations of the types QEMU headers share, so
 * that any header can name them without including the one that defines them.
 */
#ifndef QEMU_TYPEDEFS_H
#define QEMU_TYPEDEFS_H

typedef struct AioContext AioContext;
typedef struct BlockDriverState BlockDriverState;
typedef struct Error Error;
typedef struct EventNotifier EventNotifier;
typedef struct MemReentrancyGuard MemReentrancyGuard;
typedef struct Notifier Notifier;
typedef struct QEMUBH QEMUBH;
typedef struct QEMUFile QEMUFile;
typedef struct QEMUTimer QEMUTimer;
typedef struct QEMUTimerListGroup QEMUTimerListGroup;
typedef struct IOThread IOThread;

#endif /* QEMU_TYPEDEFS_H */
