/* Unit tests: rule pack loading (strictness and file:line messages), Hyperscan compile and
 * scan per target, UTF-8 rules on invalid input, and the examples self-test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "inspect/inspect-int.h"
#include "inspect/inspect.h"

static char dir[64];

static const char *write_pack(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char good[] = "rules:\n"
                           "  - id: t.dotdot\n"
                           "    category: path_traversal\n"
                           "    risk: 0.8\n"
                           "    applies_to: [arguments]\n"
                           "    description: parent segments\n"
                           "    patterns: ['(?:^|/)\\.\\.(?:/|$)']\n"
                           "    examples:\n"
                           "      match: ['../etc/passwd', 'a/../../b']\n"
                           "      no_match: ['a..b', 'v1..v2']\n"
                           "  - id: t.important\n"
                           "    category: tool_poisoning\n"
                           "    risk: 0.9\n"
                           "    applies_to: [description, response]\n"
                           "    description: hidden important tags\n"
                           "    flags: [caseless]\n"
                           "    patterns: ['<important>']\n"
                           "    examples:\n"
                           "      match: ['x <IMPORTANT> y']\n"
                           "      no_match: ['important things']\n"
                           "  - id: t.zwsp\n"
                           "    category: invisible\n"
                           "    risk: 0.6\n"
                           "    applies_to: [arguments]\n"
                           "    description: zero-width space\n"
                           "    flags: [utf8]\n"
                           "    patterns: ['\\x{200B}']\n"
                           "    examples:\n"
                           "      match: [\"a\\u200bb\"]\n"
                           "      no_match: ['ab']\n";

struct hits {
    size_t rules[8];
    size_t n;
};

static int collect(void *ctx, size_t rule)
{
    struct hits *h = ctx;
    if (h->n < 8)
        h->rules[h->n++] = rule;
    return 0;
}

static struct insp_ruleset *load(const char *path, char **err)
{
    struct insp_ruleset *rs = NULL;
    const char *paths[] = {path};
    *err = NULL;
    if (insp_ruleset_load(paths, 1, &rs, err))
        return NULL;
    return rs;
}

static void test_load_and_scan(void **state)
{
    char *err;
    struct insp_ruleset *rs = load(write_pack("good.yaml", good), &err);
    struct insp_scratch *sc;
    struct hits h = {0};
    size_t checked;
    (void)state;

    assert_non_null(rs);
    assert_int_equal(insp_ruleset_count(rs), 3);
    sc = insp_scratch_new(rs);
    assert_non_null(sc);
    assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS, "../../x", 7, collect, &h), 0);
    assert_int_equal(h.n, 1); /* one report per rule, however many matches */
    assert_string_equal(insp_ruleset_rule(rs, h.rules[0])->id, "t.dotdot");
    h.n = 0;
    /* a description-only rule does not fire on arguments, and vice versa */
    assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS, "<important>", 11, collect, &h), 0);
    assert_int_equal(h.n, 0);
    assert_int_equal(insp_scan(rs, sc, INSP_RESPONSE, "<Important>", 11, collect, &h), 0);
    assert_int_equal(h.n, 1);
    h.n = 0;
    /* UTF-8 rules see valid UTF-8 only: invalid input is scanned with each bad byte as
     * U+FFFD, so one stray byte neither turns the rules off nor is undefined behaviour */
    assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS,
                               "a\xe2\x80\x8b"
                               "b",
                               5, collect, &h),
                     0);
    assert_int_equal(h.n, 1);
    h.n = 0;
    assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS, "\xff\xe2\x80\x8b", 4, collect, &h), 0);
    assert_int_equal(h.n, 1);
    h.n = 0;
    assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS, "\xe2\x80\xff", 3, collect, &h), 0);
    assert_int_equal(h.n, 0); /* a broken sequence is not the character */
    assert_int_equal(insp_selftest(rs, sc, stderr, &checked), 0);
    assert_int_equal(checked, 10); /* 4 + 2x2 (t.important on both its targets) + 2 */
    insp_scratch_free(sc);
    insp_ruleset_free(rs);
}

/* A rule whose examples do not hold is reported by the self-test. */
static void test_selftest_failure(void **state)
{
    char *err;
    static const char pack[] = "rules:\n"
                               "  - id: t.bad\n    category: c\n    risk: 0.1\n"
                               "    applies_to: [arguments]\n    description: d\n"
                               "    patterns: ['abc']\n"
                               "    examples: {match: ['xyz'], no_match: ['abcd']}\n";
    struct insp_ruleset *rs = load(write_pack("bad.yaml", pack), &err);
    struct insp_scratch *sc;
    size_t checked;
    FILE *devnull = fopen("/dev/null", "w");
    (void)state;

    assert_non_null(rs);
    sc = insp_scratch_new(rs);
    assert_int_equal(insp_selftest(rs, sc, devnull, &checked), 2);
    fclose(devnull);
    insp_scratch_free(sc);
    insp_ruleset_free(rs);
}

static void expect_error(const char *pack, const char *needle)
{
    char *err;
    struct insp_ruleset *rs = load(write_pack("err.yaml", pack), &err);

    assert_null(rs);
    assert_non_null(err);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    free(err);
}

static void test_strict_errors(void **state)
{
    static const char head[] = "rules:\n  - id: t.x\n    category: c\n    risk: 0.5\n"
                               "    applies_to: [arguments]\n    description: d\n";
    char buf[1024];
    (void)state;

    snprintf(buf, sizeof(buf),
             "%s    patterns: ['a']\n    examples: {match: [a], no_match: [b]}\n"
             "    severity: high\n",
             head);
    expect_error(buf, "err.yaml:9: unknown key 'severity'");
    snprintf(buf, sizeof(buf),
             "%s    patterns: ['a(']\n    examples: {match: [a], no_match: [b]}\n", head);
    expect_error(buf, "rule 't.x': pattern 'a('");
    snprintf(buf, sizeof(buf), "%s    patterns: ['a']\n", head);
    expect_error(buf, "needs examples");
    expect_error("rules:\n  - id: t.y\n    category: c\n    risk: 2\n", "risk");
    expect_error("rules:\n  - {id: T!, category: c, risk: 0.1, applies_to: [arguments], "
                 "description: d, patterns: [a], examples: {match: [a], no_match: [b]}}\n",
                 "use a-z");
    expect_error("rules:\n  - {id: t.z, category: c, risk: 0.1, applies_to: [everything], "
                 "description: d, patterns: [a], examples: {match: [a], no_match: [b]}}\n",
                 "unknown applies_to 'everything'");
    expect_error("rules: [\n", "err.yaml");
    expect_error("rulez: []\n", "unknown top-level key");
    snprintf(buf, sizeof(buf),
             "%s    patterns: ['a']\n    examples: {match: [a], no_match: [b]}\n"
             "%s    patterns: ['b']\n    examples: {match: [b], no_match: [a]}\n",
             head, head + strlen("rules:\n"));
    expect_error(buf, "already defined");
}

/* The packs shipped inside clampd load, compile, and pass their own examples. */
static void test_builtin_packs(void **state)
{
    struct insp_ruleset *rs = NULL;
    struct insp_scratch *sc;
    char *err = NULL;
    size_t checked;
    (void)state;

    if (insp_ruleset_load_builtin(&rs, &err))
        fail_msg("built-in packs: %s", err);
    assert_true(insp_ruleset_count(rs) > 0);
    sc = insp_scratch_new(rs);
    assert_non_null(sc);
    assert_int_equal(insp_selftest(rs, sc, stderr, &checked), 0);
    assert_true(checked >= 2 * insp_ruleset_count(rs));
    insp_scratch_free(sc);
    insp_ruleset_free(rs);
}

static void test_validators(void **state)
{
    (void)state;
    /* Luhn: published test card numbers pass, one digit off fails */
    assert_true(insp_validate("luhn", "4111111111111111", 16));
    assert_true(insp_validate("luhn", "3782 822463 10005", 17));
    assert_true(insp_validate("luhn", "5500-0000-0000-0004", 19));
    assert_false(insp_validate("luhn", "4111111111111112", 16));
    assert_false(insp_validate("luhn", "411111111111", 12)); /* too short */
    assert_false(insp_validate("luhn", "4111x11111111111", 16));
    /* IBAN mod-97 with the registry's examples */
    assert_true(insp_validate("iban", "DE89 3704 0044 0532 0130 00", 27));
    assert_true(insp_validate("iban", "GB82WEST12345698765432", 22));
    assert_true(insp_validate("iban", "fr1420041010050500013m02606", 27));
    assert_false(insp_validate("iban", "DE89 3704 0044 0532 0130 01", 27));
    assert_false(insp_validate("iban", "GB82", 4));
    /* SSN area, group and serial rules */
    assert_true(insp_validate("ssn", "078-05-1120", 11));
    assert_false(insp_validate("ssn", "000-12-3456", 11));
    assert_false(insp_validate("ssn", "666-12-3456", 11));
    assert_false(insp_validate("ssn", "912-12-3456", 11));
    assert_false(insp_validate("ssn", "123-00-4567", 11));
    assert_false(insp_validate("ssn", "123-45-0000", 11));
    assert_false(insp_validate("nope", "x", 1));
}

static int ignore_rule(void *ctx, size_t rule)
{
    (void)ctx, (void)rule;
    return 0;
}

/* Redaction replaces only validated spans, merges overlaps, keeps everything else. */
static void test_redact(void **state)
{
    static const char pack[] =
        "rules:\n"
        "  - {id: r.card, category: pii, risk: 0.6, applies_to: [response], description: d,\n"
        "     validator: luhn, redact: credit_card,\n"
        "     patterns: ['\\b[0-9]{13,19}\\b', '\\b[0-9]{4}(?:[ -][0-9]{4}){3}\\b'],\n"
        "     examples: {match: ['4111111111111111'], no_match: ['4111111111111112']}}\n"
        "  - {id: r.mail, category: pii, risk: 0.3, applies_to: [response], description: d,\n"
        "     redact: email, patterns: ['[a-z]+@[a-z]+\\.[a-z]{2,6}'],\n"
        "     examples: {match: ['a@b.io'], no_match: ['a@b']}}\n";
    static const char text[] = "pay 4111 1111 1111 1111 or 4111111111111112; mail bob@corp.io.";
    char *err;
    struct insp_ruleset *rs = load(write_pack("pii.yaml", pack), &err);
    struct insp_scratch *sc;
    struct dbuf out;
    size_t n;
    (void)state;

    assert_non_null(rs);
    sc = insp_scratch_new(rs);
    dbuf_init(&out, 1 << 20);
    assert_int_equal(insp_redact(rs, sc, text, strlen(text), &out, &n, ignore_rule, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out.ptr,
                        "pay [REDACTED:credit_card] or 4111111111111112; mail [REDACTED:email].");
    assert_int_equal(insp_redact(rs, sc, "nothing here", 12, &out, &n, ignore_rule, NULL), 0);
    assert_int_equal(n, 0);
    dbuf_free(&out);
    insp_scratch_free(sc);
    insp_ruleset_free(rs);
}

/* A validator's span can be wider than its pattern's match: the built-in MRZ rule finds the
 * line's middle and redacts the whole 44-character line, never a line that continues a
 * longer run, nor one cut short at the text's edge. */
static void test_redact_wider_span(void **state)
{
    static const char line[] = "L898902C36UTO7408122F1204159ZE184226B<<<<<10";
    char *err = NULL, text[256];
    struct insp_ruleset *rs = NULL;
    struct insp_scratch *sc;
    struct dbuf out;
    size_t n;
    (void)state;

    /* the built-in packs, compiled once for the suite (make check sets XDG_CACHE_HOME) */
    const char *xdg = getenv("XDG_CACHE_HOME");
    char cache[512];
    snprintf(cache, sizeof(cache), "%s/clampd", xdg ? xdg : "");
    if (xdg)
        mkdir(cache, 0700);
    assert_int_equal(insp_ruleset_load_cached(NULL, 0, xdg ? cache : NULL, &rs, &err), 0);
    sc = insp_scratch_new(rs);
    dbuf_init(&out, 1 << 20);
    snprintf(text, sizeof(text), "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n%s\nend", line);
    assert_int_equal(insp_redact(rs, sc, text, strlen(text), &out, &n, ignore_rule, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out.ptr, "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
                                 "[REDACTED:passport_mrz]\nend");
    /* the same line continuing a longer run, or with its head cut off: not an MRZ line */
    snprintf(text, sizeof(text), "X%s", line);
    assert_int_equal(insp_redact(rs, sc, text, strlen(text), &out, &n, ignore_rule, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(insp_redact(rs, sc, line + 3, strlen(line) - 3, &out, &n, ignore_rule, NULL),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(insp_redact(rs, sc, line, strlen(line) - 1, &out, &n, ignore_rule, NULL), 0);
    assert_int_equal(n, 0);
    dbuf_free(&out);
    insp_scratch_free(sc);
    insp_ruleset_free(rs);
}

/* The compiled databases are cached; a cached or a damaged cache file gives the same
 * scanner as a fresh compile. */
static void test_cache(void **state)
{
    char cache[128], cmd[1024], *err = NULL;
    const char *paths[] = {write_pack("good.yaml", good)};
    struct insp_ruleset *rs = NULL;
    struct insp_scratch *sc;
    struct hits h = {0};
    (void)state;

    snprintf(cache, sizeof(cache), "%s/cache", dir);
    /* a cache file of other rules, unused for a month, and a recent one */
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && touch -d '30 days ago' '%s/rules-old.hsdb' && touch"
             " '%s/rules-recent.hsdb' '%s/notes.txt'",
             cache, cache, cache, cache);
    assert_int_equal(system(cmd), 0);
    for (int round = 0; round < 3; round++) {
        if (round == 2) { /* damage the cache file: it must be rebuilt, not trusted */
            snprintf(cmd, sizeof(cmd),
                     "for f in '%s'/rules-*.hsdb; do printf garbage > \"$f\"; done", cache);
            assert_int_equal(system(cmd), 0);
        }
        assert_int_equal(insp_ruleset_load_cached(paths, 1, cache, &rs, &err), 0);
        sc = insp_scratch_new(rs);
        h.n = 0;
        assert_int_equal(insp_scan(rs, sc, INSP_ARGUMENTS, "../../x", 7, collect, &h), 0);
        assert_int_equal(h.n, 1);
        insp_scratch_free(sc);
        insp_ruleset_free(rs);
    }
    snprintf(cmd, sizeof(cmd), "ls '%s'/rules-*.hsdb >/dev/null", cache);
    assert_int_equal(system(cmd), 0);
    /* writing a cache file removed the one unused for a month, and nothing else */
    snprintf(cmd, sizeof(cmd),
             "test ! -e '%s/rules-old.hsdb' && test -e '%s/rules-recent.hsdb' && test -e"
             " '%s/notes.txt'",
             cache, cache, cache);
    assert_int_equal(system(cmd), 0);
}

/* The whitespace-collapsed rewrite happens only where it cannot lose a match. */
static void test_spaced_rewrite(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ignore\\s+previous\\s+instructions", "ignore previous instructions"},
        {"do\\s*not\\s+tell", "do ?not tell"},
        {"a\\sb[\\s,]c", "a b[\\s,]c"}, /* \\s in a class stays */
        {"(?:foo|bar)\\s+baz", "(?:foo|bar) baz"},
        {"no whitespace token", NULL},
        {"foo(?:\\s|-){2}bar", NULL},  /* a repeated group holding \\s */
        {"alpha +\\sbeta", NULL},      /* a repeated literal space */
        {"gamma[ ,]\\s+delta", NULL},  /* a whitespace class next to \\s */
        {"(?x)epsilon\\s+zeta", NULL}, /* inline flags */
        {"eta\\s+theta\\x{09}iota", NULL},
        {"a\\s+b\\011c", NULL}, /* octal */
        {"a\\s+b\\cIc", NULL},  /* control escape */
        {"a\\s{2,}b", NULL},
        {"a\\s+?b", NULL},
        {"a\\s\\s+b", NULL},
        {"a\\s+[[:space:]]b", NULL},
        {"a  b\\s+c", NULL},
        {"a\\n\\s+b", NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = insp__spaced_pattern(cases[i].in);
        if ((got == NULL) != (cases[i].out == NULL) || (got && strcmp(got, cases[i].out) != 0))
            fail_msg("%s: got %s, want %s", cases[i].in, got ? got : "(not rewritten)",
                     cases[i].out ? cases[i].out : "(not rewritten)");
        free(got);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/clampd-insp-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_scan),     cmocka_unit_test(test_selftest_failure),
        cmocka_unit_test(test_strict_errors),     cmocka_unit_test(test_builtin_packs),
        cmocka_unit_test(test_validators),        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_redact_wider_span), cmocka_unit_test(test_cache),
        cmocka_unit_test(test_spaced_rewrite),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
