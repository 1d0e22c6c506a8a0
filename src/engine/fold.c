/*
 * fold: keys that some JSON decoders take for another key (see jrpc_key_aliases), and
 * shell quoting of peer-chosen names in the texts clampd writes.
 */
#include "engine/engine-int.h"
#include "jsonrpc/jsonrpc.h"

#include <string.h>

const char *engine__folded_alias(const json_t *obj, const char *const *names)
{
    const char *key;
    size_t klen;
    json_t *v;

    json_object_keylen_foreach ((json_t *)obj, key, klen, v) {
        (void)v;
        for (const char *const *n = names; *n; n++)
            if (jrpc_key_aliases(key, klen, *n))
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
