/*
 * route: where each message goes. Client requests are tracked by id so that answers
 * that need inspection are recognised and every request still pending when the
 * downstream dies gets an error; everything clampd does not change is relayed as the
 * exact bytes that arrived.
 */
#include "proxy/proxy-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool method_is(const struct jrpc_peek *pk, const char *m)
{
    return strcmp(pk->method, m) == 0;
}

static int id_key(struct proxy *p, struct jrpc_slice id)
{
    return jrpc_id_key(id, &p->key);
}

int proxy__pending_add(struct proxy *p, struct jrpc_slice id, enum pending_kind k, const char *tool)
{
    json_t *entry;
    size_t tl = tool ? strlen(tool) : 0;

    if (id_key(p, id))
        return ERR_INVAL;
    if (json_object_getn(p->pending, p->key.ptr, p->key.len))
        return ERR_STATE;
    if (json_object_size(p->pending) >= CLAMPD_MAX_PENDING)
        return ERR_TOO_BIG;
    /* One small string per request: its kind as a digit, the raw id token (which holds no
     * raw newline), and for a tools/call a newline and the tool's name. */
    {
        char buf[CLAMPD_MAX_ID_LEN + 2 + PROXY_TOOL_MAX];
        if (tl > PROXY_TOOL_MAX)
            tool = NULL, tl = 0; /* never cut: a prefix could fall in another scope */
        buf[0] = (char)('0' + k);
        memcpy(buf + 1, id.p, id.n);
        if (tool) {
            buf[id.n + 1] = '\n';
            memcpy(buf + id.n + 2, tool, tl);
        }
        entry = json_stringn_nocheck(buf, id.n + 1 + (tool ? tl + 1 : 0));
    }
    if (!entry || json_object_setn_new(p->pending, p->key.ptr, p->key.len, entry))
        return ERR_NOMEM;
    return 0;
}

/* The raw id token of a pending entry. */
static struct jrpc_slice entry_id(const json_t *entry)
{
    const char *s = json_string_value(entry);
    const char *nl = memchr(s, '\n', json_string_length(entry));
    return (struct jrpc_slice){s + 1, (nl ? (size_t)(nl - s) : json_string_length(entry)) - 1};
}

/* Removes the pending entry of id; returns its kind, or -1 if it was not pending. The tool
 * name of a tools/call, if tool is not NULL, is copied there ("" if none). */
static int pending_take(struct proxy *p, struct jrpc_slice id, char tool[PROXY_TOOL_MAX + 1])
{
    json_t *entry;
    int k;

    if (id_key(p, id))
        return -1;
    entry = json_object_getn(p->pending, p->key.ptr, p->key.len);
    if (!entry)
        return -1;
    k = json_string_value(entry)[0] - '0';
    if (tool) {
        struct jrpc_slice raw = entry_id(entry);
        size_t off = 1 + raw.n, n = json_string_length(entry);
        size_t tl = off < n ? n - off - 1 : 0;
        memcpy(tool, json_string_value(entry) + off + (off < n), tl);
        tool[tl] = '\0';
    }
    json_object_deln(p->pending, p->key.ptr, p->key.len);
    return k;
}

void proxy__fail_pending(struct proxy *p, const char *why)
{
    const char *key;
    size_t klen;
    json_t *entry;
    char msg[CLAMPD_STDERR_TAIL + 512];

    snprintf(msg, sizeof(msg), "clampd: %s", why);
    json_object_keylen_foreach (p->pending, key, klen, entry) {
        struct jrpc_slice id = entry_id(entry);
        (void)key, (void)klen;
        proxy__send_error(p, id, JRPC_DOWNSTREAM_ERROR, msg);
    }
    json_object_clear(p->pending);
}

static enum pending_kind request_kind(struct proxy *p, const char *line, size_t len,
                                      const struct jrpc_peek *pk)
{
    if (method_is(pk, "initialize"))
        return PK_INITIALIZE;
    if (method_is(pk, "prompts/list"))
        return PK_PROMPTS_LIST;
    if (method_is(pk, "resources/templates/list"))
        return PK_TEMPLATES_LIST;
    if (method_is(pk, "tools/list")) {
        /* A cursor means a later page, which extends the tool set instead of replacing it. */
        json_t *msg = json_loadb(line, len, 0, NULL);
        json_t *cursor = json_object_get(json_object_get(msg, "params"), "cursor");
        bool page = json_string_length(cursor) > 0;
        json_decref(msg);
        (void)p;
        return page ? PK_TOOLS_LIST_PAGE : PK_TOOLS_LIST;
    }
    return PK_OTHER;
}

/* Forwards a client request, remembering it until it is answered. */
static void client_request(struct proxy *p, const char *line, size_t len,
                           const struct jrpc_peek *pk)
{
    int rc;

    if (p->start_error) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "clampd: the downstream MCP server could not be started: %s",
                 p->start_error);
        proxy__send_error(p, pk->id, JRPC_DOWNSTREAM_ERROR, msg);
        proxy__begin_shutdown(p, PROXY_EXIT_START_FAILED);
        return;
    }
    if (p->child_gone || p->kill_stage) {
        proxy__send_error(p, pk->id, JRPC_DOWNSTREAM_ERROR,
                          "clampd: the downstream MCP server is gone");
        return;
    }
    if (pk->id_is_null) {
        proxy__send_error(p, pk->id, JRPC_INVALID_REQUEST, "request id must not be null");
        return;
    }
    if (method_is(pk, "tools/call")) {
        proxy__client_call(p, line, len, pk);
        return;
    }
    if (method_is(pk, "prompts/get") && proxy__prompt_withheld(p, pk))
        return;
    rc = proxy__pending_add(p, pk->id, request_kind(p, line, len, pk), NULL);
    if (rc) {
        proxy__send_error(p, pk->id, rc == ERR_STATE ? JRPC_INVALID_REQUEST : JRPC_INTERNAL_ERROR,
                          rc == ERR_STATE     ? "duplicate request id: a request with this id is"
                                                " still pending"
                          : rc == ERR_TOO_BIG ? "clampd: too many requests are pending"
                                              : "clampd cannot track this request");
        return;
    }
    proxy__to_server(p, line, len);
}

/* notifications/cancelled: the client no longer wants the answer, so forget the request;
 * a late answer is then dropped as unknown. */
static void client_cancel(struct proxy *p, const char *line, size_t len)
{
    json_t *msg = json_loadb(line, len, 0, NULL);
    json_t *rid = json_object_get(json_object_get(msg, "params"), "requestId");
    char *raw = rid ? json_dumps(rid, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

    if (raw) {
        struct jrpc_slice id = {raw, strlen(raw)};
        pending_take(p, id, NULL);
        free(raw);
    }
    json_decref(msg);
    proxy__to_server(p, line, len);
}

static void split_batch(struct proxy *p, const char *line, size_t len, jrpc_line_fn fn);

static void client_message(struct proxy *p, const char *line, size_t len)
{
    struct jrpc_peek pk;

    if (jrpc_peek(line, len, &pk)) {
        proxy__send_error(p, (struct jrpc_slice){NULL, 0}, JRPC_PARSE_ERROR, "Parse error");
        return;
    }
    switch (pk.kind) {
    case JRPC_BATCH: split_batch(p, line, len, proxy__client_line); return;
    case JRPC_REQUEST: client_request(p, line, len, &pk); return;
    case JRPC_NOTIFICATION:
        if (method_is(&pk, "notifications/cancelled")) {
            client_cancel(p, line, len);
            return;
        }
        if (strncmp(pk.method, "notifications/", 14) != 0) {
            /* SECURITY: a "tools/call" without an id would reach a lenient server
             * undecided; MCP notifications are all named notifications/…. */
            clog_warn("client sent method '%.64s' as a notification (no id); dropped", pk.method);
            return;
        }
        proxy__to_server(p, line, len);
        /* Clients may call tools without listing them first: clampd lists them itself as
         * soon as the session is ready, so the first call can be checked at once. */
        if (method_is(&pk, "notifications/initialized") && p->has_tools && !p->list_attempted)
            proxy__start_relist(p, NULL, 0, RELIST_FIRST);
        return;
    case JRPC_RESPONSE:
        proxy__to_server(p, line, len); /* answer to a server→client request */
        return;
    default:
        proxy__send_error(p, pk.id.p && !pk.id_is_null ? pk.id : (struct jrpc_slice){NULL, 0},
                          JRPC_INVALID_REQUEST, "Invalid Request");
        return;
    }
}

int proxy__client_line(void *ctx, int status, const char *line, size_t len)
{
    struct proxy *p = ctx;

    if (status == ERR_TOO_BIG) {
        clog_warn("client sent a %zu-byte message, over the %u-byte limit; rejected", len,
                  CLAMPD_MAX_MESSAGE);
        proxy__send_error(p, (struct jrpc_slice){NULL, 0}, JRPC_INVALID_REQUEST,
                          "message too large");
        return 0;
    }
    client_message(p, line, len);
    return 0;
}

/* ---- from the downstream ---- */

static void server_response(struct proxy *p, const char *line, size_t len,
                            const struct jrpc_peek *pk)
{
    int k;
    size_t plen = strlen(p->own_prefix);
    char tool[PROXY_TOOL_MAX + 1];

    if (pk->id.n > plen + 2 && pk->id.p[0] == '"' &&
        memcmp(pk->id.p + 1, p->own_prefix, plen) == 0) {
        proxy__own_answer(p, line, len, pk->id);
        return;
    }
    k = pending_take(p, pk->id, tool);
    if (k < 0) {
        clog_warn("downstream answered a request that is not pending (id %.*s); dropped",
                  (int)(pk->id.n > 64 ? 64 : pk->id.n), pk->id.p);
        return;
    }
    if (k == PK_TOOLS_CALL && pk->has_error)
        proxy__tool_error(p, tool, line, len, pk);
    else if (k == PK_OTHER || pk->has_error)
        proxy__to_client(p, line, len);
    else if (k == PK_TOOLS_CALL)
        proxy__tool_result(p, tool, line, len, pk);
    else
        proxy__server_answer(p, (enum pending_kind)k, line, len, pk->id);
}

/* A message from the downstream that clampd will not pass on (escaped or unknown top-level
 * keys, …) may still be the answer to a pending request, as a lenient parser would read
 * it: the client then gets an error instead of waiting for ever. */
static void unreadable_answer(struct proxy *p, const char *line, size_t len)
{
    json_t *msg = json_loadb(line, len, 0, NULL);
    json_t *id = json_object_get(msg, "id");
    char *raw = json_is_string(id) || json_is_integer(id) || json_is_real(id)
                    ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)
                    : NULL;

    if (json_is_string(id) &&
        strncmp(json_string_value(id), p->own_prefix, strlen(p->own_prefix)) == 0) {
        proxy__relist_timed_out(p); /* our own listing's answer: the listing failed */
    } else if (raw) {
        struct jrpc_slice sid = {raw, strlen(raw)};
        if (pending_take(p, sid, NULL) >= 0)
            proxy__send_error(p, sid, JRPC_INTERNAL_ERROR,
                              "clampd: the downstream's answer could not be inspected and was"
                              " withheld");
    }
    free(raw);
    json_decref(msg);
}

static void server_message(struct proxy *p, const char *line, size_t len)
{
    struct jrpc_peek pk;

    if (jrpc_peek(line, len, &pk)) {
        clog_warn("downstream wrote a line that is not JSON (%zu bytes: \"%.*s%s\"); dropped", len,
                  (int)(len > 80 ? 80 : len), line, len > 80 ? "…" : "");
        return;
    }
    switch (pk.kind) {
    case JRPC_BATCH: split_batch(p, line, len, proxy__server_line); return;
    case JRPC_RESPONSE: server_response(p, line, len, &pk); return;
    case JRPC_NOTIFICATION:
        if (method_is(&pk, "notifications/tools/list_changed"))
            proxy__start_relist(p, line, len, RELIST_NOTIFIED);
        else
            proxy__to_client(p, line, len);
        return;
    case JRPC_REQUEST:
        proxy__to_client(p, line, len); /* sampling, elicitation, roots, ping, … */
        return;
    default:
        clog_warn("downstream wrote JSON that is not a plain JSON-RPC message; dropped");
        unreadable_answer(p, line, len);
        return;
    }
}

int proxy__server_line(void *ctx, int status, const char *line, size_t len)
{
    struct proxy *p = ctx;

    if (status == ERR_TOO_BIG) {
        clog_warn("downstream sent a %zu-byte message, over the %u-byte limit; dropped", len,
                  CLAMPD_MAX_MESSAGE);
        return 0;
    }
    server_message(p, line, len);
    return 0;
}

/* A batch (JSON array) is split into its elements, each routed as its own message.
 * Replies then come back one by one rather than as an array; batches were removed from
 * MCP in 2025-06-18 and splitting keeps one inspection path for every message. */
static void split_batch(struct proxy *p, const char *line, size_t len, jrpc_line_fn fn)
{
    json_t *arr = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    size_t i;
    json_t *el;

    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        if (fn == proxy__client_line)
            proxy__send_error(p, (struct jrpc_slice){NULL, 0}, JRPC_INVALID_REQUEST,
                              "Invalid Request: empty or unreadable batch");
        else
            clog_warn("downstream sent an empty or unreadable batch; dropped");
        json_decref(arr);
        return;
    }
    json_array_foreach (arr, i, el) {
        char *s = json_is_array(el) ? NULL : json_dumps(el, JSON_COMPACT | JSON_ENCODE_ANY);
        if (s)
            fn(p, 0, s, strlen(s));
        free(s);
    }
    json_decref(arr);
}
