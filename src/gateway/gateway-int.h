/* gateway internals shared between the gateway's files and its tests; not for other modules. */
#ifndef CLAMPD_GATEWAY_INT_H
#define CLAMPD_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>
#include <microhttpd.h>

#include "core/core.h"
#include "engine/engine.h"
#include "gateway/gateway.h"

/* SECURITY: bounds on what a request may carry, checked at the edge. */
#define GW_TOOL_MAX 1024         /* bytes of a tool name */
#define GW_ID_MAX 256            /* bytes of a session_id or server name */
#define GW_KEY_MAX 512           /* bytes of an X-AG-Key header considered at all */
#define GW_MAX_SESSIONS 1024     /* engine sessions kept (LRU) */
#define GW_SESSION_IDLE_S 600    /* a session unused this long is dropped */
#define GW_SESSION_MAX_TOOLS 256 /* claimed tools cached per session before it is cleared */
#define GW_CODE_MAX 48
#define GW_MSG_MAX 512

enum gw_route {
    GW_R_NONE = 0,
    GW_R_PROXY,
    GW_R_VERIFY,
    GW_R_SCAN_INPUT,
    GW_R_SCAN_OUTPUT,
    GW_R_HEALTH,
    GW_R_METRICS,
    GW_R_JWKS,
    GW_R__COUNT
};

struct gw__route_info {
    const char *path;
    const char *method;
    bool auth;        /* needs X-AG-Key (GW_R_METRICS: unless metrics_public) */
    bool body;        /* reads a JSON body */
    const char *name; /* metric label */
};

/* The route for path, and 0, 404 (no such path) or 405 (not this method) in *status. */
enum gw_route gw__route(const char *method, const char *path, int *status);
const struct gw__route_info *gw__route_info(enum gw_route r);

/* A request that cannot be served: the HTTP status and the body's error_code and error. */
struct gw__error {
    int status;
    char code[GW_CODE_MAX];
    char msg[GW_MSG_MAX];
};

/* POST /v1/proxy and /v1/verify: {tool, params?, tool_descriptor_hash, prompt_context?,
 * session_id?, server?}. Slices point into the body, which must outlive the request. */
struct gw__call_req {
    char tool[GW_TOOL_MAX + 1];
    const char *params; /* raw JSON of params (an object), or NULL when absent or null */
    size_t params_len;
    char hash[65]; /* lowercase */
    char session_id[GW_ID_MAX + 1];
    char server[GW_ID_MAX + 1];
    bool has_prompt_context;
};

/* POST /v1/scan-input {text | arguments, tool?} and /v1/scan-output {text | result, tool?}. */
struct gw__scan_req {
    char *text; /* decoded, malloc'd (NUL-terminated, may hold NULs: text_len), or NULL */
    size_t text_len;
    const char *object; /* raw JSON of the arguments object (scan-input) or of the
                         * CallToolResult (scan-output), or NULL */
    size_t object_len;
    char tool[GW_TOOL_MAX + 1]; /* "" when absent */
};

/* Parse body[0..len) (untrusted) into *out. Accept exactly one JSON object (RFC 8259,
 * UTF-8, nesting bounded) with only the members above, each once, of the right type and
 * within bounds. Reject everything else into *err (422 with invalid_json, unknown_field,
 * duplicate_field, missing_field, invalid_field). Return 0 or a negative error. A failed
 * gw__parse_scan() leaves nothing to free; a successful one is freed with
 * gw__scan_req_deinit(). */
int gw__parse_call(const char *body, size_t len, struct gw__call_req *out, struct gw__error *err);
int gw__parse_scan(const char *body, size_t len, bool output, struct gw__scan_req *out,
                   struct gw__error *err);
void gw__scan_req_deinit(struct gw__scan_req *r);

/* The HTTP status of a decision: 409 descriptor_hash_mismatch, 429 rate_limited, 503
 * rate_limit_unavailable, 500 for a verdict whose scope token is still pending (SECURITY:
 * never answered as an allow), else 200 (allow, flag and every other deny are answered as
 * data with allowed false). */
int gw__decision_status(const struct engine_verdict *v);

/* "allow", "flag" or "deny". */
const char *gw__action(enum verdict v);

/* The agent whose API key is key (the X-AG-Key header; NULL when absent): the key's
 * SHA-256 looked up with pol_agent_by_key() (constant time). NULL for no or a wrong key. */
const char *gw__authenticate(const struct pol *p, const char *key);

/* A fresh request id (32 lowercase hex) for answers the engine did not make. */
void gw__request_id(char out[ENGINE_REQID_LEN + 1]);

/* Appends s to out as one single-quoted POSIX shell word, without truncation. */
int gw__shell_word(struct dbuf *out, const char *s);

/* ---- sessions (sessions.c): used only under the gateway lock ---- */
struct gw__sessions;
struct gw__sessions *gw__sessions_new(struct engine *e);
void gw__sessions_free(struct gw__sessions *t);
/* The session of (agent, server, session_id), created on first use (its pins are those of
 * "clampd-gateway --agent A --server S"); the least recently used one is dropped when
 * GW_MAX_SESSIONS are held, and idle ones after GW_SESSION_IDLE_S. NULL on allocation
 * failure. */
struct engine_session *gw__sessions_get(struct gw__sessions *t, const char *agent,
                                        const char *server, const char *session_id, int64_t now_ms);
size_t gw__sessions_count(const struct gw__sessions *t);

/* ---- metrics (metrics.c) ---- */
enum gw_stage {
    GW_ST_AUTH = 0,
    GW_ST_CLAIM,
    GW_ST_DECIDE,
    GW_ST_TOKEN, /* a deferred scope token, minted outside the lock */
    GW_ST_SCAN_INPUT,
    GW_ST_SCAN_OUTPUT,
    GW_ST_REQUEST,
    GW_ST__COUNT
};
#define GW_LAT_BUCKETS 12
#define GW_STATUS_SLOTS 16

struct gw__metrics {
    atomic_ullong decisions[3][2];                       /* [verdict][dry run] */
    atomic_ullong lat[GW_ST__COUNT][GW_LAT_BUCKETS + 1]; /* cumulative at print time */
    atomic_ullong lat_sum_ns[GW_ST__COUNT];
    atomic_ullong lat_count[GW_ST__COUNT];
    atomic_ullong auth_fail[2]; /* [0] no key, [1] wrong key */
    atomic_ullong status[GW_STATUS_SLOTS];
    atomic_ullong scans[2][3]; /* [output][verdict] */
    json_t *rule_hits;         /* rule id -> count; under the gateway lock */
    json_t *deny_codes;        /* error_code -> count; under the gateway lock */
};

int gw__metrics_init(struct gw__metrics *m);
void gw__metrics_deinit(struct gw__metrics *m);
void gw__metrics_latency(struct gw__metrics *m, enum gw_stage st, uint64_t ns);
void gw__metrics_status(struct gw__metrics *m, int status);
/* Counts a verdict and its rules (call under the gateway lock): gw__metrics_count(),
 * gw__metrics_rules() and gw__metrics_deny_code() together. */
void gw__metrics_verdict(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run);
/* The verdict counter alone (atomic: any thread). */
void gw__metrics_count(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run);
/* The rules that matched (call under the gateway lock). */
void gw__metrics_rules(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run);
/* A deny's error code (call under the gateway lock); nothing for an allow or a dry run. */
void gw__metrics_deny_code(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run);
/* Counts a scan's verdict and rules (call under the gateway lock). */
void gw__metrics_scan(struct gw__metrics *m, const struct engine_verdict *v, bool output);
/* The Prometheus text exposition (call under the gateway lock); sessions is a gauge. */
int gw__metrics_emit(struct gw__metrics *m, size_t sessions, struct dbuf *out);

/* ---- the server (server.c) and its routes (routes.c) ---- */

struct gw {
    struct gw_config cfg;
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;          /* the engine, its pins and limiter, sessions, keyed metrics */
    struct gw__sessions *sessions; /* under lock */
    struct engine_session *scan;   /* the scan routes' session, under lock */
    struct gw__metrics metrics;
    atomic_uint connections; /* open connections */
    uint16_t port;
    char address[96];
};

/* One HTTP request's state, from its headers to its answer. */
struct gw__req {
    enum gw_route route;
    const char *agent; /* authenticated agent (owned by the policy), or NULL */
    struct dbuf body;  /* capped at cfg.max_body */
    bool too_big, nomem;
    size_t discarded; /* body bytes dropped past the cap */
    uint64_t t0_ns;
    char request_id[ENGINE_REQID_LEN + 1]; /* of the answer, for the log */
    const char *action;                    /* of a decision, for the log (static), or NULL */
    char code[GW_CODE_MAX];                /* error code of the answer, for the log, or "" */
};

/* An answer: status, a malloc'd body and its type. */
struct gw__reply {
    int status;
    char *body;
    size_t len;
    const char *content_type;
    long retry_after_s; /* > 0: a Retry-After header */
};

/* Fills rep with {error, error_code, request_id} (and the id into r->request_id). */
void gw__reply_error(struct gw__req *r, struct gw__reply *rep, int status, const char *code,
                     const char *msg);
/* Runs the route of a request whose headers passed routing and authentication and whose
 * body (if any) is complete and within the cap. Always fills rep. */
void gw__handle(struct gw *g, struct gw__req *r, struct gw__reply *rep);

#endif
