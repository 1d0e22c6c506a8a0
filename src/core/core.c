/*
 * core: error texts, stderr logging, bounded buffers, small parsing helpers.
 */
#include "core/core.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static const char *const err_text[ERR__COUNT] = {
    "success",         "out of memory",       "size limit exceeded", "more input needed",
    "malformed input", "invalid argument",    "input/output error",  "not found",
    "database error",  "cryptographic error", "invalid state",
};

const char *clampd_strerror(int err)
{
    if (err > 0 || -err >= ERR__COUNT)
        return "unknown error";
    return err_text[-err];
}

/* ---- logging ---- */

static enum clog_level log_level = CLOG_WARN;
static const char *const level_name[] = {"error", "warning", "info", "debug"};

void clog_set_level(enum clog_level lvl)
{
    log_level = lvl;
}
enum clog_level clog_get_level(void)
{
    return log_level;
}
bool clog_enabled(enum clog_level lvl)
{
    return lvl <= log_level;
}

void clog_v(enum clog_level lvl, const char *fmt, va_list ap)
{
    char line[2048];
    int n;

    if (!clog_enabled(lvl))
        return;
    n = snprintf(line, sizeof(line), "clampd: %s: ", level_name[lvl]);
    if (n < 0)
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    /* One fputs per line so lines from clampd stay whole on a shared stderr. */
    size_t len = strlen(line);
    if (len + 1 < sizeof(line)) {
        line[len] = '\n';
        line[len + 1] = '\0';
    } else {
        line[sizeof(line) - 2] = '\n';
    }
    fputs(line, stderr);
}

void clog_msg(enum clog_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    clog_v(lvl, fmt, ap);
    va_end(ap);
}

/* ---- dbuf ---- */

void dbuf_init(struct dbuf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void dbuf_free(struct dbuf *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

void dbuf_reset(struct dbuf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

int dbuf_reserve(struct dbuf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > b->max - b->len)
        return ERR_TOO_BIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    /* Doubling keeps appends amortised linear: a 50 MB line arriving in 64 KB chunks
     * is copied O(log n) times, never once per chunk. */
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->ptr, cap);
    if (!p)
        return ERR_NOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int dbuf_add(struct dbuf *b, const void *mem, size_t len)
{
    int rc = dbuf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->ptr + b->len, mem, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int dbuf_adds(struct dbuf *b, const char *s)
{
    return dbuf_add(b, s, strlen(s));
}

int dbuf_addc(struct dbuf *b, char c)
{
    return dbuf_add(b, &c, 1);
}

int dbuf_printf(struct dbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INVAL;
    rc = dbuf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void dbuf_consume(struct dbuf *b, size_t n)
{
    if (n >= b->len) {
        dbuf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *dbuf_take(struct dbuf *b, size_t *len)
{
    char *p = b->ptr;
    if (len)
        *len = b->len;
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

/* ---- helpers ---- */

int clampd_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return ERR_INVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return ERR_INVAL;
    *out = v;
    return 0;
}

void clampd_wipe(void *p, size_t n)
{
    sodium_memzero(p, n);
}

int clampd_random_hex(char *out, size_t n)
{
    unsigned char raw[64];

    if (n > sizeof(raw))
        return ERR_INVAL;
    randombytes_buf(raw, n);
    sodium_bin2hex(out, 2 * n + 1, raw, n);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

uint64_t clampd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t clampd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t clampd_utf8_next(const unsigned char *p, const unsigned char *end, unsigned *cp)
{
    unsigned c = p[0], v, min;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

int clampd_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int clampd_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
