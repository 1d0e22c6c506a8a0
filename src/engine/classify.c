/*
 * classify: the rule stage. Every string of the arguments (keys included) is scanned with
 * the rule packs' database for its target; the verdict collects the rules that matched and
 * takes the highest risk.
 *
 * Arguments are walked straight from their bytes with the jsonrpc walkers (no tree);
 * descriptions arrive as jansson values from discovery.
 */
#include "engine/engine-int.h"
#include "inspect/inspect.h"
#include "inspect/normalize.h"
#include "jsonrpc/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

struct walk {
    struct engine_session *s;
    enum insp_target target;
    struct engine_verdict *v;
    const char *tool; /* the tool the text belongs to, for rule scopes (NULL: unknown) */
    struct dbuf text; /* decoded string being scanned */
    int depth;
    unsigned layers;  /* hidden layers removed to reach the text being scanned */
    const char *path; /* the argument leaf's JSON path, NULL elsewhere */
    size_t path_len;
    char field[128]; /* the name of the member holding the leaf, once asked for */
    bool have_field;
    uint32_t *seen_in; /* per rule: the leaf (generation) it last matched in, or NULL */
    uint32_t leaf_gen;
};

/* The field a leaf sits in: the last member name of its path, array indexes and the
 * "{key}" mark skipped ($.files[2].content -> content; $.a["b c"] -> b c). */
static const char *leaf_field(struct walk *w)
{
    const char *p = w->path;
    size_t n = w->path_len, k = 0;

    if (w->have_field || !p)
        return p ? w->field : NULL;
    w->have_field = true;
    w->field[0] = '\0';
    if (n >= 5 && memcmp(p + n - 5, "{key}", 5) == 0)
        n -= 5;
    while (n && p[n - 1] == ']' && n >= 2 && p[n - 2] != '"') { /* [i] */
        while (n && p[n - 1] != '[')
            n--;
        if (n)
            n--;
    }
    if (n >= 2 && p[n - 1] == ']' && p[n - 2] == '"') { /* ["key"] */
        size_t e = n - 2, b = e;
        while (b > 1 && !(p[b - 1] == '"' && p[b - 2] == '[' && (b < 3 || p[b - 3] != '\\')))
            b--;
        p += b, n = e - b;
    } else {
        size_t b = n;
        while (b && p[b - 1] != '.' && p[b - 1] != ']' && p[b - 1] != '$')
            b--;
        p += b, n -= b;
    }
    k = n < sizeof(w->field) - 1 ? n : sizeof(w->field) - 1;
    memcpy(w->field, p, k);
    w->field[k] = '\0';
    return w->field;
}

/* DESIGN §2: each hidden encoding raises risk. A rule that matches only once percent,
 * base64, look-alike letters… were undone gains 0.1 per layer, up to 1. A leaf's forms
 * come in chain order, each with the layers of the one before and more, so the first form
 * a rule matches in has the fewest: only that one counts. */
static double layered_risk(double risk, unsigned layers)
{
    double r = risk + 0.1 * __builtin_popcount(layers);
    return r > 1.0 ? 1.0 : r;
}

static int on_rule(void *ctx, size_t rule)
{
    struct walk *w = ctx;
    const struct insp_rule *r = insp_ruleset_rule(w->s->engine->rules, rule);

    double risk;
    bool known = false;

    if ((r->tools.n || r->fields.n) &&
        !insp_rule_in_scope(r, w->tool, r->fields.n ? leaf_field(w) : NULL))
        return 0;
    if (w->seen_in) {
        if (w->seen_in[rule] == w->leaf_gen)
            return 0; /* matched in a plainer form of this leaf already */
        w->seen_in[rule] = w->leaf_gen;
    }
    risk = layered_risk(r->risk, w->layers);
    for (size_t i = 0; i < w->v->n_rule_ids; i++)
        known |= strcmp(w->v->rule_ids[i], r->id) == 0;
    if (!known && w->v->n_rule_ids < ENGINE_MAX_HITS)
        w->v->rule_ids[w->v->n_rule_ids++] = r->id;
    /* A redact rule's finding is removed, not judged: it does not raise the risk. */
    if (!r->redact && risk > w->v->risk)
        w->v->risk = risk;
    return 0;
}

static int scan(struct walk *w, const char *text, size_t len)
{
    return insp_scan(w->s->engine->rules, w->s->scratch, w->target, text, len, on_rule, w);
}

static int walk_value(struct walk *w, struct jrpc_slice v);

/* Appends the decoded string tok and a newline to the text being collected. */
static int add_string(struct walk *w, struct jrpc_slice tok)
{
    long n;

    if (dbuf_reserve(&w->text, tok.n + 1))
        return ERR_NOMEM;
    n = jrpc_string_decode(tok, w->text.ptr + w->text.len, tok.n + 1);
    /* SECURITY: a string we cannot decode as the server will is scanned as raw bytes */
    if (n < 0)
        memcpy(w->text.ptr + w->text.len, tok.p, tok.n);
    w->text.len += n < 0 ? tok.n : (size_t)n;
    w->text.ptr[w->text.len++] = '\n';
    return 0;
}

static bool trim_is_string(struct jrpc_slice *v)
{
    while (v->n && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
        v->p++, v->n--;
    return v->n && *v->p == '"';
}

/* Where a value sits in a CallToolResult: binary payloads are not text the model reads,
 * and only MCP's own places hold them: the "data" of an image or audio item of content[],
 * and the "blob" of an embedded resource. Anywhere else (structuredContent, an error's
 * data) a "data" or "blob" string is text like any other, and structuredContent's keys
 * are scanned too (they are the model's to read). */
enum place {
    PL_ROOT = 0,   /* the result (or error) object */
    PL_CONTENT,    /* the content array */
    PL_ITEM,       /* an element of content[] */
    PL_RESOURCE,   /* an item's "resource" object */
    PL_STRUCTURED, /* inside structuredContent: keys are text */
    PL_OTHER,
};

struct object {
    struct walk *w;
    enum place at;
    struct jrpc_slice data;
    bool has_data, binary;
};

static bool key_is(const char *key, size_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(key, name, klen) == 0;
}

static int walk_at(struct walk *w, struct jrpc_slice v, enum place at);

static int on_member(void *ctx, const char *key, size_t klen, struct jrpc_slice v)
{
    struct object *o = ctx;
    enum place child = o->at == PL_STRUCTURED ? PL_STRUCTURED : PL_OTHER;
    int rc;

    if (o->at == PL_ROOT && key_is(key, klen, "content"))
        child = PL_CONTENT;
    else if (o->at == PL_ROOT && key_is(key, klen, "structuredContent"))
        child = PL_STRUCTURED;
    else if (o->at == PL_ITEM && key_is(key, klen, "resource"))
        child = PL_RESOURCE;
    if (o->at == PL_ITEM && key_is(key, klen, "type") && trim_is_string(&v) && v.n < 16) {
        char t[16];
        long n = jrpc_string_decode(v, t, sizeof(t));
        o->binary =
            (n == 5 && memcmp(t, "image", 5) == 0) || (n == 5 && memcmp(t, "audio", 5) == 0);
    }
    if (o->at == PL_RESOURCE && key_is(key, klen, "blob") && trim_is_string(&v))
        return 0;
    if (o->at == PL_ITEM && key_is(key, klen, "data") && trim_is_string(&v)) {
        o->data = v; /* binary only if the item's type says so, wherever "type" comes */
        o->has_data = true;
        return 0;
    }
    if (o->at == PL_STRUCTURED && key) {
        struct jrpc_slice k = {key, klen};
        /* keys arrive decoded: added as they are */
        if (dbuf_reserve(&o->w->text, k.n + 1))
            return ERR_NOMEM;
        memcpy(o->w->text.ptr + o->w->text.len, k.p, k.n);
        o->w->text.len += k.n;
        o->w->text.ptr[o->w->text.len++] = '\n';
    }
    rc = walk_at(o->w, v, child);
    return rc;
}

struct array {
    struct walk *w;
    enum place at; /* of the elements */
};

static int on_element(void *ctx, size_t index, struct jrpc_slice v)
{
    struct array *a = ctx;
    (void)index;
    return walk_at(a->w, v, a->at);
}

/* Collects every text of a result (its keys are its structure, not text for the model,
 * except in structuredContent). */
static int walk_at(struct walk *w, struct jrpc_slice v, enum place at)
{
    int rc;

    if (trim_is_string(&v))
        return add_string(w, v);
    if (!v.n || (*v.p != '{' && *v.p != '['))
        return 0; /* numbers, true, false, null */
    if (++w->depth > CLAMPD_MAX_JSON_DEPTH)
        return ERR_TOO_BIG;
    if (*v.p == '{') {
        struct object o = {.w = w, .at = at == PL_CONTENT ? PL_ITEM : at};
        rc = jrpc_object_each(v, on_member, &o);
        if (!rc && o.has_data && !o.binary)
            rc = add_string(w, o.data);
    } else {
        struct array a = {w, at == PL_CONTENT      ? PL_CONTENT
                             : at == PL_STRUCTURED ? PL_STRUCTURED
                                                   : PL_OTHER};
        rc = jrpc_array_each(v, on_element, &a);
    }
    w->depth--;
    return rc;
}

static int walk_value(struct walk *w, struct jrpc_slice v)
{
    return walk_at(w, v, PL_ROOT);
}

static int on_leaf(void *ctx, const struct insp_leaf *leaf)
{
    struct walk *w = ctx;

    w->layers = leaf->layers;
    if (leaf->layers == 0)
        w->leaf_gen++; /* a new leaf (its raw form comes first) */
    if (w->target == INSP_ARGUMENTS) {
        w->path = leaf->path, w->path_len = leaf->path_len;
        w->have_field = false; /* the path buffer is reused: work the field out again */
    }
    return scan(w, leaf->text, leaf->len);
}

int engine__classify_raw(struct engine_session *s, int target, const char *tool, const char *json,
                         size_t len, struct engine_verdict *v)
{
    struct walk w = {.s = s, .target = (enum insp_target)target, .v = v, .tool = tool};
    int rc;

    if (!s->engine->rules || !s->scratch)
        return s->engine->rules ? ERR_NOMEM : 0;
    /* Arguments: every leaf in every decoded form (normalize.h). Results can be megabytes
     * of text: their strings, decoded from JSON, are joined with newlines and scanned in
     * one pass (one scan per string costs more than the scanning on JSON-heavy results).
     * A match across two strings is possible and errs towards finding too much. */
    if (target == INSP_ARGUMENTS) {
        w.seen_in = calloc(insp_ruleset_count(s->engine->rules), sizeof(*w.seen_in));
        if (!w.seen_in)
            return ERR_NOMEM;
        rc = insp_flatten(json, len, on_leaf, &w);
        free(w.seen_in);
        return rc;
    }
    dbuf_init(&w.text, CLAMPD_MAX_MESSAGE);
    rc = walk_value(&w, (struct jrpc_slice){json, len});
    if (!rc)
        rc = scan(&w, w.text.ptr ? w.text.ptr : "", w.text.len);
    dbuf_free(&w.text);
    return rc;
}

static int walk_json(struct walk *w, const json_t *value)
{
    const char *key;
    json_t *item;
    size_t i;
    int rc = 0;

    if (json_is_string(value))
        return insp_normalize_text(json_string_value(value), json_string_length(value), on_leaf, w);
    if (++w->depth > CLAMPD_MAX_JSON_DEPTH)
        return ERR_TOO_BIG;
    if (json_is_object(value)) {
        json_object_foreach ((json_t *)value, key, item) {
            rc = insp_normalize_text(key, strlen(key), on_leaf, w);
            if (!rc)
                rc = walk_json(w, item);
            if (rc)
                break;
        }
    } else if (json_is_array(value)) {
        json_array_foreach (value, i, item) {
            rc = walk_json(w, item);
            if (rc)
                break;
        }
    }
    w->depth--;
    return rc;
}

int engine__classify_json(struct engine_session *s, int target, const char *tool,
                          const json_t *value, struct engine_verdict *v)
{
    struct walk w = {.s = s, .target = (enum insp_target)target, .v = v, .tool = tool};

    if (!s->engine->rules || !s->scratch)
        return s->engine->rules ? ERR_NOMEM : 0;
    return walk_json(&w, value);
}
