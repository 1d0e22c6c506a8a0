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

struct insp_ruleset {
    struct insp_rule *rules;
    size_t n, cap;
    /* [target][kind]: 0 byte-mode patterns, 1 UTF-8 patterns, 2 span patterns (rules with
     * a validator or redact: start of match reported, every match, no SINGLEMATCH) */
    struct insp_db db[INSP__TARGETS][3];
};

struct insp_span {
    size_t rule;
    size_t start, end;
};

struct insp_scratch {
    hs_scratch_t *hs;
    struct insp_span *spans; /* redaction candidates of the current scan */
    size_t n_spans, cap_spans;
    unsigned char *seen; /* one byte per rule: reported in this scan */
    size_t n_rules;
};

int insp__ruleset_add(struct insp_ruleset *rs, struct insp_rule *r);
void insp__rule_deinit(struct insp_rule *r);
/* Which database of a target a rule's patterns go to (0, 1 or 2, as above). */
int insp__db_kind(const struct insp_rule *r);
void insp__strv_free(struct insp_strv *sv);
char *insp__join(const char *dir, const char *file);
/* Compiles the databases, or loads them from cache_dir (may be NULL: no cache). */
int insp__compile(struct insp_ruleset *rs, const char *cache_dir, char **errmsg);

/* validate.c: validator names to indexes (1-based; -1 unknown) and the checks. */
int insp__validator_index(const char *name);
bool insp__validate(int validator, const char *s, size_t n);

/* check.c: structured check names to indexes (1-based; -1 unknown) and the checks. */
int insp__check_index(const char *name);
bool insp__check(int check, const char *s, size_t n);

#endif
