/*
 * clampd/verify.h: verify clampd scope tokens in a downstream MCP server or tool.
 *
 * clampd signs every call it allows with a short-lived Ed25519 JWS (docs/tokens.md) and
 * passes it in params._meta["clampd/scope_token"]. A downstream that checks the token knows
 * that clampd judged exactly this call: the token names the tool and carries the call
 * binding, SHA-256 of the canonical JSON {"params": arguments, "tool": name}, which this
 * library recomputes from the arguments the downstream is about to act on.
 *
 *   JWKS text ──clampd_verifier_new()──▶ verifier (keys + replay cache of seen jti)
 *   token, tool, arguments ──clampd_verify()──▶ CLAMPD_VERIFY_VALID, or a typed reason
 *
 * One header and one source file (src/token/verify.c) that need only libsodium and
 * jansson; copy both into a project and build them with it:
 *
 *   cc -Iinclude -c verify.c && cc app.o verify.o -ljansson -lsodium
 *
 * A verifier is not thread-safe (its replay cache changes on every valid token): use one
 * per thread only if each thread sees a disjoint set of tokens, else serialise calls.
 */
#ifndef CLAMPD_VERIFY_H
#define CLAMPD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SECURITY: limits the minter and the verifier share; a token past any of them is refused. */
#define CLAMPD_TOKEN_MAX_LEN 8192           /* bytes of the whole compact token */
#define CLAMPD_TOKEN_MAX_LIFETIME 3600      /* seconds from iat to exp */
#define CLAMPD_TOKEN_MAX_SUB 255            /* bytes of the sub claim (agent id) */
#define CLAMPD_TOKEN_MAX_SCOPE 1023         /* bytes of the scope claim */
#define CLAMPD_TOKEN_MAX_ISS 255            /* bytes of the iss claim */
#define CLAMPD_TOKEN_MAX_KID 64             /* bytes of the kid header member */
#define CLAMPD_TOKEN_JTI_LEN 22             /* jti: 128 random bits, base64url without padding */
#define CLAMPD_TOKEN_BINDING_LEN 64         /* binding: SHA-256 as lowercase hex */
#define CLAMPD_VERIFY_MAX_JWKS (1u << 20)   /* bytes of JWKS text */
#define CLAMPD_VERIFY_MAX_KEYS 64           /* Ed25519 keys kept from one JWKS */
#define CLAMPD_VERIFY_MAX_LEEWAY 300        /* seconds of clock skew one may allow */
#define CLAMPD_VERIFY_DEFAULT_REPLAY 65536u /* jti remembered at once, by default */
#define CLAMPD_VERIFY_MAX_REPLAY (1u << 22) /* ... at most */
#define CLAMPD_VERIFY_MAX_DEPTH 512         /* nesting of arguments, as clampd allows */
#define CLAMPD_VERIFY_MAX_CANONICAL (64u << 20) /* canonical text of arguments, as clampd */

/* The outcome of a verification. SECURITY: the zero value is not VALID, so a status nobody
 * set refuses; test for == CLAMPD_VERIFY_VALID, never for a falsy value. */
enum clampd_verify_status {
    CLAMPD_VERIFY_ERROR = 0,        /* could not verify: bad argument or out of memory */
    CLAMPD_VERIFY_VALID = 1,        /* signed by a JWKS key, in time, for this call, first use */
    CLAMPD_VERIFY_BAD_FORMAT,       /* not JWS compact: parts, base64url, JSON, sizes */
    CLAMPD_VERIFY_BAD_ALG,          /* header alg is not exactly "EdDSA" ("none", "HS256"...) */
    CLAMPD_VERIFY_BAD_HEADER,       /* crit or another unknown header member, bad typ or kid */
    CLAMPD_VERIFY_UNKNOWN_KID,      /* kid names no key of the JWKS */
    CLAMPD_VERIFY_BAD_SIGNATURE,    /* Ed25519 signature does not verify */
    CLAMPD_VERIFY_BAD_CLAIMS,       /* a claim missing, mistyped, out of bounds or unknown */
    CLAMPD_VERIFY_EXPIRED,          /* now >= exp + leeway */
    CLAMPD_VERIFY_NOT_YET_VALID,    /* iat > now + leeway */
    CLAMPD_VERIFY_WRONG_TOOL,       /* the tool claim is not the tool being called */
    CLAMPD_VERIFY_BAD_ARGUMENTS,    /* the arguments have no canonical form (too deep, too big) */
    CLAMPD_VERIFY_BINDING_MISMATCH, /* signed for other arguments */
    CLAMPD_VERIFY_REPLAYED,         /* this jti was accepted before */
    CLAMPD_VERIFY_REPLAY_FULL,      /* the replay cache is full of unexpired tokens */
    CLAMPD_VERIFY__COUNT
};

/* What a valid token says. Strings are NUL-terminated UTF-8 without NUL inside. */
struct clampd_token_claims {
    char sub[CLAMPD_TOKEN_MAX_SUB + 1];     /* the agent clampd authenticated */
    char scope[CLAMPD_TOKEN_MAX_SCOPE + 1]; /* granted scopes, space-separated (may be "") */
    char iss[CLAMPD_TOKEN_MAX_ISS + 1];     /* issuer, "" when the token has none */
    char jti[CLAMPD_TOKEN_JTI_LEN + 1];
    char kid[CLAMPD_TOKEN_MAX_KID + 1];
    char binding[CLAMPD_TOKEN_BINDING_LEN + 1];
    int64_t iat, exp; /* seconds since the epoch */
};

struct clampd_verify_result {
    enum clampd_verify_status status;
    char message[256]; /* why, for a log line; peer-chosen text in it is made printable */
    struct clampd_token_claims claims; /* filled when status is CLAMPD_VERIFY_VALID */
};

struct clampd_verify_opts {
    long leeway;            /* seconds of clock skew allowed on exp and iat, 0 (default) to
                             * CLAMPD_VERIFY_MAX_LEEWAY */
    size_t replay_capacity; /* unexpired jti remembered at once; 0: CLAMPD_VERIFY_DEFAULT_REPLAY,
                             * at most CLAMPD_VERIFY_MAX_REPLAY */
};

struct clampd_verifier;

/* Builds a verifier from JWKS text (len bytes, at most CLAMPD_VERIFY_MAX_JWKS): a JSON object
 * {"keys": [...]} whose Ed25519 keys ({"kty": "OKP", "crv": "Ed25519", "x": base64url, "kid":
 * string}, with "alg" "EdDSA" and "use" "sig" when present) are kept; keys of other types are
 * skipped. Rejects invalid JSON, duplicate members, a malformed Ed25519 key, duplicate kids,
 * more than CLAMPD_VERIFY_MAX_KEYS keys, and a set without any Ed25519 key. opts may be NULL
 * for the defaults. Calls sodium_init(). Returns 0 and *out (free with
 * clampd_verifier_free()), or -1 with *out NULL and, when err is not NULL, a message in err
 * (errlen bytes). */
int clampd_verifier_new(const char *jwks, size_t len, const struct clampd_verify_opts *opts,
                        struct clampd_verifier **out, char *err, size_t errlen);

/* Replaces the keys with those of a newly fetched JWKS (same rules as clampd_verifier_new()),
 * keeping the replay cache, e.g. after `clampd keys rotate`. On failure (-1) the old keys
 * stay. */
int clampd_verifier_set_jwks(struct clampd_verifier *v, const char *jwks, size_t len, char *err,
                             size_t errlen);

/* Frees v and everything it holds; NULL is a no-op. */
void clampd_verifier_free(struct clampd_verifier *v);

/* Verifies token (NUL-terminated) for a call of tool with arguments (the JSON value the
 * downstream will act on; NULL or JSON null stand for {}, as clampd binds them). In order:
 * JWS compact form and sizes, header (alg exactly "EdDSA", typ "JWT" if present, no other
 * member than alg, kid and typ), kid in the JWKS, Ed25519 signature over the first two parts,
 * then the claims: exactly sub, tool, binding, scope, iat, exp, jti and optionally iss, with
 * iat <= now + leeway, now < exp + leeway, 0 < exp - iat <= CLAMPD_TOKEN_MAX_LIFETIME, tool
 * equal to tool, binding equal to clampd_verify_call_binding(tool, arguments), and last the
 * jti not seen before. A token that passes every check has its jti remembered until its exp
 * (+ leeway), so the same token is refused the second time. Fills *res (status, message and,
 * when valid, claims) and returns res->status. */
enum clampd_verify_status clampd_verify(struct clampd_verifier *v, const char *token,
                                        const char *tool, const json_t *arguments,
                                        struct clampd_verify_result *res);

/* clampd_verify() at the given time (seconds since the epoch) rather than the clock's. */
enum clampd_verify_status clampd_verify_at(struct clampd_verifier *v, int64_t now,
                                           const char *token, const char *tool,
                                           const json_t *arguments,
                                           struct clampd_verify_result *res);

/* Marks jti (CLAMPD_TOKEN_JTI_LEN base64url characters) as used until exp, e.g. when
 * restoring the jti seen by earlier processes. Returns 0, or -1 for a malformed jti, a full
 * cache or no memory. */
int clampd_verifier_remember(struct clampd_verifier *v, const char *jti, int64_t exp);

/* The call binding of DESIGN.md §3, as clampd computes it: SHA-256, lowercase hex, of the
 * canonical JSON {"params": arguments-or-{}, "tool": tool} (keys sorted by code point, no
 * whitespace, minimal string escaping, RFC 8785 numbers). Returns 0 and 64 hex digits plus
 * NUL in hex, or -1 (hex "") for a NULL tool, nesting deeper than 512 levels, non-finite
 * reals or canonical text over 64 MiB. */
int clampd_verify_call_binding(const char *tool, const json_t *arguments,
                               char hex[CLAMPD_TOKEN_BINDING_LEN + 1]);

/* A stable lowercase name for a status ("valid", "binding_mismatch", ...), for logs and
 * machine-readable output; "unknown" for a value outside the enum. */
const char *clampd_verify_status_name(enum clampd_verify_status s);

#ifdef __cplusplus
}
#endif

#endif
