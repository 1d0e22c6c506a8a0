/*
 * routes: what each route does once its request is routed, authenticated and complete.
 *
 *   /v1/proxy, /v1/verify ─parse─▶ lock ─▶ session ─▶ claim descriptor ─▶ decide ─▶ unlock
 *                                   ─▶ engine_mint_token() (an allow's token, signed unlocked) ─▶
 * JSON /v1/scan-input        ─parse─▶ lock ─▶ engine_inspect_arguments() ─▶ unlock ─▶ JSON
 *   /v1/scan-output       ─parse─▶ lock ─▶ engine_inspect_result()    ─▶ unlock ─▶ JSON
 *   /health, /metrics, /.well-known/jwks.json
 *
 * Only engine calls (and the sessions and keyed metrics) run under the lock; parsing,
 * signing an allowed call's scope token (engine_mint_token() reads only the immutable key
 * ring) and answering do not.
 */
#include "gateway/gateway-int.h"
#include "token/token.h"

#include <stdio.h>
#include <string.h>

static void reply_json(struct gw__reply *rep, int status, json_t *obj)
{
    rep->status = status;
    rep->content_type = "application/json";
    rep->body = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(obj);
    if (!rep->body) {
        /* SECURITY: an answer we cannot build is a 500, never an empty 200 */
        static const char oom[] = "{\"error\":\"out of memory\",\"error_code\":\"internal_error\"}";
        rep->status = 500;
        rep->body = strdup(oom);
    }
    rep->len = rep->body ? strlen(rep->body) : 0;
}

void gw__reply_error(struct gw__req *r, struct gw__reply *rep, int status, const char *code,
                     const char *msg)
{
    if (!r->request_id[0])
        gw__request_id(r->request_id);
    snprintf(r->code, sizeof(r->code), "%s", code);
    reply_json(rep, status,
               json_pack("{s:s, s:s, s:s}", "error", msg, "error_code", code, "request_id",
                         r->request_id));
}

static void reply_parse_error(struct gw__req *r, struct gw__reply *rep, int rc,
                              const struct gw__error *err)
{
    if (rc == ERR_NOMEM)
        gw__reply_error(r, rep, 503, "overloaded", "out of memory");
    else
        gw__reply_error(r, rep, err->status, err->code, err->msg);
}

static json_t *rule_array(const struct engine_verdict *v)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < v->n_rule_ids; i++)
        json_array_append_new(a, json_string(v->rule_ids[i]));
    return a;
}

static double ms_since(uint64_t t0)
{
    return (double)(clampd_now_ns() - t0) / 1e6;
}

/* The decision's JSON: shared/DESIGN.md §3, plus the error members when it is not a 200. */
static void reply_decision(struct gw__req *r, struct gw__reply *rep, const struct engine_verdict *v,
                           const char *tool)
{
    int status = gw__decision_status(v);
    json_t *o;

    if (status == 500) { /* v->token_pending */
        /* SECURITY: an allow whose token was never minted is not an answer: refuse it */
        clog_error("gateway: a decision with its scope token still pending reached the answer");
        gw__reply_error(r, rep, 500, "token_error",
                        "no scope token was issued for this call; the call is not allowed");
        return;
    }
    o = json_pack("{s:s, s:b, s:s, s:f, s:o, s:s}", "request_id", v->request_id, "allowed",
                  v->verdict != VERDICT_DENY, "action", gw__action(v->verdict), "risk_score",
                  v->risk, "matched_rules", rule_array(v), "reasoning",
                  v->reason[0] ? v->reason : "allowed");

    memcpy(r->request_id, v->request_id, sizeof(r->request_id));
    r->action = gw__action(v->verdict);
    if (v->verdict == VERDICT_DENY)
        snprintf(r->code, sizeof(r->code), "%s", v->error_code);
    if (o && v->verdict == VERDICT_DENY) {
        json_t *full = engine_denial_result(v, tool);
        json_t *denial = json_object_get(json_object_get(full, "_meta"), "clampd/denial");
        if (!denial || json_object_set(o, "denial", denial)) {
            json_decref(o);
            o = NULL;
        }
        json_decref(full);
    }
    if (o && v->scope_token[0])
        json_object_set_new(o, "scope_token", json_string(v->scope_token));
    if (o && status != 200) {
        /* the error members too, so that a client reading only them still sees a refusal */
        json_object_set_new(o, "error", json_string(v->reason));
        json_object_set_new(o, "error_code", json_string(v->error_code));
    }
    if (o && status == 429) {
        json_object_set_new(o, "retry_after_ms", json_integer(v->retry_ms));
        rep->retry_after_s = v->retry_ms > 0 ? (long)((v->retry_ms + 999) / 1000) : 0;
    }
    if (o)
        json_object_set_new(o, "latency_ms", json_real(ms_since(r->t0_ns)));
    reply_json(rep, status, o);
}

/* Claim and decide under the lock; an allow's token is left pending (ENGINE_DECIDE_DEFER_TOKEN)
 * for mint_unlocked(). Returns 0, or an HTTP status for an error answer. */
static int decide_locked(struct gw *g, const struct gw__req *r, const struct gw__call_req *c,
                         const struct engine_call *call, bool dry, struct engine_verdict *v,
                         const char **code)
{
    struct engine_session *s;
    uint64_t t;
    int rc;

    s = gw__sessions_get(g->sessions, r->agent, c->server, c->session_id,
                         (int64_t)(clampd_now_ns() / 1000000u));
    if (!s) {
        *code = "overloaded";
        return 503;
    }
    /* the session's tool set only caches pins: bounded by dropping it when it grows */
    if (engine_session_tool_count(s) >= GW_SESSION_MAX_TOOLS)
        engine_session_clear_tools(s);
    t = clampd_now_ns();
    rc = engine_session_claim_tool(s, c->tool, c->hash, dry);
    gw__metrics_latency(&g->metrics, GW_ST_CLAIM, clampd_now_ns() - t);
    if (rc) {
        /* SECURITY: a descriptor that cannot be checked is not allowed */
        *code = "pin_store_error";
        return 503;
    }
    t = clampd_now_ns();
    engine_decide_ex(s, call, dry ? ENGINE_DECIDE_DRY_RUN : ENGINE_DECIDE_DEFER_TOKEN, v);
    gw__metrics_latency(&g->metrics, GW_ST_DECIDE, clampd_now_ns() - t);
    if (v->token_pending)
        gw__metrics_rules(&g->metrics, v, dry); /* the verdict is counted once minted */
    else
        gw__metrics_verdict(&g->metrics, v, dry);
    return 0;
}

/* After the lock: signs the token of a pending allow. engine_mint_token() reads only the
 * engine's key ring and ttl (immutable after start-up), the verdict and the call, all this
 * request's or read-only, so workers sign in parallel. SECURITY: a failure turns v into a
 * token_error deny. */
static void mint_unlocked(struct gw *g, const struct engine_call *call, struct engine_verdict *v)
{
    uint64_t t = clampd_now_ns();
    int rc = engine_mint_token(g->cfg.engine, call, v);

    gw__metrics_latency(&g->metrics, GW_ST_TOKEN, clampd_now_ns() - t);
    gw__metrics_count(&g->metrics, v, false);
    if (rc) {
        pthread_mutex_lock(&g->lock);
        gw__metrics_deny_code(&g->metrics, v, false);
        pthread_mutex_unlock(&g->lock);
    }
}

static void route_decide(struct gw *g, struct gw__req *r, struct gw__reply *rep, bool dry)
{
    struct gw__call_req c;
    struct gw__error err;
    struct engine_verdict *v = NULL;
    const char *code = NULL;
    int rc = gw__parse_call(r->body.ptr, r->body.len, &c, &err), status;

    if (rc) {
        reply_parse_error(r, rep, rc, &err);
        return;
    }
    /* a verdict holds a token of up to 4 KB: not on a worker's stack */
    if (!(v = malloc(sizeof(*v)))) {
        gw__reply_error(r, rep, 503, "overloaded", "out of memory");
        return;
    }
    struct engine_call call = {.tool = c.tool,
                               .tool_len = strlen(c.tool),
                               .arguments = c.params,
                               .arguments_len = c.params_len};
    pthread_mutex_lock(&g->lock);
    status = decide_locked(g, r, &c, &call, dry, v, &code);
    pthread_mutex_unlock(&g->lock);
    if (!status && v->token_pending)
        mint_unlocked(g, &call, v);
    if (status)
        gw__reply_error(r, rep, status, code,
                        strcmp(code, "overloaded") == 0
                            ? "no session could be made for this call"
                            : "the tool's descriptor hash could not be checked against the pin"
                              " store; the call is not allowed");
    else
        reply_decision(r, rep, v, c.tool);
    free(v);
}

/* {request_id, allowed, action, risk_score, matched_rules, reasoning} of a scan. */
static json_t *scan_json(const struct engine_verdict *v)
{
    return json_pack("{s:s, s:b, s:s, s:f, s:o, s:s}", "request_id", v->request_id, "allowed",
                     v->verdict != VERDICT_DENY, "action", gw__action(v->verdict), "risk_score",
                     v->risk, "matched_rules", rule_array(v), "reasoning",
                     v->reason[0]    ? v->reason
                     : v->n_rule_ids ? "matched"
                                     : "no rule matched");
}

static void route_scan_input(struct gw *g, struct gw__req *r, struct gw__reply *rep)
{
    struct gw__scan_req q;
    struct gw__error err;
    struct engine_verdict v;
    char *args = NULL;
    uint64_t t;
    int rc = gw__parse_scan(r->body.ptr, r->body.len, false, &q, &err);

    if (rc) {
        reply_parse_error(r, rep, rc, &err);
        return;
    }
    /* SECURITY: a bare text is judged as the value of an argument named "input", a name
     * no rule is scoped to or excluded from: rules meant for free text (fields such as
     * "text") and for any field apply, rules for particular fields ("path") do not; give
     * "arguments" to judge a call's real arguments. */
    if (q.text) {
        json_t *wrap = json_object();
        if (wrap && !json_object_set_new(wrap, "input", json_stringn(q.text, q.text_len)))
            args = json_dumps(wrap, JSON_COMPACT);
        json_decref(wrap);
        if (!args) {
            gw__scan_req_deinit(&q);
            gw__reply_error(r, rep, 503, "overloaded", "out of memory");
            return;
        }
    }
    pthread_mutex_lock(&g->lock);
    t = clampd_now_ns();
    engine_inspect_arguments(g->scan, q.tool[0] ? q.tool : NULL, args ? args : q.object,
                             args ? strlen(args) : q.object_len, &v);
    gw__metrics_latency(&g->metrics, GW_ST_SCAN_INPUT, clampd_now_ns() - t);
    gw__metrics_scan(&g->metrics, &v, false);
    pthread_mutex_unlock(&g->lock);
    free(args);
    gw__scan_req_deinit(&q);
    memcpy(r->request_id, v.request_id, sizeof(r->request_id));
    r->action = gw__action(v.verdict);
    json_t *o = scan_json(&v);
    if (o)
        json_object_set_new(o, "latency_ms", json_real(ms_since(r->t0_ns)));
    reply_json(rep, 200, o);
}

/* The scan-output answer: the verdict, and what to pass on when it is not the input. */
static json_t *scan_output_json(const struct engine_verdict *v, json_t *rewritten, bool text_mode)
{
    json_t *o = scan_json(v);
    bool blocked = v->verdict == VERDICT_DENY;

    if (!o)
        return NULL;
    json_object_set_new(o, "redacted", json_boolean(rewritten && !blocked));
    if (!rewritten)
        return o;
    if (!text_mode)
        json_object_set(o, "result", rewritten); /* redacted, or the blocked notice */
    else if (!blocked)
        json_object_set(
            o, "text",
            json_object_get(json_array_get(json_object_get(rewritten, "content"), 0), "text"));
    return o;
}

static void route_scan_output(struct gw *g, struct gw__req *r, struct gw__reply *rep)
{
    struct gw__scan_req q;
    struct gw__error err;
    struct engine_verdict v;
    json_t *rewritten = NULL;
    char *wrapped = NULL;
    uint64_t t;
    int rc = gw__parse_scan(r->body.ptr, r->body.len, true, &q, &err);

    if (rc) {
        reply_parse_error(r, rep, rc, &err);
        return;
    }
    if (q.text) { /* text: scanned as the one text item of a CallToolResult */
        json_t *w =
            json_pack("{s:[{s:s, s:s%}]}", "content", "type", "text", "text", q.text, q.text_len);
        wrapped = w ? json_dumps(w, JSON_COMPACT) : NULL;
        json_decref(w);
    }
    if (q.text && !wrapped) {
        gw__scan_req_deinit(&q);
        gw__reply_error(r, rep, 503, "overloaded", "out of memory");
        return;
    }
    const char *raw = wrapped ? wrapped : q.object;
    size_t len = wrapped ? strlen(wrapped) : q.object_len;
    pthread_mutex_lock(&g->lock);
    t = clampd_now_ns();
    rc = engine_inspect_result(g->scan, q.tool[0] ? q.tool : NULL, raw, len, &rewritten, &v);
    gw__metrics_latency(&g->metrics, GW_ST_SCAN_OUTPUT, clampd_now_ns() - t);
    if (!rc)
        gw__metrics_scan(&g->metrics, &v, true);
    pthread_mutex_unlock(&g->lock);
    free(wrapped);
    if (rc) {
        gw__scan_req_deinit(&q);
        /* SECURITY: not inspected is not passed: an error, never an allow */
        gw__reply_error(r, rep, 500, "inspection_error", "the result could not be inspected");
        return;
    }
    memcpy(r->request_id, v.request_id, sizeof(r->request_id));
    r->action = gw__action(v.verdict);
    json_t *o = scan_output_json(&v, rewritten, q.text != NULL);
    json_decref(rewritten);
    gw__scan_req_deinit(&q);
    if (o)
        json_object_set_new(o, "latency_ms", json_real(ms_since(r->t0_ns)));
    reply_json(rep, 200, o);
}

static void route_metrics(struct gw *g, struct gw__req *r, struct gw__reply *rep)
{
    struct dbuf out;
    int rc;

    dbuf_init(&out, 16u * 1024u * 1024u);
    pthread_mutex_lock(&g->lock);
    rc = gw__metrics_emit(&g->metrics, gw__sessions_count(g->sessions), &out);
    pthread_mutex_unlock(&g->lock);
    if (rc) {
        dbuf_free(&out);
        gw__reply_error(r, rep, 500, "internal_error", "metrics could not be written");
        return;
    }
    rep->status = 200;
    rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rep->body = dbuf_take(&out, &rep->len);
    if (!rep->body)
        gw__reply_error(r, rep, 500, "internal_error", "metrics could not be written");
}

void gw__handle(struct gw *g, struct gw__req *r, struct gw__reply *rep)
{
    json_t *jwks = NULL;

    switch (r->route) {
    case GW_R_PROXY: route_decide(g, r, rep, false); return;
    case GW_R_VERIFY: route_decide(g, r, rep, true); return;
    case GW_R_SCAN_INPUT: route_scan_input(g, r, rep); return;
    case GW_R_SCAN_OUTPUT: route_scan_output(g, r, rep); return;
    case GW_R_METRICS: route_metrics(g, r, rep); return;
    case GW_R_HEALTH:
        reply_json(rep, 200, json_pack("{s:s, s:s}", "status", "ok", "version", CLAMPD_VERSION));
        return;
    case GW_R_JWKS:
        if (!g->cfg.keys || tok_jwks(g->cfg.keys, &jwks)) {
            gw__reply_error(r, rep, 503, "no_keys", "no signing keys");
            return;
        }
        reply_json(rep, 200, jwks);
        return;
    default: gw__reply_error(r, rep, 404, "not_found", "no such route"); return;
    }
}
