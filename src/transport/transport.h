/*
 * transport: byte streams on libuv: our own stdin/stdout, and a spawned child process
 * (stdin, stdout, stderr pipes, its own process group).
 *
 *   struct tp_out    ordered, owned writes to one stream, with a backlog count
 *   struct tp_in     reads from our stdin (pipe, tty or file) until EOF
 *   struct tp_child  a downstream process: spawn, write, read, signal the group, reap
 *
 * Callbacks carry raw bytes; framing is the caller's (jsonrpc). Nothing here knows MCP.
 */
#ifndef CLAMPD_TRANSPORT_H
#define CLAMPD_TRANSPORT_H

#include <uv.h>

#include "core/core.h"

typedef void (*tp_data_fn)(void *ctx, const char *data, size_t len);
typedef void (*tp_event_fn)(void *ctx);

/* ---- output stream ---- */

struct tp_out;

/* Wraps fd for writing (pipe, tty or regular file). on_drain (may be NULL) is called when
 * the backlog falls below half of high_water after having exceeded it. on_error is called
 * once when a write fails (e.g. EPIPE: the reader is gone). Returns NULL on failure. */
struct tp_out *tp_out_open(uv_loop_t *loop, int fd, size_t high_water, tp_event_fn on_drain,
                           tp_event_fn on_error, void *ctx);

/* Queues len bytes at buf for writing; takes ownership of buf (malloc'd), in all cases.
 * Returns 0, ERR_IO if the stream failed earlier. */
int tp_out_write(struct tp_out *o, char *buf, size_t len);
/* Bytes queued and not yet written. */
size_t tp_out_backlog(const struct tp_out *o);
bool tp_out_congested(const struct tp_out *o);
/* Calls done once every queued byte is written (or failed), then closes the stream. */
void tp_out_close(struct tp_out *o, tp_event_fn done, void *ctx);
/* Closes now, dropping what is queued (a reader that never reads must not hold clampd up);
 * no done callback is called. Also ends a tp_out_close() still waiting. */
void tp_out_abort(struct tp_out *o);

/* ---- our stdin ---- */

struct tp_in;

struct tp_in *tp_in_open(uv_loop_t *loop, int fd, tp_data_fn on_data, tp_event_fn on_eof,
                         void *ctx);
void tp_in_pause(struct tp_in *in);
void tp_in_resume(struct tp_in *in);
void tp_in_close(struct tp_in *in);

/* ---- child process ---- */

struct tp_child;

struct tp_child_cbs {
    tp_data_fn on_stdout;       /* bytes from the child's stdout */
    tp_event_fn on_stdout_eof;  /* its stdout closed */
    tp_event_fn on_exit;        /* the process exited (see tp_child_exit_status) */
    tp_event_fn on_stdin_drain; /* its stdin backlog fell back below half the high water */
    void *ctx;
};

/* Spawns argv[0] (searched in PATH) with env (NULL-terminated "K=V" list) in a new session
 * and process group. Its stderr is copied to ours as it arrives and the last
 * CLAMPD_STDERR_TAIL bytes are kept. On failure returns a negative error and a malloc'd
 * reason in *errmsg ("command not found: npx"). */
int tp_child_spawn(uv_loop_t *loop, char *const *argv, char *const *env,
                   const struct tp_child_cbs *cbs, struct tp_child **out, char **errmsg);

/* Writes to the child's stdin; takes ownership of buf. */
int tp_child_write(struct tp_child *c, char *buf, size_t len);
bool tp_child_stdin_congested(const struct tp_child *c);
/* Closes the child's stdin once queued bytes are written. */
void tp_child_close_stdin(struct tp_child *c);
void tp_child_pause_stdout(struct tp_child *c);
void tp_child_resume_stdout(struct tp_child *c);
/* Sends sig to the child's whole process group. Returns true if any process received it. */
bool tp_child_signal_group(struct tp_child *c, int sig);
bool tp_child_exited(const struct tp_child *c);
/* Exit status and terminating signal (0 if none); valid after on_exit. */
void tp_child_exit_status(const struct tp_child *c, int64_t *status, int *term_signal);
int tp_child_pid(const struct tp_child *c);
/* The last bytes the child wrote to stderr (NUL-terminated, may be ""). */
const char *tp_child_stderr_tail(struct tp_child *c);
/* Closes every handle; the struct is freed once libuv has released them. */
void tp_child_free(struct tp_child *c);

/* ---- HTTP client (libcurl), for the proxy's remote mode ----
 *
 * One struct tp_http is one libcurl easy handle: its connection to the peer is kept alive
 * from one request to the next. Blocking: the proxy runs it on libuv's thread pool, one
 * request per handle at a time. tp_http_global_init() must run once, before any thread. */

struct tp_http;

struct tp_http_reply {
    long status;      /* HTTP status, 0 when no answer came */
    struct dbuf body; /* the answer's body (at most TP_HTTP_MAX_REPLY bytes) */
    char error[256];  /* why no answer came ("" if one did) */
};

#define TP_HTTP_MAX_REPLY (1u << 20)

int tp_http_global_init(void);
/* A client for the base URL (http:// or https://, no trailing slash needed) whose requests
 * give up after timeout_ms. Returns NULL on allocation failure. */
struct tp_http *tp_http_new(const char *base_url, long timeout_ms);
void tp_http_free(struct tp_http *h);
/* POSTs body (JSON) to base_url + path with the extra header lines (NULL-terminated list,
 * may be NULL). Fills reply (initialised by the call; the caller frees reply->body). Returns
 * 0 when an answer came (any status), or ERR_IO with reply->error set. */
int tp_http_post_json(struct tp_http *h, const char *path, const char *const *headers,
                      const char *body, size_t len, struct tp_http_reply *reply);

#endif
