/*
 * qemu/error-report.h: messages for humans on stderr.
 *
 * error_report, warn_report and info_report print one line prefixed with
 * the program name and "warning: " / "info: " as QEMU does.  They are
 * thread-safe (one line is written with a single write) and are the only
 * way the library itself ever prints.
 */
#ifndef QEMU_ERROR_REPORT_H
#define QEMU_ERROR_REPORT_H

#include "qemu/osdep.h"
#include "qemu/atomic.h"     /* error_report_once */

void error_vprintf(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);
void error_printf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

void error_vreport(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);
void warn_vreport(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);
void info_vreport(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);

void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void info_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Report only the first time this call site is reached; true if printed. */
#define error_report_once(fmt, ...)                                     \
    ({                                                                  \
        static bool print_once_;                                        \
        bool first_ = !qatomic_xchg(&print_once_, true);                \
        if (first_) {                                                   \
            error_report(fmt, ##__VA_ARGS__);                           \
        }                                                               \
        first_;                                                         \
    })

#define warn_report_once(fmt, ...)                                      \
    ({                                                                  \
        static bool print_once_;                                        \
        bool first_ = !qatomic_xchg(&print_once_, true);                \
        if (first_) {                                                   \
            warn_report(fmt, ##__VA_ARGS__);                            \
        }                                                               \
        first_;                                                         \
    })

#endif /* QEMU_ERROR_REPORT_H */
