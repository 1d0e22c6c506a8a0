/*
 * remote: the proxy's remote mode, decide(call) at a clampd gateway (docs/gateway.md).
 *
 *   tools/call ─ here: its shape, and its tool listed and matching the pin (the engine's
 *              │       descriptor stage), which gives the contract hash to send
 *              ├─ thread pool: POST /v1/proxy {tool, params, tool_descriptor_hash,
 *              │                               session_id, server}  (kept-alive connection)
 *              └─ back on the loop: allowed → forwarded with the gateway's scope token;
 *                                   denied  → the typed denial, built from the answer
 *
 * SECURITY: fail closed. No answer, an answer that is not a decision, or an error status is a
 * denial; only a 200 that says allowed lets a call through. With fail_open, an unreachable
 * gateway (no answer or a 5xx) is replaced by the local engine's own decision (its rules,
 * no policy), and every such call is logged as a warning.
 *
 * Arguments are sent as the very bytes the client sent, so the gateway judges (and binds
 * its token to) exactly what the downstream receives.
 */
#include "proxy/proxy-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Calls waiting for the gateway at once; beyond, a call is answered with an error. */
#define REMOTE_MAX_INFLIGHT 64

struct remote_req {
    uv_work_t work;
    struct proxy *p;
    struct tp_http *http;
    char *line; /* the client's tools/call, as judged */
    size_t len;
    struct dbuf body;
    struct tp_http_reply reply;
    int rc;
};

int proxy__remote_init(struct proxy *p)
{
    const struct proxy_gateway *g = p->cfg->gateway;
    size_t n = strlen(g->api_key) + sizeof("X-AG-Key: ");

    if (clampd_random_hex(p->session_id, 16))
        return ERR_IO;
    p->remote_idle = calloc(REMOTE_MAX_INFLIGHT, sizeof(*p->remote_idle));
    p->remote_key_header = malloc(n);
    if (!p->remote_idle || !p->remote_key_header)
        return ERR_NOMEM;
    snprintf(p->remote_key_header, n, "X-AG-Key: %s", g->api_key);
    return 0;
}

void proxy__remote_free(struct proxy *p)
{
    for (size_t i = 0; i < p->n_remote_idle; i++)
        tp_http_free(p->remote_idle[i]);
    free(p->remote_idle);
    p->remote_idle = NULL;
    p->n_remote_idle = 0;
    if (p->remote_key_header) {
        clampd_wipe(p->remote_key_header, strlen(p->remote_key_header));
        free(p->remote_key_header);
        p->remote_key_header = NULL;
    }
}

static void remote_work(uv_work_t *w)
{
    struct remote_req *r = w->data;
    const char *headers[] = {r->p->remote_key_header, NULL};

    r->rc = tp_http_post_json(r->http, "/v1/proxy", headers, r->body.ptr, r->body.len, &r->reply);
}

/* The verdict an answer of the gateway carries. Returns true when it is a decision (allow or
 * deny, maybe an error status turned into a deny), false when the gateway is unreachable
 * (no answer, or 5xx): then v is a deny saying so. *keep holds what v's rule ids point into. */
static bool verdict_of(struct proxy *p, const struct remote_req *r, json_t **keep,
                       struct engine_verdict *v)
{
    const char *url = p->cfg->gateway->url;
    json_t *a, *x;
    const char *code, *why;

    memset(v, 0, sizeof(*v));
    v->verdict = VERDICT_DENY;
    v->risk = 1.0;
    *keep = NULL;
    /* this proxy's own id until the gateway names its request */
    if (clampd_random_hex(v->request_id, ENGINE_REQID_LEN / 2))
        v->request_id[0] = '\0';
    if (r->rc || r->reply.status >= 500 || r->reply.status < 200) {
        snprintf(v->error_code, sizeof(v->error_code), "gateway_unavailable");
        if (r->rc)
            snprintf(v->reason, sizeof(v->reason),
                     "gateway_unavailable: the gateway at %.256s did not answer (%s); calls are"
                     " refused while it cannot decide them (fail closed)",
                     url, r->reply.error);
        else
            snprintf(v->reason, sizeof(v->reason),
                     "gateway_unavailable: the gateway at %.256s answered HTTP %ld; calls are"
                     " refused while it cannot decide them (fail closed)",
                     url, r->reply.status);
        return false;
    }
    a = json_loadb(r->reply.body.ptr ? r->reply.body.ptr : "", r->reply.body.len, 0, NULL);
    *keep = a;
    if (!json_is_object(a)) {
        snprintf(v->error_code, sizeof(v->error_code), "gateway_bad_answer");
        snprintf(v->reason, sizeof(v->reason),
                 "gateway_bad_answer: the gateway at %.256s answered HTTP %ld with no decision",
                 url, r->reply.status);
        return true;
    }
    x = json_object_get(a, "request_id");
    /* SECURITY: the id is written into the denial text: hex only */
    if (json_is_string(x) && json_string_length(x) == ENGINE_REQID_LEN &&
        strspn(json_string_value(x), "0123456789abcdef") == ENGINE_REQID_LEN)
        memcpy(v->request_id, json_string_value(x), ENGINE_REQID_LEN + 1);
    x = json_object_get(a, "allowed");
    if (!json_is_boolean(x)) {
        /* an error answer: {error, error_code, request_id} */
        code = json_string_value(json_object_get(a, "error_code"));
        why = json_string_value(json_object_get(a, "error"));
        snprintf(v->error_code, sizeof(v->error_code), "%s", code ? code : "gateway_error");
        snprintf(v->reason, sizeof(v->reason),
                 "%s: the gateway refused the call (HTTP %ld): %.512s%s", v->error_code,
                 r->reply.status, why ? why : "no reason given",
                 r->reply.status == 401 ? "; check this proxy's --api-key" : "");
        return true;
    }
    const char *action = json_string_value(json_object_get(a, "action"));
    double risk = json_number_value(json_object_get(a, "risk_score"));
    why = json_string_value(json_object_get(a, "reasoning"));
    v->risk = risk >= 0 && risk <= 1 ? risk : 1.0;
    x = json_object_get(a, "matched_rules");
    for (size_t i = 0; i < json_array_size(x) && v->n_rule_ids < ENGINE_MAX_HITS; i++)
        if (json_is_string(json_array_get(x, i)))
            v->rule_ids[v->n_rule_ids++] = json_string_value(json_array_get(x, i));
    if (json_is_true(json_object_get(a, "allowed")) && r->reply.status == 200 && action &&
        (strcmp(action, "allow") == 0 || strcmp(action, "flag") == 0)) {
        const char *tok = json_string_value(json_object_get(a, "scope_token"));
        v->verdict = strcmp(action, "flag") == 0 ? VERDICT_FLAG : VERDICT_ALLOW;
        snprintf(v->reason, sizeof(v->reason), "%s", why ? why : "");
        if (tok && strlen(tok) < sizeof(v->scope_token))
            memcpy(v->scope_token, tok, strlen(tok) + 1);
        return true;
    }
    /* SECURITY: anything else is a deny, whatever the answer says besides */
    code = json_string_value(json_object_get(json_object_get(a, "denial"), "error_code"));
    if (!code)
        code = json_string_value(json_object_get(a, "error_code"));
    snprintf(v->error_code, sizeof(v->error_code), "%s", code ? code : "gateway_denied");
    snprintf(v->reason, sizeof(v->reason), "%s", why ? why : v->error_code);
    return true;
}

static void remote_done(uv_work_t *w, int status)
{
    struct remote_req *r = w->data;
    struct proxy *p = r->p;
    struct jrpc_peek pk;
    struct call_scan cs;
    struct engine_verdict v;
    json_t *keep = NULL;

    p->remote_inflight--;
    if (r->http) {
        if (p->n_remote_idle < REMOTE_MAX_INFLIGHT)
            p->remote_idle[p->n_remote_idle++] = r->http;
        else
            tp_http_free(r->http);
    }
    /* the line was validated when it arrived: the same bytes peek the same */
    if (status == 0 && jrpc_peek(r->line, r->len, &pk) == 0) {
        proxy__scan_call(&pk, &cs);
        if (p->child_gone || p->finished) {
            proxy__send_error(p, pk.id, JRPC_DOWNSTREAM_ERROR,
                              "clampd: the downstream MCP server is gone");
        } else if (verdict_of(p, r, &keep, &v)) {
            proxy__apply_verdict(p, r->line, r->len, &pk, &cs, &v);
        } else if (p->cfg->gateway->fail_open) {
            clog_warn("FAIL-OPEN: %s; tools/call '%.128s' is decided by the local engine instead"
                      " (--fail-open)",
                      v.reason, cs.call.tool ? cs.call.tool : "?");
            engine_decide(p->session, &cs.call, &v);
            proxy__apply_verdict(p, r->line, r->len, &pk, &cs, &v);
        } else {
            proxy__apply_verdict(p, r->line, r->len, &pk, &cs, &v);
        }
    }
    json_decref(keep);
    dbuf_free(&r->body);
    dbuf_free(&r->reply.body);
    free(r->line);
    free(r);
    proxy__maybe_continue_shutdown(p);
}

/* The request body, with the arguments as the raw bytes the client sent. */
static int build_body(struct proxy *p, const struct call_scan *cs, const char *hash, struct dbuf *b)
{
    json_t *t = json_stringn(cs->call.tool, cs->call.tool_len);
    const char *server = engine_session_server(p->session);
    char *name = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL;
    int rc = name ? 0 : ERR_NOMEM;

    json_decref(t);
    if (!rc)
        rc = dbuf_printf(b, "{\"tool\":%s,\"params\":", name);
    if (!rc)
        rc = cs->call.arguments ? dbuf_add(b, cs->call.arguments, cs->call.arguments_len)
                                : dbuf_adds(b, "null");
    if (!rc)
        rc = dbuf_printf(b, ",\"tool_descriptor_hash\":\"%s\",\"session_id\":\"%s\"", hash,
                         p->session_id);
    free(name);
    if (!rc && server && *server) {
        json_t *sv = json_string(server);
        char *s = sv ? json_dumps(sv, JSON_ENCODE_ANY) : NULL;
        rc = s ? dbuf_printf(b, ",\"server\":%s", s) : ERR_NOMEM;
        free(s);
        json_decref(sv);
    }
    return rc ? rc : dbuf_addc(b, '}');
}

void proxy__remote_call(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk,
                        const struct call_scan *cs)
{
    const struct proxy_gateway *g = p->cfg->gateway;
    char hash[CJSON_HEX_LEN + 1];
    struct remote_req *r;
    int rc = 0;

    if (!engine_session_tool_hash(p->session, cs->call.tool, hash)) {
        proxy__send_error(p, pk->id, JRPC_INTERNAL_ERROR, "clampd: the tool's hash is unknown");
        return;
    }
    if (p->remote_inflight >= REMOTE_MAX_INFLIGHT) {
        proxy__send_error(p, pk->id, JRPC_DOWNSTREAM_ERROR,
                          "clampd: too many calls are waiting for the gateway; retry later");
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r || !(r->line = malloc(len ? len : 1))) {
        free(r);
        proxy__send_error(p, pk->id, JRPC_INTERNAL_ERROR, "clampd: out of memory");
        return;
    }
    memcpy(r->line, line, len);
    r->len = len;
    r->p = p;
    r->work.data = r;
    dbuf_init(&r->body, CLAMPD_MAX_MESSAGE + 4096);
    rc = build_body(p, cs, hash, &r->body);
    r->http = p->n_remote_idle ? p->remote_idle[--p->n_remote_idle]
                               : tp_http_new(g->url, (long)g->timeout_ms);
    if (!rc && !r->http)
        rc = ERR_NOMEM;
    if (!rc)
        rc = uv_queue_work(p->loop, &r->work, remote_work, remote_done) ? ERR_IO : 0;
    if (rc) {
        proxy__send_error(p, pk->id, JRPC_INTERNAL_ERROR,
                          "clampd: the call could not be sent to the gateway");
        tp_http_free(r->http);
        dbuf_free(&r->body);
        free(r->line);
        free(r);
        return;
    }
    p->remote_inflight++;
}
