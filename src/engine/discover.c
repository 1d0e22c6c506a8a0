/*
 * discover: hash, pin, annotate and filter what a server offers the model.
 *
 *   tools/list page ─▶ for each tool: contract hash ─▶ pin check ─┬─ match/new: annotate, offer
 *                                                                  ├─ changed:   withhold (rug
 * pull) └─ held:      withhold (strict) every tool seen, offered or not, is recorded in the
 * session's tool set, so that a call to a withheld tool gets its typed denial rather than
 * "unknown".
 */
#include "engine/engine-int.h"
#include "inspect/inspect.h"
#include "inspect/normalize.h"

#include <string.h>

/* Learns once per server identity and kind whether the server had pins of that kind
 * before this session: in strict mode only items new to an already pinned server are
 * held, and a server whose prompts were never listed before pins them as first use. */
static int ensure_known(struct engine_session *s, const char *kind)
{
    bool known = false;
    int rc;

    if (json_object_get(s->known, kind))
        return 0;
    rc = engine__pins_server_known(&s->engine->pins, s->command, s->server, kind, &known);
    if (rc)
        return rc;
    return json_object_set_new(s->known, kind, json_boolean(known)) ? ERR_NOMEM : 0;
}

static bool was_known(const struct engine_session *s, const char *kind)
{
    return json_is_true(json_object_get(s->known, kind));
}

static enum tool_state state_of(enum pin_outcome o)
{
    switch (o) {
    case PIN_OUT_MATCH:
    case PIN_OUT_NEW: return TOOL_OK;
    case PIN_OUT_NEW_HELD: return TOOL_HELD;
    default: return TOOL_CHANGED;
    }
}

static void log_outcome(const struct engine_session *s, const char *kind, const char *name,
                        enum pin_outcome o, const char *hash, const char *pinned)
{
    char n[ENGINE_SHQ_MAX], srv[ENGINE_SHQ_MAX];

    engine__shq(name, n, sizeof(n));
    engine__shq(s->server, srv, sizeof(srv));
    switch (o) {
    case PIN_OUT_NEW:
        if (was_known(s, kind))
            clog_warn("new %s %s appeared on server %s, which already had pins; pinned %.16s", kind,
                      n, srv, hash);
        else
            clog_info("pinned %s %s of server %s: %.16s", kind, n, srv, hash);
        break;
    case PIN_OUT_NEW_HELD:
        clog_warn("new %s %s on server %s held back until approved (strict pin mode):"
                  " clampd tools approve %s %s --hash %.12s",
                  kind, n, srv, srv, n, hash);
        break;
    case PIN_OUT_CHANGED:
        clog_warn("RUG PULL: %s %s of server %s changed: pinned %s, now %s; withheld"
                  " (review, then: clampd tools approve %s %s --hash %.12s)",
                  kind, n, srv, pinned, hash, srv, n, hash);
        break;
    default: break;
    }
}

static int check_pin(struct engine_session *s, const char *kind, const char *name, const char *hash,
                     enum pin_outcome *o, char pinned[CJSON_HEX_LEN + 1])
{
    bool hold = s->engine->pin_mode == PIN_MODE_STRICT && was_known(s, kind);
    int rc = engine__pins_check(&s->engine->pins, s->command, s->server, kind, name, hash, hold, o,
                                pinned);
    if (rc)
        clog_error("pin store: %s", sqlite3_errmsg(s->engine->pins.db));
    else
        log_outcome(s, kind, name, *o, hash, pinned);
    return rc;
}

static int annotate(json_t *item, const char *hash)
{
    json_t *meta = json_object_get(item, "_meta");

    if (!json_is_object(meta)) {
        meta = json_object();
        if (!meta || json_object_set_new(item, "_meta", meta))
            return ERR_NOMEM;
    }
    return json_object_set_new(meta, "clampd/contract_hash", json_string(hash)) ? ERR_NOMEM : 0;
}

/* Records a tool in the session's set. hash/pinned are the contract hash and its pin, or,
 * when only the rest of the tool changed (what = "display"), the display hash and its pin. */
static int record_tool(json_t *set, const char *name, const char *hash, const char *pinned,
                       enum tool_state st, const char *what)
{
    json_t *entry = json_pack("{s:s, s:s, s:i, s:s}", "hash", hash, "pinned", pinned, "state",
                              (int)st, "what", what);
    if (!entry || json_object_set_new(set, name, entry))
        return ERR_NOMEM;
    return 0;
}

/* The hash of a prompt or resource template: canonical JSON of the whole item without its
 * _meta (which servers may fill per response). */
static int item_hash(json_t *item, char hash[CJSON_HEX_LEN + 1])
{
    json_t *copy = json_copy(item);
    struct dbuf canon;
    int rc = ERR_NOMEM;

    dbuf_init(&canon, CLAMPD_MAX_CANONICAL);
    if (copy) {
        json_object_del(copy, "_meta");
        rc = cjson_canonical(copy, &canon);
    }
    if (!rc)
        cjson_sha256_hex(canon.ptr, canon.len, hash);
    json_decref(copy);
    dbuf_free(&canon);
    return rc;
}

int engine_inspect_tool(struct engine_session *s, const json_t *tool, struct engine_verdict *v)
{
    const char *name = json_string_value(json_object_get(tool, "name"));
    size_t n = 0;
    int rc;

    memset(v, 0, sizeof(*v));
    engine__request_id(s, v->request_id);
    v->verdict = VERDICT_ALLOW;
    if (!s->engine->rules)
        return 0;
    rc = engine__classify_json(s, INSP_DESCRIPTION, name, tool, v);
    if (rc) {
        /* SECURITY: a description that could not be scanned is treated as poisoned */
        v->verdict = VERDICT_DENY;
        v->risk = 1.0;
        snprintf(v->error_code, sizeof(v->error_code), "inspection_error");
        snprintf(v->reason, sizeof(v->reason),
                 "inspection_error: the tool could not be"
                 " inspected (%s)",
                 clampd_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < v->n_rule_ids && n + 1 < sizeof(v->reason); i++) {
        int w =
            snprintf(v->reason + n, sizeof(v->reason) - n, "%s%s", i ? ", " : "", v->rule_ids[i]);
        n += w > 0 && (size_t)w < sizeof(v->reason) - n ? (size_t)w : 0;
    }
    if (v->risk >= s->engine->deny_risk) {
        v->verdict = VERDICT_DENY;
        snprintf(v->error_code, sizeof(v->error_code), "tool_poisoned");
    } else if (v->risk >= s->engine->flag_risk) {
        v->verdict = VERDICT_FLAG;
    }
    return 0;
}

/* Adds _meta["clampd/findings"] = {verdict, risk, rule_ids} to a tool offered with
 * findings. */
static int annotate_findings(json_t *tool, const struct engine_verdict *v)
{
    json_t *meta = json_object_get(tool, "_meta"), *ids = json_array();

    for (size_t i = 0; ids && i < v->n_rule_ids; i++)
        json_array_append_new(ids, json_string(v->rule_ids[i]));
    return !ids || json_object_set_new(meta, "clampd/findings",
                                       json_pack("{s:s, s:f, s:o}", "verdict",
                                                 v->verdict == VERDICT_DENY ? "deny" : "flag",
                                                 "risk", v->risk, "rule_ids", ids))
               ? ERR_NOMEM
               : 0;
}

/* Removes ANSI escapes, control, zero-width, bidi and tag characters from every string
 * under a "description" or "title" key of value (the tool, its schemas, its annotations):
 * text a person reviewing the tool would not see is not passed on to the model. */
static int strip_hidden(json_t *value, bool text, int depth, struct dbuf *buf)
{
    const char *key;
    json_t *item;
    size_t i;
    int rc = 0;

    if (depth > CLAMPD_MAX_JSON_DEPTH)
        return ERR_TOO_BIG;
    if (json_is_string(value) && text) {
        dbuf_reset(buf);
        rc = insp_strip_hidden(json_string_value(value), json_string_length(value), buf);
        if (rc > 0)
            rc = json_string_setn(value, buf->ptr ? buf->ptr : "", buf->len) ? ERR_NOMEM : 0;
        return rc;
    }
    if (json_is_object(value)) {
        json_object_foreach (value, key, item) {
            if (strcmp(key, "_meta") == 0)
                continue;
            rc = strip_hidden(item, strcmp(key, "description") == 0 || strcmp(key, "title") == 0,
                              depth + 1, buf);
            if (rc)
                break;
        }
    } else if (json_is_array(value)) {
        json_array_foreach (value, i, item) {
            if ((rc = strip_hidden(item, text, depth + 1, buf)))
                break;
        }
    }
    return rc;
}

/* Scans what the model reads of a tool (name, description, schema, annotations) with the
 * description rules. A match at the deny risk marks the tool poisoned: withheld, and its
 * calls denied with the rules named (SECURITY: an error in the scan withholds it too),
 * unless the engine offers poisoned tools marked. *v receives the verdict. */
static int check_poisoning(struct engine_session *s, json_t *set, const char *name, json_t *tool,
                           struct engine_discovery *rep, struct engine_verdict *v)
{
    int rc = engine_inspect_tool(s, tool, v);

    if (v->verdict != VERDICT_DENY)
        return 0;
    rep->poisoned++;
    if (s->engine->offer_poisoned && !rc) {
        clog_warn("POISONED: tool '%.128s' offered marked (--poisoned mark): its description or"
                  " schema matches %s",
                  name, v->reason);
        return 0;
    }
    clog_warn("POISONED: tool '%.128s' withheld: its description or schema matches %s", name,
              v->reason);
    json_t *entry = json_object_get(set, name);
    if (json_object_set_new(entry, "state", json_integer(TOOL_POISONED)) ||
        json_object_set_new(entry, "rules", json_string(v->reason)))
        return ERR_NOMEM;
    return 0;
}

/* Processes one tool; *keep says whether it stays in the list offered to the client. */
static int discover_one(struct engine_session *s, json_t *set, json_t *page, json_t *tool,
                        struct engine_discovery *rep, bool *keep)
{
    const char *name = json_string_value(json_object_get(tool, "name"));
    char hash[CJSON_HEX_LEN + 1], pinned[CJSON_HEX_LEN + 1];
    char dhash[CJSON_HEX_LEN + 1], dpinned[CJSON_HEX_LEN + 1];
    enum pin_outcome o, od;
    int rc;

    *keep = false;
    static const char *const tool_keys[] = {
        "name",         "description", "inputSchema", "title",     "annotations",
        "outputSchema", "_meta",       "icons",       "execution", NULL};

    if (name && strlen(name) != json_string_length(json_object_get(tool, "name")))
        name = NULL; /* an embedded NUL would make two names one */
    if (name && engine__folded_alias(tool, tool_keys)) {
        /* SECURITY: "Description" beside "description": a case-insensitive client would
         * show the model the one we did not hash. */
        clog_warn("tool '%s' withheld: a key differs only in case from a Tool field", name);
        rep->invalid++;
        return 0;
    }
    if (!json_is_object(tool) || !name || json_object_get(page, name) ||
        (!json_object_get(set, name) && json_object_size(set) >= CLAMPD_MAX_TOOLS)) {
        /* SECURITY: a nameless entry or a second tool of the same name could show the
         * model one description while the server runs another: never offered. */
        clog_warn("tools/list entry withheld: %s", name ? "duplicate tool name" : "no name");
        rep->invalid++;
        return 0;
    }
    if (json_object_set_new(page, name, json_true()))
        return ERR_NOMEM;
    rc = cjson_contract_hash(name, json_object_get(tool, "description"),
                             json_object_get(tool, "inputSchema"), hash);
    if (!rc)
        rc = check_pin(s, "tool", name, hash, &o, pinned);
    /* The contract hash leaves out what else the client shows or acts on (title,
     * annotations such as readOnlyHint, outputSchema): pinned too, as the display hash. */
    if (!rc)
        rc = item_hash(tool, dhash);
    if (!rc)
        rc = check_pin(s, "tool_display", name, dhash, &od, dpinned);
    if (!rc && state_of(o) == TOOL_OK && state_of(od) != TOOL_OK) {
        o = od;
        rc = record_tool(set, name, dhash, dpinned, state_of(od), "display");
    } else if (!rc) {
        rc = record_tool(set, name, hash, pinned, state_of(o), "contract");
        /* Both changed: the denial names both pending hashes, each to be approved. */
        if (!rc && state_of(o) != TOOL_OK && state_of(od) != TOOL_OK &&
            json_object_set_new(json_object_get(set, name), "also", json_string(dhash)))
            rc = ERR_NOMEM;
    }
    if (rc)
        return rc;
    rep->new_pins += o == PIN_OUT_NEW;
    rep->changed += o == PIN_OUT_CHANGED;
    rep->held += o == PIN_OUT_NEW_HELD;
    if (state_of(o) != TOOL_OK)
        return 0;
    struct engine_verdict v;
    rc = check_poisoning(s, set, name, tool, rep, &v);
    if (rc ||
        json_integer_value(json_object_get(json_object_get(set, name), "state")) == TOOL_POISONED)
        return rc;
    *keep = true;
    rc = annotate(tool, hash);
    if (!rc && v.verdict != VERDICT_ALLOW)
        rc = annotate_findings(tool, &v);
    if (!rc) {
        struct dbuf buf;
        dbuf_init(&buf, CLAMPD_MAX_MESSAGE);
        rc = strip_hidden(tool, false, 0, &buf);
        dbuf_free(&buf);
    }
    return rc;
}

/* SECURITY: a result carrying "Tools" beside "tools" (or "Instructions", "NextCursor"…)
 * shows a case-insensitive client (Go's encoding/json: last key wins) a list we never
 * hashed: such a result is refused whole. */
static bool result_aliased(const json_t *result, const char *list_key)
{
    const char *keys[] = {list_key,       "nextCursor", "_meta",        "protocolVersion",
                          "capabilities", "serverInfo", "instructions", NULL};
    const char *alias = engine__folded_alias(result, keys);

    if (alias)
        clog_warn("answer withheld: its key '%.64s' differs only in case from a known one", alias);
    return alias != NULL;
}

int engine_discover_tools(struct engine_session *s, json_t *result, bool first_page,
                          struct engine_discovery *rep)
{
    json_t *tools = json_object_get(result, "tools");
    json_t *set = NULL, *page = NULL;
    int rc = ERR_PARSE;

    memset(rep, 0, sizeof(*rep));
    if (!json_is_array(tools) || json_array_size(tools) > CLAMPD_MAX_TOOLS ||
        result_aliased(result, "tools"))
        goto out;
    rc = ensure_known(s, "tool");
    if (!rc)
        rc = ensure_known(s, "tool_display");
    if (rc)
        goto out;
    /* A later page extends the set in place; a name it repeats from an earlier page is
     * checked again and replaces that entry (a re-fetched page may carry a change). */
    set = first_page ? json_object() : json_incref(s->tools);
    page = json_object();
    rc = ERR_NOMEM;
    if (!set || !page)
        goto out;
    for (size_t i = 0; i < json_array_size(tools);) {
        bool keep;
        rep->listed++;
        rc = discover_one(s, set, page, json_array_get(tools, i), rep, &keep);
        if (rc)
            goto out;
        if (keep)
            i++, rep->offered++;
        else
            json_array_remove(tools, i);
    }
    json_decref(s->tools);
    s->tools = set;
    set = NULL;
    rc = 0;
out:
    json_decref(set);
    json_decref(page);
    return rc;
}

int engine_discover_instructions(struct engine_session *s, json_t *init_result)
{
    json_t *ins = json_object_get(init_result, "instructions");
    struct dbuf canon;
    char hash[CJSON_HEX_LEN + 1], pinned[CJSON_HEX_LEN + 1];
    enum pin_outcome o;
    int rc;

    if (result_aliased(init_result, "instructions"))
        return ERR_PARSE;
    if (!ins)
        return 0;
    dbuf_init(&canon, CLAMPD_MAX_CANONICAL);
    rc = ensure_known(s, "instructions");
    if (!rc)
        rc = cjson_canonical(ins, &canon);
    if (!rc) {
        cjson_sha256_hex(canon.ptr, canon.len, hash);
        rc = check_pin(s, "instructions", "", hash, &o, pinned);
    }
    if (!rc && state_of(o) != TOOL_OK)
        json_object_del(init_result, "instructions");
    dbuf_free(&canon);
    return rc;
}

/* The key an item is pinned under: a template's URI template (its name is only a label
 * and may repeat), else its name. */
static const char *item_key(const json_t *item, const char *kind)
{
    const json_t *k = NULL;

    if (strcmp(kind, "resource_template") == 0)
        k = json_object_get(item, "uriTemplate");
    if (!json_is_string(k))
        k = json_object_get(item, "name");
    if (!json_is_string(k) || strlen(json_string_value(k)) != json_string_length(k))
        return NULL;
    return json_string_value(k);
}

/* Remembers that kind/key was withheld in this session, so a request for it is refused. */
static int mark_withheld(struct engine_session *s, const char *kind, const char *key)
{
    json_t *set = json_object_get(s->withheld, kind);

    if (!set) {
        set = json_object();
        if (!set || json_object_set_new(s->withheld, kind, set))
            return ERR_NOMEM;
    }
    return json_object_set_new(set, key, json_true()) ? ERR_NOMEM : 0;
}

bool engine_item_withheld(const struct engine_session *s, const char *kind, const char *name)
{
    bool pinned_bad = false;

    if (json_object_get(json_object_get(s->withheld, kind), name))
        return true;
    if (json_object_get(s->known, kind))
        return false; /* listed in this session and offered */
    /* Not listed in this session: go by what the last listing found. SECURITY: a pin store
     * error refuses. */
    if (engine__pins_status(&s->engine->pins, s->command, kind, name, &pinned_bad))
        return true;
    return pinned_bad;
}

int engine_discover_items(struct engine_session *s, json_t *result, const char *array_key,
                          const char *kind, unsigned *withheld)
{
    static const char *const item_keys[] = {"name",        "title",    "description", "arguments",
                                            "uriTemplate", "mimeType", "annotations", "icons",
                                            "_meta",       NULL};
    json_t *items = json_object_get(result, array_key);
    json_t *page = json_object();
    int rc;

    *withheld = 0;
    rc = !page                                                        ? ERR_NOMEM
         : !json_is_array(items) || result_aliased(result, array_key) ? ERR_PARSE
                                                                      : ensure_known(s, kind);
    for (size_t i = 0; !rc && i < json_array_size(items);) {
        json_t *item = json_array_get(items, i);
        const char *key = item_key(item, kind);
        char hash[CJSON_HEX_LEN + 1], pinned[CJSON_HEX_LEN + 1];
        enum pin_outcome o = PIN_OUT_CHANGED;

        /* SECURITY: a nameless item, a second one with the same key, or one with a key
         * that differs only in case from one of its fields is never offered. */
        if (key && !json_object_get(page, key) && !engine__folded_alias(item, item_keys)) {
            rc = json_object_set_new(page, key, json_true()) ? ERR_NOMEM : item_hash(item, hash);
            if (!rc)
                rc = check_pin(s, kind, key, hash, &o, pinned);
        }
        if (!rc && state_of(o) == TOOL_OK) {
            rc = annotate(item, hash);
            if (!rc && key)
                json_object_del(json_object_get(s->withheld, kind), key);
            i++;
        } else if (!rc) {
            if (key)
                rc = mark_withheld(s, kind, key);
            json_array_remove(items, i);
            (*withheld)++;
        }
    }
    json_decref(page);
    return rc;
}
