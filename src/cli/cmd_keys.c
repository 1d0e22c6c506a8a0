/*
 * clampd keys: the Ed25519 keys that sign scope tokens (src/token, docs/tokens.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "token/token.h"

_Static_assert(TOK_RETIRED_KEEP == 3900, "update the retention in the help text");

static const char usage[] =
    "Usage: clampd keys rotate [--state-dir DIR]\n"
    "       clampd keys jwks [--state-dir DIR]\n"
    "\n"
    "clampd signs the scope token of every call it allows with an Ed25519 key kept in\n"
    "DIR/keys/keyring (directory 0700, file 0600). See docs/tokens.md.\n"
    "\n"
    "rotate  make a new signing key. The previous key stops signing: its secret is erased,\n"
    "        and its public key stays in the JWKS, marked retired, for 3900 s (the longest\n"
    "        token lifetime, 3600 s, plus the largest verifier leeway), so that the\n"
    "        tokens it signed verify until they expire. Makes the first key if there is none.\n"
    "        A process that loaded the old key signs with it until it reloads the key ring.\n"
    "jwks    print the JWKS, public keys only (the current key first, then retired keys,\n"
    "        newest first), for `clampd token verify --jwks` or a downstream's verifier.\n"
    "        Makes the first key if there is none.\n"
    "\n"
    "Options:\n"
    "  --state-dir DIR   the state directory (default: $XDG_STATE_HOME/clampd, else\n"
    "                    ~/.local/state/clampd)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit status: 0 done, 1 the key ring could not be read or written, 2 usage error.\n";

static int keys_jwks(const char *dir)
{
    struct tok_keyring *kr = NULL;
    json_t *jwks = NULL;
    char *err = NULL, *text = NULL;
    int rc = 1;

    if (tok_keyring_open(dir, true, &kr, &err) || tok_jwks(kr, &jwks))
        goto out;
    text = json_dumps(jwks, JSON_INDENT(2));
    if (!text)
        goto out;
    puts(text);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "clampd keys: %s\n", err ? err : "out of memory");
    free(text);
    free(err);
    json_decref(jwks);
    tok_keyring_free(kr);
    return rc;
}

static int keys_rotate(const char *dir)
{
    struct tok_keyring *kr = NULL;
    char *err = NULL;
    json_t *jwks = NULL;
    int rc = 1;

    if (tok_keyring_rotate(dir, &kr, &err)) {
        fprintf(stderr, "clampd keys: %s\n", err ? err : "cannot rotate");
        goto out;
    }
    printf("signing key: %s\n", tok_keyring_kid(kr));
    if (tok_jwks(kr, &jwks) == 0 && json_array_size(json_object_get(jwks, "keys")) > 1)
        printf("retired key: %s (in the JWKS until its tokens have expired)\n",
               json_string_value(
                   json_object_get(json_array_get(json_object_get(jwks, "keys"), 1), "kid")));
    rc = 0;
out:
    free(err);
    json_decref(jwks);
    tok_keyring_free(kr);
    return rc;
}

int cmd_keys(int argc, char **argv)
{
    static const struct option longs[] = {{"state-dir", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *state = NULL, *sub;
    char *dir = NULL;
    int c, rc = 2;

    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 's') {
            state = optarg;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    sub = optind < argc ? argv[optind++] : NULL;
    if (!sub || optind != argc || (strcmp(sub, "rotate") != 0 && strcmp(sub, "jwks") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    dir = cli_state_dir(state, true);
    if (!dir)
        return 1;
    rc = strcmp(sub, "rotate") == 0 ? keys_rotate(dir) : keys_jwks(dir);
    free(dir);
    return rc;
}
