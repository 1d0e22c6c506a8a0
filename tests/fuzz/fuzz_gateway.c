/*
 * libFuzzer target for the gateway's request-body parsers (src/gateway/parse.c): the bytes
 * an authenticated agent sends to /v1/proxy, /v1/verify, /v1/scan-input and
 * /v1/scan-output. The first input byte picks the parser (0: call, 1: scan-input, 2:
 * scan-output); the rest is the body.
 *
 * Properties beyond "no memory error": a refusal is a 422 with an error code and a message;
 * an accepted call has a non-empty tool without NUL, a 64-digit lowercase hex hash, and its
 * params slice lies inside the body and starts with '{'; an accepted scan has exactly one of
 * text and object, the object inside the body. Any violation aborts like a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway-int.h"

static bool inside(const char *p, size_t n, const char *body, size_t len)
{
    return p >= body && n <= len && p + n <= body + len;
}

static void check_error(const struct gw__error *e)
{
    if (e->status != 422 || !e->code[0] || !e->msg[0])
        abort();
}

static void check_call(const char *body, size_t len)
{
    struct gw__call_req c;
    struct gw__error e = {0};

    if (gw__parse_call(body, len, &c, &e)) {
        check_error(&e);
        return;
    }
    if (!c.tool[0] || strlen(c.hash) != 64)
        abort();
    for (size_t i = 0; i < 64; i++)
        if (!((c.hash[i] >= '0' && c.hash[i] <= '9') || (c.hash[i] >= 'a' && c.hash[i] <= 'f')))
            abort();
    if (c.params && (!inside(c.params, c.params_len, body, len) || c.params[0] != '{'))
        abort();
}

static void check_scan(const char *body, size_t len, bool output)
{
    struct gw__scan_req q;
    struct gw__error e = {0};

    if (gw__parse_scan(body, len, output, &q, &e)) {
        check_error(&e);
        return;
    }
    if (!q.text == !q.object)
        abort();
    if (q.object && (!inside(q.object, q.object_len, body, len) || q.object[0] != '{'))
        abort();
    if (q.text && q.text_len > len)
        abort();
    gw__scan_req_deinit(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body;

    if (size == 0)
        return 0;
    /* a copy of exactly the body's size, so that ASan sees any read past it */
    body = malloc(size - 1 ? size - 1 : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    switch (data[0] % 3) {
    case 0: check_call(body, size - 1); break;
    case 1: check_scan(body, size - 1, false); break;
    default: check_scan(body, size - 1, true); break;
    }
    free(body);
    return 0;
}
