/*
 * qapi/error.h: QEMU's error objects.
 *
 * A function that can fail takes "Error **errp" as its last argument.  On
 * failure it stores a new Error in *errp (unless errp is NULL, which means
 * the caller does not care).  Passing &error_abort aborts on error,
 * &error_fatal prints and exits(1), &error_warn prints a warning and goes on.
 * *errp must be NULL on entry: setting an error twice is a programming error
 * and aborts.
 *
 * Errors are plain heap objects with no thread affinity.
 */
#ifndef QAPI_ERROR_H
#define QAPI_ERROR_H

#include "qemu/osdep.h"

typedef enum ErrorClass {
    ERROR_CLASS_GENERIC_ERROR = 0,
    ERROR_CLASS_COMMAND_NOT_FOUND,
    ERROR_CLASS_DEVICE_NOT_ACTIVE,
    ERROR_CLASS_DEVICE_NOT_FOUND,
    ERROR_CLASS_KVM_MISSING_CAP,
    ERROR_CLASS__MAX,
} ErrorClass;

/* The human-readable message of @err (never NULL). */
const char *error_get_pretty(const Error *err);
ErrorClass error_get_class(const Error *err);

#define error_setg(errp, fmt, ...)                              \
    error_setg_internal((errp), __FILE__, __LINE__, __func__,   \
                        (fmt), ## __VA_ARGS__)
void error_setg_internal(Error **errp,
                         const char *src, int line, const char *func,
                         const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* Like error_setg, appending ": " and strerror(@os_errno) to the message. */
#define error_setg_errno(errp, os_errno, fmt, ...)                      \
    error_setg_errno_internal((errp), __FILE__, __LINE__, __func__,     \
                              (os_errno), (fmt), ## __VA_ARGS__)
void error_setg_errno_internal(Error **errp,
                               const char *fname, int line, const char *func,
                               int os_errno,
                               const char *fmt, ...) G_GNUC_PRINTF(6, 7);

#define error_setg_file_open(errp, os_errno, filename)                  \
    error_setg_errno((errp), (os_errno), "Could not open '%s'", (filename))

/*
 * Hand @local_err to @dst_errp: stored in *dst_errp, or handled as the
 * special error_abort/error_fatal/error_warn say, or freed if @dst_errp is
 * NULL or already holds an error.  @local_err may be NULL (nothing happens).
 */
void error_propagate(Error **dst_errp, Error *local_err);
void error_propagate_prepend(Error **dst_errp, Error *local_err,
                             const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Put a formatted prefix in front of the message of *errp, if there is one. */
void error_prepend(Error *const *errp, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
void error_vprepend(Error *const *errp, const char *fmt, va_list ap)
    G_GNUC_PRINTF(2, 0);

/* Add a hint (printed on its own line after the message) to *errp. */
void error_append_hint(Error *const *errp, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

Error *error_copy(const Error *err);
/* NULL-safe. */
void error_free(Error *err);
/* Free *errp and set it to NULL; abort if there was no error. */
void error_free_or_abort(Error **errp);

/* Print @err with error_report (its hint too) and free it.  NULL-safe. */
void error_report_err(Error *err);
void warn_report_err(Error *err);
void error_reportf_err(Error *err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void warn_reportf_err(Error *err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Special destinations: pass their address as errp. */
extern Error *error_abort;
extern Error *error_fatal;
extern Error *error_warn;

/*
 * ERRP_GUARD: at the top of a function taking errp, makes errp safe to
 * dereference ("if (*errp)") and to append hints to, whatever the caller
 * passed; the error reaches the caller's errp when the function returns.
 */
typedef struct ErrorPropagator {
    Error *local_err;
    Error **errp;
} ErrorPropagator;

static inline void error_propagator_cleanup(ErrorPropagator *prop)
{
    error_propagate(prop->errp, prop->local_err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ErrorPropagator, error_propagator_cleanup)

#define ERRP_GUARD()                                            \
    g_auto(ErrorPropagator) _auto_errp_prop = {.errp = errp};   \
    do {                                                        \
        if (!errp || errp == &error_fatal) {                    \
            errp = &_auto_errp_prop.local_err;                  \
        }                                                       \
    } while (0)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

#endif /* QAPI_ERROR_H */
