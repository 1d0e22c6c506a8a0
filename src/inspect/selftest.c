/*
 * selftest: every rule's examples, checked against the compiled databases (`clampd rules
 * test`). A rule whose examples fail is a rule that does not do what it says.
 */
#include "inspect/inspect-int.h"

#include <string.h>

struct hit {
    size_t want;
    bool found;
};

static int note_hit(void *ctx, size_t rule)
{
    struct hit *h = ctx;
    if (rule == h->want)
        h->found = true;
    return 0;
}

static int check_list(const struct insp_ruleset *rs, struct insp_scratch *sc, size_t i,
                      const struct insp_strv *examples, bool want, FILE *report, size_t *checked)
{
    const struct insp_rule *r = &rs->rules[i];
    int failures = 0;

    for (int t = 0; t < INSP__TARGETS; t++) {
        if (!(r->targets & 1u << t))
            continue;
        for (size_t k = 0; k < examples->n; k++) {
            struct hit h = {i, false};
            int rc = insp_scan(rs, sc, (enum insp_target)t, examples->v[k], strlen(examples->v[k]),
                               note_hit, &h);
            if (rc)
                return rc;
            (*checked)++;
            if (h.found != want) {
                failures++;
                fprintf(report, "%s:%d: rule %s (%s): %s example %zu was %s: \"%.120s\"\n", r->file,
                        r->line, r->id, insp_target_name((enum insp_target)t),
                        want ? "match" : "no_match", k + 1, want ? "not matched" : "matched",
                        examples->v[k]);
            }
        }
    }
    return failures;
}

int insp_selftest(const struct insp_ruleset *rs, struct insp_scratch *sc, FILE *report,
                  size_t *checked)
{
    int failures = 0;

    *checked = 0;
    for (size_t i = 0; i < rs->n; i++) {
        int a = check_list(rs, sc, i, &rs->rules[i].match, true, report, checked);
        int b = a < 0 ? 0 : check_list(rs, sc, i, &rs->rules[i].no_match, false, report, checked);
        if (a < 0 || b < 0)
            return a < 0 ? a : b;
        failures += a + b;
    }
    return failures;
}
