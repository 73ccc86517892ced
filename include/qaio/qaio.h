/*
 * qaio/qaio.h: what qaio adds about itself (a qaio extension; QEMU has no
 * such header): its version, and the layout the library was built with, so
 * a program can check that its headers match the library it runs with.
 */
#ifndef QAIO_QAIO_H
#define QAIO_QAIO_H

#include "block/aio.h"

/* The version of the headers, e.g. "0.1.0". */
#define QAIO_HEADER_VERSION QAIO_VERSION

/* The version of the library in use. */
const char *qaio_version(void);

/*
 * sizeof(AioContext) and offsetof(AioContext, fdmon_ops) as the library
 * was compiled.  They differ from what the caller computes when its
 * qaio/config.h does not match the library's.
 */
size_t qaio_sizeof_aio_context(void);
size_t qaio_offsetof_aio_context_fdmon_ops(void);

/* True if the caller's view of AioContext matches the library's. */
static inline bool qaio_abi_matches(void)
{
    return qaio_sizeof_aio_context() == sizeof(AioContext) &&
           qaio_offsetof_aio_context_fdmon_ops() ==
               offsetof(AioContext, fdmon_ops);
}

#endif /* QAIO_QAIO_H */
