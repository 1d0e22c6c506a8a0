/*
 * proxy: the session's lifecycle: start, output, shutdown.
 *
 * Shutdown (client closed stdin, SIGINT/SIGTERM, or the downstream is gone):
 *   close the downstream's stdin ─ grace ─▶ SIGTERM to its process group ─ grace ─▶ SIGKILL
 * then every request still pending gets an error, our stdout is flushed, and every handle
 * is closed so uv_run() returns. The downstream's exit is always reaped: no zombie.
 */
#include "proxy/proxy-int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void send_owned(struct proxy *p, bool client, const char *line, size_t len)
{
    char *buf = malloc(len + 1);

    if (!buf) {
        clog_error("out of memory relaying a %zu-byte message; dropped", len);
        return;
    }
    memcpy(buf, line, len);
    buf[len] = '\n';
    if (client) {
        if (p->cout)
            tp_out_write(p->cout, buf, len + 1);
        else
            free(buf);
        if (p->cout && tp_out_congested(p->cout) && p->child)
            tp_child_pause_stdout(p->child);
        return;
    }
    if (!p->child || p->child_gone || p->kill_stage) {
        free(buf);
        return;
    }
    tp_child_write(p->child, buf, len + 1);
    if (tp_child_stdin_congested(p->child) && p->cin)
        tp_in_pause(p->cin);
}

void proxy__to_client(struct proxy *p, const char *line, size_t len)
{
    send_owned(p, true, line, len);
}

void proxy__to_server(struct proxy *p, const char *line, size_t len)
{
    send_owned(p, false, line, len);
}

void proxy__to_client_json(struct proxy *p, json_t *msg)
{
    size_t len = json_dumpb(msg, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    char *buf = len ? malloc(len + 1) : NULL;

    if (!buf) {
        clog_error("cannot encode a message for the client; dropped");
        return;
    }
    json_dumpb(msg, buf, len, JSON_COMPACT | JSON_ENCODE_ANY);
    buf[len] = '\n';
    if (p->cout)
        tp_out_write(p->cout, buf, len + 1);
    else
        free(buf);
}

void proxy__send_error(struct proxy *p, struct jrpc_slice id, int code, const char *msg)
{
    struct dbuf b;

    /* Room for the id and the message escaped at worst (6 bytes per control character). */
    dbuf_init(&b, CLAMPD_MAX_ID_LEN + 6 * strlen(msg) + 128);
    if (jrpc_emit_error(&b, id, code, msg) == 0 && p->cout) {
        size_t len;
        char *buf = dbuf_take(&b, &len);
        tp_out_write(p->cout, buf, len);
    }
    dbuf_free(&b);
}

/* ---- shutdown ---- */

static void kill_step(uv_timer_t *t);

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

#define FLUSH_TIMEOUT_MS 5000

static void flush_done(void *ctx)
{
    struct proxy *p = ctx;
    p->cout_closing = NULL;
    close_handle((uv_handle_t *)&p->flush_timer);
}

static void flush_timed_out(uv_timer_t *t)
{
    struct proxy *p = t->data;

    clog_warn("the client did not read clampd's last output in time; dropped");
    if (p->cout_closing)
        tp_out_abort(p->cout_closing);
    p->cout_closing = NULL;
    close_handle((uv_handle_t *)&p->flush_timer);
}

/* Flushes what is queued for the client, then closes our stdout. SECURITY: bounded: a
 * client that keeps the pipe open without reading cannot keep clampd alive. */
static void flush_client(struct proxy *p)
{
    struct tp_out *o = p->cout;

    p->cout = NULL;
    if (!o) {
        close_handle((uv_handle_t *)&p->flush_timer);
        return;
    }
    p->cout_closing = o;
    uv_timer_start(&p->flush_timer, flush_timed_out, FLUSH_TIMEOUT_MS, 0);
    tp_out_close(o, flush_done, p);
}

static void finish(struct proxy *p)
{
    if (p->finished)
        return;
    p->finished = true;
    proxy__fail_pending(p, "the downstream MCP server is gone");
    proxy__fail_held(p, "the downstream MCP server is gone");
    tp_in_close(p->cin);
    p->cin = NULL;
    flush_client(p);
    tp_child_free(p->child);
    p->child = NULL;
    close_handle((uv_handle_t *)&p->kill_timer);
    close_handle((uv_handle_t *)&p->relist_timer);
    close_handle((uv_handle_t *)&p->relist_timeout);
    close_handle((uv_handle_t *)&p->sigint);
    close_handle((uv_handle_t *)&p->sigterm);
}

static bool group_alive(struct proxy *p)
{
    return tp_child_signal_group(p->child, 0);
}

/* Moves a shutdown on once the leader has exited: leftovers of its process group (npx's
 * children) get SIGTERM, then SIGKILL; we finish once its stdout is drained to EOF. */
#define LEFTOVER_POLL_MS 50

/* Moves a shutdown on once the leader has exited: leftovers of its process group (npx's
 * children) get SIGTERM, then SIGKILL; we finish once its stdout is drained to EOF and the
 * group is empty, polling briefly rather than waiting out each grace period. */
static void advance(struct proxy *p)
{
    if (!p->stopping || p->finished)
        return;
    if (p->child && !tp_child_exited(p->child))
        return; /* the kill timer escalates */
    if (p->child && (!p->child_out_eof || group_alive(p))) {
        if (p->kill_stage < 2) {
            p->kill_stage = 2;
            p->stage_since = uv_now(p->loop);
            tp_child_signal_group(p->child, SIGTERM);
            uv_timer_start(&p->kill_timer, kill_step, LEFTOVER_POLL_MS, 0);
        }
        return;
    }
    finish(p);
}

/* The leader has exited: poll its leftovers, escalating once per grace period. */
static void leftovers_step(struct proxy *p)
{
    if (p->child_out_eof && !group_alive(p)) {
        finish(p);
        return;
    }
    if (uv_now(p->loop) - p->stage_since < p->cfg->kill_grace_ms) {
        uv_timer_start(&p->kill_timer, kill_step, LEFTOVER_POLL_MS, 0);
        return;
    }
    if (p->kill_stage < 3) {
        p->kill_stage = 3;
        p->stage_since = uv_now(p->loop);
        tp_child_signal_group(p->child, SIGKILL);
        uv_timer_start(&p->kill_timer, kill_step, LEFTOVER_POLL_MS, 0);
        return;
    }
    finish(p); /* SECURITY: bounded: we never wait on a pipe held by a stray process */
}

static void kill_step(uv_timer_t *t)
{
    struct proxy *p = t->data;

    if (!p->child) {
        finish(p);
        return;
    }
    if (tp_child_exited(p->child)) {
        if (p->kill_stage < 2) {
            p->kill_stage = 2;
            p->stage_since = uv_now(p->loop);
            tp_child_signal_group(p->child, SIGTERM);
        }
        leftovers_step(p);
        return;
    }
    if (p->kill_stage < 2) {
        clog_info("downstream did not exit after its stdin closed; sending SIGTERM");
        p->kill_stage = 2;
        tp_child_signal_group(p->child, SIGTERM);
    } else {
        clog_warn("downstream did not exit after SIGTERM; sending SIGKILL");
        p->kill_stage = 3;
        tp_child_signal_group(p->child, SIGKILL);
    }
    p->stage_since = uv_now(p->loop);
    uv_timer_start(&p->kill_timer, kill_step, p->cfg->kill_grace_ms, 0);
}

void proxy__begin_shutdown(struct proxy *p, int exit_code)
{
    if (p->stopping)
        return;
    p->stopping = true;
    p->exit_code = exit_code;
    uv_timer_stop(&p->relist_timer);
    if (p->cin)
        tp_in_pause(p->cin);
    if (!p->child) {
        finish(p);
        return;
    }
    if ((p->relisting || p->remote_inflight) && !p->child_gone) {
        /* Calls held for the listing in flight, or waiting for the gateway, are still
         * answered: the downstream's input is closed once they are (bounded by the
         * listing's and the gateway's time-outs). */
        p->stdin_close_deferred = true;
        return;
    }
    proxy__continue_shutdown(p);
}

void proxy__maybe_continue_shutdown(struct proxy *p)
{
    if (p->stdin_close_deferred && !p->relisting && !p->remote_inflight)
        proxy__continue_shutdown(p);
}

void proxy__continue_shutdown(struct proxy *p)
{
    p->stdin_close_deferred = false;
    if (p->child && !p->kill_stage) {
        p->kill_stage = 1;
        tp_child_close_stdin(p->child);
        if (!tp_child_exited(p->child))
            uv_timer_start(&p->kill_timer, kill_step, p->cfg->kill_grace_ms, 0);
    }
    advance(p);
}

/* ---- events ---- */

static void on_client_data(void *ctx, const char *data, size_t len)
{
    struct proxy *p = ctx;
    int rc = jrpc_framer_feed(&p->from_client, data, len, proxy__client_line, p);
    if (rc)
        clog_error("reading from the client: %s", clampd_strerror(rc));
}

static void on_client_eof(void *ctx)
{
    struct proxy *p = ctx;

    clog_info("client closed its input; shutting down the downstream");
    p->client_eof = true;
    proxy__begin_shutdown(p, p->start_error ? PROXY_EXIT_START_FAILED : PROXY_EXIT_OK);
}

static void on_client_gone(void *ctx)
{
    struct proxy *p = ctx;

    clog_info("client stopped reading our output; shutting down");
    proxy__begin_shutdown(p, p->start_error ? PROXY_EXIT_START_FAILED : PROXY_EXIT_OK);
}

static void on_client_drain(void *ctx)
{
    struct proxy *p = ctx;
    /* Also while stopping: the downstream's last answers must still reach the client. */
    if (p->child)
        tp_child_resume_stdout(p->child);
}

static void on_server_data(void *ctx, const char *data, size_t len)
{
    struct proxy *p = ctx;
    int rc = jrpc_framer_feed(&p->from_server, data, len, proxy__server_line, p);
    if (rc)
        clog_error("reading from the downstream: %s", clampd_strerror(rc));
}

static void downstream_gone(struct proxy *p)
{
    int64_t status = 0;
    int sig = 0;
    char why[CLAMPD_STDERR_TAIL + 256];
    const char *tail;

    if (p->child_gone)
        return;
    p->child_gone = true;
    if (tp_child_exited(p->child))
        tp_child_exit_status(p->child, &status, &sig);
    tail = tp_child_stderr_tail(p->child);
    if (sig)
        snprintf(why, sizeof(why), "the downstream MCP server was killed by signal %d", sig);
    else if (tp_child_exited(p->child))
        snprintf(why, sizeof(why), "the downstream MCP server exited with status %lld",
                 (long long)status);
    else
        snprintf(why, sizeof(why), "the downstream MCP server closed its output");
    if (!p->stopping) {
        clog_error("%s%s%s", why, tail[0] ? "; its last stderr output:\n" : "", tail);
        if (tail[0] && !p->initialized) {
            size_t n = strlen(why);
            snprintf(why + n, sizeof(why) - n, " before answering initialize: %s", tail);
        }
    }
    proxy__fail_pending(p, why);
    if (p->relisting) {
        p->relisting = false;
        uv_timer_stop(&p->relist_timeout);
        proxy__fail_held(p, why);
    }
    if (p->stdin_close_deferred)
        proxy__continue_shutdown(p);
    proxy__begin_shutdown(p, p->client_eof ? PROXY_EXIT_OK : PROXY_EXIT_DOWNSTREAM_EXITED);
}

static void on_server_eof(void *ctx)
{
    struct proxy *p = ctx;
    p->child_out_eof = true;
    downstream_gone(p);
    advance(p);
}

static void on_server_exit(void *ctx)
{
    struct proxy *p = ctx;
    downstream_gone(p);
    advance(p);
}

static void on_server_drain(void *ctx)
{
    struct proxy *p = ctx;
    if (p->cin && !p->stopping)
        tp_in_resume(p->cin);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct proxy *p = h->data;

    clog_info("received signal %d; shutting down", signum);
    proxy__begin_shutdown(p, PROXY_EXIT_SIGNAL);
}

static void on_relist_timer(uv_timer_t *t)
{
    struct proxy *p = t->data;
    if (p->initialized && !p->relisting && !p->stopping)
        proxy__start_relist(p, NULL, 0, RELIST_TIMER);
}

static void on_relist_timeout(uv_timer_t *t)
{
    proxy__relist_timed_out(t->data);
}

void proxy__arm_relist_timer(struct proxy *p)
{
    uint64_t ms = (uint64_t)p->cfg->relist_interval * 1000u;
    if (ms && !p->stopping)
        uv_timer_start(&p->relist_timer, on_relist_timer, ms, ms);
}

void proxy__arm_relist_timeout(struct proxy *p, uint64_t ms)
{
    uv_timer_start(&p->relist_timeout, on_relist_timeout, ms, 0);
}

/* ---- start ---- */

static void init_handles(struct proxy *p)
{
    uv_timer_t *timers[] = {&p->kill_timer, &p->relist_timer, &p->relist_timeout, &p->flush_timer};

    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(p->loop, timers[i]);
        timers[i]->data = p;
    }
    uv_signal_init(p->loop, &p->sigint);
    uv_signal_init(p->loop, &p->sigterm);
    p->sigint.data = p->sigterm.data = p;
    uv_signal_start(&p->sigint, on_signal, SIGINT);
    uv_signal_start(&p->sigterm, on_signal, SIGTERM);
}

static int open_stdio(struct proxy *p)
{
    p->cout = tp_out_open(p->loop, STDOUT_FILENO, CLAMPD_MAX_WRITE_BACKLOG, on_client_drain,
                          on_client_gone, p);
    p->cin = tp_in_open(p->loop, STDIN_FILENO, on_client_data, on_client_eof, p);
    return p->cout && p->cin ? 0 : ERR_IO;
}

static void spawn_downstream(struct proxy *p)
{
    struct tp_child_cbs cbs = {on_server_data, on_server_eof, on_server_exit, on_server_drain, p};
    char *err = NULL;

    if (tp_child_spawn(p->loop, p->cfg->argv, p->cfg->env, &cbs, &p->child, &err) == 0) {
        clog_info("started downstream (pid %d): %s", tp_child_pid(p->child), p->cfg->command);
        return;
    }
    clog_error("cannot start the downstream MCP server: %s", err ? err : "unknown error");
    p->start_error = err;
}

static int proxy_init(struct proxy *p, const struct proxy_config *cfg, uv_loop_t *loop)
{
    char nonce[17];

    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->cfg = cfg;
    init_handles(p);
    jrpc_framer_init(&p->from_client, CLAMPD_MAX_MESSAGE);
    jrpc_framer_init(&p->from_server, CLAMPD_MAX_MESSAGE);
    dbuf_init(&p->key, CLAMPD_MAX_ID_LEN * 4 + 16);
    clampd_random_hex(nonce, 8);
    snprintf(p->own_prefix, sizeof(p->own_prefix), "clampd-%s-", nonce);
    p->pending = json_object();
    p->held = json_array();
    p->session = engine_session_new(cfg->engine, cfg->command);
    if (!p->pending || !p->held || !p->session)
        return ERR_NOMEM;
    if (cfg->gateway) {
        int rc = proxy__remote_init(p);
        if (rc)
            return rc;
    }
    return open_stdio(p);
}

static void proxy_deinit(struct proxy *p)
{
    jrpc_framer_deinit(&p->from_client);
    jrpc_framer_deinit(&p->from_server);
    dbuf_free(&p->key);
    json_decref(p->pending);
    json_decref(p->held);
    engine_session_free(p->session);
    proxy__remote_free(p);
    free(p->start_error);
}

int proxy_run(const struct proxy_config *cfg)
{
    uv_loop_t loop;
    struct proxy p;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&loop))
        return PROXY_EXIT_USAGE;
    rc = proxy_init(&p, cfg, &loop);
    if (rc) {
        clog_error("cannot set up the proxy: %s", clampd_strerror(rc));
        p.exit_code = PROXY_EXIT_USAGE;
        finish(&p);
    } else {
        spawn_downstream(&p);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = p.exit_code;
    proxy_deinit(&p);
    if (uv_loop_close(&loop))
        clog_debug("event loop closed with handles still open");
    return rc;
}
