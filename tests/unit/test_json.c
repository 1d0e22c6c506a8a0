/*
 * Unit tests for src/json/canonical.c: canonical JSON text and the hashes built on it.
 *
 * The expected hashes were computed outside clampd (printf '%s' '<text>' | sha256sum)
 * and the number vectors checked against node's String(x), so these tests pin clampd
 * to RFC 8785 / ECMAScript rather than to itself. canonical.c is included so that the
 * static number formatter can be given NaN and infinities, which jansson refuses to hold.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json/canonical.c"

/* Canonical text of the JSON document text (parsed with NUL allowed), or NULL when
 * canonicalisation fails; *rc_out gets the result code. Caller frees. */
static char *canon_text(const char *text, int *rc_out)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    struct dbuf b;
    int rc;

    assert_non_null(v);
    dbuf_init(&b, CLAMPD_MAX_CANONICAL);
    rc = cjson_canonical(v, &b);
    json_decref(v);
    if (rc_out)
        *rc_out = rc;
    if (rc) {
        dbuf_free(&b);
        return NULL;
    }
    return dbuf_take(&b, NULL);
}

static void check_canon(const char *in, const char *want)
{
    char *got = canon_text(in, NULL);

    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Canonical text of one jansson value; the value is consumed. */
static void check_value(json_t *v, const char *want)
{
    struct dbuf b;

    assert_non_null(v);
    dbuf_init(&b, 1024);
    assert_int_equal(cjson_canonical(v, &b), 0);
    assert_non_null(b.ptr);
    assert_string_equal(b.ptr, want);
    dbuf_free(&b);
    json_decref(v);
}

/* ---- the DESIGN.md example ---- */

static void test_bash_example(void **state)
{
    char hex[CJSON_HEX_LEN + 1];
    const char *text = "{\"description\":\"\",\"name\":\"Bash\",\"parameters\":{}}";
    const char *want = "9fbfcf9a33c1b0736670b423c4d829feba026b6da5b30fa43fb8e184fccebe4b";
    json_t *jnull = json_null();

    (void)state;
    check_canon("{ \"parameters\" : {}, \"name\": \"Bash\", \"description\": \"\" }", text);
    cjson_sha256_hex(text, strlen(text), hex);
    assert_string_equal(hex, want);
    assert_int_equal(cjson_contract_hash("Bash", NULL, NULL, hex), 0);
    assert_string_equal(hex, want);
    /* JSON null is the same as absent, for both optional members. */
    assert_int_equal(cjson_contract_hash("Bash", jnull, jnull, hex), 0);
    assert_string_equal(hex, want);
    json_decref(jnull);
}

static void test_contract_hash_literal(void **state)
{
    char hex[CJSON_HEX_LEN + 1];
    json_t *desc = json_string("Read a file");
    json_t *schema = json_loads("{\"type\":\"object\",\"required\":[\"path\"],"
                                "\"properties\":{\"path\":{\"type\":\"string\"}}}",
                                0, NULL);

    (void)state;
    assert_int_equal(cjson_contract_hash("read_file", desc, schema, hex), 0);
    assert_string_equal(hex, "33c54640ea192079497b904013d496d1b71b32b420e69e5268e191f069441373");
    json_decref(desc);
    json_decref(schema);
}

static void test_contract_hash_key_order(void **state)
{
    char h1[CJSON_HEX_LEN + 1], h2[CJSON_HEX_LEN + 1], h3[CJSON_HEX_LEN + 1];
    json_t *s1 = json_loads("{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"},"
                            "\"a\":{\"type\":\"integer\",\"minimum\":0}}}",
                            0, NULL);
    json_t *s2 = json_loads("{\"properties\":{\"a\":{\"minimum\":0,\"type\":\"integer\"},"
                            "\"b\":{\"type\":\"string\"}},\"type\":\"object\"}",
                            0, NULL);
    json_t *d1 = json_string("Runs a query.");
    json_t *d2 = json_string("Runs a query!");

    (void)state;
    assert_int_equal(cjson_contract_hash("q", d1, s1, h1), 0);
    assert_int_equal(cjson_contract_hash("q", d1, s2, h2), 0);
    assert_string_equal(h1, h2);
    /* One character of description is a different contract: a rug pull. */
    assert_int_equal(cjson_contract_hash("q", d2, s1, h3), 0);
    assert_string_not_equal(h1, h3);
    /* So is a different name. */
    assert_int_equal(cjson_contract_hash("r", d1, s1, h3), 0);
    assert_string_not_equal(h1, h3);
    json_decref(s1);
    json_decref(s2);
    json_decref(d1);
    json_decref(d2);
}

static void test_contract_hash_errors(void **state)
{
    char hex[CJSON_HEX_LEN + 1];
    json_t *deep = json_array();
    json_t *inner = deep;
    int i;

    (void)state;
    assert_int_equal(cjson_contract_hash(NULL, NULL, NULL, hex), ERR_INVAL);
    assert_string_equal(hex, "");
    assert_int_equal(cjson_call_binding(NULL, NULL, hex), ERR_INVAL);
    assert_string_equal(hex, "");
    /* 511 arrays inside the wrapper object is the deepest allowed (512 levels). */
    for (i = 1; i < CLAMPD_MAX_JSON_DEPTH - 1; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    assert_int_equal(cjson_contract_hash("t", NULL, deep, hex), 0);
    assert_int_equal(strlen(hex), CJSON_HEX_LEN);
    json_array_append_new(inner, json_array());
    assert_int_equal(cjson_contract_hash("t", NULL, deep, hex), ERR_INVAL);
    assert_string_equal(hex, "");
    json_decref(deep);
}

static void test_call_binding(void **state)
{
    char hex[CJSON_HEX_LEN + 1];
    json_t *empty = json_object();
    json_t *args = json_loads("{\"path\":\"/tmp/a b\",\"n\":[1,2.5]}", 0, NULL);

    (void)state;
    assert_int_equal(cjson_call_binding("x", NULL, hex), 0);
    assert_string_equal(hex, "a03d1a7678e05d355c973d943acc1dc7090157438df5f7713fd42e81bd91219d");
    assert_int_equal(cjson_call_binding("x", empty, hex), 0);
    assert_string_equal(hex, "a03d1a7678e05d355c973d943acc1dc7090157438df5f7713fd42e81bd91219d");
    /* Hash of {"params":{"n":[1,2.5],"path":"/tmp/a b"},"tool":"read_file"}. */
    assert_int_equal(cjson_call_binding("read_file", args, hex), 0);
    assert_string_equal(hex, "f897ae3be0347ddd54717d719dd566a413365dacb537a469da7fc26e8d6133b6");
    json_decref(empty);
    json_decref(args);
}

/* ---- structure and key order ---- */

static void test_literals_and_empties(void **state)
{
    (void)state;
    check_canon("{}", "{}");
    check_canon("[]", "[]");
    check_canon("\"\"", "\"\"");
    check_canon("true", "true");
    check_canon("false", "false");
    check_canon("null", "null");
    check_canon(" [ {} , [ ] , \"\" , null ] ", "[{},[],\"\",null]");
}

static void test_nested_sorting(void **state)
{
    (void)state;
    check_canon("{\"b\": [3, {\"z\": 1, \"y\": [true, false]}], \"a\": {\"d\": null, \"c\": {}}}",
                "{\"a\":{\"c\":{},\"d\":null},\"b\":[3,{\"y\":[true,false],\"z\":1}]}");
    /* Arrays keep their order even when it is not sorted. */
    check_canon("[3, 1, 2, \"b\", \"a\"]", "[3,1,2,\"b\",\"a\"]");
    /* A prefix sorts before the longer key; case is by code point (uppercase first). */
    check_canon("{\"b\":1,\"ab\":2,\"a\":3,\"B\":4,\"\":5}",
                "{\"\":5,\"B\":4,\"a\":3,\"ab\":2,\"b\":1}");
}

static void test_non_ascii_keys(void **state)
{
    (void)state;
    /* é U+00E9 < 中 U+4E2D < 😀 U+1F600, by code point; written raw, never \u-escaped. */
    check_canon("{\"\\ud83d\\ude00\":3,\"\\u4e2d\\u6587\":2,\"\\u00e9\":1,\"z\":0}",
                "{\"z\":0,\"\xc3\xa9\":1,\"\xe4\xb8\xad\xe6\x96\x87\":2,\"\xf0\x9f\x98\x80\":3}");
    /* DESIGN.md asks for code point order. RFC 8785 sorts UTF-16 code units instead, which
     * puts astral characters (surrogates D800..DFFF) before U+E000..U+FFFF. The two orders
     * differ only there: pin ours, U+FF01 before U+1F600. */
    check_canon("{\"\\ud83d\\ude00\":2,\"\\uff01\":1}",
                "{\"\xef\xbc\x81\":1,\"\xf0\x9f\x98\x80\":2}");
}

/* ---- strings ---- */

static void test_string_escapes(void **state)
{
    (void)state;
    check_canon("\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\"");
    check_canon("\"\\n\\t\\r\\b\\f\"", "\"\\n\\t\\r\\b\\f\"");
    check_canon("\"\\u0001\\u001f\\u001F\\u000b\"", "\"\\u0001\\u001f\\u001f\\u000b\"");
    /* DEL, '/', and U+2028 are not escaped; an escaped solidus loses its backslash. */
    check_canon("\"\\u007f/\\/\\u2028\"", "\"\x7f//\xe2\x80\xa8\"");
    /* Non-ASCII escapes in the input come out as raw UTF-8. */
    check_canon("\"caf\\u00e9 \\ud83d\\ude00\"", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
}

static void test_embedded_nul(void **state)
{
    json_t *obj = json_object();

    (void)state;
    check_canon("\"a\\u0000b\"", "\"a\\u0000b\"");
    check_canon("[\"\\u0000\"]", "[\"\\u0000\"]");
    /* jansson's parser refuses NUL in keys, but a key built in code may hold one. */
    assert_int_equal(json_object_setn_new(obj, "k\0b", 3, json_true()), 0);
    assert_int_equal(json_object_setn_new(obj, "k", 1, json_false()), 0);
    check_value(obj, "{\"k\":false,\"k\\u0000b\":true}");
}

/* ---- numbers ---- */

static void test_integers(void **state)
{
    (void)state;
    check_value(json_integer(0), "0");
    check_value(json_integer(1), "1");
    check_value(json_integer(-1), "-1");
    check_value(json_integer(9007199254740992LL), "9007199254740992");
    check_value(json_integer(-9007199254740992LL), "-9007199254740992");
    /* Past 2^53 an ECMAScript reader holds the nearest double: node prints these so. */
    check_value(json_integer(9007199254740993LL), "9007199254740992");
    check_value(json_integer(9007199254740995LL), "9007199254740996");
    check_value(json_integer(INT64_MAX), "9223372036854776000");
    check_value(json_integer(INT64_MIN), "-9223372036854776000");
    check_canon("[-0, 12, 9007199254740993]", "[0,12,9007199254740992]");
}

static void test_reals(void **state)
{
    (void)state;
    check_value(json_real(0.0), "0");
    check_value(json_real(-0.0), "0");
    check_value(json_real(1.0), "1");
    check_value(json_real(-1.0), "-1");
    check_value(json_real(1.5), "1.5");
    check_value(json_real(0.1), "0.1");
    check_value(json_real(0.1 + 0.2), "0.30000000000000004");
    check_value(json_real(1.0 / 3.0), "0.3333333333333333");
    check_value(json_real(4.35), "4.35");
    check_value(json_real(-2.5e-3), "-0.0025");
}

/* The boundaries of ECMAScript's layout rules, each checked against node's String(x). */
static void test_real_layout(void **state)
{
    (void)state;
    check_value(json_real(1e20), "100000000000000000000");
    check_value(json_real(123456789012345680000.0), "123456789012345680000");
    check_value(json_real(1e21), "1e+21");
    check_value(json_real(1e22), "1e+22");
    check_value(json_real(9.999999999999999e22), "1e+23");
    check_value(json_real(1e100), "1e+100");
    check_value(json_real(0.000001), "0.000001");
    check_value(json_real(1e-7), "1e-7");
    check_value(json_real(1.2e-7), "1.2e-7");
    check_value(json_real(123e-20), "1.23e-18");
    check_value(json_real(5e-324), "5e-324");
    check_value(json_real(1.7976931348623157e308), "1.7976931348623157e+308");
    check_value(json_real(-1.7976931348623157e308), "-1.7976931348623157e+308");
    check_value(json_real(9007199254740992.0), "9007199254740992");
    check_value(json_real(9223372036854775808.0), "9223372036854776000");
    check_canon("[1.0, 1E2, 1e-7, 2.50, -0.0]", "[1,100,1e-7,2.5,0]");
}

static void test_non_finite_rejected(void **state)
{
    struct dbuf b;

    (void)state;
    /* jansson will not build these, so a parsed value can never hold them ... */
    assert_null(json_real(NAN));
    assert_null(json_real(INFINITY));
    /* ... but the formatter does not rely on that. */
    dbuf_init(&b, 64);
    assert_int_equal(canon_double(NAN, &b), ERR_INVAL);
    assert_int_equal(canon_double(INFINITY, &b), ERR_INVAL);
    assert_int_equal(canon_double(-INFINITY, &b), ERR_INVAL);
    assert_int_equal(b.len, 0);
    dbuf_free(&b);
}

/* ---- limits ---- */

static json_t *nest_arrays(int levels)
{
    json_t *top = json_array(), *inner = top;
    int i;

    for (i = 1; i < levels; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    return top;
}

static void test_depth_limit(void **state)
{
    struct dbuf b;
    json_t *ok = nest_arrays(CLAMPD_MAX_JSON_DEPTH);
    json_t *deep = nest_arrays(CLAMPD_MAX_JSON_DEPTH + 1);

    (void)state;
    dbuf_init(&b, CLAMPD_MAX_CANONICAL);
    assert_int_equal(cjson_canonical(ok, &b), 0);
    assert_int_equal(b.len, 2 * CLAMPD_MAX_JSON_DEPTH);
    dbuf_reset(&b);
    assert_int_equal(cjson_canonical(deep, &b), ERR_INVAL);
    dbuf_free(&b);
    json_decref(ok);
    json_decref(deep);
}

static void test_cycle_rejected(void **state)
{
    struct dbuf b;
    json_t *a = json_array(), *o = json_object();

    (void)state;
    /* jansson lets code build a reference cycle; the depth bound ends the walk. */
    assert_int_equal(json_array_append(a, o), 0);
    assert_int_equal(json_object_set(o, "loop", a), 0);
    dbuf_init(&b, CLAMPD_MAX_CANONICAL);
    assert_int_equal(cjson_canonical(a, &b), ERR_INVAL);
    dbuf_free(&b);
    json_object_clear(o);
    json_decref(o);
    json_decref(a);
}

static void test_size_limit(void **state)
{
    struct dbuf b;
    json_t *v = json_loads("{\"key\":\"0123456789\"}", 0, NULL);

    (void)state;
    dbuf_init(&b, 10);
    assert_int_equal(cjson_canonical(v, &b), ERR_TOO_BIG);
    assert_true(b.len <= 10);
    dbuf_free(&b);
    dbuf_init(&b, 20);
    assert_int_equal(cjson_canonical(v, &b), 0);
    assert_string_equal(b.ptr, "{\"key\":\"0123456789\"}");
    dbuf_free(&b);
    assert_int_equal(cjson_canonical(NULL, &b), ERR_INVAL);
    json_decref(v);
}

/* Canonical output read back and canonicalised again gives the same bytes. */
static void test_idempotent(void **state)
{
    const char *in = "{\"z\":[1.5e300,-0.0,1e-7,{\"\\u00e9\":\"\\u0000\\n\"}],"
                     "\"a\":9007199254740993}";
    char *once = canon_text(in, NULL);
    char *twice;

    (void)state;
    assert_non_null(once);
    twice = canon_text(once, NULL);
    assert_non_null(twice);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bash_example),
        cmocka_unit_test(test_contract_hash_literal),
        cmocka_unit_test(test_contract_hash_key_order),
        cmocka_unit_test(test_contract_hash_errors),
        cmocka_unit_test(test_call_binding),
        cmocka_unit_test(test_literals_and_empties),
        cmocka_unit_test(test_nested_sorting),
        cmocka_unit_test(test_non_ascii_keys),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_real_layout),
        cmocka_unit_test(test_non_finite_rejected),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_cycle_rejected),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_idempotent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
