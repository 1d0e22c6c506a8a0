/*
 * clampd gateway: the engine over HTTP for many agents and proxies (docs/gateway.md).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"
#include "gateway/gateway.h"
#include "inspect/inspect.h"
#include "policy/policy.h"
#include "token/token.h"

static const char usage[] =
    "Usage: clampd gateway --policy FILE [options]\n"
    "\n"
    "Serves the engine of 'clampd mcp' over HTTP for many agents and proxies: every call\n"
    "is judged by the same checks (rate limits, descriptor pins, rules, policy scopes) and\n"
    "an allowed one gets an Ed25519 scope token. Agents authenticate with the X-AG-Key\n"
    "header; the policy holds the SHA-256 of each agent's key. Routes (docs/gateway.md):\n"
    "  POST /v1/proxy, /v1/verify (dry run), /v1/scan-input, /v1/scan-output\n"
    "  GET  /health, /metrics, /.well-known/jwks.json\n"
    "Logs go to stderr; keys and tokens are never logged.\n"
    "\n"
    "Options:\n"
    "  --listen HOST:PORT    address to listen on (default 127.0.0.1:8700; port 0 picks a\n"
    "                        free one; the address is printed on stderr once listening)\n"
    "  --policy FILE         the policy (docs/policy.md): agents with api_key_sha256 and\n"
    "                        scopes, categories, tool mappings, thresholds, rate limits.\n"
    "                        Required: without it no agent could authenticate.\n"
    "  --state-dir DIR       pins.db and the signing keys (default: $XDG_STATE_HOME/clampd,\n"
    "                        else ~/.local/state/clampd; created with mode 0700)\n"
    "  --rules PATH          rule packs (a .yaml file or a directory; repeatable) instead\n"
    "                        of the built-in ones; $CLAMPD_RULES does the same\n"
    "  --token-ttl S         scope tokens' lifetime in seconds (default 60)\n"
    "  --max-body BYTES      largest request body (default 1048576); larger: 413\n"
    "  --max-connections N   open connections served (default 256); more: 503\n"
    "  --timeout S           idle connection timeout in seconds (default 30)\n"
    "  --threads N           HTTP worker threads (default 2); the engine runs under one lock\n"
    "  --metrics-public      serve GET /metrics without an API key (for a scraper)\n"
    "  --redis URL           keep the rate-limit buckets in Redis, shared by every replica\n"
    "                        given the same URL: redis://[:PASSWORD@]HOST[:PORT][/DB] or\n"
    "                        unix:/PATH; $CLAMPD_REDIS_PASSWORD when the URL has none.\n"
    "                        Redis not answering: calls are denied (503\n"
    "                        rate_limit_unavailable) unless the policy says fail_mode: open\n"
    "  -v, --verbose         more logging on stderr: -v one line per request, -vv debug\n"
    "  -h, --help            show this help\n"
    "\n"
    "Stops cleanly on SIGINT or SIGTERM (exit status 0). Exit status 1: usage error or a\n"
    "start-up failure (policy, rules, keys, pin store, address).\n";

struct gw_opts {
    const char *listen, *policy, *state_dir, *redis;
    const char **rules;
    size_t n_rules;
    long token_ttl, max_body, max_conn, timeout, threads;
    bool metrics_public;
    int verbose;
};

static int number(const char *opt, const char *arg, long min, long max, long *out)
{
    if (clampd_parse_long(arg, min, max, out) == 0)
        return 0;
    fprintf(stderr, "clampd gateway: %s wants a number in %ld..%ld, not '%s'\n", opt, min, max,
            arg);
    return 1;
}

static int parse_opts(int argc, char **argv, struct gw_opts *o)
{
    static const struct option longs[] = {{"listen", required_argument, NULL, 'l'},
                                          {"policy", required_argument, NULL, 'Y'},
                                          {"state-dir", required_argument, NULL, 's'},
                                          {"rules", required_argument, NULL, 'R'},
                                          {"token-ttl", required_argument, NULL, 'L'},
                                          {"max-body", required_argument, NULL, 'B'},
                                          {"max-connections", required_argument, NULL, 'C'},
                                          {"timeout", required_argument, NULL, 'T'},
                                          {"threads", required_argument, NULL, 'N'},
                                          {"metrics-public", no_argument, NULL, 'M'},
                                          {"redis", required_argument, NULL, 'D'},
                                          {"verbose", no_argument, NULL, 'v'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "vh", longs, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'Y': o->policy = optarg; break;
        case 's': o->state_dir = optarg; break;
        case 'R': o->rules[o->n_rules++] = optarg; break;
        case 'M': o->metrics_public = true; break;
        case 'D': o->redis = optarg; break;
        case 'v': o->verbose++; break;
        case 'L':
            if (number("--token-ttl", optarg, 1, TOK_MAX_TTL, &o->token_ttl))
                return 1;
            break;
        case 'B':
            if (number("--max-body", optarg, 64, 64L * 1024 * 1024, &o->max_body))
                return 1;
            break;
        case 'C':
            if (number("--max-connections", optarg, 1, 65536, &o->max_conn))
                return 1;
            break;
        case 'T':
            if (number("--timeout", optarg, 1, 3600, &o->timeout))
                return 1;
            break;
        case 'N':
            if (number("--threads", optarg, 1, 64, &o->threads))
                return 1;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "clampd gateway: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!o->policy) {
        fprintf(stderr, "clampd gateway: --policy FILE is required: the gateway authenticates"
                        " agents by the api_key_sha256 the policy gives each of them"
                        " (docs/policy.md)\n");
        return 1;
    }
    return -1;
}

/* Serves until SIGINT or SIGTERM. The signals are blocked before the server's threads
 * start (they inherit the mask), so only this thread receives them, in sigwait(). */
static int serve(const struct gw_config *cfg)
{
    sigset_t set;
    struct gw *g = NULL;
    char *err = NULL;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gw_new(cfg, &g, &err)) {
        fprintf(stderr, "clampd gateway: %s\n", err ? err : "cannot start");
        free(err);
        return 1;
    }
    /* one line on stderr whatever the log level: what scripts and tests wait for */
    fprintf(stderr, "clampd gateway: listening on http://%s\n", gw_address(g));
    fflush(stderr);
    sigwait(&set, &sig);
    clog_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    gw_free(g);
    fprintf(stderr, "clampd gateway: stopped\n");
    return 0;
}

/* The shared buckets of --redis, used by the limiter engine_new() makes next. An address
 * that does not parse stops the gateway; one that does not answer yet only warns: its
 * calls are refused (or pass, fail_mode: open) until it does. */
static int open_redis(const char *url, const struct pol *policy, struct pol_redis **out)
{
    bool open = pol_fail_mode(policy) == POL_FAIL_OPEN;
    char *err = NULL;

    if (pol_redis_new(url, getenv("CLAMPD_REDIS_PASSWORD"), open, out, &err)) {
        fprintf(stderr, "clampd gateway: %s\n", err ? err : "out of memory");
        free(err);
        return 1;
    }
    if (open)
        clog_warn("policy fail_mode: open: calls pass unlimited while Redis does not answer");
    if (pol_redis_ping(*out))
        clog_warn("redis: not answering yet; rate-limited calls are %s until it does",
                  open ? "passed" : "denied");
    else
        clog_info("rate-limit buckets shared through redis");
    pol_limiter_use_redis(*out);
    return 0;
}

static int run(struct gw_opts *o)
{
    struct insp_ruleset *rules = NULL;
    struct pol *policy = NULL;
    struct tok_keyring *keys = NULL;
    struct engine *eng = NULL;
    struct pol_redis *redis = NULL;
    char *err = NULL, *dir = NULL;
    int rc = 1;

    if (gw_listen_check(o->listen, &err)) { /* before the seconds rules may take to load */
        fprintf(stderr, "clampd gateway: %s\n", err ? err : "bad --listen");
        goto out;
    }
    if (pol_load(o->policy, &policy, &err)) {
        fprintf(stderr, "clampd gateway: policy: %s\n", err ? err : "cannot load");
        goto out;
    }
    if (o->redis && open_redis(o->redis, policy, &redis))
        goto out;
    if (!(dir = cli_state_dir(o->state_dir, true)))
        goto out;
    /* SECURITY: rules, keys and the pin store that do not load stop the gateway */
    if (cli_load_rules("gateway", o->rules, o->n_rules, &rules))
        goto out;
    if (tok_keyring_open(dir, true, &keys, &err)) {
        fprintf(stderr, "clampd gateway: scope-token keys: %s\n", err ? err : "cannot open");
        goto out;
    }
    struct engine_config ecfg = {.state_dir = dir,
                                 .agent_id = "gateway",
                                 .rules = rules,
                                 .policy = policy,
                                 .keys = keys,
                                 .token_ttl = o->token_ttl};
    if (engine_new(&ecfg, &eng, &err)) {
        fprintf(stderr, "clampd gateway: %s\n", err ? err : "cannot start the engine");
        goto out;
    }
    clog_info("%zu rules loaded; state in %s", insp_ruleset_count(rules), dir);
    struct gw_config gcfg = {.listen = o->listen,
                             .engine = eng,
                             .policy = policy,
                             .keys = keys,
                             .rules = rules,
                             .max_body = (size_t)o->max_body,
                             .max_connections = (unsigned)o->max_conn,
                             .timeout_s = (unsigned)o->timeout,
                             .threads = (unsigned)o->threads,
                             .metrics_public = o->metrics_public};
    rc = serve(&gcfg);
out:
    engine_free(eng);
    pol_limiter_use_redis(NULL);
    pol_redis_free(redis);
    tok_keyring_free(keys);
    insp_ruleset_free(rules);
    pol_free(policy);
    free(dir);
    free(err);
    return rc;
}

int cmd_gateway(int argc, char **argv)
{
    struct gw_opts o = {.listen = "127.0.0.1:8700"};
    int rc;

    o.rules = calloc((size_t)argc + 1, sizeof(char *));
    if (!o.rules)
        return 1;
    rc = parse_opts(argc, argv, &o);
    if (rc < 0) {
        clog_set_level(o.verbose >= 2 ? CLOG_DEBUG : o.verbose ? CLOG_INFO : CLOG_WARN);
        rc = run(&o);
    }
    free(o.rules);
    return rc;
}
