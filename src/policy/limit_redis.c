/*
 * limit_redis: the token buckets of limit.c kept in Redis, so that several gateway replicas
 * limit an agent together (`clampd gateway --redis URL`, docs/gateway.md).
 *
 *   pol_limiter_take/peek ─▶ pol__redis_charge() ─EVALSHA (EVAL on NOSCRIPT)─▶ Redis
 *                                 │                 one Lua script: every bucket of the
 *                                 │                 call, in limit.c's order, atomically
 *                                 └─ no answer / an error: refused (POL_RETRY_UNAVAILABLE),
 *                                    or passed when the policy's fail_mode is open
 *
 * A bucket is the hash clampd:rl:<hex SHA-256 of limit.c's key> with fields t (tokens) and
 * l (the last refill, ms of Redis' TIME). The clock is Redis' own: replicas' clocks may
 * differ, and one clock for every replica keeps a bucket's refill exact. A key expires once
 * the bucket would be full again (burst / rate), which is what a missing key means.
 *
 * One hiredis context, connected lazily with 200 ms connect and command timeouts; any error
 * drops it and the next call reconnects. The caller serialises calls (the gateway's lock).
 */
#include "policy/policy-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <sodium.h>

#define RL_TIMEOUT_MS 200
#define RL_HOST_MAX 256
#define RL_PASS_MAX 512

/* KEYS: the buckets in order; ARGV[1]: "1" to take, "0" to peek; then rate, burst, cost
 * per key. Returns {1, 0, 0} when every bucket passed, else {0, index, retry_ms} for the
 * first that refused (retry -1: never). limit.c's take() in Lua, step for step. */
static const char script[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local commit = ARGV[1] == '1'\n"
    "for i = 1, #KEYS do\n"
    "  local rate, burst = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])\n"
    "  local cost = tonumber(ARGV[3*i+1])\n"
    "  local per_ms = rate / 60000\n"
    "  local b = redis.call('HMGET', KEYS[i], 't', 'l')\n"
    "  local tokens = burst\n"
    "  if b[1] and b[2] then\n"
    "    tokens = tonumber(b[1]) + (now - tonumber(b[2])) * per_ms\n"
    "    if tokens > burst then tokens = burst end\n"
    "  end\n"
    "  local ok = tokens >= cost\n"
    "  if commit then\n"
    "    local left = tokens\n"
    "    if ok then left = tokens - cost end\n"
    "    redis.call('HSET', KEYS[i], 't', string.format('%.17g', left), 'l',\n"
    "               string.format('%.17g', now))\n"
    "    redis.call('PEXPIRE', KEYS[i], math.ceil(burst / per_ms) + 1000)\n"
    "  end\n"
    "  if not ok then\n"
    "    local retry = -1\n"
    "    if cost <= burst then retry = math.floor((cost - tokens) / per_ms) + 1 end\n"
    "    return {0, i, retry}\n"
    "  end\n"
    "end\n"
    "return {1, 0, 0}\n";

struct pol_redis {
    char host[RL_HOST_MAX]; /* host name, or the socket path when unix */
    int port;
    bool unix_socket;
    long db;
    char *password; /* sodium_malloc'd, or NULL; never logged */
    bool fail_open;
    redisContext *ctx; /* NULL: not connected */
    char sha[41];      /* of script, once loaded */
};

/* Parses "redis://[:PASS@]HOST[:PORT][/DB]" or "unix:/PATH" into r. */
static int parse_url(struct pol_redis *r, const char *url, char **pass, char **errmsg)
{
    const char *p, *at, *slash, *colon;

    r->port = 6379;
    if (strncmp(url, "unix:", 5) == 0) {
        r->unix_socket = true;
        if (url[5] != '/' || strlen(url + 5) >= sizeof(r->host))
            goto bad;
        snprintf(r->host, sizeof(r->host), "%s", url + 5);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        goto bad;
    p = url + 8;
    slash = strchr(p, '/');
    at = strchr(p, '@');
    if (at && (!slash || at < slash)) {
        const char *u = memchr(p, ':', (size_t)(at - p));
        if (u != p || (size_t)(at - u - 1) >= RL_PASS_MAX)
            goto bad; /* only ":PASS@" (no ACL user) */
        if (at > u + 1 && !(*pass = strndup(u + 1, (size_t)(at - u - 1))))
            goto nomem;
        p = at + 1;
    }
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    colon = memchr(p, ':', hl);
    if (colon) {
        char num[8];
        long port;
        size_t nl = hl - (size_t)(colon - p) - 1;
        if (nl == 0 || nl >= sizeof(num))
            goto bad;
        memcpy(num, colon + 1, nl);
        num[nl] = '\0';
        if (clampd_parse_long(num, 1, 65535, &port))
            goto bad;
        r->port = (int)port;
        hl = (size_t)(colon - p);
    }
    if (hl == 0 || hl >= sizeof(r->host))
        goto bad;
    memcpy(r->host, p, hl);
    r->host[hl] = '\0';
    if (slash && slash[1] && clampd_parse_long(slash + 1, 0, 1024, &r->db))
        goto bad;
    return 0;
bad:
    /* SECURITY: the URL may hold a password: it is not repeated in the message */
    *errmsg = strdup("--redis wants redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:/PATH");
    return ERR_INVAL;
nomem:
    return ERR_NOMEM;
}

int pol_redis_new(const char *url, const char *password, bool fail_open, struct pol_redis **out,
                  char **errmsg)
{
    struct pol_redis *r = calloc(1, sizeof(*r));
    char *pass = NULL;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!r)
        goto out;
    if ((rc = parse_url(r, url, &pass, errmsg)))
        goto out;
    rc = ERR_NOMEM;
    const char *use = pass ? pass : password && *password ? password : NULL;
    if (use) {
        size_t n = strlen(use);
        if (!(r->password = sodium_malloc(n + 1)))
            goto out;
        memcpy(r->password, use, n + 1);
    }
    r->fail_open = fail_open;
    *out = r;
    r = NULL;
    rc = 0;
out:
    if (pass) {
        sodium_memzero(pass, strlen(pass));
        free(pass);
    }
    pol_redis_free(r);
    return rc;
}

void pol_redis_free(struct pol_redis *r)
{
    if (!r)
        return;
    if (r->ctx)
        redisFree(r->ctx);
    if (r->password)
        sodium_free(r->password);
    free(r);
}

static void drop(struct pol_redis *r, const char *what)
{
    clog_warn("redis: %s: %s; rate limits fail %s until it answers", what,
              r->ctx && r->ctx->errstr[0] ? r->ctx->errstr : "error",
              r->fail_open ? "OPEN (policy fail_mode: open)" : "closed");
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

/* A command that must answer with type (or any type when type is 0); drops the
 * connection otherwise. Returns the reply (caller frees) or NULL. */
static redisReply *command(struct pol_redis *r, int type, const char *what, int argc,
                           const char **argv, const size_t *lens)
{
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);

    if (!rep) {
        drop(r, what);
        return NULL;
    }
    if (type && rep->type != type) {
        if (rep->type == REDIS_REPLY_ERROR)
            clog_warn("redis: %s: %.200s", what, rep->str);
        freeReplyObject(rep);
        drop(r, what);
        return NULL;
    }
    return rep;
}

/* Connects, authenticates, selects the database and loads the script. */
static int connect_store(struct pol_redis *r)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = RL_TIMEOUT_MS * 1000};
    redisReply *rep;
    char db[24];

    r->ctx = r->unix_socket ? redisConnectUnixWithTimeout(r->host, tv)
                            : redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->ctx || r->ctx->err || redisSetTimeout(r->ctx, tv) != REDIS_OK) {
        drop(r, "connect");
        return ERR_IO;
    }
    if (r->password) {
        const char *argv[] = {"AUTH", r->password};
        if (!(rep = command(r, REDIS_REPLY_STATUS, "AUTH", 2, argv, NULL)))
            return ERR_IO;
        freeReplyObject(rep);
    }
    if (r->db) {
        snprintf(db, sizeof(db), "%ld", r->db);
        const char *argv[] = {"SELECT", db};
        if (!(rep = command(r, REDIS_REPLY_STATUS, "SELECT", 2, argv, NULL)))
            return ERR_IO;
        freeReplyObject(rep);
    }
    const char *argv[] = {"SCRIPT", "LOAD", script};
    if (!(rep = command(r, REDIS_REPLY_STRING, "SCRIPT LOAD", 3, argv, NULL)))
        return ERR_IO;
    snprintf(r->sha, sizeof(r->sha), "%.40s", rep->str);
    freeReplyObject(rep);
    return 0;
}

int pol_redis_ping(struct pol_redis *r)
{
    if (!r->ctx && connect_store(r))
        return ERR_IO;
    return 0;
}

/* Runs the script over n buckets; ARGV as the script says. Fills *ok, *idx, *retry. */
static int run_script(struct pol_redis *r, size_t n, char keys[][80], char args[][3][32],
                      bool commit, bool *ok, long long *idx, long long *retry)
{
    const char *argv[3 + 3 + 3 * 3 + 1];
    char nk[4];
    size_t argc = 0;
    redisReply *rep;

    if (!r->ctx && connect_store(r))
        return ERR_IO;
    snprintf(nk, sizeof(nk), "%zu", n);
    argv[argc++] = "EVALSHA";
    argv[argc++] = r->sha;
    argv[argc++] = nk;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = keys[i];
    argv[argc++] = commit ? "1" : "0";
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < 3; j++)
            argv[argc++] = args[i][j];
    if (!(rep = command(r, 0, "EVALSHA", (int)argc, argv, NULL)))
        return ERR_IO;
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* the server restarted or flushed its scripts: EVAL loads it again */
        freeReplyObject(rep);
        argv[0] = "EVAL";
        argv[1] = script;
        if (!(rep = command(r, 0, "EVAL", (int)argc, argv, NULL)))
            return ERR_IO;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER ||
        rep->element[2]->type != REDIS_REPLY_INTEGER) {
        if (rep->type == REDIS_REPLY_ERROR)
            clog_warn("redis: rate-limit script: %.200s", rep->str);
        freeReplyObject(rep);
        drop(r, "rate-limit script answered out of shape");
        return ERR_IO;
    }
    *ok = rep->element[0]->integer == 1;
    *idx = rep->element[1]->integer;
    *retry = rep->element[2]->integer;
    freeReplyObject(rep);
    return 0;
}

/* "clampd:rl:" and the hex SHA-256 of limit.c's in-memory key. */
static void bucket_key(char out[80], const char *plain)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof(h) + 1];

    crypto_hash_sha256(h, (const unsigned char *)plain, strlen(plain));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, 80, "clampd:rl:%s", hex);
}

bool pol__redis_charge(struct pol_redis *r, const struct pol__bucket *b, size_t n, bool commit,
                       int64_t *retry_ms, const char **which)
{
    char keys[3][80], args[3][3][32];
    bool ok = false;
    long long idx = 0, retry = 0;

    if (n == 0)
        return true;
    for (size_t i = 0; i < n && i < 3; i++) {
        bucket_key(keys[i], b[i].key);
        snprintf(args[i][0], sizeof(args[i][0]), "%.17g", b[i].rate);
        snprintf(args[i][1], sizeof(args[i][1]), "%.17g", b[i].burst);
        snprintf(args[i][2], sizeof(args[i][2]), "%.17g", b[i].cost);
    }
    if (run_script(r, n < 3 ? n : 3, keys, args, commit, &ok, &idx, &retry)) {
        if (r->fail_open) {
            /* the policy chose availability over limits: loud in the log */
            clog_warn("redis: unavailable: rate limits NOT applied (policy fail_mode: open)");
            return true;
        }
        /* SECURITY: fail closed: no answer from the shared buckets is a refusal */
        *retry_ms = POL_RETRY_UNAVAILABLE;
        *which = "its rate limits (the shared rate-limit store is unavailable)";
        return false;
    }
    if (ok)
        return true;
    *retry_ms = retry;
    *which = idx >= 1 && (size_t)idx <= n ? b[idx - 1].which : "its rate limits";
    return false;
}
