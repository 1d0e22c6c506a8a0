/*
 * result: inspect(result), shared/DESIGN.md §2. Every text of a CallToolResult is scanned
 * with the response rules before the model sees it:
 *
 *   no rule matched, or only low-risk ones ──▶ the result passes as the exact bytes
 *   a `redact` rule found validated spans ───▶ parsed, each span replaced in place by
 *                                              [REDACTED:<type>], _meta says what was done
 *   any other rule at the deny risk ─────────▶ the result is replaced by a blocked notice
 *                                              (indirect prompt injection)
 *
 * With a policy, its `actions` (per rule category) override that per finding: block (the
 * result is withheld, whatever the risk), flag (logged and passed: not redacted, not
 * blocked by it), redact (the default for rules that redact).
 *
 * The first pass walks the raw bytes (no tree); a tree is built only to rewrite.
 */
#include "engine/engine-int.h"
#include "inspect/inspect.h"
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

/* Binary payloads, not text the model reads, exactly where classify.c skips them: the
 * "data" string of an image or audio item of content[], and the "blob" string of an
 * item's embedded resource. */
enum place { PL_ROOT = 0, PL_CONTENT, PL_ITEM, PL_RESOURCE, PL_OTHER };

static bool binary_member(enum place at, const json_t *obj, const char *key, const json_t *value)
{
    const char *type = json_string_value(json_object_get(obj, "type"));

    if (!json_is_string(value))
        return false;
    if (at == PL_RESOURCE && strcmp(key, "blob") == 0)
        return true;
    return at == PL_ITEM && strcmp(key, "data") == 0 && type &&
           (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0);
}

struct redact_walk {
    struct engine_session *s;
    struct engine_verdict *v;
    struct dbuf out;
    size_t redactions;
    int rc;
};

/* The policy's action for findings of rule r's category (DEFAULT without a policy). */
static enum pol_action action_of(const struct engine_session *s, const struct insp_rule *r)
{
    return s->engine->policy ? pol_finding_action(s->engine->policy, r->category)
                             : POL_ACTION_DEFAULT;
}

static bool redact_kept(void *ctx, size_t rule)
{
    const struct engine_session *s = ctx;
    /* a category the policy only flags is reported, not redacted */
    return action_of(s, insp_ruleset_rule(s->engine->rules, rule)) != POL_ACTION_FLAG;
}

static int note_rule(void *ctx, size_t rule)
{
    struct redact_walk *w = ctx;
    const struct insp_rule *r = insp_ruleset_rule(w->s->engine->rules, rule);

    for (size_t i = 0; i < w->v->n_rule_ids; i++)
        if (strcmp(w->v->rule_ids[i], r->id) == 0)
            return 0;
    if (w->v->n_rule_ids < ENGINE_MAX_HITS)
        w->v->rule_ids[w->v->n_rule_ids++] = r->id;
    if (!r->redact && r->risk > w->v->risk && action_of(w->s, r) != POL_ACTION_FLAG)
        w->v->risk = r->risk; /* redacted findings do not raise the block risk */
    return 0;
}

static void redact_tree(struct redact_walk *w, json_t *value, int depth, enum place at)
{
    const char *key;
    json_t *item;
    size_t i, n;

    if (w->rc || depth > CLAMPD_MAX_JSON_DEPTH) {
        w->rc = w->rc ? w->rc : ERR_TOO_BIG;
        return;
    }
    if (json_is_string(value)) {
        w->rc = insp_redact_some(w->s->engine->rules, w->s->scratch, json_string_value(value),
                                 json_string_length(value), &w->out, &n, note_rule, w, redact_kept,
                                 w->s);
        if (!w->rc && n) {
            w->redactions += n;
            w->rc = json_string_setn(value, w->out.ptr, w->out.len) ? ERR_NOMEM : 0;
        }
        return;
    }
    if (json_is_object(value)) {
        json_object_foreach (value, key, item) {
            enum place child = PL_OTHER;
            if (at == PL_ROOT && strcmp(key, "content") == 0)
                child = PL_CONTENT;
            else if (at == PL_ITEM && strcmp(key, "resource") == 0)
                child = PL_RESOURCE;
            if (!binary_member(at, value, key, item))
                redact_tree(w, item, depth + 1, child);
        }
    } else if (json_is_array(value)) {
        json_array_foreach (value, i, item)
            redact_tree(w, item, depth + 1, at == PL_CONTENT ? PL_ITEM : PL_OTHER);
    }
}

/* The notice that replaces a blocked result; v->error_code names why (result_injection
 * when unset), why says it for a person. */
static json_t *blocked_result(struct engine_verdict *v, const char *why)
{
    char text[ENGINE_REASON_MAX + 256];

    if (!v->error_code[0])
        snprintf(v->error_code, sizeof(v->error_code), "result_injection");
    snprintf(text, sizeof(text),
             "[clampd] The result of this tool call was BLOCKED before reaching the model.\n"
             "Reason: %s: %s\nRisk score: %.2f\nRequest ID: %s",
             v->error_code, why, v->risk, v->request_id);
    return json_pack("{s:[{s:s, s:s}], s:b, s:{s:{s:s, s:f, s:s}}}", "content", "type", "text",
                     "text", text, "isError", 1, "_meta", "clampd/denial", "error_code",
                     v->error_code, "risk", v->risk, "request_id", v->request_id);
}

static void rule_list(const struct engine_verdict *v, char *out, size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < v->n_rule_ids && n + 1 < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? ", " : "", v->rule_ids[i]);
        n += w > 0 && (size_t)w < cap - n ? (size_t)w : 0;
    }
}

static int add_meta(json_t *result, const struct redact_walk *w)
{
    json_t *meta = json_object_get(result, "_meta");
    json_t *ids = json_array();

    for (size_t i = 0; ids && i < w->v->n_rule_ids; i++)
        json_array_append_new(ids, json_string(w->v->rule_ids[i]));
    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(result, "_meta", meta)) {
            json_decref(ids);
            return ERR_NOMEM;
        }
    }
    return json_object_set_new(
               meta, "clampd/redactions",
               json_pack("{s:I, s:o}", "count", (json_int_t)w->redactions, "rule_ids", ids))
               ? ERR_NOMEM
               : 0;
}

/* What the findings in v ask for, the policy's actions applied. */
struct weighing {
    const struct insp_rule *blocked; /* a finding whose category the policy blocks */
    bool flagged;                    /* a finding whose category the policy only flags */
    bool redact;                     /* a redact rule to apply */
    double risk;                     /* the blocking risk of the rest */
};

static void weigh(const struct engine_session *s, const struct engine_verdict *v,
                  struct weighing *w)
{
    bool any_action = false;
    double rest = 0;

    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < v->n_rule_ids; i++)
        for (size_t k = 0; k < insp_ruleset_count(s->engine->rules); k++) {
            const struct insp_rule *r = insp_ruleset_rule(s->engine->rules, k);
            if (r->id != v->rule_ids[i])
                continue;
            enum pol_action a = action_of(s, r);
            any_action |= a != POL_ACTION_DEFAULT;
            if (a == POL_ACTION_BLOCK && !w->blocked)
                w->blocked = r;
            else if (a == POL_ACTION_FLAG)
                w->flagged = true;
            else if (r->redact)
                w->redact = true;
            else if (r->risk > rest)
                rest = r->risk;
            break;
        }
    /* without actions: the scan's own risk, exactly as before */
    w->risk = any_action ? rest : v->risk;
}

int engine_inspect_result(struct engine_session *s, const char *tool, const char *json, size_t len,
                          json_t **rewritten, struct engine_verdict *v)
{
    struct redact_walk w = {s, v, {0}, 0, 0};
    char list[ENGINE_REASON_MAX / 2];
    json_t *result = NULL;
    int rc;

    *rewritten = NULL;
    memset(v, 0, sizeof(*v));
    v->verdict = VERDICT_ALLOW;
    if (!s->engine->rules)
        return 0;
    engine__request_id(s, v->request_id);
    rc = engine__classify_raw(s, INSP_RESPONSE, tool, json, len, v);
    if (!rc && !v->n_rule_ids)
        return 0; /* the fast path: nothing found, the bytes pass unchanged */
    rule_list(v, list, sizeof(list));
    struct weighing wg;
    char why[ENGINE_REASON_MAX];
    weigh(s, v, &wg);
    if (!rc && wg.blocked) {
        /* the policy blocks results with findings of this category, whatever their risk */
        v->verdict = VERDICT_DENY;
        snprintf(v->error_code, sizeof(v->error_code), "result_blocked");
        snprintf(why, sizeof(why),
                 "it has findings of category '%s' (%.400s), which the policy's actions block",
                 wg.blocked->category, list);
        clog_warn("blocked a tool result [%s]: %s", v->request_id, why);
        *rewritten = blocked_result(v, why);
        return *rewritten ? 0 : ERR_NOMEM;
    }
    if (rc || wg.risk >= s->engine->deny_risk) {
        /* SECURITY: what could not be inspected, or carries instructions for the model,
         * does not reach it */
        v->verdict = VERDICT_DENY;
        snprintf(v->error_code, sizeof(v->error_code), "result_injection");
        if (rc)
            snprintf(why, sizeof(why), "it matches nothing: it could not be inspected (%s)",
                     clampd_strerror(rc));
        else
            snprintf(why, sizeof(why), "it matches %s", list);
        clog_warn("blocked a tool result [%s]: %s", v->request_id, why);
        *rewritten = blocked_result(v, why);
        return *rewritten ? 0 : ERR_NOMEM;
    }
    if (wg.risk >= s->engine->flag_risk || wg.flagged) {
        v->verdict = VERDICT_FLAG;
        clog_warn("flagged a tool result [%s]: %s", v->request_id, list);
    }
    if (!wg.redact)
        return 0;
    result = json_loadb(json, len, 0, NULL);
    if (!json_is_object(result)) {
        json_decref(result);
        v->verdict = VERDICT_DENY;
        *rewritten = blocked_result(v, "it matches nothing: it could not be parsed to redact it");
        return *rewritten ? 0 : ERR_NOMEM;
    }
    dbuf_init(&w.out, CLAMPD_MAX_MESSAGE);
    redact_tree(&w, result, 0, PL_ROOT);
    if (!w.rc && w.redactions)
        w.rc = add_meta(result, &w);
    dbuf_free(&w.out);
    if (w.rc) {
        json_decref(result);
        v->verdict = VERDICT_DENY;
        *rewritten = blocked_result(v, "it matches nothing: redaction failed");
        return *rewritten ? 0 : ERR_NOMEM;
    }
    if (w.redactions)
        clog_info("redacted %zu span%s of a tool result [%s]: %s", w.redactions,
                  w.redactions == 1 ? "" : "s", v->request_id, list);
    *rewritten = result;
    return 0;
}
