/*
 * fuzz_jsonrpc: the framer and the peek scanner on hostile bytes, i.e. everything a client
 * or downstream can send before anything else looks at it. The first byte picks the chunk
 * size, so that line reassembly across chunk boundaries is exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc/jsonrpc.h"

static int on_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    char buf[64];
    (void)ctx;
    if (key) {
        jrpc_key_aliases(key, klen, "name");
        jrpc_key_aliases(key, klen, "arguments");
    }
    jrpc_string_decode(v, buf, sizeof(buf));
    jrpc_object_each(v, on_member, NULL); /* nested objects too */
    return 0;
}

static int on_line(void *ctx, int status, const char *line, size_t len)
{
    struct jrpc_peek pk;
    struct dbuf *key = ctx;

    if (status)
        return 0;
    if (jrpc_peek(line, len, &pk) == 0) {
        if (pk.id.p) {
            /* The id slice must lie inside the line. */
            if (pk.id.p < line || pk.id.p + pk.id.n > line + len)
                abort();
            jrpc_id_key(pk.id, key);
        }
        if (strlen(pk.method) >= JRPC_METHOD_MAX)
            abort();
        if (pk.params.p) {
            if (pk.params.p < line || pk.params.p + pk.params.n > line + len)
                abort();
            jrpc_object_each(pk.params, on_member, NULL);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jrpc_framer f;
    struct dbuf key;
    size_t chunk;

    if (size == 0)
        return 0;
    chunk = (size_t)data[0] % 64 + 1;
    data++, size--;
    jrpc_framer_init(&f, 4096);
    dbuf_init(&key, CLAMPD_MAX_ID_LEN * 4 + 16);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        jrpc_framer_feed(&f, (const char *)data + off, n, on_line, &key);
    }
    /* A whole line is also peeked directly, without framing. */
    {
        struct jrpc_peek pk;
        jrpc_peek((const char *)data, size, &pk);
    }
    dbuf_free(&key);
    jrpc_framer_deinit(&f);
    return 0;
}
