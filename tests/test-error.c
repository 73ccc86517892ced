/*
 * test-error.c: Error objects (qapi/error.h) and the report functions
 * (qemu/error-report.h).
 *
 * Cases that abort or exit run in a subprocess (g_test_trap_subprocess) and
 * check its stderr exactly.  The program name prefix is taken from
 * g_get_prgname(), which the subprocess shares with us.
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/thread.h"

/* "<prgname>: " followed by @fmt: what error_report prints. */
static char *G_GNUC_PRINTF(1, 2) expect_line(const char *fmt, ...)
{
    va_list ap;
    char *text, *line;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("%s: %s", g_get_prgname(), text);
    g_free(text);
    return line;
}

/*
 * Record the exit status in stderr, so that the parent can tell exit(1)
 * from any other failure.  on_exit runs for exit() but not for abort().
 */
static void print_exit_status(int status, void *opaque)
{
    error_printf("exit status %d\n", status);
}

/* The source line of the error_setg in set_boom, for "Unexpected error". */
static int boom_line;

static void set_boom(Error **errp)
{
    boom_line = __LINE__ + 1;
    error_setg(errp, "boom %d", 1);
}

static void run_subprocess(void)
{
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
}

static void test_setg_message(void)
{
    Error *err = NULL;

    error_setg(&err, "bad %s %d", "value", 42);
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, "bad value 42");
    g_assert_cmpint(error_get_class(err), ==, ERROR_CLASS_GENERIC_ERROR);
    error_free(err);
}

static void test_setg_null_errp(void)
{
    /* Nothing is allocated and nothing happens (ASan would see a leak). */
    error_setg(NULL, "ignored %d", 1);
    error_setg_errno(NULL, EIO, "ignored");
}

static void test_setg_keeps_errno(void)
{
    Error *err = NULL;

    errno = EXDEV;
    error_setg_errno(&err, ENOENT, "open");
    g_assert_cmpint(errno, ==, EXDEV);
    error_prepend(&err, "x: ");
    error_append_hint(&err, "hint\n");
    g_assert_cmpint(errno, ==, EXDEV);
    error_free(err);
}

static void test_setg_errno_message(void)
{
    Error *err = NULL;
    g_autofree char *expected = NULL;

    error_setg_errno(&err, ENOENT, "open %s", "disk.img");
    expected = g_strdup_printf("open disk.img: %s", strerror(ENOENT));
    g_assert_cmpstr(error_get_pretty(err), ==, expected);
    error_free(err);

    /* errno 0 adds no suffix. */
    err = NULL;
    error_setg_errno(&err, 0, "plain");
    g_assert_cmpstr(error_get_pretty(err), ==, "plain");
    error_free(err);

    err = NULL;
    error_setg_file_open(&err, EACCES, "/x");
    g_free(expected);
    expected = g_strdup_printf("Could not open '/x': %s", strerror(EACCES));
    g_assert_cmpstr(error_get_pretty(err), ==, expected);
    error_free(err);
}

static void test_set_twice_aborts(void)
{
    g_autofree char *pattern = NULL;

    if (g_test_subprocess()) {
        Error *err = NULL;

        error_setg(&err, "first");
        error_setg(&err, "second");
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    /* '*' in the pattern is a wildcard; it also matches the "*errp". */
    pattern = expect_line("%s:*: test_set_twice_aborts(): cannot set error "
                          "\"second\": *errp already holds \"first\" "
                          "(set at %s:* in test_set_twice_aborts())\n",
                          __FILE__, __FILE__);
    g_test_trap_assert_stderr(pattern);
}

static void test_abort_destination(void)
{
    g_autofree char *line = NULL;
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        set_boom(&error_abort);
        error_printf("not reached\n");
        return;
    }
    /* Learn set_boom's line from a harmless run. */
    set_boom(NULL);
    run_subprocess();
    g_test_trap_assert_failed();
    line = expect_line("boom 1\n");
    expected = g_strdup_printf("Unexpected error in set_boom() at %s:%d:\n%s",
                               __FILE__, boom_line, line);
    g_test_trap_assert_stderr(expected);
}

static void test_fatal_destination(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        on_exit(print_exit_status, NULL);
        set_boom(&error_fatal);
        error_printf("not reached\n");
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("boom 1\nexit status 1\n");
    g_test_trap_assert_stderr(expected);
}

static void test_warn_destination(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        set_boom(&error_warn);
        /* error_warn never holds an error; a second set is fine. */
        set_boom(&error_warn);
        g_assert_null(error_warn);
        error_printf("continued\n");
        return;
    }
    run_subprocess();
    g_test_trap_assert_passed();
    expected = expect_line("warning: boom 1\n%s: warning: boom 1\ncontinued\n",
                           g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

static void test_prepend(void)
{
    Error *err = NULL;
    Error *none = NULL;

    error_setg(&err, "disk full");
    error_prepend(&err, "writing %s: ", "a.img");
    g_assert_cmpstr(error_get_pretty(err), ==, "writing a.img: disk full");
    error_prepend(&err, "job %d: ", 3);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "job 3: writing a.img: disk full");
    error_free(err);

    /* No error, or no errp: nothing to do. */
    error_prepend(&none, "x: ");
    g_assert_null(none);
    error_prepend(NULL, "x: ");
    error_prepend(&error_fatal, "x: ");
    g_assert_null(error_fatal);
}

static void test_hint(void)
{
    Error *err = NULL;
    Error *copy;
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        error_setg(&err, "bad option");
        error_append_hint(&err, "try %s\n", "-h");
        error_append_hint(&err, "or read the manual\n");
        copy = error_copy(err);
        error_report_err(err);
        warn_report_err(copy);
        return;
    }
    /* NULL errp: silently nothing. */
    error_append_hint(NULL, "unused\n");

    run_subprocess();
    g_test_trap_assert_passed();
    expected = expect_line("bad option\ntry -h\nor read the manual\n"
                           "%s: warning: bad option\n"
                           "try -h\nor read the manual\n",
                           g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

static void test_hint_needs_guard(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        error_append_hint(&error_fatal, "hint\n");
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("error_append_hint: errp is &error_fatal or "
                           "&error_abort; use ERRP_GUARD() in the caller\n");
    g_test_trap_assert_stderr(expected);
}

static void test_hint_needs_error(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        Error *err = NULL;

        error_append_hint(&err, "hint\n");
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("error_append_hint: no error set in *errp\n");
    g_test_trap_assert_stderr(expected);
}

static void test_propagate(void)
{
    Error *dst = NULL;
    Error *local = NULL;
    Error *first;

    /* A NULL local error changes nothing. */
    error_propagate(&dst, NULL);
    g_assert_null(dst);

    /* Ownership moves to *dst. */
    error_setg(&local, "one");
    error_propagate(&dst, local);
    g_assert_true(dst == local);
    first = dst;

    /* *dst already set: the new error is freed, the first one kept. */
    local = NULL;
    error_setg(&local, "two");
    error_propagate(&dst, local);
    g_assert_true(dst == first);
    g_assert_cmpstr(error_get_pretty(dst), ==, "one");

    /* NULL destination: freed (ASan checks). */
    local = NULL;
    error_setg(&local, "three");
    error_propagate(NULL, local);

    error_free(dst);
}

static void test_propagate_prepend(void)
{
    Error *dst = NULL;
    Error *local = NULL;

    error_setg(&local, "no space");
    error_propagate_prepend(&dst, local, "flush %d: ", 7);
    g_assert_cmpstr(error_get_pretty(dst), ==, "flush 7: no space");

    /* Dropped: dst keeps its own message. */
    local = NULL;
    error_setg(&local, "other");
    error_propagate_prepend(&dst, local, "ignored: ");
    g_assert_cmpstr(error_get_pretty(dst), ==, "flush 7: no space");
    error_free(dst);

    error_propagate_prepend(&dst, NULL, "nothing: ");
    error_propagate_prepend(NULL, NULL, "nothing: ");
}

static void test_propagate_abort(void)
{
    Error *local = NULL;
    g_autofree char *line = NULL;
    g_autofree char *expected = NULL;

    set_boom(&local);
    if (g_test_subprocess()) {
        error_propagate(&error_abort, local);
        return;
    }
    error_free(local);
    run_subprocess();
    g_test_trap_assert_failed();
    /* The location is where the error was made, not where it travelled. */
    line = expect_line("boom 1\n");
    expected = g_strdup_printf("Unexpected error in set_boom() at %s:%d:\n%s",
                               __FILE__, boom_line, line);
    g_test_trap_assert_stderr(expected);
}

static void test_propagate_fatal(void)
{
    Error *local = NULL;
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        on_exit(print_exit_status, NULL);
        error_setg(&local, "fatal one");
        error_propagate_prepend(&error_fatal, local, "ctx: ");
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("ctx: fatal one\nexit status 1\n");
    g_test_trap_assert_stderr(expected);
}

static void test_copy(void)
{
    Error *err = NULL;
    Error *copy;
    g_autofree char *expected = NULL;

    error_setg(&err, "original");
    copy = error_copy(err);
    g_assert_true(copy != err);
    error_free(err);
    /* The copy owns its text. */
    g_assert_cmpstr(error_get_pretty(copy), ==, "original");
    g_assert_cmpint(error_get_class(copy), ==, ERROR_CLASS_GENERIC_ERROR);
    error_free(copy);

    if (g_test_subprocess()) {
        /* The copy keeps the source location. */
        err = NULL;
        set_boom(&err);
        copy = error_copy(err);
        error_free(err);
        error_propagate(&error_abort, copy);
        return;
    }
    set_boom(NULL);
    run_subprocess();
    g_test_trap_assert_failed();
    expected = g_strdup_printf("Unexpected error in set_boom() at %s:%d:\n*",
                               __FILE__, boom_line);
    g_test_trap_assert_stderr(expected);
}

static void test_free(void)
{
    Error *err = NULL;

    error_free(NULL);
    error_setg(&err, "x");
    error_free_or_abort(&err);
    g_assert_null(err);

    {
        g_autoptr(Error) auto_err = NULL;

        error_setg(&auto_err, "freed by g_autoptr");
    }
}

static void test_free_or_abort_without_error(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        Error *err = NULL;

        error_free_or_abort(&err);
        return;
    }
    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("error_free_or_abort: expected an error in *errp, "
                           "found none\n");
    g_test_trap_assert_stderr(expected);
}

static void test_report_err(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        Error *err = NULL;

        error_report_err(NULL);
        warn_report_err(NULL);
        error_setg(&err, "e1");
        error_report_err(err);
        err = NULL;
        error_setg(&err, "w1");
        warn_report_err(err);
        err = NULL;
        error_setg(&err, "e2");
        error_reportf_err(err, "ctx %d: ", 5);
        err = NULL;
        error_setg(&err, "w2");
        warn_reportf_err(err, "ctx %s: ", "w");
        return;
    }
    run_subprocess();
    g_test_trap_assert_passed();
    expected = g_strdup_printf("%1$s: e1\n%1$s: warning: w1\n"
                               "%1$s: ctx 5: e2\n%1$s: warning: ctx w: w2\n",
                               g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

/* Fails when @fail, the way a function deep in a call chain would. */
static bool inner(bool fail, Error **errp)
{
    if (fail) {
        error_setg(errp, "inner failed");
        return false;
    }
    return true;
}

/* Looks at *errp and adds a hint, which needs ERRP_GUARD. */
static bool guarded(bool fail, Error **errp)
{
    ERRP_GUARD();

    inner(fail, errp);
    if (*errp) {
        error_append_hint(errp, "guarded hint\n");
        return false;
    }
    return true;
}

static void test_errp_guard(void)
{
    Error *err = NULL;
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        on_exit(print_exit_status, NULL);
        /* error_fatal exits only when the guard hands the error over. */
        guarded(true, &error_fatal);
        return;
    }

    g_assert_true(guarded(false, &err));
    g_assert_null(err);
    g_assert_false(guarded(true, NULL));
    g_assert_false(guarded(true, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "inner failed");
    error_free(err);

    run_subprocess();
    g_test_trap_assert_failed();
    expected = expect_line("inner failed\nguarded hint\nexit status 1\n");
    g_test_trap_assert_stderr(expected);
}

static void test_report_format(void)
{
    g_autofree char *expected = NULL;

    if (g_test_subprocess()) {
        int i;

        errno = ENOTTY;
        error_report("e %d", 1);
        warn_report("w %s", "two");
        info_report("i");
        error_printf("raw %s\n", "text");
        g_assert_cmpint(errno, ==, ENOTTY);
        for (i = 0; i < 3; i++) {
            bool printed = error_report_once("once");

            g_assert_true(printed == (i == 0));
            printed = warn_report_once("wonce");
            g_assert_true(printed == (i == 0));
        }
        return;
    }
    run_subprocess();
    g_test_trap_assert_passed();
    expected = g_strdup_printf("%1$s: e 1\n%1$s: warning: w two\n"
                               "%1$s: info: i\nraw text\n"
                               "%1$s: once\n%1$s: warning: wonce\n",
                               g_get_prgname());
    g_test_trap_assert_stderr(expected);
}

static void test_report_no_prgname(void)
{
    if (g_test_subprocess()) {
        g_set_prgname(NULL);
        g_assert_null(g_get_prgname());
        error_report("bare");
        warn_report("bare");
        return;
    }
    run_subprocess();
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("bare\nwarning: bare\n");
}

#define REPORT_THREADS 4
#define REPORT_LINES 2000
/* Long enough that interleaved stdio-style writes would split lines. */
#define REPORT_PAD 300

static char report_pad[REPORT_PAD + 1];

static void *report_thread(void *opaque)
{
    int id = GPOINTER_TO_INT(opaque);
    int i;

    for (i = 0; i < REPORT_LINES; i++) {
        error_report("thread %d line %d %s", id, i, report_pad);
    }
    return NULL;
}

static void test_report_no_interleave(void)
{
    QemuThread threads[REPORT_THREADS];
    g_autofree char *path = NULL;
    g_autofree char *contents = NULL;
    char *line, *end;
    gsize len;
    bool seen[REPORT_THREADS][REPORT_LINES] = { { false } };
    int fd, saved_stderr, i, n;
    int prefix_len = strlen(g_get_prgname()) + 2;

    memset(report_pad, 'x', REPORT_PAD);
    fd = g_file_open_tmp("test-error-XXXXXX", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND);
    g_assert_cmpint(fd, >=, 0);

    saved_stderr = dup(STDERR_FILENO);
    g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);
    for (i = 0; i < REPORT_THREADS; i++) {
        qemu_thread_create(&threads[i], "reporter", report_thread,
                           GINT_TO_POINTER(i), QEMU_THREAD_JOINABLE);
    }
    for (i = 0; i < REPORT_THREADS; i++) {
        qemu_thread_join(&threads[i]);
    }
    g_assert_cmpint(dup2(saved_stderr, STDERR_FILENO), ==, STDERR_FILENO);
    close(saved_stderr);
    close(fd);

    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    unlink(path);
    /*
     * Every line whole and each exactly once.  Walk the text by hand: the
     * sanitizers make g_strsplit quadratic on a text this long.
     */
    line = contents;
    end = contents + len;
    for (n = 0; line < end; n++) {
        char *newline = memchr(line, '\n', end - line);
        int id, num, consumed = 0;

        g_assert_nonnull(newline);
        *newline = '\0';
        g_assert_true(g_str_has_prefix(line, g_get_prgname()));
        g_assert_true(strncmp(line + prefix_len - 2, ": ", 2) == 0);
        g_assert_cmpint(sscanf(line + prefix_len, "thread %d line %d %n",
                               &id, &num, &consumed), ==, 2);
        g_assert_cmpint(id, >=, 0);
        g_assert_cmpint(id, <, REPORT_THREADS);
        g_assert_cmpint(num, >=, 0);
        g_assert_cmpint(num, <, REPORT_LINES);
        g_assert_cmpstr(line + prefix_len + consumed, ==, report_pad);
        g_assert_false(seen[id][num]);
        seen[id][num] = true;
        line = newline + 1;
    }
    g_assert_cmpint(n, ==, REPORT_THREADS * REPORT_LINES);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/error/setg/message", test_setg_message);
    g_test_add_func("/error/setg/null-errp-does-nothing", test_setg_null_errp);
    g_test_add_func("/error/setg/keeps-errno", test_setg_keeps_errno);
    g_test_add_func("/error/setg-errno/appends-strerror",
                    test_setg_errno_message);
    g_test_add_func("/error/setg/twice-aborts-naming-both",
                    test_set_twice_aborts);
    g_test_add_func("/error/abort/prints-location-and-aborts",
                    test_abort_destination);
    g_test_add_func("/error/fatal/prints-and-exits-1", test_fatal_destination);
    g_test_add_func("/error/warn/prints-warning-and-continues",
                    test_warn_destination);
    g_test_add_func("/error/prepend/chains", test_prepend);
    g_test_add_func("/error/hint/printed-after-message", test_hint);
    g_test_add_func("/error/hint/fatal-without-guard-aborts",
                    test_hint_needs_guard);
    g_test_add_func("/error/hint/without-error-aborts",
                    test_hint_needs_error);
    g_test_add_func("/error/propagate/ownership", test_propagate);
    g_test_add_func("/error/propagate/prepend", test_propagate_prepend);
    g_test_add_func("/error/propagate/abort-keeps-origin",
                    test_propagate_abort);
    g_test_add_func("/error/propagate/fatal-exits-1", test_propagate_fatal);
    g_test_add_func("/error/copy/independent", test_copy);
    g_test_add_func("/error/free/null-safe-and-autoptr", test_free);
    g_test_add_func("/error/free-or-abort/without-error-aborts",
                    test_free_or_abort_without_error);
    g_test_add_func("/error/report-err/formats", test_report_err);
    g_test_add_func("/error/errp-guard/local-and-fatal", test_errp_guard);
    g_test_add_func("/error-report/format", test_report_format);
    g_test_add_func("/error-report/no-prgname", test_report_no_prgname);
    g_test_add_func("/error-report/threads-do-not-interleave",
                    test_report_no_interleave);
    return g_test_run();
}
