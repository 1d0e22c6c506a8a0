/*
 * clampd rules: list the rule packs and check every rule's examples.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "inspect/inspect.h"

static const char usage[] =
    "Usage: clampd rules list [--category C] [--rules PATH]...\n"
    "       clampd rules test [--rules PATH]...\n"
    "\n"
    "list   every rule: id, category, risk, targets, description\n"
    "test   compile the packs and check every rule's examples: each 'match' example must\n"
    "       be matched by its rule and no 'no_match' example may be. Exits 1 on a failure.\n"
    "\n"
    "Options:\n"
    "  --rules PATH     a rule pack (.yaml) or a directory of them; repeatable. Default:\n"
    "                   $CLAMPD_RULES, else the packs built into clampd (from rules/)\n"
    "  --category C     list only rules of category C\n"
    "  -h, --help       show this help\n";

static void targets_text(unsigned targets, char *out, size_t n)
{
    out[0] = '\0';
    for (int t = 0; t < INSP__TARGETS; t++)
        if (targets & 1u << t) {
            size_t len = strlen(out);
            snprintf(out + len, n - len, "%s%s", len ? "," : "", insp_target_name(t));
        }
}

static int list(const struct insp_ruleset *rs, const char *category)
{
    size_t shown = 0;

    printf("%-44s %-20s %-5s %-30s %s\n", "ID", "CATEGORY", "RISK", "TARGETS", "DESCRIPTION");
    for (size_t i = 0; i < insp_ruleset_count(rs); i++) {
        const struct insp_rule *r = insp_ruleset_rule(rs, i);
        char t[64];
        if (category && strcmp(category, r->category) != 0)
            continue;
        targets_text(r->targets, t, sizeof(t));
        printf("%-44s %-20s %-5.2f %-30s %s\n", r->id, r->category, r->risk, t, r->description);
        shown++;
    }
    fprintf(stderr, "%zu rules\n", shown);
    return 0;
}

static int test(const struct insp_ruleset *rs)
{
    struct insp_scratch *sc = insp_scratch_new(rs);
    size_t checked = 0;
    int failures;

    if (!sc) {
        fprintf(stderr, "clampd rules: cannot allocate Hyperscan scratch\n");
        return 1;
    }
    failures = insp_selftest(rs, sc, stdout, &checked);
    insp_scratch_free(sc);
    if (failures < 0) {
        fprintf(stderr, "clampd rules: scanning failed\n");
        return 1;
    }
    printf("rules: %zu rules, %zu examples checked: %zu passed, %d failed\n",
           insp_ruleset_count(rs), checked, checked - (size_t)failures, failures);
    return failures ? 1 : 0;
}

int cmd_rules(int argc, char **argv)
{
    static const struct option longs[] = {{"rules", required_argument, NULL, 'r'},
                                          {"category", required_argument, NULL, 'c'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char **paths = calloc((size_t)argc + 1, sizeof(char *));
    const char *category = NULL, *sub;
    size_t n_paths = 0;
    struct insp_ruleset *rs = NULL;
    int c, rc = 1;

    if (!paths)
        return 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'r')
            paths[n_paths++] = optarg;
        else if (c == 'c')
            category = optarg;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            rc = c == 'h' ? 0 : 1;
            goto out;
        }
    }
    sub = optind < argc ? argv[optind++] : NULL;
    if (!sub || optind != argc || (strcmp(sub, "list") != 0 && strcmp(sub, "test") != 0)) {
        fputs(usage, stderr);
        goto out;
    }
    if (cli_load_rules("rules", paths, n_paths, &rs))
        goto out;
    rc = strcmp(sub, "list") == 0 ? list(rs, category) : test(rs);
out:
    insp_ruleset_free(rs);
    free(paths);
    return rc;
}
