/*
 * error-report.c: error_report, warn_report, info_report and error_printf
 * (qemu/error-report.h), the only way the library prints.
 *
 * Threading: any thread.  Each call formats its whole text first and hands
 * it to one write(2) on stderr, so reports from concurrent threads never
 * interleave within a line (stdio buffering of stderr is bypassed for the
 * same reason).  errno is preserved, since callers often report and then
 * look at it.
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"

/* Write all of @text to stderr; one write(2) unless the kernel cuts it. */
static void write_stderr(const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, text, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        text += n;
        len -= n;
    }
}

void error_vprintf(const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char *text = g_strdup_vprintf(fmt, ap);

    write_stderr(text, strlen(text));
    g_free(text);
    errno = saved_errno;
}

void error_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_vprintf(fmt, ap);
    va_end(ap);
}

/*
 * "<prgname>: <kind><message>\n", written at once.  Plain malloc'd strings
 * rather than a GString: GLib 2.74 takes GStrings from GSlice, whose
 * per-thread caches ThreadSanitizer cannot see through.
 */
static void G_GNUC_PRINTF(2, 0)
vreport(const char *kind, const char *fmt, va_list ap)
{
    int saved_errno = errno;
    const char *prgname = g_get_prgname();
    char *msg = g_strdup_vprintf(fmt, ap);
    char *line;

    if (prgname) {
        line = g_strdup_printf("%s: %s%s\n", prgname, kind, msg);
    } else {
        line = g_strdup_printf("%s%s\n", kind, msg);
    }
    write_stderr(line, strlen(line));
    g_free(line);
    g_free(msg);
    errno = saved_errno;
}

void error_vreport(const char *fmt, va_list ap)
{
    vreport("", fmt, ap);
}

void warn_vreport(const char *fmt, va_list ap)
{
    vreport("warning: ", fmt, ap);
}

void info_vreport(const char *fmt, va_list ap)
{
    vreport("info: ", fmt, ap);
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void info_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("info: ", fmt, ap);
    va_end(ap);
}
