/* inspect internals shared between its files. */
#ifndef CLAMPD_INSPECT_INT_H
#define CLAMPD_INSPECT_INT_H

#include <hs/hs.h>

#include "inspect/inspect.h"

#define INSP_MAX_PATTERNS 16 /* per rule */
#define INSP_MAX_LIST 256    /* entries of any list in a rule */
#define INSP_MAX_RULES 20000

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
    struct insp_db db[INSP__TARGETS][2]; /* [target][0 bytes, 1 utf8] */
};

struct insp_scratch {
    hs_scratch_t *hs;
    unsigned char *seen; /* one byte per rule: reported in this scan */
    size_t n_rules;
};

int insp__ruleset_add(struct insp_ruleset *rs, struct insp_rule *r);
void insp__rule_deinit(struct insp_rule *r);
void insp__strv_free(struct insp_strv *sv);
char *insp__join(const char *dir, const char *file);
int insp__compile(struct insp_ruleset *rs, char **errmsg);

#endif
