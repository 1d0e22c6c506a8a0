/* engine internals shared between the engine's files; not for other modules. */
#ifndef CLAMPD_ENGINE_INT_H
#define CLAMPD_ENGINE_INT_H

#include <sqlite3.h>

#include "engine/engine.h"

enum pin_outcome {
    PIN_OUT_MATCH = 0, /* hash equals the pin */
    PIN_OUT_NEW,       /* first seen: pinned now */
    PIN_OUT_NEW_HELD,  /* first seen on a known server in strict mode: held for approval */
    PIN_OUT_CHANGED,   /* differs from the pin: a rug pull until approved */
};

struct engine__pins {
    sqlite3 *db;
    sqlite3_stmt *get, *insert, *update_seen, *mark;
};

struct engine {
    char reqid_prefix[17]; /* random per process: request ids are prefix + counter */
    uint64_t reqid_seq;
    char *state_dir;
    char *agent_id;
    enum pin_mode pin_mode;
    struct engine__pins pins;
    const struct insp_ruleset *rules;
    double deny_risk, flag_risk;
    bool offer_poisoned;
    const struct pol *policy;
    struct pol_limiter *limiter; /* with a policy: the agents' token buckets */
    const struct tok_keyring *keys;
    long token_ttl;
    struct insp_scratch *shared_scratch; /* of the sessions from engine_session_new_shared() */
};

enum tool_state { TOOL_OK = 0, TOOL_CHANGED, TOOL_HELD, TOOL_POISONED };

struct engine_session {
    struct engine *engine;
    struct insp_scratch *scratch; /* this session's Hyperscan scratch (NULL without rules) */
    char *command;
    char *agent_id;   /* the agent its calls are judged for; NULL: the engine's */
    bool shared;      /* scratch is the engine's shared_scratch, not owned */
    char *server;     /* serverInfo.name, "" until known */
    json_t *tools;    /* name -> {"hash": s, "pinned": s, "state": i}, withheld ones too */
    json_t *withheld; /* kind -> {name -> true}: prompts and templates withheld this session */
    json_t *known;    /* kind -> true/false: had the server pins of that kind before this
                       * session? (absent: not asked yet) */
};

int engine__pins_open(struct engine__pins *p, const char *path, bool create, char **errmsg);
void engine__pins_close(struct engine__pins *p);
/* Has the (command, server) pair any pin at all? */
int engine__pins_server_known(struct engine__pins *p, const char *command, const char *server,
                              const char *kind, bool *known);
/* Checks hash against the pin of (command, server, kind, name), pinning first use.
 * pinned receives the approved hash ("" for a new held item). */
int engine__pins_check(struct engine__pins *p, const char *command, const char *server,
                       const char *kind, const char *name, const char *hash, bool hold_new,
                       enum pin_outcome *out, char pinned[CJSON_HEX_LEN + 1]);

/* Reads the pin of (command, kind, name) without writing: *found, its approved hash into
 * pinned ("" if none) and whether it is marked changed or pending (*withheld). */
int engine__pins_lookup(struct engine__pins *p, const char *command, const char *kind,
                        const char *name, bool *found, char pinned[CJSON_HEX_LEN + 1],
                        bool *withheld);

/* The agent the session's calls are judged for. */
const char *engine__agent(const struct engine_session *s);

/* Is the pin of (command, kind, name) marked changed or pending? (false if there is none) */
int engine__pins_status(struct engine__pins *p, const char *command, const char *kind,
                        const char *name, bool *withheld);

/* Returns the first key of obj that is not one of names (a NULL-terminated list of exact
 * keys) but equals one of them under case-insensitive matching, or NULL. */
const char *engine__folded_alias(const json_t *obj, const char *const *names);

/* Writes s into out (cap bytes) as one single-quoted POSIX shell word, control characters
 * replaced by '?', truncated to fit; returns out. */
const char *engine__shq(const char *s, char *out, size_t cap);
#define ENGINE_SHQ_MAX 300

/* classify.c: scans the strings of a JSON value (raw bytes: arguments) or of a jansson
 * value (a tool's description and schema) with the rules of target, adding the matched
 * rules to v (rule_ids, risk = the highest rule risk). tool (NULL: unknown) and, for
 * arguments, each leaf's field select the rules whose scope applies. Returns 0 or a
 * negative error (SECURITY: the caller denies on error). */
int engine__classify_raw(struct engine_session *s, int target, const char *tool, const char *json,
                         size_t len, struct engine_verdict *v);
int engine__classify_json(struct engine_session *s, int target, const char *tool,
                          const json_t *value, struct engine_verdict *v);

/* Writes a new request id (32 hex: a random per-process prefix and a counter). */
void engine__request_id(struct engine_session *s, char out[ENGINE_REQID_LEN + 1]);

/* Formats "pins.db" inside dir; returns a malloc'd path or NULL. */
char *engine__path(const char *dir, const char *file);

#endif
