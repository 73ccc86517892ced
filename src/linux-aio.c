/*
 * linux-aio.c: placeholder until the Linux AIO engine lands (issue 4).
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/raw-aio.h"

LinuxAioState *laio_init(Error **errp)
{
    error_setg(errp, "Linux AIO engine is not built yet in this version "
               "of qaio");
    return NULL;
}

void laio_cleanup(LinuxAioState *s)
{
}

void laio_detach_aio_context(LinuxAioState *s, AioContext *old_context)
{
}

void laio_attach_aio_context(LinuxAioState *s, AioContext *new_context)
{
}
