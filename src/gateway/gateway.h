/*
 * gateway: `clampd gateway`, the HTTP face of the engine (shared/DESIGN.md §3 "gateway
 * wire protocol"; docs/gateway.md has every route, shape and status).
 *
 *   HTTP (libmicrohttpd, a pool of worker threads)
 *     ├─ route + method ────────────── 404 / 405
 *     ├─ connections over the limit ── 503
 *     ├─ X-AG-Key ─SHA-256─▶ pol_agent_by_key() ── 401
 *     ├─ body (capped) ─gw__parse_*()─▶ typed request ── 413 / 422
 *     ├─ one lock ─▶ session (agent, server, session_id) ─▶ engine_session_claim_tool()
 *     │                                                   ─▶ engine_decide_ex()
 *     └─ unlocked ─▶ engine_mint_token() (an allow's scope token) ─▶ JSON
 *
 * The engine is the in-process proxy's: no check is implemented twice. SECURITY: the
 * engine, its pin store, its rate limiter and the gateway's sessions are used under one
 * mutex (engine_session_new_shared() needs it); the HTTP work around it and the Ed25519
 * signature of an allowed call's token (the key ring is immutable) run in parallel.
 */
#ifndef CLAMPD_GATEWAY_H
#define CLAMPD_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;
struct pol;
struct tok_keyring;
struct insp_ruleset;

#define GW_DEFAULT_MAX_BODY (1024u * 1024u)
#define GW_DEFAULT_MAX_CONNECTIONS 256u
#define GW_DEFAULT_TIMEOUT 30u
#define GW_DEFAULT_THREADS 2u

struct gw_config {
    const char *listen;               /* "HOST:PORT" or "[V6]:PORT"; port 0 picks one */
    struct engine *engine;            /* shared, not owned; used only under the gateway lock
                                       * (but engine_mint_token(), which needs none) */
    const struct pol *policy;         /* required: agents and their key hashes */
    const struct tok_keyring *keys;   /* for /.well-known/jwks.json (shared, not owned) */
    const struct insp_ruleset *rules; /* for rule-hit metrics (shared, not owned) */
    size_t max_body;                  /* request body cap (0: GW_DEFAULT_MAX_BODY) */
    unsigned max_connections;         /* above it: 503 (0: default) */
    unsigned timeout_s;               /* idle connection timeout (0: default) */
    unsigned threads;                 /* worker threads (0: default) */
    bool metrics_public;              /* GET /metrics without a key */
};

struct gw;

/* Checks that listen is "HOST:PORT" with a host that resolves, before anything is loaded.
 * Returns 0, or ERR_INVAL with a malloc'd message in *errmsg (caller frees). */
int gw_listen_check(const char *listen, char **errmsg);

/* Binds cfg->listen and starts serving in the background. Returns 0 and *out, or a
 * negative enum clampd_err with a malloc'd message in *errmsg (caller frees). */
int gw_new(const struct gw_config *cfg, struct gw **out, char **errmsg);

/* The bound port (useful with port 0) and address text ("127.0.0.1:8700"), owned by g. */
uint16_t gw_port(const struct gw *g);
const char *gw_address(const struct gw *g);

/* Stops serving (in-flight requests finish), frees everything; NULL is a no-op. */
void gw_free(struct gw *g);

#endif
