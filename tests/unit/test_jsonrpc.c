/* Unit tests: newline framing (any chunking, huge lines, limits) and the JSON-RPC peek. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonrpc/jsonrpc.h"

struct lines {
    char *items[64];
    size_t lens[64];
    size_t n, oversized, dropped;
};

static int collect(void *ctx, int status, const char *line, size_t len)
{
    struct lines *l = ctx;
    if (status == ERR_TOO_BIG) {
        l->oversized++;
        l->dropped += len;
        return 0;
    }
    assert_true(l->n < 64);
    l->items[l->n] = malloc(len + 1);
    memcpy(l->items[l->n], line, len);
    l->items[l->n][len] = '\0';
    l->lens[l->n++] = len;
    return 0;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    memset(l, 0, sizeof(*l));
}

static const char stream[] = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":\"x\\ny\"}\n{\"partial\"";

/* Every way of cutting the stream into two or three chunks gives the same lines. */
static void test_framer_any_chunking(void **state)
{
    size_t n = strlen(stream);
    (void)state;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct jrpc_framer f;
            struct lines l = {0};
            jrpc_framer_init(&f, 1024);
            assert_int_equal(jrpc_framer_feed(&f, stream, i, collect, &l), 0);
            assert_int_equal(jrpc_framer_feed(&f, stream + i, j - i, collect, &l), 0);
            assert_int_equal(jrpc_framer_feed(&f, stream + j, n - j, collect, &l), 0);
            assert_int_equal(l.n, 3);
            assert_string_equal(l.items[0], "{\"a\":1}");
            assert_string_equal(l.items[1], "{\"b\":2}");
            assert_string_equal(l.items[2], "{\"c\":\"x\\ny\"}");
            assert_int_equal(jrpc_framer_pending(&f), strlen("{\"partial\""));
            lines_free(&l);
            jrpc_framer_deinit(&f);
        }
    }
}

/* A 20 MB line fed in 4 KB chunks arrives whole and intact. */
static void test_framer_huge_line(void **state)
{
    size_t big = 20u * 1024 * 1024;
    char *data = malloc(big + 1);
    struct jrpc_framer f;
    struct lines l = {0};
    (void)state;

    memset(data, 'A', big);
    data[0] = '"';
    data[big - 1] = '"';
    data[big] = '\n';
    jrpc_framer_init(&f, CLAMPD_MAX_MESSAGE);
    for (size_t off = 0; off < big + 1; off += 4096) {
        size_t n = big + 1 - off < 4096 ? big + 1 - off : 4096;
        assert_int_equal(jrpc_framer_feed(&f, data + off, n, collect, &l), 0);
    }
    assert_int_equal(l.n, 1);
    assert_int_equal(l.lens[0], big);
    assert_memory_equal(l.items[0], data, big);
    lines_free(&l);
    jrpc_framer_deinit(&f);
    free(data);
}

/* A line over the maximum is dropped (reported once) and the next line still arrives. */
static void test_framer_limit(void **state)
{
    struct jrpc_framer f;
    struct lines l = {0};
    char big[100];
    (void)state;

    memset(big, 'x', sizeof(big));
    jrpc_framer_init(&f, 16);
    assert_int_equal(jrpc_framer_feed(&f, "{\"a\":1}\n", 8, collect, &l), 0);
    assert_int_equal(jrpc_framer_feed(&f, big, 40, collect, &l), 0);
    assert_int_equal(jrpc_framer_feed(&f, big, 60, collect, &l), 0);
    assert_int_equal(jrpc_framer_feed(&f, "\n{\"b\":2}\n", 9, collect, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.oversized, 1);
    assert_int_equal(l.dropped, 100);
    assert_string_equal(l.items[1], "{\"b\":2}");
    /* and a single over-long line inside one chunk */
    assert_int_equal(jrpc_framer_feed(&f, "0123456789abcdefXYZ\n", 20, collect, &l), 0);
    assert_int_equal(l.oversized, 2);
    lines_free(&l);
    jrpc_framer_deinit(&f);
}

static void peek_ok(const char *msg, struct jrpc_peek *pk)
{
    assert_int_equal(jrpc_peek(msg, strlen(msg), pk), 0);
}

static void test_peek_kinds(void **state)
{
    struct jrpc_peek pk;
    (void)state;

    peek_ok("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"x\":[1,2]}}",
            &pk);
    assert_int_equal(pk.kind, JRPC_REQUEST);
    assert_string_equal(pk.method, "tools/call");
    assert_int_equal(pk.id.n, 1);
    assert_true(pk.has_params);

    peek_ok(" { \"method\" : \"notifications/progress\" , \"jsonrpc\":\"2.0\"} ", &pk);
    assert_int_equal(pk.kind, JRPC_NOTIFICATION);

    peek_ok("{\"result\":{},\"id\":\"abc\",\"jsonrpc\":\"2.0\"}", &pk);
    assert_int_equal(pk.kind, JRPC_RESPONSE);
    assert_int_equal(pk.id.n, 5);

    peek_ok("{\"error\":{\"code\":1},\"id\":null}", &pk);
    assert_int_equal(pk.kind, JRPC_RESPONSE);
    assert_true(pk.id_is_null);

    peek_ok("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", &pk);
    assert_int_equal(pk.kind, JRPC_BATCH);

    peek_ok("42", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    peek_ok("{\"id\":1,\"result\":1,\"error\":{}}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    peek_ok("{\"id\":{},\"method\":\"x\"}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
}

/* An escaped method is decoded; a duplicated or escaped member key makes it invalid. */
static void test_peek_tricks(void **state)
{
    struct jrpc_peek pk;
    (void)state;

    peek_ok("{\"id\":1,\"method\":\"tools\\/c\\u0061ll\"}", &pk);
    assert_int_equal(pk.kind, JRPC_REQUEST);
    assert_string_equal(pk.method, "tools/call");

    peek_ok("{\"id\":1,\"method\":\"tools/list\",\"method\":\"tools/call\"}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    /* an escaped key is the same key: decoded, classified as the peer will */
    peek_ok("{\"id\":1,\"\\u006dethod\":\"tools/call\"}", &pk);
    assert_int_equal(pk.kind, JRPC_REQUEST);
    assert_string_equal(pk.method, "tools/call");
    peek_ok("{\"id\":1,\"method\":\"ping\",\"\\u006dethod\":\"tools/call\"}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    peek_ok("{\"id\":1,\"id\":2,\"method\":\"ping\"}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    /* a member that differs in case only is a second "method" to a case-folding peer */
    peek_ok("{\"id\":2,\"method\":\"ping\",\"Method\":\"tools/call\"}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
    peek_ok("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"extra\":1}", &pk);
    assert_int_equal(pk.kind, JRPC_INVALID);
}

static void test_peek_rejects(void **state)
{
    static const char *bad[] = {
        "",
        "   ",
        "{",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":1} {",
        "{\"a\":\"\xc3\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "nul",
        "{\"a\" 1}",
        "garbage",
    };
    struct jrpc_peek pk;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(jrpc_peek(bad[i], strlen(bad[i]), &pk), ERR_PARSE);
}

static void test_peek_depth(void **state)
{
    size_t n = CLAMPD_MAX_JSON_DEPTH + 10;
    char *s = malloc(2 * n + 1);
    struct jrpc_peek pk;
    (void)state;

    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    assert_int_equal(jrpc_peek(s, 2 * n, &pk), ERR_PARSE);
    free(s);
}

static void test_id_key(void **state)
{
    struct dbuf a, b;
    struct jrpc_slice s1 = {"\"A\"", 3}, s2 = {"\"\\u0041\"", 8}, n1 = {"1", 1}, n2 = {"1.0", 3};
    struct jrpc_slice s3 = {"\"1\"", 3};
    (void)state;

    dbuf_init(&a, 4096);
    dbuf_init(&b, 4096);
    assert_int_equal(jrpc_id_key(s1, &a), 0);
    assert_int_equal(jrpc_id_key(s2, &b), 0);
    assert_string_equal(a.ptr, b.ptr);
    assert_int_equal(jrpc_id_key(n1, &a), 0);
    assert_int_equal(jrpc_id_key(n2, &b), 0);
    assert_string_equal(a.ptr, b.ptr);
    assert_int_equal(jrpc_id_key(s3, &b), 0);
    assert_string_not_equal(a.ptr, b.ptr); /* 1 and "1" are different ids */
    dbuf_free(&a);
    dbuf_free(&b);
}

static void test_emit_error(void **state)
{
    struct dbuf b;
    struct jrpc_slice id = {"\"x\"", 3};
    (void)state;

    dbuf_init(&b, 4096);
    assert_int_equal(jrpc_emit_error(&b, id, -32700, "bad \"quote\"\n"), 0);
    assert_string_equal(b.ptr, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32700,"
                               "\"message\":\"bad \\\"quote\\\"\\u000a\"}}\n");
    dbuf_free(&b);
}

struct members {
    char keys[8][64];
    char values[8][64];
    int n;
};

static int collect_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    struct members *m = ctx;
    assert_true(m->n < 8);
    snprintf(m->keys[m->n], sizeof(m->keys[0]), "%s", key ? key : "(long)");
    assert_true(key == NULL || strlen(key) == klen);
    snprintf(m->values[m->n], sizeof(m->values[0]), "%.*s", (int)v.n, v.p);
    m->n++;
    return 0;
}

/* The walker decodes keys and hands back each value's exact bytes. */
static void test_object_each(void **state)
{
    static const char obj[] =
        " { \"name\" : \"echo\", \"argu\\u006dents\":{\"a\":[1,{\"b\":\"}\"}]},"
        "\"n\":-1.5e3 , \"e\":{} } ";
    struct members m = {0};
    struct jrpc_slice s = {obj, strlen(obj)};
    char buf[8];
    (void)state;

    assert_int_equal(jrpc_object_each(s, collect_member, &m), 0);
    assert_int_equal(m.n, 4);
    assert_string_equal(m.keys[0], "name");
    assert_string_equal(m.values[0], "\"echo\"");
    assert_string_equal(m.keys[1], "arguments");
    assert_string_equal(m.values[1], "{\"a\":[1,{\"b\":\"}\"}]}");
    assert_string_equal(m.values[2], "-1.5e3");
    assert_string_equal(m.values[3], "{}");
    s.p = "[1]", s.n = 3;
    assert_int_equal(jrpc_object_each(s, collect_member, &m), ERR_PARSE);
    s.p = "\"echo\"", s.n = 6;
    assert_int_equal(jrpc_string_decode(s, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "echo");
    s.p = "\"too long for it\"", s.n = 17;
    assert_int_equal(jrpc_string_decode(s, buf, sizeof(buf)), -1);
}

static int count_element(void *ctx, size_t index, struct jrpc_slice v)
{
    size_t *n = ctx;
    assert_int_equal(index, *n);
    assert_true(v.n > 0);
    (*n)++;
    return 0;
}

static void test_array_each(void **state)
{
    struct jrpc_slice a = {" [1, \"a]\", {\"b\":[2]}, [] ] ", 27};
    size_t n = 0;
    (void)state;

    a.n = strlen(a.p);
    assert_int_equal(jrpc_array_each(a, count_element, &n), 0);
    assert_int_equal(n, 4);
    a.p = "{}", a.n = 2;
    assert_int_equal(jrpc_array_each(a, count_element, &n), ERR_PARSE);
}

static void test_key_aliases(void **state)
{
    (void)state;
    assert_false(jrpc_key_aliases("name", 4, "name"));
    assert_true(jrpc_key_aliases("Name", 4, "name"));
    assert_true(jrpc_key_aliases("NAME", 4, "name"));
    assert_true(jrpc_key_aliases("argument\xc5\xbf", 10, "arguments")); /* ſ folds to s */
    assert_true(jrpc_key_aliases("\xe2\x84\xaa"
                                 "ey",
                                 5, "key"));            /* Kelvin sign */
    assert_true(jrpc_key_aliases("na\0me", 5, "name")); /* embedded NUL */
    assert_false(jrpc_key_aliases("names", 5, "name"));
    assert_false(jrpc_key_aliases("nam", 3, "name"));
    assert_false(jrpc_key_aliases("arguments", 9, "name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_any_chunking), cmocka_unit_test(test_framer_huge_line),
        cmocka_unit_test(test_framer_limit),        cmocka_unit_test(test_peek_kinds),
        cmocka_unit_test(test_peek_tricks),         cmocka_unit_test(test_peek_rejects),
        cmocka_unit_test(test_peek_depth),          cmocka_unit_test(test_id_key),
        cmocka_unit_test(test_emit_error),          cmocka_unit_test(test_object_each),
        cmocka_unit_test(test_key_aliases),         cmocka_unit_test(test_array_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
