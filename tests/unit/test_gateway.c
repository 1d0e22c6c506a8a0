/* Unit tests: the gateway's edge (routes, request bodies, API keys, statuses), its bounded
 * session table, gateway mode in the engine (claimed descriptor hashes, dry runs, the
 * per-session agent), the limiter's peek, and the metrics text. The HTTP server itself is
 * tested end to end in tests/e2e/gateway.test.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "gateway/gateway-int.h"
#include "policy/policy.h"

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"

static void test_routes(void **state)
{
    int st;

    (void)state;
    assert_int_equal(gw__route("POST", "/v1/proxy", &st), GW_R_PROXY);
    assert_int_equal(st, 0);
    assert_int_equal(gw__route("GET", "/v1/proxy", &st), GW_R_PROXY);
    assert_int_equal(st, 405);
    assert_int_equal(gw__route("GET", "/.well-known/jwks.json", &st), GW_R_JWKS);
    assert_int_equal(st, 0);
    assert_false(gw__route_info(GW_R_JWKS)->auth);
    assert_false(gw__route_info(GW_R_HEALTH)->auth);
    assert_true(gw__route_info(GW_R_METRICS)->auth);
    assert_true(gw__route_info(GW_R_VERIFY)->auth);
    /* exact paths only: no prefix, suffix, case or query tricks */
    const char *nope[] = {"/v1/proxy/", "/V1/proxy", "/v1/proxy?x=1", "/v1//proxy", "", "/"};
    for (size_t i = 0; i < sizeof(nope) / sizeof(nope[0]); i++) {
        assert_int_equal(gw__route("POST", nope[i], &st), GW_R_NONE);
        assert_int_equal(st, 404);
    }
    assert_null(gw__route_info(GW_R_NONE));
}

static int parse_call(const char *body, struct gw__call_req *c, struct gw__error *e)
{
    memset(e, 0, sizeof(*e));
    return gw__parse_call(body, strlen(body), c, e);
}

static void test_parse_call_ok(void **state)
{
    struct gw__call_req c;
    struct gw__error e;
    const char *body = " {\"tool\":\"read_file\",\"params\":{\"path\":\"/a\",\"n\":[1,2]},"
                       "\"tool_descriptor_hash\":\"" H0 "\",\"session_id\":\"s-1\","
                       "\"server\":\"files\",\"prompt_context\":\"hi\"}\n";

    (void)state;
    assert_int_equal(parse_call(body, &c, &e), 0);
    assert_string_equal(c.tool, "read_file");
    assert_string_equal(c.hash, H0);
    assert_string_equal(c.session_id, "s-1");
    assert_string_equal(c.server, "files");
    assert_true(c.has_prompt_context);
    /* params is the raw JSON slice, exactly as sent */
    assert_int_equal(c.params_len, strlen("{\"path\":\"/a\",\"n\":[1,2]}"));
    assert_memory_equal(c.params, "{\"path\":\"/a\",\"n\":[1,2]}", c.params_len);
    /* escapes are decoded; an upper-case hash is accepted and lowered; params null = none */
    assert_int_equal(
        parse_call("{\"tool\":\"r\\u0065ad\",\"params\":null,\"tool_descriptor_hash\":"
                   "\"ABCDEF0000000000000000000000000000000000000000000000000000000000\"}",
                   &c, &e),
        0);
    assert_string_equal(c.tool, "read");
    assert_null(c.params);
    assert_string_equal(c.hash, "abcdef0000000000000000000000000000000000000000000000000000000000");
    assert_string_equal(c.session_id, "");
}

static void expect_refused(const char *body, const char *code)
{
    struct gw__call_req c;
    struct gw__error e;

    assert_int_not_equal(parse_call(body, &c, &e), 0);
    assert_int_equal(e.status, 422);
    if (strcmp(e.code, code) != 0)
        fail_msg("%s: got %s (%s), want %s", body, e.code, e.msg, code);
    assert_true(e.msg[0] != '\0');
}

static void test_parse_call_refusals(void **state)
{
    char big[GW_TOOL_MAX + 200];

    (void)state;
    expect_refused("", "invalid_json");
    expect_refused("{", "invalid_json");
    expect_refused("{} {}", "invalid_json");
    expect_refused("{\"a\":1,}", "invalid_json");
    expect_refused("\"x\"", "invalid_request");
    expect_refused("[{\"tool\":\"x\"}]", "invalid_request");
    expect_refused("{\"tool\":\"x\"}", "missing_field");
    expect_refused("{\"tool_descriptor_hash\":\"" H0 "\"}", "missing_field");
    expect_refused("{\"tool\":1,\"tool_descriptor_hash\":\"" H0 "\"}", "invalid_field");
    expect_refused("{\"tool\":\"\",\"tool_descriptor_hash\":\"" H0 "\"}", "invalid_field");
    expect_refused("{\"tool\":\"a\\u0000b\",\"tool_descriptor_hash\":\"" H0 "\"}", "invalid_field");
    expect_refused("{\"tool\":\"\\udc00\",\"tool_descriptor_hash\":\"" H0 "\"}", "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "0\"}", "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"zz" H0 "\"}", "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":7}", "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"params\":[]}",
                   "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"params\":\"{}\"}",
                   "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"session_id\":\"a\\nb\"}",
                   "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"prompt_context\":{}}",
                   "invalid_field");
    /* SECURITY: duplicates, case-folded aliases and unknown members are refused */
    expect_refused("{\"tool\":\"x\",\"tool\":\"y\",\"tool_descriptor_hash\":\"" H0 "\"}",
                   "duplicate_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"Params\":{}}",
                   "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"paramſ\":{}}",
                   "invalid_field");
    expect_refused("{\"tool\":\"x\",\"tool_descriptor_hash\":\"" H0 "\",\"agent\":\"root\"}",
                   "unknown_field");
    snprintf(big, sizeof(big), "{\"tool_descriptor_hash\":\"" H0 "\",\"tool\":\"%0*d\"}",
             GW_TOOL_MAX + 1, 0);
    expect_refused(big, "invalid_field"); /* a tool name over GW_TOOL_MAX */
}

static void test_parse_scan(void **state)
{
    struct gw__scan_req q;
    struct gw__error e;
    const char *in = "{\"text\":\"a\\u0000b \\u00e9\",\"tool\":\"t\"}";
    const char *out = "{\"result\":{\"content\":[]}}";

    (void)state;
    assert_int_equal(gw__parse_scan(in, strlen(in), false, &q, &e), 0);
    assert_int_equal(q.text_len, 6);
    assert_memory_equal(q.text, "a\0b \xc3\xa9", 6);
    assert_string_equal(q.tool, "t");
    gw__scan_req_deinit(&q);
    assert_int_equal(gw__parse_scan(out, strlen(out), true, &q, &e), 0);
    assert_null(q.text);
    assert_memory_equal(q.object, "{\"content\":[]}", q.object_len);
    gw__scan_req_deinit(&q);
    assert_int_not_equal(gw__parse_scan(out, strlen(out), false, &q, &e), 0); /* not for input */
    assert_string_equal(e.code, "unknown_field");
    const char *both = "{\"text\":\"x\",\"result\":{}}";
    assert_int_not_equal(gw__parse_scan(both, strlen(both), true, &q, &e), 0);
    assert_string_equal(e.code, "invalid_request");
    assert_int_not_equal(gw__parse_scan("{}", 2, true, &q, &e), 0);
    assert_string_equal(e.code, "missing_field");
    assert_int_not_equal(gw__parse_scan("{\"text\":[]}", 11, false, &q, &e), 0);
    assert_string_equal(e.code, "invalid_field");
}

static void test_status_and_action(void **state)
{
    struct engine_verdict v = {0};

    (void)state;
    /* SECURITY: a zeroed verdict is a deny, answered as data, never as an allow */
    assert_int_equal(gw__decision_status(&v), 200);
    assert_string_equal(gw__action(v.verdict), "deny");
    snprintf(v.error_code, sizeof(v.error_code), "rate_limited");
    assert_int_equal(gw__decision_status(&v), 429);
    snprintf(v.error_code, sizeof(v.error_code), "descriptor_hash_mismatch");
    assert_int_equal(gw__decision_status(&v), 409);
    v.verdict = VERDICT_FLAG;
    assert_int_equal(gw__decision_status(&v), 200);
    assert_string_equal(gw__action(v.verdict), "flag");
    assert_string_equal(gw__action(VERDICT_ALLOW), "allow");
    /* SECURITY: an allow whose deferred token was never minted is refused, not sent */
    v.verdict = VERDICT_ALLOW;
    v.token_pending = true;
    assert_int_equal(gw__decision_status(&v), 500);
    v.token_pending = false;
    assert_int_equal(gw__decision_status(&v), 200);
}

static const char policy_text[] =
    "agents:\n"
    "  - id: alice\n"
    "    api_key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "    scopes: ['*']\n"
    "    rate: {calls_per_minute: 60, burst: 1}\n"
    "  - id: nokey\n"
    "    scopes: ['*']\n"
    "categories:\n"
    "  - {name: any, scopes: []}\n"
    "tools:\n"
    "  - {tools: ['*'], category: any}\n";

static struct pol *load_policy(void)
{
    char path[] = "/tmp/clampd-gw-policy-XXXXXX";
    struct pol *p = NULL;
    char *err = NULL;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, policy_text, strlen(policy_text)), (ssize_t)strlen(policy_text));
    close(fd);
    assert_int_equal(pol_load(path, &p, &err), 0);
    unlink(path);
    return p;
}

static void test_authenticate(void **state)
{
    struct pol *p = load_policy();
    char big[GW_KEY_MAX + 2];

    (void)state;
    assert_string_equal(gw__authenticate(p, "test"), "alice"); /* sha256("test") */
    assert_null(gw__authenticate(p, NULL));
    assert_null(gw__authenticate(p, ""));
    assert_null(gw__authenticate(p, "Test"));
    assert_null(gw__authenticate(p, "test "));
    /* the hash itself is not a key */
    assert_null(
        gw__authenticate(p, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(gw__authenticate(p, big));
    pol_free(p);
}

static void test_shell_word(void **state)
{
    struct dbuf b;

    (void)state;
    dbuf_init(&b, 1024);
    assert_int_equal(gw__shell_word(&b, "it's"), 0);
    assert_string_equal(b.ptr, "'it'\\''s'");
    dbuf_free(&b);
}

/* ---- gateway mode in the engine, and the session table ---- */

struct fx {
    char dir[64];
    struct pol *policy;
    struct engine *eng;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char *err = NULL;

    snprintf(f->dir, sizeof(f->dir), "/tmp/clampd-gw-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->policy = load_policy();
    struct engine_config cfg = {.state_dir = f->dir, .agent_id = "gateway", .policy = f->policy};
    assert_int_equal(engine_new(&cfg, &f->eng, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    engine_free(f->eng);
    pol_free(f->policy);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void decide(struct engine_session *s, unsigned flags, struct engine_verdict *v)
{
    struct engine_call c = {.tool = "read", .tool_len = 4, .arguments = "{}", .arguments_len = 2};
    assert_int_equal(engine_decide_ex(s, &c, flags, v), 0);
}

static void test_claims(void **state)
{
    struct fx *f = *state;
    struct engine_session *s = engine_session_new_shared(f->eng, "clampd-gateway --agent 'bob'");
    struct engine_session *t = engine_session_new_shared(f->eng, "clampd-gateway --agent 'carl'");
    struct engine_verdict v;

    assert_non_null(s);
    assert_non_null(t);
    assert_int_equal(engine_session_set_agent(s, "nokey"), 0);
    assert_int_equal(engine_session_set_agent(t, "nokey"), 0);
    assert_string_equal(engine_session_agent(s), "nokey");
    assert_int_equal(engine_session_claim_tool(s, "read", "ABC", false), ERR_INVAL);
    /* unclaimed: not in the session's tool set */
    decide(s, 0, &v);
    assert_string_equal(v.error_code, "unknown_tool");
    /* a dry run pins nothing: another hash may be pinned first for real */
    assert_int_equal(engine_session_claim_tool(s, "read", H1, true), 0);
    decide(s, ENGINE_DECIDE_DRY_RUN, &v);
    assert_int_equal(v.verdict, VERDICT_ALLOW);
    assert_int_equal(engine_session_claim_tool(s, "read", H0, false), 0);
    decide(s, 0, &v);
    assert_int_equal(v.verdict, VERDICT_ALLOW);
    /* a changed hash is a rug pull, also in a dry run and on the next real claim */
    assert_int_equal(engine_session_claim_tool(s, "read", H1, true), 0);
    decide(s, ENGINE_DECIDE_DRY_RUN, &v);
    assert_string_equal(v.error_code, "descriptor_hash_mismatch");
    assert_int_equal(engine_session_claim_tool(s, "read", H1, false), 0);
    decide(s, 0, &v);
    assert_string_equal(v.error_code, "descriptor_hash_mismatch");
    /* the approved hash passes again */
    assert_int_equal(engine_session_claim_tool(s, "read", H0, false), 0);
    decide(s, 0, &v);
    assert_int_equal(v.verdict, VERDICT_ALLOW);
    /* another command (another agent's pins) is not affected */
    assert_int_equal(engine_session_claim_tool(t, "read", H1, false), 0);
    decide(t, 0, &v);
    assert_int_equal(v.verdict, VERDICT_ALLOW);
    engine_session_free(s);
    engine_session_free(t);
}

static void test_dry_run_rate(void **state)
{
    struct fx *f = *state;
    struct engine_session *s = engine_session_new_shared(f->eng, "c");
    struct engine_verdict v;

    assert_int_equal(engine_session_set_agent(s, "alice"), 0); /* burst 1 */
    assert_int_equal(engine_session_claim_tool(s, "read", H0, false), 0);
    for (int i = 0; i < 3; i++) {
        decide(s, ENGINE_DECIDE_DRY_RUN, &v);
        assert_int_equal(v.verdict, VERDICT_ALLOW);
        assert_string_equal(v.scope_token, ""); /* no keys, and never in a dry run */
    }
    decide(s, 0, &v);
    assert_int_equal(v.verdict, VERDICT_ALLOW);
    decide(s, ENGINE_DECIDE_DRY_RUN, &v);
    assert_string_equal(v.error_code, "rate_limited");
    assert_true(v.retry_ms > 0);
    decide(s, 0, &v);
    assert_string_equal(v.error_code, "rate_limited");
    engine_session_free(s);
}

static void test_sessions(void **state)
{
    struct fx *f = *state;
    struct gw__sessions *t = gw__sessions_new(f->eng);
    struct engine_session *a, *b;

    a = gw__sessions_get(t, "alice", "files", "s1", 1000);
    assert_non_null(a);
    assert_string_equal(engine_session_agent(a), "alice");
    assert_string_equal(engine_session_server(a), "files");
    assert_ptr_equal(gw__sessions_get(t, "alice", "files", "s1", 2000), a);
    b = gw__sessions_get(t, "nokey", "files", "s1", 2000);
    assert_ptr_not_equal(a, b);
    /* the separator cannot be forged into another key's session */
    assert_ptr_not_equal(gw__sessions_get(t, "alice", "files\x1fs1", "", 2000), a);
    assert_int_equal(gw__sessions_count(t), 3);
    /* bounded: past GW_MAX_SESSIONS the least recently used go */
    for (int i = 0; i < GW_MAX_SESSIONS + 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        assert_non_null(gw__sessions_get(t, "alice", "files", id, 3000));
    }
    assert_int_equal(gw__sessions_count(t), GW_MAX_SESSIONS);
    /* idle ones go */
    assert_non_null(gw__sessions_get(t, "alice", "files", "late",
                                     3000 + (int64_t)GW_SESSION_IDLE_S * 1000 + 1));
    assert_int_equal(gw__sessions_count(t), 1);
    gw__sessions_free(t);
}

static void test_metrics(void **state)
{
    struct gw__metrics m;
    struct engine_verdict v = {0};
    struct dbuf out;

    (void)state;
    assert_int_equal(gw__metrics_init(&m), 0);
    snprintf(v.error_code, sizeof(v.error_code), "rule_match");
    v.rule_ids[0] = "path.x";
    v.n_rule_ids = 1;
    gw__metrics_verdict(&m, &v, false);
    gw__metrics_verdict(&m, &v, true);
    gw__metrics_status(&m, 401);
    gw__metrics_status(&m, 418);
    gw__metrics_latency(&m, GW_ST_DECIDE, 30000);
    dbuf_init(&out, 1u << 20);
    assert_int_equal(gw__metrics_emit(&m, 7, &out), 0);
    assert_non_null(
        strstr(out.ptr, "clampd_gateway_decisions_total{action=\"deny\",dry_run=\"false\"} 1\n"));
    assert_non_null(
        strstr(out.ptr, "clampd_gateway_decisions_total{action=\"deny\",dry_run=\"true\"} 1\n"));
    assert_non_null(strstr(out.ptr, "clampd_gateway_denials_total{code=\"rule_match\"} 1\n"));
    assert_non_null(strstr(out.ptr, "clampd_gateway_rule_hits_total{rule=\"path.x\"} 1\n"));
    assert_non_null(strstr(out.ptr, "clampd_gateway_http_responses_total{status=\"401\"} 1\n"));
    assert_non_null(strstr(out.ptr, "clampd_gateway_http_responses_total{status=\"other\"} 1\n"));
    assert_non_null(strstr(out.ptr, "stage=\"decide\",le=\"2.5e-05\"} 0\n"));
    assert_non_null(strstr(out.ptr, "stage=\"decide\",le=\"5e-05\"} 1\n"));
    assert_non_null(strstr(out.ptr, "clampd_gateway_sessions 7\n"));
    dbuf_free(&out);
    gw__metrics_deinit(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_parse_call_ok),
        cmocka_unit_test(test_parse_call_refusals),
        cmocka_unit_test(test_parse_scan),
        cmocka_unit_test(test_status_and_action),
        cmocka_unit_test(test_authenticate),
        cmocka_unit_test(test_shell_word),
        cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test(test_metrics),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
