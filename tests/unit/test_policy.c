/* Unit tests: the policy loader (strict, file:line errors), tool → category mapping,
 * scope coverage, API-key lookup, and the rate limiter's token buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

static char path[64];

static struct pol *load_text(const char *text, char **err)
{
    struct pol *p = NULL;
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "/tmp/clampd-policy-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    *err = NULL;
    if (pol_load(path, &p, err))
        p = NULL;
    unlink(path);
    return p;
}

static const char good[] =
    "thresholds: {deny: 0.8, flag: 0.5}\n"
    "actions: {pii: redact, response_injection: block}\n"
    "agents:\n"
    "  - id: alice\n"
    "    scopes: [fs:read, 'net:*']\n"
    "    rate: {calls_per_minute: 60, burst: 2, bytes_per_minute: 1000}\n"
    "  - id: bob\n"
    "    api_key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    "    scopes: ['*']\n"
    "tools:\n" /* before the categories: read after them */
    "  - {server: 'files-*', tools: ['read_*', list_directory], category: fs-read}\n"
    "  - {tools: [write_file], category: fs-write}\n"
    "  - {server: '*', tools: [fetch], category: web}\n"
    "categories:\n"
    "  - {name: fs-read, scopes: [fs:read]}\n"
    "  - {name: fs-write, scopes: [fs:write]}\n"
    "  - {name: web, scopes: [net:http]}\n"
    "  - {name: open, scopes: []}\n";

static void test_lookups(void **state)
{
    char *err, missing[64];
    struct pol *p = load_text(good, &err);
    (void)state;

    if (!p)
        fail_msg("%s", err);
    assert_string_equal(pol_tool_category(p, "files-server", "read_text_file"), "fs-read");
    assert_string_equal(pol_tool_category(p, "files-server", "list_directory"), "fs-read");
    assert_null(pol_tool_category(p, "other", "read_text_file"));            /* server glob */
    assert_string_equal(pol_tool_category(p, "", "write_file"), "fs-write"); /* server '*' */
    assert_null(pol_tool_category(p, "files-server", "Read_file"));          /* tools: exact case */
    assert_null(pol_tool_category(p, "files-server", "delete_file"));

    assert_true(pol_agent_allows(p, "alice", "fs-read", missing, sizeof(missing)));
    assert_true(pol_agent_allows(p, "alice", "web", missing, sizeof(missing))); /* net:* */
    assert_false(pol_agent_allows(p, "alice", "fs-write", missing, sizeof(missing)));
    assert_string_equal(missing, "fs:write");
    assert_true(pol_agent_allows(p, "bob", "fs-write", missing, sizeof(missing))); /* '*' */
    assert_true(pol_agent_allows(p, "alice", "open", missing, sizeof(missing)));
    assert_false(pol_agent_allows(p, "mallory", "open", missing, sizeof(missing)));
    assert_string_equal(missing, "");
    assert_false(pol_agent_allows(p, "alice", "nope", missing, sizeof(missing)));

    assert_string_equal(
        pol_agent_by_key(p, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        "bob");
    assert_null(
        pol_agent_by_key(p, "0f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    assert_null(pol_agent_by_key(p, "9f86"));
    assert_null(pol_agent_by_key(p, NULL));

    assert_true(pol_deny_risk(p) > 0.79 && pol_deny_risk(p) < 0.81);
    assert_true(pol_flag_risk(p) > 0.49 && pol_flag_risk(p) < 0.51);
    assert_int_equal(pol_fail_mode(p), POL_FAIL_CLOSED);
    assert_int_equal(pol_finding_action(p, "pii"), POL_ACTION_REDACT);
    assert_int_equal(pol_finding_action(p, "response_injection"), POL_ACTION_BLOCK);
    assert_int_equal(pol_finding_action(p, "secrets"), POL_ACTION_DEFAULT);
    assert_int_equal(pol_category_count(p), 4);
    struct pol_rate r = pol_agent_rate(p, "alice");
    assert_true(r.calls_per_minute == 60 && r.burst == 2 && r.bytes_per_minute == 1000);
    pol_free(p);
}

struct bad {
    const char *text, *want;
};

static void test_strict(void **state)
{
    static const struct bad cases[] = {
        {"agents: [{id: a, scopes: [fs:read], colour: red}]\n",
         ":1: unknown key 'colour' in an agent"},
        {"categories: [{name: c}]\ntools: [{tools: [x], category: d}]\n",
         ":2: category 'd' is not defined"},
        {"agents:\n  - {id: a}\n  - {id: a}\n", ":3: agent 'a' is defined twice"},
        {"agents: [{id: a, scopes: ['FS:Read']}]\n", "scope 'FS:Read'"},
        {"thresholds: {deny: 0.3, flag: 0.6}\n", "flag (0.6) is above deny (0.3)"},
        {"thresholds: {deny: 2}\n", "'deny' must be a number from 0.01 to 1"},
        {"actions: {pii: shred}\n", "the action for 'pii' is redact, flag or block"},
        {"agents: [{id: a, api_key_sha256: abc}]\n", "must be 64 hex digits"},
        {"fail_mode: sometimes\n", "'fail_mode' is closed or open"},
        {"agent: []\n", "unknown top-level key 'agent'"},
        {"agents: [{id: a, id: b}]\n", "'id' appears twice"},
        {"tools: [{server: x, category: c}]\ncategories: [{name: c}]\n",
         "needs 'tools' and a 'category'"},
        {"agents: {id: a}\n", "'agents' must be a list"},
        {"agents: [ {id: a\n", "did not find expected"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *err = NULL;
        struct pol *p = load_text(cases[i].text, &err);
        if (p || !err || !strstr(err, cases[i].want))
            fail_msg("case %zu: got %s, want ...%s", i, err ? err : "(loaded)", cases[i].want);
        assert_non_null(strstr(err, "/tmp/clampd-policy-")); /* file name first */
        free(err);
    }
    char *err = NULL;
    struct pol *p = NULL;
    assert_int_equal(pol_load("/nonexistent/policy.yaml", &p, &err), ERR_IO);
    assert_non_null(strstr(err, "No such file"));
    free(err);
}

static void test_limiter(void **state)
{
    struct pol_limiter *l = pol_limiter_new();
    struct pol_rate r = {.calls_per_minute = 60, .burst = 2, .bytes_per_minute = 1000};
    int64_t retry;
    const char *which;
    (void)state;

    /* a burst of two, then one per second */
    assert_true(pol_limiter_take(l, &r, "a", "t", 10, 0, &retry, &which));
    assert_true(pol_limiter_take(l, &r, "a", "t", 10, 1, &retry, &which));
    assert_false(pol_limiter_take(l, &r, "a", "t", 10, 2, &retry, &which));
    assert_string_equal(which, "calls per minute");
    assert_true(retry > 900 && retry <= 1000);
    assert_true(pol_limiter_take(l, &r, "b", "t", 10, 2, &retry, &which)); /* per agent */
    assert_true(pol_limiter_take(l, &r, "a", "t", 10, 1100, &retry, &which));
    /* bytes: 1000 per minute; b spent 10, so 995 more do not fit yet */
    assert_false(pol_limiter_take(l, &r, "b", "t", 995, 3, &retry, &which));
    assert_string_equal(which, "argument bytes per minute");
    assert_true(retry > 0 && retry < 400);
    /* a call bigger than the bucket can never pass */
    struct pol_rate big = {.bytes_per_minute = 100};
    assert_false(pol_limiter_take(l, &big, "c", "t", 101, 0, &retry, &which));
    assert_int_equal(retry, -1);
    /* per tool */
    struct pol_rate pt = {.tool_calls_per_minute = 6};
    assert_true(pol_limiter_take(l, &pt, "d", "x", 0, 0, &retry, &which));
    assert_false(pol_limiter_take(l, &pt, "d", "x", 0, 0, &retry, &which));
    assert_string_equal(which, "calls per minute to this tool");
    assert_true(pol_limiter_take(l, &pt, "d", "y", 0, 0, &retry, &which));
    /* no limits: always passes */
    struct pol_rate none = {0};
    for (int i = 0; i < 1000; i++)
        assert_true(pol_limiter_take(l, &none, "e", "t", 1 << 20, 0, &retry, &which));
    pol_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_limiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
