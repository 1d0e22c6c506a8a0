/*
 * parse: the gateway's edge. Routes, API keys and request bodies are read here, once, into
 * bounded typed values (shared/STYLE.md principle 1); nothing deeper sees the raw request
 * except the raw JSON of params/result, which the engine reads as the proxy's does.
 *
 * A body is validated whole by jrpc_peek() (RFC 8259, UTF-8, bounded depth, no tree) and
 * its members walked with jrpc_object_each(). SECURITY: a member given twice, a key that
 * differs from ours only in case (what a case-insensitive decoder would read as ours), and
 * an unknown member are refused: what the engine judges is exactly what was sent.
 */
#include "gateway/gateway-int.h"
#include "jsonrpc/jsonrpc.h"
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

static const struct gw__route_info routes[GW_R__COUNT] = {
    [GW_R_PROXY] = {"/v1/proxy", "POST", true, true, "proxy"},
    [GW_R_VERIFY] = {"/v1/verify", "POST", true, true, "verify"},
    [GW_R_SCAN_INPUT] = {"/v1/scan-input", "POST", true, true, "scan_input"},
    [GW_R_SCAN_OUTPUT] = {"/v1/scan-output", "POST", true, true, "scan_output"},
    [GW_R_HEALTH] = {"/health", "GET", false, false, "health"},
    [GW_R_METRICS] = {"/metrics", "GET", true, false, "metrics"},
    [GW_R_JWKS] = {"/.well-known/jwks.json", "GET", false, false, "jwks"},
};

enum gw_route gw__route(const char *method, const char *path, int *status)
{
    for (int r = 1; r < GW_R__COUNT; r++) {
        if (strcmp(path, routes[r].path) != 0)
            continue;
        *status = strcmp(method, routes[r].method) == 0 ? 0 : 405;
        return (enum gw_route)r;
    }
    *status = 404;
    return GW_R_NONE;
}

const struct gw__route_info *gw__route_info(enum gw_route r)
{
    return r > GW_R_NONE && r < GW_R__COUNT ? &routes[r] : NULL;
}

static int fail(struct gw__error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct gw__error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    err->status = 422;
    snprintf(err->code, sizeof(err->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return ERR_INVAL;
}

/* ---- the member walk shared by both bodies ---- */

#define MAX_FIELDS 8

struct walk {
    const char *const *names; /* NULL-terminated */
    struct jrpc_slice values[MAX_FIELDS];
    bool seen[MAX_FIELDS];
    struct gw__error *err;
};

static int on_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    struct walk *w = ctx;

    if (!key || strlen(key) != klen)
        return fail(w->err, "invalid_field",
                    "a member name is too long, holds a NUL or a lone"
                    " surrogate");
    for (size_t i = 0; w->names[i]; i++) {
        if (strcmp(key, w->names[i]) == 0) {
            if (w->seen[i])
                return fail(w->err, "duplicate_field", "member '%s' is given twice", w->names[i]);
            w->seen[i] = true;
            w->values[i] = v;
            return 0;
        }
        if (jrpc_key_aliases(key, klen, w->names[i]))
            return fail(w->err, "invalid_field",
                        "a member name differs only in case from '%s'; send '%s' exactly",
                        w->names[i], w->names[i]);
    }
    return fail(w->err, "unknown_field",
                "unknown member '%.64s' (expected one of the documented"
                " members, docs/gateway.md)",
                key);
}

/* Validates body as one JSON object and collects its members by name. */
static int walk_body(const char *body, size_t len, struct walk *w)
{
    struct jrpc_peek pk;
    size_t i = 0;
    int rc;

    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
        i++;
    if (!body || jrpc_peek(body, len, &pk) != 0)
        return fail(w->err, "invalid_json", "the body is not one well-formed JSON text (UTF-8)");
    if (i >= len || body[i] != '{')
        return fail(w->err, "invalid_request", "the body must be a JSON object");
    rc = jrpc_object_each((struct jrpc_slice){body + i, len - i}, on_member, w);
    if (rc == ERR_PARSE)
        return fail(w->err, "invalid_json", "the body is not a JSON object");
    return rc;
}

static char kind_of(struct jrpc_slice v)
{
    return v.n ? v.p[0] : '\0'; /* slices from jrpc_object_each start at the value */
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* A string member decoded into out (cap bytes): 1..cap-1 bytes, no NUL; with plain, no
 * control characters either. */
static int get_string(struct walk *w, size_t i, char *out, size_t cap, bool plain)
{
    long n;

    if (kind_of(w->values[i]) != '"')
        return fail(w->err, "invalid_field", "'%s' must be a string", w->names[i]);
    n = jrpc_string_decode(w->values[i], out, cap);
    if (n < 0)
        return fail(w->err, "invalid_field",
                    "'%s' is longer than %zu bytes or holds a lone"
                    " surrogate",
                    w->names[i], cap - 1);
    if (n == 0 || strlen(out) != (size_t)n || (plain && has_control(out)))
        return fail(w->err, "invalid_field", "'%s' must be a non-empty string without NUL%s",
                    w->names[i], plain ? " or control characters" : "");
    return 0;
}

enum { C_TOOL, C_PARAMS, C_HASH, C_PROMPT, C_SESSION, C_SERVER };
static const char *const call_names[] = {
    "tool", "params", "tool_descriptor_hash", "prompt_context", "session_id", "server", NULL};

static int call_hash(struct walk *w, struct gw__call_req *out)
{
    char buf[66];

    if (get_string(w, C_HASH, buf, sizeof(buf), true))
        return ERR_INVAL;
    if (strlen(buf) != 64)
        return fail(w->err, "invalid_field",
                    "'tool_descriptor_hash' must be 64 hex digits (SHA-256 of the tool's"
                    " canonical descriptor, DESIGN §3)");
    for (size_t k = 0; k < 64; k++) {
        int c = buf[k];
        if (clampd_hexval(c) < 0)
            return fail(w->err, "invalid_field", "'tool_descriptor_hash' must be 64 hex digits");
        out->hash[k] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    out->hash[64] = '\0';
    return 0;
}

int gw__parse_call(const char *body, size_t len, struct gw__call_req *out, struct gw__error *err)
{
    struct walk w = {.names = call_names, .err = err};
    char k;

    memset(out, 0, sizeof(*out));
    if (walk_body(body, len, &w))
        return ERR_INVAL;
    if (!w.seen[C_TOOL] || !w.seen[C_HASH])
        return fail(err, "missing_field", "'%s' is required",
                    w.seen[C_TOOL] ? "tool_descriptor_hash" : "tool");
    if (get_string(&w, C_TOOL, out->tool, sizeof(out->tool), false) || call_hash(&w, out))
        return ERR_INVAL;
    if (w.seen[C_PARAMS]) {
        k = kind_of(w.values[C_PARAMS]);
        if (k != '{' && k != 'n')
            return fail(err, "invalid_field", "'params' (the tool's arguments) must be an object");
        if (k == '{') {
            out->params = w.values[C_PARAMS].p;
            out->params_len = w.values[C_PARAMS].n;
        }
    }
    if (w.seen[C_PROMPT]) {
        k = kind_of(w.values[C_PROMPT]);
        if (k != '"' && k != 'n')
            return fail(err, "invalid_field", "'prompt_context' must be a string");
        out->has_prompt_context = k == '"';
    }
    if (w.seen[C_SESSION] &&
        get_string(&w, C_SESSION, out->session_id, sizeof(out->session_id), true))
        return ERR_INVAL;
    if (w.seen[C_SERVER] && get_string(&w, C_SERVER, out->server, sizeof(out->server), true))
        return ERR_INVAL;
    return 0;
}

enum { S_TEXT, S_OBJECT, S_TOOL };
static const char *const scan_in_names[] = {"text", "arguments", "tool", NULL};
static const char *const scan_out_names[] = {"text", "result", "tool", NULL};

int gw__parse_scan(const char *body, size_t len, bool output, struct gw__scan_req *out,
                   struct gw__error *err)
{
    struct walk w = {.names = output ? scan_out_names : scan_in_names, .err = err};
    const char *obj = output ? "result" : "arguments";
    long n;

    memset(out, 0, sizeof(*out));
    if (walk_body(body, len, &w))
        return ERR_INVAL;
    if (w.seen[S_TOOL] && get_string(&w, S_TOOL, out->tool, sizeof(out->tool), false))
        return ERR_INVAL;
    if (w.seen[S_TEXT] == w.seen[S_OBJECT])
        return fail(err, w.seen[S_TEXT] ? "invalid_request" : "missing_field",
                    "give either 'text' or '%s'", obj);
    if (w.seen[S_OBJECT]) {
        if (kind_of(w.values[S_OBJECT]) != '{')
            return fail(err, "invalid_field", "'%s' must be an object", obj);
        out->object = w.values[S_OBJECT].p;
        out->object_len = w.values[S_OBJECT].n;
        return 0;
    }
    if (kind_of(w.values[S_TEXT]) != '"')
        return fail(err, "invalid_field", "'text' must be a string");
    /* the decoded text is never longer than its JSON token, which the body cap bounds */
    if (!(out->text = malloc(w.values[S_TEXT].n)))
        return ERR_NOMEM;
    n = jrpc_string_decode(w.values[S_TEXT], out->text, w.values[S_TEXT].n);
    if (n < 0) {
        gw__scan_req_deinit(out);
        return fail(err, "invalid_field", "'text' holds a lone surrogate");
    }
    out->text_len = (size_t)n;
    return 0;
}

void gw__scan_req_deinit(struct gw__scan_req *r)
{
    free(r->text);
    r->text = NULL;
}

int gw__decision_status(const struct engine_verdict *v)
{
    /* SECURITY: an allow whose scope token was deferred and never minted is no answer */
    if (v->token_pending)
        return 500;
    if (v->verdict != VERDICT_DENY)
        return 200;
    if (strcmp(v->error_code, "rate_limit_unavailable") == 0)
        return 503;
    if (strcmp(v->error_code, "descriptor_hash_mismatch") == 0)
        return 409;
    if (strcmp(v->error_code, "rate_limited") == 0)
        return 429;
    return 200;
}

const char *gw__action(enum verdict v)
{
    return v == VERDICT_ALLOW ? "allow" : v == VERDICT_FLAG ? "flag" : "deny";
}

const char *gw__authenticate(const struct pol *p, const char *key)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    size_t n;

    if (!key)
        return NULL;
    n = strnlen(key, GW_KEY_MAX + 1);
    if (n == 0 || n > GW_KEY_MAX)
        return NULL;
    /* SECURITY: only the key's hash is compared (constant time, every agent), and neither
     * the key nor its hash is logged or kept. */
    crypto_hash_sha256(h, (const unsigned char *)key, n);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    sodium_memzero(h, sizeof(h));
    const char *agent = pol_agent_by_key(p, hex);
    sodium_memzero(hex, sizeof(hex));
    return agent;
}

void gw__request_id(char out[ENGINE_REQID_LEN + 1])
{
    clampd_random_hex(out, ENGINE_REQID_LEN / 2);
}

int gw__shell_word(struct dbuf *out, const char *s)
{
    int rc = dbuf_addc(out, '\'');

    for (; !rc && *s; s++)
        rc = *s == '\'' ? dbuf_adds(out, "'\\''") : dbuf_addc(out, *s);
    return rc ? rc : dbuf_addc(out, '\'');
}
