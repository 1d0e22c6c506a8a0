/*
 * normalize: flatten tool arguments into (JSON path, text) leaves and undo the encodings
 * that hide an attack from a pattern scanner (DESIGN §2, decide stage 4).
 *
 *   arguments (validated JSON) ──insp_flatten()──▶ for each key, string and number:
 *       fn(path, raw text, layers 0)
 *       fn(path, form 1, layers)      each derived form is one more decoding step of the
 *       fn(path, form 2, layers)      previous one, tagged with every layer removed so far
 *       ...                           (never the same text twice for one leaf)
 *
 * How forms are derived (a single chain per leaf, not a tree): starting from the raw text,
 * the decoders are tried in this order, and the first that changes the text makes the next
 * form; then the order starts again from the top on that form, until no decoder changes
 * anything or each has run INSP_MAX_ROUNDS times:
 *
 *   percent ─ html ─ unicode escapes ─ invisible ─ NFKC ─ confusables ─ base64 ─ hex ─ path
 *
 * So `&#x25;2e` gives `%2e` (HTML) then `.` (HTML|PERCENT), and a base64 token holding
 * percent escapes is decoded, then unescaped. The chain reaches the text with every layer
 * removed, and each intermediate form is scanned too: what a server that decodes once sees
 * is among them. Layers come in any order; their bits say which were removed, not when.
 * The Unicode steps run before the token decoders, so that a zero-width space or a
 * look-alike letter cut into a base64 token is gone before the token is decoded.
 *
 * Buffers are allocated once per call and reused for every leaf (libunistring's NFKC
 * allocates its own result); all are freed before the call returns.
 */
#ifndef CLAMPD_INSPECT_NORMALIZE_H
#define CLAMPD_INSPECT_NORMALIZE_H

#include "core/core.h"

/* Leaves (object keys, strings and numbers) walked in one call. */
#define INSP_MAX_LEAVES 65536u
/* Bytes of derived forms (all leaves together) produced in one call. SECURITY: a value
 * can be built to decode into many large forms; past this the call is refused. */
#define INSP_MAX_NORMALIZED_BYTES (32u * 1024u * 1024u)
/* Times one decoder may be applied along a leaf's chain (percent: %2525 → %25 → %). */
#define INSP_MAX_ROUNDS 4u
/* Bytes of one leaf's path ($.a.b[3]...). */
#define INSP_MAX_PATH 16384u
/* Minimum length of a base64 or hex token inside a longer text; a whole leaf that is one
 * base64 token may be as short as INSP_MIN_B64_LEAF. */
#define INSP_MIN_TOKEN 16u
#define INSP_MIN_B64_LEAF 8u
/* SECURITY: the JSON walkers re-scan each nested container, so work grows with depth times
 * size. Bytes re-scanned may not pass INSP_WALK_FACTOR * len + INSP_WALK_SLACK: deep and
 * large arguments together are refused rather than scanned for seconds. */
#define INSP_WALK_FACTOR 32u
#define INSP_WALK_SLACK (1024u * 1024u)

/* Bits of struct insp_leaf.layers: what was decoded or removed to reach a form. */
enum insp_layer {
    /* %XX bytes and IIS-style %uXXXX; '+' is not special. One round per step. */
    INSP_LAYER_PERCENT = 1u << 0,
    /* &lt; &#47; &#x2f; (';' optional after numeric references) and the named entities lt
     * gt amp quot apos nbsp sol bsol colon period comma lpar rpar Tab NewLine and a few
     * more punctuation names. */
    INSP_LAYER_HTML = 1u << 1,
    /* \uXXXX (surrogate pairs joined, lone ones kept), \u{X..}, \UXXXXXXXX, and \xXX as
     * one byte, written inside an already decoded string. */
    INSP_LAYER_UNICODE_ESC = 1u << 2,
    /* A base64 token (std or url-safe, padding optional) of >= INSP_MIN_TOKEN characters,
     * or a whole leaf of >= INSP_MIN_B64_LEAF, replaced in place by what it decodes to,
     * when that is mostly printable UTF-8 text (a decode under 24 bytes: printable ASCII, at
     * least 70% letters, digits and spaces; a short whole leaf: a multiple of 4 long, as
     * encoders write it). Binary payloads are left as they are. */
    INSP_LAYER_BASE64 = 1u << 3,
    /* An even-length hex token (optional 0x) of >= INSP_MIN_TOKEN digits, likewise. */
    INSP_LAYER_HEX = 1u << 4,
    /* Zero-width and bidi controls removed (U+200B-U+200F, U+202A-U+202E, U+2060-U+2064,
     * U+2066-U+2069, U+FEFF, soft hyphen, U+034F, U+061C, U+180E, Hangul fillers); ZWJ and
     * ZWNJ are kept between two non-Latin characters (emoji, Indic, Arabic). Unicode tag
     * characters are not only removed: U+E0020-U+E007E become the ASCII they spell, since
     * hidden "ASCII smuggling" text is exactly what a model reads and a scanner must see. */
    INSP_LAYER_INVISIBLE = 1u << 5,
    /* NFKC (libunistring) changed the text: fullwidth forms, ligatures, math letters. */
    INSP_LAYER_NFKC = 1u << 6,
    /* Cyrillic and Greek letters that look Latin folded to Latin, in words that mix them
     * with Latin letters (іgnоrе) or, when the text holds Latin letters, in words made only
     * of such look-alikes (раураl). Plain Russian or Greek text is left alone. */
    INSP_LAYER_CONFUSABLE = 1u << 7,
    /* Paths in the text canonicalised (path.c): separators, '.', '..', $HOME. Last in the
     * chain, so it sees every decoded form. */
    INSP_LAYER_PATH = 1u << 8,
};
#define INSP_LAYERS_ALL ((INSP_LAYER_PATH << 1) - 1u)

enum insp_leaf_kind {
    INSP_LEAF_STRING = 0, /* a string value */
    INSP_LEAF_KEY,        /* an object key */
    INSP_LEAF_NUMBER,     /* a number, as its JSON text; no derived forms */
    INSP_LEAF_TEXT,       /* the text given to insp_normalize_text() */
};

/* One form of one leaf. Everything points into storage owned by the walk: valid only
 * during the callback.
 *
 * path: "$" for the root, ".name" for a member whose key is [A-Za-z_$][A-Za-z0-9_$]*,
 * ["..."] otherwise (the key JSON-escaped: '"', '\\' and control characters), "[i]" for an
 * array element. A key is a leaf of its own, with the path of its member followed by
 * "{key}": in {"a":{"b c":1}} the leaves are $.a{key}, $.a["b c"]{key} and $.a["b c"].
 * path is NUL-terminated and path_len long; "" for insp_normalize_text().
 *
 * text: len bytes, not NUL-terminated in general, and may hold any byte (a decoded %00 or
 * \x80 stays as it is): always use len. */
struct insp_leaf {
    const char *path;
    size_t path_len;
    const char *text;
    size_t len;
    unsigned layers; /* enum insp_layer bits; 0 for the raw decoded string */
    enum insp_leaf_kind kind;
};

/* Called once per form. A non-zero return stops the walk and is returned. */
typedef int (*insp_leaf_fn)(void *ctx, const struct insp_leaf *leaf);

/* Walks json[0..len), a JSON value already validated (jrpc_peek), and calls fn for each
 * object key, string value and number: first the raw decoded text (layers 0), then each
 * distinct derived form in chain order. true, false and null are not leaves. Members and
 * elements come in document order, a key before its value.
 *
 * Returns 0; fn's non-zero value; ERR_TOO_BIG past INSP_MAX_LEAVES leaves,
 * INSP_MAX_NORMALIZED_BYTES derived bytes, INSP_MAX_PATH bytes of path or the walk bound;
 * ERR_PARSE when json is not one JSON text as jrpc_peek() reads it (which includes nesting
 * deeper than CLAMPD_MAX_JSON_DEPTH), or a string or key holds a lone surrogate escape
 * (SECURITY: peers read those differently, so the text cannot be known); ERR_NOMEM.
 * SECURITY: on any error, forms of some leaves have not been seen: the caller must deny.
 * fn may have been called for the leaves before the error. Allocates only scratch space,
 * freed on return. */
int insp_flatten(const char *json, size_t len, insp_leaf_fn fn, void *ctx);

/* The same chain of forms for one plain text (a tool description, a result text): fn is
 * called with path "" and kind INSP_LEAF_TEXT for text itself, then for each distinct
 * derived form. text may hold any bytes; it may be NULL when len is 0. Returns as
 * insp_flatten(). */
int insp_normalize_text(const char *text, size_t len, insp_leaf_fn fn, void *ctx);

/* Writes text without what a person reading it would not see but a model would read:
 * ANSI escape sequences (CSI, OSC, DCS...), other C0 and C1 control characters (tab, CR
 * and LF stay), zero-width and bidi controls, and Unicode tag characters (removed, not
 * turned into ASCII). Bytes that are not UTF-8 stay. Returns 1 (out holds the text), 0
 * (nothing to remove; out unspecified) or a negative error. */
int insp_strip_hidden(const char *in, size_t len, struct dbuf *out);

/* Short name of one layer bit ("percent", "html", ...), or "?" for anything else. */
const char *insp_layer_name(unsigned layer);

/* ---- internal to the inspect module (normalize.c and decode.c) ---------------------- */

/* One decoding step: writes the decoded text of in[0..len) to out (which the caller has
 * reset) and returns 1, or returns 0 when there is nothing to decode (out is then
 * unspecified), or a negative error (ERR_TOO_BIG when out's maximum is reached). */
typedef int (*insp__decode_fn)(const char *in, size_t len, struct dbuf *out);

int insp__percent(const char *in, size_t len, struct dbuf *out);
int insp__html(const char *in, size_t len, struct dbuf *out);
int insp__unicode_esc(const char *in, size_t len, struct dbuf *out);
int insp__base64(const char *in, size_t len, struct dbuf *out);
int insp__hex(const char *in, size_t len, struct dbuf *out);
int insp__path(const char *in, size_t len, struct dbuf *out);

/* UTF-8 sequences are decoded with clampd_utf8_next() (core). */
/* Appends the UTF-8 encoding of cp (<= 0x10FFFF, no surrogate) to out. */
int insp__put_utf8(struct dbuf *out, unsigned cp);

#endif
