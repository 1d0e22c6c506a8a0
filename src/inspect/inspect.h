/*
 * inspect: rule packs compiled into Hyperscan databases, and scanning text against them.
 *
 *   rules/NAME.yaml ──insp_ruleset_load()──▶ rules ──compile──▶ one block-mode database per
 *                                                           target (arguments, description,
 *                                                           response)
 *   text ──insp_scan(target)──▶ each matching rule once
 *
 * A ruleset is immutable once built and may be shared by reference; a scratch (Hyperscan's
 * per-thread scan space) belongs to one thread. Hyperscan is the prefilter: a rule may later
 * add an exact check (validator, path or URL parse) after its patterns matched.
 */
#ifndef CLAMPD_INSPECT_H
#define CLAMPD_INSPECT_H

#include <stdio.h>

#include "core/core.h"

enum insp_target { INSP_ARGUMENTS = 0, INSP_DESCRIPTION = 1, INSP_RESPONSE = 2, INSP__TARGETS };

/* Pattern flags a rule may ask for. */
enum insp_flag {
    INSP_FLAG_CASELESS = 1u << 0,
    INSP_FLAG_DOTALL = 1u << 1,
    INSP_FLAG_MULTILINE = 1u << 2,
    INSP_FLAG_UTF8 = 1u << 3, /* patterns and inputs are UTF-8 (inputs are checked first) */
};

struct insp_strv {
    char **v;
    size_t n;
};

struct insp_rule {
    char *id;
    char *category;
    char *description;
    double risk;      /* 0..1 */
    unsigned targets; /* 1u << enum insp_target */
    unsigned flags;   /* enum insp_flag */
    struct insp_strv patterns, tools, fields, match, no_match;
    int validator; /* 0 none, else an exact check the matched span must pass */
    int check;     /* 0 none, else a structured check the whole text must pass (check.c) */
    char *redact;  /* response rules: redact the span as [REDACTED:<redact>] */
    char *file;    /* where it was defined, for messages */
    int line;
    char **spaced; /* internal (scan.c): per pattern, its form for whitespace-collapsed text
                    * (NULL: the pattern is scanned on the text as it is) */
};

struct insp_ruleset;
struct insp_scratch;

/* Loads every *.yaml file of each path (a file or a directory, read in name order), checks
 * each rule (unique id, known keys and targets, risk in 0..1, 1..16 patterns, examples),
 * and compiles one Hyperscan database per target. On failure returns a negative error and
 * a malloc'd "file:line: what" message in *errmsg. The ruleset is immutable afterwards. */
int insp_ruleset_load(const char *const *paths, size_t n_paths, struct insp_ruleset **out,
                      char **errmsg);
void insp_ruleset_free(struct insp_ruleset *rs);

/* A rule pack compiled into the binary (from rules/ at build time). */
struct insp_pack {
    const char *name; /* "rules/NAME.yaml" */
    const char *text;
    size_t len;
};
/* The packs shipped with clampd, ended by an entry whose name is NULL. */
extern const struct insp_pack insp_builtin_packs[];

/* Loads and compiles the packs shipped with clampd; as insp_ruleset_load(). */
int insp_ruleset_load_builtin(struct insp_ruleset **out, char **errmsg);

/* As insp_ruleset_load() (paths) or insp_ruleset_load_builtin() (paths NULL), keeping the
 * compiled databases in cache_dir (NULL: no cache) under a name that is the SHA-256 of
 * Hyperscan's version, the platform and every pattern with its flags; compiling takes
 * seconds, loading milliseconds. A cache file that is missing or unreadable is rebuilt. */
int insp_ruleset_load_cached(const char *const *paths, size_t n_paths, const char *cache_dir,
                             struct insp_ruleset **out, char **errmsg);

size_t insp_ruleset_count(const struct insp_ruleset *rs);
const struct insp_rule *insp_ruleset_rule(const struct insp_ruleset *rs, size_t i);

/* Scan space for one thread; NULL on failure. */
struct insp_scratch *insp_scratch_new(const struct insp_ruleset *rs);
void insp_scratch_free(struct insp_scratch *sc);

/* Called once per rule that matched (rule is its index). A non-zero return stops the scan. */
typedef int (*insp_match_fn)(void *ctx, size_t rule);

/* Scans len bytes of text with the database of target. Each matching rule is reported
 * once. Returns 0, or a negative error (ERR_IO when Hyperscan fails): SECURITY: callers
 * treat an error as a deny. */
int insp_scan(const struct insp_ruleset *rs, struct insp_scratch *sc, enum insp_target target,
              const char *text, size_t len, insp_match_fn fn, void *ctx);

/* Scans a response text like insp_scan(INSP_RESPONSE) and, when rules with `redact` found
 * validated spans, writes the text with each (merged) span replaced by
 * "[REDACTED:<type>]" into out and their count into *n_redacted (0: out is left empty and
 * the text needs no change). Returns 0 or a negative error (ERR_TOO_BIG past
 * INSP_MAX_SPANS candidates: SECURITY: the caller withholds the text). */
int insp_redact(const struct insp_ruleset *rs, struct insp_scratch *sc, const char *text,
                size_t len, struct dbuf *out, size_t *n_redacted, insp_match_fn fn, void *ctx);
/* insp_redact() redacting only the spans of rules keep(keep_ctx, rule) accepts (keep NULL:
 * every rule's); every matching rule is still reported to fn. */
typedef bool (*insp_rule_pred)(void *ctx, size_t rule);
int insp_redact_some(const struct insp_ruleset *rs, struct insp_scratch *sc, const char *text,
                     size_t len, struct dbuf *out, size_t *n_redacted, insp_match_fn fn, void *ctx,
                     insp_rule_pred keep, void *keep_ctx);

/* Checks every example of every rule: each `match` example must be matched by its rule
 * (on each target the rule applies to) and no `no_match` example may be. Writes one line
 * per failure to report. Returns the number of failures (0: all pass), or a negative
 * error. *checked receives the number of examples checked. */
int insp_selftest(const struct insp_ruleset *rs, struct insp_scratch *sc, FILE *report,
                  size_t *checked);

const char *insp_target_name(enum insp_target t);

/* Does rule r apply to a text of tool (NULL: unknown) found in the argument field field
 * (the name of the member holding it, NULL or "" when there is none)? Each of the rule's
 * `tools` and `fields` lists holds shell globs (fnmatch, case-insensitive); an entry
 * starting with '!' excludes. A list applies when it is empty, or when the name matches
 * one of its plain entries (if it has any) and none of its '!' entries. An unknown tool or
 * field matches no plain entry and no '!' entry. */
bool insp_rule_in_scope(const struct insp_rule *r, const char *tool, const char *field);

/* ---- structured checks ---- */

/* What an address or host name reaches, worst last (the order is used as a severity). */
enum insp_host_class {
    INSP_HOST_PUBLIC = 0, /* nothing internal is known about it */
    INSP_HOST_PRIVATE,    /* RFC 1918, CGNAT, benchmarking, multicast/reserved, IPv6 ULA and
                           * site-local, and names under .internal .local .lan ... */
    INSP_HOST_LINK_LOCAL, /* 169.254.0.0/16, fe80::/10 */
    INSP_HOST_LOOPBACK,   /* 127/8, 0/8, ::1, ::, localhost and names that resolve to it */
    INSP_HOST_METADATA,   /* cloud instance-metadata endpoints, by address or name */
};

struct insp_host {
    enum insp_host_class cls;
    bool is_ip;      /* an IPv4 number in some form (IPv6 literals are bracketed) */
    bool obfuscated; /* internal, but written so a person or a pattern would not see it:
                      * IPv4 in decimal, octal, hex or short form, IPv4-mapped, compatible,
                      * NAT64 or 6to4 IPv6, or a public name that resolves to it (nip.io,
                      * sslip.io, localtest.me...) */
};

/* Classifies one host as a URL carries it: an IPv4 number in any form the WHATWG URL
 * standard accepts (1-4 parts, decimal/octal/hex), "[IPv6]" (zone allowed), or a name
 * (case-insensitive, trailing dot allowed). Returns 0, or ERR_PARSE for an empty, over-long
 * or unparsable bracketed host. */
int insp_host_classify(const char *host, size_t len, struct insp_host *out);

/* Bit INSP_HOSTS_OBFUSCATED of insp_hosts_find(): some internal host was disguised. */
#define INSP_HOSTS_OBFUSCATED (1u << 8)

/* Finds the hosts text names (URL authorities, every reading of their userinfo and
 * backslashes; UNC \\host names; bare IP literals; well-known internal names followed by
 * a port or path, or alone) and returns a set of bits: 1u << class for every class other
 * than public that was found, and INSP_HOSTS_OBFUSCATED. */
unsigned insp_hosts_find(const char *text, size_t len);

/* Runs the named validator (luhn, iban, ssn, email, phone, the national ids and secret
 * checksums of validate.c; docs/rules.md lists them) over s[0..n). False for an unknown
 * name. */
bool insp_validate(const char *validator, const char *s, size_t n);

#endif
