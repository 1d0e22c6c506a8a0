/*
 * redact: replace validated PII and secret spans of a response text with
 * "[REDACTED:<type>]". Overlapping spans are merged (the earliest rule names the type).
 */
#include "inspect/inspect-int.h"

#include <stdlib.h>
#include <string.h>

static int by_start(const void *a, const void *b)
{
    const struct insp_span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end; /* longest first */
}

int insp_redact(const struct insp_ruleset *rs, struct insp_scratch *sc, const char *text,
                size_t len, struct dbuf *out, size_t *n_redacted, insp_match_fn fn, void *ctx)
{
    return insp_redact_some(rs, sc, text, len, out, n_redacted, fn, ctx, NULL, NULL);
}

int insp_redact_some(const struct insp_ruleset *rs, struct insp_scratch *sc, const char *text,
                     size_t len, struct dbuf *out, size_t *n_redacted, insp_match_fn fn, void *ctx,
                     insp_rule_pred keep, void *keep_ctx)
{
    size_t pos = 0, n = 0;
    int rc;

    *n_redacted = 0;
    dbuf_reset(out);
    rc = insp_scan(rs, sc, INSP_RESPONSE, text, len, fn, ctx);
    if (rc || sc->n_spans == 0)
        return rc;
    for (size_t i = 0; i < sc->n_spans; i++)
        if (!keep || keep(keep_ctx, sc->spans[i].rule))
            sc->spans[n++] = sc->spans[i];
    sc->n_spans = n;
    if (n == 0)
        return 0;
    qsort(sc->spans, sc->n_spans, sizeof(sc->spans[0]), by_start);
    for (size_t i = 0; i < sc->n_spans && !rc;) {
        struct insp_span sp = sc->spans[i];
        /* merge every span that overlaps this one */
        while (++i < sc->n_spans && sc->spans[i].start < sp.end)
            if (sc->spans[i].end > sp.end)
                sp.end = sc->spans[i].end;
        rc = dbuf_add(out, text + pos, sp.start - pos);
        if (!rc)
            rc = dbuf_printf(out, "[REDACTED:%s]", rs->rules[sp.rule].redact);
        pos = sp.end;
        (*n_redacted)++;
    }
    if (!rc)
        rc = dbuf_add(out, text + pos, len - pos);
    return rc;
}
