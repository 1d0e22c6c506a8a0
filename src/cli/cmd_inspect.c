/*
 * clampd inspect: the engine's inspection stages offline, over JSON Lines (shared/DESIGN.md
 * §3), so a user can scan a server's tool list or a log of calls and results.
 *
 *   stdin, one JSON object per line ──▶ stdout, one JSON object per line, same order
 *     description: an MCP Tool                {"verdict", "risk", "rules", "categories"}
 *     arguments:   {"tool", "arguments"}      ... and "result" when something was redacted
 *     response:    {"tool", "result"}
 *
 * A line that is not valid input yields {"error": "..."} and the rest is still processed;
 * the exit status is then 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "inspect/inspect.h"

static const char usage[] =
    "Usage: clampd inspect --kind description|arguments|response [--rules PATH]...\n"
    "\n"
    "Reads JSON Lines on stdin and writes one JSON line per input line on stdout, in the\n"
    "same order, with what clampd would decide:\n"
    "  --kind description   each line is an MCP Tool (name, description, inputSchema...)\n"
    "  --kind arguments     each line is {\"tool\": NAME, \"arguments\": {...}}\n"
    "  --kind response      each line is {\"tool\": NAME, \"result\": CallToolResult}\n"
    "Output: {\"verdict\": \"allow\"|\"flag\"|\"deny\", \"risk\": 0..1, \"rules\": [ids],\n"
    "\"categories\": [...]}, plus \"result\" (the redacted result) when PII or secrets were\n"
    "redacted. A line that is not valid input yields {\"error\": \"...\"} and processing goes\n"
    "on; the exit status is then 1 (2 on a usage or start-up error).\n"
    "\n"
    "Options:\n"
    "  --kind K         what each line is (required)\n"
    "  --rules PATH     a rule pack (.yaml) or a directory of them; repeatable. Default:\n"
    "                   $CLAMPD_RULES, else the packs built into clampd\n"
    "  -h, --help       show this help\n";

enum kind { KIND_DESCRIPTION, KIND_ARGUMENTS, KIND_RESPONSE };

static const char *const verdict_names[] = {"deny", "flag", "allow"};

static json_t *verdict_json(const struct insp_ruleset *rs, const struct engine_verdict *v)
{
    json_t *rules = json_array(), *cats = json_array();

    for (size_t i = 0; rules && cats && i < v->n_rule_ids; i++) {
        json_array_append_new(rules, json_string(v->rule_ids[i]));
        for (size_t k = 0; k < insp_ruleset_count(rs); k++) {
            const struct insp_rule *r = insp_ruleset_rule(rs, k);
            if (r->id != v->rule_ids[i])
                continue;
            bool dup = false;
            for (size_t c = 0; c < json_array_size(cats); c++)
                dup |= strcmp(json_string_value(json_array_get(cats, c)), r->category) == 0;
            if (!dup)
                json_array_append_new(cats, json_string(r->category));
            break;
        }
    }
    /* two decimals, as the denials print it */
    return json_pack("{s:s, s:f, s:o*, s:o*}", "verdict", verdict_names[v->verdict], "risk",
                     (double)(long)(v->risk * 100.0 + 0.5) / 100.0, "rules", rules, "categories",
                     cats);
}

/* Inspects one parsed input line; returns the output object, or NULL with *why set. */
static json_t *inspect_one(struct engine_session *s, const struct insp_ruleset *rs, enum kind k,
                           json_t *in, const char **why)
{
    struct engine_verdict v;
    const char *tool = json_string_value(json_object_get(in, "tool"));
    json_t *val, *out, *rewritten = NULL;
    char *raw = NULL;
    int rc;

    if (!json_is_object(in)) {
        *why = "each line must be a JSON object";
        return NULL;
    }
    switch (k) {
    case KIND_DESCRIPTION:
        if (!json_is_string(json_object_get(in, "name"))) {
            *why = "a tool needs a string \"name\"";
            return NULL;
        }
        rc = engine_inspect_tool(s, in, &v);
        break;
    case KIND_ARGUMENTS:
        val = json_object_get(in, "arguments");
        if (!tool || (val && !json_is_object(val) && !json_is_null(val))) {
            *why = "a call needs a string \"tool\" and an object (or no) \"arguments\"";
            return NULL;
        }
        raw = json_is_object(val) ? json_dumps(val, JSON_COMPACT) : NULL;
        if (json_is_object(val) && !raw) {
            *why = "out of memory";
            return NULL;
        }
        rc = engine_inspect_arguments(s, tool, raw, raw ? strlen(raw) : 0, &v);
        break;
    default:
        val = json_object_get(in, "result");
        if (!json_is_object(val) || (json_object_get(in, "tool") && !tool)) {
            *why = "a response needs an object \"result\" (and a string \"tool\", if any)";
            return NULL;
        }
        raw = json_dumps(val, JSON_COMPACT);
        if (!raw) {
            *why = "out of memory";
            return NULL;
        }
        rc = engine_inspect_result(s, tool, raw, strlen(raw), &rewritten, &v);
        break;
    }
    free(raw);
    if (rc && k != KIND_DESCRIPTION) {
        json_decref(rewritten);
        *why = clampd_strerror(rc);
        return NULL;
    }
    out = verdict_json(rs, &v);
    /* the redacted result (a blocked one is not a result) */
    if (out && rewritten &&
        json_object_get(json_object_get(rewritten, "_meta"), "clampd/redactions"))
        json_object_set(out, "result", rewritten);
    json_decref(rewritten);
    if (!out)
        *why = "out of memory";
    return out;
}

static int run(enum kind k, struct insp_ruleset *rs)
{
    struct engine_config cfg = {.rules = rs};
    struct engine *e = NULL;
    struct engine_session *s = NULL;
    char *line = NULL, *err = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int status = 0;

    if (engine_new(&cfg, &e, &err) || !(s = engine_session_new(e, "clampd-inspect"))) {
        fprintf(stderr, "clampd inspect: %s\n", err ? err : "cannot start the engine");
        free(err);
        engine_free(e);
        return 2;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        const char *why = NULL;
        json_t *out = NULL, *in = NULL;
        json_error_t jerr;
        char msg[256];

        lineno++;
        if (n && line[n - 1] == '\n')
            n--;
        if ((size_t)n > CLAMPD_MAX_MESSAGE)
            why = "line too long";
        else if (!(in = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr))) {
            snprintf(msg, sizeof(msg), "not valid JSON: %s (column %d)", jerr.text, jerr.column);
            why = msg;
        } else
            out = inspect_one(s, rs, k, in, &why);
        if (!out) {
            char text[320];
            snprintf(text, sizeof(text), "line %zu: %s", lineno, why ? why : "cannot inspect");
            out = json_pack("{s:s}", "error", text);
            status = 1;
        }
        char *dump = out ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (!dump || puts(dump) == EOF) {
            fprintf(stderr, "clampd inspect: cannot write the output\n");
            free(dump);
            json_decref(out);
            json_decref(in);
            status = 2;
            break;
        }
        free(dump);
        json_decref(out);
        json_decref(in);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "clampd inspect: cannot write the output\n");
        status = 2;
    }
    free(line);
    engine_session_free(s);
    engine_free(e);
    return status;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option longs[] = {{"kind", required_argument, NULL, 'k'},
                                          {"rules", required_argument, NULL, 'r'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char **paths = calloc((size_t)argc + 1, sizeof(char *));
    const char *kind = NULL;
    size_t n_paths = 0;
    struct insp_ruleset *rs = NULL;
    enum kind k = KIND_DESCRIPTION;
    int c, rc = 2;

    if (!paths)
        return 2;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'k')
            kind = optarg;
        else if (c == 'r')
            paths[n_paths++] = optarg;
        else {
            fputs(usage, c == 'h' ? stdout : stderr);
            rc = c == 'h' ? 0 : 2;
            goto out;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "clampd inspect: unexpected argument '%s'\n\n%s", argv[optind], usage);
        goto out;
    }
    if (kind && strcmp(kind, "arguments") == 0)
        k = KIND_ARGUMENTS;
    else if (kind && strcmp(kind, "response") == 0)
        k = KIND_RESPONSE;
    else if (!kind || strcmp(kind, "description") != 0) {
        fprintf(stderr, "clampd inspect: --kind is description, arguments or response\n\n%s",
                usage);
        goto out;
    }
    /* the verdicts are the output: the engine's per-call warnings would only repeat them */
    clog_set_level(CLOG_ERROR);
    if (cli_load_rules("inspect", paths, n_paths, &rs))
        goto out;
    rc = run(k, rs);
out:
    insp_ruleset_free(rs);
    free(paths);
    return rc;
}
