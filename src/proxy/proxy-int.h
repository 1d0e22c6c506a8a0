/* proxy internals shared between its files. */
#ifndef CLAMPD_PROXY_INT_H
#define CLAMPD_PROXY_INT_H

#include <jansson.h>
#include <uv.h>

#include "jsonrpc/jsonrpc.h"
#include "proxy/proxy.h"
#include "transport/transport.h"

/* What a client request is, so that its answer can be intercepted. */
enum pending_kind {
    PK_OTHER = 0,
    PK_INITIALIZE,
    PK_TOOLS_LIST,      /* params carried no cursor: a new listing */
    PK_TOOLS_LIST_PAGE, /* params carried a cursor: a later page */
    PK_TOOLS_CALL,
    PK_PROMPTS_LIST,
    PK_TEMPLATES_LIST,
};

/* Why clampd lists tools on its own. */
enum relist_reason {
    RELIST_NOTIFIED, /* the server sent notifications/tools/list_changed */
    RELIST_TIMER,    /* the periodic check */
    RELIST_FIRST,    /* the session has no listing yet: a call must wait for one */
};

/* Tool names are at most 128 characters in MCP; anything much longer is refused. */
#define CALL_NAME_MAX 1024

/* A tools/call's params as read from the bytes (no tree). */
struct call_scan {
    struct engine_call call;
    char name[CALL_NAME_MAX];
    unsigned seen;
    struct jrpc_slice meta; /* params._meta's raw value, {NULL,0} when absent */
};

struct tp_http;

struct proxy {
    uv_loop_t *loop;
    const struct proxy_config *cfg;
    struct engine_session *session;

    struct tp_in *cin;
    struct tp_out *cout;
    struct tp_child *child;
    struct jrpc_framer from_client, from_server;
    struct dbuf key; /* scratch for id keys */

    json_t *pending; /* id key -> {"k": kind, "id": raw id token} */

    char own_prefix[40]; /* "clampd-<nonce>-": our request ids; the client cannot guess it */
    uint64_t own_seq;
    char own_last[64]; /* id of our request in flight: only its answer is taken */

    bool initialized;    /* the downstream answered initialize */
    bool has_tools;      /* ... declaring the tools capability */
    bool list_attempted; /* a tools listing was made (or tried) in this session */
    bool relisting;      /* our own tools/list is in flight */
    unsigned relist_pages;
    enum relist_reason relist_reason;
    bool relist_again;         /* list_changed arrived during a listing: list once more */
    bool stdin_close_deferred; /* shutdown waits for the listing before closing its stdin */
    char relist_digest[CJSON_HEX_LEN + 1];
    json_t *held; /* lines held until the re-listing ends: [{"to": "client"|"server",
                   * "line": s}] */

    char *start_error; /* why the downstream could not start, or NULL */
    bool client_eof, child_out_eof, child_gone, stopping, finished;
    int exit_code;
    int kill_stage;       /* 0 none, 1 stdin closed, 2 SIGTERM sent, 3 SIGKILL sent */
    uint64_t stage_since; /* loop time (ms) the current kill stage began */

    uv_timer_t kill_timer, relist_timer, relist_timeout;
    uv_timer_t flush_timer;      /* bounds the final flush of our stdout */
    struct tp_out *cout_closing; /* our stdout, closed and still flushing */
    uv_signal_t sigint, sigterm;

    /* remote mode (cfg->gateway): decisions at the gateway, on libuv's thread pool */
    unsigned remote_inflight;     /* calls waiting for the gateway's answer */
    struct tp_http **remote_idle; /* kept-alive clients no request holds */
    size_t n_remote_idle;
    char *remote_key_header; /* "X-AG-Key: ..." (SECURITY: wiped when freed) */
    char session_id[33];     /* this session at the gateway: random, per run */
};

/* proxy.c */
void proxy__to_client(struct proxy *p, const char *line, size_t len);
void proxy__to_client_json(struct proxy *p, json_t *msg);
void proxy__to_server(struct proxy *p, const char *line, size_t len);
void proxy__send_error(struct proxy *p, struct jrpc_slice id, int code, const char *msg);
void proxy__begin_shutdown(struct proxy *p, int exit_code);
/* Closes the downstream's input and escalates to SIGTERM/SIGKILL (after a deferral). */
void proxy__continue_shutdown(struct proxy *p);
void proxy__arm_relist_timer(struct proxy *p);
void proxy__arm_relist_timeout(struct proxy *p, uint64_t ms);

/* route.c */
int proxy__client_line(void *ctx, int status, const char *line, size_t len);
int proxy__server_line(void *ctx, int status, const char *line, size_t len);
/* Longest tool name a pending tools/call remembers (for the result's rule scopes). */
#define PROXY_TOOL_MAX 1024
int proxy__pending_add(struct proxy *p, struct jrpc_slice id, enum pending_kind k,
                       const char *tool);
void proxy__fail_pending(struct proxy *p, const char *why);

/* intercept.c */
void proxy__scan_call(const struct jrpc_peek *pk, struct call_scan *cs);
/* Forwards the call (with v's scope token in params._meta, a client's own token dropped) or
 * answers it with v's denial. */
void proxy__apply_verdict(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk,
                          const struct call_scan *cs, const struct engine_verdict *v);
void proxy__answer_result(struct proxy *p, struct jrpc_slice id, json_t *result);
/* Answers a prompts/get for a prompt withheld in this session with an error; true if so. */
bool proxy__prompt_withheld(struct proxy *p, const struct jrpc_peek *pk);
void proxy__client_call(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk);
void proxy__server_answer(struct proxy *p, enum pending_kind k, const char *line, size_t len,
                          struct jrpc_slice id);
/* inspect(result) on the downstream's answer to a tools/call, then on to the client. */
/* An error answer to a tools/call, inspected like a result (its message and data reach
 * the model too). */
void proxy__tool_error(struct proxy *p, const char *tool, const char *line, size_t len,
                       const struct jrpc_peek *pk);
/* tool: the called tool's name ("" if unknown). */
void proxy__tool_result(struct proxy *p, const char *tool, const char *line, size_t len,
                        const struct jrpc_peek *pk);
void proxy__own_answer(struct proxy *p, const char *line, size_t len, struct jrpc_slice id);
/* Answers every held client request with an error and drops what was held. */
void proxy__fail_held(struct proxy *p, const char *why);
void proxy__start_relist(struct proxy *p, const char *notification, size_t len,
                         enum relist_reason why);
void proxy__relist_timed_out(struct proxy *p);

/* remote.c: the proxy's remote mode */
int proxy__remote_init(struct proxy *p);
void proxy__remote_free(struct proxy *p);
/* Asks the gateway to decide the call (its shape and pin already checked here); the answer
 * forwards or denies it later, on the loop. */
void proxy__remote_call(struct proxy *p, const char *line, size_t len, const struct jrpc_peek *pk,
                        const struct call_scan *cs);
/* Continues a deferred shutdown once no listing and no remote decision is in flight. */
void proxy__maybe_continue_shutdown(struct proxy *p);

#endif
