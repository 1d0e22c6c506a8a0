/*
 * clampd tools: the pins of every server's tools, prompts, templates and instructions.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "policy/policy.h"

static const char usage[] =
    "Usage: clampd tools list [--server SERVER] [--json] [--policy FILE] [--state-dir DIR]\n"
    "       clampd tools approve SERVER TOOL [--hash PREFIX]... [--command CMD] [--state-dir DIR]\n"
    "       clampd tools revoke SERVER [TOOL] [--state-dir DIR]\n"
    "\n"
    "list     every pin: server (its serverInfo.name), kind, name, status, hash, first and\n"
    "         last seen. Status 'changed' is a rug pull waiting for review; 'pending' is a\n"
    "         new tool held back by --pin-mode strict. With --policy, each tool's category\n"
    "         in that policy, or 'UNCLASSIFIED' for a tool waiting for one (its calls are\n"
    "         denied with tool_not_classified).\n"
    "approve  accept the new hash of a changed or pending item named TOOL on SERVER\n"
    "         (takes effect at the next tools/list of running proxies). With --hash, only\n"
    "         if the new hash starts with PREFIX (as printed in the rug-pull warning), so\n"
    "         that what is approved is the change that was reviewed.\n"
    "revoke   forget the pins of TOOL on SERVER (all of SERVER's pins without TOOL);\n"
    "         the next listing pins them again as first use\n"
    "\n"
    "Options:\n"
    "  --state-dir DIR   the state directory (default: $XDG_STATE_HOME/clampd, else\n"
    "                    ~/.local/state/clampd)\n"
    "  --json            list as JSON Lines, one pin per line\n"
    "  --server SERVER   list only the pins of that server\n"
    "  --policy FILE     show each tool's category in this policy\n"
    "  --hash PREFIX     approve only pins whose pending hash starts with PREFIX (hex;\n"
    "                    repeatable: a tool's contract and display hashes)\n"
    "  --command CMD     approve only the pins of that downstream command line\n"
    "  -h, --help        show this help\n";

static void fmt_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Names come from servers: no control character (ANSI escapes) reaches the terminal. */
static const char *printable(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        out[n++] = (unsigned char)*in < 0x20 || *in == 0x7f ? '?' : *in;
    out[n] = '\0';
    return out;
}

static bool is_hex(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
    return true;
}

struct list_opts {
    bool json;
    const char *server;
    const struct pol *policy;
};

static int print_pin(void *ctx, const struct engine_pin *pin)
{
    const struct list_opts *lo = ctx;
    bool json = lo->json;
    char first[32], last[32];

    const char *cat = NULL;
    bool is_tool = strcmp(pin->kind, "tool") == 0;

    if (lo->server && strcmp(lo->server, pin->server) != 0)
        return 0;
    if (lo->policy && is_tool)
        cat = pol_tool_category(lo->policy, pin->server, pin->name);
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:I}", "server", pin->server, "command",
            pin->command, "kind", pin->kind, "name", pin->name, "hash", pin->hash, "pending_hash",
            pin->pending_hash, "status", pin->status, "first_seen_ms",
            (json_int_t)pin->first_seen_ms, "last_seen_ms", (json_int_t)pin->last_seen_ms);
        if (o && lo->policy && is_tool)
            json_object_set_new(o, "category", cat ? json_string(cat) : json_null());
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(o);
        return s ? 0 : -1;
    }
    char srv[128], name[256], cmd[512];

    fmt_time(pin->first_seen_ms, first, sizeof(first));
    fmt_time(pin->last_seen_ms, last, sizeof(last));
    if (lo->policy)
        printf("%-20s ", !is_tool ? "-" : cat ? cat : "UNCLASSIFIED");
    printf("%-24s %-17s %-28s %-8s %.16s%s%.16s  %s  %s  %s\n",
           pin->server[0] ? printable(pin->server, srv, sizeof(srv)) : "-", pin->kind,
           pin->name[0] ? printable(pin->name, name, sizeof(name)) : "-", pin->status,
           pin->hash[0] ? pin->hash : "-", pin->pending_hash ? " -> " : "",
           pin->pending_hash ? pin->pending_hash : "", first, last,
           printable(pin->command, cmd, sizeof(cmd)));
    return 0;
}

int cmd_tools(int argc, char **argv)
{
    static const struct option longs[] = {{"state-dir", required_argument, NULL, 's'},
                                          {"json", no_argument, NULL, 'j'},
                                          {"hash", required_argument, NULL, 'x'},
                                          {"server", required_argument, NULL, 'S'},
                                          {"command", required_argument, NULL, 'C'},
                                          {"policy", required_argument, NULL, 'P'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *state = NULL, *sub, *server = NULL, *policy_path = NULL;
    struct pol *policy = NULL;
    struct engine_approval ap = {0};
    bool json = false;
    char *dir = NULL, *err = NULL;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 's')
            state = optarg;
        else if (c == 'j')
            json = true;
        else if (c == 'x' && is_hex(optarg) && strlen(optarg) <= 64 &&
                 ap.n_hashes < ENGINE_APPROVE_MAX_HASHES)
            ap.hashes[ap.n_hashes++] = optarg;
        else if (c == 'C')
            ap.command = optarg;
        else if (c == 'S')
            server = optarg;
        else if (c == 'P')
            policy_path = optarg;
        else if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 1;
        }
    }
    sub = optind < argc ? argv[optind++] : NULL;
    if (!sub) {
        fputs(usage, stderr);
        return 1;
    }
    dir = cli_state_dir(state, true);
    if (!dir)
        return 1;
    if (policy_path && pol_load(policy_path, &policy, &err)) {
        fprintf(stderr, "clampd tools: policy: %s\n", err ? err : "cannot load");
        free(err);
        free(dir);
        return 1;
    }
    if (strcmp(sub, "list") == 0 && optind == argc) {
        if (!json && policy)
            printf("%-20s ", "CATEGORY");
        if (!json)
            printf("%-24s %-17s %-28s %-8s %-16s  %-20s  %-20s  %s\n", "SERVER", "KIND", "NAME",
                   "STATUS", "HASH", "FIRST SEEN", "LAST SEEN", "COMMAND");
        struct list_opts lo = {json, server, policy};
        rc = engine_pins_each(dir, print_pin, &lo, &err) ? 1 : 0;
    } else if (strcmp(sub, "approve") == 0 && argc - optind == 2) {
        ap.server = argv[optind];
        ap.name = argv[optind + 1];
        int n = engine_pins_approve(dir, &ap, &err);
        if (n == 0)
            fprintf(stderr, "clampd tools: nothing to approve for '%s' on server '%s'\n",
                    argv[optind + 1], argv[optind]);
        else if (n > 0)
            printf("approved %d pin%s of '%s' on server '%s'\n", n, n == 1 ? "" : "s",
                   argv[optind + 1], argv[optind]);
        rc = n > 0 ? 0 : 1;
    } else if (strcmp(sub, "revoke") == 0 && (argc - optind == 1 || argc - optind == 2)) {
        const char *name = argc - optind == 2 ? argv[optind + 1] : NULL;
        int n = engine_pins_revoke(dir, argv[optind], name, &err);
        if (n >= 0)
            printf("revoked %d pin%s\n", n, n == 1 ? "" : "s");
        rc = n > 0 ? 0 : 1;
    } else {
        fputs(usage, stderr);
    }
    if (err)
        fprintf(stderr, "clampd tools: %s\n", err);
    free(err);
    free(dir);
    pol_free(policy);
    return rc;
}
