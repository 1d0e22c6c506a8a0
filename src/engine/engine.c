/*
 * engine: construction of the shared engine and of per-session state.
 */
#include "engine/engine-int.h"
#include "inspect/inspect.h"
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

int engine_new(const struct engine_config *cfg, struct engine **out, char **errmsg)
{
    struct engine *e = calloc(1, sizeof(*e));
    char *path = NULL;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!e)
        goto out;
    e->state_dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
    e->agent_id = strdup(cfg->agent_id ? cfg->agent_id : "local");
    path = cfg->state_dir ? engine__path(cfg->state_dir, "pins.db") : NULL;
    if ((cfg->state_dir && (!e->state_dir || !path)) || !e->agent_id)
        goto out;
    e->pin_mode = cfg->pin_mode;
    e->rules = cfg->rules;
    e->deny_risk = cfg->deny_risk > 0 ? cfg->deny_risk : 0.7;
    e->flag_risk = cfg->flag_risk > 0 ? cfg->flag_risk : 0.4;
    e->offer_poisoned = cfg->offer_poisoned;
    e->policy = cfg->policy;
    e->keys = cfg->keys;
    e->token_ttl = cfg->token_ttl;
    if (e->policy) {
        e->deny_risk = pol_deny_risk(e->policy);
        e->flag_risk = pol_flag_risk(e->policy);
        if (!(e->limiter = pol_limiter_new()))
            goto out;
    }
    clampd_random_hex(e->reqid_prefix, 8);
    /* offline inspection (state_dir NULL) has no pins; discovery then refuses to run */
    rc = path ? engine__pins_open(&e->pins, path, true, errmsg) : 0;
    if (rc)
        goto out;
    *out = e;
    e = NULL;
out:
    free(path);
    engine_free(e);
    return rc;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    engine__pins_close(&e->pins);
    pol_limiter_free(e->limiter);
    insp_scratch_free(e->shared_scratch);
    free(e->state_dir);
    free(e->agent_id);
    free(e);
}

static struct engine_session *session_new(struct engine *e, const char *command, bool shared)
{
    struct engine_session *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->engine = e;
    s->command = strdup(command);
    s->server = strdup("");
    s->tools = json_object();
    s->known = json_object();
    s->withheld = json_object();
    s->shared = shared;
    if (shared && e->rules && !e->shared_scratch)
        e->shared_scratch = insp_scratch_new(e->rules);
    if (shared)
        s->scratch = e->shared_scratch;
    else
        s->scratch = e->rules ? insp_scratch_new(e->rules) : NULL;
    if (!s->command || !s->server || !s->tools || !s->known || !s->withheld ||
        (e->rules && !s->scratch)) {
        engine_session_free(s);
        return NULL;
    }
    return s;
}

struct engine_session *engine_session_new(struct engine *e, const char *command)
{
    return session_new(e, command, false);
}

struct engine_session *engine_session_new_shared(struct engine *e, const char *command)
{
    return session_new(e, command, true);
}

void engine_session_free(struct engine_session *s)
{
    if (!s)
        return;
    free(s->command);
    free(s->agent_id);
    free(s->server);
    json_decref(s->tools);
    json_decref(s->known);
    json_decref(s->withheld);
    if (!s->shared)
        insp_scratch_free(s->scratch);
    free(s);
}

int engine_session_set_agent(struct engine_session *s, const char *agent_id)
{
    char *copy = strdup(agent_id);

    if (!copy)
        return ERR_NOMEM;
    free(s->agent_id);
    s->agent_id = copy;
    return 0;
}

const char *engine__agent(const struct engine_session *s)
{
    return s->agent_id ? s->agent_id : s->engine->agent_id;
}

const char *engine_session_agent(const struct engine_session *s)
{
    return engine__agent(s);
}

void engine_session_set_server(struct engine_session *s, const char *server_name)
{
    char *copy = strdup(server_name ? server_name : "");

    if (!copy)
        return; /* keeps the old identity; pins stay keyed consistently */
    free(s->server);
    s->server = copy;
    json_object_clear(s->known);
}

const char *engine_session_server(const struct engine_session *s)
{
    return s->server;
}

void engine_session_clear_tools(struct engine_session *s)
{
    json_object_clear(s->tools);
}

size_t engine_session_tool_count(const struct engine_session *s)
{
    return json_object_size(s->tools);
}

int engine_session_tools_digest(const struct engine_session *s, char hex[CJSON_HEX_LEN + 1])
{
    struct dbuf canon;
    int rc;

    dbuf_init(&canon, CLAMPD_MAX_CANONICAL);
    rc = cjson_canonical(s->tools, &canon);
    if (!rc)
        cjson_sha256_hex(canon.ptr, canon.len, hex);
    dbuf_free(&canon);
    return rc;
}
