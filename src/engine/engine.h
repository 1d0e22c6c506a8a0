/*
 * engine: the stages of a call's life, with no knowledge of transports.
 *
 *   tools/list result ──engine_discover_tools()──▶ hashed, pinned, annotated, withheld
 *   tools/call        ──engine_decide()──────────▶ verdict (+ typed denial)
 *
 * struct engine is built once (configuration, pin store) and shared by reference;
 * struct engine_session is one MCP session's private state (its server identity and
 * its current tool set). The proxy (or the gateway) owns both.
 */
#ifndef CLAMPD_ENGINE_H
#define CLAMPD_ENGINE_H

#include <jansson.h>

#include "core/core.h"
#include "json/json.h"

/* SECURITY: the zero value denies, so a verdict nobody set is a DENY. */
enum verdict { VERDICT_DENY = 0, VERDICT_FLAG = 1, VERDICT_ALLOW = 2 };

enum pin_mode {
    PIN_MODE_TOFU = 0,  /* first use pins; a new tool on a known server is pinned and reported */
    PIN_MODE_STRICT = 1 /* a new tool on a known server is held back until approved */
};

struct insp_ruleset;
struct pol;
struct tok_keyring;

struct engine_config {
    const char *state_dir; /* holds pins.db; must exist. NULL: no pin store, for offline
                            * inspection (engine_inspect_*) only: discovery fails */
    const char *agent_id;  /* the local agent's id */
    enum pin_mode pin_mode;
    const struct insp_ruleset *rules; /* compiled rule packs (shared, not owned; must outlive
                                       * the engine), or NULL for no rule inspection */
    double deny_risk;                 /* a rule hit at or above this risk denies (default 0.7) */
    double flag_risk;                 /* ... at or above this flags the call (default 0.4) */
    bool offer_poisoned;      /* a poisoned tool is offered with its findings in _meta instead of
                               * withheld, and its calls are judged like any other's */
    const struct pol *policy; /* the policy (shared, not owned; must outlive the engine), or
                               * NULL: the local agent may call every tool it pinned. With a
                               * policy, a tool must map to a category whose scopes the
                               * agent holds, the agent's rate limits apply, and the
                               * policy's thresholds replace deny_risk/flag_risk. */
    const struct tok_keyring *keys; /* signs a scope token for every allowed call (shared,
                                     * not owned), or NULL: no tokens */
    long token_ttl;                 /* seconds (0: 60) */
};

struct engine;
struct engine_session;

/* Opens the pin store in cfg->state_dir. On failure returns a negative enum clampd_err and
 * a malloc'd message in *errmsg (caller frees). The engine copies what it keeps of cfg. */
int engine_new(const struct engine_config *cfg, struct engine **out, char **errmsg);
void engine_free(struct engine *e);

/* A session for the downstream started with command (the identity pins are keyed by, with
 * the server's own name once known). Returns NULL on allocation failure. */
struct engine_session *engine_session_new(struct engine *e, const char *command);
void engine_session_free(struct engine_session *s);

/* Records serverInfo.name from the initialize result (NULL or "" if it has none). */
void engine_session_set_server(struct engine_session *s, const char *server_name);
const char *engine_session_server(const struct engine_session *s);

/* ---- gateway mode: one engine, many agents, no tools/list ----
 *
 *   gateway ──engine_session_new_shared()──▶ a session without its own scan scratch
 *           ──engine_session_set_agent()────▶ the agent its calls are judged for
 *           ──engine_session_claim_tool()───▶ the descriptor hash the agent's proxy saw,
 *                                             checked against (and pinned in) pins.db
 *           ──engine_decide_ex()────────────▶ the same pipeline as engine_decide()
 */

/* Like engine_session_new(), but the session scans with one scratch shared by every such
 * session of e instead of its own (about 200 KB each): SECURITY: the caller must then
 * never run two calls on sessions of e at the same time (the gateway holds one lock
 * around the engine). Returns NULL on allocation failure. */
struct engine_session *engine_session_new_shared(struct engine *e, const char *command);

/* Judges this session's calls as agent_id's (rate limits, scopes, the token's sub) instead
 * of the engine's agent. Returns 0 or ERR_NOMEM (then the session keeps its old agent). */
int engine_session_set_agent(struct engine_session *s, const char *agent_id);
const char *engine_session_agent(const struct engine_session *s);

/* Gateway mode's descriptor stage input: the contract hash (64 lowercase hex) of tool as
 * the caller's proxy saw it in tools/list. Checked against the pin of (the session's
 * command, "tool", tool) as discovery checks a listed tool: first use pins it, a different
 * hash marks the pin changed (a rug pull until `clampd tools approve`), and the tool enters
 * the session's tool set in that state, so that engine_decide_ex() allows it or denies it
 * with descriptor_hash_mismatch. With dry_run nothing is written: a tool never seen is
 * judged as if it were pinned now. Returns 0, ERR_INVAL (hash not 64 lowercase hex),
 * ERR_TOO_BIG (CLAMPD_MAX_TOOLS tools in the session) or ERR_DB / ERR_STATE (pin store);
 * SECURITY: on error the caller must deny the call. */
int engine_session_claim_tool(struct engine_session *s, const char *tool, const char *hash,
                              bool dry_run);

/* ---- discover ---- */

struct engine_discovery {
    unsigned listed;   /* tools in this page */
    unsigned offered;  /* tools passed on to the client */
    unsigned new_pins; /* tools pinned for the first time */
    unsigned changed;  /* tools whose hash differs from the pin (rug pulls): withheld */
    unsigned held;     /* new tools held back by strict pin mode: withheld */
    unsigned invalid;  /* entries that are not a tool (no string name): withheld */
    unsigned poisoned; /* tools whose description matches the rules: withheld */
};

/* Processes one page of a tools/list result in place: computes each tool's contract hash,
 * checks and records its pin, adds _meta["clampd/contract_hash"], removes tools that must
 * be withheld, and records the offered tools as the session's current tool set (a first
 * page, i.e. a listing requested without a cursor, replaces the set; later pages extend
 * it). result must be the JSON-RPC "result" object. Returns 0, or a negative error when the
 * result is malformed or the pin store fails: SECURITY: the caller must then not pass the
 * result on. */
int engine_discover_tools(struct engine_session *s, json_t *result, bool first_page,
                          struct engine_discovery *rep);

/* Drops the session's tool set: after a failed re-listing nothing is callable until the
 * next successful listing. */
void engine_session_clear_tools(struct engine_session *s);
/* The number of tools in the session's tool set (withheld ones included). */
size_t engine_session_tool_count(const struct engine_session *s);

/* A digest of the session's tool set (names, hashes, states): equal digests mean the set
 * did not change. Returns 0 or a negative error. */
int engine_session_tools_digest(const struct engine_session *s, char hex[CJSON_HEX_LEN + 1]);

/* Pins the other things a server offers the model: the initialize result's
 * "instructions" (kind "instructions"), and pages of prompts/list ("prompts", kind
 * "prompt") and resources/templates/list ("resourceTemplates", kind "resource_template").
 * Changed items are removed from result (withheld) and logged. Returns 0 or a negative
 * error (the caller must then not pass the result on). */
int engine_discover_instructions(struct engine_session *s, json_t *init_result);
int engine_discover_items(struct engine_session *s, json_t *result, const char *array_key,
                          const char *kind, unsigned *withheld);

/* Was the item kind/name (e.g. "prompt"/"summarise") withheld from this session because
 * it changed since it was pinned (or is held in strict mode)? A request for it (prompts/get)
 * must then be refused. */
bool engine_item_withheld(const struct engine_session *s, const char *kind, const char *name);

/* ---- decide ---- */

#define ENGINE_CODE_MAX 48
#define ENGINE_REASON_MAX 1024
#define ENGINE_REQID_LEN 32

#define ENGINE_MAX_HITS 16
#define ENGINE_TOKEN_MAX 4096 /* a scope token, NUL included */
#define ENGINE_SUB_MAX 256    /* a token's sub (agent id), NUL included: CLAMPD_TOKEN_MAX_SUB + 1 */
#define ENGINE_SCOPE_MAX 1024 /* a token's scope string, NUL included */

/* What the scope token of a deferred allow needs beyond the engine's immutable key ring
 * and ttl: copied out of the session and the policy by engine_decide_ex() under the
 * caller's lock. The call pointers identify the judged call (compared, never read). */
struct engine_token_req {
    char sub[ENGINE_SUB_MAX];
    char scope[ENGINE_SCOPE_MAX];
    const char *tool;
    const char *arguments;
    size_t arguments_len;
};

struct engine_verdict {
    enum verdict verdict;
    char error_code[ENGINE_CODE_MAX]; /* "" on allow, else e.g. "descriptor_hash_mismatch" */
    char reason[ENGINE_REASON_MAX];   /* one line a person can act on */
    double risk;                      /* 0..1 */
    char request_id[ENGINE_REQID_LEN + 1];
    const char *rule_ids[ENGINE_MAX_HITS]; /* rules that matched (owned by the ruleset) */
    size_t n_rule_ids;
    char scope_token[ENGINE_TOKEN_MAX]; /* allowed with keys: the token for the forwarded
                                         * call's params._meta["clampd/scope_token"]; else "" */
    int64_t retry_ms; /* rate_limited: ms until a retry can pass, -1: never (the call alone is
                       * over the limit); else 0 */
    /* SECURITY: set by ENGINE_DECIDE_DEFER_TOKEN on an allow or flag whose token is not
     * minted yet. Such a verdict is not an answer: only engine_mint_token() clears it
     * (leaving an allow with its token, or a token_error deny); a caller that finds it
     * set must deny. */
    bool token_pending;
    struct engine_token_req token_req; /* with token_pending: what minting needs */
};

/* One tools/call as the edge parsed it (no tree is built for a call on the hot path). */
struct engine_call {
    const char *tool;      /* params.name decoded, NUL-terminated; NULL when absent, not a
                            * string, or too long */
    size_t tool_len;       /* decoded length: differs from strlen(tool) if it holds a NUL */
    const char *arguments; /* raw JSON of params.arguments; NULL when absent */
    size_t arguments_len;
    bool malformed; /* params is not an object, or has a duplicated key or a key that
                     * a case-insensitive server would read as name/arguments/_meta */
};

/* Decides one tools/call. Fills out; every path through it, including internal errors,
 * yields a verdict (DENY on error). Returns 0, or a negative error that was turned into a
 * DENY in out. */
int engine_decide(struct engine_session *s, const struct engine_call *call,
                  struct engine_verdict *out);

enum engine_decide_flags {
    ENGINE_DECIDE_DRY_RUN = 1,         /* judge only: rate limits are checked but not charged,
                                        * and no scope token is minted */
    ENGINE_DECIDE_DESCRIPTOR_ONLY = 2, /* only the call's shape and the descriptor stage (the
                                        * tool is listed and matches its pin): the proxy's
                                        * remote mode, where the gateway runs the rest */
    ENGINE_DECIDE_DEFER_TOKEN = 4      /* every stage, but an allow or flag that needs a scope
                                        * token leaves it unminted with token_pending set:
                                        * the caller mints it with engine_mint_token() after
                                        * releasing its lock (the gateway) */
};

/* The contract hash of tool in this session's tool set, when it is listed and callable (its
 * hash is its pin): what the proxy's remote mode sends the gateway as
 * tool_descriptor_hash. */
bool engine_session_tool_hash(const struct engine_session *s, const char *tool,
                              char hex[CJSON_HEX_LEN + 1]);

/* engine_decide() with flags (a mask of enum engine_decide_flags); engine_decide() is
 * engine_decide_ex(s, call, 0, out). */
int engine_decide_ex(struct engine_session *s, const struct engine_call *call, unsigned flags,
                     struct engine_verdict *out);

/* Mints the scope token of a verdict that engine_decide_ex(..., ENGINE_DECIDE_DEFER_TOKEN, v)
 * left pending, for call, which must be the very engine_call that was decided (the same
 * tool and arguments pointers, still alive and unchanged; SECURITY: a different call is
 * refused, so that a token is only ever minted for the arguments that were judged). Reads
 * only e's key ring and token ttl, which never change after engine_new(), and v: safe to
 * call without the lock that serialises engine_decide_ex(), from several threads at once
 * (each with its own v). Clears v->token_pending in every case. On success v keeps its
 * allow or flag and holds the token in scope_token; on failure v becomes a token_error DENY
 * (the call must not be forwarded) and the error is returned. A verdict that is not pending
 * is left alone (returns 0). */
int engine_mint_token(const struct engine *e, const struct engine_call *call,
                      struct engine_verdict *v);

/* inspect(result): scans the CallToolResult json[0..len) (raw bytes) of a call of tool
 * (NULL: unknown; it selects the rules scoped to tools) with the response rules. When it may pass
 * unchanged, *rewritten is NULL; otherwise *rewritten is a new result to send instead (owned by the
 * caller): the same result with validated PII and secrets replaced by [REDACTED:<type>] and
 * _meta["clampd/redactions"], or a blocked notice (isError, _meta["clampd/denial"].error_code
 * "result_injection") when a rule at the deny risk matched or the result could not be inspected. v
 * says what was found. Returns 0 or a negative error (then *rewritten is NULL and the caller must
 * not pass the result on). */
int engine_inspect_result(struct engine_session *s, const char *tool, const char *json, size_t len,
                          json_t **rewritten, struct engine_verdict *v);

/* ---- offline inspection: `clampd inspect`, `clampd scan`, the gateway's scan routes ----
 * The same stages as above without the session's pins and tool set. Each fills v
 * (verdict by the engine's thresholds, risk, rule ids, reason) and returns 0 or a negative
 * error (then v is a DENY). */

/* The description rules over what the model reads of one MCP Tool object (name,
 * description, input schema, title, annotations...), as discovery scans it: DENY means
 * discovery would withhold the tool as poisoned. */
int engine_inspect_tool(struct engine_session *s, const json_t *tool, struct engine_verdict *v);

/* The rule stage of engine_decide() over the arguments json[0..len) (a JSON object, or
 * NULL) of a call of tool. */
int engine_inspect_arguments(struct engine_session *s, const char *tool, const char *json,
                             size_t len, struct engine_verdict *v);

/* Builds the CallToolResult of a denial (shared/DESIGN.md §3): isError, one text item
 * starting "[clampd] Tool call '<tool>' was BLOCKED.", and _meta["clampd/denial"].
 * Returns a new reference, or NULL on allocation failure. */
json_t *engine_denial_result(const struct engine_verdict *v, const char *tool);

/* ---- pins, for the `clampd tools` commands ---- */

struct engine_pin {
    const char *command;
    const char *server;
    const char *kind;
    const char *name;
    const char *hash;         /* the approved hash */
    const char *pending_hash; /* the changed or not yet approved hash, or NULL */
    const char *status;       /* "pinned", "changed" or "pending" */
    int64_t first_seen_ms, last_seen_ms;
};

typedef int (*engine_pin_fn)(void *ctx, const struct engine_pin *pin);

/* Opens the pin store of state_dir without creating anything (for the CLI). */
int engine_pins_each(const char *state_dir, engine_pin_fn fn, void *ctx, char **errmsg);
#define ENGINE_APPROVE_MAX_HASHES 4

/* What `clampd tools approve` accepts: the pending hashes of the items called name on the
 * server that reports itself as server, optionally of one downstream command only, and
 * (when hashes are given) only rows whose own pending hash starts with one of them. */
struct engine_approval {
    const char *server, *name;
    const char *command;                           /* NULL: any command */
    const char *hashes[ENGINE_APPROVE_MAX_HASHES]; /* hex prefixes */
    size_t n_hashes;                               /* 0: every pending row of server/name */
};

/* Returns the number of pins approved (>= 0) or a negative error. */
int engine_pins_approve(const char *state_dir, const struct engine_approval *a, char **errmsg);
/* Removes the pins of server/name; name NULL removes all of the server's pins. */
int engine_pins_revoke(const char *state_dir, const char *server, const char *name, char **errmsg);

#endif
