/*
 * io-uring.c: placeholder until the io_uring engine lands (issue 4).
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/raw-aio.h"

LuringState *luring_init(Error **errp)
{
    error_setg(errp, "io_uring engine is not built yet in this version "
               "of qaio");
    return NULL;
}

void luring_cleanup(LuringState *s)
{
}

void luring_detach_aio_context(LuringState *s, AioContext *old_context)
{
}

void luring_attach_aio_context(LuringState *s, AioContext *new_context)
{
}
