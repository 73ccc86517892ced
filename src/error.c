/*
 * error.c: Error objects and the errp convention (qapi/error.h).
 *
 * Threading: an Error belongs to whoever holds the pointer; nothing here is
 * shared, so any thread may use these functions on its own errors.  The
 * special destinations error_abort, error_fatal and error_warn are globals
 * that are only ever compared by address and stay NULL.
 *
 * Every function keeps errno intact: callers commonly set an error and then
 * return -errno.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"

struct Error {
    char *msg;
    ErrorClass err_class;
    const char *src, *func;
    int line;
    GString *hint;
};

Error *error_abort;
Error *error_fatal;
Error *error_warn;

static G_NORETURN void error_misuse(const char *func, const char *rule)
{
    error_report("%s: %s", func, rule);
    abort();
}

/* Deliver a new @err to @errp: a special destination, *errp, or nowhere. */
static void error_handle(Error **errp, Error *err)
{
    if (errp == &error_abort) {
        error_printf("Unexpected error in %s() at %s:%d:\n",
                     err->func, err->src, err->line);
        error_report("%s", err->msg);
        if (err->hint) {
            error_printf("%s", err->hint->str);
        }
        abort();
    }
    if (errp == &error_fatal) {
        error_report_err(err);
        exit(1);
    }
    if (errp == &error_warn) {
        warn_report_err(err);
    } else if (errp && !*errp) {
        *errp = err;
    } else {
        error_free(err);
    }
}

static void G_GNUC_PRINTF(6, 0)
error_setv(Error **errp, const char *src, int line, const char *func,
           ErrorClass err_class, const char *fmt, va_list ap,
           const char *suffix)
{
    int saved_errno = errno;
    Error *err;

    if (!errp) {
        return;
    }

    err = g_new0(Error, 1);
    err->msg = g_strdup_vprintf(fmt, ap);
    if (suffix) {
        char *msg = g_strdup_printf("%s: %s", err->msg, suffix);

        g_free(err->msg);
        err->msg = msg;
    }
    err->err_class = err_class;
    err->src = src;
    err->line = line;
    err->func = func;

    if (*errp) {
        error_report("%s:%d: %s(): cannot set error \"%s\": *errp already "
                     "holds \"%s\" (set at %s:%d in %s())",
                     src, line, func, err->msg,
                     (*errp)->msg, (*errp)->src, (*errp)->line,
                     (*errp)->func);
        abort();
    }
    error_handle(errp, err);
    errno = saved_errno;
}

void error_setg_internal(Error **errp,
                         const char *src, int line, const char *func,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, src, line, func, ERROR_CLASS_GENERIC_ERROR, fmt, ap,
               NULL);
    va_end(ap);
}

void error_setg_errno_internal(Error **errp,
                               const char *fname, int line, const char *func,
                               int os_errno, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, fname, line, func, ERROR_CLASS_GENERIC_ERROR, fmt, ap,
               os_errno != 0 ? strerror(os_errno) : NULL);
    va_end(ap);
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

ErrorClass error_get_class(const Error *err)
{
    return err->err_class;
}

void error_vprepend(Error *const *errp, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char *prefix, *msg;

    if (!errp || !*errp) {
        return;
    }
    prefix = g_strdup_vprintf(fmt, ap);
    msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free(prefix);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
    errno = saved_errno;
}

void error_prepend(Error *const *errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vprepend(errp, fmt, ap);
    va_end(ap);
}

void error_append_hint(Error *const *errp, const char *fmt, ...)
{
    int saved_errno = errno;
    Error *err;
    va_list ap;

    if (!errp) {
        return;
    }
    /*
     * Hints are for errors the caller will see: error_fatal would exit and
     * error_abort abort before the hint could be added.  ERRP_GUARD()
     * swaps error_fatal for a local error, which makes this work.
     */
    if (errp == &error_fatal || errp == &error_abort) {
        error_misuse(__func__, "errp is &error_fatal or &error_abort; "
                     "use ERRP_GUARD() in the caller");
    }
    err = *errp;
    if (!err) {
        error_misuse(__func__, "no error set in *errp");
    }
    if (!err->hint) {
        err->hint = g_string_new(NULL);
    }
    va_start(ap, fmt);
    g_string_append_vprintf(err->hint, fmt, ap);
    va_end(ap);
    errno = saved_errno;
}

Error *error_copy(const Error *err)
{
    Error *copy = g_new0(Error, 1);

    copy->msg = g_strdup(err->msg);
    copy->err_class = err->err_class;
    copy->src = err->src;
    copy->line = err->line;
    copy->func = err->func;
    if (err->hint) {
        copy->hint = g_string_new_len(err->hint->str, err->hint->len);
    }
    return copy;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        if (err->hint) {
            g_string_free(err->hint, TRUE);
        }
        g_free(err);
    }
}

void error_free_or_abort(Error **errp)
{
    if (!errp || !*errp) {
        error_misuse(__func__, "expected an error in *errp, found none");
    }
    error_free(*errp);
    *errp = NULL;
}

void error_propagate(Error **dst_errp, Error *local_err)
{
    if (local_err) {
        error_handle(dst_errp, local_err);
    }
}

void error_propagate_prepend(Error **dst_errp, Error *local_err,
                             const char *fmt, ...)
{
    va_list ap;

    /*
     * Not worth formatting when the error is about to be dropped.  The
     * special destinations always read NULL, so they get the prefix.
     */
    if (dst_errp && !*dst_errp) {
        va_start(ap, fmt);
        error_vprepend(&local_err, fmt, ap);
        va_end(ap);
    }
    error_propagate(dst_errp, local_err);
}

static void print_hint(const Error *err)
{
    if (err->hint) {
        error_printf("%s", err->hint->str);
    }
}

void error_report_err(Error *err)
{
    if (err) {
        error_report("%s", err->msg);
        print_hint(err);
        error_free(err);
    }
}

void warn_report_err(Error *err)
{
    if (err) {
        warn_report("%s", err->msg);
        print_hint(err);
        error_free(err);
    }
}

void error_reportf_err(Error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vprepend(&err, fmt, ap);
    va_end(ap);
    error_report_err(err);
}

void warn_reportf_err(Error *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vprepend(&err, fmt, ap);
    va_end(ap);
    warn_report_err(err);
}
