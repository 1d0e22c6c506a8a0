/*
 * metrics: counters and latency histograms for GET /metrics (Prometheus text format 0.0.4).
 *
 * Plain counters are atomics, bumped by any worker thread; the two keyed by name (rule hits,
 * denials by error code) are jansson objects touched only under the gateway lock, where the
 * verdicts are made. Label values are ours (rule ids, engine error codes, fixed stage
 * names): no peer-chosen text and no agent, key or tool name appears in the output.
 */
#include "gateway/gateway-int.h"

#include <string.h>

static const char *const stage_names[GW_ST__COUNT] = {
    [GW_ST_AUTH] = "auth",
    [GW_ST_CLAIM] = "descriptor",
    [GW_ST_DECIDE] = "decide",
    [GW_ST_TOKEN] = "token",
    [GW_ST_SCAN_INPUT] = "scan_input",
    [GW_ST_SCAN_OUTPUT] = "scan_output",
    [GW_ST_REQUEST] = "request",
};

/* Upper bounds in seconds (le), then +Inf. */
static const double bounds[GW_LAT_BUCKETS] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                              0.001,   0.0025,   0.005,   0.01,   0.05,    0.25};

static const int statuses[GW_STATUS_SLOTS - 1] = {200, 400, 401, 404, 405, 409, 411, 413,
                                                  415, 422, 429, 500, 503, 0,   0};

int gw__metrics_init(struct gw__metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->rule_hits = json_object();
    m->deny_codes = json_object();
    if (!m->rule_hits || !m->deny_codes) {
        gw__metrics_deinit(m);
        return ERR_NOMEM;
    }
    return 0;
}

void gw__metrics_deinit(struct gw__metrics *m)
{
    json_decref(m->rule_hits);
    json_decref(m->deny_codes);
    m->rule_hits = m->deny_codes = NULL;
}

void gw__metrics_latency(struct gw__metrics *m, enum gw_stage st, uint64_t ns)
{
    size_t b = 0;

    while (b < GW_LAT_BUCKETS && (double)ns / 1e9 > bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->lat[st][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_ns[st], ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_count[st], 1, memory_order_relaxed);
}

void gw__metrics_status(struct gw__metrics *m, int status)
{
    size_t i = 0;

    while (i < GW_STATUS_SLOTS - 1 && statuses[i] && statuses[i] != status)
        i++;
    if (i >= GW_STATUS_SLOTS - 1 || !statuses[i])
        i = GW_STATUS_SLOTS - 1; /* "other" */
    atomic_fetch_add_explicit(&m->status[i], 1, memory_order_relaxed);
}

static void bump(json_t *obj, const char *key)
{
    json_t *n = json_object_get(obj, key);

    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else if (json_object_size(obj) < 4096) /* bounded: keys are rule ids and error codes */
        json_object_set_new(obj, key, json_integer(1));
}

void gw__metrics_count(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run)
{
    unsigned k = v->verdict <= VERDICT_ALLOW ? (unsigned)v->verdict : 0;

    atomic_fetch_add_explicit(&m->decisions[k][dry_run], 1, memory_order_relaxed);
}

void gw__metrics_rules(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run)
{
    for (size_t i = 0; !dry_run && i < v->n_rule_ids; i++)
        bump(m->rule_hits, v->rule_ids[i]);
}

void gw__metrics_deny_code(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run)
{
    if (v->verdict == VERDICT_DENY && !dry_run)
        bump(m->deny_codes, v->error_code[0] ? v->error_code : "unknown");
}

void gw__metrics_verdict(struct gw__metrics *m, const struct engine_verdict *v, bool dry_run)
{
    gw__metrics_count(m, v, dry_run);
    gw__metrics_deny_code(m, v, dry_run);
    gw__metrics_rules(m, v, dry_run);
}

void gw__metrics_scan(struct gw__metrics *m, const struct engine_verdict *v, bool output)
{
    unsigned k = v->verdict <= VERDICT_ALLOW ? (unsigned)v->verdict : 0;

    atomic_fetch_add_explicit(&m->scans[output][k], 1, memory_order_relaxed);
    for (size_t i = 0; i < v->n_rule_ids; i++)
        bump(m->rule_hits, v->rule_ids[i]);
}

static int label_value(struct dbuf *out, const char *s)
{
    int rc = 0;

    for (; !rc && *s; s++) {
        if (*s == '\\' || *s == '"')
            rc = dbuf_addc(out, '\\') || dbuf_addc(out, *s);
        else if (*s == '\n')
            rc = dbuf_adds(out, "\\n");
        else
            rc = dbuf_addc(out, *s);
    }
    return rc;
}

static unsigned long long get(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static int emit_histograms(struct gw__metrics *m, struct dbuf *out)
{
    int rc = dbuf_adds(out, "# HELP clampd_gateway_stage_seconds Time spent per stage: auth"
                            " (key hash and lookup), descriptor (pin check), decide (the engine's"
                            " pipeline), scan_input, scan_output, request (whole request).\n"
                            "# TYPE clampd_gateway_stage_seconds histogram\n");

    for (int st = 0; !rc && st < GW_ST__COUNT; st++) {
        unsigned long long cum = 0;
        for (int b = 0; !rc && b <= GW_LAT_BUCKETS; b++) {
            cum += get(&m->lat[st][b]);
            if (b < GW_LAT_BUCKETS)
                rc = dbuf_printf(
                    out, "clampd_gateway_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n",
                    stage_names[st], bounds[b], cum);
            else
                rc = dbuf_printf(
                    out, "clampd_gateway_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n",
                    stage_names[st], cum);
        }
        if (!rc)
            rc = dbuf_printf(out,
                             "clampd_gateway_stage_seconds_sum{stage=\"%s\"} %.9f\n"
                             "clampd_gateway_stage_seconds_count{stage=\"%s\"} %llu\n",
                             stage_names[st], (double)get(&m->lat_sum_ns[st]) / 1e9,
                             stage_names[st], get(&m->lat_count[st]));
    }
    return rc;
}

static int emit_keyed(struct dbuf *out, const char *name, const char *help, const char *label,
                      json_t *obj)
{
    const char *key;
    json_t *v;
    int rc = dbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);

    json_object_foreach (obj, key, v) {
        if (!rc)
            rc = dbuf_printf(out, "%s{%s=\"", name, label);
        if (!rc)
            rc = label_value(out, key);
        if (!rc)
            rc = dbuf_printf(out, "\"} %lld\n", (long long)json_integer_value(v));
    }
    return rc;
}

int gw__metrics_emit(struct gw__metrics *m, size_t sessions, struct dbuf *out)
{
    static const char *const actions[3] = {"deny", "flag", "allow"};
    int rc = dbuf_adds(out, "# HELP clampd_gateway_decisions_total Decisions of /v1/proxy"
                            " (dry_run=\"false\") and /v1/verify (dry_run=\"true\") by action.\n"
                            "# TYPE clampd_gateway_decisions_total counter\n");

    for (int a = 0; !rc && a < 3; a++)
        for (int d = 0; !rc && d < 2; d++)
            rc = dbuf_printf(out,
                             "clampd_gateway_decisions_total{action=\"%s\",dry_run=\"%s\"} %llu\n",
                             actions[a], d ? "true" : "false", get(&m->decisions[a][d]));
    if (!rc)
        rc = emit_keyed(out, "clampd_gateway_denials_total", "Denials of /v1/proxy by error code.",
                        "code", m->deny_codes);
    if (!rc)
        rc = emit_keyed(out, "clampd_gateway_rule_hits_total",
                        "Rules matched in /v1/proxy calls and scans.", "rule", m->rule_hits);
    if (!rc)
        rc = dbuf_adds(out, "# HELP clampd_gateway_scans_total Scans by kind and action.\n"
                            "# TYPE clampd_gateway_scans_total counter\n");
    for (int k = 0; !rc && k < 2; k++)
        for (int a = 0; !rc && a < 3; a++)
            rc = dbuf_printf(out, "clampd_gateway_scans_total{kind=\"%s\",action=\"%s\"} %llu\n",
                             k ? "output" : "input", actions[a], get(&m->scans[k][a]));
    if (!rc)
        rc = emit_histograms(m, out);
    if (!rc)
        rc = dbuf_printf(out,
                         "# HELP clampd_gateway_auth_failures_total Requests refused with 401.\n"
                         "# TYPE clampd_gateway_auth_failures_total counter\n"
                         "clampd_gateway_auth_failures_total{reason=\"missing_key\"} %llu\n"
                         "clampd_gateway_auth_failures_total{reason=\"wrong_key\"} %llu\n"
                         "# HELP clampd_gateway_http_responses_total Responses by HTTP status.\n"
                         "# TYPE clampd_gateway_http_responses_total counter\n",
                         get(&m->auth_fail[0]), get(&m->auth_fail[1]));
    for (int i = 0; !rc && i < GW_STATUS_SLOTS; i++) {
        unsigned long long n = get(&m->status[i]);
        if (i < GW_STATUS_SLOTS - 1 && !statuses[i])
            continue;
        if (i < GW_STATUS_SLOTS - 1)
            rc = dbuf_printf(out, "clampd_gateway_http_responses_total{status=\"%d\"} %llu\n",
                             statuses[i], n);
        else
            rc =
                dbuf_printf(out, "clampd_gateway_http_responses_total{status=\"other\"} %llu\n", n);
    }
    if (!rc)
        rc = dbuf_printf(out,
                         "# HELP clampd_gateway_sessions Engine sessions held.\n"
                         "# TYPE clampd_gateway_sessions gauge\nclampd_gateway_sessions %zu\n",
                         sessions);
    return rc;
}
