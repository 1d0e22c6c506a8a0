/*
 * framer: splits a byte stream into newline-delimited lines.
 *
 * Lines wholly inside one chunk are delivered in place; only the tail of a chunk that
 * does not end in "\n" is copied, so a 50 MB line arriving in 64 KB pieces is appended
 * (amortised doubling) and scanned once: linear, never quadratic.
 */
#include "jsonrpc/jsonrpc.h"

#include <string.h>

void jrpc_framer_init(struct jrpc_framer *f, size_t max)
{
    dbuf_init(&f->buf, max);
    f->max = max;
    f->skipping = 0;
}

void jrpc_framer_deinit(struct jrpc_framer *f)
{
    dbuf_free(&f->buf);
}

size_t jrpc_framer_pending(const struct jrpc_framer *f)
{
    return f->buf.len + f->skipping;
}

static int deliver(const char *line, size_t len, jrpc_line_fn cb, void *ctx)
{
    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return 0;
    return cb(ctx, 0, line, len);
}

/* Handles bytes up to and including one "\n" at nl. */
static int complete_line(struct jrpc_framer *f, const char *data, const char *nl, jrpc_line_fn cb,
                         void *ctx)
{
    size_t n = (size_t)(nl - data);
    int rc;

    if (f->skipping) {
        size_t dropped = f->skipping + n;
        f->skipping = 0;
        return cb(ctx, ERR_TOO_BIG, NULL, dropped);
    }
    if (f->buf.len == 0) {
        if (n > f->max)
            return cb(ctx, ERR_TOO_BIG, NULL, n);
        return deliver(data, n, cb, ctx);
    }
    rc = dbuf_add(&f->buf, data, n);
    if (rc == ERR_TOO_BIG) {
        size_t dropped = f->buf.len + n;
        dbuf_reset(&f->buf);
        return cb(ctx, ERR_TOO_BIG, NULL, dropped);
    }
    if (rc)
        return rc;
    rc = deliver(f->buf.ptr, f->buf.len, cb, ctx);
    dbuf_reset(&f->buf);
    return rc;
}

/* Keeps the bytes of a line whose end has not arrived yet. */
static int hold_tail(struct jrpc_framer *f, const char *data, size_t len)
{
    int rc;

    if (f->skipping) {
        f->skipping += len;
        return 0;
    }
    rc = dbuf_add(&f->buf, data, len);
    if (rc == ERR_TOO_BIG) {
        /* SECURITY: never grow past max; drop this line up to its newline. */
        f->skipping = f->buf.len + len;
        dbuf_free(&f->buf);
        return 0;
    }
    return rc;
}

int jrpc_framer_feed(struct jrpc_framer *f, const char *data, size_t len, jrpc_line_fn cb,
                     void *ctx)
{
    while (len) {
        const char *nl = memchr(data, '\n', len);
        int rc;

        if (!nl)
            return hold_tail(f, data, len);
        rc = complete_line(f, data, nl, cb, ctx);
        if (rc)
            return rc;
        len -= (size_t)(nl - data) + 1;
        data = nl + 1;
    }
    return 0;
}
