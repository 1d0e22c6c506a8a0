/*
 * path: the canonical form of the paths in a text, so that sensitive-file and traversal
 * rules see /etc/shadow in /etc//./shadow, /tmp/x/../../etc/shadow, C:\Users\me\.ssh\id_rsa
 * and $HOME/.aws/credentials alike (issue 3: "Paths are canonicalised before
 * sensitive-path and traversal checks"). Lexical only: nothing is resolved on disk (the
 * paths name the downstream's files, not ours).
 *
 * Every token of the text (a run without blanks, quotes or shell operators) that holds a
 * '/' or '\\' is rewritten:
 *   - '\\' becomes '/' (Windows and mixed separators);
 *   - a leading $HOME, ${HOME}, %USERPROFILE% or %HOMEPATH% becomes '~';
 *   - after a URL's "scheme://authority", and otherwise from the start: repeated '/'
 *     collapse (a leading "//" is kept: UNC), "." segments go, and "name/.." pairs cancel;
 *     ".." that climbs above the start stays (relative) or is dropped at the root
 *     (absolute: "/../etc" is "/etc").
 * Percent-encoded separators are decoded by the percent step before this one runs.
 */
#include "inspect/normalize.h"

#include <string.h>

#define PATH_MAX_SEGMENTS 512 /* per token; a token with more is left as it is */

static bool token_char(unsigned char c)
{
    return c > ' ' && c != '"' && c != '\'' && c != '`' && c != '<' && c != '>' && c != '|' &&
           c != ';' && c != '&' && c != '(' && c != ')' && c != ',' && c != '=' && c != 0x7f;
}

static const char *const home_vars[] = {"${HOME}", "$HOME", "%USERPROFILE%", "%HOMEPATH%"};

/* Writes the canonical form of the token t[0..n) to out. */
static int canon_token(const char *t, size_t n, struct dbuf *out)
{
    size_t seg_off[PATH_MAX_SEGMENTS], seg_len[PATH_MAX_SEGMENTS], nseg = 0, lead = 0, i = 0;
    size_t base = out->len;
    bool absolute, trailing;
    const char *scheme = NULL;
    int rc = 0;

    /* keep "scheme://authority" as it is */
    for (size_t k = 0; k + 2 < n && k < 32; k++) {
        if (t[k] == ':' && t[k + 1] == '/' && t[k + 2] == '/') {
            scheme = t + k;
            break;
        }
        if (!((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z') ||
              (t[k] >= '0' && t[k] <= '9') || t[k] == '+' || t[k] == '-' || t[k] == '.'))
            break;
    }
    if (scheme) {
        lead = (size_t)(scheme - t) + 3;
        while (lead < n && t[lead] != '/' && t[lead] != '\\')
            lead++;
        if (lead == n)
            return dbuf_add(out, t, n); /* no path */
        rc = dbuf_add(out, t, lead);
    } else {
        for (size_t h = 0; h < sizeof(home_vars) / sizeof(home_vars[0]); h++) {
            size_t k = strlen(home_vars[h]);
            if (n > k && memcmp(t, home_vars[h], k) == 0 && (t[k] == '/' || t[k] == '\\')) {
                rc = dbuf_add(out, "~", 1);
                lead = k;
                break;
            }
        }
        if (!lead && n >= 2 && t[1] == ':' && ((t[0] | 32) >= 'a' && (t[0] | 32) <= 'z')) {
            rc = dbuf_add(out, t, 2); /* a drive letter */
            lead = 2;
        }
    }
    if (rc)
        return rc;
    i = lead;
    absolute = i < n && (t[i] == '/' || t[i] == '\\');
    if (absolute && !scheme && i + 1 < n && (t[i + 1] == '/' || t[i + 1] == '\\') &&
        i == 0) { /* UNC //server/share */
        if ((rc = dbuf_add(out, "/", 1)))
            return rc;
    }
    trailing = n > i && (t[n - 1] == '/' || t[n - 1] == '\\');
    while (i < n) {
        size_t s;
        while (i < n && (t[i] == '/' || t[i] == '\\'))
            i++;
        s = i;
        while (i < n && t[i] != '/' && t[i] != '\\')
            i++;
        if (i == s || (i - s == 1 && t[s] == '.'))
            continue;
        if (i - s == 2 && t[s] == '.' && t[s + 1] == '.') {
            if (nseg && !(seg_len[nseg - 1] == 2 && memcmp(t + seg_off[nseg - 1], "..", 2) == 0)) {
                nseg--;
                continue;
            }
            if (absolute)
                continue; /* above the root is the root */
        }
        if (nseg == PATH_MAX_SEGMENTS) {
            out->len = base;
            return dbuf_add(out, t, n);
        }
        seg_off[nseg] = s, seg_len[nseg] = i - s, nseg++;
    }
    if (absolute && (rc = dbuf_add(out, "/", 1)))
        return rc;
    for (size_t k = 0; !rc && k < nseg; k++) {
        if (k)
            rc = dbuf_add(out, "/", 1);
        if (!rc)
            rc = dbuf_add(out, t + seg_off[k], seg_len[k]);
    }
    if (!rc && trailing && nseg)
        rc = dbuf_add(out, "/", 1);
    if (!rc && !absolute && !nseg && out->len == base + lead)
        rc = dbuf_add(out, ".", 1); /* "a/.." is "." */
    return rc;
}

int insp__path(const char *in, size_t len, struct dbuf *out)
{
    size_t i = 0, done = 0;
    bool changed = false;
    int rc = 0;

    while (!rc && i < len) {
        size_t s = i, before;
        if (!token_char((unsigned char)in[i])) {
            i++;
            continue;
        }
        while (i < len && token_char((unsigned char)in[i]))
            i++;
        if (!memchr(in + s, '/', i - s) && !memchr(in + s, '\\', i - s))
            continue;
        if ((rc = dbuf_add(out, in + done, s - done)))
            break;
        before = out->len;
        if ((rc = canon_token(in + s, i - s, out)))
            break;
        changed |= out->len - before != i - s || memcmp(out->ptr + before, in + s, i - s) != 0;
        done = i;
    }
    if (!rc)
        rc = dbuf_add(out, in + done, len - done);
    return rc ? rc : changed;
}
