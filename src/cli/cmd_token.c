/*
 * clampd token: mint a scope token as the proxy does, or verify one as a downstream would
 * (include/clampd/verify.h; docs/tokens.md).
 *
 *   mint    key ring ──tok_mint(sub, tool, binding(tool, arguments), scope, ttl)──▶ stdout
 *   verify  JWKS (file, URL or stdin) + seen-jti file ──clampd_verify()──▶ exit 0 / 1
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "cli/cli.h"
#include "json/json.h"
#include "token/token.h"

#define TOKEN_REPLAY_FILE "token-replay"
/* SECURITY: the seen-jti file holds at most the verifier's replay capacity of ~40-byte
 * lines, plus expired lines not yet compacted away. */
#define TOKEN_MAX_REPLAY_FILE (8u * 1024u * 1024u)
#define TOKEN_MAX_ARGS CLAMPD_MAX_MESSAGE
#define TOKEN_FETCH_TIMEOUT 10L

static const char usage[] =
    "Usage: clampd token mint --tool T [--arguments JSON] [--scope S] [--ttl SECONDS]\n"
    "                         [--agent-id ID] [--iss ISS] [--state-dir DIR]\n"
    "       clampd token verify TOKEN --tool T [--arguments JSON] --jwks FILE|URL|-\n"
    "                         [--leeway SECONDS] [--replay-cache FILE | --no-replay-cache]\n"
    "                         [--state-dir DIR]\n"
    "\n"
    "mint    print a scope token for a call of tool T with these arguments, signed with the\n"
    "        current key of DIR/keys/keyring (made if there is none), as clampd signs an\n"
    "        allowed call: claims sub (the agent), tool, binding (SHA-256 of the canonical\n"
    "        JSON {\"params\": arguments, \"tool\": T}), scope, iat, exp, jti, and iss if given.\n"
    "verify  check TOKEN (- reads it from stdin) as a downstream would before running tool T\n"
    "        with these arguments: EdDSA signature by a key of the JWKS, exp and iat, the tool,\n"
    "        the binding to the arguments, and that the token was not used before. On success\n"
    "        prints its claims as JSON on stdout.\n"
    "\n"
    "Options:\n"
    "  --tool T             the tool called (required)\n"
    "  --arguments JSON     the call's arguments, a JSON value (default: {})\n"
    "  --scope S            mint: granted scopes, space-separated (default: none)\n"
    "  --ttl SECONDS        mint: lifetime, 1..3600 (default: 60)\n"
    "  --agent-id ID        mint: the sub claim (default: local, as clampd mcp)\n"
    "  --iss ISS            mint: an iss claim (default: none)\n"
    "  --jwks FILE|URL|-    verify: the JWKS, from a file, an http(s) URL (e.g. a gateway's\n"
    "                       /.well-known/jwks.json) or stdin; `clampd keys jwks` prints it\n"
    "  --leeway SECONDS     verify: clock skew allowed on exp and iat, 0..300 (default: 0)\n"
    "  --replay-cache FILE  verify: the jti of tokens accepted before, kept until they\n"
    "                       expire (default: DIR/" TOKEN_REPLAY_FILE ")\n"
    "  --no-replay-cache    verify: remember nothing, so a replay between two runs passes\n"
    "  --state-dir DIR      the state directory (default: $XDG_STATE_HOME/clampd, else\n"
    "                       ~/.local/state/clampd)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: mint 0, or 1 when no token could be made; verify 0 valid, 1 invalid (the\n"
    "reason on stderr), 2 usage error (--arguments that are not JSON included) or no JWKS\n"
    "or replay cache to verify with.\n";

struct token_opts {
    const char *tool, *arguments, *scope, *agent_id, *iss, *jwks, *replay, *state;
    long ttl, leeway;
    bool no_replay;
};

/* Parses --arguments as the proxy reads a call: duplicate members are refused. */
static int parse_arguments(const char *text, json_t **out)
{
    json_error_t jerr;

    *out = NULL;
    if (!text)
        return 0; /* absent: bound as {} */
    *out = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!*out) {
        fprintf(stderr, "clampd token: --arguments: %s (column %d)\n", jerr.text, jerr.column);
        return -1;
    }
    return 0;
}

/* ---- mint ---- */

static int token_mint(const struct token_opts *o)
{
    struct tok_keyring *kr = NULL;
    char binding[CJSON_HEX_LEN + 1], *dir = NULL, *err = NULL, *token = NULL;
    json_t *args = NULL;
    int rc = 1, r;

    if (parse_arguments(o->arguments, &args))
        goto out;
    if (cjson_call_binding(o->tool, args, binding)) {
        fprintf(stderr, "clampd token: --arguments have no canonical form\n");
        goto out;
    }
    dir = cli_state_dir(o->state, true);
    if (!dir)
        goto out;
    if (tok_keyring_open(dir, true, &kr, &err)) {
        fprintf(stderr, "clampd token: %s\n", err ? err : "cannot open the key ring");
        goto out;
    }
    struct tok_claims c = {.sub = o->agent_id,
                           .tool = o->tool,
                           .binding = binding,
                           .scope = o->scope,
                           .iss = o->iss,
                           .ttl = o->ttl};
    r = tok_mint(kr, &c, &token);
    if (r) {
        fprintf(stderr, "clampd token: cannot mint: %s (check --agent-id, --scope, --iss)\n",
                clampd_strerror(r));
        goto out;
    }
    puts(token);
    rc = 0;
out:
    free(token);
    free(err);
    free(dir);
    json_decref(args);
    tok_keyring_free(kr);
    return rc;
}

/* ---- the JWKS: file, URL or stdin ---- */

static size_t fetch_write(char *p, size_t size, size_t n, void *ud)
{
    /* Returning less than given aborts the transfer: the JWKS is over its limit. */
    return dbuf_add(ud, p, size * n) ? 0 : size * n;
}

static int fetch_url(const char *url, struct dbuf *out)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc = CURLE_FAILED_INIT;
    CURL *c = NULL;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && (c = curl_easy_init())) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        /* SECURITY: http(s) only, also after redirects (no file://, no gopher://). */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, TOKEN_FETCH_TIMEOUT);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLAMPD_VERIFY_MAX_JWKS);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "clampd/" CLAMPD_VERSION);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
        cc = curl_easy_perform(c);
    }
    if (cc != CURLE_OK)
        fprintf(stderr, "clampd token: --jwks %s: %s\n", url,
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return cc == CURLE_OK ? 0 : -1;
}

/* Reads at most out->max bytes of f into out. */
static int read_stream(FILE *f, struct dbuf *out)
{
    char buf[8192];
    size_t n;

    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (dbuf_add(out, buf, n))
            return -1;
    return ferror(f) ? -1 : 0;
}

static int load_jwks(const char *src, struct dbuf *out)
{
    FILE *f;
    int rc;

    if (strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0)
        return fetch_url(src, out);
    f = strcmp(src, "-") == 0 ? stdin : fopen(src, "rb");
    if (!f) {
        fprintf(stderr, "clampd token: --jwks %s: %s\n", src, strerror(errno));
        return -1;
    }
    rc = read_stream(f, out);
    if (rc)
        fprintf(stderr, "clampd token: --jwks %s: unreadable or over %u bytes\n", src,
                CLAMPD_VERIFY_MAX_JWKS);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* ---- the seen-jti file: one "<jti> <exp>" line per accepted token ---- */

struct replay_file {
    int fd;
    struct dbuf live; /* the lines still worth keeping */
    size_t n_live;    /* ... how many */
    size_t lines;     /* lines in the file */
    bool torn;        /* the file ends in a partial line (a crash mid-write) */
};

/* Parses one line and remembers its jti in v when it has not expired. A malformed line
 * (a write cut short by a crash) is dropped. */
static int replay_line(struct replay_file *rf, struct clampd_verifier *v, char *line, long leeway,
                       int64_t now)
{
    char *sp = strchr(line, ' ');
    unsigned char raw[16];
    size_t n = 0;
    long exp;

    rf->lines++;
    if (!sp || (size_t)(sp - line) != CLAMPD_TOKEN_JTI_LEN)
        return 0;
    *sp = '\0';
    if (sodium_base642bin(raw, sizeof(raw), line, CLAMPD_TOKEN_JTI_LEN, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n != sizeof(raw))
        return 0;
    if (clampd_parse_long(sp + 1, 1, (long)1 << 40, &exp) || now >= exp + leeway)
        return 0;
    if (clampd_verifier_remember(v, line, exp))
        return -1;
    rf->n_live++;
    return dbuf_printf(&rf->live, "%s %ld\n", line, exp);
}

/* Opens (0600), locks and loads path. The lock is held until replay_close(), so that two
 * runs cannot both accept one token. */
static int replay_open(struct replay_file *rf, const char *path, struct clampd_verifier *v,
                       long leeway)
{
    struct dbuf text;
    struct stat st;
    int64_t now = (int64_t)time(NULL);
    char *line, *nl;
    int rc = -1;

    dbuf_init(&text, TOKEN_MAX_REPLAY_FILE);
    dbuf_init(&rf->live, TOKEN_MAX_REPLAY_FILE);
    rf->lines = rf->n_live = 0;
    rf->torn = false;
    errno = 0;
    rf->fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    /* SECURITY: one who can write the file can delete entries, hence allow replays. */
    if (rf->fd < 0 || flock(rf->fd, LOCK_EX) || fstat(rf->fd, &st) || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || (st.st_mode & 022) || st.st_size > (off_t)TOKEN_MAX_REPLAY_FILE) {
        fprintf(stderr,
                "clampd token: --replay-cache %s: must be a regular file of this user that "
                "others cannot write%s%s\n",
                path, errno ? ": " : "", errno ? strerror(errno) : "");
        goto out;
    }
    for (;;) {
        char buf[8192];
        ssize_t n = read(rf->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || dbuf_add(&text, buf, (size_t)n))
            break;
    }
    for (line = text.ptr; line && (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (replay_line(rf, v, line, leeway, now)) {
            fprintf(stderr, "clampd token: --replay-cache %s: too many unexpired tokens\n", path);
            goto out;
        }
    }
    rf->torn = line && *line;
    rc = 0;
out:
    dbuf_free(&text);
    return rc;
}

/* Records an accepted token: appended to the file, or, when expired lines outnumber the
 * live ones or the last line is torn, the file is rewritten with the live ones only. */
static int replay_record(struct replay_file *rf, const char *jti, int64_t exp)
{
    size_t start = rf->live.len;

    if (dbuf_printf(&rf->live, "%s %lld\n", jti, (long long)exp))
        return -1;
    rf->n_live++;
    if (rf->torn || rf->lines + 1 > 2 * rf->n_live + 64) {
        if (ftruncate(rf->fd, 0) || lseek(rf->fd, 0, SEEK_SET) < 0)
            return -1;
        return clampd_write_all(rf->fd, rf->live.ptr, rf->live.len);
    }
    if (lseek(rf->fd, 0, SEEK_END) < 0)
        return -1;
    return clampd_write_all(rf->fd, rf->live.ptr + start, rf->live.len - start);
}

static void replay_close(struct replay_file *rf)
{
    if (rf->fd >= 0) {
        fsync(rf->fd);
        close(rf->fd); /* releases the lock */
    }
    rf->fd = -1;
    dbuf_free(&rf->live);
}

/* ---- verify ---- */

static void print_claims(const struct clampd_token_claims *c)
{
    json_t *o =
        json_pack("{s:s*, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", c->iss[0] ? c->iss : NULL,
                  "sub", c->sub, "scope", c->scope, "binding", c->binding, "jti", c->jti, "iat",
                  (json_int_t)c->iat, "exp", (json_int_t)c->exp, "kid", c->kid);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    if (s)
        puts(s);
    free(s);
    json_decref(o);
}

/* Reads a token from stdin: its first line, without the newline. */
static char *read_token_stdin(void)
{
    struct dbuf b;
    char *nl;

    dbuf_init(&b, CLAMPD_TOKEN_MAX_LEN + 2);
    if (read_stream(stdin, &b) || !b.ptr) {
        dbuf_free(&b);
        return strdup(""); /* refused below as not a token */
    }
    nl = strpbrk(b.ptr, "\r\n");
    if (nl)
        *nl = '\0';
    return dbuf_take(&b, NULL);
}

static int token_verify(const struct token_opts *o, const char *token_arg)
{
    struct clampd_verify_opts vo = {.leeway = o->leeway};
    struct replay_file rf = {.fd = -1};
    struct clampd_verify_result res;
    struct clampd_verifier *v = NULL;
    struct dbuf jwks;
    char err[256], *dir = NULL, *path = NULL, *token = NULL;
    json_t *args = NULL;
    int rc = 2;

    dbuf_init(&jwks, CLAMPD_VERIFY_MAX_JWKS);
    if (parse_arguments(o->arguments, &args) || load_jwks(o->jwks, &jwks))
        goto out;
    if (clampd_verifier_new(jwks.ptr ? jwks.ptr : "", jwks.len, &vo, &v, err, sizeof(err))) {
        fprintf(stderr, "clampd token: --jwks %s: %s\n", o->jwks, err);
        goto out;
    }
    if (!o->no_replay) {
        if (!o->replay && !(dir = cli_state_dir(o->state, true)))
            goto out;
        if (!o->replay && asprintf(&path, "%s/%s", dir, TOKEN_REPLAY_FILE) < 0) {
            path = NULL;
            goto out;
        }
        if (replay_open(&rf, o->replay ? o->replay : path, v, o->leeway))
            goto out;
    }
    token = strcmp(token_arg, "-") == 0 ? read_token_stdin() : strdup(token_arg);
    if (!token)
        goto out;
    rc = 1;
    if (clampd_verify(v, token, o->tool, args, &res) != CLAMPD_VERIFY_VALID) {
        fprintf(stderr, "clampd token: invalid: %s: %s\n", clampd_verify_status_name(res.status),
                res.message);
        goto out;
    }
    /* SECURITY: the token counts as used only once that is on disk. */
    if (rf.fd >= 0 && replay_record(&rf, res.claims.jti, res.claims.exp)) {
        fprintf(stderr, "clampd token: cannot record the token as used: %s\n", strerror(errno));
        rc = 2;
        goto out;
    }
    print_claims(&res.claims);
    rc = 0;
out:
    replay_close(&rf);
    clampd_verifier_free(v);
    dbuf_free(&jwks);
    json_decref(args);
    free(token);
    free(path);
    free(dir);
    return rc;
}

/* ---- options ---- */

static int parse_opts(int argc, char **argv, struct token_opts *o)
{
    static const struct option longs[] = {{"tool", required_argument, NULL, 't'},
                                          {"arguments", required_argument, NULL, 'a'},
                                          {"scope", required_argument, NULL, 'S'},
                                          {"ttl", required_argument, NULL, 'T'},
                                          {"agent-id", required_argument, NULL, 'i'},
                                          {"iss", required_argument, NULL, 'I'},
                                          {"jwks", required_argument, NULL, 'j'},
                                          {"leeway", required_argument, NULL, 'l'},
                                          {"replay-cache", required_argument, NULL, 'r'},
                                          {"no-replay-cache", no_argument, NULL, 'n'},
                                          {"state-dir", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int c;

    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 't': o->tool = optarg; break;
        case 'a': o->arguments = optarg; break;
        case 'S': o->scope = optarg; break;
        case 'i': o->agent_id = optarg; break;
        case 'I': o->iss = optarg; break;
        case 'j': o->jwks = optarg; break;
        case 'r': o->replay = optarg; break;
        case 'n': o->no_replay = true; break;
        case 's': o->state = optarg; break;
        case 'T':
            if (clampd_parse_long(optarg, 1, TOK_MAX_TTL, &o->ttl))
                return -1;
            break;
        case 'l':
            if (clampd_parse_long(optarg, 0, CLAMPD_VERIFY_MAX_LEEWAY, &o->leeway))
                return -1;
            break;
        case 'h': return 1;
        default: return -1;
        }
    }
    return 0;
}

int cmd_token(int argc, char **argv)
{
    struct token_opts o = {.agent_id = "local"};
    const char *sub;
    int r = parse_opts(argc, argv, &o);

    if (r > 0) {
        fputs(usage, stdout);
        return 0;
    }
    sub = r == 0 && optind < argc ? argv[optind++] : NULL;
    if (sub && strcmp(sub, "mint") == 0 && optind == argc && o.tool && !o.jwks && !o.replay &&
        !o.no_replay && !o.leeway)
        return token_mint(&o);
    if (sub && strcmp(sub, "verify") == 0 && argc - optind == 1 && o.tool && o.jwks &&
        !(o.replay && o.no_replay) && !o.scope && !o.ttl && !o.iss &&
        !(strcmp(o.jwks, "-") == 0 && strcmp(argv[optind], "-") == 0))
        return token_verify(&o, argv[optind]);
    fputs(usage, stderr);
    return 2;
}
