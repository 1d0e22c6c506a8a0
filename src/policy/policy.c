/*
 * policy: loading (strict, file:line errors) and the lookups of policy.h.
 */
#include "policy/policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <yaml.h>

struct strv {
    char **v;
    size_t n;
};

struct agent {
    char *id;
    unsigned char key_hash[32];
    bool has_key;
    struct strv scopes;
    struct pol_rate rate;
};

struct category {
    char *name;
    struct strv scopes;
};

struct mapping {
    char *server; /* glob */
    struct strv tools;
    const struct category *category;
};

struct action {
    char *category;
    enum pol_action action;
};

struct pol {
    struct agent *agents;
    size_t n_agents;
    struct category *cats;
    size_t n_cats;
    struct mapping *maps;
    size_t n_maps;
    struct action *actions;
    size_t n_actions;
    double deny_risk, flag_risk;
    enum pol_fail_mode fail_mode;
};

/* ---- loading ---- */

struct loader {
    struct pol *p;
    const char *file;
    yaml_document_t doc;
    char **errmsg;
};

static int fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512], out[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(out, sizeof(out), "%s:%lu: %s", l->file, n ? (unsigned long)n->start_mark.line + 1 : 0,
             msg);
    free(*l->errmsg);
    *l->errmsg = strdup(out);
    return ERR_PARSE;
}

static yaml_node_t *node(struct loader *l, int i)
{
    return yaml_document_get_node(&l->doc, i);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Iterates a mapping node's pairs: fn(l, key, value, ctx). Duplicate keys are refused. */
typedef int (*pair_fn)(struct loader *l, const char *key, yaml_node_t *v, void *ctx);

static int each_pair(struct loader *l, yaml_node_t *n, const char *what, pair_fn fn, void *ctx)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return fail(l, n, "%s must be a mapping", what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = scalar(node(l, p->key));
        int rc;
        if (!k)
            return fail(l, node(l, p->key), "a key of %s is not a string", what);
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
            if (strcmp(scalar(node(l, q->key)), k) == 0)
                return fail(l, node(l, p->key), "'%s' appears twice in %s", k, what);
        if ((rc = fn(l, k, node(l, p->value), ctx)))
            return rc;
    }
    return 0;
}

static int read_name(struct loader *l, yaml_node_t *n, const char *key, char **out)
{
    const char *s = scalar(n);

    if (!s || !*s || strlen(s) >= POL_NAME_MAX)
        return fail(l, n, "'%s' must be a non-empty string of under %d bytes", key, POL_NAME_MAX);
    free(*out);
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

static bool scope_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == ':' || *s == '.' ||
              *s == '_' || *s == '*' || *s == '-'))
            return false;
    return true;
}

static int strv_add(struct loader *l, yaml_node_t *e, const char *key, bool scopes, struct strv *sv)
{
    const char *s = scalar(e);
    char **v;

    if (!s || !*s)
        return fail(l, e, "'%s' must be a list of non-empty strings", key);
    if (scopes && !scope_ok(s))
        return fail(l, e, "scope '%s': use a-z 0-9 and : . _ - * (e.g. fs:read)", s);
    if (sv->n >= POL_MAX_ITEMS)
        return fail(l, e, "'%s' has more than %d entries", key, POL_MAX_ITEMS);
    v = realloc(sv->v, (sv->n + 1) * sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    sv->v = v;
    if (!(sv->v[sv->n] = strdup(s)))
        return ERR_NOMEM;
    sv->n++;
    return 0;
}

/* A list of strings (a scalar counts as a list of one); scopes are checked when scopes. */
static int read_list(struct loader *l, yaml_node_t *n, const char *key, bool scopes,
                     struct strv *sv)
{
    if (scalar(n))
        return strv_add(l, n, key, scopes, sv);
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, "'%s' must be a list of strings", key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int rc = strv_add(l, node(l, *it), key, scopes, sv);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_number(struct loader *l, yaml_node_t *n, const char *key, double lo, double hi,
                       double *out)
{
    const char *s = scalar(n);
    char *end;

    if (!s)
        return fail(l, n, "'%s' must be a number", key);
    errno = 0;
    *out = strtod(s, &end);
    if (errno || *end || end == s || !(*out >= lo && *out <= hi))
        return fail(l, n, "'%s' must be a number from %g to %g, not '%s'", key, lo, hi, s);
    return 0;
}

static void strv_free(struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
}

/* Grows an array of items by one zeroed element; returns it or NULL. */
static void *grow(void **arr, size_t *n, size_t size)
{
    char *v;

    if (*n >= POL_MAX_ITEMS || !(v = realloc(*arr, (*n + 1) * size)))
        return NULL;
    *arr = v;
    memset(v + *n * size, 0, size);
    return v + (*n)++ * size;
}

static int rate_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    struct pol_rate *r = ctx;

    if (strcmp(k, "calls_per_minute") == 0)
        return read_number(l, v, k, 0, 1e9, &r->calls_per_minute);
    if (strcmp(k, "burst") == 0)
        return read_number(l, v, k, 1, 1e9, &r->burst);
    if (strcmp(k, "bytes_per_minute") == 0)
        return read_number(l, v, k, 0, 1e15, &r->bytes_per_minute);
    if (strcmp(k, "tool_calls_per_minute") == 0)
        return read_number(l, v, k, 0, 1e9, &r->tool_calls_per_minute);
    return fail(l, v,
                "unknown key '%s' in rate (calls_per_minute, burst, tool_calls_per_minute,"
                " bytes_per_minute)",
                k);
}

static int agent_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    struct agent *a = ctx;

    if (strcmp(k, "id") == 0)
        return read_name(l, v, k, &a->id);
    if (strcmp(k, "scopes") == 0)
        return read_list(l, v, k, true, &a->scopes);
    if (strcmp(k, "rate") == 0)
        return each_pair(l, v, "rate", rate_pair, &a->rate);
    if (strcmp(k, "api_key_sha256") == 0) {
        const char *s = scalar(v);
        size_t bin = 0;
        if (!s || strlen(s) != 64 ||
            sodium_hex2bin(a->key_hash, sizeof(a->key_hash), s, 64, NULL, &bin, NULL) != 0 ||
            bin != 32)
            return fail(l, v, "'api_key_sha256' must be 64 hex digits (sha256sum of the key)");
        a->has_key = true;
        return 0;
    }
    return fail(l, v, "unknown key '%s' in an agent (id, api_key_sha256, scopes, rate)", k);
}

static int category_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    struct category *c = ctx;

    if (strcmp(k, "name") == 0)
        return read_name(l, v, k, &c->name);
    if (strcmp(k, "scopes") == 0)
        return read_list(l, v, k, true, &c->scopes);
    return fail(l, v, "unknown key '%s' in a category (name, scopes)", k);
}

struct map_ctx {
    struct mapping *m;
    char *category;
};

static int mapping_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    struct map_ctx *mc = ctx;

    if (strcmp(k, "server") == 0)
        return read_name(l, v, k, &mc->m->server);
    if (strcmp(k, "tools") == 0)
        return read_list(l, v, k, false, &mc->m->tools);
    if (strcmp(k, "category") == 0)
        return read_name(l, v, k, &mc->category);
    return fail(l, v, "unknown key '%s' in a tool mapping (server, tools, category)", k);
}

static const struct category *find_category(const struct pol *p, const char *name)
{
    for (size_t i = 0; i < p->n_cats; i++)
        if (strcmp(p->cats[i].name, name) == 0)
            return &p->cats[i];
    return NULL;
}

static int action_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    static const char *const names[] = {"default", "redact", "flag", "block"};
    struct pol *p = ctx;
    const char *s = scalar(v);
    struct action *a;

    for (int i = 1; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            if (!(a = grow((void **)&p->actions, &p->n_actions, sizeof(*a))) ||
                !(a->category = strdup(k)))
                return ERR_NOMEM;
            a->action = (enum pol_action)i;
            return 0;
        }
    return fail(l, v, "the action for '%s' is redact, flag or block", k);
}

static int thresholds_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    struct pol *p = ctx;

    if (strcmp(k, "deny") == 0)
        return read_number(l, v, k, 0.01, 1, &p->deny_risk);
    if (strcmp(k, "flag") == 0)
        return read_number(l, v, k, 0.01, 1, &p->flag_risk);
    return fail(l, v, "unknown key '%s' in thresholds (deny, flag)", k);
}

typedef int (*item_fn)(struct loader *l, yaml_node_t *item);

static int each_item(struct loader *l, yaml_node_t *n, const char *key, item_fn fn)
{
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, "'%s' must be a list", key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int rc = fn(l, node(l, *it));
        if (rc)
            return rc;
    }
    return 0;
}

static int read_agent(struct loader *l, yaml_node_t *n)
{
    struct agent *a = grow((void **)&l->p->agents, &l->p->n_agents, sizeof(*a));
    int rc;

    if (!a)
        return fail(l, n, "too many agents");
    if ((rc = each_pair(l, n, "an agent", agent_pair, a)))
        return rc;
    if (!a->id)
        return fail(l, n, "an agent needs an 'id'");
    for (size_t i = 0; i + 1 < l->p->n_agents; i++)
        if (strcmp(l->p->agents[i].id, a->id) == 0)
            return fail(l, n, "agent '%s' is defined twice", a->id);
    if (a->rate.calls_per_minute > 0 && a->rate.burst == 0)
        a->rate.burst = a->rate.calls_per_minute / 6 > 1 ? a->rate.calls_per_minute / 6 : 1;
    return 0;
}

static int read_category(struct loader *l, yaml_node_t *n)
{
    struct category *c = grow((void **)&l->p->cats, &l->p->n_cats, sizeof(*c));
    int rc;

    if (!c)
        return fail(l, n, "too many categories");
    if ((rc = each_pair(l, n, "a category", category_pair, c)))
        return rc;
    if (!c->name)
        return fail(l, n, "a category needs a 'name'");
    for (size_t i = 0; i + 1 < l->p->n_cats; i++)
        if (strcmp(l->p->cats[i].name, c->name) == 0)
            return fail(l, n, "category '%s' is defined twice", c->name);
    return 0;
}

static int read_mapping(struct loader *l, yaml_node_t *n)
{
    struct mapping *m = grow((void **)&l->p->maps, &l->p->n_maps, sizeof(*m));
    struct map_ctx mc = {m, NULL};
    int rc;

    if (!m)
        return fail(l, n, "too many tool mappings");
    rc = each_pair(l, n, "a tool mapping", mapping_pair, &mc);
    if (!rc && (!mc.category || !m->tools.n))
        rc = fail(l, n, "a tool mapping needs 'tools' and a 'category'");
    if (!rc && !(m->category = find_category(l->p, mc.category)))
        rc = fail(l, n, "category '%s' is not defined under 'categories'", mc.category);
    if (!rc && !m->server && !(m->server = strdup("*")))
        rc = ERR_NOMEM;
    free(mc.category);
    return rc;
}

static int top_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    (void)ctx;
    if (strcmp(k, "agents") == 0)
        return each_item(l, v, k, read_agent);
    if (strcmp(k, "categories") == 0)
        return each_item(l, v, k, read_category);
    if (strcmp(k, "tools") == 0)
        return 0; /* read after the categories, wherever it stands */
    if (strcmp(k, "thresholds") == 0)
        return each_pair(l, v, "thresholds", thresholds_pair, l->p);
    if (strcmp(k, "actions") == 0)
        return each_pair(l, v, "actions", action_pair, l->p);
    if (strcmp(k, "fail_mode") == 0) {
        const char *s = scalar(v);
        if (s && strcmp(s, "closed") == 0)
            l->p->fail_mode = POL_FAIL_CLOSED;
        else if (s && strcmp(s, "open") == 0)
            l->p->fail_mode = POL_FAIL_OPEN;
        else
            return fail(l, v, "'fail_mode' is closed or open");
        return 0;
    }
    return fail(l, v,
                "unknown top-level key '%s' (agents, categories, tools, thresholds, actions,"
                " fail_mode)",
                k);
}

static int tools_pair(struct loader *l, const char *k, yaml_node_t *v, void *ctx)
{
    (void)ctx;
    return strcmp(k, "tools") == 0 ? each_item(l, v, k, read_mapping) : 0;
}

int pol_load(const char *path, struct pol **out, char **errmsg)
{
    struct pol *p = calloc(1, sizeof(*p));
    struct loader l = {.p = p, .file = path, .errmsg = errmsg};
    yaml_parser_t parser;
    FILE *f = NULL;
    bool parsed = false;
    int rc = ERR_NOMEM;

    *out = NULL;
    *errmsg = NULL;
    if (!p)
        return rc;
    p->deny_risk = 0.7;
    p->flag_risk = 0.4;
    f = fopen(path, "rb");
    if (!f) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
        *errmsg = strdup(msg);
        rc = ERR_IO;
        goto out;
    }
    if (!yaml_parser_initialize(&parser))
        goto out;
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &l.doc)) {
        char msg[600];
        snprintf(msg, sizeof(msg), "%s:%lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML error");
        *errmsg = strdup(msg);
        yaml_parser_delete(&parser);
        rc = ERR_PARSE;
        goto out;
    }
    yaml_parser_delete(&parser);
    parsed = true;
    yaml_node_t *root = yaml_document_get_root_node(&l.doc);
    if (!root) {
        rc = fail(&l, NULL, "the policy is empty");
        goto out;
    }
    rc = each_pair(&l, root, "the policy", top_pair, NULL);
    if (!rc)
        rc = each_pair(&l, root, "the policy", tools_pair, NULL);
    if (!rc && p->flag_risk > p->deny_risk)
        rc = fail(&l, root, "thresholds: flag (%g) is above deny (%g)", p->flag_risk, p->deny_risk);
    if (rc)
        goto out;
    *out = p;
    p = NULL;
out:
    if (parsed)
        yaml_document_delete(&l.doc);
    if (f)
        fclose(f);
    pol_free(p);
    return rc;
}

void pol_free(struct pol *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_agents; i++) {
        free(p->agents[i].id);
        strv_free(&p->agents[i].scopes);
        sodium_memzero(p->agents[i].key_hash, sizeof(p->agents[i].key_hash));
    }
    for (size_t i = 0; i < p->n_cats; i++) {
        free(p->cats[i].name);
        strv_free(&p->cats[i].scopes);
    }
    for (size_t i = 0; i < p->n_maps; i++) {
        free(p->maps[i].server);
        strv_free(&p->maps[i].tools);
    }
    for (size_t i = 0; i < p->n_actions; i++)
        free(p->actions[i].category);
    free(p->agents);
    free(p->cats);
    free(p->maps);
    free(p->actions);
    free(p);
}

/* ---- lookups ---- */

const char *pol_tool_category(const struct pol *p, const char *server, const char *tool)
{
    for (size_t i = 0; i < p->n_maps; i++) {
        const struct mapping *m = &p->maps[i];
        if (fnmatch(m->server, server ? server : "", 0) != 0)
            continue;
        for (size_t k = 0; k < m->tools.n; k++)
            if (fnmatch(m->tools.v[k], tool, 0) == 0)
                return m->category->name;
    }
    return NULL;
}

static const struct agent *find_agent(const struct pol *p, const char *id)
{
    for (size_t i = 0; id && i < p->n_agents; i++)
        if (strcmp(p->agents[i].id, id) == 0)
            return &p->agents[i];
    return NULL;
}

bool pol_has_agent(const struct pol *p, const char *agent_id)
{
    return find_agent(p, agent_id) != NULL;
}

/* Does the granted scope g cover the required scope r? "*" covers all; "fs:*" covers
 * "fs:read" and "fs:write:tmp". */
static bool covers(const char *g, const char *r)
{
    size_t n = strlen(g);
    if (strcmp(g, "*") == 0 || strcmp(g, r) == 0)
        return true;
    return n >= 2 && g[n - 1] == '*' && g[n - 2] == ':' && strncmp(g, r, n - 1) == 0;
}

bool pol_agent_allows(const struct pol *p, const char *agent_id, const char *category,
                      char *missing, size_t cap)
{
    const struct agent *a = find_agent(p, agent_id);
    const struct category *c = find_category(p, category);

    if (cap)
        missing[0] = '\0';
    if (!a || !c)
        return false; /* SECURITY: an unknown agent or category has no scopes */
    for (size_t i = 0; i < c->scopes.n; i++) {
        bool ok = false;
        for (size_t k = 0; !ok && k < a->scopes.n; k++)
            ok = covers(a->scopes.v[k], c->scopes.v[i]);
        if (!ok) {
            snprintf(missing, cap, "%s", c->scopes.v[i]);
            return false;
        }
    }
    return true;
}

struct pol_rate pol_agent_rate(const struct pol *p, const char *agent_id)
{
    const struct agent *a = find_agent(p, agent_id);
    struct pol_rate none = {0};
    return a ? a->rate : none;
}

const char *pol_agent_by_key(const struct pol *p, const char *key_sha256_hex)
{
    unsigned char h[32];
    size_t bin = 0;
    const char *found = NULL;

    if (!key_sha256_hex || strlen(key_sha256_hex) != 64 ||
        sodium_hex2bin(h, sizeof(h), key_sha256_hex, 64, NULL, &bin, NULL) != 0 || bin != 32)
        return NULL;
    /* SECURITY: every agent is compared, each in constant time */
    for (size_t i = 0; i < p->n_agents; i++)
        if (p->agents[i].has_key && sodium_memcmp(p->agents[i].key_hash, h, 32) == 0)
            found = p->agents[i].id;
    return found;
}

double pol_deny_risk(const struct pol *p)
{
    return p->deny_risk;
}

double pol_flag_risk(const struct pol *p)
{
    return p->flag_risk;
}

enum pol_fail_mode pol_fail_mode(const struct pol *p)
{
    return p->fail_mode;
}

enum pol_action pol_finding_action(const struct pol *p, const char *category)
{
    for (size_t i = 0; i < p->n_actions; i++)
        if (strcmp(p->actions[i].category, category) == 0)
            return p->actions[i].action;
    return POL_ACTION_DEFAULT;
}

bool pol_category_scopes(const struct pol *p, const char *category, char *out, size_t cap)
{
    const struct category *c = find_category(p, category);
    size_t n = 0;

    if (!c || !cap)
        return false;
    out[0] = '\0';
    for (size_t i = 0; i < c->scopes.n; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? " " : "", c->scopes.v[i]);
        if (w < 0 || (size_t)w >= cap - n)
            return false;
        n += (size_t)w;
    }
    return true;
}

size_t pol_category_count(const struct pol *p)
{
    return p->n_cats;
}

const char *pol_category_name(const struct pol *p, size_t i)
{
    return i < p->n_cats ? p->cats[i].name : NULL;
}
