/*
 * json: canonical JSON encoder and the SHA-256 hashes built on it (DESIGN.md §3).
 *
 *   cjson_canonical ─▶ canon_value ─┬─ canon_object (keys sorted) ─┐
 *                        ▲          ├─ canon_array                 │
 *                        └──────────┴─ canon_string / canon_number ◀┘
 *
 * The output follows RFC 8785 (JCS) where it matters for hashing: sorted keys, no
 * whitespace, minimal string escaping, ECMAScript number text. Two clampd builds, or
 * clampd and another JCS implementation, must produce the same bytes for the same
 * JSON value, or every contract hash mismatches and every tool call is denied. The one
 * intended difference from RFC 8785, code point rather than UTF-16 key order, is
 * described in json.h.
 */
#include "json/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Doubles need at most 17 significant digits to round-trip (IEEE 754 binary64). */
#define CANON_MAX_DIGITS 17
/* Integers of magnitude up to 2^53 are exact in a double, so ECMAScript prints them as
 * the integer itself; beyond that we must print what a double would hold. */
#define CANON_EXACT_INT 9007199254740992LL

struct canon_member {
    const char *key;
    size_t len;
    json_t *val;
};

static int canon_value(const json_t *v, struct dbuf *out, int depth);

/* ---- strings ---- */

/* Writes the escape sequence for byte c (a quote, a backslash or a control character)
 * into esc and returns its length. The short forms and lowercase \u00xx are the choice
 * RFC 8785 makes too, so our output matches other JCS implementations byte for byte. */
static size_t canon_escape(unsigned char c, char esc[7])
{
    static const char hex[] = "0123456789abcdef";
    static const char plain[] = "\"\\\b\f\n\r\t";
    static const char short_form[] = "\"\\bfnrt";
    const char *hit = memchr(plain, c, sizeof(plain) - 1);

    esc[0] = '\\';
    if (hit) {
        esc[1] = short_form[hit - plain];
        return 2;
    }
    memcpy(esc + 1, "u00", 3);
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 15];
    return 6;
}

/* Emits s[0..len) as a JSON string. Only '"', '\\' and U+0000..U+001F are escaped;
 * everything else, DEL, '/', U+2028 and all non-ASCII included, is copied raw, which
 * keeps the text UTF-8 exactly as jansson validated it. len, not strlen: a string
 * decoded with JSON_ALLOW_NUL may hold NUL bytes, which must reach the hash as \u0000
 * rather than cut the string short (two different strings must never hash alike). */
static int canon_string(const char *s, size_t len, struct dbuf *out)
{
    char esc[7];
    size_t i, run = 0;
    int rc = dbuf_addc(out, '"');

    for (i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = dbuf_add(out, s + run, i - run);
        if (rc == 0)
            rc = dbuf_add(out, esc, canon_escape(c, esc));
        run = i + 1;
    }
    if (rc == 0)
        rc = dbuf_add(out, s + run, len - run);
    if (rc == 0)
        rc = dbuf_addc(out, '"');
    return rc;
}

/* ---- numbers ---- */

/* Splits d (finite, > 0) into its shortest round-trip decimal significand and exponent:
 * d == 0.DIGITS × 10^n. The first precision whose correctly rounded "%.*e" text reads
 * back as d is the least number of digits ECMAScript's Number::toString may use, and
 * correct rounding makes it the closest such candidate, as the standard requires.
 * Returns the number of digits written to digits (NUL-terminated), or ERR_INVAL. */
static int canon_shortest(double d, char digits[CANON_MAX_DIGITS + 1], int *n)
{
    char text[40];
    int prec, k = 0;
    const char *p;
    long e;
    char *end;

    for (prec = 0; prec < CANON_MAX_DIGITS; prec++) {
        snprintf(text, sizeof(text), "%.*e", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    /* text is "D[.DDD]e±XX"; collect the digits, then the exponent. */
    for (p = text; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && k < CANON_MAX_DIGITS)
            digits[k++] = *p;
    if (*p != 'e' || k == 0)
        return ERR_INVAL;
    e = strtol(p + 1, &end, 10);
    if (*end || e < -400 || e > 400)
        return ERR_INVAL;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *n = (int)e + 1;
    return k;
}

/* Lays out k significant digits with decimal point position n the way ECMAScript's
 * Number::toString does (ECMA-262 §6.1.6.1.20, steps 6 to 10). */
static int canon_layout(const char *s, int k, int n, struct dbuf *out)
{
    static const char zeros[] = "000000000000000000000"; /* 21: the widest plain form */
    int rc, e;

    if (k <= n && n <= 21) {
        rc = dbuf_add(out, s, (size_t)k);
        return rc ? rc : dbuf_add(out, zeros, (size_t)(n - k));
    }
    if (0 < n && n <= 21) {
        rc = dbuf_add(out, s, (size_t)n);
        rc = rc ? rc : dbuf_addc(out, '.');
        return rc ? rc : dbuf_add(out, s + n, (size_t)(k - n));
    }
    if (-6 < n && n <= 0) {
        rc = dbuf_add(out, "0.", 2);
        rc = rc ? rc : dbuf_add(out, zeros, (size_t)-n);
        return rc ? rc : dbuf_add(out, s, (size_t)k);
    }
    e = n - 1;
    rc = dbuf_addc(out, s[0]);
    if (rc == 0 && k > 1) {
        rc = dbuf_addc(out, '.');
        rc = rc ? rc : dbuf_add(out, s + 1, (size_t)(k - 1));
    }
    return rc ? rc : dbuf_printf(out, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* Emits a double as RFC 8785 does. NaN and infinities have no JSON form: ERR_INVAL
 * (jansson refuses to build them, but a caller's value must not be trusted to be
 * jansson's). Both zeros print "0", as ECMAScript prints -0. */
static int canon_double(double d, struct dbuf *out)
{
    char digits[CANON_MAX_DIGITS + 1];
    int k, n = 0, rc = 0;

    if (!isfinite(d))
        return ERR_INVAL;
    if (d == 0)
        return dbuf_addc(out, '0');
    if (d < 0) {
        rc = dbuf_addc(out, '-');
        d = -d;
    }
    if (rc)
        return rc;
    k = canon_shortest(d, digits, &n);
    if (k < 0)
        return k;
    return canon_layout(digits, k, n, out);
}

/* jansson keeps integers as int64. A JCS reader holds every number as a double, so an
 * integer beyond 2^53 hashes as the double it rounds to (9007199254740993 prints as
 * 9007199254740992, 2^63-1 as 9223372036854776000), exactly as node would print it. */
static int canon_integer(json_int_t i, struct dbuf *out)
{
    if (i >= -CANON_EXACT_INT && i <= CANON_EXACT_INT)
        return dbuf_printf(out, "%" JSON_INTEGER_FORMAT, i);
    return canon_double((double)i, out);
}

/* ---- containers ---- */

/* Orders keys by Unicode code point. The keys are UTF-8, and UTF-8 was designed so that
 * unsigned byte-wise comparison gives code point order; memcmp compares unsigned bytes.
 * A key that is a prefix of another sorts first ("a" < "ab" < "b"). Keys are unique in
 * a jansson object, so the order is total and qsort's instability cannot show. */
static int canon_member_cmp(const void *a, const void *b)
{
    const struct canon_member *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);

    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Collects obj's members into a malloc'd array sorted by key; *count gets their number.
 * jansson's iterators take a non-const object although they do not modify it. */
static int canon_sorted_members(const json_t *obj, struct canon_member **members, size_t *count)
{
    json_t *o = (json_t *)obj;
    size_t n = json_object_size(o), i = 0;
    struct canon_member *m;
    void *it;

    /* SECURITY: the array is bounded by the object's own size, which the parser bounded
     * by the message size; calloc checks the multiplication. */
    m = calloc(n, sizeof(*m));
    if (!m)
        return ERR_NOMEM;
    for (it = json_object_iter(o); it && i < n; it = json_object_iter_next(o, it)) {
        m[i].key = json_object_iter_key(it);
        m[i].len = json_object_iter_key_len(it);
        m[i].val = json_object_iter_value(it);
        i++;
    }
    qsort(m, i, sizeof(*m), canon_member_cmp);
    *members = m;
    *count = i;
    return 0;
}

static int canon_object(const json_t *obj, struct dbuf *out, int depth)
{
    struct canon_member *m = NULL;
    size_t n = 0, i;
    int rc;

    if (json_object_size(obj) == 0)
        return dbuf_add(out, "{}", 2);
    rc = canon_sorted_members(obj, &m, &n);
    if (rc)
        goto out;
    rc = dbuf_addc(out, '{');
    for (i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = dbuf_addc(out, ',');
        if (rc == 0)
            rc = canon_string(m[i].key, m[i].len, out);
        if (rc == 0)
            rc = dbuf_addc(out, ':');
        if (rc == 0)
            rc = canon_value(m[i].val, out, depth);
    }
    if (rc == 0)
        rc = dbuf_addc(out, '}');
out:
    free(m);
    return rc;
}

static int canon_array(const json_t *arr, struct dbuf *out, int depth)
{
    size_t i, n = json_array_size(arr);
    int rc = dbuf_addc(out, '[');

    for (i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = dbuf_addc(out, ',');
        if (rc == 0)
            rc = canon_value(json_array_get(arr, i), out, depth);
    }
    if (rc == 0)
        rc = dbuf_addc(out, ']');
    return rc;
}

/* depth is the number of arrays and objects that enclose v. */
static int canon_value(const json_t *v, struct dbuf *out, int depth)
{
    if (!v)
        return ERR_INVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        /* SECURITY: bounds the recursion, hence the stack, whatever built the value; it
         * also ends the walk of a value with a reference cycle, which jansson allows. */
        if (depth >= CLAMPD_MAX_JSON_DEPTH)
            return ERR_INVAL;
        if (json_is_object(v))
            return canon_object(v, out, depth + 1);
        return canon_array(v, out, depth + 1);
    case JSON_STRING: return canon_string(json_string_value(v), json_string_length(v), out);
    case JSON_INTEGER: return canon_integer(json_integer_value(v), out);
    case JSON_REAL: return canon_double(json_real_value(v), out);
    case JSON_TRUE: return dbuf_add(out, "true", 4);
    case JSON_FALSE: return dbuf_add(out, "false", 5);
    case JSON_NULL: return dbuf_add(out, "null", 4);
    }
    return ERR_INVAL;
}

int cjson_canonical(const json_t *v, struct dbuf *out)
{
    return canon_value(v, out, 0);
}

/* ---- hashes ---- */

void cjson_sha256_hex(const void *data, size_t len, char hex[CJSON_HEX_LEN + 1])
{
    unsigned char md[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(md, data, len);
    sodium_bin2hex(hex, CJSON_HEX_LEN + 1, md, sizeof(md));
}

/* One member of the fixed wrapper objects that get hashed: a string (str) or a JSON value
 * (val, replaced by the text dflt when it is absent or JSON null). */
struct canon_field {
    const char *key;
    const char *str;
    const json_t *val;
    const char *dflt;
};

static int canon_field(const struct canon_field *f, struct dbuf *out)
{
    int rc = canon_string(f->key, strlen(f->key), out);

    if (rc == 0)
        rc = dbuf_addc(out, ':');
    if (rc)
        return rc;
    if (f->str)
        return canon_string(f->str, strlen(f->str), out);
    if (!f->val || json_is_null(f->val))
        return dbuf_adds(out, f->dflt);
    /* The value sits one level inside the wrapper: depth 1, so limits apply exactly as
     * if the caller had built the wrapper with jansson and passed it to cjson_canonical. */
    return canon_value(f->val, out, 1);
}

/* Writes {f[0],f[1],...} canonically and hashes it. The wrapper is written directly rather
 * than built as a jansson object: its keys are fixed and the callers list them already in
 * code point order, so there is nothing to sort and nothing to allocate for it. */
static int canon_hash_fields(const struct canon_field *f, size_t n, char hex[CJSON_HEX_LEN + 1])
{
    struct dbuf b;
    size_t i;
    int rc;

    dbuf_init(&b, CLAMPD_MAX_CANONICAL);
    hex[0] = '\0';
    rc = dbuf_addc(&b, '{');
    for (i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = dbuf_addc(&b, ',');
        if (rc == 0)
            rc = canon_field(&f[i], &b);
    }
    if (rc == 0)
        rc = dbuf_addc(&b, '}');
    if (rc)
        goto out;
    cjson_sha256_hex(b.ptr, b.len, hex);
out:
    dbuf_free(&b);
    return rc;
}

int cjson_contract_hash(const char *name, const json_t *description, const json_t *input_schema,
                        char hex[CJSON_HEX_LEN + 1])
{
    const struct canon_field f[] = {
        {"description", NULL, description, "\"\""},
        {"name", name, NULL, NULL},
        {"parameters", NULL, input_schema, "{}"},
    };

    if (!name) {
        hex[0] = '\0';
        return ERR_INVAL;
    }
    return canon_hash_fields(f, sizeof(f) / sizeof(f[0]), hex);
}

int cjson_call_binding(const char *tool, const json_t *arguments, char hex[CJSON_HEX_LEN + 1])
{
    const struct canon_field f[] = {
        {"params", NULL, arguments, "{}"},
        {"tool", tool, NULL, NULL},
    };

    if (!tool) {
        hex[0] = '\0';
        return ERR_INVAL;
    }
    return canon_hash_fields(f, sizeof(f) / sizeof(f[0]), hex);
}
