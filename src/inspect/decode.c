/*
 * decode: the text decoders of normalize: percent, HTML entities, escapes written inside a
 * string, and base64 or hex tokens. Each makes one pass over its input and writes a
 * shorter or equal output: every escape is at least as long as what it stands for
 * (`&#9` is 3 bytes for 1, `\u{10000}` 9 for 4, U+FFFD for a bad `&#0` is 3 for 3), so
 * out reserves len bytes once and a bounded writer fills it.
 */
#include "inspect/normalize.h"

#include <string.h>

/* Writes into storage reserved in a dbuf. SECURITY: bounded even though the decoders never
 * need more than the input's length: an overrun is an error, not a write. */
struct wr {
    char *p;
    size_t n, cap;
    bool over;
};

static int wr_begin(struct wr *w, struct dbuf *out, size_t len)
{
    int rc = dbuf_reserve(out, len);
    if (rc)
        return rc;
    w->p = out->ptr + out->len;
    w->n = 0;
    w->cap = len;
    w->over = false;
    return 0;
}

static int wr_end(struct wr *w, struct dbuf *out)
{
    if (w->over)
        return ERR_TOO_BIG;
    out->len += w->n;
    out->ptr[out->len] = '\0';
    return 1;
}

static void wr_mem(struct wr *w, const void *p, size_t n)
{
    if (n > w->cap - w->n) {
        w->over = true;
        return;
    }
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void wr_byte(struct wr *w, unsigned char c)
{
    wr_mem(w, &c, 1);
}

static size_t utf8_encode(unsigned cp, unsigned char *t)
{
    if (cp < 0x80) {
        t[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        t[0] = (unsigned char)(0xc0 | cp >> 6);
        t[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        t[0] = (unsigned char)(0xe0 | cp >> 12);
        t[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        t[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    t[0] = (unsigned char)(0xf0 | cp >> 18);
    t[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    t[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    t[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

static void wr_cp(struct wr *w, unsigned cp)
{
    unsigned char t[4] = {0};
    wr_mem(w, t, utf8_encode(cp, t));
}

int insp__put_utf8(struct dbuf *out, unsigned cp)
{
    unsigned char t[4] = {0};
    return dbuf_add(out, t, utf8_encode(cp, t));
}

/* Reads exactly n hex digits at p (within end); returns false when there are fewer. */
static bool read_hex(const unsigned char *p, const unsigned char *end, size_t n, unsigned *out)
{
    unsigned v = 0;

    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int h = clampd_hexval(p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return true;
}

static bool is_scalar(unsigned cp)
{
    return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
}

/* A UTF-16 unit u read after a prefix (`\u` or `%u`) of plen bytes at p: joins a high
 * surrogate with a following prefix+low one. Returns bytes consumed (from p) or 0 when u
 * is a lone surrogate, which is left as written: no peer agrees on what it means. */
static size_t utf16_unit(const unsigned char *p, const unsigned char *end, size_t plen, unsigned u,
                         unsigned *cp)
{
    size_t used = plen + 4;
    unsigned lo;

    if (u < 0xd800 || u > 0xdfff) {
        *cp = u;
        return used;
    }
    if (u > 0xdbff || (size_t)(end - p) < used + plen + 4 || memcmp(p + used, p, plen) != 0 ||
        !read_hex(p + used + plen, end, 4, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return 0;
    *cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    return used * 2;
}

/* ---- percent ---- */

/* One escape at p ('%'): bytes consumed, 0 when it is not one. */
static size_t percent_one(const unsigned char *p, const unsigned char *end, struct wr *w)
{
    unsigned v;

    if (read_hex(p + 1, end, 2, &v)) {
        wr_byte(w, (unsigned char)v);
        return 3;
    }
    if (end - p >= 6 && (p[1] == 'u' || p[1] == 'U') && read_hex(p + 2, end, 4, &v)) {
        unsigned cp;
        size_t n = utf16_unit(p, end, 2, v, &cp);
        if (n)
            wr_cp(w, cp);
        return n;
    }
    return 0;
}

/* Copies in to out, replacing each escape that starts with esc and that one() decodes;
 * returns 1 when anything was decoded (out holds the result), 0 when nothing was. */
static int decode_escapes(const char *in, size_t len, struct dbuf *out, int esc,
                          size_t (*one)(const unsigned char *, const unsigned char *, struct wr *))
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    struct wr w;
    bool changed = false;
    int rc;

    if (!memchr(in, esc, len))
        return 0;
    rc = wr_begin(&w, out, len);
    if (rc)
        return rc;
    while (p < end) {
        const unsigned char *q = memchr(p, esc, (size_t)(end - p));
        size_t n;
        if (!q) {
            wr_mem(&w, p, (size_t)(end - p));
            break;
        }
        wr_mem(&w, p, (size_t)(q - p));
        n = one(q, end, &w);
        if (n) {
            changed = true;
        } else {
            wr_byte(&w, (unsigned char)esc);
            n = 1;
        }
        p = q + n;
    }
    return changed ? wr_end(&w, out) : 0;
}

int insp__percent(const char *in, size_t len, struct dbuf *out)
{
    return decode_escapes(in, len, out, '%', percent_one);
}

/* ---- HTML character references ---- */

static const struct entity {
    const char *name;
    const char *text;
} entities[] = {
    {"AMP", "&"},    {"GT", ">"},     {"Hat", "^"},    {"LT", "<"},     {"NewLine", "\n"},
    {"QUOT", "\""},  {"Tab", "\t"},   {"amp", "&"},    {"apos", "'"},   {"ast", "*"},
    {"bsol", "\\"},  {"colon", ":"},  {"comma", ","},  {"commat", "@"}, {"dollar", "$"},
    {"equals", "="}, {"excl", "!"},   {"grave", "`"},  {"gt", ">"},     {"lcub", "{"},
    {"lowbar", "_"}, {"lpar", "("},   {"lsqb", "["},   {"lt", "<"},     {"nbsp", "\xc2\xa0"},
    {"num", "#"},    {"percnt", "%"}, {"period", "."}, {"plus", "+"},   {"quest", "?"},
    {"quot", "\""},  {"rcub", "}"},   {"rpar", ")"},   {"rsqb", "]"},   {"semi", ";"},
    {"sol", "/"},    {"verbar", "|"},
};

#define ENTITY_NAME_MAX 8

/* A numeric reference at p ("&#"): bytes consumed, 0 when none. ';' is optional and zeros
 * may pad the number, as browsers accept (`&#0000047` is '/'); a value that is no scalar
 * becomes U+FFFD, as in the HTML standard. */
static size_t html_numeric(const unsigned char *p, const unsigned char *end, struct wr *w)
{
    const unsigned char *q = p + 2;
    bool hex = q < end && (*q == 'x' || *q == 'X');
    const unsigned char *digits;
    unsigned v = 0;

    q += hex;
    digits = q;
    while (q < end) {
        int d = hex ? clampd_hexval(*q) : (*q >= '0' && *q <= '9' ? *q - '0' : -1);
        if (d < 0)
            break;
        v = v > 0x10ffff ? v : v * (hex ? 16u : 10u) + (unsigned)d;
        q++;
    }
    if (q == digits)
        return 0;
    if (q < end && *q == ';')
        q++;
    wr_cp(w, v == 0 || !is_scalar(v) ? 0xfffd : v);
    return (size_t)(q - p);
}

static size_t html_named(const unsigned char *p, const unsigned char *end, struct wr *w)
{
    const unsigned char *q = p + 1;
    size_t n;

    while (q < end && q - p <= ENTITY_NAME_MAX &&
           ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    if (q >= end || *q != ';' || q == p + 1)
        return 0;
    n = (size_t)(q - p - 1);
    for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
        if (strlen(entities[i].name) == n && memcmp(entities[i].name, p + 1, n) == 0) {
            wr_mem(w, entities[i].text, strlen(entities[i].text));
            return n + 2;
        }
    }
    return 0;
}

int insp__html(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    struct wr w;
    bool changed = false;
    int rc;

    if (!memchr(in, '&', len))
        return 0;
    rc = wr_begin(&w, out, len);
    if (rc)
        return rc;
    while (p < end) {
        const unsigned char *q = memchr(p, '&', (size_t)(end - p));
        size_t n;
        if (!q) {
            wr_mem(&w, p, (size_t)(end - p));
            break;
        }
        wr_mem(&w, p, (size_t)(q - p));
        n = q + 1 < end && q[1] == '#' ? html_numeric(q, end, &w) : html_named(q, end, &w);
        if (n) {
            changed = true;
        } else {
            wr_byte(&w, '&');
            n = 1;
        }
        p = q + n;
    }
    return changed ? wr_end(&w, out) : 0;
}

/* ---- escapes written inside a string ---- */

/* One escape at p ('\\'): bytes consumed, 0 when none. \xXX is one byte, as in C, shell
 * $'..', Python bytes and PHP: a UTF-8 sequence spelled byte by byte comes out whole. */
static size_t uesc_one(const unsigned char *p, const unsigned char *end, struct wr *w)
{
    unsigned v;

    if (end - p < 2)
        return 0;
    if (p[1] == 'x' && read_hex(p + 2, end, 2, &v)) {
        wr_byte(w, (unsigned char)v);
        return 4;
    }
    if (p[1] == 'U' && read_hex(p + 2, end, 8, &v) && is_scalar(v)) {
        wr_cp(w, v);
        return 10;
    }
    if (p[1] != 'u')
        return 0;
    if (p + 2 < end && p[2] == '{') {
        const unsigned char *q = p + 3;
        v = 0;
        while (q < end && q - p < 9 && clampd_hexval(*q) >= 0)
            v = v << 4 | (unsigned)clampd_hexval(*q++);
        if (q == p + 3 || q >= end || *q != '}' || !is_scalar(v))
            return 0;
        wr_cp(w, v);
        return (size_t)(q + 1 - p);
    }
    if (read_hex(p + 2, end, 4, &v)) {
        unsigned cp;
        size_t n = utf16_unit(p, end, 2, v, &cp);
        if (n)
            wr_cp(w, cp);
        return n;
    }
    return 0;
}

int insp__unicode_esc(const char *in, size_t len, struct dbuf *out)
{
    return decode_escapes(in, len, out, '\\', uesc_one);
}

/* ---- base64 and hex tokens ---- */

#define SHORT_TEXT 24 /* decoded bytes below which a decode must look like a word or command */

/* True when p[0..n) reads as text: valid UTF-8 with few bytes a text would not hold. At
 * most one in 16 may be a C0 or C1 control (tab, newline, CR and ESC are text: an ANSI
 * escape hidden in base64 is what we look for) or a byte that is not UTF-8. Random bytes
 * fail at once: most are not UTF-8. A short decode, where chance could pass that test
 * (one 8-letter identifier in a few hundred decodes to valid UTF-8), must be printable
 * ASCII, at least 70% letters, digits and spaces: `whoami`, `rm -rf /`, `ls -la`. */
static bool is_text(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    size_t bad = 0, wordish = 0, other = 0;

    if (n == 0)
        return false;
    while (p < end) {
        unsigned cp;
        size_t k = clampd_utf8_next(p, end, &cp);
        if (k == 0) {
            bad++;
            k = 1;
        } else if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' && cp != 0x1b) ||
                   (cp >= 0x7f && cp < 0xa0)) {
            bad++;
        } else if (cp == ' ' || (cp >= '0' && cp <= '9') ||
                   ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')) {
            wordish++;
        } else {
            other += cp >= 0x80 || cp < 0x20 ? n : 1; /* never in a short decode */
        }
        if (bad > n / 16)
            return false;
        p += k;
    }
    return n >= SHORT_TEXT || (bad == 0 && other < n && wordish * 10 >= n * 7);
}

/* Base64 digit + 1 of each byte (std and url-safe alphabets), 0 for others; the upper
 * half is all zero. */
static const unsigned char b64_tab[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  63,
    0,  63, 0,  64, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 0,  0,  0,  0,  0,  0,  0,  1,
    2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    24, 25, 26, 0,  0,  0,  0,  64, 0,  27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
    40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 0,  0,  0,  0,  0,
};

static int b64val(unsigned char c)
{
    return (int)b64_tab[c] - 1;
}

/* Decodes the token t[0..n) followed by pad '=' into w when it is base64 of text; on
 * failure w is as it was. */
static bool b64_token(const unsigned char *t, size_t n, size_t pad, size_t min, struct wr *w)
{
    unsigned char *o = (unsigned char *)w->p + w->n;
    bool std = false, url = false;
    unsigned acc = 0, bits = 0;
    size_t k = 0;

    if (n + pad < min || (pad ? (n + pad) % 4 != 0 : n % 4 == 1))
        return false;
    /* A short whole leaf must have the length an encoder writes ("d2hvYW1p", "bHM="):
     * words and identifiers come in every length. */
    if (n + pad < INSP_MIN_TOKEN && (n + pad) % 4 != 0)
        return false;
    if (w->over || n / 4 * 3 + n % 4 * 6 / 8 > w->cap - w->n) /* the decoded size */
        return false;
    for (size_t i = 0; i < n; i++) {
        std |= t[i] == '+' || t[i] == '/';
        url |= t[i] == '-' || t[i] == '_';
    }
    if (std && url)
        return false;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6 | (unsigned)b64val(t[i])) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
        }
    }
    if (!is_text(o, k))
        return false;
    w->n += k;
    return true;
}

/* Separators tried inside one run, and how far into it: "/api/v1/exec/<token>". */
#define B64_SPLITS 8
#define B64_SPLIT_SPAN 64

/* Tries the run t[0..n) as a token, then what follows each of its first separators
 * ('/', '-', '_'), since a token often ends a path or a dashed name. Returns how many
 * bytes of t were kept before the decoded text, or n+1 when nothing decoded. */
static size_t b64_run(const unsigned char *t, size_t n, size_t pad, bool whole, struct wr *w)
{
    unsigned tries = 0;

    if (b64_token(t, n, pad, whole ? INSP_MIN_B64_LEAF : INSP_MIN_TOKEN, w))
        return 0;
    for (size_t i = 0; i < B64_SPLIT_SPAN && i + INSP_MIN_TOKEN < n && tries < B64_SPLITS; i++) {
        size_t mark = w->n;
        if (t[i] != '/' && t[i] != '-' && t[i] != '_')
            continue;
        tries++;
        wr_mem(w, t, i + 1);
        if (!w->over && b64_token(t + i + 1, n - i - 1, pad, INSP_MIN_TOKEN, w))
            return i + 1;
        w->n = mark;
        w->over = false;
    }
    return n + 1;
}

int insp__base64(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len, *done = p;
    struct wr w;
    bool changed = false;
    int rc = wr_begin(&w, out, len);

    if (rc)
        return rc;
    while (p < end) {
        const unsigned char *run = p, *run_end;
        size_t pad = 0;
        if (b64val(*p) < 0) {
            p++;
            continue;
        }
        while (p < end && b64val(*p) >= 0)
            p++;
        run_end = p;
        while (p < end && *p == '=' && pad < 2)
            p++, pad++;
        if ((size_t)(run_end - run) + pad < INSP_MIN_B64_LEAF)
            continue;
        wr_mem(&w, done, (size_t)(run - done));
        if (b64_run(run, (size_t)(run_end - run), pad, run == (const unsigned char *)in && p == end,
                    &w) <= (size_t)(run_end - run)) {
            changed = true;
            done = p;
        } else {
            done = run;
        }
    }
    if (!changed)
        return 0;
    wr_mem(&w, done, (size_t)(end - done));
    return wr_end(&w, out);
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int insp__hex(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len, *done = p;
    struct wr w;
    bool changed = false;
    int rc = wr_begin(&w, out, len);

    if (rc)
        return rc;
    while (p < end) {
        const unsigned char *run = p, *digits, *q;
        size_t mark;
        if (!is_alnum(*p)) {
            p++;
            continue;
        }
        while (p < end && is_alnum(*p))
            p++;
        digits = run;
        if (p - run >= 2 && run[0] == '0' && (run[1] == 'x' || run[1] == 'X'))
            digits += 2;
        for (q = digits; q < p && clampd_hexval(*q) >= 0; q++)
            ;
        if (q != p || (size_t)(p - digits) < INSP_MIN_TOKEN || (p - digits) % 2)
            continue;
        wr_mem(&w, done, (size_t)(run - done));
        mark = w.n;
        if (!w.over && (size_t)(p - digits) / 2 <= w.cap - w.n) {
            unsigned char *o = (unsigned char *)w.p + w.n;
            for (q = digits; q < p; q += 2)
                *o++ = (unsigned char)(clampd_hexval(q[0]) << 4 | clampd_hexval(q[1]));
            w.n += (size_t)(p - digits) / 2;
        }
        if (w.n > mark && is_text((const unsigned char *)w.p + mark, w.n - mark)) {
            changed = true;
            done = p;
        } else {
            w.n = mark;
            done = run;
        }
    }
    if (!changed)
        return 0;
    wr_mem(&w, done, (size_t)(end - done));
    return wr_end(&w, out);
}
