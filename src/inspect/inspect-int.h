/* inspect internals shared between its files. */
#ifndef CLAMPD_INSPECT_INT_H
#define CLAMPD_INSPECT_INT_H

#include <hs/hs.h>

#include "inspect/inspect.h"

#define INSP_MAX_PATTERNS 16 /* per rule */
#define INSP_MAX_LIST 256    /* entries of any list in a rule */
#define INSP_MAX_RULES 20000
#define INSP_MAX_SPANS 65536 /* redaction candidates in one text */

/* One compiled database: byte-mode patterns, or UTF-8 ones (scanned only on valid UTF-8,
 * since Hyperscan's UTF-8 mode is undefined on anything else). */
struct insp_db {
    hs_database_t *db;
    unsigned *rule_of; /* pattern id -> rule index */
    size_t n;
};

/* The databases of one target:
 *   BYTES   byte-mode patterns, scanned on the text
 *   UTF8    UTF-8 patterns, scanned on the text when it is valid UTF-8
 *   SPAN    rules with a validator or redact: start of match reported, every match
 *   SPACED  byte-mode patterns whose only whitespace is \s, \s+ or \s*, rewritten to a single
 *           space (' ', ' ', ' ?') and scanned on the text with every run of whitespace
 *           collapsed to one space. Same matches (a few more: \s on a run of two), but
 *           "ignore\s+previous" becomes the literal "ignore previous", which Hyperscan's
 *           literal matcher finds many times faster than a chain of short literals and
 *           class repeats. */
enum insp_db_kind { INSP_DB_BYTES = 0, INSP_DB_UTF8, INSP_DB_SPAN, INSP_DB_SPACED, INSP_DB__KINDS };

struct insp_ruleset {
    struct insp_rule *rules;
    size_t n, cap;
    struct insp_db db[INSP__TARGETS][INSP_DB__KINDS];
};

struct insp_span {
    size_t rule;
    size_t start, end;
};

struct insp_scratch {
    hs_scratch_t *hs;
    struct dbuf spaced;      /* the text being scanned, whitespace runs collapsed */
    struct insp_span *spans; /* redaction candidates of the current scan */
    size_t n_spans, cap_spans;
    unsigned char *seen; /* one byte per rule: reported in this scan */
    size_t n_rules;
};

int insp__ruleset_add(struct insp_ruleset *rs, struct insp_rule *r);
void insp__rule_deinit(struct insp_rule *r);
/* Which database of a target a rule's patterns go to (BYTES, UTF8 or SPAN), and where its
 * pattern k goes (SPACED when it was rewritten for collapsed whitespace). */
int insp__db_kind(const struct insp_rule *r);
int insp__pattern_kind(const struct insp_rule *r, size_t k);
/* Rewrites a pattern for whitespace-collapsed text; NULL when it has no \s to rewrite, or
 * uses whitespace in a way the rewrite would change (literal tabs or newlines, \n, counted
 * or lazy \s repeats, a literal space next to \s, \Q...\E). */
char *insp__spaced_pattern(const char *p);
/* The Hyperscan flags a rule's patterns compile with (SOM for span rules, else
 * SINGLEMATCH; caseless, dotall, multiline, utf8 from the rule). */
unsigned insp__hs_flags(const struct insp_rule *r);
/* Writes text with every run of [\t\n\v\f\r ] replaced by one space into out. */
int insp__collapse_space(const char *text, size_t len, struct dbuf *out);
void insp__strv_free(struct insp_strv *sv);
char *insp__join(const char *dir, const char *file);
/* Compiles the databases, or loads them from cache_dir (may be NULL: no cache). */
int insp__compile(struct insp_ruleset *rs, const char *cache_dir, char **errmsg);

/* validate.c: validator names to indexes (1-based; -1 unknown) and the checks. */
int insp__validator_index(const char *name);
bool insp__validate(int validator, const char *s, size_t n);
/* The span a validator checks, given its pattern's match [*from, *to) in text[0..len): the
 * same for most; wider where the pattern matches only a fast-to-find part of the thing
 * (email: from the local part's last character; passport MRZ: the line's middle). Returns
 * false when there is no span around the match. */
bool insp__validator_span(int validator, const char *text, size_t len, size_t *from, size_t *to);

/* check.c: structured check names to indexes (1-based; -1 unknown) and the checks. */
int insp__check_index(const char *name);
bool insp__check(int check, const char *s, size_t n);

#endif
