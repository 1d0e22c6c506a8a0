/*
 * fold: keys that some JSON decoders take for another key.
 *
 * Go's encoding/json (and so several MCP servers) and .NET with case-insensitive property
 * names match object keys without regard to case, and Go folds U+017F (ſ) to 's' and
 * U+212A (Kelvin sign) to 'k' as well. A message that carries "name" and "Name" is judged
 * by clampd on one and run by such a server on the other: such keys are refused.
 */
#include "engine/engine-int.h"

#include <string.h>

/* Folds key into out (ASCII lower case, ſ → s, K → k); false if it does not fit. */
static bool fold(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)key;

    while (*p) {
        char c;
        if (p[0] == 0xc5 && p[1] == 0xbf) {
            c = 's', p += 2;
        } else if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
            c = 'k', p += 3;
        } else {
            c = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            p++;
        }
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

const char *engine__folded_alias(const json_t *obj, const char *const *names)
{
    const char *key;
    json_t *v;
    char buf[64], want[64];

    json_object_foreach ((json_t *)obj, key, v) {
        (void)v;
        if (!fold(key, buf, sizeof(buf)))
            continue;
        for (const char *const *n = names; *n; n++)
            if (fold(*n, want, sizeof(want)) && strcmp(buf, want) == 0 && strcmp(key, *n) != 0)
                return key;
    }
    return NULL;
}

const char *engine__shq(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    /* SECURITY: names come from the server; a suggested command must stay one command. */
    if (cap < 3)
        return "''";
    out[n++] = '\'';
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        const char *piece = *p == '\'' ? "'\\''" : NULL;
        size_t k = piece ? 4 : 1;
        if (n + k + 2 > cap)
            break;
        if (piece)
            memcpy(out + n, piece, k);
        else
            out[n] = (char)(*p < 0x20 || *p == 0x7f ? '?' : *p);
        n += k;
    }
    out[n++] = '\'';
    out[n] = '\0';
    return out;
}
