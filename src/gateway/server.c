/*
 * server: libmicrohttpd glue. A request's life, in the access handler's calls:
 *
 *   first call (headers) ─ route (404/405) ─ overload (503) ─ X-AG-Key (401)
 *                        ─ Content-Length over 4x the cap (413; over the cap: 413 after the body)
 *   body chunks          ─ appended to a capped buffer (past the cap: dropped, then 413)
 *   last call            ─ gw__handle() ─ answer
 *
 * SECURITY: nothing is read from a peer that has not authenticated (401 is sent on the
 * headers), nothing is allocated from a length the peer declared, and every connection has
 * an idle timeout. Connections past cfg.max_connections get 503; MHD itself refuses past a
 * hard limit a little above it.
 */
#include "gateway/gateway-int.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define GW_HARD_CONN_SLACK 16u /* connections MHD accepts beyond the 503 limit */
#define GW_DISCARD_FACTOR 4u   /* of max_body: what is read and dropped of a chunked body */

static enum MHD_Result send_reply(struct gw *g, struct MHD_Connection *c, struct gw__req *r,
                                  struct gw__reply *rep)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char retry[24];

    resp = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(rep->body);
        return MHD_NO; /* the connection is closed: no answer rather than a wrong one */
    }
    rep->body = NULL;
    MHD_add_response_header(resp, "Content-Type", rep->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (rep->retry_after_s > 0) {
        snprintf(retry, sizeof(retry), "%ld", rep->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", retry);
    }
    if (rep->status == 405) {
        const struct gw__route_info *ri = gw__route_info(r->route);
        MHD_add_response_header(resp, "Allow", ri ? ri->method : "GET, POST");
    }
    ret = MHD_queue_response(c, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    gw__metrics_status(&g->metrics, rep->status);
    uint64_t ns = clampd_now_ns() - r->t0_ns;
    gw__metrics_latency(&g->metrics, GW_ST_REQUEST, ns);
    /* SECURITY: no key, token, tool argument or peer text in the log: ids and codes only */
    clog_info("%s %d agent=%s request_id=%s%s%s%s%s %.3f ms",
              gw__route_info(r->route) ? gw__route_info(r->route)->path : "-", rep->status,
              r->agent ? r->agent : "-", r->request_id[0] ? r->request_id : "-",
              r->action ? " action=" : "", r->action ? r->action : "", r->code[0] ? " code=" : "",
              r->code, (double)ns / 1e6);
    return ret;
}

static enum MHD_Result reply_error(struct gw *g, struct MHD_Connection *c, struct gw__req *r,
                                   int status, const char *code, const char *msg)
{
    struct gw__reply rep = {0};

    gw__reply_error(r, &rep, status, code, msg);
    return send_reply(g, c, r, &rep);
}

/* The headers' checks, in order; a refusal is answered at once, before any body is read. */
static enum MHD_Result on_headers(struct gw *g, struct MHD_Connection *c, struct gw__req *r,
                                  const char *url, const char *method)
{
    const struct gw__route_info *ri;
    const char *cl;
    int status;

    r->route = gw__route(method, url, &status);
    ri = gw__route_info(r->route);
    if (status == 404)
        return reply_error(g, c, r, 404, "not_found", "no such route (docs/gateway.md)");
    if (status == 405)
        return reply_error(g, c, r, 405, "method_not_allowed", "method not allowed on this route");
    if (atomic_load(&g->connections) > g->cfg.max_connections)
        return reply_error(g, c, r, 503, "overloaded", "too many connections; retry later");
    if (ri->auth && !(r->route == GW_R_METRICS && g->cfg.metrics_public)) {
        const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-AG-Key");
        uint64_t t = clampd_now_ns();
        r->agent = gw__authenticate(g->cfg.policy, key);
        gw__metrics_latency(&g->metrics, GW_ST_AUTH, clampd_now_ns() - t);
        if (!r->agent) {
            atomic_fetch_add(&g->metrics.auth_fail[key != NULL], 1);
            return reply_error(g, c, r, 401, "unauthorized",
                               key ? "invalid API key" : "missing X-AG-Key header");
        }
    }
    if (!ri->body)
        return MHD_YES; /* answered on the next call: MHD keeps the connection alive */
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || n > GW_DISCARD_FACTOR * (unsigned long long)g->cfg.max_body)
            return reply_error(g, c, r, 413, "body_too_large", "the body is over the size limit");
        /* Somewhat over the cap: read and dropped, then 413, so that a client still sending
         * gets the answer rather than a reset connection. */
        r->too_big = n > g->cfg.max_body;
    }
    return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct gw *g = cls;
    struct gw__req *r = *con_cls;
    struct gw__reply rep = {0};

    (void)version;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r))))
            return MHD_NO;
        r->t0_ns = clampd_now_ns();
        dbuf_init(&r->body, g->cfg.max_body);
        *con_cls = r;
        return on_headers(g, c, r, url, method);
    }
    if (*upload_size) {
        if (!r->too_big && !r->nomem) {
            int rc = dbuf_add(&r->body, upload, *upload_size);
            r->too_big = rc == ERR_TOO_BIG;
            r->nomem = rc == ERR_NOMEM;
            if (rc)
                dbuf_free(&r->body);
        }
        if (r->too_big)
            r->discarded += *upload_size;
        *upload_size = 0;
        /* A chunked body past the cap is read and dropped so that the client gets its 413
         * (MHD cannot answer mid-body); SECURITY: but only up to a bound, then the
         * connection is cut. */
        return r->discarded > GW_DISCARD_FACTOR * g->cfg.max_body ? MHD_NO : MHD_YES;
    }
    if (r->too_big)
        return reply_error(g, c, r, 413, "body_too_large", "the body is over the size limit");
    if (r->nomem)
        return reply_error(g, c, r, 503, "overloaded", "out of memory");
    gw__handle(g, r, &rep);
    return send_reply(g, c, r, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct gw__req *r = *con_cls;

    (void)cls, (void)c, (void)toe;
    if (!r)
        return;
    dbuf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct gw *g = cls;

    (void)c, (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&g->connections, 1);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&g->connections, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's own messages (its format strings, our log) */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    clog_info("http: %s", buf);
}

/* Resolves "HOST:PORT" or "[V6]:PORT" into *ai (freeaddrinfo it). */
static int resolve(const char *listen, struct addrinfo **ai, char **errmsg)
{
    char host[256], port[16], msg[512];
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hn;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    long p;
    int rc;

    if (!colon || clampd_parse_long(colon + 1, 0, 65535, &p))
        goto bad;
    hn = (size_t)(colon - listen);
    if (hn >= 2 && listen[0] == '[' && listen[hn - 1] == ']')
        h = listen + 1, hn -= 2;
    if (hn == 0 || hn >= sizeof(host))
        goto bad;
    memcpy(host, h, hn);
    host[hn] = '\0';
    snprintf(port, sizeof(port), "%ld", p);
    rc = getaddrinfo(host, port, &hints, ai);
    if (rc) {
        snprintf(msg, sizeof(msg), "--listen %s: %s", listen, gai_strerror(rc));
        *errmsg = strdup(msg);
        return ERR_INVAL;
    }
    return 0;
bad:
    snprintf(msg, sizeof(msg), "--listen wants HOST:PORT (e.g. 127.0.0.1:8700), not '%s'", listen);
    *errmsg = strdup(msg);
    return ERR_INVAL;
}

int gw_listen_check(const char *listen, char **errmsg)
{
    struct addrinfo *ai = NULL;
    int rc;

    *errmsg = NULL;
    rc = resolve(listen, &ai, errmsg);
    if (ai)
        freeaddrinfo(ai);
    return rc;
}

static int start(struct gw *g, char **errmsg)
{
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    int rc = resolve(g->cfg.listen, &ai, errmsg);

    if (rc)
        return rc;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    g->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, g, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, g,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
        g->cfg.max_connections + GW_HARD_CONN_SLACK, MHD_OPTION_CONNECTION_TIMEOUT,
        g->cfg.timeout_s, MHD_OPTION_THREAD_POOL_SIZE, g->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, g, MHD_OPTION_NOTIFY_CONNECTION, on_connection, g, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, g, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!g->daemon) {
        char msg[512];
        snprintf(msg, sizeof(msg), "cannot listen on %s (address in use, or not ours?)",
                 g->cfg.listen);
        *errmsg = strdup(msg);
        return ERR_IO;
    }
    info = MHD_get_daemon_info(g->daemon, MHD_DAEMON_INFO_BIND_PORT);
    g->port = info ? info->port : 0;
    const char *colon = strrchr(g->cfg.listen, ':');
    snprintf(g->address, sizeof(g->address), "%.*s:%u", (int)(colon - g->cfg.listen), g->cfg.listen,
             g->port);
    return 0;
}

int gw_new(const struct gw_config *cfg, struct gw **out, char **errmsg)
{
    struct gw *g = calloc(1, sizeof(*g));
    int rc = ERR_NOMEM;
    bool locked = false;

    *out = NULL;
    *errmsg = NULL;
    if (!g)
        goto out;
    g->cfg = *cfg;
    g->cfg.max_body = cfg->max_body ? cfg->max_body : GW_DEFAULT_MAX_BODY;
    g->cfg.max_connections =
        cfg->max_connections ? cfg->max_connections : GW_DEFAULT_MAX_CONNECTIONS;
    g->cfg.timeout_s = cfg->timeout_s ? cfg->timeout_s : GW_DEFAULT_TIMEOUT;
    g->cfg.threads = cfg->threads ? cfg->threads : GW_DEFAULT_THREADS;
    if (!cfg->policy || !cfg->engine) {
        *errmsg = strdup("the gateway needs a policy (agents and their API key hashes)");
        rc = ERR_INVAL;
        goto out;
    }
    if (pthread_mutex_init(&g->lock, NULL))
        goto out;
    locked = true;
    if (gw__metrics_init(&g->metrics) || !(g->sessions = gw__sessions_new(cfg->engine)) ||
        !(g->scan = engine_session_new_shared(cfg->engine, "clampd-gateway scan")))
        goto out;
    rc = start(g, errmsg);
    if (rc)
        goto out;
    *out = g;
    g = NULL;
out:
    if (g && !locked)
        free(g), g = NULL;
    gw_free(g);
    if (rc && !*errmsg)
        *errmsg = strdup(clampd_strerror(rc));
    return rc;
}

uint16_t gw_port(const struct gw *g)
{
    return g->port;
}

const char *gw_address(const struct gw *g)
{
    return g->address;
}

void gw_free(struct gw *g)
{
    if (!g)
        return;
    if (g->daemon)
        MHD_stop_daemon(g->daemon); /* joins the workers: nothing runs after this */
    gw__sessions_free(g->sessions);
    engine_session_free(g->scan);
    gw__metrics_deinit(&g->metrics);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
