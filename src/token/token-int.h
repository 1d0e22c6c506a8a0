/*
 * token-int.h: what the files of src/token share, and the clock-taking entry points the
 * unit tests use. Not for other modules.
 */
#ifndef CLAMPD_TOKEN_INT_H
#define CLAMPD_TOKEN_INT_H

#include <sys/stat.h>

#include <sodium.h>

#include "token/token.h"

#define TOK__B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

struct tok__key {
    char kid[TOK_KID_LEN + 1];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    int64_t created; /* seconds since the epoch */
    int64_t retired; /* when it stopped signing; 0 for the current key */
};

struct tok_keyring {
    /* SECURITY: sodium_malloc'd (guard pages, no core dumps), read-only once the ring is
     * built, wiped by tok_keyring_free(): libsodium's secret key (seed || public key). */
    unsigned char *sk;
    struct tok__key keys[TOK_MAX_KEYS]; /* [0] the current key, then retired, newest first */
    size_t n_keys;
    char *path;         /* the key file, for tok_keyring_is_stale() */
    struct stat loaded; /* its identity when read (or written) */
};

/* tok_keyring_open() and tok_keyring_rotate() with the clock given (seconds since the
 * epoch), so that tests can step over TOK_RETIRED_KEEP. */
int tok__keyring_open_at(const char *state_dir, bool create, int64_t now, struct tok_keyring **out,
                         char **errmsg);
int tok__keyring_rotate_at(const char *state_dir, int64_t now, struct tok_keyring **out,
                           char **errmsg);

/* RFC 7638 thumbprint of an Ed25519 public key: base64url SHA-256 of
 * {"crv":"Ed25519","kty":"OKP","x":<base64url pk>}. */
void tok__thumbprint(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char kid[TOK_KID_LEN + 1]);

/* Whether s is 1..max bytes of RFC 6749 scope-tokens separated by single spaces ("" is). */
bool tok__scope_is_valid(const char *s, size_t max);

#endif
