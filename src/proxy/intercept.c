/*
 * intercept: the messages clampd reads fully and may change.
 *
 *   tools/call (client)          engine_decide(): forward untouched, or answer with a denial
 *   initialize result            server identity; instructions pinned
 *   tools/list result            engine_discover_tools(): hashed, pinned, annotated, withheld
 *   prompts/list, resources/templates/list results: pinned, changed items withheld
 *   notifications/tools/list_changed: clampd re-lists itself first (holding tool calls and
 *                                the notification), so a changed tool is caught before the
 *                                client can call it
 *
 * SECURITY: anything that cannot be inspected is not passed on: the client gets an error.
 */
#include "proxy/proxy-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELIST_TIMEOUT_MS 10000

/* Holds a message until the tool listing in flight ends. id is the raw id of a held
 * client request (answered with an error if it cannot be held or is never released). */
static void hold(struct proxy *p, const char *to, const char *line, size_t len,
                 const struct jrpc_slice *id)
{
    json_t *h = json_pack("{s:s, s:s%}", "to", to, "line", line, len);

    if (h && id)
        json_object_set_new(h, "id", json_stringn(id->p, id->n));
    if (!h || json_array_size(p->held) >= CLAMPD_MAX_HELD_CALLS ||
        json_array_append_new(p->held, h)) {
        clog_warn("too many messages held during a tool listing; one refused");
        if (id)
            proxy__send_error(p, *id, JRPC_DOWNSTREAM_ERROR,
                              "clampd: too many calls are waiting for the tool listing");
    }
}

void proxy__fail_held(struct proxy *p, const char *why)
{
    size_t i;
    json_t *h;
    char msg[512];

    snprintf(msg, sizeof(msg), "clampd: %s", why);
    json_array_foreach (p->held, i, h) {
        json_t *id = json_object_get(h, "id");
        if (id)
            proxy__send_error(p, (struct jrpc_slice){json_string_value(id), json_string_length(id)},
                              JRPC_DOWNSTREAM_ERROR, msg);
    }
    json_array_clear(p->held);
}

void proxy__answer_result(struct proxy *p, struct jrpc_slice id, json_t *result)
{
    json_t *idv = json_loadb(id.p, id.n, JSON_DECODE_ANY, NULL);
    json_t *msg = json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", idv, "result", result);

    if (msg)
        proxy__to_client_json(p, msg);
    else
        proxy__send_error(p, id, JRPC_INTERNAL_ERROR, "clampd: out of memory");
    json_decref(msg);
}

/* One member of a tools/call's params, read straight from the bytes (no tree). */
static int call_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    static const char *const known[] = {"name", "arguments", "_meta", "task"};
    struct call_scan *cs = ctx;

    if (!key) {
        /* SECURITY: an over-long or undecodable key could be "name\u0000…" to a peer that
         * stops at NUL: the call is refused rather than guessed at. */
        cs->call.malformed = true;
        return 0;
    }
    for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        bool exact = klen == strlen(known[i]) && memcmp(key, known[i], klen) == 0;
        if (!exact && jrpc_key_aliases(key, klen, known[i]))
            cs->call.malformed = true;
        if (!exact)
            continue;
        if (cs->seen & 1u << i)
            cs->call.malformed = true; /* SECURITY: parsers disagree on which one wins */
        cs->seen |= 1u << i;
        if (i == 0) {
            long n = jrpc_string_decode(v, cs->name, sizeof(cs->name));
            cs->call.tool = n < 0 ? NULL : cs->name;
            cs->call.tool_len = n < 0 ? 0 : (size_t)n;
        } else if (i == 1) {
            cs->call.arguments = v.p;
            cs->call.arguments_len = v.n;
        } else if (i == 2) {
            cs->meta = v;
        }
    }
    return 0;
}

/* Does a _meta value carry a "clampd/scope_token" key (however its JSON spells it)? */
static bool meta_has_token(struct jrpc_slice meta)
{
    json_t *m = json_loadb(meta.p, meta.n, 0, NULL);
    bool has = !json_is_object(m) || json_object_get(m, "clampd/scope_token") != NULL;

    json_decref(m);
    return has; /* not an object: with_token() refuses it */
}

/* The call line with params._meta["clampd/scope_token"] = token: the judged bytes, with
 * only _meta rewritten (added as the first member of params, or the client's _meta parsed
 * and re-emitted with the token set: SECURITY: a token the client sent is replaced, never
 * passed on). token NULL: the client's token is only removed. Returns a malloc'd line and
 * its length, or NULL. */
static char *with_token(const char *line, size_t len, const struct jrpc_peek *pk,
                        const struct call_scan *cs, const char *token, size_t *out_len)
{
    struct dbuf out;
    const char *from, *to;
    char *meta_text = NULL;
    int rc = 0;

    dbuf_init(&out, CLAMPD_MAX_MESSAGE + ENGINE_TOKEN_MAX + 64);
    if (cs->meta.p) {
        json_t *meta = json_loadb(cs->meta.p, cs->meta.n, 0, NULL);
        if (!json_is_object(meta) ||
            (token ? json_object_set_new(meta, "clampd/scope_token", json_string(token))
                   : json_object_del(meta, "clampd/scope_token")) ||
            !(meta_text = json_dumps(meta, JSON_COMPACT))) {
            json_decref(meta);
            return NULL;
        }
        json_decref(meta);
        from = cs->meta.p, to = cs->meta.p + cs->meta.n;
        rc = dbuf_add(&out, line, (size_t)(from - line));
        if (!rc)
            rc = dbuf_add(&out, meta_text, strlen(meta_text));
    } else {
        const char *brace = memchr(pk->params.p, '{', pk->params.n);
        const char *q = brace ? brace + 1 : NULL;
        while (q && q < pk->params.p + pk->params.n &&
               (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (!brace)
            return NULL;
        to = brace + 1;
        rc = dbuf_add(&out, line, (size_t)(to - line));
        if (!rc)
            rc = dbuf_printf(&out, "\"_meta\":{\"clampd/scope_token\":\"%s\"}%s", token,
                             *q == '}' ? "" : ",");
    }
    if (!rc)
        rc = dbuf_add(&out, to, (size_t)(line + len - to));
    free(meta_text);
    if (rc) {
        dbuf_free(&out);
        return NULL;
    }
    *out_len = out.len;
    return out.ptr; /* the buffer is the caller's now */
}

void proxy__scan_call(const struct jrpc_peek *pk, struct call_scan *cs)
{
    memset(cs, 0, sizeof(*cs));
    if (jrpc_object_each(pk->params, call_member, cs))
        cs->call.malformed = true;
}

void proxy__client_call(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk)
{
    struct call_scan cs;
    struct engine_verdict v;

    if (!p->list_attempted && !p->relisting)
        proxy__start_relist(p, NULL, 0, RELIST_FIRST);
    if (p->relisting) {
        hold(p, "server", line, len, &pk->id);
        return;
    }
    proxy__scan_call(pk, &cs);
    if (p->cfg->gateway) {
        /* remote mode: the shape and the pin here, the rest at the gateway */
        engine_decide_ex(p->session, &cs.call, ENGINE_DECIDE_DESCRIPTOR_ONLY, &v);
        if (v.verdict != VERDICT_DENY) {
            proxy__remote_call(p, line, len, pk, &cs);
            return;
        }
    } else {
        engine_decide(p->session, &cs.call, &v);
    }
    proxy__apply_verdict(p, line, len, pk, &cs, &v);
}

void proxy__apply_verdict(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk,
                          const struct call_scan *cs, const struct engine_verdict *v)
{
    if (v->verdict == VERDICT_DENY) {
        clog_warn("denied tools/call '%.128s' [%s]: %s", cs->call.tool ? cs->call.tool : "?",
                  v->request_id, v->reason);
        proxy__answer_result(p, pk->id, engine_denial_result(v, cs->call.tool));
    } else {
        size_t n = len;
        /* SECURITY: a scope token is only ever clampd's: one the client sent is dropped */
        bool forged = !v->scope_token[0] && cs->meta.p && meta_has_token(cs->meta);
        char *withtok =
            v->scope_token[0] || forged
                ? with_token(line, len, pk, cs, v->scope_token[0] ? v->scope_token : NULL, &n)
                : NULL;
        if ((v->scope_token[0] || forged) && !withtok) {
            proxy__send_error(p, pk->id, JRPC_INVALID_PARAMS,
                              "clampd: the call's params._meta is not an object, so no scope"
                              " token can be attached; the call was not forwarded");
            return;
        }
        if (proxy__pending_add(p, pk->id, PK_TOOLS_CALL, cs->call.tool) == 0) {
            clog_debug("allowed tools/call '%s' [%s]", cs->call.tool, v->request_id);
            /* SECURITY: the very bytes that were judged (with the token, only _meta
             * differs) */
            proxy__to_server(p, withtok ? withtok : line, n);
        } else {
            proxy__send_error(p, pk->id, JRPC_INVALID_REQUEST,
                              "duplicate request id: a request with this id is still pending");
        }
        free(withtok);
    }
}

struct name_scan {
    char name[CALL_NAME_MAX];
    bool found, bad;
};

static int name_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    struct name_scan *ns = ctx;

    if (!key || klen != 4 || memcmp(key, "name", 4) != 0) {
        ns->bad |= !key || jrpc_key_aliases(key, klen, "name");
        return 0;
    }
    ns->bad |= ns->found || jrpc_string_decode(v, ns->name, sizeof(ns->name)) < 0;
    ns->found = true;
    return 0;
}

bool proxy__prompt_withheld(struct proxy *p, const struct jrpc_peek *pk)
{
    struct name_scan ns;
    char msg[CALL_NAME_MAX + 256];

    memset(&ns, 0, sizeof(ns));
    if (jrpc_object_each(pk->params, name_member, &ns) || ns.bad) {
        /* SECURITY: a name we cannot read as the server will is not passed on */
        proxy__send_error(p, pk->id, JRPC_INVALID_PARAMS,
                          "clampd: prompts/get params carry no single readable name");
        return true;
    }
    if (!ns.found || !engine_item_withheld(p->session, "prompt", ns.name))
        return false;
    snprintf(msg, sizeof(msg),
             "[clampd] prompt '%.128s' was BLOCKED: descriptor_hash_mismatch: it changed since it"
             " was pinned (or is new and held); review it with 'clampd tools list'",
             ns.name);
    clog_warn("denied prompts/get '%.128s': withheld", ns.name);
    proxy__send_error(p, pk->id, JRPC_INVALID_PARAMS, msg);
    return true;
}

void proxy__tool_result(struct proxy *p, const char *tool, const char *line, size_t len,
                        const struct jrpc_peek *pk)
{
    json_t *rewritten = NULL;
    struct engine_verdict v;

    if (engine_inspect_result(p->session, *tool ? tool : NULL, pk->result.p, pk->result.n,
                              &rewritten, &v)) {
        /* SECURITY: a result that could not be inspected does not reach the model */
        proxy__send_error(p, pk->id, JRPC_INTERNAL_ERROR,
                          "clampd: the tool result could not be inspected and was withheld");
        return;
    }
    if (rewritten)
        proxy__answer_result(p, pk->id, rewritten);
    else
        proxy__to_client(p, line, len); /* nothing to change: the exact bytes */
}

/* Runs the discovery a result needs; returns 0 if it may be passed on (maybe rewritten). */
static int discover(struct proxy *p, enum pending_kind k, json_t *result, bool *rewritten)
{
    struct engine_discovery rep;
    unsigned withheld = 0;
    int rc;

    *rewritten = true;
    switch (k) {
    case PK_INITIALIZE:
        p->initialized = true;
        p->has_tools = json_object_get(json_object_get(result, "capabilities"), "tools") != NULL;
        engine_session_set_server(p->session, json_string_value(json_object_get(
                                                  json_object_get(result, "serverInfo"), "name")));
        *rewritten = json_object_get(result, "instructions") != NULL;
        rc = engine_discover_instructions(p->session, result);
        if (!rc)
            proxy__arm_relist_timer(p);
        return rc;
    case PK_TOOLS_LIST:
    case PK_TOOLS_LIST_PAGE:
        rc = engine_discover_tools(p->session, result, k == PK_TOOLS_LIST, &rep);
        p->list_attempted = true;
        if (!rc && (rep.changed || rep.held || rep.invalid))
            clog_warn("tools/list: %u listed, %u offered, %u withheld", rep.listed, rep.offered,
                      rep.changed + rep.held + rep.invalid);
        return rc;
    case PK_PROMPTS_LIST:
        return engine_discover_items(p->session, result, "prompts", "prompt", &withheld);
    case PK_TEMPLATES_LIST:
        return engine_discover_items(p->session, result, "resourceTemplates", "resource_template",
                                     &withheld);
    default: *rewritten = false; return 0;
    }
}

void proxy__server_answer(struct proxy *p, enum pending_kind k, const char *line, size_t len,
                          struct jrpc_slice id)
{
    json_t *msg;
    bool rewritten = false;
    int rc = ERR_PARSE;

    msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    if (msg && json_is_object(json_object_get(msg, "result")))
        rc = discover(p, k, json_object_get(msg, "result"), &rewritten);
    if (rc) {
        clog_error("cannot inspect the downstream's answer (%s); the client gets an error",
                   clampd_strerror(rc));
        proxy__send_error(p, id, JRPC_INTERNAL_ERROR,
                          "clampd: the downstream's answer could not be inspected and was"
                          " withheld");
    } else if (rewritten) {
        proxy__to_client_json(p, msg);
    } else {
        proxy__to_client(p, line, len);
    }
    json_decref(msg);
}

/* ---- re-listing ---- */

static void send_list_request(struct proxy *p, const json_t *cursor)
{
    char id[sizeof(p->own_prefix) + 24];
    json_t *msg;

    snprintf(id, sizeof(id), "%s%llu", p->own_prefix, (unsigned long long)++p->own_seq);
    snprintf(p->own_last, sizeof(p->own_last), "%s", id);
    msg = json_pack("{s:s, s:s, s:s, s:{}}", "jsonrpc", "2.0", "id", id, "method", "tools/list",
                    "params");
    if (msg && cursor)
        json_object_set(json_object_get(msg, "params"), "cursor", (json_t *)cursor);
    char *line = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    if (line)
        proxy__to_server(p, line, strlen(line));
    else
        clog_error("cannot build the re-listing request");
    free(line);
    json_decref(msg);
}

/* Releases what was held, in order: notifications go to the client, held tools/call
 * requests are decided now. */
static void release_held(struct proxy *p)
{
    json_t *held = p->held;
    size_t i;
    json_t *h;

    p->held = json_array();
    json_array_foreach (held, i, h) {
        const char *line = json_string_value(json_object_get(h, "line"));
        size_t len = json_string_length(json_object_get(h, "line"));
        if (strcmp(json_string_value(json_object_get(h, "to")), "client") == 0)
            proxy__to_client(p, line, len);
        else
            proxy__client_line(p, 0, line, len);
    }
    json_decref(held);
}

void proxy__start_relist(struct proxy *p, const char *notification, size_t len,
                         enum relist_reason why)
{
    static const char *const what[] = {"server said the list changed", "periodic check",
                                       "first listing of the session"};

    if (notification)
        hold(p, "client", notification, len, NULL);
    if (p->relisting) {
        p->relist_again |= why == RELIST_NOTIFIED;
        return;
    }
    p->list_attempted = true;
    if ((!p->initialized && why != RELIST_FIRST) || !p->child || p->child_gone || p->kill_stage) {
        /* Not possible now (before initialize, or the downstream's input is closed): what
         * was held goes on; calls are decided on the tools listed so far. */
        release_held(p);
        return;
    }
    if (engine_session_tools_digest(p->session, p->relist_digest))
        p->relist_digest[0] = '\0';
    p->relisting = true;
    p->relist_pages = 0;
    p->relist_reason = why;
    clog_info("listing tools (%s)", what[why]);
    send_list_request(p, NULL);
    proxy__arm_relist_timeout(p, RELIST_TIMEOUT_MS);
}

/* Ends a listing: lists again if the server said its list changed meanwhile; otherwise
 * tells the client if a periodic check found a change, releases what was held, and lets
 * a shutdown that waited for the listing go on. */
static void finish_relist(struct proxy *p)
{
    char digest[CJSON_HEX_LEN + 1];

    p->relisting = false;
    uv_timer_stop(&p->relist_timeout);
    if (p->relist_again && !p->stdin_close_deferred) {
        p->relist_again = false;
        proxy__start_relist(p, NULL, 0, RELIST_NOTIFIED);
        return;
    }
    p->relist_again = false;
    if (p->relist_reason == RELIST_TIMER && (engine_session_tools_digest(p->session, digest) ||
                                             strcmp(digest, p->relist_digest) != 0)) {
        static const char note[] =
            "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}";
        clog_warn("periodic re-listing found a changed tool set; telling the client");
        proxy__to_client(p, note, sizeof(note) - 1);
    }
    release_held(p);
    proxy__maybe_continue_shutdown(p);
}

void proxy__own_answer(struct proxy *p, const char *line, size_t len, struct jrpc_slice id)
{
    json_t *msg;
    json_t *result;
    struct engine_discovery rep;
    json_t *cursor;
    size_t n = strlen(p->own_last);

    if (!p->relisting || id.n != n + 2 || memcmp(id.p + 1, p->own_last, n) != 0) {
        clog_debug("late answer to an earlier listing of clampd's; dropped");
        return;
    }
    msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    result = json_object_get(msg, "result");
    if (!json_is_object(result) ||
        engine_discover_tools(p->session, result, p->relist_pages == 0, &rep)) {
        /* SECURITY: we cannot tell what the tools are now: none is callable until the
         * next successful listing. */
        clog_error("re-listing tools failed; no tool can be called until tools are listed again");
        engine_session_clear_tools(p->session);
        finish_relist(p);
        json_decref(msg);
        return;
    }
    if (rep.changed || rep.held)
        clog_warn("re-listing: %u changed and %u held tools withheld", rep.changed, rep.held);
    p->relist_pages++;
    cursor = json_object_get(result, "nextCursor");
    if (json_is_string(cursor) && p->relist_pages < CLAMPD_MAX_LIST_PAGES)
        send_list_request(p, cursor);
    else
        finish_relist(p);
    json_decref(msg);
}

void proxy__relist_timed_out(struct proxy *p)
{
    if (!p->relisting)
        return;
    clog_error("the downstream did not answer clampd's tools/list in time, or unreadably; no"
               " tool can be called until tools are listed again");
    engine_session_clear_tools(p->session);
    finish_relist(p);
}

void proxy__tool_error(struct proxy *p, const char *tool, const char *line, size_t len,
                       const struct jrpc_peek *pk)
{
    json_t *msg = json_loadb(line, len, 0, NULL), *rewritten = NULL;
    json_t *err = json_object_get(msg, "error");
    char *raw = json_is_object(err) ? json_dumps(err, JSON_COMPACT) : NULL;
    struct engine_verdict v;

    /* A client shows a tool's error message to the model like its result: the same
     * inspection. SECURITY: what cannot be inspected is withheld. */
    if (!raw ||
        engine_inspect_result(p->session, *tool ? tool : NULL, raw, strlen(raw), &rewritten, &v)) {
        proxy__send_error(p, pk->id, JRPC_INTERNAL_ERROR,
                          "clampd: the tool's error could not be inspected and was withheld");
    } else if (!rewritten) {
        proxy__to_client(p, line, len); /* nothing to change: the exact bytes */
    } else if (v.verdict == VERDICT_DENY) {
        char text[ENGINE_REASON_MAX];
        snprintf(text, sizeof(text),
                 "[clampd] The error message of this tool call was BLOCKED before reaching the"
                 " model (result_injection). Request ID: %s",
                 v.request_id);
        proxy__send_error(p, pk->id, JRPC_DOWNSTREAM_ERROR, text);
    } else {
        /* redacted: the error object with the spans replaced (no _meta in an error) */
        json_object_del(rewritten, "_meta");
        json_object_set(msg, "error", rewritten);
        proxy__to_client_json(p, msg);
    }
    json_decref(rewritten);
    json_decref(msg);
    free(raw);
}
