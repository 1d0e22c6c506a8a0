/*
 * libFuzzer target for the scope-token verifier (src/token/verify.c), with a fixed Ed25519
 * key and JWKS. The first input byte picks what the rest is:
 *
 *   0  a whole token, verified as given (split, base64url, header, kid, signature)
 *   1  a payload, signed with the fixed key under a good header: reaches the claim checks
 *   2  a header, signed over a good payload: reaches alg, crit, typ and kid handling
 *   3  JSON arguments: their call binding from verify.c must equal src/json's
 *
 * Properties beyond "no memory error": a status is always one of the enum's and carries a
 * message; a token found VALID is REPLAYED when verified again; the two canonical JSON
 * writers agree on every value (a disagreement would make clampd's tokens fail downstream,
 * or two calls share a binding). Any violation aborts like a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "clampd/verify.h"
#include "json/json.h"

#define FT_NOW 1700000000LL
#define FT_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* {"params":{},"tool":"t"}: what a payload must bind to verify. */
#define FT_PAYLOAD                                                                                 \
    "{\"sub\":\"a\",\"tool\":\"t\",\"binding\":"                                                   \
    "\"f63d13b0a43944fe9e700a583e5259048e8c0f96aa2c158c137a44c713837866\",\"scope\":\"\","         \
    "\"iat\":1700000000,\"exp\":1700000060,\"jti\":\"AAAAAAAAAAAAAAAAAAAAAA\"}"
#define FT_HEADER "{\"alg\":\"EdDSA\",\"kid\":\"fuzz-key\",\"typ\":\"JWT\"}"

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static char jwks[256];

static void ft_init(void)
{
    unsigned char seed[crypto_sign_SEEDBYTES];
    char x[64];

    if (jwks[0])
        return;
    if (sodium_init() < 0)
        abort();
    memset(seed, 0x42, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_bin2base64(x, sizeof(x), pk, sizeof(pk), FT_B64);
    snprintf(jwks, sizeof(jwks),
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"fuzz-key\"}]}",
             x);
}

/* base64url(h).base64url(p).base64url(sig over both), malloc'd. */
static char *ft_sign(const unsigned char *h, size_t hn, const unsigned char *p, size_t pn)
{
    size_t hl = sodium_base64_ENCODED_LEN(hn, FT_B64), pl = sodium_base64_ENCODED_LEN(pn, FT_B64);
    size_t cap = hl + pl + 100, at;
    unsigned char sig[crypto_sign_BYTES];
    char *t = malloc(cap);

    if (!t)
        abort();
    sodium_bin2base64(t, hl, h, hn, FT_B64);
    at = strlen(t);
    t[at++] = '.';
    sodium_bin2base64(t + at, pl, p, pn, FT_B64);
    at += strlen(t + at);
    crypto_sign_detached(sig, NULL, (const unsigned char *)t, at, sk);
    t[at++] = '.';
    sodium_bin2base64(t + at, cap - at, sig, sizeof(sig), FT_B64);
    return t;
}

static void ft_verify(const char *token)
{
    struct clampd_verify_result res;
    struct clampd_verifier *v = NULL;
    enum clampd_verify_status st;

    if (clampd_verifier_new(jwks, strlen(jwks), NULL, &v, NULL, 0))
        abort();
    st = clampd_verify_at(v, FT_NOW, token, "t", NULL, &res);
    if (st != res.status || st <= CLAMPD_VERIFY_ERROR || st >= CLAMPD_VERIFY__COUNT ||
        !res.message[0])
        abort();
    if (st == CLAMPD_VERIFY_VALID &&
        clampd_verify_at(v, FT_NOW, token, "t", NULL, &res) != CLAMPD_VERIFY_REPLAYED)
        abort();
    clampd_verifier_free(v);
}

static void ft_binding(const uint8_t *data, size_t size)
{
    char a[CJSON_HEX_LEN + 1], b[CLAMPD_TOKEN_BINDING_LEN + 1];
    json_t *args = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int ra, rb;

    if (!args)
        return;
    ra = cjson_call_binding("t", args, a);
    rb = clampd_verify_call_binding("t", args, b);
    if ((ra == 0) != (rb == 0) || strcmp(a, b) != 0)
        abort();
    json_decref(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t;

    ft_init();
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
        t = malloc(size);
        if (!t)
            abort();
        memcpy(t, data + 1, size - 1);
        t[size - 1] = '\0';
        break;
    case 1:
        t = ft_sign((const unsigned char *)FT_HEADER, strlen(FT_HEADER), data + 1, size - 1);
        break;
    case 2:
        t = ft_sign(data + 1, size - 1, (const unsigned char *)FT_PAYLOAD, strlen(FT_PAYLOAD));
        break;
    default: ft_binding(data + 1, size - 1); return 0;
    }
    ft_verify(t);
    free(t);
    return 0;
}
