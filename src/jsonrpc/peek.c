/*
 * peek: validate one JSON text and pick out the top-level JSON-RPC members without
 * building a tree. A scanner over (pointer, end) that never allocates, in the manner of
 * h2o's picohttpparser: every step checks the end before reading.
 */
#include "jsonrpc/jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scan {
    const char *p;
    const char *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return ERR_PARSE;
    for (int i = 0; i < 4; i++) {
        int h = clampd_hexval(p[i]);
        if (h < 0)
            return ERR_PARSE;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Validates a string starting at the opening quote; on success s->p is past the closing
 * quote and *escaped says whether any backslash escape occurred. */
/* Skips plain bytes (printable ASCII other than '"' and '\\') eight at a time: base64
 * images and long texts are mostly such bytes. Classic SWAR tests: a byte is flagged when
 * it is below 0x20, equals '"' or '\\', or has its top bit set. */
static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    while (end - p >= 8) {
        uint64_t w, q, b, below, quote, bslash;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        below = (w - ones * 0x20) & ~w; /* some byte < 0x20 (exact as a yes/no) */
        quote = (q - ones) & ~q;        /* some byte == '"' */
        bslash = (b - ones) & ~b;       /* some byte == '\\' */
        if ((below | quote | bslash | w) & highs)
            break; /* the byte loop below finds which */
        p += 8;
    }
    return p;
}

static int scan_string(struct scan *s, bool *escaped)
{
    const unsigned char *p = (const unsigned char *)s->p + 1;
    const unsigned char *end = (const unsigned char *)s->end;

    *escaped = false;
    p = skip_plain(p, end);
    while (p < end) {
        unsigned c = *p;
        if (c == '"') {
            s->p = (const char *)p + 1;
            return 0;
        }
        if (c < 0x20)
            return ERR_PARSE;
        if (c == '\\') {
            unsigned u;
            *escaped = true;
            if (++p >= end)
                return ERR_PARSE;
            if (*p == 'u') {
                if (read_hex4((const char *)p + 1, (const char *)end, &u))
                    return ERR_PARSE;
                p += 5;
            } else if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else {
                return ERR_PARSE;
            }
            p = skip_plain(p, end);
        } else if (c < 0x80) {
            p++; /* a plain byte in the word that stopped skip_plain */
        } else {
            unsigned cp;
            size_t n = clampd_utf8_next(p, end, &cp);
            if (!n)
                return ERR_PARSE;
            p = skip_plain(p + n, end);
        }
    }
    return ERR_PARSE;
}

static bool is_digit(const struct scan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static int scan_number(struct scan *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (!is_digit(s))
        return ERR_PARSE;
    if (*s->p == '0')
        s->p++;
    else
        while (is_digit(s))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return ERR_PARSE;
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!is_digit(s))
            return ERR_PARSE;
        while (is_digit(s))
            s->p++;
    }
    return 0;
}

static int scan_literal(struct scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return ERR_PARSE;
    s->p += n;
    return 0;
}

static int scan_value(struct scan *s, int depth);

/* Scans '{...}' or '[...]' starting at the opening bracket. */
static int scan_container(struct scan *s, int depth)
{
    char close = *s->p == '{' ? '}' : ']';
    bool object = close == '}';
    bool escaped;

    if (depth >= CLAMPD_MAX_JSON_DEPTH)
        return ERR_PARSE;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (object) {
            skip_ws(s);
            if (s->p >= s->end || *s->p != '"' || scan_string(s, &escaped))
                return ERR_PARSE;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return ERR_PARSE;
            s->p++;
        }
        if (scan_value(s, depth + 1))
            return ERR_PARSE;
        skip_ws(s);
        if (s->p >= s->end)
            return ERR_PARSE;
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        if (*s->p != ',')
            return ERR_PARSE;
        s->p++;
    }
}

static int scan_value(struct scan *s, int depth)
{
    bool escaped;

    skip_ws(s);
    if (s->p >= s->end)
        return ERR_PARSE;
    switch (*s->p) {
    case '{':
    case '[': return scan_container(s, depth);
    case '"': return scan_string(s, &escaped);
    case 't': return scan_literal(s, "true");
    case 'f': return scan_literal(s, "false");
    case 'n': return scan_literal(s, "null");
    default: return scan_number(s);
    }
}

/* Appends the UTF-8 encoding of cp to out[*n] within cap; returns false when full. */
static bool put_utf8(char *out, size_t cap, size_t *n, unsigned cp)
{
    char tmp[4];
    size_t k;

    if (cp < 0x80) {
        tmp[0] = (char)cp, k = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xc0 | cp >> 6), tmp[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xe0 | cp >> 12), tmp[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        tmp[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
    } else {
        tmp[0] = (char)(0xf0 | cp >> 18), tmp[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        tmp[2] = (char)(0x80 | (cp >> 6 & 0x3f)), tmp[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    }
    if (*n + k >= cap)
        return false;
    memcpy(out + *n, tmp, k);
    *n += k;
    return true;
}

/* Decodes an already validated string token (with quotes) into out (NUL-terminated).
 * Returns the decoded length, or -1 if it does not fit in cap-1 bytes or holds a lone
 * surrogate: SECURITY: peers disagree on those (jansson refuses them, JavaScript keeps
 * them, others substitute U+FFFD), so such a name or key is never taken as any name. */
static long decode_string(const char *tok, size_t toklen, char *out, size_t cap)
{
    const char *p = tok + 1, *end = tok + toklen - 1;
    size_t n = 0;

    while (p < end) {
        unsigned cp;
        if (*p != '\\') {
            if (n + 1 >= cap)
                return -1;
            out[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (read_hex4(p + 1, end, &cp))
                return -1; /* not reached for validated input; never decode garbage */
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 7 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo;
                if (!read_hex4(p + 3, end, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                return -1;
            break;
        default: cp = (unsigned char)*p; break;
        }
        p++;
        if (!put_utf8(out, cap, &n, cp))
            return -1;
    }
    out[n] = '\0';
    return (long)n;
}

enum member { M_ID, M_METHOD, M_PARAMS, M_RESULT, M_ERROR, M_JSONRPC, M_OTHER };

/* Which member a key token (with quotes) names. An escaped key ("\u006dethod") is decoded
 * first: SECURITY: it is the same key to the peer, so it must be the same key to us. */
static enum member member_of(const char *key, size_t n, bool escaped)
{
    static const char *const names[] = {"id", "method", "params", "result", "error", "jsonrpc"};
    char buf[16];
    long len;

    if (escaped) {
        len = decode_string(key, n, buf, sizeof(buf));
        if (len < 0)
            return M_OTHER;
        key = buf;
    } else {
        key++;
        len = (long)n - 2;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((long)strlen(names[i]) == len && memcmp(names[i], key, (size_t)len) == 0)
            return (enum member)i;
    return M_OTHER;
}

/* Records one top-level member; false when the message must be treated as invalid. */
static bool note_member(struct jrpc_peek *out, unsigned *seen, enum member m, const char *v,
                        size_t vn)
{
    /* SECURITY: JSON-RPC 2.0 has no other top-level members. Some peers match keys without
     * regard to case ("Method", "ID"): any unknown key could be one of ours to them. */
    if (m == M_OTHER)
        return false;
    if (*seen & 1u << m)
        return false;
    *seen |= 1u << m;
    switch (m) {
    case M_ID:
        out->id.p = v, out->id.n = vn;
        out->id_is_null = vn == 4 && memcmp(v, "null", 4) == 0;
        return *v == '"' || *v == '-' || (*v >= '0' && *v <= '9') || out->id_is_null;
    case M_METHOD:
        if (*v != '"')
            return false;
        if (decode_string(v, vn, out->method, sizeof(out->method)) < 0) {
            out->method[0] = '\0';
            out->method_too_long = true;
        }
        return true;
    case M_PARAMS:
        out->has_params = true;
        out->params.p = v, out->params.n = vn;
        return true;
    case M_RESULT:
        out->has_result = true;
        out->result.p = v, out->result.n = vn;
        return true;
    case M_ERROR: out->has_error = true; return true;
    default: return true;
    }
}

static int scan_top_object(struct scan *s, struct jrpc_peek *out)
{
    unsigned seen = 0;
    bool valid = true;

    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *key, *val;
        bool key_escaped;
        enum member m;

        skip_ws(s);
        key = s->p;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, &key_escaped))
            return ERR_PARSE;
        m = member_of(key, (size_t)(s->p - key), key_escaped);
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return ERR_PARSE;
        s->p++;
        skip_ws(s);
        val = s->p;
        if (scan_value(s, 1))
            return ERR_PARSE;
        if (valid && !note_member(out, &seen, m, val, (size_t)(s->p - val)))
            valid = false;
        skip_ws(s);
        if (s->p >= s->end)
            return ERR_PARSE;
        if (*s->p == '}')
            break;
        if (*s->p != ',')
            return ERR_PARSE;
        s->p++;
    }
    s->p++;
    if (!valid)
        return 1;
    return 0;
}

static enum jrpc_kind classify(const struct jrpc_peek *out)
{
    bool has_method = out->method[0] || out->method_too_long;
    if (has_method && !out->has_result && !out->has_error)
        return out->id.p ? JRPC_REQUEST : JRPC_NOTIFICATION;
    if (!has_method && out->id.p && (out->has_result != out->has_error))
        return JRPC_RESPONSE;
    return JRPC_INVALID;
}

int jrpc_peek(const char *msg, size_t len, struct jrpc_peek *out)
{
    struct scan s = {msg, msg + len};
    int rc;

    memset(out, 0, sizeof(*out));
    skip_ws(&s);
    if (s.p >= s.end)
        return ERR_PARSE;
    if (*s.p == '{') {
        rc = scan_top_object(&s, out);
        if (rc < 0)
            return ERR_PARSE;
        out->kind = rc == 0 ? classify(out) : JRPC_INVALID;
    } else {
        /* SECURITY: a batch is classified element by element by the caller (full parse). */
        out->kind = *s.p == '[' ? JRPC_BATCH : JRPC_INVALID;
        if (scan_value(&s, 0))
            return ERR_PARSE;
    }
    skip_ws(&s);
    if (s.p != s.end)
        return ERR_PARSE;
    return 0;
}

int jrpc_id_key(struct jrpc_slice id, struct dbuf *out)
{
    dbuf_reset(out);
    if (!id.p || id.n == 0 || id.n > CLAMPD_MAX_ID_LEN)
        return id.n > CLAMPD_MAX_ID_LEN ? ERR_TOO_BIG : ERR_INVAL;
    if (*id.p == '"') {
        char tmp[CLAMPD_MAX_ID_LEN + 1];
        long n = decode_string(id.p, id.n, tmp, sizeof(tmp));
        if (n < 0)
            return ERR_TOO_BIG;
        if (dbuf_addc(out, 's'))
            return ERR_NOMEM;
        return dbuf_add(out, tmp, (size_t)n);
    }
    if (*id.p == '-' || (*id.p >= '0' && *id.p <= '9')) {
        char tmp[64];
        char num[CLAMPD_MAX_ID_LEN + 1];
        size_t digits = 0;

        /* Fast path for the usual ids: a JSON integer of up to 15 digits has no other
         * spelling with the same value except decimal or exponent forms, which take the
         * slow path and print the same digits ("%.17g" of such a double is the integer). */
        while (digits < id.n && id.p[digits] >= '0' && id.p[digits] <= '9')
            digits++;
        if (*id.p != '-' && digits == id.n && digits <= 15) {
            if (dbuf_addc(out, 'n'))
                return ERR_NOMEM;
            return dbuf_add(out, id.p, id.n);
        }
        memcpy(num, id.p, id.n);
        num[id.n] = '\0';
        snprintf(tmp, sizeof(tmp), "n%.17g", strtod(num, NULL));
        return dbuf_adds(out, tmp);
    }
    return ERR_INVAL;
}

/* Appends s as a JSON string literal (quotes included). */
static int emit_json_string(struct dbuf *out, const char *s)
{
    int rc = dbuf_addc(out, '"');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = dbuf_printf(out, "\\%c", c);
        else if (c < 0x20)
            rc = dbuf_printf(out, "\\u%04x", c);
        else
            rc = dbuf_addc(out, (char)c);
    }
    return rc ? rc : dbuf_addc(out, '"');
}

int jrpc_emit_error(struct dbuf *out, struct jrpc_slice id, int code, const char *message)
{
    int rc = dbuf_adds(out, "{\"jsonrpc\":\"2.0\",\"id\":");
    if (!rc)
        rc = id.p ? dbuf_add(out, id.p, id.n) : dbuf_adds(out, "null");
    if (!rc)
        rc = dbuf_printf(out, ",\"error\":{\"code\":%d,\"message\":", code);
    if (!rc)
        rc = emit_json_string(out, message);
    if (!rc)
        rc = dbuf_adds(out, "}}\n");
    return rc;
}

/* ---- walking an object ---- */

long jrpc_string_decode(struct jrpc_slice tok, char *out, size_t cap)
{
    if (!tok.p || tok.n < 2 || tok.p[0] != '"' || cap == 0)
        return -1;
    return decode_string(tok.p, tok.n, out, cap);
}

int jrpc_object_each(struct jrpc_slice obj, jrpc_member_fn fn, void *ctx)
{
    struct scan s = {obj.p, obj.p + obj.n};
    char key[JRPC_KEY_MAX];

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return ERR_PARSE;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}')
        return 0;
    for (;;) {
        const char *k, *v;
        bool escaped;
        long klen;
        int rc;

        skip_ws(&s);
        k = s.p;
        if (s.p >= s.end || *s.p != '"' || scan_string(&s, &escaped))
            return ERR_PARSE;
        klen = decode_string(k, (size_t)(s.p - k), key, sizeof(key));
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return ERR_PARSE;
        s.p++;
        skip_ws(&s);
        v = s.p;
        if (scan_value(&s, 1))
            return ERR_PARSE;
        rc = fn(ctx, klen < 0 ? NULL : key, klen < 0 ? 0 : (size_t)klen,
                (struct jrpc_slice){v, (size_t)(s.p - v)});
        if (rc)
            return rc;
        skip_ws(&s);
        if (s.p < s.end && *s.p == '}')
            return 0;
        if (s.p >= s.end || *s.p != ',')
            return ERR_PARSE;
        s.p++;
    }
}

int jrpc_array_each(struct jrpc_slice arr, jrpc_element_fn fn, void *ctx)
{
    struct scan s = {arr.p, arr.p + arr.n};
    size_t index = 0;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '[')
        return ERR_PARSE;
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == ']')
        return 0;
    for (;;) {
        const char *v;
        int rc;

        skip_ws(&s);
        v = s.p;
        if (scan_value(&s, 1))
            return ERR_PARSE;
        rc = fn(ctx, index++, (struct jrpc_slice){v, (size_t)(s.p - v)});
        if (rc)
            return rc;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ']')
            return 0;
        if (s.p >= s.end || *s.p != ',')
            return ERR_PARSE;
        s.p++;
    }
}

/* Next folded character of a key, advancing *p: ASCII lower case, ſ → s, K → k. */
static int fold_next(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *q = *p;

    if (end - q >= 2 && q[0] == 0xc5 && q[1] == 0xbf) {
        *p += 2;
        return 's';
    }
    if (end - q >= 3 && q[0] == 0xe2 && q[1] == 0x84 && q[2] == 0xaa) {
        *p += 3;
        return 'k';
    }
    *p += 1;
    return *q >= 'A' && *q <= 'Z' ? *q + 32 : *q;
}

bool jrpc_key_aliases(const char *key, size_t key_len, const char *name)
{
    const unsigned char *k = (const unsigned char *)key, *kend = k + key_len;
    const unsigned char *n = (const unsigned char *)name, *nend = n + strlen(name);

    if (memchr(key, '\0', key_len))
        return true;
    if (key_len == (size_t)(nend - n) && memcmp(key, name, key_len) == 0)
        return false;
    while (k < kend && n < nend)
        if (fold_next(&k, kend) != fold_next(&n, nend))
            return false;
    return k == kend && n == nend;
}
