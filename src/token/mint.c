/*
 * mint: scope tokens, JWS compact (RFC 7515) signed with EdDSA / Ed25519 (RFC 8037).
 *
 *   claims ─check─▶ payload JSON ─┐
 *   kid ─▶ header JSON ───────────┴─ base64url ─▶ "H.P" ─Ed25519─▶ "H.P.S"
 *
 * Every limit here is one the verifier (src/token/verify.c) enforces too, so a token clampd
 * mints is one a downstream accepts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token/token-int.h"

#define MINT_JTI_BYTES 16

/* verify.c stands alone, so it carries its own copy of these: a verifier that refused
 * arguments clampd accepted would refuse every token for them. */
_Static_assert(CLAMPD_VERIFY_MAX_DEPTH == CLAMPD_MAX_JSON_DEPTH, "canonical depth differs");
_Static_assert(CLAMPD_VERIFY_MAX_CANONICAL == CLAMPD_MAX_CANONICAL, "canonical size differs");

static size_t b64_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, TOK__B64URL) - 1; /* without the NUL */
}

bool tok__scope_is_valid(const char *s, size_t max)
{
    bool want_token = true;
    size_t n = 0;

    /* RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by one space. */
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= max)
            return false;
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
    return n == 0 || !want_token;
}

static bool hex64_is_valid(const char *s)
{
    size_t i;

    for (i = 0; i < CLAMPD_TOKEN_BINDING_LEN && s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == CLAMPD_TOKEN_BINDING_LEN && s[i] == '\0';
}

/* Checks c; fills the effective issue time and lifetime. */
static int mint_check(const struct tok_claims *c, int64_t *iat, long *ttl)
{
    *ttl = c->ttl ? c->ttl : TOK_DEFAULT_TTL;
    *iat = c->iat ? c->iat : (int64_t)time(NULL);
    if (!c->sub || !*c->sub || strlen(c->sub) > CLAMPD_TOKEN_MAX_SUB)
        return ERR_INVAL;
    if (!c->tool || !*c->tool || !c->binding || !hex64_is_valid(c->binding))
        return ERR_INVAL;
    if (c->scope && !tok__scope_is_valid(c->scope, CLAMPD_TOKEN_MAX_SCOPE))
        return ERR_INVAL;
    if (c->iss && strlen(c->iss) > CLAMPD_TOKEN_MAX_ISS)
        return ERR_INVAL;
    if (*ttl < 1 || *ttl > TOK_MAX_TTL || *iat <= 0 || *iat > ((int64_t)1 << 40))
        return ERR_INVAL;
    return 0;
}

/* The payload's JSON text (malloc'd), claims in a fixed order. jansson refuses strings
 * that are not UTF-8, so a bad sub, tool or iss fails here with ERR_INVAL. */
static int mint_payload(const struct tok_claims *c, int64_t iat, long ttl, char **out)
{
    unsigned char raw[MINT_JTI_BYTES];
    char jti[CLAMPD_TOKEN_JTI_LEN + 1];
    json_t *p;

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(jti, sizeof(jti), raw, sizeof(raw), TOK__B64URL);
    p = json_pack("{s:s*, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", c->iss, "sub", c->sub, "tool",
                  c->tool, "binding", c->binding, "scope", c->scope ? c->scope : "", "iat",
                  (json_int_t)iat, "exp", (json_int_t)(iat + ttl), "jti", jti);
    if (!p)
        return ERR_INVAL;
    *out = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return *out ? 0 : ERR_NOMEM;
}

int tok_mint(const struct tok_keyring *kr, const struct tok_claims *c, char **token)
{
    unsigned char sig[crypto_sign_BYTES];
    char header[128], *payload = NULL, *t = NULL;
    size_t hn, pn, len, at;
    int64_t iat;
    long ttl;
    int rc = ERR_INVAL;

    if (token)
        *token = NULL;
    if (!kr || !c || !token)
        goto out;
    rc = mint_check(c, &iat, &ttl);
    if (rc)
        goto out;
    rc = mint_payload(c, iat, ttl, &payload);
    if (rc)
        goto out;
    /* The kid is base64url, so it needs no escaping. */
    hn = (size_t)snprintf(header, sizeof(header),
                          "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kr->keys[0].kid);
    pn = strlen(payload);
    len = b64_len(hn) + 1 + b64_len(pn) + 1 + b64_len(sizeof(sig));
    /* SECURITY: a token the verifier would refuse for its size is not minted. */
    if (len > CLAMPD_TOKEN_MAX_LEN) {
        rc = ERR_TOO_BIG;
        goto out;
    }
    rc = ERR_NOMEM;
    t = malloc(len + 1);
    if (!t)
        goto out;
    sodium_bin2base64(t, b64_len(hn) + 1, (const unsigned char *)header, hn, TOK__B64URL);
    at = b64_len(hn);
    t[at++] = '.';
    sodium_bin2base64(t + at, b64_len(pn) + 1, (const unsigned char *)payload, pn, TOK__B64URL);
    at += b64_len(pn);
    rc = ERR_CRYPTO;
    if (crypto_sign_detached(sig, NULL, (const unsigned char *)t, at, kr->sk))
        goto out;
    t[at++] = '.';
    sodium_bin2base64(t + at, b64_len(sizeof(sig)) + 1, sig, sizeof(sig), TOK__B64URL);
    *token = t;
    t = NULL;
    rc = 0;
out:
    free(payload);
    free(t);
    return rc;
}
