/*
 * scan: owning Hyperscan (after Suricata's util-mpm-hs.c): databases per target, scratch
 * per thread, errors translated where the call is made.
 */
#include "inspect/inspect-int.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

static const char *const target_names[INSP__TARGETS] = {"arguments", "description", "response"};

const char *insp_target_name(enum insp_target t)
{
    return t < INSP__TARGETS ? target_names[t] : "?";
}

/* One scope list (see insp_rule_in_scope()). */
static bool list_allows(const struct insp_strv *sv, const char *name)
{
    bool has_plain = false, plain_hit = false;

    for (size_t i = 0; i < sv->n; i++) {
        const char *g = sv->v[i];
        bool neg = g[0] == '!';
        bool hit = name && *name && fnmatch(neg ? g + 1 : g, name, FNM_CASEFOLD) == 0;
        if (neg && hit)
            return false;
        if (!neg) {
            has_plain = true;
            plain_hit |= hit;
        }
    }
    return !has_plain || plain_hit;
}

bool insp_rule_in_scope(const struct insp_rule *r, const char *tool, const char *field)
{
    return list_allows(&r->tools, tool) && list_allows(&r->fields, field);
}

void insp__strv_free(struct insp_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

void insp__rule_deinit(struct insp_rule *r)
{
    /* the rewritten patterns first: their count is the patterns' */
    if (r->spaced)
        for (size_t i = 0; i < r->patterns.n; i++)
            free(r->spaced[i]);
    free(r->spaced);
    r->spaced = NULL;
    free(r->id);
    free(r->category);
    free(r->description);
    free(r->file);
    free(r->redact);
    insp__strv_free(&r->patterns);
    insp__strv_free(&r->tools);
    insp__strv_free(&r->fields);
    insp__strv_free(&r->match);
    insp__strv_free(&r->no_match);
}

char *insp__join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

int insp__ruleset_add(struct insp_ruleset *rs, struct insp_rule *r)
{
    if (rs->n >= INSP_MAX_RULES)
        return ERR_TOO_BIG;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        struct insp_rule *v = realloc(rs->rules, cap * sizeof(*v));
        if (!v)
            return ERR_NOMEM;
        rs->rules = v;
        rs->cap = cap;
    }
    rs->rules[rs->n++] = *r; /* the ruleset owns its strings now */
    memset(r, 0, sizeof(*r));
    return 0;
}

void insp_ruleset_free(struct insp_ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        insp__rule_deinit(&rs->rules[i]);
    free(rs->rules);
    for (int t = 0; t < INSP__TARGETS; t++)
        for (int u = 0; u < INSP_DB__KINDS; u++) {
            hs_free_database(rs->db[t][u].db);
            free(rs->db[t][u].rule_of);
        }
    free(rs);
}

size_t insp_ruleset_count(const struct insp_ruleset *rs)
{
    return rs->n;
}

const struct insp_rule *insp_ruleset_rule(const struct insp_ruleset *rs, size_t i)
{
    return i < rs->n ? &rs->rules[i] : NULL;
}

/* ---- the compiled-database cache ----
 * Compiling a few hundred rules takes seconds; the databases are cached in a file named by
 * the SHA-256 of everything that determines them (Hyperscan's version, the platform, and
 * every pattern with its flags, in order), written atomically with mode 0600. */

#define CACHE_KEY_HEX 64
#define CACHE_MAGIC "clampd-hsdb-2\n"

static void cache_key(const struct insp_ruleset *rs,
                      const char **exprs[INSP__TARGETS][INSP_DB__KINDS],
                      unsigned *flags[INSP__TARGETS][INSP_DB__KINDS], char hex[CACHE_KEY_HEX + 1])
{
    crypto_hash_sha256_state st;
    unsigned char h[32];
    hs_platform_info_t plat;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)hs_version(), strlen(hs_version()));
    if (hs_populate_platform(&plat) == HS_SUCCESS)
        crypto_hash_sha256_update(&st, (const unsigned char *)&plat, sizeof(plat));
    for (int t = 0; t < INSP__TARGETS; t++)
        for (int u = 0; u < INSP_DB__KINDS; u++) {
            uint64_t n = rs->db[t][u].n;
            crypto_hash_sha256_update(&st, (const unsigned char *)&n, sizeof(n));
            for (size_t i = 0; i < n; i++) {
                crypto_hash_sha256_update(&st, (const unsigned char *)&flags[t][u][i],
                                          sizeof(flags[t][u][i]));
                crypto_hash_sha256_update(&st, (const unsigned char *)exprs[t][u][i],
                                          strlen(exprs[t][u][i]) + 1);
            }
        }
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, CACHE_KEY_HEX + 1, h, sizeof(h));
}

static char *cache_path(const char *dir, const char *key, const char *suffix)
{
    size_t n = strlen(dir) + strlen(key) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/rules-%s.hsdb%s", dir, key, suffix);
    return p;
}

static int cache_load(struct insp_ruleset *rs, const char *dir, const char *key)
{
    char *path = cache_path(dir, key, "");
    int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    char magic[sizeof(CACHE_MAGIC)];
    int rc = ERR_NOT_FOUND;

    if (!f)
        goto out;
    if (fread(magic, 1, sizeof(CACHE_MAGIC) - 1, f) != sizeof(CACHE_MAGIC) - 1 ||
        memcmp(magic, CACHE_MAGIC, sizeof(CACHE_MAGIC) - 1) != 0)
        goto out;
    for (int t = 0; t < INSP__TARGETS; t++)
        for (int u = 0; u < INSP_DB__KINDS; u++) {
            uint64_t len;
            char *buf;
            if (fread(&len, sizeof(len), 1, f) != 1 || (len == 0) != (rs->db[t][u].n == 0) ||
                len > (uint64_t)1 << 30)
                goto out;
            if (!len)
                continue;
            buf = malloc(len);
            if (!buf || fread(buf, 1, len, f) != len ||
                hs_deserialize_database(buf, len, &rs->db[t][u].db) != HS_SUCCESS) {
                free(buf);
                goto out;
            }
            free(buf);
        }
    rc = 0;
    futimens(fileno(f), NULL); /* in use: not pruned */
out:
    if (rc) /* a partial load is undone: everything is compiled afresh */
        for (int t = 0; t < INSP__TARGETS; t++)
            for (int u = 0; u < INSP_DB__KINDS; u++) {
                hs_free_database(rs->db[t][u].db);
                rs->db[t][u].db = NULL;
            }
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* Cache files not used for CACHE_KEEP_DAYS (a load refreshes a file's mtime) are removed
 * when a new one is written, so editing rules does not fill the disk with 10 MB files. */
#define CACHE_KEEP_DAYS 14

static void cache_prune(const char *dir)
{
    DIR *d = opendir(dir);
    time_t cut = time(NULL) - (time_t)CACHE_KEEP_DAYS * 86400;
    struct dirent *de;
    struct stat st;

    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "rules-", 6) != 0 || n < 5 ||
            strcmp(de->d_name + n - 5, ".hsdb") != 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_mtime < cut && unlinkat(dirfd(d), de->d_name, 0) == 0)
            clog_debug("removed the unused compiled-rules cache %s/%s", dir, de->d_name);
    }
    if (d)
        closedir(d);
}

static void cache_store(const struct insp_ruleset *rs, const char *dir, const char *key)
{
    char *path = cache_path(dir, key, ""), *tmp = cache_path(dir, key, ".tmp");
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    bool ok = f && fwrite(CACHE_MAGIC, 1, sizeof(CACHE_MAGIC) - 1, f) == sizeof(CACHE_MAGIC) - 1;

    for (int t = 0; ok && t < INSP__TARGETS; t++)
        for (int u = 0; ok && u < INSP_DB__KINDS; u++) {
            char *bytes = NULL;
            size_t len = 0;
            uint64_t n;
            if (rs->db[t][u].db &&
                hs_serialize_database(rs->db[t][u].db, &bytes, &len) != HS_SUCCESS) {
                ok = false;
                break;
            }
            n = len;
            ok = fwrite(&n, sizeof(n), 1, f) == 1 && (!len || fwrite(bytes, 1, len, f) == len);
            free(bytes);
        }
    if (f && fclose(f))
        ok = false;
    else if (!f && fd >= 0)
        close(fd);
    if (ok && rename(tmp, path) == 0) {
        clog_debug("cached the compiled rules in %s", path);
        cache_prune(dir);
    } else if (tmp)
        unlink(tmp);
    free(path);
    free(tmp);
}

int insp__db_kind(const struct insp_rule *r)
{
    if (r->validator > 0 || r->redact)
        return INSP_DB_SPAN;
    return r->flags & INSP_FLAG_UTF8 ? INSP_DB_UTF8 : INSP_DB_BYTES;
}

int insp__pattern_kind(const struct insp_rule *r, size_t k)
{
    int kind = insp__db_kind(r);
    return kind == INSP_DB_BYTES && r->spaced && r->spaced[k] ? INSP_DB_SPACED : kind;
}

/* ---- whitespace-collapsed scanning (see INSP_DB_SPACED) ---- */

static bool is_quant(char c)
{
    return c == '*' || c == '+' || c == '?' || c == '{';
}

char *insp__spaced_pattern(const char *p)
{
    size_t n = strlen(p), o = 0, depth = 0;
    char *out = malloc(n + 1);
    bool in_class = false, any = false, class_ws = false, group_ws[64] = {false};
    int last = 0, before_class = 0; /* what was emitted last: 0 other, 1 a space, 2 a
                                     * class that can match whitespace */

    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            /* escapes that name whitespace other than through \s, or whose meaning a
             * rewrite could shift (octal, backreferences, control, hex in braces) */
            if (strchr("ntrvfQcxhHNR0123456789", e) && e != 'x')
                goto no;
            if (e == 'x' && i + 2 < n &&
                (p[i + 2] == '{' ||
                 (i + 3 < n && p[i + 2] == '0' && strchr("9aAbBcCdD", p[i + 3])) ||
                 (i + 3 < n && p[i + 2] == '2' && p[i + 3] == '0')))
                goto no;
            if (e == 's' && in_class) {
                class_ws = true;
            } else if (e == 's') {
                char q = i + 2 < n ? p[i + 2] : '\0', lazy = i + 3 < n ? p[i + 3] : '\0';
                if (last != 0 || q == '{' || (is_quant(q) && lazy == '?') ||
                    (q == ' ' || q == '\t') || (is_quant(q) && lazy == ' ') ||
                    (q == '\\' && i + 3 < n && p[i + 3] == 's') || q == '[')
                    goto no; /* counted or lazy repeats, next to other whitespace */
                out[o++] = ' ';
                if (q == '*' || q == '?')
                    out[o++] = '?';
                i += 1 + (q == '+' || q == '*' || q == '?');
                any = true;
                last = 1;
                if (depth)
                    group_ws[depth - 1] = true;
                continue;
            }
            out[o++] = c;
            out[o++] = e;
            i++;
            if (!in_class)
                last = 0;
            continue;
        }
        if (c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            goto no;
        if (in_class) {
            if (c == ' ' || (c == '[' && i + 1 < n && p[i + 1] == ':'))
                class_ws = true; /* a space, or a POSIX class such as [:space:] */
            if (c == ']') {
                in_class = false;
                if (class_ws && (before_class == 1 || (i + 1 < n && is_quant(p[i + 1]))))
                    goto no;
                last = class_ws ? 2 : 0;
                if (class_ws && depth)
                    group_ws[depth - 1] = true;
            }
            out[o++] = c;
            continue;
        }
        if (c == ' ') {
            if (last != 0 || (i + 1 < n && is_quant(p[i + 1])))
                goto no; /* the collapsed text has single spaces only */
            last = 1;
            if (depth)
                group_ws[depth - 1] = true;
            out[o++] = c;
            continue;
        }
        if (c == '[') {
            in_class = true;
            class_ws = false;
            before_class = last;
            out[o++] = c;
            /* ']' or '^]' first in a class is literal */
            if (i + 1 < n && p[i + 1] == '^')
                out[o++] = p[++i];
            if (i + 1 < n && p[i + 1] == ']')
                out[o++] = p[++i];
            continue;
        }
        if (c == '(') {
            /* inline flags such as (?x) or (?m) change what a space or ^ means */
            if (i + 2 < n && p[i + 1] == '?' && !strchr(":=!<#", p[i + 2]))
                goto no;
            if (depth >= sizeof(group_ws) / sizeof(group_ws[0]))
                goto no;
            group_ws[depth++] = false;
        } else if (c == ')' && depth) {
            bool ws = group_ws[--depth];
            if (ws && i + 1 < n && is_quant(p[i + 1]))
                goto no; /* a repeated group holding whitespace */
            if (ws && depth)
                group_ws[depth - 1] = true;
        }
        last = 0;
        out[o++] = c;
    }
    out[o] = '\0';
    if (any && !in_class)
        return out;
no:
    free(out);
    return NULL;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int insp__collapse_space(const char *text, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    int rc;

    dbuf_reset(out);
    if ((rc = dbuf_reserve(out, len)))
        return rc;
    unsigned char *w = (unsigned char *)out->ptr;
    while (p < end) {
        /* bytes above ' ' are copied eight at a time while none is <= ' ' */
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            /* a byte <= 0x20 (has-less-than trick, bytes < 0x80; others fall to the slow
             * path below) */
            if (((v - 0x2121212121212121ull) & ~v & 0x8080808080808080ull) != 0)
                break;
            memcpy(w, p, 8);
            w += 8, p += 8;
        }
        if (p == end)
            break;
        if (is_space(*p)) {
            *w++ = ' ';
            while (++p < end && is_space(*p))
                ;
            continue;
        }
        *w++ = *p++;
    }
    out->len = (size_t)(w - (unsigned char *)out->ptr);
    return 0;
}

/* Rewrites the patterns of each byte-mode rule for the SPACED database. */
static int prepare_spaced(struct insp_ruleset *rs)
{
    for (size_t i = 0; i < rs->n; i++) {
        struct insp_rule *r = &rs->rules[i];
        /* multiline anchors depend on the newlines the collapsed text does not have */
        if (r->spaced || insp__db_kind(r) != INSP_DB_BYTES || (r->flags & INSP_FLAG_MULTILINE))
            continue;
        r->spaced = calloc(r->patterns.n, sizeof(char *));
        if (!r->spaced)
            return ERR_NOMEM;
        for (size_t k = 0; k < r->patterns.n; k++)
            r->spaced[k] = insp__spaced_pattern(r->patterns.v[k]);
    }
    return 0;
}

unsigned insp__hs_flags(const struct insp_rule *r)
{
    unsigned f = r->flags;
    /* Span rules need where each match starts (to validate and redact it), which
     * Hyperscan gives only without SINGLEMATCH. */
    unsigned out = insp__db_kind(r) == 2 ? HS_FLAG_SOM_LEFTMOST : HS_FLAG_SINGLEMATCH;
    if (f & INSP_FLAG_CASELESS)
        out |= HS_FLAG_CASELESS;
    if (f & INSP_FLAG_DOTALL)
        out |= HS_FLAG_DOTALL;
    if (f & INSP_FLAG_MULTILINE)
        out |= HS_FLAG_MULTILINE;
    if (f & INSP_FLAG_UTF8)
        out |= HS_FLAG_UTF8; /* no UCP: \b and \w stay ASCII, as rule authors expect */
    return out;
}

/* The patterns of every rule for target t of database kind (0, 1, 2), with their flags;
 * fills d->rule_of (pattern id -> rule) and d->n. The arrays are the caller's to free. */
static int collect(struct insp_ruleset *rs, int t, int kind, struct insp_db *d, const char ***exprs,
                   unsigned **flags)
{
    size_t n = 0;

    *exprs = NULL, *flags = NULL;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->rules[i].targets & 1u << t)
            for (size_t k = 0; k < rs->rules[i].patterns.n; k++)
                n += insp__pattern_kind(&rs->rules[i], k) == kind;
    d->n = n;
    if (n == 0)
        return 0;
    *exprs = calloc(n, sizeof(**exprs));
    *flags = calloc(n, sizeof(**flags));
    d->rule_of = calloc(n, sizeof(*d->rule_of));
    if (!*exprs || !*flags || !d->rule_of)
        return ERR_NOMEM;
    n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const struct insp_rule *r = &rs->rules[i];
        if (!(r->targets & 1u << t))
            continue;
        for (size_t k = 0; k < r->patterns.n; k++) {
            if (insp__pattern_kind(r, k) != kind)
                continue;
            (*exprs)[n] = kind == INSP_DB_SPACED ? r->spaced[k] : r->patterns.v[k];
            (*flags)[n] = insp__hs_flags(r);
            d->rule_of[n++] = (unsigned)i;
        }
    }
    return 0;
}

/* Compiles the collected patterns into d->db; ids are the pattern indexes. */
static int compile_one(struct insp_ruleset *rs, struct insp_db *d, const char **exprs,
                       const unsigned *flags, char **errmsg)
{
    unsigned *ids = calloc(d->n, sizeof(*ids));
    hs_compile_error_t *err = NULL;
    int rc = 0;

    if (!ids)
        return ERR_NOMEM;
    for (size_t i = 0; i < d->n; i++)
        ids[i] = (unsigned)i;
    if (hs_compile_multi(exprs, flags, ids, (unsigned)d->n, HS_MODE_BLOCK, NULL, &d->db, &err) !=
        HS_SUCCESS) {
        char msg[1024];
        const struct insp_rule *r =
            err && err->expression >= 0 ? &rs->rules[d->rule_of[err->expression]] : NULL;
        snprintf(msg, sizeof(msg), "%s:%d: rule '%s': pattern '%s': %s", r ? r->file : "?",
                 r ? r->line : 0, r ? r->id : "?",
                 err && err->expression >= 0 ? exprs[err->expression] : "?",
                 err ? err->message : "Hyperscan compile failed");
        *errmsg = strdup(msg);
        hs_free_compile_error(err);
        rc = ERR_PARSE;
    }
    free(ids);
    return rc;
}

int insp__compile(struct insp_ruleset *rs, const char *cache_dir, char **errmsg)
{
    const char **exprs[INSP__TARGETS][INSP_DB__KINDS] = {{0}};
    unsigned *flags[INSP__TARGETS][INSP_DB__KINDS] = {{0}};
    char key[CACHE_KEY_HEX + 1];
    int rc = prepare_spaced(rs);

    for (int t = 0; !rc && t < INSP__TARGETS; t++)
        for (int u = 0; !rc && u < INSP_DB__KINDS; u++)
            rc = collect(rs, t, u, &rs->db[t][u], &exprs[t][u], &flags[t][u]);
    if (!rc)
        cache_key(rs, exprs, flags, key);
    /* SECURITY: a cached database is used only for exactly these patterns and flags */
    if (!rc && cache_dir && cache_load(rs, cache_dir, key) == 0)
        goto out;
    for (int t = 0; !rc && t < INSP__TARGETS; t++)
        for (int u = 0; !rc && u < INSP_DB__KINDS; u++)
            if (rs->db[t][u].n)
                rc = compile_one(rs, &rs->db[t][u], exprs[t][u], flags[t][u], errmsg);
    if (!rc && cache_dir)
        cache_store(rs, cache_dir, key);
out:
    for (int t = 0; t < INSP__TARGETS; t++)
        for (int u = 0; u < INSP_DB__KINDS; u++) {
            free(exprs[t][u]);
            free(flags[t][u]);
        }
    return rc;
}

struct insp_scratch *insp_scratch_new(const struct insp_ruleset *rs)
{
    struct insp_scratch *sc = calloc(1, sizeof(*sc));

    if (!sc)
        return NULL;
    sc->n_rules = rs->n;
    sc->seen = calloc(rs->n ? rs->n : 1, 1);
    dbuf_init(&sc->spaced, CLAMPD_MAX_MESSAGE);
    for (int t = 0; sc->seen && t < INSP__TARGETS; t++)
        for (int u = 0; u < INSP_DB__KINDS; u++)
            if (rs->db[t][u].db && hs_alloc_scratch(rs->db[t][u].db, &sc->hs) != HS_SUCCESS) {
                insp_scratch_free(sc);
                return NULL;
            }
    if (!sc->seen) {
        insp_scratch_free(sc);
        return NULL;
    }
    return sc;
}

void insp_scratch_free(struct insp_scratch *sc)
{
    if (!sc)
        return;
    hs_free_scratch(sc->hs);
    dbuf_free(&sc->spaced);
    free(sc->seen);
    free(sc->spans);
    free(sc);
}

struct scan_ctx {
    const struct insp_ruleset *rs;
    const struct insp_db *d;
    struct insp_scratch *sc;
    const char *text; /* what the database scans */
    size_t text_len;
    const char *orig; /* the text as given (structured checks read it) */
    size_t orig_len;
    insp_match_fn fn;
    void *ctx;
    int stopped;
    bool overflow;
};

/* A span match: validated, remembered for redaction, then reported like any match. */
static bool take_span(struct scan_ctx *c, unsigned rule, size_t from, size_t to)
{
    const struct insp_rule *r = &c->rs->rules[rule];
    struct insp_scratch *sc = c->sc;

    if (!insp__validator_span(r->validator, c->text, c->text_len, &from, &to) ||
        !insp__validate(r->validator, c->text + from, to - from))
        return false;
    if (!r->redact)
        return true;
    if (sc->n_spans == sc->cap_spans) {
        size_t cap = sc->cap_spans ? sc->cap_spans * 2 : 16;
        struct insp_span *v;
        if (cap > INSP_MAX_SPANS || !(v = realloc(sc->spans, cap * sizeof(*v)))) {
            c->overflow = true; /* SECURITY: the caller refuses what it cannot redact */
            return true;
        }
        sc->spans = v;
        sc->cap_spans = cap;
    }
    sc->spans[sc->n_spans++] = (struct insp_span){rule, from, to};
    return true;
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned fl,
                    void *arg)
{
    struct scan_ctx *c = arg;
    unsigned rule = c->d->rule_of[id];

    (void)fl;
    if (c->d == &c->rs->db[0][INSP_DB_SPAN] || c->d == &c->rs->db[1][INSP_DB_SPAN] ||
        c->d == &c->rs->db[2][INSP_DB_SPAN]) {
        if (!take_span(c, rule, (size_t)from, (size_t)to))
            return 0;
    }
    if (c->sc->seen[rule])
        return 0;
    c->sc->seen[rule] = 1;
    /* a structured check runs once per rule and text, after a pattern matched */
    if (c->rs->rules[rule].check && !insp__check(c->rs->rules[rule].check, c->orig, c->orig_len))
        return 0;
    c->stopped = c->fn(c->ctx, rule);
    return c->stopped ? 1 : 0;
}

static bool utf8_valid(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    unsigned cp;

    while (p < end) {
        uint64_t w;
        /* ASCII eight bytes at a time: most text is */
        while (end - p >= 8 && (memcpy(&w, p, 8), !(w & 0x8080808080808080ull)))
            p += 8;
        if (p == end)
            break;
        size_t k = *p < 0x80 ? 1 : clampd_utf8_next(p, end, &cp);
        if (!k)
            return false;
        p += k;
    }
    return true;
}

/* text with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD. */
static int utf8_repair(const char *text, size_t len, struct dbuf *out)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    unsigned cp;
    int rc = 0;

    dbuf_reset(out);
    while (p < end && !rc) {
        size_t k = *p < 0x80 ? 1 : clampd_utf8_next(p, end, &cp);
        if (k) {
            rc = dbuf_add(out, p, k);
            p += k;
        } else {
            rc = dbuf_add(out, "\xef\xbf\xbd", 3);
            p++;
        }
    }
    return rc;
}

int insp_scan(const struct insp_ruleset *rs, struct insp_scratch *sc, enum insp_target target,
              const char *text, size_t len, insp_match_fn fn, void *ctx)
{
    bool utf8_ok = false, utf8_checked = false;

    if (target >= INSP__TARGETS || sc->n_rules != rs->n || len > 0xffffffffu)
        return ERR_INVAL;
    memset(sc->seen, 0, rs->n);
    sc->n_spans = 0;
    for (int u = 0; u < INSP_DB__KINDS; u++) {
        struct scan_ctx c = {rs, &rs->db[target][u], sc, text, len, text, len, fn, ctx, 0, false};
        size_t n = len;
        hs_error_t e;

        if (!c.d->db)
            continue;
        if (u == INSP_DB_UTF8 && !utf8_checked) {
            utf8_ok = utf8_valid((const unsigned char *)text, len);
            utf8_checked = true;
        }
        if (u == INSP_DB_UTF8 && !utf8_ok) {
            /* UTF-8 patterns only see valid UTF-8: SECURITY: one stray byte must not turn
             * them off, so they scan a copy with each invalid sequence replaced by U+FFFD
             * (what a client displays) */
            int rc = utf8_repair(text, len, &sc->spaced);
            if (rc)
                return rc;
            c.text = sc->spaced.ptr ? sc->spaced.ptr : "";
            n = sc->spaced.len;
            if (n > 0xffffffffu)
                return ERR_TOO_BIG;
        }
        if (u == INSP_DB_SPACED) {
            int rc = insp__collapse_space(text, len, &sc->spaced);
            if (rc)
                return rc;
            c.text = sc->spaced.ptr ? sc->spaced.ptr : "";
            n = sc->spaced.len;
        }
        c.text_len = n;
        e = hs_scan(c.d->db, c.text, (unsigned)n, 0, sc->hs, on_match, &c);
        if (c.overflow)
            return ERR_TOO_BIG;
        if (e == HS_SCAN_TERMINATED || c.stopped)
            return 0;
        if (e != HS_SUCCESS) {
            clog_error("Hyperscan scan failed (error %d)", e);
            return ERR_IO;
        }
    }
    return 0;
}
