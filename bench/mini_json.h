/*
 * mini_json.h: just enough JSON scanning for the bench fixtures (echo_server.c, latency.c).
 *
 * Not a validator and not for untrusted input: it finds members of an object and skips
 * values, handing back raw (pointer, length) slices into the caller's buffer, and never
 * allocates. Strings are skipped with memchr so that a 1 MiB text argument costs the
 * fixtures as little as possible: the bench is meant to time the proxy, not these helpers.
 * Keys are compared byte for byte (no unescaping), which is all the fixtures need.
 */
#ifndef BENCH_MINI_JSON_H
#define BENCH_MINI_JSON_H

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MJ_MAX_DEPTH 64

struct mj_slice {
    const char *p;
    size_t len;
};

static inline const char *mj_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote; returns just past the closing quote, or NULL. */
static inline const char *mj_skip_string(const char *p, const char *e)
{
    const char *q = p + 1;

    while (q < e) {
        const char *b;

        q = memchr(q, '"', (size_t)(e - q));
        if (!q)
            return NULL;
        /* An odd run of backslashes before the quote escapes it. */
        for (b = q; b > p + 1 && b[-1] == '\\'; b--)
            ;
        if (((q - b) & 1) == 0)
            return q + 1;
        q++;
    }
    return NULL;
}

static inline const char *mj_skip_value(const char *p, const char *e, int depth);

/* p just past '{' or '['; returns just past the matching close, or NULL. */
static inline const char *mj_skip_container(const char *p, const char *e, bool obj, int depth)
{
    char close = obj ? '}' : ']';

    p = mj_ws(p, e);
    if (p < e && *p == close)
        return p + 1;
    for (;;) {
        if (obj) {
            if (p >= e || *p != '"' || !(p = mj_skip_string(p, e)))
                return NULL;
            p = mj_ws(p, e);
            if (p >= e || *p != ':')
                return NULL;
            p++;
        }
        p = mj_skip_value(p, e, depth + 1);
        if (!p)
            return NULL;
        p = mj_ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p = mj_ws(p + 1, e);
    }
}

/* Skips one value (after leading whitespace); returns just past it, or NULL. */
static inline const char *mj_skip_value(const char *p, const char *e, int depth)
{
    const char *s;

    p = mj_ws(p, e);
    if (p >= e || depth > MJ_MAX_DEPTH)
        return NULL;
    if (*p == '"')
        return mj_skip_string(p, e);
    if (*p == '{' || *p == '[')
        return mj_skip_container(p + 1, e, *p == '{', depth);
    for (s = p; p < e && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.'); p++)
        ;
    return p > s ? p : NULL;
}

/* Finds member `key` of the object that `obj` starts with; *out is its raw value. */
static inline bool mj_get(struct mj_slice obj, const char *key, struct mj_slice *out)
{
    const char *e = obj.p + obj.len, *p = mj_ws(obj.p, e);
    size_t klen = strlen(key);

    if (p >= e || *p != '{')
        return false;
    p = mj_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *k = p + 1, *v;
        bool hit;

        p = mj_skip_string(p, e);
        if (!p)
            return false;
        hit = (size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0;
        p = mj_ws(p, e);
        if (p >= e || *p != ':')
            return false;
        v = mj_ws(p + 1, e);
        p = mj_skip_value(v, e, 1);
        if (!p)
            return false;
        if (hit) {
            out->p = v;
            out->len = (size_t)(p - v);
            return true;
        }
        p = mj_ws(p, e);
        if (p >= e || *p != ',')
            return false;
        p = mj_ws(p + 1, e);
    }
    return false;
}

/* First element of the array that `arr` starts with. */
static inline bool mj_first(struct mj_slice arr, struct mj_slice *out)
{
    const char *e = arr.p + arr.len, *p = mj_ws(arr.p, e), *v;

    if (p >= e || *p != '[')
        return false;
    v = mj_ws(p + 1, e);
    p = mj_skip_value(v, e, 1);
    if (!p)
        return false;
    out->p = v;
    out->len = (size_t)(p - v);
    return true;
}

static inline bool mj_eq(struct mj_slice s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.p, lit, n) == 0;
}

#endif
