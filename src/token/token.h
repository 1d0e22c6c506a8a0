/*
 * token: scope tokens (DESIGN.md §2 stage 8), the key ring that signs them, and its JWKS.
 *
 *   <state_dir>/keys/keyring ──tok_keyring_open()──▶ struct tok_keyring (immutable)
 *                                                      ├─ tok_mint(claims) ──▶ JWS compact
 *                                                      └─ tok_jwks() ──▶ {"keys": [...]}
 *   clampd keys rotate ──tok_keyring_rotate()──▶ new current key, old one kept as retired
 *
 * A token is base64url(header).base64url(payload).base64url(Ed25519 signature), header
 * {"alg":"EdDSA","kid":KID,"typ":"JWT"}, payload {"iss"?, "sub", "tool", "binding", "scope",
 * "iat", "exp", "jti"}: docs/tokens.md. Verification is the stand-alone library
 * include/clampd/verify.h (src/token/verify.c), whose limits the minter keeps.
 *
 * Keys: one file, <state_dir>/keys/keyring (directory 0700, file 0600, replaced atomically
 * under an flock of the directory). It holds the current key's 32-byte seed and the public
 * halves of retired keys with the time each was retired; a retired key is pruned once every
 * token it can have signed has expired (TOK_RETIRED_KEEP seconds after retirement). kid is
 * the RFC 7638 JWK thumbprint of the public key. A ring is read once and never changes:
 * after a rotation by another process, open a new ring and swap it in whole.
 */
#ifndef CLAMPD_TOKEN_H
#define CLAMPD_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "clampd/verify.h"
#include "core/core.h"

#define TOK_DEFAULT_TTL 60                    /* seconds, when tok_claims.ttl is 0 */
#define TOK_MAX_TTL CLAMPD_TOKEN_MAX_LIFETIME /* longest lifetime tok_mint() grants */
#define TOK_KID_LEN 43                        /* SHA-256 thumbprint, base64url */
#define TOK_MAX_KEYS 32                       /* current + retired keys in one ring */
/* SECURITY: a retired key stays verifiable for the longest token it can have signed, plus
 * the largest leeway a verifier may allow. */
#define TOK_RETIRED_KEEP (TOK_MAX_TTL + CLAMPD_VERIFY_MAX_LEEWAY)

struct tok_keyring;

/* Opens the key ring of state_dir (which must exist): reads <state_dir>/keys/keyring, and
 * when create is set makes keys/ (0700) and a first key if there is none. Refuses a keys
 * directory or key file that is a symlink, not ours, or open to group or others, and a
 * malformed file. Retired keys past TOK_RETIRED_KEEP are dropped (and the file rewritten).
 * Returns 0 and *out (free with tok_keyring_free()), or a negative enum clampd_err
 * (ERR_NOT_FOUND: no key and create not set) with *out NULL and a malloc'd message in
 * *errmsg (caller frees; NULL if even that failed). */
int tok_keyring_open(const char *state_dir, bool create, struct tok_keyring **out, char **errmsg);

/* Rotates the key ring of state_dir: a new current key is made; the previous one's public
 * key stays in the ring (and the JWKS) as retired, with the time of retirement, and its
 * secret is erased. With no key yet, makes the first one. Fails with ERR_TOO_BIG when
 * TOK_MAX_KEYS keys are still within TOK_RETIRED_KEEP. Returns 0 and, when out is not NULL,
 * the new ring in *out (caller frees); or a negative enum clampd_err and a malloc'd message
 * in *errmsg. */
int tok_keyring_rotate(const char *state_dir, struct tok_keyring **out, char **errmsg);

/* Frees kr, wiping its secret key; NULL is a no-op. */
void tok_keyring_free(struct tok_keyring *kr);

/* The kid of the current (signing) key; owned by kr. */
const char *tok_keyring_kid(const struct tok_keyring *kr);

/* Whether the key file on disk is no longer the one kr was read from (another process
 * rotated the keys, or pruned a retired one): the owner should open a new ring. */
bool tok_keyring_is_stale(const struct tok_keyring *kr);

/* What tok_mint() signs. All strings are NUL-terminated UTF-8; none is kept. */
struct tok_claims {
    const char *sub;     /* agent id: required, 1..CLAMPD_TOKEN_MAX_SUB bytes */
    const char *tool;    /* tool name: required, non-empty */
    const char *binding; /* call binding: required, 64 lowercase hex from cjson_call_binding() */
    const char *scope;   /* granted scopes, space-separated RFC 6749 scope-tokens; NULL: "" */
    const char *iss;     /* issuer, or NULL for no iss claim; at most CLAMPD_TOKEN_MAX_ISS */
    long ttl;            /* seconds, 1..TOK_MAX_TTL; 0: TOK_DEFAULT_TTL */
    int64_t iat;         /* issue time, seconds since the epoch; 0: now */
};

/* Signs a token for c with kr's current key and a fresh 128-bit jti; exp = iat + ttl. Fails
 * with ERR_INVAL for a missing or malformed claim, ERR_TOO_BIG when the token would be over
 * CLAMPD_TOKEN_MAX_LEN (a very long tool name), ERR_NOMEM or ERR_CRYPTO; SECURITY: then the
 * call must be denied, not forwarded without a token. On success *token is a malloc'd
 * NUL-terminated string (caller frees). Safe to call from several threads on one ring. */
int tok_mint(const struct tok_keyring *kr, const struct tok_claims *c, char **token);

/* The JWKS of kr: {"keys": [{"kty": "OKP", "crv": "Ed25519", "x", "kid", "alg": "EdDSA",
 * "use": "sig"}, ...]}, the current key first, then retired keys, newest first; public parts
 * only. Returns 0 and a new reference in *out, or ERR_NOMEM. */
int tok_jwks(const struct tok_keyring *kr, json_t **out);

#endif
