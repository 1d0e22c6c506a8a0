/*
 * decide: the verdict on one tools/call, and the denial the client sees.
 *
 * This pipeline has the descriptor stage: the tool must be in the session's
 * current tool set with a hash equal to its pin. Later stages (rules, policy, tokens)
 * plug in after it; every stage fills the same struct engine_verdict.
 */
#include "engine/engine-int.h"
#include "inspect/inspect.h"
#include "policy/policy.h"
#include "token/token.h"

#include <stdio.h>
#include <string.h>

static void set_deny(struct engine_verdict *v, const char *code, double risk, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_deny(struct engine_verdict *v, const char *code, double risk, const char *fmt, ...)
{
    va_list ap;
    int n;

    v->verdict = VERDICT_DENY;
    v->risk = risk;
    snprintf(v->error_code, sizeof(v->error_code), "%s", code);
    n = snprintf(v->reason, sizeof(v->reason), "%s: ", code);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(v->reason))
        vsnprintf(v->reason + n, sizeof(v->reason) - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Stage 3: the call's tool must be listed in this session and match its pin. */
static void check_descriptor(const struct engine_session *s, const char *tool,
                             struct engine_verdict *v)
{
    json_t *entry = json_object_get(s->tools, tool);
    const char *hash = json_string_value(json_object_get(entry, "hash"));
    const char *pinned = json_string_value(json_object_get(entry, "pinned"));
    const char *also = json_string_value(json_object_get(entry, "also"));
    char t[ENGINE_SHQ_MAX], srv[ENGINE_SHQ_MAX];

    if (entry && hash && pinned && strcmp(hash, pinned) == 0 &&
        json_integer_value(json_object_get(entry, "state")) == TOOL_OK) {
        v->verdict = VERDICT_ALLOW;
        v->risk = 0.0;
        return;
    }
    /* Names come from the peers: quoted as shell words, so the approve command we suggest
     * stays one command, and control characters never reach the model or a terminal. */
    engine__shq(tool, t, sizeof(t));
    engine__shq(s->server, srv, sizeof(srv));
    if (!entry || !hash || !pinned) {
        set_deny(v, "unknown_tool", 1.0,
                 "tool %s is not in this session's tool list from server %s; only tools the"
                 " server listed (tools/list) can be called",
                 t, srv);
        return;
    }
    switch (json_integer_value(json_object_get(entry, "state"))) {
    case TOOL_OK: /* with a hash that is not its pin: never callable */
    case TOOL_CHANGED:
        if (strcmp(json_string_value(json_object_get(entry, "what")), "display") == 0) {
            set_deny(v, "descriptor_hash_mismatch", 1.0,
                     "tool %s changed its title, annotations or output schema since it was"
                     " first seen (display hash %s, pinned %s; possible rug pull). Review it,"
                     " then approve with: clampd tools approve %s %s --hash %.12s",
                     t, hash, pinned, srv, t, hash);
            return;
        }
        set_deny(v, "descriptor_hash_mismatch", 1.0,
                 "tool %s was called with hash %s but its pinned hash is %s: its description"
                 " or input schema changed since it was first seen (possible rug pull). Review"
                 " it, then approve with: clampd tools approve %s %s --hash %.12s%s%.12s",
                 t, hash, pinned, srv, t, hash, also ? " --hash " : "", also ? also : "");
        return;
    case TOOL_POISONED:
        set_deny(v, "tool_poisoned", 1.0,
                 "tool %s was withheld: its description or schema matches %s", t,
                 json_string_value(json_object_get(entry, "rules")));
        return;
    default:
        set_deny(v, "tool_not_approved", 1.0,
                 "tool %s (hash %s) is new on server %s and strict pin mode holds new tools"
                 " until approved: clampd tools approve %s %s --hash %.12s",
                 t, hash, srv, srv, t, hash);
        return;
    }
}

/* Writes "id (category, risk r), …" for the rules in v into out. */
static void rules_text(const struct engine_session *s, const struct engine_verdict *v, char *out,
                       size_t cap)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < v->n_rule_ids && n + 1 < cap; i++) {
        const char *cat = "?";
        double risk = 0;
        for (size_t k = 0; k < insp_ruleset_count(s->engine->rules); k++) {
            const struct insp_rule *r = insp_ruleset_rule(s->engine->rules, k);
            if (r->id == v->rule_ids[i]) {
                cat = r->category, risk = r->risk;
                break;
            }
        }
        int w = snprintf(out + n, cap - n, "%s%s (%s, risk %.2f)", i ? ", " : "", v->rule_ids[i],
                         cat, risk);
        if (w < 0)
            break;
        n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
}

/* Stage 5: the rule packs over every string of the arguments. */
static void classify_arguments(struct engine_session *s, const char *tool, const char *args,
                               size_t len, struct engine_verdict *v)
{
    char list[ENGINE_REASON_MAX / 2];
    int rc;

    if (!s->engine->rules || !args)
        return;
    rc = engine__classify_raw(s, INSP_ARGUMENTS, tool, args, len, v);
    if (rc) {
        /* SECURITY: an inspection that did not complete is a deny */
        set_deny(v, "inspection_error", 1.0, "the arguments could not be inspected (%s)",
                 clampd_strerror(rc));
        return;
    }
    if (!v->n_rule_ids)
        return;
    rules_text(s, v, list, sizeof(list));
    if (v->risk >= s->engine->deny_risk) {
        set_deny(v, "rule_match", v->risk, "the arguments of tool '%.128s' match %s", tool, list);
        return;
    }
    if (v->risk >= s->engine->flag_risk) {
        v->verdict = VERDICT_FLAG;
        snprintf(v->reason, sizeof(v->reason), "flagged: the arguments of tool '%.128s' match %s",
                 tool, list);
        clog_warn("flagged tools/call '%.128s': %s", tool, list);
    }
}

/* Stage 2: the agent's token buckets (calls, calls to this tool, argument bytes). */
static void rate_limit(struct engine_session *s, const struct engine_call *call, bool dry_run,
                       struct engine_verdict *v)
{
    const struct pol *p = s->engine->policy;
    struct pol_rate r;
    int64_t retry = 0;
    const char *which = "";

    if (!p)
        return;
    r = pol_agent_rate(p, engine__agent(s));
    int64_t now_ms = (int64_t)(clampd_now_ns() / 1000000u);
    if (dry_run ? pol_limiter_peek(s->engine->limiter, &r, engine__agent(s), call->tool,
                                   call->arguments_len, now_ms, &retry, &which)
                : pol_limiter_take(s->engine->limiter, &r, engine__agent(s), call->tool,
                                   call->arguments_len, now_ms, &retry, &which))
        return;
    if (retry == POL_RETRY_UNAVAILABLE) {
        /* SECURITY: denied all the same; named so that nobody reads an outage of the shared
         * buckets as the agent's own excess */
        set_deny(v, "rate_limit_unavailable", 1.0,
                 "the shared rate-limit store (--redis) did not answer; the call is refused"
                 " until it does (policy fail_mode: closed)");
        return;
    }
    if (retry < 0)
        set_deny(v, "rate_limited", 1.0,
                 "agent '%.128s' is limited to %s and this call alone is larger than the limit",
                 engine__agent(s), which);
    else
        set_deny(v, "rate_limited", 1.0, "agent '%.128s' is over its limit of %s; retry in %lld ms",
                 engine__agent(s), which, (long long)retry);
    v->retry_ms = retry;
}

/* Stage 7: with a policy, the tool must map to a category, and the agent must hold the
 * category's scopes. SECURITY: an unmapped tool has no scopes: denied. */
static void policy_stage(struct engine_session *s, const char *tool, struct engine_verdict *v)
{
    const struct pol *p = s->engine->policy;
    const char *cat;
    char missing[POL_NAME_MAX], t[ENGINE_SHQ_MAX], srv[ENGINE_SHQ_MAX];

    if (!p)
        return;
    engine__shq(tool, t, sizeof(t));
    engine__shq(s->server, srv, sizeof(srv));
    cat = pol_tool_category(p, s->server, tool);
    if (!cat) {
        set_deny(v, "tool_not_classified", 1.0,
                 "tool %s of server %s maps to no category in the policy, so it has no scopes;"
                 " give it one under 'tools:' in the policy file",
                 t, srv);
        return;
    }
    if (pol_agent_allows(p, engine__agent(s), cat, missing, sizeof(missing)))
        return;
    if (!missing[0])
        set_deny(v, "scope_denied", 1.0,
                 "agent '%.128s' is not in the policy, so it holds no scopes (tool %s, category"
                 " '%s')",
                 engine__agent(s), t, cat);
    else
        set_deny(v, "scope_denied", 1.0,
                 "agent '%.128s' lacks scope '%s', which category '%s' of tool %s requires",
                 engine__agent(s), missing, cat, t);
}

_Static_assert(ENGINE_SUB_MAX == CLAMPD_TOKEN_MAX_SUB + 1, "a sub the minter accepts fits");
_Static_assert(ENGINE_SCOPE_MAX == CLAMPD_TOKEN_MAX_SCOPE + 1, "a scope the minter accepts fits");

/* Stage 8, first half, under the caller's lock: what the token needs of the session (the
 * agent) and of the policy (the scopes of the tool's category; none without a policy). */
static int token_prepare(struct engine_session *s, const struct engine_call *call,
                         struct engine_token_req *q)
{
    struct engine *e = s->engine;
    const char *agent = engine__agent(s);
    const char *cat = e->policy ? pol_tool_category(e->policy, s->server, call->tool) : NULL;
    size_t n = strlen(agent);

    /* SECURITY: an agent id the minter would refuse is refused here, never truncated */
    if (n >= sizeof(q->sub))
        return ERR_INVAL;
    memcpy(q->sub, agent, n + 1);
    q->scope[0] = '\0';
    if (cat && !pol_category_scopes(e->policy, cat, q->scope, sizeof(q->scope)))
        return ERR_TOO_BIG;
    q->tool = call->tool;
    q->arguments = call->arguments;
    q->arguments_len = call->arguments_len;
    return 0;
}

/* Stage 8, second half: the binding of (tool, arguments) and the signature. Reads only
 * e->keys and e->token_ttl (immutable after engine_new()), q and call: no session, no
 * lock. Writes the token into v->scope_token. */
static int token_sign(const struct engine *e, const struct engine_call *call,
                      const struct engine_token_req *q, struct engine_verdict *v)
{
    char binding[CJSON_HEX_LEN + 1];
    json_t *args = NULL;
    char *tok = NULL;
    int rc = 0;

    if (call->arguments)
        args = json_loadb(call->arguments, call->arguments_len, JSON_DECODE_ANY, NULL);
    if (call->arguments && !args)
        rc = ERR_PARSE;
    if (!rc)
        rc = cjson_call_binding(call->tool, args, binding);
    struct tok_claims c = {.sub = q->sub,
                           .tool = call->tool,
                           .binding = binding,
                           .scope = q->scope,
                           .iss = "clampd",
                           .ttl = e->token_ttl};
    if (!rc)
        rc = tok_mint(e->keys, &c, &tok);
    if (!rc && strlen(tok) >= sizeof(v->scope_token))
        rc = ERR_TOO_BIG;
    if (!rc)
        memcpy(v->scope_token, tok, strlen(tok) + 1);
    free(tok);
    json_decref(args);
    return rc;
}

static void token_error(struct engine_verdict *v, int rc)
{
    v->scope_token[0] = '\0';
    set_deny(v, "token_error", 1.0, "no scope token could be issued for this call (%s)",
             clampd_strerror(rc));
}

/* Stage 8: the scope token of an allowed call, bound to (tool, arguments): the agent, the
 * scopes of the tool's category (none without a policy), 60 s by default. With defer, only
 * the first half runs and the verdict is left token_pending for engine_mint_token().
 * SECURITY: a call that cannot get its token is denied, not forwarded without one. */
static void mint_token(struct engine_session *s, const struct engine_call *call, bool defer,
                       struct engine_verdict *v)
{
    int rc;

    if (!s->engine->keys)
        return;
    rc = token_prepare(s, call, &v->token_req);
    if (!rc && defer) {
        v->token_pending = true;
        return;
    }
    if (!rc)
        rc = token_sign(s->engine, call, &v->token_req, v);
    if (rc)
        token_error(v, rc);
}

int engine_mint_token(const struct engine *e, const struct engine_call *call,
                      struct engine_verdict *v)
{
    const struct engine_token_req *q = &v->token_req;
    int rc;

    if (!v->token_pending)
        return 0;
    v->token_pending = false;
    if (v->verdict == VERDICT_DENY)
        return 0; /* nothing to sign for: stays a deny */
    /* SECURITY: only the call that was judged gets a token (same buffers: the caller keeps
     * them alive and unchanged between decide and mint) */
    if (!e || !e->keys || !call || call->tool != q->tool || call->arguments != q->arguments ||
        call->arguments_len != q->arguments_len)
        rc = ERR_STATE;
    else
        rc = token_sign(e, call, q, v);
    if (rc)
        token_error(v, rc);
    return rc;
}

/* Is raw (a validated JSON value) an object or null? */
static bool object_or_null(const char *raw, size_t n)
{
    while (n && (*raw == ' ' || *raw == '\t' || *raw == '\n' || *raw == '\r'))
        raw++, n--;
    return n && (*raw == '{' || (n >= 4 && memcmp(raw, "null", 4) == 0));
}

_Static_assert(ENGINE_REQID_LEN == 32, "request ids are 16 hex of prefix and 16 of counter");

void engine__request_id(struct engine_session *s, char out[ENGINE_REQID_LEN + 1])
{
    /* Unique, not secret: a random per-process prefix and a counter (no syscall per call). */
    uint64_t seq = ++s->engine->reqid_seq;

    memcpy(out, s->engine->reqid_prefix, 16);
    for (int i = 31; i >= 16; i--, seq >>= 4)
        out[i] = "0123456789abcdef"[seq & 15];
    out[32] = '\0';
}

int engine_decide(struct engine_session *s, const struct engine_call *call,
                  struct engine_verdict *out)
{
    return engine_decide_ex(s, call, 0, out);
}

int engine_decide_ex(struct engine_session *s, const struct engine_call *call, unsigned flags,
                     struct engine_verdict *out)
{
    bool dry_run = flags & ENGINE_DECIDE_DRY_RUN;

    memset(out, 0, sizeof(*out));
    out->verdict = VERDICT_DENY;
    engine__request_id(s, out->request_id);
    if (call->malformed) {
        /* SECURITY: a case-folding server would read another key than the one we judged. */
        set_deny(out, "invalid_request", 1.0,
                 "tools/call params are not an object, or repeat a key, or carry a key that"
                 " differs only in case from name, arguments or _meta");
        return 0;
    }
    if (!call->tool || strlen(call->tool) != call->tool_len) {
        /* SECURITY: "a\u0000b" must not be judged as "a" */
        set_deny(out, "invalid_request", 1.0, "tools/call has no usable tool name (params.name)");
        return 0;
    }
    if (call->arguments && !object_or_null(call->arguments, call->arguments_len)) {
        set_deny(out, "invalid_arguments", 1.0, "tools/call arguments must be a JSON object");
        return 0;
    }
    out->verdict = VERDICT_ALLOW;
    if (flags & ENGINE_DECIDE_DESCRIPTOR_ONLY) {
        /* the proxy's remote mode: the gateway runs the other stages */
        check_descriptor(s, call->tool, out);
        return 0;
    }
    rate_limit(s, call, dry_run, out);
    if (out->verdict == VERDICT_ALLOW)
        check_descriptor(s, call->tool, out);
    if (out->verdict == VERDICT_ALLOW && call->arguments)
        classify_arguments(s, call->tool, call->arguments, call->arguments_len, out);
    if (out->verdict != VERDICT_DENY) {
        enum verdict was = out->verdict;
        policy_stage(s, call->tool, out);
        if (out->verdict != VERDICT_DENY)
            out->verdict = was; /* a flag from the rules stays a flag */
    }
    if (out->verdict != VERDICT_DENY && !dry_run)
        mint_token(s, call, flags & ENGINE_DECIDE_DEFER_TOKEN, out);
    return 0;
}

bool engine_session_tool_hash(const struct engine_session *s, const char *tool,
                              char hex[CJSON_HEX_LEN + 1])
{
    json_t *entry = json_object_get(s->tools, tool);
    const char *hash = json_string_value(json_object_get(entry, "hash"));
    const char *pinned = json_string_value(json_object_get(entry, "pinned"));

    if (!hash || !pinned || strcmp(hash, pinned) != 0 || strlen(hash) != CJSON_HEX_LEN ||
        json_integer_value(json_object_get(entry, "state")) != TOOL_OK)
        return false;
    memcpy(hex, hash, CJSON_HEX_LEN + 1);
    return true;
}

int engine_inspect_arguments(struct engine_session *s, const char *tool, const char *json,
                             size_t len, struct engine_verdict *v)
{
    memset(v, 0, sizeof(*v));
    engine__request_id(s, v->request_id);
    v->verdict = VERDICT_ALLOW;
    if (json && !object_or_null(json, len)) {
        set_deny(v, "invalid_arguments", 1.0, "tools/call arguments must be a JSON object");
        return 0;
    }
    classify_arguments(s, tool, json, len, v);
    return 0;
}

json_t *engine_denial_result(const struct engine_verdict *v, const char *tool)
{
    char text[ENGINE_REASON_MAX + 512];

    char t[ENGINE_SHQ_MAX];

    snprintf(text, sizeof(text),
             "[clampd] Tool call %s was BLOCKED.\nReason: %s\nRisk score: %.2f\nRequest ID: %s",
             engine__shq(tool ? tool : "", t, sizeof(t)), v->reason, v->risk, v->request_id);
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < v->n_rule_ids; i++)
        json_array_append_new(ids, json_string(v->rule_ids[i]));
    return json_pack("{s:[{s:s, s:s}], s:b, s:{s:{s:s, s:o, s:f, s:s}}}", "content", "type", "text",
                     "text", text, "isError", 1, "_meta", "clampd/denial", "error_code",
                     v->error_code, "rule_ids", ids, "risk", v->risk, "request_id", v->request_id);
}
