/*
 * A tiny test harness for the C tests of the virtpki C API (one binary per topic).
 *
 * CHECK* macros count and report; check_done() prints "N passed, N failed" alone on a line
 * and returns the exit status. The counters are atomic so that threads may check too.
 * Include this first: it selects the POSIX interfaces the tests use.
 */
#ifndef FFI_TESTS_CHECK_H
#define FFI_TESTS_CHECK_H

#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtpki.h"

/* 2026-06-01T00:00:00Z: the instant the fixtures' validity periods are built around
   (tools/src/bin/make_fixtures.rs, tools/src/kit.rs now()). Every context verifies at it. */
#define FIXTURE_NOW 1780272000LL

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must name the directory tools/src/bin/make_fixtures.rs wrote"
#endif

static atomic_int check_passed;
static atomic_int check_failed;

static inline void check_report(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        atomic_fetch_add(&check_passed, 1);
    } else {
        atomic_fetch_add(&check_failed, 1);
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
    }
}

#define CHECK(cond) check_report((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

#define CHECK_INT(actual, expected) \
    do { \
        long long a_ = (actual), e_ = (expected); \
        check_report(a_ == e_, #actual " == " #expected, __FILE__, __LINE__); \
        if (a_ != e_) \
            fprintf(stderr, "    got %lld, expected %lld\n", a_, e_); \
    } while (0)

#define CHECK_STR(actual, expected) \
    do { \
        const char *a_ = (actual), *e_ = (expected); \
        int ok_ = a_ != NULL && e_ != NULL && strcmp(a_, e_) == 0; \
        check_report(ok_, #actual " equals " #expected, __FILE__, __LINE__); \
        if (!ok_) \
            fprintf(stderr, "    got \"%s\", expected \"%s\"\n", a_ ? a_ : "(null)", \
                    e_ ? e_ : "(null)"); \
    } while (0)

/* The text contains the needle (NULL text fails). */
#define CHECK_CONTAINS(text, needle) \
    do { \
        const char *t_ = (text), *n_ = (needle); \
        int ok_ = t_ != NULL && strstr(t_, n_) != NULL; \
        check_report(ok_, #text " contains " #needle, __FILE__, __LINE__); \
        if (!ok_) \
            fprintf(stderr, "    \"%s\" does not contain \"%s\"\n", t_ ? t_ : "(null)", n_); \
    } while (0)

/* This thread's last error is `code`, with a message. */
#define CHECK_ERROR(code) check_error_at((code), __FILE__, __LINE__)

static inline void check_error_at(int code, const char *file, int line)
{
    int got = virPKIGetLastErrorCode();
    const char *msg = virPKIGetLastErrorMessage();
    int ok = got == code && msg != NULL && msg[0] != '\0';
    check_report(ok, "last error", file, line);
    if (!ok)
        fprintf(stderr, "    got code %d (\"%s\"), expected %d\n", got, msg ? msg : "(null)",
                code);
}

/* An int-returning call fails with -1 and `code`. The last error is reset first, so the
   code seen is this call's. */
#define CHECK_FAILS(call, code) \
    do { \
        virPKIResetLastError(); \
        int r_ = (call); \
        check_report(r_ == -1, #call " returns -1", __FILE__, __LINE__); \
        check_error_at((code), __FILE__, __LINE__); \
    } while (0)

/* A call returning a string fails with NULL and `code` (a string returned anyway is freed). */
#define CHECK_NULL_STR(call, code) \
    do { \
        virPKIResetLastError(); \
        char *s_ = (call); \
        check_report(s_ == NULL, #call " returns NULL", __FILE__, __LINE__); \
        virPKIFree(s_); \
        check_error_at((code), __FILE__, __LINE__); \
    } while (0)

/* A call succeeds with 0; on failure the library's reason is shown. */
#define CHECK_OK(call) \
    do { \
        int r_ = (call); \
        check_report(r_ == 0, #call " returns 0", __FILE__, __LINE__); \
        if (r_ != 0) \
            fprintf(stderr, "    returned %d: code %d, %s\n", r_, virPKIGetLastErrorCode(), \
                    virPKIGetLastErrorMessage() ? virPKIGetLastErrorMessage() : "(null)"); \
    } while (0)

/* Ends the binary: the summary line, and the exit status. */
static inline int check_done(void)
{
    int failed = atomic_load(&check_failed);
    printf("%d passed, %d failed\n", atomic_load(&check_passed), failed);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Stops the process if it runs longer than `seconds`: a hang is a failure, not a stuck CI. */
static inline void check_watchdog(unsigned seconds)
{
    alarm(seconds);
}

static inline void die(const char *what)
{
    fprintf(stderr, "fatal: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* The path of a fixture file. Several results may be in use at once (a small ring of
   buffers); callers in threads must copy them. */
static inline const char *fixture(const char *name)
{
    static char ring[8][1024];
    static int next;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%s/%s", FIXTURE_DIR, name);
    return buf;
}

/* A file's contents as a NUL-terminated string (free with free()). */
static inline char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            if (!buf)
                die("realloc");
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static inline char *read_fixture(const char *name)
{
    return read_text(fixture(name));
}

/* Writes `text` to `path` with `mode`. */
static inline void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        die(path);
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len)
        die(path);
    if (fchmod(fd, mode) != 0)
        die(path);
    close(fd);
}

/* A fresh temporary directory (remove with remove_tree). */
static inline char *make_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    if (!path)
        die("malloc");
    snprintf(path, 4096, "%s/virtpki-ffi-XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(path))
        die("mkdtemp");
    return path;
}

static inline int remove_entry(const char *path, const struct stat *st, int type,
                               struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static inline void remove_tree(char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(path);
}

/* A string of `len` bytes of 'A' (free with free()). */
static inline char *big_string(size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        die("malloc");
    memset(s, 'A', len);
    s[len] = '\0';
    return s;
}

/* A new context verifying at FIXTURE_NOW, optionally with the fixture CA. */
static inline virPKIContextPtr new_context(unsigned int flags, int with_ca)
{
    virPKIContextPtr ctx = virPKIContextNew(flags);
    if (!ctx) {
        fprintf(stderr, "fatal: virPKIContextNew: %s\n", virPKIGetLastErrorMessage());
        exit(2);
    }
    if (virPKIContextSetVerifyTime(ctx, FIXTURE_NOW) != 0 ||
        (with_ca && virPKIContextAddCertDataFile(ctx, VIR_CONNECT_CERT_CA_CERT,
                                                 fixture("ca.pem")) != 0)) {
        fprintf(stderr, "fatal: context setup: %s\n", virPKIGetLastErrorMessage());
        exit(2);
    }
    return ctx;
}

#endif /* FFI_TESTS_CHECK_H */
