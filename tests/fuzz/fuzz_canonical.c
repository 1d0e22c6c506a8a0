/*
 * libFuzzer target for cjson_canonical() (src/json/canonical.c).
 *
 * Any JSON jansson accepts must canonicalise without a memory error, and canonical
 * output must be a fixed point: read back and canonicalised again, it gives the same
 * bytes. A failure of the second property means two encodings of one value could hash
 * differently (or two values alike), so it aborts like a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json.h"

#define FC_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* Canonicalises v into out; only the documented failures are allowed. */
static int fc_canon(const json_t *v, struct dbuf *out)
{
    int rc = cjson_canonical(v, out);

    /* ERR_INVAL: nesting deeper than ours (jansson accepts 2048 levels). */
    if (rc != 0 && rc != ERR_INVAL && rc != ERR_TOO_BIG)
        abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *first = json_loadb((const char *)data, size, FC_FLAGS, &jerr);
    json_t *again = NULL;
    struct dbuf one, two;

    dbuf_init(&one, CLAMPD_MAX_CANONICAL);
    dbuf_init(&two, CLAMPD_MAX_CANONICAL);
    if (!first || fc_canon(first, &one) != 0)
        goto out;
    again = json_loadb(one.ptr, one.len, FC_FLAGS, &jerr);
    if (!again) {
        /* ECMAScript prints reals up to 1e21 in plain digits ("100000000000000000000"),
         * which jansson then reads as an integer and refuses as too big for int64. That
         * is jansson's limit, not a canonical form problem; anything else is a bug. */
        if (json_error_code(&jerr) != json_error_numeric_overflow)
            abort();
        goto out;
    }
    if (fc_canon(again, &two) != 0)
        abort();
    if (one.len != two.len || memcmp(one.ptr, two.ptr, one.len) != 0)
        abort();
out:
    json_decref(first);
    json_decref(again);
    dbuf_free(&one);
    dbuf_free(&two);
    return 0;
}
