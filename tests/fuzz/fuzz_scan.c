/*
 * fuzz_scan: the rule scanner on arbitrary bytes, on every target, with the project's own
 * rule packs (built in from rules/): no crash, no Hyperscan error, each rule reported at most once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inspect/inspect.h"

static struct insp_ruleset *rs;
static struct insp_scratch *sc;
static unsigned char *seen;

static int on_rule(void *ctx, size_t rule)
{
    (void)ctx;
    if (rule >= insp_ruleset_count(rs) || seen[rule])
        abort();
    seen[rule] = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rs) {
        char *err = NULL;
        /* compiling the packs takes seconds: cached between runs, as clampd does */
        mkdir("/tmp/clampd-fuzz-cache", 0700);
        if (insp_ruleset_load_cached(NULL, 0, "/tmp/clampd-fuzz-cache", &rs, &err) ||
            !(sc = insp_scratch_new(rs)))
            abort(); /* the shipped packs must load */
        seen = calloc(insp_ruleset_count(rs), 1);
    }
    for (int t = 0; t < INSP__TARGETS; t++) {
        memset(seen, 0, insp_ruleset_count(rs));
        if (insp_scan(rs, sc, (enum insp_target)t, (const char *)data, size, on_rule, NULL))
            abort();
    }
    return 0;
}
