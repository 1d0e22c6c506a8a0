/*
 * claim: the descriptor stage's input in gateway mode.
 *
 * In-process, discovery sees every tools/list and records the session's tool set. A gateway
 * sees no tools/list: the agent's proxy tells it the contract hash of the tool it is calling
 * (tool_descriptor_hash). That claim is checked against the same pin store, keyed by the
 * session's command (the gateway names it after the agent and the server), and the tool
 * enters the session's tool set exactly as discovery would have put it there, so that
 * check_descriptor() in decide.c judges it: no second implementation of the check.
 *
 *   claim(tool, hash) ──▶ pins.db (first use pins; a new hash marks it changed) ──▶ s->tools
 */
#include "engine/engine-int.h"

#include <string.h>

static bool is_lower_hex64(const char *h)
{
    size_t n = 0;

    for (; h[n]; n++)
        if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')))
            return false;
    return n == CJSON_HEX_LEN;
}

/* The state a dry run reads from the pin without writing (pins.c's pin_compare() rules). */
static int lookup_state(struct engine_session *s, const char *tool, const char *hash,
                        enum tool_state *st, char pinned[CJSON_HEX_LEN + 1])
{
    bool found, withheld;
    int rc =
        engine__pins_lookup(&s->engine->pins, s->command, "tool", tool, &found, pinned, &withheld);

    if (rc)
        return rc;
    if (!found) {
        memcpy(pinned, hash, CJSON_HEX_LEN + 1); /* first use would pin it */
        *st = TOOL_OK;
    } else if (strcmp(pinned, hash) == 0) {
        *st = TOOL_OK; /* a changed pin whose approved form came back is pinned again */
    } else {
        *st = withheld && !pinned[0] ? TOOL_HELD : TOOL_CHANGED;
    }
    return 0;
}

static int check_state(struct engine_session *s, const char *tool, const char *hash,
                       enum tool_state *st, char pinned[CJSON_HEX_LEN + 1])
{
    enum pin_outcome o;
    int rc = engine__pins_check(&s->engine->pins, s->command, s->server, "tool", tool, hash, false,
                                &o, pinned);

    if (rc)
        return rc;
    *st = o == PIN_OUT_MATCH || o == PIN_OUT_NEW ? TOOL_OK
          : o == PIN_OUT_NEW_HELD                ? TOOL_HELD
                                                 : TOOL_CHANGED;
    if (o == PIN_OUT_NEW)
        clog_info("pinned tool '%.128s' for %.300s: %.16s", tool, s->command, hash);
    else if (o == PIN_OUT_CHANGED)
        clog_warn("RUG PULL: tool '%.128s' for %.300s claimed with hash %s, pinned %s; denied"
                  " until approved (clampd tools approve)",
                  tool, s->command, hash, pinned);
    return 0;
}

int engine_session_claim_tool(struct engine_session *s, const char *tool, const char *hash,
                              bool dry_run)
{
    json_t *entry = json_object_get(s->tools, tool), *fresh;
    char pinned[CJSON_HEX_LEN + 1];
    enum tool_state st;
    int rc;

    if (!is_lower_hex64(hash))
        return ERR_INVAL;
    /* A tool already pinned in this session with this very hash needs no store round trip;
     * any other state is read again, so that an approval takes effect at the next call. */
    if (entry && !json_is_true(json_object_get(entry, "dry")) &&
        json_integer_value(json_object_get(entry, "state")) == TOOL_OK &&
        strcmp(json_string_value(json_object_get(entry, "hash")), hash) == 0)
        return 0;
    if (!entry && json_object_size(s->tools) >= CLAMPD_MAX_TOOLS)
        return ERR_TOO_BIG; /* SECURITY: bounded per session; the caller denies */
    rc = dry_run ? lookup_state(s, tool, hash, &st, pinned)
                 : check_state(s, tool, hash, &st, pinned);
    if (rc) {
        clog_error("pin store: %s",
                   s->engine->pins.db ? sqlite3_errmsg(s->engine->pins.db) : "none");
        json_object_del(s->tools, tool); /* SECURITY: no stale state judges the call */
        return rc;
    }
    fresh = json_pack("{s:s, s:s, s:i, s:s, s:b}", "hash", hash, "pinned", pinned, "state", (int)st,
                      "what", "contract", "dry", dry_run);
    if (!fresh || json_object_set_new(s->tools, tool, fresh)) {
        json_object_del(s->tools, tool);
        return ERR_NOMEM;
    }
    return 0;
}
