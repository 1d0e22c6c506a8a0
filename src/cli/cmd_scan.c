/*
 * clampd scan: start an MCP server, list its tools (every page) and its instructions, and
 * report what the description rules find, before anyone wires the server into an agent.
 *
 *   spawn ─▶ initialize ─▶ notifications/initialized ─▶ tools/list (pages) ─▶ stop it
 *         ─▶ each tool through engine_inspect_tool() ─▶ report (text, or --json)
 *
 * Requests the server sends meanwhile (roots/list, sampling...) are answered "method not
 * found"; its notifications are ignored. Exit: 0 nothing found, 1 a tool was flagged or
 * would be withheld, 2 the server could not be scanned.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "inspect/inspect.h"
#include "json/json.h"
#include "jsonrpc/jsonrpc.h"
#include "transport/transport.h"

static const char usage[] =
    "Usage: clampd scan --downstream CMD [--json] [--env KEY=VALUE]... [--timeout SECONDS]\n"
    "                   [--rules PATH]...\n"
    "\n"
    "Starts the MCP server CMD (as clampd mcp would), lists its tools and reads its\n"
    "instructions, stops it, and reports each tool's contract hash and what the rules find\n"
    "in its name, description and schema (tool poisoning, hidden instructions, invisible\n"
    "characters...).\n"
    "\n"
    "Options:\n"
    "  --downstream CMD   the server's command line, one string\n"
    "  --json             one JSON object instead of the readable report\n"
    "  --env KEY=VALUE    set a variable in the server's environment (repeatable)\n"
    "  --timeout SECONDS  give up when the listing takes longer (default 60)\n"
    "  --rules PATH       a rule pack or a directory of them; repeatable\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 nothing found, 1 some tool was flagged or would be withheld,\n"
    "2 the server could not be started or listed.\n";

#define SCAN_MAX_PAGES 100
#define SCAN_KILL_GRACE_MS 2000

struct scan {
    uv_loop_t *loop;
    struct tp_child *child;
    struct jrpc_framer fr;
    uv_timer_t timer;
    json_t *init;  /* the initialize result */
    json_t *tools; /* every listed tool */
    char error[512];
    int next_id;
    unsigned pages;
    bool done, exited, killing;
};

static void send_json(struct scan *sc, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    size_t n = s ? strlen(s) : 0;
    char *buf = s ? malloc(n + 1) : NULL;

    json_decref(msg);
    if (buf && sc->child && !sc->exited) {
        memcpy(buf, s, n);
        buf[n] = '\n';
        tp_child_write(sc->child, buf, n + 1);
    } else {
        free(buf);
    }
    free(s);
}

static void timer_fired(uv_timer_t *t);

/* Ends the exchange: stops the server (stdin closed, SIGTERM, SIGKILL after a grace). */
static void finish(struct scan *sc, const char *error)
{
    if (error && !sc->error[0])
        snprintf(sc->error, sizeof(sc->error), "%s", error);
    if (sc->done)
        return;
    sc->done = true;
    if (sc->exited) {
        uv_timer_stop(&sc->timer);
        return;
    }
    tp_child_close_stdin(sc->child);
    tp_child_signal_group(sc->child, SIGTERM);
    sc->killing = true;
    uv_timer_start(&sc->timer, timer_fired, SCAN_KILL_GRACE_MS, 0);
}

static void timer_fired(uv_timer_t *t)
{
    struct scan *sc = t->data;

    if (sc->killing) {
        tp_child_signal_group(sc->child, SIGKILL);
        return;
    }
    finish(sc, "timed out waiting for the server's tool list");
}

static void list_page(struct scan *sc, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    send_json(sc, json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", ++sc->next_id, "method",
                            "tools/list", "params", params));
}

static void on_response(struct scan *sc, json_t *msg)
{
    json_t *id = json_object_get(msg, "id"), *result = json_object_get(msg, "result");
    json_t *err = json_object_get(msg, "error");
    char why[400];

    if (!json_is_integer(id) || json_integer_value(id) != sc->next_id)
        return; /* not ours, or late */
    if (err || !json_is_object(result)) {
        snprintf(why, sizeof(why), "the server answered %s with an error: %.300s",
                 sc->next_id == 1 ? "initialize" : "tools/list",
                 json_string_value(json_object_get(err, "message"))
                     ? json_string_value(json_object_get(err, "message"))
                     : "(no message)");
        finish(sc, why);
        return;
    }
    if (sc->next_id == 1) {
        sc->init = json_incref(result);
        send_json(sc,
                  json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized"));
        list_page(sc, NULL);
        return;
    }
    json_t *tools = json_object_get(result, "tools");
    const char *next = json_string_value(json_object_get(result, "nextCursor"));
    if (!json_is_array(tools)) {
        finish(sc, "the server's tools/list result has no \"tools\" array");
        return;
    }
    json_array_extend(sc->tools, tools);
    if (next && *next && ++sc->pages < SCAN_MAX_PAGES)
        list_page(sc, next);
    else
        finish(sc, next && *next ? "the server listed more than 100 pages of tools" : NULL);
}

static int on_line(void *ctx, int status, const char *line, size_t len)
{
    struct scan *sc = ctx;
    json_t *msg;

    if (status || sc->done)
        return 0; /* an oversized line is dropped, as the proxy drops it */
    msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return 0; /* junk on stdout: servers log there by mistake */
    }
    if (json_is_string(json_object_get(msg, "method"))) {
        json_t *id = json_object_get(msg, "id");
        if (id) /* a request to us: we offer no client capabilities */
            send_json(sc, json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
                                    "code", JRPC_METHOD_NOT_FOUND, "message",
                                    "clampd scan offers no client capabilities"));
    } else {
        on_response(sc, msg);
    }
    json_decref(msg);
    return 0;
}

static void on_stdout(void *ctx, const char *data, size_t len)
{
    struct scan *sc = ctx;
    jrpc_framer_feed(&sc->fr, data, len, on_line, sc);
}

static void on_exit_cb(void *ctx)
{
    struct scan *sc = ctx;
    char why[CLAMPD_STDERR_TAIL + 128];
    const char *tail = tp_child_stderr_tail(sc->child);

    sc->exited = true;
    if (!sc->done) {
        snprintf(why, sizeof(why), "the server exited before listing its tools%s%s",
                 tail && *tail ? "; its last words: " : "", tail ? tail : "");
        finish(sc, why);
    }
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->timer, NULL);
    tp_child_free(sc->child);
}

/* Runs the exchange; returns 0 or 2 with the reason in sc->error. */
static int list_tools(struct scan *sc, char **argv, char **env, unsigned timeout_s)
{
    struct tp_child_cbs cbs = {on_stdout, NULL, on_exit_cb, NULL, sc};
    char *err = NULL;

    sc->loop = uv_default_loop();
    jrpc_framer_init(&sc->fr, CLAMPD_MAX_MESSAGE);
    uv_timer_init(sc->loop, &sc->timer);
    sc->timer.data = sc;
    if (tp_child_spawn(sc->loop, argv, env, &cbs, &sc->child, &err)) {
        snprintf(sc->error, sizeof(sc->error), "cannot start the server: %s",
                 err ? err : "spawn failed");
        free(err);
        uv_close((uv_handle_t *)&sc->timer, NULL);
        uv_run(sc->loop, UV_RUN_DEFAULT);
        jrpc_framer_deinit(&sc->fr);
        return 2;
    }
    uv_timer_start(&sc->timer, timer_fired, (uint64_t)timeout_s * 1000, 0);
    send_json(sc, json_pack("{s:s, s:i, s:s, s:{s:s, s:{}, s:{s:s, s:s}}}", "jsonrpc", "2.0", "id",
                            ++sc->next_id, "method", "initialize", "params", "protocolVersion",
                            "2025-06-18", "capabilities", "clientInfo", "name", "clampd-scan",
                            "version", CLAMPD_VERSION));
    uv_run(sc->loop, UV_RUN_DEFAULT);
    jrpc_framer_deinit(&sc->fr);
    return sc->error[0] ? 2 : 0;
}

/* ---- the report ---- */

static const char *const verdict_names[] = {"deny", "flag", "allow"};

static const struct insp_rule *rule_by_id(const struct insp_ruleset *rs, const char *id)
{
    for (size_t k = 0; k < insp_ruleset_count(rs); k++)
        if (insp_ruleset_rule(rs, k)->id == id)
            return insp_ruleset_rule(rs, k);
    return NULL;
}

/* Length of a character a terminal would act on at s: C0/DEL, a C1 control (U+0080-
 * U+009F) or a bidi control (U+202A-U+202E, U+2066-U+2069); 0 for anything else. */
static size_t unsafe_len(const unsigned char *s)
{
    if (s[0] < 0x20 || s[0] == 0x7f)
        return 1;
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
        return 2;
    if (s[0] == 0xe2 && s[1] == 0x80 && s[2] >= 0xaa && s[2] <= 0xae)
        return 3;
    if (s[0] == 0xe2 && s[1] == 0x81 && s[2] >= 0xa6 && s[2] <= 0xa9)
        return 3;
    return 0;
}

/* Terminal-safe output of what a server sent: those characters as '?'. */
static void put_safe_to(FILE *f, const char *s, size_t max)
{
    size_t i = 0, k;
    while (s[i] && i < max) {
        if ((k = unsafe_len((const unsigned char *)s + i))) {
            fputc('?', f);
            i += k;
        } else {
            fputc(s[i++], f);
        }
    }
    if (s[i])
        fputs("...", f);
}

static void put_safe(const char *s, size_t max)
{
    put_safe_to(stdout, s, max);
}

static json_t *judge(struct engine_session *s, const struct insp_ruleset *rs, const char *name,
                     json_t *tool, struct engine_verdict *v)
{
    char hash[CJSON_HEX_LEN + 1] = "";
    json_t *rules = json_array(), *o;

    engine_inspect_tool(s, tool, v);
    if (name)
        cjson_contract_hash(name, json_object_get(tool, "description"),
                            json_object_get(tool, "inputSchema"), hash);
    for (size_t i = 0; i < v->n_rule_ids; i++) {
        const struct insp_rule *r = rule_by_id(rs, v->rule_ids[i]);
        json_array_append_new(rules,
                              json_pack("{s:s, s:s, s:f, s:s}", "id", v->rule_ids[i], "category",
                                        r ? r->category : "?", "risk", r ? r->risk : 0.0,
                                        "description", r ? r->description : ""));
    }
    o = json_pack("{s:s?, s:s, s:s, s:f, s:o}", "name", name, "contract_hash", hash, "verdict",
                  verdict_names[v->verdict], "risk", (double)(long)(v->risk * 100.0 + 0.5) / 100.0,
                  "rules", rules);
    return o;
}

static int report(struct scan *sc, struct insp_ruleset *rs, const char *cmd, bool as_json)
{
    struct engine_config cfg = {.rules = rs};
    struct engine *e = NULL;
    struct engine_session *s = NULL;
    char *err = NULL;
    json_t *out = json_array(), *item;
    unsigned found = 0, counts[3] = {0};
    size_t i;

    if (engine_new(&cfg, &e, &err) || !(s = engine_session_new(e, cmd))) {
        fprintf(stderr, "clampd scan: %s\n", err ? err : "cannot start the engine");
        free(err);
        engine_free(e);
        json_decref(out);
        return 2;
    }
    const char *instr = json_string_value(json_object_get(sc->init, "instructions"));
    json_t *server = json_object_get(sc->init, "serverInfo");
    /* the instructions are model-facing text too: judged like a description */
    json_t *as_tool =
        instr ? json_pack("{s:s, s:s}", "name", "(instructions)", "description", instr) : NULL;
    struct engine_verdict v;
    json_t *instr_report = as_tool ? judge(s, rs, NULL, as_tool, &v) : NULL;
    if (instr_report && v.verdict != VERDICT_ALLOW)
        found++;
    json_decref(as_tool);
    json_array_foreach (sc->tools, i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_t *o = judge(s, rs, name, item, &v);
        counts[v.verdict]++;
        if (v.verdict != VERDICT_ALLOW || !name)
            found++;
        json_array_append_new(out, o);
    }
    if (as_json) {
        json_t *doc = json_pack(
            "{s:s, s:O*, s:o*, s:o, s:{s:I, s:I, s:I, s:I}}", "command", cmd, "server", server,
            "instructions", instr_report, "tools", out, "summary", "tools",
            (json_int_t)json_array_size(sc->tools), "deny", (json_int_t)counts[VERDICT_DENY],
            "flag", (json_int_t)counts[VERDICT_FLAG], "allow", (json_int_t)counts[VERDICT_ALLOW]);
        char *dump = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) : NULL;
        if (dump)
            puts(dump);
        free(dump);
        json_decref(doc);
    } else {
        const char *sname = json_string_value(json_object_get(server, "name"));
        const char *sver = json_string_value(json_object_get(server, "version"));
        fputs("server   ", stdout);
        put_safe(sname ? sname : "(unnamed)", 120);
        if (sver) {
            putchar(' ');
            put_safe(sver, 40);
        }
        fputs("\ncommand  ", stdout);
        put_safe(cmd, 200);
        printf("\ntools    %zu listed: %u would be withheld (deny), %u flagged, %u clean\n\n",
               json_array_size(sc->tools), counts[VERDICT_DENY], counts[VERDICT_FLAG],
               counts[VERDICT_ALLOW]);
        json_t *rows = json_array();
        if (instr_report)
            json_array_append(rows, instr_report);
        json_array_extend(rows, out);
        json_array_foreach (rows, i, item) {
            const char *verdict = json_string_value(json_object_get(item, "verdict"));
            const char *name = json_string_value(json_object_get(item, "name"));
            const char *hash = json_string_value(json_object_get(item, "contract_hash"));
            printf("  %-5s ", strcmp(verdict, "allow") == 0 ? "ok" : verdict);
            put_safe(name ? name : (i == 0 && instr_report ? "(instructions)" : "(no name)"), 60);
            if (hash && *hash)
                printf("  %.16s", hash);
            if (strcmp(verdict, "allow") != 0)
                printf("  risk %.2f", json_real_value(json_object_get(item, "risk")));
            putchar('\n');
            size_t k;
            json_t *r;
            json_array_foreach (json_object_get(item, "rules"), k, r) {
                printf("          %s (%s, %.2f): ", json_string_value(json_object_get(r, "id")),
                       json_string_value(json_object_get(r, "category")),
                       json_real_value(json_object_get(r, "risk")));
                put_safe(json_string_value(json_object_get(r, "description")), 100);
                putchar('\n');
            }
        }
        json_decref(rows);
        json_decref(out);
        json_decref(instr_report);
    }
    engine_session_free(s);
    engine_free(e);
    return found ? 1 : 0;
}

int cmd_scan(int argc, char **argv)
{
    static const struct option longs[] = {{"downstream", required_argument, NULL, 'd'},
                                          {"json", no_argument, NULL, 'j'},
                                          {"env", required_argument, NULL, 'e'},
                                          {"timeout", required_argument, NULL, 't'},
                                          {"rules", required_argument, NULL, 'r'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char **paths = calloc((size_t)argc + 1, sizeof(char *));
    char **env_add = calloc((size_t)argc + 1, sizeof(char *));
    char **words = NULL, **env = NULL, *err = NULL;
    const char *downstream = NULL;
    size_t n_paths = 0, n_env = 0, nwords = 0;
    long timeout = 60;
    bool as_json = false;
    struct insp_ruleset *rs = NULL;
    struct scan sc;
    int c, rc = 2;

    memset(&sc, 0, sizeof(sc));
    if (!paths || !env_add)
        goto out;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'd': downstream = optarg; break;
        case 'j': as_json = true; break;
        case 'r': paths[n_paths++] = optarg; break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "clampd scan: --env wants KEY=VALUE, got '%s'\n", optarg);
                goto out;
            }
            env_add[n_env++] = optarg;
            break;
        case 't':
            if (clampd_parse_long(optarg, 1, 3600, &timeout)) {
                fprintf(stderr, "clampd scan: --timeout wants seconds (1..3600)\n");
                goto out;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto out;
        default: fputs(usage, stderr); goto out;
        }
    }
    if (optind != argc || !downstream) {
        fprintf(stderr, "clampd scan: %s\n\n%s",
                downstream ? "unexpected argument (quote the whole command after --downstream)"
                           : "--downstream is required",
                usage);
        goto out;
    }
    /* the verdicts are the output: the engine's per-call warnings would only repeat them */
    clog_set_level(CLOG_ERROR);
    if (clampd_split_words(downstream, &words, &nwords, &err)) {
        fprintf(stderr, "clampd scan: --downstream: %s\n", err ? err : "cannot split");
        goto out;
    }
    env = cli_child_env(env_add, n_env);
    if (!env || cli_load_rules("scan", paths, n_paths, &rs))
        goto out;
    sc.tools = json_array();
    if (!sc.tools)
        goto out;
    signal(SIGPIPE, SIG_IGN); /* a server that closes its stdin early is an error, not death */
    if (list_tools(&sc, words, env, (unsigned)timeout)) {
        /* the reason may quote the server (its error message, its stderr) */
        fputs("clampd scan: ", stderr);
        put_safe_to(stderr, sc.error, sizeof(sc.error));
        fputc('\n', stderr);
        goto out;
    }
    rc = report(&sc, rs, downstream, as_json);
out:
    json_decref(sc.init);
    json_decref(sc.tools);
    insp_ruleset_free(rs);
    clampd_free_words(words);
    free(env);
    free(err);
    free(env_add);
    free(paths);
    return rc;
}
