/*
 * limit: token buckets for the rate-limit stage. A bucket holds up to `burst` tokens and
 * refills at rate/60000 per millisecond; a call takes one (bytes: its argument length).
 * Buckets live in one jansson object keyed by kind, agent and tool (the map is bounded:
 * past POL_MAX_BUCKETS the least recently refilled half is dropped, which only ever
 * forgives, never blocks, so a flood of tool names cannot grow it without limit).
 */
#include "policy/policy-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

struct pol_limiter {
    json_t *buckets;         /* key -> [tokens, last_ms] */
    struct pol_redis *redis; /* not owned: the buckets live there instead, or NULL */
};

/* set once at start-up, before the limiters that use it are made (limit_redis.c) */
static struct pol_redis *shared_store;

void pol_limiter_use_redis(struct pol_redis *r)
{
    shared_store = r;
}

struct pol_limiter *pol_limiter_new(void)
{
    struct pol_limiter *l = calloc(1, sizeof(*l));

    if (l && !(l->buckets = json_object())) {
        free(l);
        return NULL;
    }
    if (l)
        l->redis = shared_store;
    return l;
}

void pol_limiter_free(struct pol_limiter *l)
{
    if (!l)
        return;
    json_decref(l->buckets);
    free(l);
}

static void prune(struct pol_limiter *l, int64_t now_ms)
{
    const char *key;
    json_t *v, *tmp;
    int64_t oldest = now_ms, newest = 0;

    json_object_foreach (l->buckets, key, v) {
        int64_t t = (int64_t)json_real_value(json_array_get(v, 1));
        oldest = t < oldest ? t : oldest;
        newest = t > newest ? t : newest;
    }
    int64_t cut = oldest + (newest - oldest) / 2;
    json_object_foreach_safe(l->buckets, tmp, key, v)
    {
        if ((int64_t)json_real_value(json_array_get(v, 1)) <= cut)
            json_object_del(l->buckets, key);
    }
}

/* Refills the bucket key (rate per minute, size burst) to now and takes cost if it can;
 * without commit, only says whether it could (nothing is stored). Returns 1 taken (or
 * could be), 0 refused (*retry_ms set), or a negative error. */
static int take(struct pol_limiter *l, const char *key, double rate, double burst, double cost,
                int64_t now_ms, bool commit, int64_t *retry_ms)
{
    json_t *b = json_object_get(l->buckets, key);
    double tokens = burst, per_ms = rate / 60000.0;

    if (b) {
        double last = json_real_value(json_array_get(b, 1));
        tokens = json_real_value(json_array_get(b, 0)) + ((double)now_ms - last) * per_ms;
        if (tokens > burst)
            tokens = burst;
    }
    if (!commit) {
        if (tokens >= cost)
            return 1;
        *retry_ms = cost > burst ? -1 : (int64_t)((cost - tokens) / per_ms) + 1;
        return 0;
    }
    if (!b) {
        if (json_object_size(l->buckets) >= POL_MAX_BUCKETS)
            prune(l, now_ms);
        if (!(b = json_pack("[f, f]", burst, (double)now_ms)) ||
            json_object_set_new(l->buckets, key, b))
            return ERR_NOMEM;
    }
    if (tokens < cost) {
        /* SECURITY: a call costlier than the whole bucket can never pass: say so */
        *retry_ms = cost > burst ? -1 : (int64_t)((cost - tokens) / per_ms) + 1;
        json_real_set(json_array_get(b, 0), tokens);
        json_real_set(json_array_get(b, 1), (double)now_ms);
        return 0;
    }
    json_real_set(json_array_get(b, 0), tokens - cost);
    json_real_set(json_array_get(b, 1), (double)now_ms);
    return 1;
}

/* The buckets a call of len argument bytes is charged against, in order (at most 3). */
static size_t buckets_of(const struct pol_rate *r, const char *agent, const char *tool, size_t len,
                         struct pol__bucket *b)
{
    size_t n = 0;

    if (r->calls_per_minute > 0) {
        snprintf(b[n].key, sizeof(b[n].key), "c\x1f%s", agent);
        b[n].rate = r->calls_per_minute;
        b[n].burst = r->burst;
        b[n].cost = 1;
        b[n++].which = "calls per minute";
    }
    if (r->tool_calls_per_minute > 0) {
        snprintf(b[n].key, sizeof(b[n].key), "t\x1f%s\x1f%.1024s", agent, tool);
        b[n].rate = r->tool_calls_per_minute;
        b[n].burst = r->tool_calls_per_minute / 6 > 1 ? r->tool_calls_per_minute / 6 : 1;
        b[n].cost = 1;
        b[n++].which = "calls per minute to this tool";
    }
    if (r->bytes_per_minute > 0) {
        snprintf(b[n].key, sizeof(b[n].key), "b\x1f%s", agent);
        b[n].rate = r->bytes_per_minute;
        b[n].burst = r->bytes_per_minute;
        b[n].cost = (double)len;
        b[n++].which = "argument bytes per minute";
    }
    return n;
}

static bool charge(struct pol_limiter *l, const struct pol_rate *r, const char *agent,
                   const char *tool, size_t len, int64_t now_ms, bool commit, int64_t *retry_ms,
                   const char **which)
{
    struct pol__bucket b[3];
    size_t n = buckets_of(r, agent, tool, len, b);

    *retry_ms = 0;
    *which = "";
    if (l->redis)
        return pol__redis_charge(l->redis, b, n, commit, retry_ms, which);
    for (size_t i = 0; i < n; i++) {
        if (take(l, b[i].key, b[i].rate, b[i].burst, b[i].cost, now_ms, commit, retry_ms) <= 0) {
            *which = b[i].which;
            return false; /* SECURITY: an error here refuses too */
        }
    }
    return true;
}

bool pol_limiter_take(struct pol_limiter *l, const struct pol_rate *r, const char *agent,
                      const char *tool, size_t len, int64_t now_ms, int64_t *retry_ms,
                      const char **which)
{
    return charge(l, r, agent, tool, len, now_ms, true, retry_ms, which);
}

bool pol_limiter_peek(const struct pol_limiter *l, const struct pol_rate *r, const char *agent,
                      const char *tool, size_t len, int64_t now_ms, int64_t *retry_ms,
                      const char **which)
{
    /* commit false: charge() and take() only read the buckets */
    return charge((struct pol_limiter *)l, r, agent, tool, len, now_ms, false, retry_ms, which);
}
