/*
 * rules_load: rule packs (rules/NAME.yaml, shared/DESIGN.md §4) into struct insp_rule.
 *
 * Strict on purpose: an unknown key, a missing field, a risk out of range or a rule
 * without examples stops the load with "file:line: what", because a typo in a security
 * rule must not silently disable it.
 */
#include "inspect/inspect-int.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

struct loader {
    struct insp_ruleset *rs;
    const char *file;
    yaml_document_t doc;
    char **errmsg;
};

static int fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *l, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    char out[1024];
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

static int strv_add(struct insp_strv *sv, const char *s)
{
    char **v;

    if (sv->n >= INSP_MAX_LIST)
        return ERR_TOO_BIG;
    v = realloc(sv->v, (sv->n + 1) * sizeof(*v));
    if (!v)
        return ERR_NOMEM;
    sv->v = v;
    sv->v[sv->n] = strdup(s);
    if (!sv->v[sv->n])
        return ERR_NOMEM;
    sv->n++;
    return 0;
}

/* A sequence of scalars (or one scalar) into sv. */
static int read_list(struct loader *l, yaml_node_t *n, const char *key, struct insp_strv *sv)
{
    if (scalar(n))
        return strv_add(sv, scalar(n));
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, "'%s' must be a list of strings", key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        const char *s = scalar(node(l, *it));
        int rc;
        if (!s)
            return fail(l, node(l, *it), "'%s' must hold strings only", key);
        rc = strv_add(sv, s);
        if (rc)
            return rc == ERR_TOO_BIG ? fail(l, n, "'%s' has too many entries", key) : rc;
    }
    return 0;
}

static int read_names(struct loader *l, yaml_node_t *n, const char *key, const char *const *names,
                      unsigned *bits)
{
    struct insp_strv sv = {0};
    int rc = read_list(l, n, key, &sv);

    for (size_t i = 0; !rc && i < sv.n; i++) {
        size_t k = 0;
        while (names[k] && strcmp(names[k], sv.v[i]) != 0)
            k++;
        if (!names[k])
            rc = fail(l, n, "unknown %s '%s'", key, sv.v[i]);
        else
            *bits |= 1u << k;
    }
    insp__strv_free(&sv);
    return rc;
}

static int read_examples(struct loader *l, yaml_node_t *n, struct insp_rule *r)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return fail(l, n, "'examples' must be a mapping with 'match' and 'no_match'");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = scalar(node(l, p->key));
        int rc;
        if (k && strcmp(k, "match") == 0)
            rc = read_list(l, node(l, p->value), k, &r->match);
        else if (k && strcmp(k, "no_match") == 0)
            rc = read_list(l, node(l, p->value), k, &r->no_match);
        else
            rc = fail(l, node(l, p->key), "unknown key '%s' in examples", k ? k : "?");
        if (rc)
            return rc;
    }
    return 0;
}

static int read_risk(struct loader *l, yaml_node_t *n, double *risk)
{
    const char *s = scalar(n);
    char *end;

    if (!s)
        return fail(l, n, "'risk' must be a number from 0 to 1");
    errno = 0;
    *risk = strtod(s, &end);
    if (errno || *end || end == s || !(*risk >= 0.0 && *risk <= 1.0))
        return fail(l, n, "'risk' must be a number from 0 to 1, not '%s'", s);
    return 0;
}

static int read_string(struct loader *l, yaml_node_t *n, const char *key, char **out)
{
    const char *s = scalar(n);

    if (!s || !*s)
        return fail(l, n, "'%s' must be a non-empty string", key);
    free(*out);
    *out = strdup(s);
    return *out ? 0 : ERR_NOMEM;
}

static int read_field(struct loader *l, const char *k, yaml_node_t *v, struct insp_rule *r)
{
    static const char *const targets[] = {"arguments", "description", "response", NULL};
    static const char *const flags[] = {"caseless", "dotall", "multiline", "utf8", NULL};

    if (strcmp(k, "id") == 0)
        return read_string(l, v, k, &r->id);
    if (strcmp(k, "category") == 0)
        return read_string(l, v, k, &r->category);
    if (strcmp(k, "description") == 0)
        return read_string(l, v, k, &r->description);
    if (strcmp(k, "risk") == 0)
        return read_risk(l, v, &r->risk);
    if (strcmp(k, "applies_to") == 0)
        return read_names(l, v, k, targets, &r->targets);
    if (strcmp(k, "flags") == 0)
        return read_names(l, v, k, flags, &r->flags);
    if (strcmp(k, "patterns") == 0)
        return read_list(l, v, k, &r->patterns);
    if (strcmp(k, "tools") == 0)
        return read_list(l, v, k, &r->tools);
    if (strcmp(k, "fields") == 0)
        return read_list(l, v, k, &r->fields);
    if (strcmp(k, "examples") == 0)
        return read_examples(l, v, r);
    if (strcmp(k, "validator") == 0) {
        const char *name = scalar(v);
        r->validator = name ? insp__validator_index(name) : -1;
        return r->validator > 0 ? 0 : fail(l, v, "unknown validator '%s'", name ? name : "?");
    }
    if (strcmp(k, "check") == 0) {
        const char *name = scalar(v);
        r->check = name ? insp__check_index(name) : -1;
        return r->check > 0 ? 0 : fail(l, v, "unknown check '%s'", name ? name : "?");
    }
    if (strcmp(k, "redact") == 0)
        return read_string(l, v, k, &r->redact);
    return fail(l, v, "unknown key '%s' in a rule", k);
}

/* Checks what every rule must have; the message names the rule. */
static int check_rule(struct loader *l, yaml_node_t *n, const struct insp_rule *r)
{
    if (!r->id || !r->category || !r->description || !r->targets || !r->patterns.n)
        return fail(l, n, "rule '%s' needs id, category, description, applies_to and patterns",
                    r->id ? r->id : "?");
    for (const char *p = r->id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return fail(l, n, "rule id '%s': use a-z, 0-9, '.', '_' and '-'", r->id);
    if (r->patterns.n > INSP_MAX_PATTERNS)
        return fail(l, n, "rule '%s' has more than %d patterns", r->id, INSP_MAX_PATTERNS);
    if (r->check && (r->validator || r->redact))
        return fail(l, n,
                    "rule '%s': a check runs on the whole text; it cannot have a"
                    " validator or redact",
                    r->id);
    if ((r->redact || r->validator) && (r->tools.n || r->fields.n))
        return fail(l, n,
                    "rule '%s': a rule with a validator or redact cannot be scoped to"
                    " tools or fields",
                    r->id);
    if (r->fields.n && !(r->targets & 1u << INSP_ARGUMENTS))
        return fail(l, n,
                    "rule '%s': fields scope argument fields; the rule does not apply to"
                    " arguments",
                    r->id);
    if (r->redact && r->targets != 1u << INSP_RESPONSE)
        return fail(l, n, "rule '%s': redact applies to responses only", r->id);
    if (r->match.n < 1 || r->no_match.n < 1)
        return fail(l, n, "rule '%s' needs examples: at least one match and one no_match", r->id);
    for (size_t i = 0; i < l->rs->n; i++)
        if (strcmp(l->rs->rules[i].id, r->id) == 0)
            return fail(l, n, "rule id '%s' is already defined in %s:%d", r->id,
                        l->rs->rules[i].file, l->rs->rules[i].line);
    return 0;
}

static int read_rule(struct loader *l, yaml_node_t *n)
{
    struct insp_rule r;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    r.risk = -1;
    if (n->type != YAML_MAPPING_NODE)
        return fail(l, n, "each rule must be a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; !rc && p < n->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(node(l, p->key));
        rc = k ? read_field(l, k, node(l, p->value), &r) : fail(l, n, "a rule key is not a string");
    }
    if (!rc && r.risk < 0)
        rc = fail(l, n, "rule '%s' needs a risk", r.id ? r.id : "?");
    if (!rc)
        rc = check_rule(l, n, &r);
    if (!rc) {
        r.file = strdup(l->file);
        r.line = (int)n->start_mark.line + 1;
        rc = r.file ? insp__ruleset_add(l->rs, &r) : ERR_NOMEM;
    }
    if (rc)
        insp__rule_deinit(&r);
    return rc;
}

static int load_document(struct loader *l)
{
    yaml_node_t *root = yaml_document_get_root_node(&l->doc);
    yaml_node_t *rules = NULL;

    if (!root || root->type != YAML_MAPPING_NODE)
        return fail(l, root, "a rule pack is a mapping with a 'rules' list");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(node(l, p->key));
        if (!k || strcmp(k, "rules") != 0)
            return fail(l, node(l, p->key), "unknown top-level key '%s'", k ? k : "?");
        rules = node(l, p->value);
    }
    if (!rules || rules->type != YAML_SEQUENCE_NODE)
        return fail(l, root, "'rules' must be a list");
    for (yaml_node_item_t *it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++) {
        int rc = read_rule(l, node(l, *it));
        if (rc)
            return rc;
    }
    return 0;
}

/* Parses one pack from f or, when f is NULL, from text[0..len). */
static int load_pack(struct insp_ruleset *rs, const char *name, FILE *f, const char *text,
                     size_t len, char **errmsg)
{
    struct loader l;
    yaml_parser_t parser;
    int rc;

    memset(&l, 0, sizeof(l));
    l.rs = rs, l.file = name, l.errmsg = errmsg;
    yaml_parser_initialize(&parser);
    if (f)
        yaml_parser_set_input_file(&parser, f);
    else
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &l.doc)) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s:%lu: %s", name, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "YAML error");
        free(*errmsg);
        *errmsg = strdup(msg);
        rc = ERR_PARSE;
    } else {
        rc = load_document(&l);
        yaml_document_delete(&l.doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int load_file(struct insp_ruleset *rs, const char *path, char **errmsg)
{
    FILE *f = fopen(path, "rb");
    int rc;

    if (!f) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s: cannot open: %s", path, strerror(errno));
        free(*errmsg);
        *errmsg = strdup(msg);
        return ERR_IO;
    }
    rc = load_pack(rs, path, f, NULL, 0, errmsg);
    fclose(f);
    return rc;
}

static int yaml_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0;
}

static int load_path(struct insp_ruleset *rs, const char *path, char **errmsg)
{
    struct stat st;
    struct dirent **list = NULL;
    int n, rc = 0;

    if (stat(path, &st))
        return load_file(rs, path, errmsg); /* reports why it cannot be opened */
    if (!S_ISDIR(st.st_mode))
        return load_file(rs, path, errmsg);
    n = scandir(path, &list, yaml_name, alphasort);
    if (n < 0)
        return load_file(rs, path, errmsg);
    for (int i = 0; i < n; i++) {
        char *file = rc ? NULL : insp__join(path, list[i]->d_name);
        if (!rc)
            rc = file ? load_file(rs, file, errmsg) : ERR_NOMEM;
        free(file);
        free(list[i]);
    }
    free(list);
    return rc;
}

/* Loads from paths, or the built-in packs when paths is NULL. */
static int load_all(const char *const *paths, size_t n_paths, const char *cache_dir,
                    struct insp_ruleset **out, char **errmsg)
{
    struct insp_ruleset *rs = calloc(1, sizeof(*rs));
    int rc = ERR_NOMEM;

    *out = NULL;
    *errmsg = NULL;
    if (!rs)
        goto out;
    rc = 0;
    for (size_t i = 0; !rc && paths && i < n_paths; i++)
        rc = load_path(rs, paths[i], errmsg);
    for (const struct insp_pack *p = insp_builtin_packs; !rc && !paths && p->name; p++)
        rc = load_pack(rs, p->name, NULL, p->text, p->len, errmsg);
    if (!rc && rs->n == 0) {
        *errmsg = strdup("no rules found (no *.yaml file with rules in the given paths)");
        rc = ERR_NOT_FOUND;
    }
    if (!rc)
        rc = insp__compile(rs, cache_dir, errmsg);
    if (rc)
        goto out;
    *out = rs;
    rs = NULL;
out:
    insp_ruleset_free(rs);
    return rc;
}

int insp_ruleset_load(const char *const *paths, size_t n_paths, struct insp_ruleset **out,
                      char **errmsg)
{
    return insp_ruleset_load_cached(paths, n_paths, NULL, out, errmsg);
}

int insp_ruleset_load_builtin(struct insp_ruleset **out, char **errmsg)
{
    return insp_ruleset_load_cached(NULL, 0, NULL, out, errmsg);
}

int insp_ruleset_load_cached(const char *const *paths, size_t n_paths, const char *cache_dir,
                             struct insp_ruleset **out, char **errmsg)
{
    static const char *const none[] = {NULL};

    if (paths && !n_paths)
        paths = none;
    return load_all(paths, n_paths, cache_dir, out, errmsg);
}
