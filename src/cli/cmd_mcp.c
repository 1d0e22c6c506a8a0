/*
 * clampd mcp: a drop-in stdio MCP server in front of a downstream MCP server.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"
#include "policy/policy.h"
#include "token/token.h"
#include "inspect/inspect.h"
#include "proxy/proxy.h"
#include "transport/transport.h"

static const char usage[] =
    "Usage: clampd mcp --downstream \"COMMAND [ARGS...]\" [options]\n"
    "\n"
    "Runs as a stdio MCP server (for Claude Desktop's mcpServers, Cursor, any MCP client),\n"
    "spawns the downstream MCP server and relays every message both ways. Every tools/list\n"
    "is hashed and pinned (a changed tool is withheld and calls to it are denied with\n"
    "descriptor_hash_mismatch); every tools/call is checked before it reaches the server.\n"
    "stdout carries only the protocol; all logging goes to stderr.\n"
    "\n"
    "Options:\n"
    "  --downstream CMD      the downstream server's command line, split into words like a\n"
    "                        POSIX shell does (quotes and backslashes honoured; no shell is\n"
    "                        run, so no $VAR, ~ or glob expansion). Required.\n"
    "  --agent-id ID         this agent's identity (default: local)\n"
    "  --state-dir DIR       where pins.db is kept (default: $XDG_STATE_HOME/clampd,\n"
    "                        else ~/.local/state/clampd; created with mode 0700)\n"
    "  --env KEY=VALUE       set a variable in the downstream's environment (repeatable).\n"
    "                        The downstream inherits clampd's environment except variables\n"
    "                        whose names start with CLAMPD_ (clampd's own secrets).\n"
    "  --pin-mode MODE       tofu (default): first use pins; a tool that later appears on a\n"
    "                        server with pins is pinned and reported. strict: such a new tool\n"
    "                        is withheld until 'clampd tools approve'.\n"
    "  --rules PATH          rule packs (a .yaml file or a directory; repeatable) instead of\n"
    "                        the packs built into clampd; $CLAMPD_RULES does the same. The\n"
    "                        rules scan every string of every tools/call's arguments: a\n"
    "                        match of risk >= 0.7 denies the call (rule_match), >= 0.4 flags\n"
    "                        it in the log; and tool descriptions at discovery: a tool whose\n"
    "                        description matches at >= 0.7 is withheld (tool_poisoned).\n"
    "  --policy FILE         a policy (YAML, docs/policy.md): agents and their scopes,\n"
    "                        categories, tool mappings, thresholds, rate limits. With it,\n"
    "                        a tool that maps to no category is denied\n"
    "                        (tool_not_classified), an agent without the category's scopes\n"
    "                        is denied (scope_denied), over its rate is denied\n"
    "                        (rate_limited). Without it the local agent may call every tool\n"
    "                        it pinned, and every other check still applies.\n"
    "  --scope-tokens        attach an Ed25519-signed scope token (docs/tokens.md) to every\n"
    "                        allowed call, in params._meta[\"clampd/scope_token\"], bound\n"
    "                        to the tool and its arguments (on whenever --policy is given)\n"
    "  --token-ttl S         scope tokens' lifetime in seconds (default 60)\n"
    "  --poisoned MODE       withhold (default): a poisoned tool is not offered and calls to\n"
    "                        it are denied. mark: it is offered with its findings in\n"
    "                        _meta[\"clampd/findings\"] and its calls judged like any other.\n"
    "                        Either way, ANSI escapes and invisible characters are removed\n"
    "                        from every tool's descriptions and titles before the client\n"
    "                        sees them.\n"
    "  --gateway URL         remote mode: every tools/call is decided by the clampd gateway\n"
    "                        at URL (docs/gateway.md): its policy, rules, rate limits and\n"
    "                        scope tokens. Discovery (pins, description scans) and result\n"
    "                        inspection stay here. If the gateway does not answer, the call\n"
    "                        is denied (gateway_unavailable): fail closed.\n"
    "  --api-key-file FILE   the agent's gateway API key (sent as X-AG-Key), first line of\n"
    "                        FILE; or $CLAMPD_API_KEY; or --api-key KEY (visible to other\n"
    "                        users in the process list: prefer the file or the variable)\n"
    "  --fail-open           remote mode: when the gateway does not answer, decide the call\n"
    "                        with the local rules instead of denying it (logged as a warning\n"
    "                        at every such call)\n"
    "  --gateway-timeout MS  remote mode: how long a decision may take (default 5000)\n"
    "  --relist-interval S   re-list the downstream's tools every S seconds to catch silent\n"
    "                        changes (default 300; 0 turns it off). clampd always re-lists at\n"
    "                        once on notifications/tools/list_changed.\n"
    "  -v, --verbose         more logging on stderr (repeat for debug)\n"
    "  -h, --help            show this help\n"
    "\n"
    "Exit status: 0 the client closed stdin and the downstream ended; 1 usage error;\n"
    "2 the downstream could not be started; 3 the downstream exited while the client was\n"
    "connected; 4 stopped by SIGINT or SIGTERM.\n";

struct mcp_opts {
    const char *downstream, *agent_id, *state_dir;
    const char **rules;
    size_t n_rules;
    enum pin_mode pin_mode;
    long relist;
    char **env_add;
    size_t n_env;
    int verbose;
    bool offer_poisoned;
    const char *policy;
    bool tokens;
    long token_ttl;
    const char *gateway, *api_key, *api_key_file;
    bool fail_open;
    long gateway_timeout;
};

static int parse_opts(int argc, char **argv, struct mcp_opts *o)
{
    static const struct option longs[] = {{"downstream", required_argument, NULL, 'd'},
                                          {"agent-id", required_argument, NULL, 'a'},
                                          {"state-dir", required_argument, NULL, 's'},
                                          {"env", required_argument, NULL, 'e'},
                                          {"pin-mode", required_argument, NULL, 'p'},
                                          {"relist-interval", required_argument, NULL, 'r'},
                                          {"rules", required_argument, NULL, 'R'},
                                          {"poisoned", required_argument, NULL, 'P'},
                                          {"policy", required_argument, NULL, 'Y'},
                                          {"scope-tokens", no_argument, NULL, 'T'},
                                          {"token-ttl", required_argument, NULL, 'L'},
                                          {"gateway", required_argument, NULL, 'G'},
                                          {"api-key", required_argument, NULL, 'K'},
                                          {"api-key-file", required_argument, NULL, 'F'},
                                          {"fail-open", no_argument, NULL, 'O'},
                                          {"gateway-timeout", required_argument, NULL, 'W'},
                                          {"verbose", no_argument, NULL, 'v'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
        switch (c) {
        case 'd': o->downstream = optarg; break;
        case 'a': o->agent_id = optarg; break;
        case 's': o->state_dir = optarg; break;
        case 'v': o->verbose++; break;
        case 'R': o->rules[o->n_rules++] = optarg; break;
        case 'Y': o->policy = optarg; break;
        case 'T': o->tokens = true; break;
        case 'G': o->gateway = optarg; break;
        case 'K': o->api_key = optarg; break;
        case 'F': o->api_key_file = optarg; break;
        case 'O': o->fail_open = true; break;
        case 'W':
            if (clampd_parse_long(optarg, 1, 600000, &o->gateway_timeout)) {
                fprintf(stderr, "clampd mcp: --gateway-timeout wants milliseconds (1..600000)\n");
                return 1;
            }
            break;
        case 'L':
            if (clampd_parse_long(optarg, 1, TOK_MAX_TTL, &o->token_ttl)) {
                fprintf(stderr, "clampd mcp: --token-ttl wants seconds (1..%d)\n", TOK_MAX_TTL);
                return 1;
            }
            break;
        case 'P':
            if (strcmp(optarg, "withhold") != 0 && strcmp(optarg, "mark") != 0) {
                fprintf(stderr, "clampd mcp: --poisoned is withhold or mark, not '%s'\n", optarg);
                return 1;
            }
            o->offer_poisoned = strcmp(optarg, "mark") == 0;
            break;
        case 'h': fputs(usage, stdout); return 0;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "clampd mcp: --env wants KEY=VALUE, got '%s'\n", optarg);
                return 1;
            }
            o->env_add[o->n_env++] = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "tofu") == 0)
                o->pin_mode = PIN_MODE_TOFU;
            else if (strcmp(optarg, "strict") == 0)
                o->pin_mode = PIN_MODE_STRICT;
            else {
                fprintf(stderr, "clampd mcp: --pin-mode is tofu or strict, not '%s'\n", optarg);
                return 1;
            }
            break;
        case 'r':
            if (clampd_parse_long(optarg, 0, 86400 * 7, &o->relist)) {
                fprintf(stderr, "clampd mcp: --relist-interval wants seconds (0..604800)\n");
                return 1;
            }
            break;
        default: fputs(usage, stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "clampd mcp: unexpected argument '%s' (quote the whole downstream"
                " command after --downstream)\n",
                argv[optind]);
        return 1;
    }
    if (!o->downstream) {
        fprintf(stderr, "clampd mcp: --downstream is required\n\n%s", usage);
        return 1;
    }
    if (!o->gateway && (o->api_key || o->api_key_file || o->fail_open || o->gateway_timeout)) {
        fprintf(stderr, "clampd mcp: --api-key, --api-key-file, --fail-open and"
                        " --gateway-timeout go with --gateway\n");
        return 1;
    }
    if (o->gateway && (o->policy || o->tokens)) {
        fprintf(stderr, "clampd mcp: with --gateway the gateway's policy decides and signs the"
                        " scope tokens: --policy and --scope-tokens are for in-process mode\n");
        return 1;
    }
    if (o->gateway && strncmp(o->gateway, "http://", 7) != 0 &&
        strncmp(o->gateway, "https://", 8) != 0) {
        fprintf(stderr, "clampd mcp: --gateway wants an http:// or https:// URL\n");
        return 1;
    }
    return -1; /* go on */
}

#define MCP_API_KEY_MAX 512 /* the gateway considers no longer X-AG-Key */

/* The gateway API key: --api-key-file's first line, else $CLAMPD_API_KEY, else --api-key.
 * Returns a malloc'd key or NULL (with a message). */
static char *api_key(const struct mcp_opts *o)
{
    char buf[MCP_API_KEY_MAX + 2];
    const char *env = getenv("CLAMPD_API_KEY");
    char *key = NULL;

    if (o->api_key_file) {
        FILE *f = fopen(o->api_key_file, "r");
        if (!f || !fgets(buf, sizeof(buf), f)) {
            fprintf(stderr, "clampd mcp: --api-key-file %s: cannot read it\n", o->api_key_file);
            if (f)
                fclose(f);
            return NULL;
        }
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        key = strdup(buf);
        clampd_wipe(buf, sizeof(buf));
    } else if (env && *env) {
        key = strdup(env);
    } else if (o->api_key) {
        key = strdup(o->api_key);
    } else {
        fprintf(stderr, "clampd mcp: --gateway needs the agent's API key: --api-key-file FILE,"
                        " $CLAMPD_API_KEY or --api-key KEY\n");
        return NULL;
    }
    if (key && (!*key || strlen(key) > MCP_API_KEY_MAX || strpbrk(key, "\r\n"))) {
        fprintf(stderr, "clampd mcp: the API key is empty or longer than %d bytes\n",
                MCP_API_KEY_MAX);
        clampd_wipe(key, strlen(key));
        free(key);
        return NULL;
    }
    return key;
}

static int run(struct mcp_opts *o)
{
    char **words = NULL, **env = NULL, *err = NULL, *dir = NULL;
    size_t nwords = 0;
    struct engine *eng = NULL;
    struct insp_ruleset *rules = NULL;
    struct pol *policy = NULL;
    struct tok_keyring *keys = NULL;
    char *key = NULL;
    struct proxy_gateway gw = {0};
    int rc = PROXY_EXIT_USAGE;

    if (o->gateway) {
        if (!(key = api_key(o)))
            goto out;
        if (tp_http_global_init()) {
            fprintf(stderr, "clampd mcp: cannot initialise libcurl\n");
            goto out;
        }
        gw = (struct proxy_gateway){o->gateway, key, o->fail_open,
                                    o->gateway_timeout ? (unsigned)o->gateway_timeout : 5000};
        if (o->fail_open)
            clog_warn("--fail-open: calls are decided by the local rules whenever the gateway at"
                      " %s does not answer",
                      o->gateway);
    }

    if (clampd_split_words(o->downstream, &words, &nwords, &err)) {
        fprintf(stderr, "clampd mcp: --downstream: %s\n", err ? err : "cannot split");
        goto out;
    }
    dir = cli_state_dir(o->state_dir, true);
    env = cli_child_env(o->env_add, o->n_env);
    if (!dir || !env)
        goto out;
    /* SECURITY: rules that do not load stop clampd; it never runs without its checks. */
    if (cli_load_rules("mcp", (const char **)o->rules, o->n_rules, &rules))
        goto out;
    /* ... and neither does a policy that does not load */
    if (o->policy && pol_load(o->policy, &policy, &err)) {
        fprintf(stderr, "clampd mcp: policy: %s\n", err ? err : "cannot load");
        goto out;
    }
    /* SECURITY: with a policy every allowed call carries a scope token; a key ring that
     * cannot be opened stops clampd */
    if ((policy || o->tokens) && tok_keyring_open(dir, true, &keys, &err)) {
        fprintf(stderr, "clampd mcp: scope-token keys: %s\n", err ? err : "cannot open");
        goto out;
    }
    if (policy && !pol_has_agent(policy, o->agent_id))
        clog_warn("agent '%s' is not in the policy %s: every call will be denied (scope_denied)",
                  o->agent_id, o->policy);
    clog_info("%zu rules loaded", insp_ruleset_count(rules));
    struct engine_config ecfg = {.state_dir = dir,
                                 .agent_id = o->agent_id,
                                 .pin_mode = o->pin_mode,
                                 .rules = rules,
                                 .offer_poisoned = o->offer_poisoned,
                                 .policy = policy,
                                 .keys = keys,
                                 .token_ttl = o->token_ttl};
    if (engine_new(&ecfg, &eng, &err)) {
        fprintf(stderr, "clampd mcp: %s\n", err ? err : "cannot start the engine");
        goto out;
    }
    struct proxy_config pcfg = {
        words, env, o->downstream, eng, (unsigned)o->relist, 2000, o->gateway ? &gw : NULL};
    rc = proxy_run(&pcfg);
out:
    engine_free(eng);
    insp_ruleset_free(rules);
    pol_free(policy);
    tok_keyring_free(keys);
    clampd_free_words(words);
    if (key) {
        clampd_wipe(key, strlen(key));
        free(key);
    }
    free(env);
    free(dir);
    free(err);
    return rc;
}

int cmd_mcp(int argc, char **argv)
{
    struct mcp_opts o = {.relist = 300, .agent_id = "local"};
    int rc;

    o.env_add = calloc((size_t)argc + 1, sizeof(char *));
    o.rules = calloc((size_t)argc + 2, sizeof(char *));
    if (!o.env_add || !o.rules) {
        free(o.env_add);
        free(o.rules);
        return 1;
    }
    rc = parse_opts(argc, argv, &o);
    if (rc < 0) {
        clog_set_level(o.verbose >= 2 ? CLOG_DEBUG : o.verbose ? CLOG_INFO : CLOG_WARN);
        rc = run(&o);
    }
    free(o.env_add);
    free(o.rules);
    return rc;
}
