/*
 * scan: throughput of the inspection engine with every built-in rule (issue 3's targets:
 * >= 1 GB/s per core on benign text; a 1 MB result inspected in <= 2 ms).
 *
 *   bench_scan [-r ROUNDS] [-t SECONDS_PER_ROUND] [-s 4K,64K,1M,16M] [-p TOP]
 *
 * For each size, side by side in this process, on the same bytes:
 *   memchr           one pass over the bytes looking for a byte that is not there (memory
 *                    bandwidth: the ceiling)
 *   hs 1 literal     Hyperscan with a one-literal database (the cost of Hyperscan itself)
 *   response db      insp_scan() with the response rules, raw bytes
 *   arguments db     insp_scan() with the arguments rules (the largest database), raw bytes
 *   inspect(result)  engine_inspect_result() on a CallToolResult carrying the text: the JSON
 *                    walk, string decoding and every scan, as the proxy runs it
 * on three inputs: real English prose (Debian's licence texts), word salad (a fixed
 * vocabulary, seeded: function words in every combination, the worst case for natural-
 * language rules) and a JSON-heavy result (structuredContent records). Also the rule databases'
 * cold compile time and the cached load time. Numbers are medians of the rounds; nothing here
 * asserts a time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/engine.h"
#include "inspect/inspect-int.h"
#include "inspect/inspect.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static const char *const words[] = {
    "the",      "of",       "and",     "to",       "in",       "a",         "is",       "that",
    "for",      "it",       "as",      "was",      "with",     "be",        "by",       "on",
    "not",      "he",       "this",    "are",      "or",       "his",       "from",     "at",
    "which",    "but",      "have",    "an",       "had",      "they",      "you",      "were",
    "their",    "one",      "all",     "we",       "can",      "her",       "has",      "there",
    "been",     "if",       "more",    "when",     "will",     "would",     "who",      "so",
    "no",       "report",   "meeting", "project",  "customer", "quarterly", "revenue",  "design",
    "team",     "release",  "version", "update",   "schedule", "budget",    "review",   "document",
    "analysis", "market",   "product", "service",  "network",  "storage",   "database", "function",
    "request",  "response", "summary", "Thursday", "October",  "2024",      "17",       "3.5",
    "42%",      "(see",     "below)",  "e.g.",
};

#define N_WORDS (sizeof(words) / sizeof(words[0]))
#define N_COMMON 49 /* words[0..N_COMMON) are function words, the rest nouns and numbers */

static const char *noun(void)
{
    return words[N_COMMON + next_rand() % (N_WORDS - N_COMMON)];
}

static const char *common(void)
{
    return words[next_rand() % N_COMMON];
}

/* Real English prose: the licence texts every Debian system has (base-files), repeated to
 * n bytes; NULL when they are missing. */
static char *licences(size_t n)
{
    static const char *const files[] = {
        "/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0",
        "/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/LGPL-2.1",
        "/usr/share/common-licenses/GFDL-1.3"};
    char *src = NULL, *s;
    size_t have = 0;

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        FILE *f = fopen(files[i], "rb");
        char buf[65536];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof(buf), f)) > 0) {
            char *g = realloc(src, have + k);
            if (!g)
                break;
            src = g;
            memcpy(src + have, buf, k);
            have += k;
        }
        if (f)
            fclose(f);
    }
    if (have < 4096) {
        free(src);
        return NULL;
    }
    s = malloc(n + 1);
    for (size_t i = 0; i < n; i += have)
        memcpy(s + i, src, n - i < have ? n - i : have);
    s[n] = '\0';
    free(src);
    return s;
}

/* Word salad: sentences of vocabulary words, paragraphs, a little punctuation. */
static char *prose(size_t n)
{
    char *s = malloc(n + 1);
    size_t i = 0, in_sentence = 0;

    while (i < n) {
        const char *w = words[next_rand() % N_WORDS];
        size_t k = strlen(w);
        if (i + k + 2 >= n)
            break;
        memcpy(s + i, w, k);
        if (in_sentence == 0 && s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 32);
        i += k;
        if (++in_sentence > 6 + next_rand() % 12) {
            s[i++] = '.';
            in_sentence = 0;
            if (next_rand() % 6 == 0) {
                s[i++] = '\n';
                s[i++] = '\n';
                continue;
            }
        } else if (next_rand() % 11 == 0) {
            s[i++] = ',';
        }
        s[i++] = ' ';
    }
    while (i < n)
        s[i++] = ' ';
    s[n] = '\0';
    return s;
}

/* A CallToolResult whose text is t (one text item), as compact JSON. */
static char *result_of_text(const char *t, size_t *len)
{
    json_t *r =
        json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", t, "isError", 0);
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    *len = strlen(s);
    return s;
}

/* A JSON-heavy CallToolResult: structuredContent records (ids, titles, tags, dates, amounts),
 * about n bytes. */
static char *result_of_records(size_t n, size_t *len)
{
    json_t *items = json_array();
    char *s = NULL;
    size_t approx = 0;

    for (unsigned i = 0; approx < n; i++) {
        char title[96], date[32];
        snprintf(title, sizeof(title), "%s %s %s %u", noun(), common(), noun(), i);
        snprintf(date, sizeof(date), "2024-%02u-%02uT%02u:%02u:00Z", next_rand() % 12 + 1,
                 next_rand() % 28 + 1, next_rand() % 24, next_rand() % 60);
        json_array_append_new(
            items, json_pack("{s:I, s:s, s:s, s:f, s:[s, s], s:b, s:{s:s, s:i}}", "id",
                             (json_int_t)(100000 + i), "title", title, "updated_at", date, "amount",
                             (double)(next_rand() % 100000) / 100.0, "tags", noun(), noun(),
                             "active", (int)(next_rand() & 1), "owner", "team", noun(), "priority",
                             (int)(next_rand() % 5)));
        approx += 150;
    }
    json_t *r = json_pack("{s:[{s:s, s:s}], s:{s:o}}", "content", "type", "text", "text",
                          "Query returned the records in structuredContent.", "structuredContent",
                          "items", items);
    s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    *len = strlen(s);
    return s;
}

static int count_match(void *ctx, size_t rule)
{
    (void)rule;
    ++*(size_t *)ctx;
    return 0;
}

static int hs_nop(unsigned id, unsigned long long from, unsigned long long to, unsigned fl,
                  void *ctx)
{
    (void)id, (void)from, (void)to, (void)fl, (void)ctx;
    return 0;
}

struct subject {
    const char *text;
    size_t len;
    const char *result; /* CallToolResult JSON */
    size_t result_len;
};

struct env {
    struct insp_ruleset *rs;
    struct insp_scratch *sc;
    hs_database_t *lit;
    hs_scratch_t *lit_sc;
    struct engine_session *session;
};

enum method { M_MEMCHR, M_HS1, M_RESPONSE, M_ARGUMENTS, M_INSPECT, M__N };
static const char *const method_names[M__N] = {"memchr", "hs 1 literal", "response db",
                                               "arguments db", "inspect(result)"};

static volatile size_t sink;

static int run_once(struct env *e, enum method m, const struct subject *s)
{
    size_t hits = 0;
    json_t *rw = NULL;
    struct engine_verdict v;

    switch (m) {
    case M_MEMCHR: sink += memchr(s->text, 0x01, s->len) != NULL; return 0;
    case M_HS1:
        return hs_scan(e->lit, s->text, (unsigned)s->len, 0, e->lit_sc, hs_nop, NULL) == HS_SUCCESS
                   ? 0
                   : -1;
    case M_RESPONSE:
        if (insp_scan(e->rs, e->sc, INSP_RESPONSE, s->text, s->len, count_match, &hits))
            return -1;
        sink += hits;
        return 0;
    case M_ARGUMENTS:
        if (insp_scan(e->rs, e->sc, INSP_ARGUMENTS, s->text, s->len, count_match, &hits))
            return -1;
        sink += hits;
        return 0;
    default:
        if (engine_inspect_result(e->session, "bench", s->result, s->result_len, &rw, &v))
            return -1;
        sink += rw != NULL;
        json_decref(rw);
        return 0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per run of method m on s over rounds, each round >= per_round seconds. */
static double measure(struct env *e, enum method m, const struct subject *s, int rounds,
                      double per_round)
{
    double t[32];

    if (rounds > 32)
        rounds = 32;
    for (int r = 0; r < rounds; r++) {
        double start = now(), el;
        long n = 0;
        do {
            if (run_once(e, m, s)) {
                fprintf(stderr, "bench_scan: %s failed\n", method_names[m]);
                exit(1);
            }
            n++;
            el = now() - start;
        } while (el < per_round);
        t[r] = el / (double)n;
    }
    qsort(t, (size_t)rounds, sizeof(double), cmp_double);
    return t[rounds / 2];
}

static size_t parse_size(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10;
    else if (*end == 'M' || *end == 'm')
        v <<= 20;
    return v;
}

/* -p N: each pattern of the response and arguments targets compiled alone (same flags,
 * same rewrite) and timed over 1 MiB of prose; prints the N slowest. A rule's own cost,
 * for rule authors: a database runs its patterns together, so the sum of these is not the
 * database's time, but a pattern far below its neighbours is what to rewrite. */
struct pat_cost {
    const char *rule, *expr, *kind;
    double mbs;
};

static int cost_cmp(const void *a, const void *b)
{
    double x = ((const struct pat_cost *)a)->mbs, y = ((const struct pat_cost *)b)->mbs;
    return x < y ? -1 : x > y;
}

static int profile_patterns(const struct insp_ruleset *rs, int top, double per_round)
{
    static const char *const kn[] = {"bytes", "utf8", "span", "spaced"};
    size_t n = 1u << 20, cap = 0, used = 0;
    char *text = licences(n);
    struct dbuf sp;
    struct pat_cost *v = NULL;

    if (!text)
        return 1;
    dbuf_init(&sp, CLAMPD_MAX_MESSAGE);
    insp__collapse_space(text, n, &sp);
    for (int t = 0; t < INSP__TARGETS; t += 2) {
        for (size_t i = 0; i < insp_ruleset_count(rs); i++) {
            const struct insp_rule *r = insp_ruleset_rule(rs, i);
            if (!(r->targets & 1u << t))
                continue;
            for (size_t k = 0; k < r->patterns.n; k++) {
                int kind = insp__pattern_kind(r, k);
                const char *expr = kind == INSP_DB_SPACED ? r->spaced[k] : r->patterns.v[k];
                const char *txt = kind == INSP_DB_SPACED ? sp.ptr : text;
                size_t tl = kind == INSP_DB_SPACED ? sp.len : n;
                hs_database_t *db = NULL;
                hs_scratch_t *hsc = NULL;
                hs_compile_error_t *cerr = NULL;
                if (hs_compile(expr, insp__hs_flags(r), HS_MODE_BLOCK, NULL, &db, &cerr) !=
                        HS_SUCCESS ||
                    hs_alloc_scratch(db, &hsc) != HS_SUCCESS) {
                    hs_free_compile_error(cerr);
                    hs_free_database(db);
                    continue;
                }
                double st = now();
                int it = 0;
                do
                    hs_scan(db, txt, (unsigned)tl, 0, hsc, hs_nop, NULL);
                while (++it < 2 || now() - st < per_round);
                if (used == cap) {
                    cap = cap ? cap * 2 : 256;
                    struct pat_cost *w = realloc(v, cap * sizeof(*v));
                    if (!w)
                        return 1;
                    v = w;
                }
                v[used++] =
                    (struct pat_cost){r->id, expr, kn[kind], (double)n * it / (now() - st) / 1e6};
                hs_free_scratch(hsc);
                hs_free_database(db);
            }
        }
        qsort(v, used, sizeof(*v), cost_cmp);
        printf("%s: the %d slowest of %zu patterns alone, MB/s over 1 MiB of prose\n",
               insp_target_name((enum insp_target)t), top, used);
        for (size_t i = 0; i < used && i < (size_t)top; i++)
            printf("  %8.0f  %-6s  %-32s %.90s\n", v[i].mbs, v[i].kind, v[i].rule, v[i].expr);
        used = 0;
    }
    free(v);
    free(text);
    dbuf_free(&sp);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = 3, profile = 0, c;
    double per_round = 0.1;
    const char *sizes = "4K,64K,1M,16M";
    struct env e = {0};
    char *err = NULL;
    double t0;

    while ((c = getopt(argc, argv, "r:t:s:p:")) != -1) {
        if (c == 'p')
            profile = (int)strtol(optarg, NULL, 10);
        else if (c == 'r')
            rounds = (int)strtol(optarg, NULL, 10);
        else if (c == 't')
            per_round = strtod(optarg, NULL);
        else if (c == 's')
            sizes = optarg;
        else {
            fprintf(stderr, "usage: bench_scan [-r ROUNDS] [-t SECONDS] [-s 4K,64K,1M,16M]"
                            " [-p TOP]\n");
            return 2;
        }
    }
    if (rounds < 1)
        rounds = 1;
    clog_set_level(CLOG_ERROR);

    /* compile: cold (no cache), then from a cache file */
    char cache[] = "/tmp/clampd-bench-XXXXXX";
    if (!mkdtemp(cache))
        return 1;
    /* BENCH_RULES=DIR: another set of packs (to compare a rule change) */
    const char *dir = getenv("BENCH_RULES");
    const char *const *paths = dir ? &dir : NULL;
    size_t n_paths = dir ? 1 : 0;
    t0 = now();
    if (insp_ruleset_load_cached(paths, n_paths, cache, &e.rs, &err)) {
        fprintf(stderr, "bench_scan: %s\n", err);
        return 1;
    }
    double cold = now() - t0;
    insp_ruleset_free(e.rs);
    t0 = now();
    if (insp_ruleset_load_cached(paths, n_paths, cache, &e.rs, &err))
        return 1;
    double warm = now() - t0;
    DIR *dirp = opendir(cache);
    for (struct dirent *de; dirp && (de = readdir(dirp));)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(dirp), de->d_name, 0);
    if (dirp)
        closedir(dirp);
    if (rmdir(cache))
        fprintf(stderr, "bench_scan: could not remove %s\n", cache);

    size_t n_rules = insp_ruleset_count(e.rs), per_target[INSP__TARGETS] = {0};
    for (size_t i = 0; i < n_rules; i++)
        for (int t = 0; t < INSP__TARGETS; t++)
            per_target[t] += (insp_ruleset_rule(e.rs, i)->targets >> t) & 1;
    printf("rules: %zu (arguments %zu, description %zu, response %zu); Hyperscan %s\n", n_rules,
           per_target[0], per_target[1], per_target[2], hs_version());
    printf("compile: %.2f s cold (every database), %.1f ms from the cache\n\n", cold,
           warm * 1000.0);

    if (profile > 0) {
        int rc = profile_patterns(e.rs, profile, per_round);
        insp_ruleset_free(e.rs);
        return rc;
    }
    e.sc = insp_scratch_new(e.rs);
    hs_compile_error_t *cerr = NULL;
    if (hs_compile("zqxjkvbw", HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK, NULL, &e.lit, &cerr) !=
            HS_SUCCESS ||
        hs_alloc_scratch(e.lit, &e.lit_sc) != HS_SUCCESS)
        return 1;
    struct engine_config cfg = {.rules = e.rs};
    struct engine *eng = NULL;
    if (engine_new(&cfg, &eng, &err) || !(e.session = engine_session_new(eng, "bench")))
        return 1;

    printf("MB/s per core (median of %d rounds); ratio: time against memchr over the same bytes\n",
           rounds);
    printf("%-8s %-6s", "input", "size");
    for (int m = 0; m < M__N; m++)
        printf(" %16s", method_names[m]);
    printf("\n");
    static const char *const inputs[] = {"prose", "salad", "records"};
    for (int kind = 0; kind < 3; kind++) {
        char *list = strdup(sizes), *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            size_t n = parse_size(tok);
            struct subject s;
            char *text = NULL, *res;
            size_t rlen;
            if (kind < 2) {
                text = kind == 0 ? licences(n) : prose(n);
                if (!text) {
                    printf("%-8s %-6s (no licence texts in /usr/share/common-licenses)\n",
                           inputs[kind], tok);
                    continue;
                }
                res = result_of_text(text, &rlen);
                s = (struct subject){text, n, res, rlen};
            } else {
                res = result_of_records(n, &rlen);
                s = (struct subject){res, rlen, res, rlen};
            }
            double base = 0;
            printf("%-8s %-6s", inputs[kind], tok);
            for (int m = 0; m < M__N; m++) {
                /* BENCH_METHOD=k: measure only method k (for a profiler) */
                if (getenv("BENCH_METHOD") && m != strtol(getenv("BENCH_METHOD"), NULL, 10) && m)
                    continue;
                double sec = measure(&e, (enum method)m, &s, rounds, per_round);
                size_t bytes = m == M_INSPECT ? s.result_len : s.len;
                if (m == 0)
                    base = sec;
                printf(" %9.0f (%4.0fx)", (double)bytes / sec / 1e6, sec / base);
            }
            printf("\n");
            if (n == (1u << 20)) {
                /* where the time goes: each database of the two targets alone */
                static const char *const kn[] = {"bytes", "utf8", "span", "spaced"};
                for (int t = 0; t < INSP__TARGETS; t += 2) {
                    printf("         %s databases (MB/s):", insp_target_name((enum insp_target)t));
                    for (int u = 0; u < INSP_DB__KINDS; u++) {
                        const struct insp_db *d = &e.rs->db[t][u];
                        if (!d->db)
                            continue;
                        const char *txt = s.text;
                        size_t tl = s.len;
                        struct dbuf sp;
                        dbuf_init(&sp, CLAMPD_MAX_MESSAGE);
                        if (u == INSP_DB_SPACED) {
                            insp__collapse_space(s.text, s.len, &sp);
                            txt = sp.ptr, tl = sp.len;
                        }
                        hs_scratch_t *hsc = NULL;
                        hs_alloc_scratch(d->db, &hsc);
                        double st = now();
                        int it = 0;
                        do
                            hs_scan(d->db, txt, (unsigned)tl, 0, hsc, hs_nop, NULL);
                        while (++it < 3 || now() - st < per_round);
                        printf(" %s (%zu patterns) %.0f;", kn[u], d->n,
                               (double)s.len * it / (now() - st) / 1e6);
                        hs_free_scratch(hsc);
                        dbuf_free(&sp);
                    }
                    printf("\n");
                }
                double sec = measure(&e, M_INSPECT, &s, rounds, per_round);
                printf("         1 MB %s result inspected in %.2f ms (target <= 2 ms)\n",
                       inputs[kind], sec * 1000.0);
            }
            free(text);
            free(res);
        }
        free(list);
    }
    engine_session_free(e.session);
    engine_free(eng);
    insp_scratch_free(e.sc);
    hs_free_scratch(e.lit_sc);
    hs_free_database(e.lit);
    insp_ruleset_free(e.rs);
    return 0;
}
