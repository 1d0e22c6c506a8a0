/*
 * verify: the stand-alone verifier of clampd scope tokens (include/clampd/verify.h).
 *
 *   token ─split─▶ header ─alg, kid─▶ key ─Ed25519─▶ claims ─time, tool─▶ binding ─▶ jti
 *          │         (parsed before the signature: only to pick the key)    │
 *          └─ any failure: a typed status and a message, never VALID        └─ replay cache
 *
 * This file is compiled into clampd and is also meant to be copied into a downstream
 * project with its header: it includes nothing of clampd but that header, and needs only
 * libc, libsodium and jansson. That is why it carries its own canonical JSON writer (the
 * twin of src/json/canonical.c, which tests/unit/test_token.c holds it equal to) and its own
 * limits rather than src/core/limits.h. It is one file, past the house size, on purpose:
 * a downstream copies one header and one source.
 */
#include "clampd/verify.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* SECURITY: a clampd header is {"alg":"EdDSA","kid":<43 chars>,"typ":"JWT"}, ~80 bytes. */
#define VFY_MAX_HEADER 1024
#define VFY_SIG_B64_LEN 86 /* 64 bytes, base64url without padding */
#define VFY_JTI_BYTES 16
/* Canonical JSON limits, held equal to clampd's by src/token/mint.c. */
#define CANON_MAX_DEPTH CLAMPD_VERIFY_MAX_DEPTH
#define CANON_MAX_BYTES CLAMPD_VERIFY_MAX_CANONICAL
#define CANON_MAX_DIGITS 17
#define CANON_EXACT_INT 9007199254740992LL
#define REPLAY_MIN_SLOTS 64u
/* SECURITY: times past 2^40 s (year 36812) are refused, so that exp + leeway cannot overflow. */
#define VFY_MAX_TIME ((int64_t)1 << 40)

struct vfy_key {
    char kid[CLAMPD_TOKEN_MAX_KID + 1];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

/* One remembered jti; exp == 0 marks an empty slot (a valid token's exp is > 0). */
struct replay_slot {
    unsigned char jti[VFY_JTI_BYTES];
    int64_t exp;
};

struct clampd_verifier {
    struct vfy_key keys[CLAMPD_VERIFY_MAX_KEYS];
    size_t n_keys;
    long leeway;
    /* Open addressing with linear probing, kept at most half full; expired entries leave
     * only when the table is rebuilt, so there are no tombstones. */
    struct replay_slot *slots;
    size_t n_slots, max_slots, count, capacity;
    int64_t min_exp; /* earliest exp in the table: nothing to purge before it passes */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
};

static const char *const status_names[CLAMPD_VERIFY__COUNT] = {
    "error",       "valid",         "bad_format",       "bad_alg",  "bad_header",
    "unknown_kid", "bad_signature", "bad_claims",       "expired",  "not_yet_valid",
    "wrong_tool",  "bad_arguments", "binding_mismatch", "replayed", "replay_cache_full",
};

const char *clampd_verify_status_name(enum clampd_verify_status s)
{
    if ((int)s < 0 || s >= CLAMPD_VERIFY__COUNT)
        return "unknown";
    return status_names[s];
}

/* ---- messages ---- */

static enum clampd_verify_status fail(struct clampd_verify_result *res,
                                      enum clampd_verify_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum clampd_verify_status fail(struct clampd_verify_result *res,
                                      enum clampd_verify_status st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    res->status = st;
    return st;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies at most 40 bytes of s[0..n) with anything but printable ASCII as '?': names in
 * messages come from the token, and a log line must not carry escapes or newlines. */
static const char *printable(const char *s, size_t n, char out[48])
{
    size_t i, k = 0;

    for (i = 0; i < n && k < 40; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
    return out;
}

/* ---- base64url ---- */

static bool is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Decodes exactly the n characters of s. SECURITY: strict: only the URL-safe alphabet, no
 * padding, and libsodium refuses unused low bits that are not zero, so every byte string has
 * one encoding and a signature cannot be re-encoded into a second valid token. */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    if (!is_b64url(s, n))
        return -1;
    return sodium_base642bin(out, cap, s, n, NULL, len, NULL, B64URL) == 0 ? 0 : -1;
}

/* ---- canonical JSON, hashed as it is written (the twin of src/json/canonical.c) ---- */

struct canon_sink {
    crypto_hash_sha256_state st;
    size_t total; /* bytes written so far */
    size_t n;     /* bytes staged in buf */
    unsigned char buf[4096];
};

struct canon_member {
    const char *key;
    size_t len;
    json_t *val;
};

static int canon_value(const json_t *v, struct canon_sink *s, int depth);

static int sink_add(struct canon_sink *s, const void *mem, size_t len)
{
    const unsigned char *p = mem;

    /* SECURITY: the same ceiling as clampd's, so both refuse the same arguments. */
    if (len > CANON_MAX_BYTES - s->total)
        return -1;
    s->total += len;
    while (len > 0) {
        size_t k = sizeof(s->buf) - s->n;
        if (k > len)
            k = len;
        memcpy(s->buf + s->n, p, k);
        s->n += k;
        p += k;
        len -= k;
        if (s->n == sizeof(s->buf)) {
            crypto_hash_sha256_update(&s->st, s->buf, s->n);
            s->n = 0;
        }
    }
    return 0;
}

static int sink_addc(struct canon_sink *s, char c)
{
    return sink_add(s, &c, 1);
}

/* Only '"', '\\' and U+0000..U+001F are escaped (short forms where JSON has them, else
 * lowercase \u00xx); everything else, non-ASCII included, is copied raw. */
static int canon_string(const char *str, size_t len, struct canon_sink *s)
{
    static const char hex[] = "0123456789abcdef";
    static const char plain[] = "\"\\\b\f\n\r\t";
    static const char short_form[] = "\"\\bfnrt";
    size_t i, run = 0;
    int rc = sink_addc(s, '"');

    for (i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)str[i];
        const char *hit;
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = sink_add(s, str + run, i - run);
        run = i + 1;
        hit = memchr(plain, c, sizeof(plain) - 1);
        if (rc == 0 && hit) {
            esc[1] = short_form[hit - plain];
            rc = sink_add(s, esc, 2);
        } else if (rc == 0) {
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            rc = sink_add(s, esc, 6);
        }
    }
    if (rc == 0)
        rc = sink_add(s, str + run, len - run);
    return rc ? rc : sink_addc(s, '"');
}

/* Shortest round-trip significand of d (finite, > 0) as digits, with d == 0.DIGITS × 10^n.
 * Returns the digit count, or -1. */
static int canon_shortest(double d, char digits[CANON_MAX_DIGITS + 1], int *n)
{
    char text[40], *end;
    const char *p;
    int prec, k = 0;
    long e;

    for (prec = 0; prec < CANON_MAX_DIGITS; prec++) {
        snprintf(text, sizeof(text), "%.*e", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    for (p = text; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && k < CANON_MAX_DIGITS)
            digits[k++] = *p;
    if (*p != 'e' || k == 0)
        return -1;
    e = strtol(p + 1, &end, 10);
    if (*end || e < -400 || e > 400)
        return -1;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    *n = (int)e + 1;
    return k;
}

/* ECMAScript Number::toString layout (ECMA-262 §6.1.6.1.20) of k digits, point at n. */
static int canon_layout(const char *dg, int k, int n, struct canon_sink *s)
{
    static const char zeros[] = "000000000000000000000";
    char exp[16]; /* "e+" and an int; in practice |e| <= 400 */
    int rc, e;

    if (k <= n && n <= 21) {
        rc = sink_add(s, dg, (size_t)k);
        return rc ? rc : sink_add(s, zeros, (size_t)(n - k));
    }
    if (0 < n && n <= 21) {
        rc = sink_add(s, dg, (size_t)n);
        rc = rc ? rc : sink_addc(s, '.');
        return rc ? rc : sink_add(s, dg + n, (size_t)(k - n));
    }
    if (-6 < n && n <= 0) {
        rc = sink_add(s, "0.", 2);
        rc = rc ? rc : sink_add(s, zeros, (size_t)-n);
        return rc ? rc : sink_add(s, dg, (size_t)k);
    }
    e = n - 1;
    rc = sink_addc(s, dg[0]);
    if (rc == 0 && k > 1) {
        rc = sink_addc(s, '.');
        rc = rc ? rc : sink_add(s, dg + 1, (size_t)(k - 1));
    }
    snprintf(exp, sizeof(exp), "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    return rc ? rc : sink_add(s, exp, strlen(exp));
}

static int canon_double(double d, struct canon_sink *s)
{
    char digits[CANON_MAX_DIGITS + 1];
    int k, n = 0;

    if (!isfinite(d))
        return -1;
    if (d == 0)
        return sink_addc(s, '0'); /* -0 too, as ECMAScript prints it */
    if (d < 0 && sink_addc(s, '-'))
        return -1;
    k = canon_shortest(fabs(d), digits, &n);
    return k < 0 ? -1 : canon_layout(digits, k, n, s);
}

/* Integers beyond ±2^53 are hashed as the double a JavaScript reader would hold. */
static int canon_integer(json_int_t i, struct canon_sink *s)
{
    char text[32];

    if (i < -CANON_EXACT_INT || i > CANON_EXACT_INT)
        return canon_double((double)i, s);
    snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, i);
    return sink_add(s, text, strlen(text));
}

/* Code point order of UTF-8 keys is unsigned byte order; a prefix sorts first. */
static int canon_member_cmp(const void *a, const void *b)
{
    const struct canon_member *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);

    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int canon_object(const json_t *obj, struct canon_sink *s, int depth)
{
    json_t *o = (json_t *)obj; /* jansson's iterators take a non-const object */
    size_t n = json_object_size(o), i = 0;
    struct canon_member *m;
    void *it;
    int rc = -1;

    if (n == 0)
        return sink_add(s, "{}", 2);
    m = calloc(n, sizeof(*m));
    if (!m)
        return -1;
    for (it = json_object_iter(o); it && i < n; it = json_object_iter_next(o, it), i++) {
        m[i].key = json_object_iter_key(it);
        m[i].len = json_object_iter_key_len(it);
        m[i].val = json_object_iter_value(it);
    }
    qsort(m, i, sizeof(*m), canon_member_cmp);
    rc = sink_addc(s, '{');
    for (size_t j = 0; j < i && rc == 0; j++) {
        if (j > 0)
            rc = sink_addc(s, ',');
        rc = rc ? rc : canon_string(m[j].key, m[j].len, s);
        rc = rc ? rc : sink_addc(s, ':');
        rc = rc ? rc : canon_value(m[j].val, s, depth);
    }
    rc = rc ? rc : sink_addc(s, '}');
    free(m);
    return rc;
}

static int canon_array(const json_t *arr, struct canon_sink *s, int depth)
{
    size_t n = json_array_size(arr);
    int rc = sink_addc(s, '[');

    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = sink_addc(s, ',');
        rc = rc ? rc : canon_value(json_array_get(arr, i), s, depth);
    }
    return rc ? rc : sink_addc(s, ']');
}

static int canon_value(const json_t *v, struct canon_sink *s, int depth)
{
    if (!v)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        /* SECURITY: bounds recursion (and ends a cyclic value) at clampd's depth. */
        if (depth >= CANON_MAX_DEPTH)
            return -1;
        return json_is_object(v) ? canon_object(v, s, depth + 1) : canon_array(v, s, depth + 1);
    case JSON_STRING: return canon_string(json_string_value(v), json_string_length(v), s);
    case JSON_INTEGER: return canon_integer(json_integer_value(v), s);
    case JSON_REAL: return canon_double(json_real_value(v), s);
    case JSON_TRUE: return sink_add(s, "true", 4);
    case JSON_FALSE: return sink_add(s, "false", 5);
    case JSON_NULL: return sink_add(s, "null", 4);
    }
    return -1;
}

int clampd_verify_call_binding(const char *tool, const json_t *arguments,
                               char hex[CLAMPD_TOKEN_BINDING_LEN + 1])
{
    struct canon_sink *s;
    unsigned char md[crypto_hash_sha256_BYTES];
    int rc = -1;

    hex[0] = '\0';
    if (!tool)
        return -1;
    s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->total = s->n = 0;
    crypto_hash_sha256_init(&s->st);
    /* The wrapper's two keys are fixed and already in code point order. */
    rc = sink_add(s, "{\"params\":", 10);
    if (rc == 0 && (!arguments || json_is_null(arguments)))
        rc = sink_add(s, "{}", 2);
    else if (rc == 0)
        rc = canon_value(arguments, s, 1); /* one level inside the wrapper, as clampd */
    rc = rc ? rc : sink_add(s, ",\"tool\":", 8);
    rc = rc ? rc : canon_string(tool, strlen(tool), s);
    rc = rc ? rc : sink_addc(s, '}');
    if (rc == 0) {
        crypto_hash_sha256_update(&s->st, s->buf, s->n);
        crypto_hash_sha256_final(&s->st, md);
        sodium_bin2hex(hex, CLAMPD_TOKEN_BINDING_LEN + 1, md, sizeof(md));
    }
    free(s);
    return rc ? -1 : 0;
}

/* ---- JWKS ---- */

/* A string member of o, or NULL when absent; *bad is set when present but not a string. */
static const char *member_str(const json_t *o, const char *key, bool *bad)
{
    const json_t *v = json_object_get(o, key);

    if (v && !json_is_string(v))
        *bad = true;
    return json_string_value(v);
}

static bool kid_ok(const char *kid, size_t n)
{
    if (n == 0 || n > CLAMPD_TOKEN_MAX_KID)
        return false;
    for (size_t i = 0; i < n; i++)
        if (kid[i] < 0x20 || kid[i] >= 0x7f)
            return false;
    return true;
}

/* Reads one entry of "keys" into *k. Returns 1 (an Ed25519 key), 0 (another kind of key,
 * skipped) or -1 (malformed, with err set). */
static int jwks_entry(const json_t *e, size_t i, struct vfy_key *k, char *err, size_t errlen)
{
    bool bad = false;
    const char *kty, *crv, *x, *kid, *alg, *use;
    size_t n = 0;

    if (!json_is_object(e)) {
        set_err(err, errlen, "JWKS key %zu is not an object", i);
        return -1;
    }
    kty = member_str(e, "kty", &bad);
    crv = member_str(e, "crv", &bad);
    x = member_str(e, "x", &bad);
    kid = member_str(e, "kid", &bad);
    alg = member_str(e, "alg", &bad);
    use = member_str(e, "use", &bad);
    if (bad) {
        set_err(err, errlen, "JWKS key %zu has a member that is not a string", i);
        return -1;
    }
    if (!kty || strcmp(kty, "OKP") != 0 || !crv || strcmp(crv, "Ed25519") != 0)
        return 0;
    if ((alg && strcmp(alg, "EdDSA") != 0) || (use && strcmp(use, "sig") != 0))
        return 0; /* an Ed25519 key meant for something else */
    if (json_object_get(e, "d")) {
        /* SECURITY: a JWKS is public; one holding a private key is a leak to report. */
        set_err(err, errlen, "JWKS key %zu holds a private key (\"d\"): publish public keys only",
                i);
        return -1;
    }
    if (!kid || !kid_ok(kid, json_string_length(json_object_get(e, "kid")))) {
        set_err(err, errlen, "JWKS key %zu has no kid of 1..%d printable characters", i,
                CLAMPD_TOKEN_MAX_KID);
        return -1;
    }
    if (!x ||
        b64url_decode(x, json_string_length(json_object_get(e, "x")), k->pk, sizeof(k->pk), &n) ||
        n != sizeof(k->pk)) {
        set_err(err, errlen, "JWKS key %zu: x is not 32 bytes of base64url", i);
        return -1;
    }
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    return 1;
}

static int jwks_parse(const char *text, size_t len, struct vfy_key *keys, size_t *n_keys, char *err,
                      size_t errlen)
{
    json_error_t jerr;
    json_t *doc = NULL, *arr;
    size_t n = 0, i;
    int rc = -1, r;

    if (!text || len > CLAMPD_VERIFY_MAX_JWKS) {
        set_err(err, errlen, "JWKS missing or larger than %u bytes", CLAMPD_VERIFY_MAX_JWKS);
        goto out;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    arr = json_object_get(doc, "keys");
    if (!doc || !json_is_array(arr)) {
        set_err(err, errlen, "JWKS is not a JSON object with a \"keys\" array%s%s", doc ? "" : ": ",
                doc ? "" : jerr.text);
        goto out;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        if (n == CLAMPD_VERIFY_MAX_KEYS) {
            set_err(err, errlen, "JWKS has more than %d Ed25519 keys", CLAMPD_VERIFY_MAX_KEYS);
            goto out;
        }
        r = jwks_entry(json_array_get(arr, i), i, &keys[n], err, errlen);
        if (r < 0)
            goto out;
        for (size_t j = 0; r > 0 && j < n; j++)
            if (strcmp(keys[j].kid, keys[n].kid) == 0) {
                set_err(err, errlen, "JWKS has two keys with kid %s", keys[n].kid);
                goto out;
            }
        n += (size_t)r;
    }
    if (n == 0) {
        set_err(err, errlen, "JWKS has no Ed25519 signing key");
        goto out;
    }
    *n_keys = n;
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int clampd_verifier_new(const char *jwks, size_t len, const struct clampd_verify_opts *opts,
                        struct clampd_verifier **out, char *err, size_t errlen)
{
    struct clampd_verify_opts dflt = {0};
    struct clampd_verifier *v = NULL;
    size_t cap;
    int rc = -1;

    if (out)
        *out = NULL;
    if (!opts)
        opts = &dflt;
    cap = opts->replay_capacity ? opts->replay_capacity : CLAMPD_VERIFY_DEFAULT_REPLAY;
    if (!out || opts->leeway < 0 || opts->leeway > CLAMPD_VERIFY_MAX_LEEWAY ||
        cap > CLAMPD_VERIFY_MAX_REPLAY) {
        set_err(err, errlen, "invalid verifier options");
        goto out;
    }
    if (sodium_init() < 0) {
        set_err(err, errlen, "cannot initialise libsodium");
        goto out;
    }
    v = calloc(1, sizeof(*v));
    if (!v) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (jwks_parse(jwks, len, v->keys, &v->n_keys, err, errlen))
        goto out;
    v->leeway = opts->leeway;
    v->capacity = cap;
    for (v->max_slots = REPLAY_MIN_SLOTS; v->max_slots / 2 < cap;)
        v->max_slots *= 2;
    randombytes_buf(v->hkey, sizeof(v->hkey));
    *out = v;
    v = NULL;
    rc = 0;
out:
    clampd_verifier_free(v);
    return rc;
}

int clampd_verifier_set_jwks(struct clampd_verifier *v, const char *jwks, size_t len, char *err,
                             size_t errlen)
{
    struct vfy_key *keys;
    size_t n = 0;
    int rc = -1;

    if (!v) {
        set_err(err, errlen, "no verifier");
        return -1;
    }
    keys = calloc(CLAMPD_VERIFY_MAX_KEYS, sizeof(*keys));
    if (!keys) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (jwks_parse(jwks, len, keys, &n, err, errlen) == 0) {
        memcpy(v->keys, keys, n * sizeof(*keys));
        v->n_keys = n;
        rc = 0;
    }
    free(keys);
    return rc;
}

void clampd_verifier_free(struct clampd_verifier *v)
{
    if (!v)
        return;
    free(v->slots);
    sodium_memzero(v, sizeof(*v));
    free(v);
}

/* ---- replay cache ---- */

static size_t replay_home(const struct clampd_verifier *v, const unsigned char *jti)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t x = 0;

    /* SipHash with a per-verifier key: jti are random, but a keyed hash keeps probing short
     * whatever a minter chooses. */
    crypto_shorthash(h, jti, VFY_JTI_BYTES, v->hkey);
    for (size_t i = 0; i < sizeof(h); i++)
        x = (x << 8) | h[i];
    return (size_t)(x & (v->n_slots - 1));
}

/* The slot holding jti, or the empty slot where it would go. The table is never full. */
static struct replay_slot *replay_probe(const struct clampd_verifier *v, const unsigned char *jti)
{
    size_t i = replay_home(v, jti);

    while (v->slots[i].exp != 0 && memcmp(v->slots[i].jti, jti, VFY_JTI_BYTES) != 0)
        i = (i + 1) & (v->n_slots - 1);
    return &v->slots[i];
}

static bool replay_live(const struct clampd_verifier *v, int64_t exp, int64_t now)
{
    return exp != 0 && now < exp + v->leeway; /* such a token could still pass */
}

/* Moves the live entries into a table of n slots. Returns 0 or -1 (no memory). */
static int replay_rebuild(struct clampd_verifier *v, size_t n, int64_t now)
{
    struct replay_slot *old = v->slots;
    size_t old_n = v->n_slots;

    v->slots = calloc(n, sizeof(*v->slots));
    if (!v->slots) {
        v->slots = old;
        return -1;
    }
    v->n_slots = n;
    v->count = 0;
    v->min_exp = 0;
    for (size_t i = 0; old && i < old_n; i++) {
        if (!replay_live(v, old[i].exp, now))
            continue;
        *replay_probe(v, old[i].jti) = old[i];
        if (v->count++ == 0 || old[i].exp < v->min_exp)
            v->min_exp = old[i].exp;
    }
    free(old);
    return 0;
}

/* Makes room for one more entry: drops expired ones, grows up to max_slots. Returns
 * CLAMPD_VERIFY_VALID (room made), _REPLAY_FULL or _ERROR (no memory). */
static enum clampd_verify_status replay_make_room(struct clampd_verifier *v, int64_t now)
{
    size_t n = v->n_slots ? v->n_slots : REPLAY_MIN_SLOTS, live = 0;

    if (v->slots && v->count < v->capacity && v->count + 1 <= v->n_slots / 2)
        return CLAMPD_VERIFY_VALID;
    if (v->slots && replay_live(v, v->min_exp, now))
        live = v->count; /* the earliest has not expired, so none has: skip the scan */
    else if (v->slots)
        for (size_t i = 0; i < v->n_slots; i++)
            live += replay_live(v, v->slots[i].exp, now);
    while (live + 1 > n / 2 && n < v->max_slots)
        n *= 2;
    if ((!v->slots || n != v->n_slots || live < v->count) && replay_rebuild(v, n, now))
        return CLAMPD_VERIFY_ERROR;
    if (!v->slots)
        return CLAMPD_VERIFY_ERROR;
    /* SECURITY: fail closed: forgetting a live jti would let its token be replayed. */
    if (v->count >= v->capacity || v->count + 1 > v->n_slots / 2)
        return CLAMPD_VERIFY_REPLAY_FULL;
    return CLAMPD_VERIFY_VALID;
}

/* Records jti until exp. Returns CLAMPD_VERIFY_VALID (recorded, first use), _REPLAYED,
 * _REPLAY_FULL or _ERROR. */
static enum clampd_verify_status replay_add(struct clampd_verifier *v, const unsigned char *jti,
                                            int64_t exp, int64_t now)
{
    enum clampd_verify_status st;
    struct replay_slot *s;

    if (v->slots && replay_probe(v, jti)->exp != 0)
        return CLAMPD_VERIFY_REPLAYED;
    st = replay_make_room(v, now);
    if (st != CLAMPD_VERIFY_VALID)
        return st;
    s = replay_probe(v, jti);
    memcpy(s->jti, jti, VFY_JTI_BYTES);
    s->exp = exp;
    if (v->count++ == 0 || exp < v->min_exp)
        v->min_exp = exp;
    return CLAMPD_VERIFY_VALID;
}

static int jti_decode(const char *jti, size_t n, unsigned char out[VFY_JTI_BYTES])
{
    size_t len = 0;

    if (n != CLAMPD_TOKEN_JTI_LEN || b64url_decode(jti, n, out, VFY_JTI_BYTES, &len) ||
        len != VFY_JTI_BYTES)
        return -1;
    return 0;
}

int clampd_verifier_remember(struct clampd_verifier *v, const char *jti, int64_t exp)
{
    unsigned char raw[VFY_JTI_BYTES];
    int64_t now = (int64_t)time(NULL);
    enum clampd_verify_status st;

    if (!v || !jti || exp <= 0 || exp > VFY_MAX_TIME || jti_decode(jti, strlen(jti), raw))
        return -1;
    if (!replay_live(v, exp, now))
        return 0; /* its token has expired: there is nothing left to refuse */
    st = replay_add(v, raw, exp, now);
    return st == CLAMPD_VERIFY_VALID || st == CLAMPD_VERIFY_REPLAYED ? 0 : -1;
}

/* ---- tokens ---- */

struct vfy_parts {
    const char *hdr, *pay, *sig; /* base64url texts inside the token */
    size_t hdr_n, pay_n, sig_n;
};

static enum clampd_verify_status split_token(const char *token, struct vfy_parts *p,
                                             struct clampd_verify_result *res)
{
    size_t len = 0;
    const char *d1, *d2;

    while (len <= CLAMPD_TOKEN_MAX_LEN && token[len]) /* strnlen is not C11 */
        len++;
    if (len > CLAMPD_TOKEN_MAX_LEN)
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "token longer than %d bytes",
                    CLAMPD_TOKEN_MAX_LEN);
    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "not JWS compact: want three parts");
    p->hdr = token;
    p->hdr_n = (size_t)(d1 - token);
    p->pay = d1 + 1;
    p->pay_n = (size_t)(d2 - p->pay);
    p->sig = d2 + 1;
    p->sig_n = len - (size_t)(p->sig - token);
    if (p->hdr_n == 0 || p->pay_n == 0 || p->sig_n == 0)
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "not JWS compact: an empty part");
    if (!is_b64url(p->hdr, p->hdr_n) || !is_b64url(p->pay, p->pay_n) ||
        !is_b64url(p->sig, p->sig_n))
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "not JWS compact: not base64url");
    return CLAMPD_VERIFY_VALID;
}

/* Checks the protected header and finds its key. */
static enum clampd_verify_status check_header(const struct clampd_verifier *v,
                                              const struct vfy_parts *p, const struct vfy_key **key,
                                              struct clampd_verify_result *res)
{
    unsigned char buf[VFY_MAX_HEADER];
    char pr[48];
    size_t n = 0;
    json_t *h = NULL;
    const char *alg, *kid, *typ, *k;
    json_t *val;
    enum clampd_verify_status st = CLAMPD_VERIFY_VALID;

    if (b64url_decode(p->hdr, p->hdr_n, buf, sizeof(buf), &n))
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "header is not base64url of at most %d bytes",
                    VFY_MAX_HEADER);
    h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(h)) {
        st = fail(res, CLAMPD_VERIFY_BAD_FORMAT, "header is not a JSON object");
        goto out;
    }
    alg = json_string_value(json_object_get(h, "alg"));
    /* SECURITY: the one algorithm clampd signs with; "none", HS256 (a public key used as an
     * HMAC secret) and every other choice a token could make are refused before any key. */
    if (!alg || json_string_length(json_object_get(h, "alg")) != 5 || strcmp(alg, "EdDSA") != 0) {
        st = fail(res, CLAMPD_VERIFY_BAD_ALG, "header alg is %s, not EdDSA",
                  alg ? printable(alg, strlen(alg), pr) : "missing");
        goto out;
    }
    /* SECURITY: no crit, jku, jwk, x5u, b64 or other member that would change the rules. */
    json_object_foreach (h, k, val) {
        if (strcmp(k, "alg") != 0 && strcmp(k, "kid") != 0 && strcmp(k, "typ") != 0) {
            st = fail(res, CLAMPD_VERIFY_BAD_HEADER, "header member '%s' is not accepted",
                      printable(k, strlen(k), pr));
            goto out;
        }
    }
    typ = json_string_value(json_object_get(h, "typ"));
    if (json_object_get(h, "typ") && (!typ || strcmp(typ, "JWT") != 0)) {
        st = fail(res, CLAMPD_VERIFY_BAD_HEADER, "header typ is not \"JWT\"");
        goto out;
    }
    kid = json_string_value(json_object_get(h, "kid"));
    if (!kid || !kid_ok(kid, json_string_length(json_object_get(h, "kid")))) {
        st = fail(res, CLAMPD_VERIFY_BAD_HEADER, "header has no valid kid");
        goto out;
    }
    for (size_t i = 0; i < v->n_keys && !*key; i++)
        if (strcmp(v->keys[i].kid, kid) == 0)
            *key = &v->keys[i];
    if (!*key)
        st = fail(res, CLAMPD_VERIFY_UNKNOWN_KID, "kid %s is not in the JWKS",
                  printable(kid, strlen(kid), pr));
out:
    json_decref(h);
    return st;
}

/* A string claim without NUL of 1..max bytes (0..max when empty_ok), or NULL. */
static const char *claim_str(const json_t *c, const char *key, size_t max, bool empty_ok)
{
    const json_t *v = json_object_get(c, key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (!s || strlen(s) != n || n > max || (n == 0 && !empty_ok))
        return NULL;
    return s;
}

/* RFC 6749 §3.3: scope-tokens of %x21 / %x23-5B / %x5D-7E separated by single spaces. */
static bool scope_ok(const char *s)
{
    bool want_token = true;

    if (!*s)
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ') {
            if (want_token)
                return false;
            want_token = true;
        } else if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) {
            return false;
        } else {
            want_token = false;
        }
    }
    return !want_token;
}

static bool hex64_ok(const char *s)
{
    for (int i = 0; i < CLAMPD_TOKEN_BINDING_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[CLAMPD_TOKEN_BINDING_LEN] == '\0';
}

/* Reads the signed claims into res->claims (and the tool claim into *tool). */
static enum clampd_verify_status read_claims(const json_t *c, const char **tool,
                                             unsigned char jti[VFY_JTI_BYTES],
                                             struct clampd_verify_result *res)
{
    static const char *const known[] = {"sub", "tool", "binding", "scope",
                                        "iat", "exp",  "jti",     "iss"};
    struct clampd_token_claims *cl = &res->claims;
    const char *sub, *scope, *binding, *jtis, *iss = "", *k;
    json_t *val, *iat = json_object_get(c, "iat"), *exp = json_object_get(c, "exp");
    char pr[48];

    json_object_foreach ((json_t *)c, k, val) {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(k, known[i]) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0]))
            return fail(res, CLAMPD_VERIFY_BAD_CLAIMS, "unknown claim '%s'",
                        printable(k, strlen(k), pr));
    }
    sub = claim_str(c, "sub", CLAMPD_TOKEN_MAX_SUB, false);
    *tool = claim_str(c, "tool", CLAMPD_TOKEN_MAX_LEN, false);
    binding = claim_str(c, "binding", CLAMPD_TOKEN_BINDING_LEN, false);
    scope = claim_str(c, "scope", CLAMPD_TOKEN_MAX_SCOPE, true);
    jtis = claim_str(c, "jti", CLAMPD_TOKEN_JTI_LEN, false);
    if (json_object_get(c, "iss"))
        iss = claim_str(c, "iss", CLAMPD_TOKEN_MAX_ISS, true);
    if (!sub || !*tool || !binding || !hex64_ok(binding) || !scope || !scope_ok(scope) || !jtis ||
        jti_decode(jtis, strlen(jtis), jti) || !iss)
        return fail(res, CLAMPD_VERIFY_BAD_CLAIMS,
                    "claims sub, tool, binding, scope and jti must be present and well-formed");
    if (!json_is_integer(iat) || !json_is_integer(exp) || json_integer_value(iat) < 0 ||
        json_integer_value(exp) > VFY_MAX_TIME ||
        json_integer_value(exp) <= json_integer_value(iat) ||
        json_integer_value(exp) - json_integer_value(iat) > CLAMPD_TOKEN_MAX_LIFETIME)
        return fail(res, CLAMPD_VERIFY_BAD_CLAIMS,
                    "iat and exp must be integers with 0 < exp - iat <= %d",
                    CLAMPD_TOKEN_MAX_LIFETIME);
    snprintf(cl->sub, sizeof(cl->sub), "%s", sub);
    snprintf(cl->scope, sizeof(cl->scope), "%s", scope);
    snprintf(cl->iss, sizeof(cl->iss), "%s", iss);
    snprintf(cl->jti, sizeof(cl->jti), "%s", jtis);
    snprintf(cl->binding, sizeof(cl->binding), "%s", binding);
    cl->iat = json_integer_value(iat);
    cl->exp = json_integer_value(exp);
    return CLAMPD_VERIFY_VALID;
}

/* Everything the claims say about time, tool and call. */
static enum clampd_verify_status check_claims(const struct clampd_verifier *v, int64_t now,
                                              const char *claim_tool, const char *tool,
                                              const json_t *arguments,
                                              struct clampd_verify_result *res)
{
    const struct clampd_token_claims *cl = &res->claims;
    char hex[CLAMPD_TOKEN_BINDING_LEN + 1], p1[48], p2[48];

    if (now >= cl->exp + v->leeway)
        return fail(res, CLAMPD_VERIFY_EXPIRED, "token expired %lld s ago",
                    (long long)(now - cl->exp));
    if (cl->iat > now + v->leeway)
        return fail(res, CLAMPD_VERIFY_NOT_YET_VALID, "token issued %lld s in the future",
                    (long long)(cl->iat - now));
    if (strcmp(claim_tool, tool) != 0)
        return fail(res, CLAMPD_VERIFY_WRONG_TOOL, "token is for tool '%s', not '%s'",
                    printable(claim_tool, strlen(claim_tool), p1),
                    printable(tool, strlen(tool), p2));
    if (clampd_verify_call_binding(tool, arguments, hex))
        return fail(res, CLAMPD_VERIFY_BAD_ARGUMENTS,
                    "arguments have no canonical form (too deep, too big or not finite)");
    if (sodium_memcmp(hex, cl->binding, CLAMPD_TOKEN_BINDING_LEN) != 0)
        return fail(res, CLAMPD_VERIFY_BINDING_MISMATCH,
                    "token was issued for other arguments (binding %.12s..., these %.12s...)",
                    cl->binding, hex);
    return CLAMPD_VERIFY_VALID;
}

/* Signature, then claims, of a token whose parts and header are known good. */
static enum clampd_verify_status check_payload(struct clampd_verifier *v, int64_t now,
                                               const struct vfy_parts *p, const struct vfy_key *key,
                                               const char *tool, const json_t *arguments,
                                               struct clampd_verify_result *res)
{
    unsigned char sig[crypto_sign_BYTES + 1], jti[VFY_JTI_BYTES];
    unsigned char *pay = NULL;
    const char *claim_tool = NULL;
    json_t *c = NULL;
    size_t n = 0;
    enum clampd_verify_status st;

    if (!key)
        return fail(res, CLAMPD_VERIFY_ERROR, "no key");
    if (p->sig_n != VFY_SIG_B64_LEN || b64url_decode(p->sig, p->sig_n, sig, sizeof(sig), &n) ||
        n != crypto_sign_BYTES)
        return fail(res, CLAMPD_VERIFY_BAD_FORMAT, "signature is not 64 bytes of base64url");
    /* The signing input is the token's own text up to the second dot. */
    if (crypto_sign_verify_detached(sig, (const unsigned char *)p->hdr, p->hdr_n + 1 + p->pay_n,
                                    key->pk) != 0)
        return fail(res, CLAMPD_VERIFY_BAD_SIGNATURE, "signature does not verify with kid %s",
                    key->kid);
    pay = malloc(p->pay_n);
    if (!pay)
        return fail(res, CLAMPD_VERIFY_ERROR, "out of memory");
    if (b64url_decode(p->pay, p->pay_n, pay, p->pay_n, &n)) {
        st = fail(res, CLAMPD_VERIFY_BAD_FORMAT, "payload is not base64url");
        goto out;
    }
    c = json_loadb((const char *)pay, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        st = fail(res, CLAMPD_VERIFY_BAD_CLAIMS, "payload is not a JSON object");
        goto out;
    }
    st = read_claims(c, &claim_tool, jti, res);
    if (st == CLAMPD_VERIFY_VALID)
        st = check_claims(v, now, claim_tool, tool, arguments, res);
    if (st != CLAMPD_VERIFY_VALID)
        goto out;
    /* Last: only a token that passed everything else takes a place in the cache. */
    st = replay_add(v, jti, res->claims.exp, now);
    if (st == CLAMPD_VERIFY_REPLAYED)
        fail(res, st, "token %s was already used", res->claims.jti);
    else if (st == CLAMPD_VERIFY_REPLAY_FULL)
        fail(res, st, "replay cache full (%zu unexpired tokens)", v->count);
    else if (st != CLAMPD_VERIFY_VALID)
        st = fail(res, CLAMPD_VERIFY_ERROR, "out of memory");
    else
        snprintf(res->claims.kid, sizeof(res->claims.kid), "%s", key->kid);
out:
    json_decref(c);
    free(pay);
    return st;
}

enum clampd_verify_status clampd_verify_at(struct clampd_verifier *v, int64_t now,
                                           const char *token, const char *tool,
                                           const json_t *arguments,
                                           struct clampd_verify_result *res)
{
    const struct vfy_key *key = NULL;
    struct vfy_parts p = {0};
    enum clampd_verify_status st;

    if (!res)
        return CLAMPD_VERIFY_ERROR;
    memset(res, 0, sizeof(*res));
    if (!v || !token || !tool || now < 0 || now > VFY_MAX_TIME)
        return fail(res, CLAMPD_VERIFY_ERROR, "no verifier, token or tool, or a bad time");
    st = split_token(token, &p, res);
    if (st == CLAMPD_VERIFY_VALID)
        st = check_header(v, &p, &key, res);
    if (st == CLAMPD_VERIFY_VALID)
        st = check_payload(v, now, &p, key, tool, arguments, res);
    if (st == CLAMPD_VERIFY_VALID) {
        res->status = CLAMPD_VERIFY_VALID;
        snprintf(res->message, sizeof(res->message), "valid");
    } else {
        memset(&res->claims, 0, sizeof(res->claims));
    }
    return st;
}

enum clampd_verify_status clampd_verify(struct clampd_verifier *v, const char *token,
                                        const char *tool, const json_t *arguments,
                                        struct clampd_verify_result *res)
{
    return clampd_verify_at(v, (int64_t)time(NULL), token, tool, arguments, res);
}
