/*
 * decide: the in-process cost of engine_decide() (issue 4's target: p50 < 20 us for a
 * typical call), stage by stage.
 *
 *   bench_decide [-r ROUNDS] [-n CALLS_PER_ROUND] [-w WARMUP]
 *
 * One policy (one agent, one category with the scope fs:read, read_text_file mapped to it,
 * no rate limit), written to a temporary state directory with a fresh key ring. Engines,
 * each with its own state directory, side by side in this process:
 *
 *   full         rules + policy + scope tokens (what `clampd mcp --policy --scope-tokens` runs)
 *   no tokens    rules + policy
 *   no rules     policy + scope tokens (rules NULL)
 *   floor        policy only: the call's shape, the pin, the policy lookup
 *   gateway      as full, but the session is the gateway's (engine_session_new_shared(), one
 *                shared scratch) and every call claims the descriptor hash first, as
 *                POST /v1/proxy does under its lock (engine_session_claim_tool + decide_ex)
 *   hostile      the full engine on a path traversal ({"path":"../../../../etc/passwd"}): denied
 *   ed25519      libsodium's crypto_sign_detached() of a token-sized text alone (after the
 *                rounds): the floor of the token stage
 *
 * The in-process sessions learn their tool set from a tools/list result
 * (engine_discover_tools), as the proxy does. A sample is one call, CLOCK_MONOTONIC around
 * it; the verdict is checked outside the timed region (a typical call must be a plain allow,
 * with a token when tokens are on; the hostile one a deny), else the run fails. The variants
 * take turns in rounds so that machine noise lands on all of them. Nothing asserts a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "core/core.h"
#include "engine/engine.h"
#include "inspect/inspect.h"
#include "policy/policy.h"
#include "token/token.h"

static const char policy_yaml[] = "agents:\n"
                                  "  - id: bench\n"
                                  "    scopes: [fs:read]\n"
                                  "categories:\n"
                                  "  - name: filesystem-read\n"
                                  "    scopes: [fs:read]\n"
                                  "tools:\n"
                                  "  - server: \"*\"\n"
                                  "    tools: [read_text_file]\n"
                                  "    category: filesystem-read\n";

/* The filesystem server's read_text_file, as its tools/list describes it. */
static const char tools_list[] =
    "{\"tools\":[{\"name\":\"read_text_file\",\"description\":\"Read the complete contents of a "
    "file from the file system as text. Handles various text encodings and provides detailed "
    "error messages if the file cannot be read. Use this tool when you need to examine the "
    "contents of a single file. Use the 'head' parameter to return only the first N lines of a "
    "file, or the 'tail' parameter to return only the last N lines of a file. Only works within "
    "allowed directories.\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"path\":{"
    "\"type\":\"string\"},\"tail\":{\"type\":\"number\",\"description\":\"If provided, returns "
    "only the last N lines of the file\"},\"head\":{\"type\":\"number\",\"description\":\"If "
    "provided, returns only the first N lines of the file\"}},\"required\":[\"path\"]}}]}";

static const char typical_args[] = "{\"path\":\"/srv/docs/notes/todo.md\"}";
static const char hostile_args[] = "{\"path\":\"../../../../etc/passwd\"}";
static const char tool_hash[] = "5d41402abc4b2a76b9719d911017c592"
                                "5d41402abc4b2a76b9719d911017c592";

enum { V_FULL, V_NOTOK, V_NORULES, V_FLOOR, V_GATEWAY, V_HOSTILE, N_VARIANTS };

static const char *const names[N_VARIANTS] = {"full",  "no tokens", "no rules",
                                              "floor", "gateway",   "hostile"};

struct variant {
    struct engine *eng;
    struct engine_session *s;
    const char *args;
    bool gateway, tokens, deny;
    double *us;
    size_t n;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return n ? sorted[i < n ? i : n - 1] : 0.0;
}

#define SIGN_LEN 420 /* about a token's header.payload */

/* p50 in us of one Ed25519 signature of SIGN_LEN bytes: the floor of the token stage. */
static double sign_floor(int n)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sig[crypto_sign_BYTES], msg[SIGN_LEN];
    double *us = malloc(sizeof(double) * (size_t)n), p50;

    if (!us)
        return 0;
    crypto_sign_keypair(pk, sk);
    randombytes_buf(msg, sizeof(msg));
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
        us[i] = now_us() - t0;
        msg[i % SIGN_LEN] ^= sig[0];
    }
    qsort(us, (size_t)n, sizeof(double), cmp_double);
    p50 = pct(us, (size_t)n, 0.5);
    free(us);
    sodium_memzero(sk, sizeof(sk));
    return p50;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0;
    return fclose(f) || rc ? -1 : 0;
}

/* One engine in its own state directory dir (created), and a session with read_text_file. */
static int variant_init(struct variant *v, const char *dir, const struct insp_ruleset *rules,
                        const struct pol *policy, const struct tok_keyring *keys)
{
    struct engine_config cfg = {
        .state_dir = dir, .agent_id = "bench", .rules = rules, .policy = policy, .keys = keys};
    char *err = NULL;

    if (mkdir(dir, 0700) && errno != EEXIST)
        return -1;
    if (engine_new(&cfg, &v->eng, &err)) {
        fprintf(stderr, "bench_decide: engine: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    if (v->gateway) {
        v->s = engine_session_new_shared(v->eng, "clampd-gateway --agent 'bench' --server ''");
        if (!v->s || engine_session_set_agent(v->s, "bench"))
            return -1;
        return engine_session_claim_tool(v->s, "read_text_file", tool_hash, false) ? -1 : 0;
    }
    if (!(v->s = engine_session_new(v->eng, "bench-filesystem-server")))
        return -1;
    engine_session_set_server(v->s, "secure-filesystem-server");
    json_t *result = json_loads(tools_list, 0, NULL);
    struct engine_discovery rep;
    int rc = result ? engine_discover_tools(v->s, result, true, &rep) : -1;
    json_decref(result);
    if (rc || rep.offered != 1) {
        fprintf(stderr, "bench_decide: tools/list: rc %d, %u offered\n", rc, rc ? 0 : rep.offered);
        return -1;
    }
    return 0;
}

/* One call; returns its time in us, or a negative value when the verdict is not the
 * expected one. */
static double one_call(struct variant *v, struct engine_verdict *out)
{
    struct engine_call call = {.tool = "read_text_file",
                               .tool_len = strlen("read_text_file"),
                               .arguments = v->args,
                               .arguments_len = strlen(v->args)};
    double t0 = now_us(), dt;

    if (v->gateway) {
        if (engine_session_claim_tool(v->s, call.tool, tool_hash, false))
            return -1;
        engine_decide_ex(v->s, &call, 0, out);
    } else {
        engine_decide(v->s, &call, out);
    }
    dt = now_us() - t0;
    if (v->deny)
        return out->verdict == VERDICT_DENY ? dt : -1;
    if (out->verdict != VERDICT_ALLOW || (v->tokens != (out->scope_token[0] != '\0')))
        return -1;
    return dt;
}

int main(int argc, char **argv)
{
    int rounds = 10, calls = 2000, warmup = 500, c, rc = 1;
    struct variant vs[N_VARIANTS] = {{0}};
    struct insp_ruleset *rules = NULL;
    struct pol *policy = NULL;
    struct tok_keyring *keys = NULL;
    static struct engine_verdict verdict;
    char state[] = "/tmp/clampd-bench-decide-XXXXXX", path[512], *err = NULL, *cache = NULL;

    while ((c = getopt(argc, argv, "r:n:w:")) != -1) {
        if (c == 'r')
            rounds = (int)strtol(optarg, NULL, 10);
        else if (c == 'n')
            calls = (int)strtol(optarg, NULL, 10);
        else if (c == 'w')
            warmup = (int)strtol(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: bench_decide [-r ROUNDS] [-n CALLS] [-w WARMUP]\n");
            return 2;
        }
    }
    if (rounds < 1 || calls < 1 || warmup < 0)
        return 2;
    clog_set_level(CLOG_ERROR);
    if (sodium_init() < 0 || !mkdtemp(state))
        return 1;

    /* the rules as clampd loads them: compiled once, cached under $XDG_CACHE_HOME/clampd */
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(path, sizeof(path), "%s/clampd", xdg);
        (void)mkdir(xdg, 0700); /* as clampd does; an error shows on the next line */
        if (mkdir(path, 0700) == 0 || errno == EEXIST)
            cache = strdup(path);
    }
    double t0 = now_us();
    if (insp_ruleset_load_cached(NULL, 0, cache ? cache : state, &rules, &err)) {
        fprintf(stderr, "bench_decide: rules: %s\n", err ? err : "?");
        goto out;
    }
    double load_ms = (now_us() - t0) / 1e3;
    snprintf(path, sizeof(path), "%s/policy.yaml", state);
    if (write_file(path, policy_yaml) || pol_load(path, &policy, &err)) {
        fprintf(stderr, "bench_decide: policy: %s\n", err ? err : "cannot write");
        goto out;
    }
    if (tok_keyring_open(state, true, &keys, &err)) {
        fprintf(stderr, "bench_decide: keys: %s\n", err ? err : "?");
        goto out;
    }

    for (int i = 0; i < N_VARIANTS; i++) {
        struct variant *v = &vs[i];
        bool with_rules = i != V_NORULES && i != V_FLOOR;
        v->tokens = i != V_NOTOK && i != V_FLOOR && i != V_HOSTILE;
        v->gateway = i == V_GATEWAY;
        v->deny = i == V_HOSTILE;
        v->args = v->deny ? hostile_args : typical_args;
        snprintf(path, sizeof(path), "%s/v%d", state, i);
        if (variant_init(v, path, with_rules ? rules : NULL, policy, v->tokens ? keys : NULL))
            goto out;
        if (!(v->us = malloc(sizeof(double) * (size_t)rounds * (size_t)calls)))
            goto out;
        for (int k = 0; k < warmup; k++)
            if (one_call(v, &verdict) < 0) {
                fprintf(stderr, "bench_decide: %s: unexpected verdict %d %s: %s\n", names[i],
                        verdict.verdict, verdict.error_code, verdict.reason);
                goto out;
            }
    }

    /* rounds, in rotating order */
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < N_VARIANTS; j++) {
            struct variant *v = &vs[(r + j) % N_VARIANTS];
            for (int k = 0; k < calls; k++) {
                double dt = one_call(v, &verdict);
                if (dt < 0) {
                    fprintf(stderr, "bench_decide: unexpected verdict %d %s: %s\n", verdict.verdict,
                            verdict.error_code, verdict.reason);
                    goto out;
                }
                v->us[v->n++] = dt;
            }
        }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("\nengine_decide() in process: read_text_file %s (%zu rules, loaded in %.0f ms),\n"
           "%d rounds x %d calls per variant, %ld CPUs; target: typical call p50 < 20 us\n\n",
           typical_args, insp_ruleset_count(rules), load_ms, rounds, calls, ncpu);
    printf("%-10s %9s %9s %9s %9s %10s %9s\n", "variant", "p50 us", "p90 us", "p99 us", "mean us",
           "calls/s", "p50/floor");
    qsort(vs[V_FLOOR].us, vs[V_FLOOR].n, sizeof(double), cmp_double);
    double floor50 = pct(vs[V_FLOOR].us, vs[V_FLOOR].n, 0.5);
    for (int i = 0; i < N_VARIANTS; i++) {
        struct variant *v = &vs[i];
        double sum = 0;
        for (size_t k = 0; k < v->n; k++)
            sum += v->us[k];
        qsort(v->us, v->n, sizeof(double), cmp_double);
        double p50 = pct(v->us, v->n, 0.5);
        printf("%-10s %9.1f %9.1f %9.1f %9.1f %10.0f %8.1fx\n", names[i], p50,
               pct(v->us, v->n, 0.9), pct(v->us, v->n, 0.99), sum / (double)v->n,
               1e6 * (double)v->n / sum, p50 / floor50);
    }
    double sign50 = sign_floor(rounds * calls);
    printf("ed25519    %9.1f  (libsodium crypto_sign_detached of a %zu-byte token body alone)\n",
           sign50, (size_t)SIGN_LEN);
    double p[N_VARIANTS];
    for (int i = 0; i < N_VARIANTS; i++)
        p[i] = pct(vs[i].us, vs[i].n, 0.5);
    double tok = p[V_FULL] - p[V_NOTOK];
    printf("\nwhere the p50 goes: scope token %.1f us (full - no tokens; the signature alone is "
           "%.0f%% of it),\nrules %.1f us (no tokens - floor), shape + pin + policy %.1f us "
           "(floor); the gateway's session and claim %+.1f us over full\n",
           tok, tok > 0 ? 100.0 * sign50 / tok : 0.0, p[V_NOTOK] - p[V_FLOOR], p[V_FLOOR],
           p[V_GATEWAY] - p[V_FULL]);
    rc = 0;
out:
    free(err);
    for (int i = 0; i < N_VARIANTS; i++) {
        engine_session_free(vs[i].s);
        engine_free(vs[i].eng);
        free(vs[i].us);
    }
    tok_keyring_free(keys);
    pol_free(policy);
    insp_ruleset_free(rules);
    free(cache);
    /* the state directory: one pins.db per variant, keys/, policy.yaml */
    if (strncmp(state, "/tmp/clampd-bench-decide-", 25) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("rm", "rm", "-rf", "--", state, (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    return rc;
}
