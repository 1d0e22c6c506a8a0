/*
 * core: errors, logging, bounded buffers and limits shared by every module.
 *
 * Nothing here knows about MCP. Every other module may include this header;
 * it includes only libc and core/limits.h.
 *
 *   enum clampd_err   negative error codes, text from clampd_strerror()
 *   clog_*()          leveled logging, always to stderr (stdout is the protocol)
 *   struct dbuf       growable byte buffer with a hard maximum set at init
 */
#ifndef CLAMPD_CORE_H
#define CLAMPD_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

#define CLAMPD_VERSION "0.1.0"

enum clampd_err {
    ERR_OK = 0,
    ERR_NOMEM = -1,     /* allocation failed */
    ERR_TOO_BIG = -2,   /* a configured maximum was reached */
    ERR_AGAIN = -3,     /* incremental parser: need more input */
    ERR_PARSE = -4,     /* input is not well-formed */
    ERR_INVAL = -5,     /* argument or value out of range */
    ERR_IO = -6,        /* read, write or spawn failed */
    ERR_NOT_FOUND = -7, /* no such item */
    ERR_DB = -8,        /* SQLite error */
    ERR_CRYPTO = -9,    /* libsodium error */
    ERR_STATE = -10,    /* operation not valid in the current state */
    ERR__COUNT = 11
};

/* Returns a static, human-readable text for an enum clampd_err (or "unknown error"). */
const char *clampd_strerror(int err);

/* ---- logging ------------------------------------------------------------ */

enum clog_level { CLOG_ERROR = 0, CLOG_WARN = 1, CLOG_INFO = 2, CLOG_DEBUG = 3 };

/* Sets the most verbose level printed (default CLOG_WARN). */
void clog_set_level(enum clog_level lvl);
enum clog_level clog_get_level(void);
bool clog_enabled(enum clog_level lvl);

/* Prints one line "clampd: <level>: <text>" to stderr. Never writes to stdout. */
void clog_msg(enum clog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void clog_v(enum clog_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define clog_error(...) clog_msg(CLOG_ERROR, __VA_ARGS__)
#define clog_warn(...) clog_msg(CLOG_WARN, __VA_ARGS__)
#define clog_info(...) clog_msg(CLOG_INFO, __VA_ARGS__)
#define clog_debug(...)                                                                            \
    do {                                                                                           \
        if (clog_enabled(CLOG_DEBUG))                                                              \
            clog_msg(CLOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* ---- bounded growable buffer (after curl's dynbuf) ----------------------- */

struct dbuf {
    char *ptr;  /* NUL-terminated when non-NULL */
    size_t len; /* bytes in use, excluding the terminating NUL */
    size_t cap; /* allocated bytes */
    size_t max; /* hard maximum for len; adding past it fails with ERR_TOO_BIG */
};

/* Initialises an empty buffer that may hold at most max bytes. Allocates nothing. */
void dbuf_init(struct dbuf *b, size_t max);
/* Frees the storage and resets to empty; max is kept. */
void dbuf_free(struct dbuf *b);
/* Empties the buffer, keeping its storage. */
void dbuf_reset(struct dbuf *b);
/* Appends len bytes. Returns 0, ERR_TOO_BIG (buffer unchanged) or ERR_NOMEM. */
int dbuf_add(struct dbuf *b, const void *mem, size_t len);
int dbuf_adds(struct dbuf *b, const char *s);
int dbuf_addc(struct dbuf *b, char c);
int dbuf_printf(struct dbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for at least extra more bytes without changing len. */
int dbuf_reserve(struct dbuf *b, size_t extra);
/* Removes the first n bytes (n <= len), moving the rest to the front. */
void dbuf_consume(struct dbuf *b, size_t n);
/* Hands the storage to the caller (who frees it with free()); the buffer is left empty. */
char *dbuf_take(struct dbuf *b, size_t *len);

/* ---- small helpers ------------------------------------------------------ */

/* Parses a whole decimal string into [min, max]. Returns 0 or ERR_INVAL. */
int clampd_parse_long(const char *s, long min, long max, long *out);
/* Fills out with 2*n lowercase hex digits of n random bytes from libsodium's CSPRNG.
 * out must hold 2*n+1 bytes. Returns 0 or ERR_INVAL (n too large). */
int clampd_random_hex(char *out, size_t n);
/* Overwrites n bytes at p with zeros in a way the compiler keeps (secrets, keys). */
void clampd_wipe(void *p, size_t n);
/* Value of the hex digit c (0..15), or -1 when c is not one. */
int clampd_hexval(int c);

/* Decodes the UTF-8 sequence at p (p < end) into *cp. Returns its length (1..4), or 0 when
 * it is not well-formed UTF-8 (overlong, surrogate, above U+10FFFF, truncated). */
size_t clampd_utf8_next(const unsigned char *p, const unsigned char *end, unsigned *cp);

/* Monotonic time in nanoseconds. */
uint64_t clampd_now_ns(void);

/* Writes all n bytes of p to fd, retrying on EINTR and short writes. Returns 0, or -1 with
 * errno set. */
int clampd_write_all(int fd, const char *p, size_t n);
/* Wall-clock time in milliseconds since the epoch. */
int64_t clampd_wall_ms(void);

/* ---- command-line splitting (words.c) ------------------------------------ */

/* Splits line into words as a POSIX shell splits them, running no shell: blanks separate
 * words, single quotes, double quotes and backslashes quote as in sh, and nothing is
 * expanded ($VAR, globs, ~ and operators like | ; > stay literal). On success *argv_out
 * is a malloc'd NULL-terminated vector of *argc_out >= 1 words, freed with
 * clampd_free_words(). Fails with ERR_PARSE (unterminated quote, trailing backslash),
 * ERR_INVAL (no words), ERR_TOO_BIG (more than CLAMPD_MAX_ARGV words) or ERR_NOMEM; then
 * *argv_out is NULL and, if errmsg is not NULL, *errmsg is a malloc'd message naming the
 * column (or NULL if even that allocation failed), which the caller frees. */
int clampd_split_words(const char *line, char ***argv_out, size_t *argc_out, char **errmsg);
/* Frees a vector from clampd_split_words(); NULL is a no-op. */
void clampd_free_words(char **argv);

#endif
