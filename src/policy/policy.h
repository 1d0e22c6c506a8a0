/*
 * policy: who may call what (shared/DESIGN.md §4 "Policy").
 *
 *   policy.yaml ──pol_load()──▶ struct pol (immutable, shared by reference)
 *
 *   (agent, server, tool) ──pol_tool_category()──▶ category or none ("tool_not_classified")
 *   (agent, category)     ──pol_agent_allows()───▶ the scopes the agent lacks, if any
 *
 * A policy names agents (id, optional SHA-256 of their API key, granted scopes, rate
 * limits), categories (name → required scopes), tool mappings (server glob + tool globs →
 * category, first match wins), risk thresholds, per-finding actions and the fail mode.
 * Loading is strict: an unknown key, a duplicate, a mapping to an undefined category or a
 * scope with characters outside [a-z0-9:._*-] stops the load with "file:line: what".
 */
#ifndef CLAMPD_POLICY_H
#define CLAMPD_POLICY_H

#include "core/core.h"

#define POL_MAX_ITEMS 4096 /* agents, categories, mappings, scopes per list */
#define POL_NAME_MAX 128
#define POL_MAX_BUCKETS 65536 /* agent and agent+tool buckets one limiter keeps */

enum pol_action { POL_ACTION_DEFAULT = 0, POL_ACTION_REDACT, POL_ACTION_FLAG, POL_ACTION_BLOCK };

enum pol_fail_mode { POL_FAIL_CLOSED = 0, POL_FAIL_OPEN };

struct pol_rate {
    double calls_per_minute;      /* per agent; 0: no limit */
    double burst;                 /* bucket size (default: calls_per_minute / 6, at least 1) */
    double tool_calls_per_minute; /* per agent and tool; 0: no limit (burst likewise) */
    double bytes_per_minute;      /* of arguments, per agent; 0: no limit */
};

/* Token buckets (the rate-limit stage): per agent, per agent and tool, and argument bytes
 * per agent. Owned by one thread (the proxy's loop, or a gateway worker with its own).
 * pol_limiter_take() charges one call of len argument bytes at now_ms; on refusal it
 * returns false and writes the milliseconds until a retry could pass, and which limit. */
struct pol_limiter;
struct pol_limiter *pol_limiter_new(void);
void pol_limiter_free(struct pol_limiter *l);
bool pol_limiter_take(struct pol_limiter *l, const struct pol_rate *r, const char *agent,
                      const char *tool, size_t len, int64_t now_ms, int64_t *retry_ms,
                      const char **which);
/* pol_limiter_take() without taking: whether the call would pass now; nothing is changed
 * (a dry run, the gateway's /v1/verify). */
bool pol_limiter_peek(const struct pol_limiter *l, const struct pol_rate *r, const char *agent,
                      const char *tool, size_t len, int64_t now_ms, int64_t *retry_ms,
                      const char **which);

/* ---- shared buckets in Redis (limit_redis.c; `clampd gateway --redis URL`) ----
 * With a store, a limiter's buckets live in Redis: every replica pointed at the same
 * Redis limits an agent together. now_ms is then ignored: Redis' TIME is the clock. A
 * call the store cannot answer is refused with *retry_ms POL_RETRY_UNAVAILABLE (and a
 * which naming the store), unless the store was made fail_open (policy fail_mode: open). */
#define POL_RETRY_UNAVAILABLE (-2)

struct pol_redis;
/* Parses url ("redis://[:PASS@]HOST[:PORT][/DB]" or "unix:/PATH"); password (may be NULL)
 * is used when the URL holds none. Does not connect (the first call does). Returns 0 and
 * *out, or ERR_INVAL with a malloc'd message (never holding the password) in *errmsg, or
 * ERR_NOMEM. The password is kept in sodium_malloc memory and never logged. */
int pol_redis_new(const char *url, const char *password, bool fail_open, struct pol_redis **out,
                  char **errmsg);
/* Closes the connection; NULL is a no-op. Free it after the limiters that use it. */
void pol_redis_free(struct pol_redis *r);
/* Connects now if not connected (PING-like, for start-up). Returns 0 or ERR_IO. */
int pol_redis_ping(struct pol_redis *r);
/* Makes every limiter pol_limiter_new() creates from now on keep its buckets in r (not
 * owned; NULL: back to memory). Process-wide: call once at start-up, before the engine is
 * made. SECURITY: r holds one connection: its limiters must be used by one thread at a
 * time (the gateway's lock), as pol_limiter_take() already requires. */
void pol_limiter_use_redis(struct pol_redis *r);

struct pol;

/* Loads the policy file path. On failure returns a negative error and a malloc'd
 * "path:line: what" in *errmsg (caller frees). */
int pol_load(const char *path, struct pol **out, char **errmsg);
void pol_free(struct pol *p);

/* The category the tool maps to on server (serverInfo.name; "" if unknown): the first
 * mapping whose server glob and one of whose tool globs match (fnmatch, case-sensitive for
 * tools as MCP names are). NULL: the tool is not classified. */
const char *pol_tool_category(const struct pol *p, const char *server, const char *tool);

/* Is agent_id defined? */
bool pol_has_agent(const struct pol *p, const char *agent_id);

/* Checks that agent_id holds every scope category requires (a granted scope "fs:*" covers
 * "fs:read"; "*" covers all). Returns true if so; otherwise writes the first missing
 * scope into missing (cap bytes; "" when the agent itself is unknown) and returns false. */
bool pol_agent_allows(const struct pol *p, const char *agent_id, const char *category,
                      char *missing, size_t cap);

/* The agent's rate limits (zeros when none or the agent is unknown). */
struct pol_rate pol_agent_rate(const struct pol *p, const char *agent_id);

/* The agent whose API key hashes to key_sha256_hex (64 lowercase hex), compared in
 * constant time against every agent; NULL if none. */
const char *pol_agent_by_key(const struct pol *p, const char *key_sha256_hex);

/* Thresholds (defaults 0.7 and 0.4), fail mode, and the action for findings of a rule
 * category (e.g. "pii"): POL_ACTION_DEFAULT when the policy says nothing. */
double pol_deny_risk(const struct pol *p);
double pol_flag_risk(const struct pol *p);
enum pol_fail_mode pol_fail_mode(const struct pol *p);
enum pol_action pol_finding_action(const struct pol *p, const char *category);

/* The scopes category requires, space-separated (RFC 6749 scope syntax), into out (cap
 * bytes). Returns false for an unknown category or when they do not fit. */
bool pol_category_scopes(const struct pol *p, const char *category, char *out, size_t cap);

/* Iterates the categories (for `clampd tools list` and the dashboard). */
size_t pol_category_count(const struct pol *p);
const char *pol_category_name(const struct pol *p, size_t i);

#endif
