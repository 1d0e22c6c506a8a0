/*
 * normalize: the JSON walk that turns arguments into leaves, the chain of forms of one
 * leaf, and the three Unicode steps (invisible characters, NFKC, confusables). The text
 * decoders are in decode.c.
 */
#include "inspect/normalize.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uninorm.h>

#include "jsonrpc/jsonrpc.h"

/* ---- invisible characters ---- */

static bool is_invisible(unsigned cp)
{
    return cp == 0x00ad || cp == 0x034f || cp == 0x061c || cp == 0x115f || cp == 0x1160 ||
           cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x3164 ||
           cp == 0xfeff || cp == 0xffa0 || (cp >= 0xe0000 && cp <= 0xe007f);
}

static bool has_non_ascii(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] >= 0x80)
            return true;
    return false;
}

/* Code point of the valid sequence at p, or 0 (also for an invalid byte or the end). */
static unsigned cp_at(const unsigned char *p, const unsigned char *end)
{
    unsigned cp = 0;
    if (p < end && !clampd_utf8_next(p, end, &cp))
        cp = 0;
    return cp;
}

/* Whether the invisible character cp, just before p, goes: ZWJ and ZWNJ shape emoji and
 * Indic or Arabic text, so they stay between two such characters; a Latin word split by
 * one has a Latin neighbour and loses it. */
static bool drop_invisible(unsigned cp, unsigned prev, const unsigned char *p,
                           const unsigned char *end)
{
    unsigned next = cp_at(p, end);
    return !((cp == 0x200c || cp == 0x200d) && prev >= 0x300 && next >= 0x300 &&
             !is_invisible(next));
}

static int strip_invisible(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len, *done = p;
    unsigned prev = 0;
    bool changed = false;
    int rc = 0;

    if (!has_non_ascii(in, len))
        return 0;
    while (p < end && !rc) {
        unsigned cp;
        size_t k = clampd_utf8_next(p, end, &cp);
        if (k == 0) {
            p++, prev = 0;
            continue;
        }
        p += k;
        if (!is_invisible(cp) || !drop_invisible(cp, prev, p, end)) {
            prev = cp;
            continue;
        }
        /* Copy what came before, drop this one (a tag character leaves its ASCII). */
        changed = true;
        rc = dbuf_add(out, done, (size_t)(p - k - done));
        if (!rc && cp >= 0xe0020 && cp <= 0xe007e)
            rc = dbuf_addc(out, (char)(cp - 0xe0000));
        done = p;
    }
    if (!rc && changed)
        rc = dbuf_add(out, done, (size_t)(end - done));
    return rc ? rc : changed;
}

/* ---- text shown to a model, cleaned ---- */

/* Length of the ANSI escape sequence at p (ESC already seen at p[0]): CSI "ESC [ params
 * final", OSC/DCS/APC/PM/SOS "ESC ] ... BEL or ESC \\", or a two-byte "ESC x". */
static size_t ansi_len(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p + 1;

    if (q >= end)
        return 1;
    if (*q == '[') {
        for (q++; q < end && *q >= 0x20 && *q < 0x40; q++)
            ;
        return (size_t)(q < end && *q >= 0x40 && *q < 0x7f ? q + 1 - p : q - p);
    }
    if (*q == ']' || *q == 'P' || *q == 'X' || *q == '^' || *q == '_') {
        for (q++; q < end; q++) {
            if (*q == 0x07)
                return (size_t)(q + 1 - p);
            if (*q == 0x1b && q + 1 < end && q[1] == '\\')
                return (size_t)(q + 2 - p);
        }
        return (size_t)(end - p);
    }
    return 2;
}

int insp_strip_hidden(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len, *done = p;
    unsigned prev = 0;
    bool changed = false;
    int rc = 0;

    while (p < end && !rc) {
        unsigned cp = *p;
        size_t k = cp < 0x80 ? 1 : clampd_utf8_next(p, end, &cp);
        bool drop;
        if (k == 0) { /* not UTF-8: kept, as the bytes are */
            p++, prev = 0;
            continue;
        }
        if (cp == 0x1b)
            k = ansi_len(p, end);
        drop = cp == 0x1b || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
               (cp >= 0x7f && cp <= 0x9f) ||
               (is_invisible(cp) && drop_invisible(cp, prev, p + k, end));
        if (!drop) {
            prev = cp;
            p += k;
            continue;
        }
        changed = true;
        rc = dbuf_add(out, done, (size_t)(p - done));
        p += k;
        done = p;
    }
    if (!rc && changed)
        rc = dbuf_add(out, done, (size_t)(end - done));
    return rc ? rc : changed;
}

/* ---- NFKC (libunistring) ---- */

/* Normalises each maximal run of valid UTF-8 that is not plain ASCII; bytes that are not
 * UTF-8 (a decoded %ff) are kept as they are rather than becoming U+FFFD. */
static int nfkc(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len;
    int rc = 0;

    if (!has_non_ascii(in, len))
        return 0;
    while (p < end && !rc) {
        const unsigned char *run = p;
        bool ascii = true;
        unsigned cp;
        size_t k;
        while (p < end && (k = clampd_utf8_next(p, end, &cp)) != 0) {
            ascii &= k == 1;
            p += k;
        }
        if (p > run && ascii) {
            rc = dbuf_add(out, run, (size_t)(p - run));
        } else if (p > run) {
            size_t n = 0;
            uint8_t *r = u8_normalize(UNINORM_NFKC, run, (size_t)(p - run), NULL, &n);
            if (!r)
                return errno == ENOMEM ? ERR_NOMEM : ERR_PARSE;
            rc = dbuf_add(out, r, n);
            free(r);
        }
        if (!rc && p < end)
            rc = dbuf_add(out, p++, 1); /* the byte that is not UTF-8 */
    }
    if (rc)
        return rc;
    return out->len != len || memcmp(out->ptr, in, len) != 0;
}

/* ---- confusables ---- */

/* Letters of other scripts drawn like a Latin one (after Unicode's confusables.txt),
 * sorted by code point. */
static const struct confusable {
    unsigned cp;
    char latin;
} confusables[] = {
    {0x0131, 'i'}, {0x0237, 'j'}, {0x0251, 'a'}, {0x0261, 'g'}, {0x0391, 'A'}, {0x0392, 'B'},
    {0x0395, 'E'}, {0x0396, 'Z'}, {0x0397, 'H'}, {0x0399, 'I'}, {0x039a, 'K'}, {0x039c, 'M'},
    {0x039d, 'N'}, {0x039f, 'O'}, {0x03a1, 'P'}, {0x03a4, 'T'}, {0x03a5, 'Y'}, {0x03a7, 'X'},
    {0x03b1, 'a'}, {0x03b9, 'i'}, {0x03ba, 'k'}, {0x03bd, 'v'}, {0x03bf, 'o'}, {0x03c1, 'p'},
    {0x03c5, 'u'}, {0x03f2, 'c'}, {0x03f3, 'j'}, {0x0405, 'S'}, {0x0406, 'I'}, {0x0408, 'J'},
    {0x0410, 'A'}, {0x0412, 'B'}, {0x0415, 'E'}, {0x041a, 'K'}, {0x041c, 'M'}, {0x041d, 'H'},
    {0x041e, 'O'}, {0x0420, 'P'}, {0x0421, 'C'}, {0x0422, 'T'}, {0x0423, 'Y'}, {0x0425, 'X'},
    {0x0430, 'a'}, {0x0435, 'e'}, {0x043e, 'o'}, {0x0440, 'p'}, {0x0441, 'c'}, {0x0443, 'y'},
    {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'}, {0x04ae, 'Y'}, {0x04ba, 'H'},
    {0x04bb, 'h'}, {0x04c0, 'I'}, {0x04cf, 'l'}, {0x0501, 'd'}, {0x051a, 'Q'}, {0x051b, 'q'},
    {0x051c, 'W'}, {0x051d, 'w'},
};

static char latin_of(unsigned cp)
{
    size_t lo = 0, hi = sizeof(confusables) / sizeof(confusables[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (confusables[mid].cp == cp)
            return confusables[mid].latin;
        if (confusables[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static bool is_ascii_letter(unsigned cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
}

/* Letters of the scripts whose look-alikes we fold (Latin, Greek, Cyrillic) and
 * combining marks: what a word is made of here. */
static bool is_word_cp(unsigned cp)
{
    return is_ascii_letter(cp) || (cp >= 0x00c0 && cp <= 0x052f && cp != 0xd7 && cp != 0xf7) ||
           (cp >= 0x1e00 && cp <= 0x1eff);
}

struct word_stats {
    size_t ascii, conf, other;
};

/* Scans the word at p; returns its end. */
static const unsigned char *word_scan(const unsigned char *p, const unsigned char *end,
                                      struct word_stats *st)
{
    unsigned cp;
    size_t k;

    memset(st, 0, sizeof(*st));
    while (p < end && (k = clampd_utf8_next(p, end, &cp)) != 0 && is_word_cp(cp)) {
        if (is_ascii_letter(cp))
            st->ascii++;
        else if (latin_of(cp))
            st->conf++;
        else if (cp < 0x300 || cp > 0x36f)
            st->other++;
        p += k;
    }
    return p;
}

static bool text_has_ascii_letter(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (is_ascii_letter((unsigned char)in[i]))
            return true;
    return false;
}

/* SECURITY: plain Russian or Greek stays as it is (no form, no risk); a word is folded
 * when it mixes look-alikes with Latin letters, or is made only of look-alikes (two or
 * more) in a text that also holds Latin letters, as a spoofed name in a URL is. */
static int fold_confusables(const char *in, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)in, *end = p + len, *done = p;
    bool latin, changed = false;
    int rc = 0;

    if (!has_non_ascii(in, len))
        return 0;
    latin = text_has_ascii_letter(in, len);
    while (p < end && !rc) {
        struct word_stats st;
        const unsigned char *wend = word_scan(p, end, &st);

        if (wend == p) {
            p++;
            continue;
        }
        if (!st.conf || !(st.ascii || (!st.other && st.conf >= 2 && latin))) {
            p = wend;
            continue;
        }
        changed = true;
        rc = dbuf_add(out, done, (size_t)(p - done));
        while (p < wend && !rc) {
            unsigned cp;
            size_t k = clampd_utf8_next(p, wend, &cp);
            char c = latin_of(cp);
            rc = c ? dbuf_addc(out, c) : dbuf_add(out, p, k);
            p += k;
        }
        done = wend;
    }
    if (!rc && changed)
        rc = dbuf_add(out, done, (size_t)(end - done));
    return rc ? rc : changed;
}

/* ---- the chain of forms of one leaf ---- */

/* The Unicode steps come before the token decoders: a zero-width space or a look-alike
 * letter inside a base64 token would otherwise let each half decode on its own. */
static const struct step {
    unsigned layer;
    insp__decode_fn fn;
} steps[] = {
    {INSP_LAYER_PERCENT, insp__percent},
    {INSP_LAYER_HTML, insp__html},
    {INSP_LAYER_UNICODE_ESC, insp__unicode_esc},
    {INSP_LAYER_INVISIBLE, strip_invisible},
    {INSP_LAYER_NFKC, nfkc},
    {INSP_LAYER_CONFUSABLE, fold_confusables},
    {INSP_LAYER_BASE64, insp__base64},
    {INSP_LAYER_HEX, insp__hex},
    {INSP_LAYER_PATH, insp__path},
};

#define N_STEPS (sizeof(steps) / sizeof(steps[0]))
/* Each step runs at most INSP_MAX_ROUNDS times, and every form but the raw one is the
 * result of a step: this bounds the forms of a leaf. */
#define MAX_FORMS (N_STEPS * INSP_MAX_ROUNDS)

static const char *const layer_names[] = {"percent",   "html", "unicode_esc", "base64", "hex",
                                          "invisible", "nfkc", "confusable",  "path"};

const char *insp_layer_name(unsigned layer)
{
    for (size_t i = 0; i < sizeof(layer_names) / sizeof(layer_names[0]); i++)
        if (layer == 1u << i)
            return layer_names[i];
    return "?";
}

/* State of one call: the buffers are reused for every leaf. */
struct norm {
    insp_leaf_fn fn;
    void *ctx;
    struct dbuf path;  /* path of the current leaf */
    struct dbuf raw;   /* decoded text of the current string or key */
    struct dbuf forms; /* the current leaf's derived forms, back to back */
    struct dbuf tmp;   /* output of one step */
    size_t leaves, derived, walked, walk_max;
    const char *root_path;
};

struct form {
    size_t off, len; /* in norm.forms */
};

static int emit(struct norm *n, enum insp_leaf_kind kind, const char *text, size_t len,
                unsigned layers)
{
    struct insp_leaf leaf = {n->path.ptr ? n->path.ptr : n->root_path,
                             n->path.ptr ? n->path.len : strlen(n->root_path),
                             text,
                             len,
                             layers,
                             kind};
    return n->fn(n->ctx, &leaf);
}

/* True when tmp equals the raw text or one of the forms so far. */
static bool seen_before(const struct norm *n, const char *raw, size_t raw_len, const struct form *f,
                        size_t nf)
{
    const struct dbuf *t = &n->tmp;

    if (t->len == raw_len && memcmp(t->ptr, raw, raw_len) == 0)
        return true;
    for (size_t i = 0; i < nf; i++)
        if (f[i].len == t->len && memcmp(n->forms.ptr + f[i].off, t->ptr, t->len) == 0)
            return true;
    return false;
}

/* Runs the first step that changes cur into n->tmp; returns its index, N_STEPS when none
 * does, or a negative error. */
static bool all_ascii(const char *p, size_t len)
{
    uint64_t acc = 0, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < len; i++)
        acc |= (unsigned char)p[i];
    return !(acc & 0x8080808080808080ull);
}

/* Can step s change text at all? Cheap gates that skip a full pass over large texts: the
 * escape decoders need their escape character, the Unicode steps a non-ASCII byte (NFKC,
 * look-alike folding and invisible characters leave ASCII alone). */
static bool may_change(size_t s, const char *cur, size_t len, bool ascii)
{
    switch (steps[s].layer) {
    case INSP_LAYER_PERCENT: return memchr(cur, '%', len) != NULL;
    case INSP_LAYER_HTML: return memchr(cur, '&', len) != NULL;
    case INSP_LAYER_UNICODE_ESC: return memchr(cur, '\\', len) != NULL;
    case INSP_LAYER_PATH: return memchr(cur, '/', len) || memchr(cur, '\\', len);
    case INSP_LAYER_INVISIBLE:
    case INSP_LAYER_NFKC:
    case INSP_LAYER_CONFUSABLE: return !ascii;
    default: return true;
    }
}

static int next_step(struct norm *n, const char *cur, size_t len, const unsigned *rounds)
{
    bool ascii = all_ascii(cur, len);

    for (size_t s = 0; s < N_STEPS; s++) {
        int rc;
        if (rounds[s] >= INSP_MAX_ROUNDS || !may_change(s, cur, len, ascii))
            continue;
        dbuf_reset(&n->tmp);
        rc = steps[s].fn(cur, len, &n->tmp);
        if (rc < 0)
            return rc;
        if (rc > 0 && (n->tmp.len != len || memcmp(n->tmp.ptr, cur, len) != 0))
            return (int)s;
    }
    return (int)N_STEPS;
}

static int leaf(struct norm *n, enum insp_leaf_kind kind, const char *raw, size_t raw_len)
{
    struct form f[MAX_FORMS];
    unsigned rounds[N_STEPS] = {0};
    const char *cur = raw;
    size_t nf = 0, len = raw_len;
    unsigned layers = 0;
    int rc;

    if (++n->leaves > INSP_MAX_LEAVES)
        return ERR_TOO_BIG;
    rc = emit(n, kind, raw, raw_len, 0);
    if (rc || kind == INSP_LEAF_NUMBER)
        return rc;
    dbuf_reset(&n->forms);
    while (nf < MAX_FORMS) {
        int s = next_step(n, cur, len, rounds);
        if (s < 0 || s == (int)N_STEPS)
            return s < 0 ? s : 0;
        rounds[s]++;
        /* A form met before would only lead where it led before. */
        if (seen_before(n, raw, raw_len, f, nf))
            return 0;
        /* SECURITY: the forms are what is inspected; past the budget nothing can be, and
         * the caller denies. */
        if (n->tmp.len > INSP_MAX_NORMALIZED_BYTES - n->derived)
            return ERR_TOO_BIG;
        n->derived += n->tmp.len;
        f[nf].off = n->forms.len;
        f[nf].len = n->tmp.len;
        rc = dbuf_add(&n->forms, n->tmp.ptr, n->tmp.len);
        if (rc)
            return rc;
        cur = n->forms.ptr + f[nf].off;
        len = f[nf++].len;
        layers |= steps[s].layer;
        rc = emit(n, kind, cur, len, layers);
        if (rc)
            return rc;
    }
    return 0;
}

static void norm_init(struct norm *n, insp_leaf_fn fn, void *ctx, const char *root_path)
{
    memset(n, 0, sizeof(*n));
    n->fn = fn;
    n->ctx = ctx;
    n->root_path = root_path;
    dbuf_init(&n->path, INSP_MAX_PATH);
    dbuf_init(&n->raw, CLAMPD_MAX_MESSAGE);
    dbuf_init(&n->forms, INSP_MAX_NORMALIZED_BYTES);
    /* NFKC may lengthen a text (U+FDFA is 18 letters); decoders only shorten it. */
    dbuf_init(&n->tmp, CLAMPD_MAX_MESSAGE + INSP_MAX_NORMALIZED_BYTES);
}

static void norm_deinit(struct norm *n)
{
    dbuf_free(&n->path);
    dbuf_free(&n->raw);
    dbuf_free(&n->forms);
    dbuf_free(&n->tmp);
}

int insp_normalize_text(const char *text, size_t len, insp_leaf_fn fn, void *ctx)
{
    struct norm n;
    int rc;

    norm_init(&n, fn, ctx, "");
    rc = leaf(&n, INSP_LEAF_TEXT, len ? text : "", len);
    norm_deinit(&n);
    return rc;
}

/* ---- walking the JSON value ---- */

struct walk {
    struct norm *n;
    struct jrpc_slice obj; /* the object being walked (to find a long key's token) */
    int depth;             /* containers around the members or elements walked */
};

static int walk_value(struct norm *n, struct jrpc_slice v, int depth);

static void path_cut(struct dbuf *path, size_t len)
{
    path->len = len;
    if (path->ptr)
        path->ptr[len] = '\0';
}

static bool is_ident(const char *k, size_t n)
{
    if (n == 0 || (k[0] >= '0' && k[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (!is_ascii_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '$')
            return false;
    }
    return true;
}

/* Appends .key or ["key"] (JSON-escaped: the path stays one printable line). */
static int path_add_key(struct dbuf *path, const char *k, size_t n)
{
    int rc;

    if (is_ident(k, n)) {
        rc = dbuf_addc(path, '.');
        return rc ? rc : dbuf_add(path, k, n);
    }
    rc = dbuf_add(path, "[\"", 2);
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == '"' || c == '\\')
            rc = dbuf_printf(path, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            rc = dbuf_printf(path, "\\u%04x", c);
        else
            rc = dbuf_addc(path, (char)c);
    }
    return rc ? rc : dbuf_add(path, "\"]", 2);
}

/* The token of the key whose value starts at v: jrpc_object_each() gives no decoded key
 * past JRPC_KEY_MAX-1 bytes, but the key's token ends just before the ':' in front of v.
 * Going back from its closing quote, the opening quote is the first '"' not escaped (an
 * even number of backslashes before it): inside a valid string every '"' is escaped. */
static struct jrpc_slice key_token(struct jrpc_slice obj, const char *v)
{
    const char *p = v, *close;
    struct jrpc_slice none = {NULL, 0};

    while (p > obj.p && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r'))
        p--;
    if (p <= obj.p || *--p != ':')
        return none;
    while (p > obj.p && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' || p[-1] == '\r'))
        p--;
    if (p <= obj.p || p[-1] != '"')
        return none;
    close = --p;
    while (p > obj.p) {
        size_t bs = 0;
        p--;
        if (*p != '"')
            continue;
        while (p - bs > obj.p && p[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return (struct jrpc_slice){p, (size_t)(close + 1 - p)};
    }
    return none;
}

static int on_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    struct walk *w = ctx;
    struct norm *n = w->n;
    size_t mark = n->path.len, kmark;
    int rc;

    if (!key) {
        /* SECURITY: a key we cannot read is not skipped: it is decoded from its token, and
         * one holding a lone surrogate (peers read it differently) fails the call. */
        struct jrpc_slice tok = key_token(w->obj, v.p);
        long r;
        dbuf_reset(&n->raw);
        if (!tok.p)
            return ERR_PARSE;
        rc = dbuf_reserve(&n->raw, tok.n);
        if (rc)
            return rc;
        r = jrpc_string_decode(tok, n->raw.ptr, tok.n);
        if (r < 0)
            return ERR_PARSE;
        key = n->raw.ptr;
        klen = (size_t)r;
    }
    rc = path_add_key(&n->path, key, klen);
    kmark = n->path.len;
    if (!rc)
        rc = dbuf_add(&n->path, "{key}", 5);
    if (!rc)
        rc = leaf(n, INSP_LEAF_KEY, key, klen);
    path_cut(&n->path, kmark);
    if (!rc)
        rc = walk_value(n, v, w->depth);
    path_cut(&n->path, mark);
    return rc;
}

static int on_element(void *ctx, size_t index, struct jrpc_slice v)
{
    struct walk *w = ctx;
    size_t mark = w->n->path.len;
    int rc = dbuf_printf(&w->n->path, "[%zu]", index);

    if (!rc)
        rc = walk_value(w->n, v, w->depth);
    path_cut(&w->n->path, mark);
    return rc;
}

static int walk_string(struct norm *n, struct jrpc_slice v)
{
    long r;
    int rc;

    /* The decoded string is never longer than its token. */
    dbuf_reset(&n->raw);
    rc = dbuf_reserve(&n->raw, v.n);
    if (rc)
        return rc;
    r = jrpc_string_decode(v, n->raw.ptr, v.n);
    if (r < 0)
        return ERR_PARSE; /* SECURITY: a lone surrogate: see insp_flatten() */
    return leaf(n, INSP_LEAF_STRING, n->raw.ptr, (size_t)r);
}

static int walk_value(struct norm *n, struct jrpc_slice v, int depth)
{
    struct walk w = {n, v, depth + 1};

    if (v.n == 0)
        return ERR_PARSE;
    switch (*v.p) {
    case '{':
    case '[':
        if (depth >= CLAMPD_MAX_JSON_DEPTH)
            return ERR_TOO_BIG;
        /* SECURITY: each walker re-reads the whole container; see INSP_WALK_FACTOR. */
        if (v.n > n->walk_max - n->walked)
            return ERR_TOO_BIG;
        n->walked += v.n;
        if (*v.p == '{')
            return jrpc_object_each(v, on_member, &w);
        return jrpc_array_each(v, on_element, &w);
    case '"': return walk_string(n, v);
    case 't':
    case 'f':
    case 'n': return 0;
    default: return leaf(n, INSP_LEAF_NUMBER, v.p, v.n);
    }
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int insp_flatten(const char *json, size_t len, insp_leaf_fn fn, void *ctx)
{
    struct jrpc_slice v = {json, len};
    struct jrpc_peek pk;
    struct norm n;
    int rc = ERR_PARSE;

    norm_init(&n, fn, ctx, "$");
    /* SECURITY: validated once more here (one linear pass): the walkers check what they
     * walk, but a scalar at the root would otherwise be taken on trust. */
    if (!json || jrpc_peek(json, len, &pk) != 0)
        goto out;
    while (v.n && is_ws(v.p[0]))
        v.p++, v.n--;
    while (v.n && is_ws(v.p[v.n - 1]))
        v.n--;
    n.walk_max = len > (SIZE_MAX - INSP_WALK_SLACK) / INSP_WALK_FACTOR
                     ? SIZE_MAX
                     : len * INSP_WALK_FACTOR + INSP_WALK_SLACK;
    rc = dbuf_addc(&n.path, '$');
    if (rc)
        goto out;
    rc = walk_value(&n, v, 0);
out:
    norm_deinit(&n);
    return rc;
}
