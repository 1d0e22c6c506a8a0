/*
 * Unit tests for src/core/words.c: shell-like word splitting without a shell.
 *
 * Expected splits follow what `sh -c 'for a in <line>; do ...'` would see after quote
 * removal, minus every expansion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* Splits line and checks the words against want[0..n). */
static void check_split(const char *line, const char *const *want, size_t n)
{
    char **argv = NULL;
    char *err = NULL;
    size_t argc = 0, i;

    assert_int_equal(clampd_split_words(line, &argv, &argc, &err), 0);
    assert_null(err);
    assert_non_null(argv);
    assert_int_equal(argc, n);
    for (i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[argc]);
    clampd_free_words(argv);
}

#define CHECK(line, ...)                                                                           \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__};                                                 \
        check_split(line, want_, sizeof(want_) / sizeof(want_[0]));                                \
    } while (0)

/* Splitting line fails with rc and a message that contains fragment. */
static void check_fail(const char *line, int rc, const char *fragment)
{
    char **argv = (char **)1;
    char *err = NULL;
    size_t argc = 99;

    assert_int_equal(clampd_split_words(line, &argv, &argc, &err), rc);
    assert_null(argv);
    assert_int_equal(argc, 0);
    assert_non_null(err);
    if (!strstr(err, fragment))
        fail_msg("message \"%s\" lacks \"%s\"", err, fragment);
    free(err);
}

static void test_plain(void **state)
{
    (void)state;
    CHECK("npx -y @modelcontextprotocol/server-filesystem /tmp", "npx", "-y",
          "@modelcontextprotocol/server-filesystem", "/tmp");
    CHECK("cmd", "cmd");
    CHECK("  \t cmd \n  arg\t\t", "cmd", "arg");
    CHECK("uvx mcp-server-git --repository /srv/repo", "uvx", "mcp-server-git", "--repository",
          "/srv/repo");
}

static void test_quotes(void **state)
{
    (void)state;
    CHECK("node '/opt/My Server/index.js' --root \"/home/a b/docs\"", "node",
          "/opt/My Server/index.js", "--root", "/home/a b/docs");
    CHECK("a'b'\"c\"d", "abcd");
    CHECK("'' \"\" x", "", "", "x");
    CHECK("x '' ", "x", "");
    CHECK("--opt='a b' --k=\"c d\"", "--opt=a b", "--k=c d");
    /* Single quotes keep everything: backslashes, double quotes, newlines. */
    CHECK("'a\\b \"c\"\n$HOME'", "a\\b \"c\"\n$HOME");
    /* Double quotes keep single quotes, blanks and newlines. */
    CHECK("\"it's\t\nok\"", "it's\t\nok");
}

static void test_double_quote_backslash(void **state)
{
    (void)state;
    /* Only $ ` " \ and newline are escapable inside double quotes. */
    CHECK("\"\\$x \\` \\\" \\\\\"", "$x ` \" \\");
    CHECK("\"a\\b\\n\\'\"", "a\\b\\n\\'");
    CHECK("\"ab\\\ncd\"", "abcd");
    /* An escaped backslash before a real newline leaves the newline. */
    CHECK("\"a\\\\\nb\"", "a\\\nb");
}

static void test_backslash_outside(void **state)
{
    (void)state;
    CHECK("a\\ b c", "a b", "c");
    CHECK("\\'x\\\"", "'x\"");
    CHECK("\\\\", "\\");
    CHECK("\\n\\$", "n$");
    /* Backslash-newline is a line continuation: it joins, and starts no word. */
    CHECK("ab\\\ncd", "abcd");
    CHECK("a \\\n b", "a", "b");
    CHECK("\\\n cmd", "cmd");
}

static void test_no_expansion(void **state)
{
    (void)state;
    CHECK("echo $HOME ~ *.c ${X:-y} $(id) `id`", "echo", "$HOME", "~", "*.c", "${X:-y}", "$(id)",
          "`id`");
    /* Operators and comments are ordinary characters: nothing here is a pipe or a redirect. */
    CHECK("a|b ; c > /tmp/x & # note", "a|b", ";", "c", ">", "/tmp/x", "&", "#", "note");
    CHECK("caf\xc3\xa9 \xe4\xb8\xad", "caf\xc3\xa9", "\xe4\xb8\xad");
}

static void test_errors(void **state)
{
    (void)state;
    check_fail("", ERR_INVAL, "empty command");
    check_fail(" \t\n ", ERR_INVAL, "empty command");
    check_fail("\\\n", ERR_INVAL, "empty command");
    check_fail("node 'index.js", ERR_PARSE, "unterminated single quote at column 6");
    check_fail("node \"index.js", ERR_PARSE, "unterminated double quote at column 6");
    check_fail("a \"b\\\"", ERR_PARSE, "unterminated double quote at column 3");
    check_fail("ab\\", ERR_PARSE, "trailing backslash at column 3");
    check_fail("x \"y\" '", ERR_PARSE, "column 7");
}

static void test_null_errmsg_and_args(void **state)
{
    char **argv = NULL;
    size_t argc = 0;

    (void)state;
    assert_int_equal(clampd_split_words("'open", &argv, &argc, NULL), ERR_PARSE);
    assert_null(argv);
    assert_int_equal(clampd_split_words(NULL, &argv, &argc, NULL), ERR_INVAL);
    assert_null(argv);
    clampd_free_words(NULL);
}

static void test_word_limit(void **state)
{
    size_t n = CLAMPD_MAX_ARGV, i;
    char *line = malloc(2 * (n + 1) + 1);
    char **argv = NULL;
    size_t argc = 0;

    (void)state;
    assert_non_null(line);
    for (i = 0; i < n; i++) {
        line[2 * i] = 'w';
        line[2 * i + 1] = ' ';
    }
    line[2 * n] = '\0';
    assert_int_equal(clampd_split_words(line, &argv, &argc, NULL), 0);
    assert_int_equal(argc, n);
    assert_null(argv[n]);
    clampd_free_words(argv);
    line[2 * n] = 'x';
    line[2 * n + 1] = '\0';
    check_fail(line, ERR_TOO_BIG, "more than");
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_double_quote_backslash),
        cmocka_unit_test(test_backslash_outside),
        cmocka_unit_test(test_no_expansion),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_null_errmsg_and_args),
        cmocka_unit_test(test_word_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
