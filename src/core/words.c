/*
 * core: split a command line into words the way a POSIX shell would, without a shell.
 *
 * clampd starts the downstream MCP server from a --downstream "cmd arg ..." string.
 * Handing that string to /bin/sh would give whoever writes the config every shell
 * feature (expansions, redirections, command substitution) and a second parser whose
 * idea of the command may differ from what clampd logged and audited. Instead the line
 * is split here, once, into an argv for execvp, following the quoting rules of POSIX
 * XCU §2.2 and §2.6.7 (quote removal) and nothing else:
 *
 *   blanks        space, tab and newline separate words
 *   '...'         everything literal up to the next single quote
 *   "..."         literal, except \ escapes $ ` " \ and newline (\<newline> vanishes)
 *   \c            outside quotes: c literally; \<newline> vanishes
 *   a'b'"c"       adjacent parts join into one word: abc
 *   '' or ""      an empty word
 *
 * Not done, on purpose: parameter expansion ($HOME stays "$HOME"), command substitution,
 * globbing (* stays *), tilde expansion (~ stays ~), comments (#) and operators
 * (| ; & < > ( ) are ordinary characters that end up in words).
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parser state for one line. */
struct words {
    const char *line;
    size_t pos;       /* next byte to read */
    struct dbuf word; /* the word being built */
    bool in_word;     /* a word has started, even if it is still empty ("" or '') */
    char **argv;      /* NULL-terminated once argc > 0 */
    size_t argc;
    size_t cap;     /* slots in argv, the NULL terminator included */
    size_t err_pos; /* on ERR_PARSE: 0-based offset of the offending quote or backslash */
    const char *err_what;
};

static bool words_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* Moves the current word into argv. */
static int words_push(struct words *w)
{
    char *copy;

    /* SECURITY: bounds argv whatever the line's length. */
    if (w->argc >= CLAMPD_MAX_ARGV)
        return ERR_TOO_BIG;
    if (w->argc + 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **grown = realloc(w->argv, cap * sizeof(*grown));

        if (!grown)
            return ERR_NOMEM;
        grown[w->argc] = NULL; /* keeps argv freeable if the copy below fails */
        w->argv = grown;
        w->cap = cap;
    }
    copy = malloc(w->word.len + 1);
    if (!copy)
        return ERR_NOMEM;
    if (w->word.len)
        memcpy(copy, w->word.ptr, w->word.len);
    copy[w->word.len] = '\0';
    w->argv[w->argc++] = copy;
    w->argv[w->argc] = NULL;
    dbuf_reset(&w->word);
    w->in_word = false;
    return 0;
}

static int words_fail(struct words *w, size_t at, const char *what)
{
    w->err_pos = at;
    w->err_what = what;
    return ERR_PARSE;
}

/* At the opening single quote: copies everything up to the closing one literally. */
static int words_single(struct words *w)
{
    size_t open = w->pos++;
    const char *end = strchr(w->line + w->pos, '\'');
    size_t len;
    int rc;

    if (!end)
        return words_fail(w, open, "unterminated single quote");
    len = (size_t)(end - (w->line + w->pos));
    rc = dbuf_add(&w->word, w->line + w->pos, len);
    w->pos += len + 1;
    w->in_word = true;
    return rc;
}

/* At the opening double quote. Inside, a backslash is special only before the five
 * characters that are special inside double quotes; elsewhere it stays, so "a\b" is
 * a\b, as in sh. */
static int words_double(struct words *w)
{
    size_t open = w->pos++;
    int rc = 0;
    char c;

    w->in_word = true;
    while (rc == 0 && (c = w->line[w->pos]) != '"') {
        char next;

        if (c == '\0')
            return words_fail(w, open, "unterminated double quote");
        next = w->line[w->pos + 1]; /* only now known to be inside the line */
        w->pos++;
        if (c == '\\' && next == '\n') {
            w->pos++; /* line continuation: both bytes vanish */
            continue;
        }
        if (c == '\\' && next != '\0' && strchr("$`\"\\", next)) {
            w->pos++;
            c = next;
        }
        rc = dbuf_addc(&w->word, c);
    }
    w->pos++;
    return rc;
}

/* At a backslash outside quotes: the next character is taken literally, except that
 * backslash-newline is a line continuation and disappears without starting a word. */
static int words_backslash(struct words *w)
{
    size_t at = w->pos++;
    char c = w->line[w->pos];

    if (c == '\0')
        return words_fail(w, at, "trailing backslash");
    w->pos++;
    if (c == '\n')
        return 0;
    w->in_word = true;
    return dbuf_addc(&w->word, c);
}

/* Reads the whole line into w->argv. */
static int words_scan(struct words *w)
{
    int rc = 0;
    char c;

    while (rc == 0 && (c = w->line[w->pos]) != '\0') {
        if (words_is_blank(c)) {
            w->pos++;
            if (w->in_word)
                rc = words_push(w);
        } else if (c == '\'') {
            rc = words_single(w);
        } else if (c == '"') {
            rc = words_double(w);
        } else if (c == '\\') {
            rc = words_backslash(w);
        } else {
            w->in_word = true;
            rc = dbuf_addc(&w->word, c);
            w->pos++;
        }
    }
    if (rc == 0 && w->in_word)
        rc = words_push(w);
    return rc;
}

/* Builds the caller's message for a failure; a NULL errmsg just means none is wanted. */
static void words_errmsg(const struct words *w, int rc, char **errmsg)
{
    char text[128];

    if (!errmsg)
        return;
    if (rc == ERR_PARSE)
        snprintf(text, sizeof(text), "%s at column %zu of the command", w->err_what,
                 w->err_pos + 1);
    else if (rc == ERR_INVAL)
        snprintf(text, sizeof(text), "empty command");
    else if (rc == ERR_TOO_BIG)
        snprintf(text, sizeof(text), "command has more than %u words", CLAMPD_MAX_ARGV);
    else
        snprintf(text, sizeof(text), "cannot split command: %s", clampd_strerror(rc));
    *errmsg = strdup(text);
}

int clampd_split_words(const char *line, char ***argv_out, size_t *argc_out, char **errmsg)
{
    struct words w;
    int rc = ERR_INVAL;

    memset(&w, 0, sizeof(w));
    w.line = line;
    *argv_out = NULL;
    *argc_out = 0;
    if (errmsg)
        *errmsg = NULL;
    if (!line)
        goto out;
    /* No word can be longer than the line it came from. */
    dbuf_init(&w.word, strlen(line));
    rc = words_scan(&w);
    if (rc == 0 && w.argc == 0)
        rc = ERR_INVAL;
    if (rc)
        goto out;
    *argv_out = w.argv;
    *argc_out = w.argc;
    w.argv = NULL;
out:
    if (rc)
        words_errmsg(&w, rc, errmsg);
    dbuf_free(&w.word);
    clampd_free_words(w.argv);
    return rc;
}

void clampd_free_words(char **argv)
{
    size_t i;

    if (!argv)
        return;
    for (i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
}
