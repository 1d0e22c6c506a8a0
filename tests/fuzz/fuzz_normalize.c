/*
 * fuzz_normalize: the argument flattener and the decoders on hostile bytes. Input that is
 * valid JSON is flattened (as a tools/call's arguments are); every input is also
 * normalised as a plain text (descriptions, result texts carry any bytes). Checks what
 * callers rely on: paths are NUL-terminated lines of the stated length, every leaf starts
 * with its raw form, no form of a leaf repeats, and the derived bytes stay within budget;
 * and insp_strip_hidden() only ever removes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/normalize.h"
#include "jsonrpc/jsonrpc.h"

#define KEEP 64 /* forms of one leaf remembered for the repeat check */

struct check {
    uint64_t hash[KEEP];
    size_t len[KEEP];
    size_t n;
    size_t derived;
};

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static int on_leaf(void *ctx, const struct insp_leaf *l)
{
    struct check *c = ctx;
    uint64_t h;

    if (!l->path || l->path[l->path_len] != '\0' || strlen(l->path) != l->path_len)
        abort();
    if (l->len && !l->text)
        abort();
    if (l->layers == 0) {
        c->n = 0; /* a new leaf */
    } else {
        if (c->n == 0 || l->kind == INSP_LEAF_NUMBER || (l->layers & ~INSP_LAYERS_ALL))
            abort(); /* a derived form with no raw form before it */
        c->derived += l->len;
        if (c->derived > INSP_MAX_NORMALIZED_BYTES)
            abort();
    }
    h = fnv1a(l->text, l->len);
    for (size_t i = 0; i < c->n && i < KEEP; i++)
        if (c->hash[i] == h && c->len[i] == l->len)
            abort(); /* (a hash collision here is as likely as a bug we would not see) */
    if (c->n < KEEP) {
        c->hash[c->n] = h;
        c->len[c->n] = l->len;
    }
    c->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jrpc_peek pk;
    struct check c;

    memset(&c, 0, sizeof(c));
    if (jrpc_peek((const char *)data, size, &pk) == 0)
        insp_flatten((const char *)data, size, on_leaf, &c);
    memset(&c, 0, sizeof(c));
    insp_normalize_text((const char *)data, size, on_leaf, &c);
    /* what is shown to a model: only removes, never adds */
    struct dbuf out;
    dbuf_init(&out, size + 1);
    int rc = insp_strip_hidden((const char *)data, size, &out);
    if (rc < 0 || (rc == 1 && out.len >= size) || (rc == 0 && out.len != 0))
        abort();
    dbuf_free(&out);
    return 0;
}
