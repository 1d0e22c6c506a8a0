/*
 * host: the hosts a text names, and what kind of address each one is (the structured SSRF
 * check of issue 3). A pattern cannot say that 2130706433, 0x7f.1, 017700000001,
 * [::ffff:7f00:1] and 127.0.0.1.nip.io are all the loopback address; a parser can.
 *
 *   text ──find URL authorities, UNC names, bare IP literals──▶ host candidates
 *   host ──IPv4 in every WHATWG/inet_aton form, IPv6 (inet_pton), known names──▶ class
 *
 * The IPv4 reading follows the WHATWG URL standard's IPv4 parser (what browsers, Node's
 * URL and most HTTP clients do): one to four parts, each decimal, octal (leading 0) or hex
 * (0x), the last part filling the remaining bytes. A URL parser that reads a host in a
 * way this one does not is a bypass, so where readings differ (userinfo, backslashes)
 * every reading is classified and the worst one counts.
 */
#include "inspect/inspect-int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_MAX 255 /* bytes of one host name (RFC 1035); longer candidates are skipped */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* ---- IPv4 ---- */

/* Parses one part in its radix; false when it is not a number or exceeds 2^32. */
static bool v4_part(const char *s, size_t n, uint64_t *out, bool *odd_form)
{
    unsigned radix = 10;
    uint64_t v = 0;

    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16, s += 2, n -= 2;
        *odd_form = true;
    } else if (n >= 2 && s[0] == '0') {
        radix = 8, s++, n--;
        *odd_form = true;
    }
    if (n == 0) {
        *out = 0; /* "0x" alone is 0 for WHATWG */
        return radix == 16;
    }
    for (size_t i = 0; i < n; i++) {
        int d = clampd_hexval(s[i]);
        if (d < 0 || (unsigned)d >= radix)
            return false;
        v = v * radix + (unsigned)d;
        if (v > 0xffffffffull)
            return false;
    }
    *out = v;
    return true;
}

/* WHATWG "IPv4 parser": 1-4 dot-separated parts (a single trailing dot allowed). Sets
 * *canonical when the text is plain dotted-quad decimal. */
static bool parse_v4(const char *s, size_t n, uint32_t *addr, int *parts_out, bool *canonical)
{
    uint64_t part[4];
    int parts = 0;
    bool odd = false;
    size_t i = 0;

    if (n && s[n - 1] == '.')
        n--, odd = true;
    if (n == 0)
        return false;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '.')
            j++;
        if (parts == 4 || j == i || !v4_part(s + i, j - i, &part[parts], &odd))
            return false;
        parts++;
        i = j + 1;
    }
    for (int k = 0; k < parts - 1; k++)
        if (part[k] > 255)
            return false;
    if (part[parts - 1] >= (1ull << (8 * (5 - parts))))
        return false;
    uint64_t v = part[parts - 1];
    for (int k = 0; k < parts - 1; k++)
        v += part[k] << (8 * (3 - k));
    *addr = (uint32_t)v;
    *parts_out = parts;
    *canonical = parts == 4 && !odd;
    return true;
}

static enum insp_host_class class_v4(uint32_t a)
{
    unsigned b0 = a >> 24, b1 = (a >> 16) & 255;

    /* metadata: AWS/GCP/Azure/OpenStack, AWS ECS task endpoint and time sync, Alibaba,
     * Oracle Cloud */
    if (a == 0xa9fea9feu || a == 0xa9feaa02u || a == 0xa9fea97bu || a == 0x646464c8u ||
        a == 0xc00000c0u)
        return INSP_HOST_METADATA;
    if (b0 == 127 || b0 == 0) /* 0.0.0.0/8 reaches the local host on Linux */
        return INSP_HOST_LOOPBACK;
    if (b0 == 169 && b1 == 254)
        return INSP_HOST_LINK_LOCAL;
    if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
        (b0 == 100 && (b1 & 0xc0) == 64) /* CGNAT */ || (b0 == 198 && (b1 & 0xfe) == 18) ||
        b0 >= 224 /* multicast, reserved, broadcast */)
        return INSP_HOST_PRIVATE;
    return INSP_HOST_PUBLIC;
}

/* ---- IPv6 ---- */

static bool class_v6(const char *s, size_t n, struct insp_host *h)
{
    char buf[64];
    unsigned char a[16];
    static const unsigned char z12[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                          0,    0, 0,    0,    0, 0, 0x02, 0x54};
    const char *zone = memchr(s, '%', n);

    if (zone) /* fe80::1%eth0, or %25eth0 in a URL */
        n = (size_t)(zone - s);
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, a) != 1)
        return false;
    h->cls = INSP_HOST_PUBLIC;
    if (memcmp(a, ec2, 16) == 0) {
        h->cls = INSP_HOST_METADATA;
    } else if (memcmp(a, z12, 12) == 0) {
        uint32_t v4 = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | a[14] << 8 | a[15];
        /* :: and ::1 are the host itself; ::a.b.c.d (deprecated compatible) embeds IPv4 */
        h->cls = v4 <= 1 ? INSP_HOST_LOOPBACK : class_v4(v4);
        h->obfuscated = v4 > 1;
    } else if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) {
        h->cls = class_v4((uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | a[14] << 8 | a[15]);
        h->obfuscated = true;
    } else if (a[0] == 0x20 && a[1] == 0x02) { /* 6to4 embeds an IPv4 address */
        h->cls = class_v4((uint32_t)a[2] << 24 | (uint32_t)a[3] << 16 | a[4] << 8 | a[5]);
        h->obfuscated = true;
    } else if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
        h->cls = INSP_HOST_LINK_LOCAL;
    } else if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) || a[0] == 0xff) {
        h->cls = INSP_HOST_PRIVATE; /* unique local, old site-local, multicast */
    }
    if (h->cls == INSP_HOST_PUBLIC)
        h->obfuscated = false;
    return true;
}

/* ---- names ---- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(s, name, n) == 0;
}

/* Services whose names resolve to the address written in them: 10.0.0.1.nip.io,
 * 10-0-0-1.sslip.io, app-0a000001.nip.io. Finds that address in the labels before the
 * suffix. */
static bool wildcard_dns(const char *s, size_t n, uint32_t *addr)
{
    static const char *const suffixes[] = {".nip.io", ".sslip.io", ".xip.io", ".nip.direct"};
    char buf[HOST_MAX + 1];
    int parts;
    bool canonical;

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (!ends_with(s, n, suffixes[i]))
            continue;
        size_t m = n - strlen(suffixes[i]), start = 0, dots = 0, lab;
        /* the last four labels, dotted */
        for (size_t k = m; k-- > 0;)
            if (s[k] == '.' && ++dots == 4) {
                start = k + 1;
                break;
            }
        if (parse_v4(s + start, m - start, addr, &parts, &canonical) && parts == 4)
            return true;
        /* the last label, dashed (a-b-c-d, maybe after a name: app-10-0-0-1) or 8 hex */
        for (lab = m; lab > 0 && s[lab - 1] != '.'; lab--)
            ;
        memcpy(buf, s + lab, m - lab);
        buf[m - lab] = '\0';
        size_t len = m - lab, dashes = 0, from = 0;
        for (size_t k = len; k-- > 0;)
            if (buf[k] == '-' && ++dashes == 4) {
                from = k + 1;
                break;
            }
        for (size_t k = from; k < len; k++)
            if (buf[k] == '-')
                buf[k] = '.';
        if (parse_v4(buf + from, len - from, addr, &parts, &canonical) && parts == 4)
            return true;
        if (len >= 8) {
            uint32_t v = 0;
            size_t k = len - 8;
            for (; k < len && clampd_hexval(buf[k]) >= 0; k++)
                v = v << 4 | (uint32_t)clampd_hexval(buf[k]);
            if (k == len) {
                *addr = v;
                return true;
            }
        }
    }
    return false;
}

static bool class_name(const char *s, size_t n, struct insp_host *h)
{
    static const char *const metadata[] = {
        "metadata.google.internal",   "metadata.goog",          "metadata", "instance-data",
        "instance-data.ec2.internal", "metadata.tencentyun.com"};
    static const char *const loopback[] = {"localhost", "localhost.localdomain", "ip6-localhost",
                                           "ip6-loopback", "localhost6"};
    /* public names that resolve to 127.0.0.1 for any subdomain */
    static const char *const loop_dns[] = {"localtest.me", "lvh.me", "vcap.me", "localh.st",
                                           "lacolhost.com"};
    static const char *const internal[] = {".internal",  ".local",    ".localdomain",
                                           ".home.arpa", ".intranet", ".lan"};
    uint32_t a;

    for (size_t i = 0; i < sizeof(metadata) / sizeof(metadata[0]); i++)
        if (name_is(s, n, metadata[i])) {
            h->cls = INSP_HOST_METADATA;
            return true;
        }
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
        if (name_is(s, n, loopback[i])) {
            h->cls = INSP_HOST_LOOPBACK;
            return true;
        }
    if (ends_with(s, n, ".localhost")) {
        h->cls = INSP_HOST_LOOPBACK;
        return true;
    }
    for (size_t i = 0; i < sizeof(loop_dns) / sizeof(loop_dns[0]); i++) {
        size_t k = strlen(loop_dns[i]);
        if (name_is(s, n, loop_dns[i]) ||
            (n > k && s[n - k - 1] == '.' && ends_with(s, n, loop_dns[i]))) {
            h->cls = INSP_HOST_LOOPBACK;
            h->obfuscated = true;
            return true;
        }
    }
    if (wildcard_dns(s, n, &a)) {
        h->cls = class_v4(a);
        h->obfuscated = h->cls != INSP_HOST_PUBLIC;
        return true;
    }
    for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
        if (ends_with(s, n, internal[i]) && n > strlen(internal[i])) {
            h->cls = INSP_HOST_PRIVATE;
            return true;
        }
    return false;
}

int insp_host_classify(const char *host, size_t len, struct insp_host *out)
{
    char buf[HOST_MAX + 1];
    uint32_t a;
    int parts;
    bool canonical;

    memset(out, 0, sizeof(*out));
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
        return class_v6(host + 1, len - 2, out) ? 0 : ERR_PARSE;
    if (len == 0 || len > HOST_MAX)
        return ERR_PARSE;
    for (size_t i = 0; i < len; i++)
        buf[i] = lower(host[i]);
    buf[len] = '\0';
    if (memchr(buf, ':', len))
        return class_v6(buf, len, out) ? 0 : ERR_PARSE;
    if (parse_v4(buf, len, &a, &parts, &canonical)) {
        out->is_ip = true;
        out->cls = class_v4(a);
        out->obfuscated = !canonical && out->cls != INSP_HOST_PUBLIC;
        return 0;
    }
    if (len > 1 && buf[len - 1] == '.')
        buf[--len] = '\0'; /* "localhost." is localhost */
    if (class_name(buf, len, out))
        return 0;
    out->cls = INSP_HOST_PUBLIC; /* a name we know nothing about */
    return 0;
}

/* ---- finding hosts in text ---- */

struct finder {
    unsigned found; /* INSP_HOSTS_* bits */
};

static void note(struct finder *f, const char *host, size_t n, bool bare)
{
    struct insp_host h;

    while (n && (host[n - 1] == '.' || host[n - 1] == ',') && !(n >= 2 && host[n - 2] == '.'))
        n--; /* sentence punctuation after a bare host */
    if (!n || insp_host_classify(host, n, &h))
        return;
    if (h.cls == INSP_HOST_PUBLIC)
        return;
    f->found |= 1u << h.cls;
    /* A bare dotted number with leading zeros is as likely a date or a version as a
     * disguise; inside a URL every odd form counts. */
    if (h.obfuscated &&
        !(bare && h.is_ip && !memmem(host, n, "0x", 2) && !memmem(host, n, "0X", 2)))
        f->found |= INSP_HOSTS_OBFUSCATED;
}

/* Does c end a URL authority (for special schemes '\\' too: WHATWG reads it as '/')? */
static bool authority_end(char c)
{
    return c == '/' || c == '\\' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\n' ||
           c == '\r' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' || c == '|' ||
           c == '{' || c == '}' || c == '^' || c == ',' || c == ';' || c == ')' ||
           (unsigned char)c < 0x20;
}

static bool loose_end(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '<' ||
           c == '>' || c == '`' || (unsigned char)c < 0x20;
}

/* The host of the authority at s[0..n): after the last '@', without the port. */
static void authority(struct finder *f, const char *s, size_t n)
{
    const char *at = NULL;
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] == '@')
            at = s + i;
    if (at) {
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close)
            note(f, s, (size_t)(close - s) + 1, false);
        return;
    }
    for (i = 0; i < n && s[i] != ':'; i++)
        ;
    note(f, s, i, false);
}

static bool scheme_char(char c)
{
    c = lower(c);
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '-' || c == '.';
}

/* A URL whose scheme ends at text[i] == ':'. Returns where its authority starts, or 0. */
static size_t url_at(const char *t, size_t n, size_t i)
{
    static const char *const special[] = {"http", "https", "ws", "wss", "ftp"};
    size_t s = i, j = i + 1, slashes = 0;
    bool is_special = false;

    while (s > 0 && scheme_char(t[s - 1]))
        s--;
    if (s == i || !((lower(t[s]) >= 'a' && lower(t[s]) <= 'z')))
        return 0;
    for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++)
        if (i - s == strlen(special[k]) && strncasecmp(t + s, special[k], i - s) == 0)
            is_special = true;
    while (j < n && (t[j] == '/' || (is_special && t[j] == '\\')))
        j++, slashes++;
    /* special schemes take any number of slashes (http:127.0.0.1 is a URL to browsers);
     * others need "//" to have an authority */
    if (!(is_special || slashes >= 2) || j >= n)
        return 0;
    if (!is_special && slashes > 2)
        return 0; /* file:///path: no host */
    return j;
}

static bool bare_char(char c)
{
    return scheme_char(c) || c == ':' || c == '[' || c == ']' || c == '%' || c == '_';
}

/* A bare token (not in a URL): an IP literal, or a known name followed by a port or a
 * path, or standing alone in the text. */
static void bare(struct finder *f, const char *t, size_t n, size_t from, size_t to)
{
    const char *s = t + from;
    size_t len = to - from, colons = 0, host = len;
    bool port = false, alone = from == 0 && to == n, pathy = to < n && t[to] == '/';

    for (size_t i = 0; i < len; i++)
        colons += s[i] == ':';
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close)
            note(f, s, (size_t)(close - s) + 1, true);
        return;
    }
    if (colons >= 2) { /* an IPv6 literal, written bare */
        note(f, s, len, true);
        return;
    }
    if (colons == 1) {
        const char *c = memchr(s, ':', len);
        host = (size_t)(c - s);
        port = host + 1 < len && is_digit(s[host + 1]);
        if (!port)
            return;
    }
    int dots = 0;
    size_t digits = 0;
    bool numeric = host > 0, hex = false;
    for (size_t i = 0; i < host; i++) {
        dots += s[i] == '.';
        digits += is_digit(s[i]);
        hex |= s[i] == 'x' || s[i] == 'X';
        if (!(clampd_hexval(s[i]) >= 0 || s[i] == '.' || s[i] == 'x' || s[i] == 'X'))
            numeric = false;
    }
    if (numeric) {
        /* Numbers are everywhere (counts, versions, times): bare, only a dotted quad is an
         * address, or a shorter form with a port that no number or time has: 0x7f000001:80,
         * 2130706433:80, 127.1:80 (not 10:30). */
        if (dots == 3 || (port && (hex || dots > 0 || digits >= 9)))
            note(f, s, host, dots == 3 && !port);
        return;
    }
    if (port || pathy || alone) {
        struct insp_host h;
        /* bare names: localhost, metadata names, wildcard-DNS names (not .local etc.) */
        if (insp_host_classify(s, host, &h) == 0 && (h.is_ip || h.cls != INSP_HOST_PRIVATE))
            note(f, s, host, false);
    }
}

static unsigned find_hosts(const char *t, size_t n)
{
    struct finder f = {0};
    size_t i = 0, in_url = 0; /* bare tokens before in_url are a URL's path or query */

    while (i < n) {
        if (t[i] == ':' && i + 1 < n) {
            size_t a = url_at(t, n, i);
            if (a) {
                size_t e = a, loose = a;
                while (e < n && !authority_end(t[e]))
                    e++;
                authority(&f, t + a, e - a);
                /* another reading: userinfo up to the last '@' before the next space */
                while (loose < n && !loose_end(t[loose]))
                    loose++;
                if (loose > e && memchr(t + e, '@', loose - e)) {
                    size_t s = e;
                    for (size_t k = e; k < loose; k++)
                        if (t[k] == '@')
                            s = k + 1;
                    size_t stop = s;
                    while (stop < loose && !authority_end(t[stop]))
                        stop++;
                    authority(&f, t + s, stop - s);
                }
                in_url = loose;
                i = e;
                continue;
            }
        }
        if (t[i] == '\\' && i + 2 < n && t[i + 1] == '\\' && (i == 0 || loose_end(t[i - 1]))) {
            size_t e = i + 2; /* UNC: \\host\share */
            while (e < n && !authority_end(t[e]))
                e++;
            authority(&f, t + i + 2, e - i - 2);
            i = e;
            continue;
        }
        if (bare_char(t[i]) && (i == 0 || !bare_char(t[i - 1]))) {
            size_t e = i;
            /* a token stops before a scheme's ':' so the URL is read as one */
            while (e < n && bare_char(t[e]) && !(t[e] == ':' && url_at(t, n, e)))
                e++;
            if (e - i <= HOST_MAX + 8 && i >= in_url)
                bare(&f, t, n, i, e);
            i = e;
            continue;
        }
        i++;
    }
    return f.found;
}

/* WHATWG URL parsers drop tabs and newlines anywhere in a URL and read the ideographic
 * full stops (U+3002, U+FF0E, U+FF61) in a host as '.': "http://local\thost/" is
 * localhost to a browser or Node. SECURITY: the text is also read that way. */
unsigned insp_hosts_find(const char *t, size_t n)
{
    unsigned found = find_hosts(t, n);
    bool odd = memchr(t, '\t', n) || memchr(t, '\n', n) || memchr(t, '\r', n) ||
               memmem(t, n, "\xe3\x80\x82", 3) || memmem(t, n, "\xef\xbc\x8e", 3) ||
               memmem(t, n, "\xef\xbd\xa1", 3);
    char *c;
    size_t k = 0;

    if (!odd || !(c = malloc(n ? n : 1)))
        return found; /* without memory the first reading stands */
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\t' || t[i] == '\n' || t[i] == '\r')
            continue;
        if (i + 2 < n &&
            ((memcmp(t + i, "\xe3\x80\x82", 3) == 0) || (memcmp(t + i, "\xef\xbc\x8e", 3) == 0) ||
             (memcmp(t + i, "\xef\xbd\xa1", 3) == 0))) {
            c[k++] = '.';
            i += 2;
            continue;
        }
        c[k++] = t[i];
    }
    found |= find_hosts(c, k);
    free(c);
    return found;
}
