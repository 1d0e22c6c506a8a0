/*
 * keyring: the Ed25519 signing keys of scope tokens, in <state_dir>/keys/keyring.
 *
 *   open/rotate ─▶ mkdir keys/ 0700 ─▶ open O_NOFOLLOW, check owner and mode ─▶ flock
 *        ─▶ read keyring (sodium_malloc'd) ─▶ parse ─▶ prune / rotate / make the first key
 *        ─▶ write keyring.tmp 0600, fsync, rename over keyring, fsync keys/ ─▶ unlock
 *
 * The file is text, one key per line after a version line:
 *
 *   clampd-keyring 1
 *   current <kid> <created> <seed, base64url>
 *   retired <kid> <x, base64url> <created> <retired>
 *
 * Only the current key has a secret; a key's seed is erased the moment it is retired, so a
 * leaked old file cannot sign again. Every byte of the file passes through sodium_malloc'd
 * memory only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "token/token-int.h"

#define KR_FILE "keyring"
#define KR_TMP "keyring.tmp"
#define KR_MAGIC "clampd-keyring 1"
#define KR_MAX_FILE 16384 /* SECURITY: 32 keys take ~4 KiB; a bigger file is not ours */
#define KR_B64_32 43      /* 32 bytes in base64url without padding */
#define KR_MAX_TIME ((long)1 << 40)

/* Sets *errmsg (when wanted and not set yet) to a malloc'd message; returns rc. */
static int kr_fail(char **errmsg, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int kr_fail(char **errmsg, int rc, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    if (!errmsg || *errmsg)
        return rc;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    *errmsg = strdup(buf);
    return rc;
}

void tok__thumbprint(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char kid[TOK_KID_LEN + 1])
{
    unsigned char md[crypto_hash_sha256_BYTES];
    char x[KR_B64_32 + 1], jwk[96];
    int n;

    sodium_bin2base64(x, sizeof(x), pk, crypto_sign_PUBLICKEYBYTES, TOK__B64URL);
    /* RFC 7638 §3.2: the required members in lexicographic order, no whitespace. */
    n = snprintf(jwk, sizeof(jwk), "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
    crypto_hash_sha256(md, (const unsigned char *)jwk, (size_t)n);
    sodium_bin2base64(kid, TOK_KID_LEN + 1, md, sizeof(md), TOK__B64URL);
}

/* ---- the keys directory ---- */

/* Opens <state_dir>/keys (made 0700 when create), checks it and locks it exclusively.
 * Returns the descriptor, or a negative enum clampd_err. */
static int kr_dir_open(const char *state_dir, bool create, char **errmsg)
{
    char path[4096];
    struct stat st;
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/keys", state_dir) >= sizeof(path))
        return kr_fail(errmsg, ERR_INVAL, "state directory path too long");
    if (create && mkdir(path, 0700) && errno != EEXIST)
        return kr_fail(errmsg, ERR_IO, "cannot create %s: %s", path, strerror(errno));
    /* SECURITY: O_NOFOLLOW: keys/ must not be a link to somewhere another user controls. */
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return kr_fail(errmsg, ERR_NOT_FOUND, "no signing key: %s does not exist", path);
    if (fd < 0)
        return kr_fail(errmsg, ERR_IO, "cannot open %s (a symlink or not a directory?): %s", path,
                       strerror(errno));
    if (fstat(fd, &st) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        close(fd);
        return kr_fail(errmsg, ERR_STATE, "%s must be a directory of this user with mode 0700",
                       path);
    }
    /* Serialises rotations and first-key creation between processes. */
    if (flock(fd, LOCK_EX)) {
        close(fd);
        return kr_fail(errmsg, ERR_IO, "cannot lock %s: %s", path, strerror(errno));
    }
    return fd;
}

/* ---- reading ---- */

/* Splits line at single spaces into at most max fields; returns how many there were (max+1
 * when there are more). */
static size_t kr_fields(char *line, char **f, size_t max)
{
    size_t n = 0;

    for (char *p = line;; p++) {
        if (n == max)
            return max + 1;
        f[n++] = p;
        p = strchr(p, ' ');
        if (!p)
            return n;
        *p = '\0';
    }
}

static int kr_time(const char *s, int64_t *out)
{
    long v;

    if (clampd_parse_long(s, 0, KR_MAX_TIME, &v))
        return -1;
    *out = v;
    return 0;
}

/* Decodes 43 base64url characters into 32 bytes. */
static int kr_b64_32(const char *s, unsigned char out[32])
{
    size_t n = 0;

    if (strlen(s) != KR_B64_32 ||
        sodium_base642bin(out, 32, s, KR_B64_32, NULL, &n, NULL, TOK__B64URL) || n != 32)
        return -1;
    return 0;
}

static int kr_parse_current(char **f, struct tok_keyring *kr)
{
    struct tok__key *k = &kr->keys[0];
    unsigned char *seed = sodium_malloc(crypto_sign_SEEDBYTES);
    int rc = -1;

    if (!seed)
        return -1;
    if (kr_time(f[2], &k->created) || kr_b64_32(f[3], seed))
        goto out;
    if (crypto_sign_seed_keypair(k->pk, kr->sk, seed))
        goto out;
    k->retired = 0;
    tok__thumbprint(k->pk, k->kid);
    rc = strcmp(k->kid, f[1]) == 0 ? 0 : -1;
out:
    sodium_free(seed); /* wipes */
    return rc;
}

static int kr_parse_retired(char **f, struct tok__key *k)
{
    if (kr_b64_32(f[2], k->pk) || kr_time(f[3], &k->created) || kr_time(f[4], &k->retired) ||
        k->retired == 0)
        return -1;
    tok__thumbprint(k->pk, k->kid);
    return strcmp(k->kid, f[1]) == 0 ? 0 : -1;
}

static int kr_retired_cmp(const void *a, const void *b)
{
    const struct tok__key *x = a, *y = b;
    return (x->retired < y->retired) - (x->retired > y->retired); /* newest first */
}

/* Parses the NUL-terminated text of the key file into kr. */
static int kr_parse(char *text, struct tok_keyring *kr, const char *path, char **errmsg)
{
    char *line = text, *nl, *f[6];
    bool current = false;
    size_t lineno = 0, nf;

    kr->n_keys = 1; /* [0] is reserved for the current key */
    for (; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            return kr_fail(errmsg, ERR_PARSE, "%s: line %zu has no end", path, lineno + 1);
        *nl = '\0';
        if (lineno++ == 0) {
            if (strcmp(line, KR_MAGIC) != 0)
                return kr_fail(errmsg, ERR_PARSE, "%s: not a clampd key ring", path);
            continue;
        }
        nf = kr_fields(line, f, 5);
        if (nf == 4 && strcmp(f[0], "current") == 0 && !current) {
            if (kr_parse_current(f, kr))
                return kr_fail(errmsg, ERR_PARSE, "%s: line %zu: bad current key", path, lineno);
            current = true;
        } else if (nf == 5 && strcmp(f[0], "retired") == 0 && kr->n_keys < TOK_MAX_KEYS) {
            if (kr_parse_retired(f, &kr->keys[kr->n_keys++]))
                return kr_fail(errmsg, ERR_PARSE, "%s: line %zu: bad retired key", path, lineno);
        } else {
            return kr_fail(errmsg, ERR_PARSE, "%s: line %zu is not a key line", path, lineno);
        }
    }
    if (!current)
        return kr_fail(errmsg, ERR_PARSE, "%s: no current key", path);
    for (size_t i = 1; i < kr->n_keys; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(kr->keys[i].kid, kr->keys[j].kid) == 0)
                return kr_fail(errmsg, ERR_PARSE, "%s: key %s appears twice", path,
                               kr->keys[i].kid);
    qsort(kr->keys + 1, kr->n_keys - 1, sizeof(kr->keys[0]), kr_retired_cmp);
    return 0;
}

/* Reads and parses the key file. Returns 0, ERR_NOT_FOUND when there is none, or another
 * negative enum clampd_err. */
static int kr_load(int dfd, struct tok_keyring *kr, char **errmsg)
{
    char *buf = NULL;
    struct stat st;
    size_t len = 0;
    ssize_t r;
    int fd, rc = ERR_IO;

    fd = openat(dfd, KR_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return ERR_NOT_FOUND;
    if (fd < 0) {
        rc = kr_fail(errmsg, ERR_IO, "cannot open %s: %s", kr->path, strerror(errno));
        goto out;
    }
    /* SECURITY: refuse a key file others could read or swap, as ssh refuses its keys. */
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) ||
        st.st_size > KR_MAX_FILE) {
        rc = kr_fail(errmsg, ERR_STATE,
                     "%s must be a regular file of this user, mode 0600, at most %d bytes",
                     kr->path, KR_MAX_FILE);
        goto out;
    }
    buf = sodium_malloc(KR_MAX_FILE + 1);
    if (!buf) {
        rc = kr_fail(errmsg, ERR_NOMEM, "out of memory");
        goto out;
    }
    while (len < KR_MAX_FILE && (r = read(fd, buf + len, KR_MAX_FILE - len)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = kr_fail(errmsg, ERR_IO, "cannot read %s: %s", kr->path, strerror(errno));
            goto out;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        rc = kr_fail(errmsg, ERR_PARSE, "%s: not a clampd key ring", kr->path);
        goto out;
    }
    rc = kr_parse(buf, kr, kr->path, errmsg);
out:
    if (fd >= 0)
        close(fd);
    sodium_free(buf); /* wipes the seed text */
    return rc;
}

/* ---- writing ---- */

static int kr_appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int kr_appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return ERR_TOO_BIG;
    *len += (size_t)n;
    return 0;
}

/* Renders kr as the key file's text into buf (sodium_malloc'd by the caller). */
static int kr_render(const struct tok_keyring *kr, char *buf, size_t cap, size_t *len)
{
    const struct tok__key *k = &kr->keys[0];
    char x[KR_B64_32 + 1];
    int rc;

    *len = 0;
    rc = kr_appendf(buf, cap, len, "%s\ncurrent %s %lld ", KR_MAGIC, k->kid, (long long)k->created);
    if (rc || cap - *len < KR_B64_32 + 2)
        return ERR_TOO_BIG;
    /* The seed is written straight into the guarded buffer, never into a stack array. */
    sodium_bin2base64(buf + *len, KR_B64_32 + 1, kr->sk, crypto_sign_SEEDBYTES, TOK__B64URL);
    *len += KR_B64_32;
    buf[(*len)++] = '\n';
    for (size_t i = 1; i < kr->n_keys && rc == 0; i++) {
        k = &kr->keys[i];
        sodium_bin2base64(x, sizeof(x), k->pk, sizeof(k->pk), TOK__B64URL);
        rc = kr_appendf(buf, cap, len, "retired %s %s %lld %lld\n", k->kid, x,
                        (long long)k->created, (long long)k->retired);
    }
    return rc;
}

/* Replaces the key file atomically: a reader sees the old ring or the new, never a mix. */
static int kr_save(int dfd, const struct tok_keyring *kr, char **errmsg)
{
    char *buf = sodium_malloc(KR_MAX_FILE);
    size_t len = 0;
    int fd = -1, rc = ERR_IO;

    if (!buf)
        return kr_fail(errmsg, ERR_NOMEM, "out of memory");
    rc = kr_render(kr, buf, KR_MAX_FILE, &len);
    if (rc) {
        rc = kr_fail(errmsg, rc, "key ring too big");
        goto out;
    }
    /* A leftover from a crash is ours to remove: we hold the directory's lock. */
    if (unlinkat(dfd, KR_TMP, 0) && errno != ENOENT)
        goto fail;
    fd = openat(dfd, KR_TMP, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) || clampd_write_all(fd, buf, len) || fsync(fd))
        goto fail;
    if (close(fd)) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (renameat(dfd, KR_TMP, dfd, KR_FILE) || fsync(dfd))
        goto fail;
    rc = 0;
    goto out;
fail:
    rc = kr_fail(errmsg, ERR_IO, "cannot write %s: %s", kr->path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, KR_TMP, 0);
out:
    sodium_free(buf);
    return rc;
}

/* ---- the ring ---- */

/* Makes a new current key in keys[0]; the old secret in sk is overwritten. */
static void kr_generate(struct tok_keyring *kr, int64_t now)
{
    struct tok__key *k = &kr->keys[0];

    crypto_sign_keypair(k->pk, kr->sk);
    tok__thumbprint(k->pk, k->kid);
    k->created = now;
    k->retired = 0;
}

/* Drops retired keys no token can still be verified with. Returns how many. */
static size_t kr_prune(struct tok_keyring *kr, int64_t now)
{
    size_t kept = 1, dropped = 0;

    for (size_t i = 1; i < kr->n_keys; i++) {
        if (now - kr->keys[i].retired >= TOK_RETIRED_KEEP)
            dropped++;
        else
            kr->keys[kept++] = kr->keys[i];
    }
    kr->n_keys = kept;
    return dropped;
}

/* Moves the current key to the head of the retired keys. */
static int kr_retire_current(struct tok_keyring *kr, int64_t now, char **errmsg)
{
    if (kr->n_keys >= TOK_MAX_KEYS)
        return kr_fail(errmsg, ERR_TOO_BIG,
                       "%d keys still verify unexpired tokens: wait before rotating again",
                       TOK_MAX_KEYS);
    memmove(&kr->keys[2], &kr->keys[1], (kr->n_keys - 1) * sizeof(kr->keys[0]));
    kr->keys[1] = kr->keys[0];
    kr->keys[1].retired = now;
    kr->n_keys++;
    return 0;
}

static int kr_open(const char *state_dir, bool create, bool rotate, int64_t now,
                   struct tok_keyring **out, char **errmsg)
{
    struct tok_keyring *kr = NULL;
    bool made = false;
    size_t pruned = 0;
    int dfd = -1, rc = ERR_INVAL;

    if (errmsg)
        *errmsg = NULL;
    if (!out || !state_dir || !*state_dir || now <= 0) {
        rc = kr_fail(errmsg, ERR_INVAL, "no state directory");
        goto out;
    }
    *out = NULL;
    kr = calloc(1, sizeof(*kr));
    if (!kr || !(kr->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) ||
        asprintf(&kr->path, "%s/keys/%s", state_dir, KR_FILE) < 0) {
        if (kr)
            kr->path = NULL;
        rc = kr_fail(errmsg, ERR_NOMEM, "out of memory");
        goto out;
    }
    dfd = kr_dir_open(state_dir, create, errmsg);
    if (dfd < 0) {
        rc = dfd;
        goto out;
    }
    rc = kr_load(dfd, kr, errmsg);
    if (rc == ERR_NOT_FOUND && create) {
        kr_generate(kr, now);
        kr->n_keys = 1;
        made = true;
    } else if (rc == ERR_NOT_FOUND) {
        rc = kr_fail(errmsg, rc, "no signing key in %s (clampd keys rotate makes one)", kr->path);
        goto out;
    } else if (rc) {
        goto out;
    } else {
        pruned = kr_prune(kr, now);
        if (rotate && (rc = kr_retire_current(kr, now, errmsg)) != 0)
            goto out;
        if (rotate)
            kr_generate(kr, now);
        made = rotate;
    }
    rc = made || pruned ? kr_save(dfd, kr, errmsg) : 0;
    if (rc && !made) {
        /* Only the pruning was not written: the ring in memory is right, and the next
         * writer prunes the file. */
        clog_warn("token: %s", errmsg && *errmsg ? *errmsg : "cannot prune the key ring");
        if (errmsg) {
            free(*errmsg);
            *errmsg = NULL;
        }
        rc = 0;
    }
    if (rc)
        goto out;
    if (fstatat(dfd, KR_FILE, &kr->loaded, AT_SYMLINK_NOFOLLOW))
        memset(&kr->loaded, 0, sizeof(kr->loaded));
    sodium_mprotect_readonly(kr->sk);
    *out = kr;
    kr = NULL;
out:
    if (dfd >= 0)
        close(dfd); /* releases the lock */
    tok_keyring_free(kr);
    return rc;
}

int tok__keyring_open_at(const char *state_dir, bool create, int64_t now, struct tok_keyring **out,
                         char **errmsg)
{
    return kr_open(state_dir, create, false, now, out, errmsg);
}

int tok__keyring_rotate_at(const char *state_dir, int64_t now, struct tok_keyring **out,
                           char **errmsg)
{
    struct tok_keyring *kr = NULL;
    int rc = kr_open(state_dir, true, true, now, &kr, errmsg);

    if (rc == 0 && out)
        *out = kr;
    else
        tok_keyring_free(kr);
    return rc;
}

int tok_keyring_open(const char *state_dir, bool create, struct tok_keyring **out, char **errmsg)
{
    return tok__keyring_open_at(state_dir, create, (int64_t)time(NULL), out, errmsg);
}

int tok_keyring_rotate(const char *state_dir, struct tok_keyring **out, char **errmsg)
{
    return tok__keyring_rotate_at(state_dir, (int64_t)time(NULL), out, errmsg);
}

void tok_keyring_free(struct tok_keyring *kr)
{
    if (!kr)
        return;
    sodium_free(kr->sk); /* makes it writable, wipes it, unmaps it */
    free(kr->path);
    sodium_memzero(kr, sizeof(*kr));
    free(kr);
}

const char *tok_keyring_kid(const struct tok_keyring *kr)
{
    return kr ? kr->keys[0].kid : NULL;
}

bool tok_keyring_is_stale(const struct tok_keyring *kr)
{
    struct stat st;

    if (!kr || lstat(kr->path, &st))
        return true;
    return st.st_dev != kr->loaded.st_dev || st.st_ino != kr->loaded.st_ino ||
           st.st_size != kr->loaded.st_size || st.st_mtim.tv_sec != kr->loaded.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != kr->loaded.st_mtim.tv_nsec;
}

int tok_jwks(const struct tok_keyring *kr, json_t **out)
{
    json_t *keys = json_array(), *k;
    char x[KR_B64_32 + 1];
    int rc = ERR_NOMEM;

    *out = NULL;
    if (!keys)
        goto out;
    for (size_t i = 0; i < kr->n_keys; i++) {
        sodium_bin2base64(x, sizeof(x), kr->keys[i].pk, sizeof(kr->keys[i].pk), TOK__B64URL);
        k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x,
                      "kid", kr->keys[i].kid, "alg", "EdDSA", "use", "sig");
        if (!k || json_array_append_new(keys, k))
            goto out;
    }
    *out = json_pack("{s:o}", "keys", keys);
    keys = NULL; /* json_pack's "o" took it, even on failure */
    rc = *out ? 0 : ERR_NOMEM;
out:
    json_decref(keys);
    return rc;
}
