/*
 * latency: the clampd latency bench driver.
 *
 * Times tools/call round trips through three chains run side by side in one process tree:
 *
 *   direct:  latency <-> echo_server                     (the fixture alone)
 *   relay:   latency <-> relay <-> echo_server            (floor of any out-of-process proxy)
 *   clampd:  latency <-> clampd mcp <-> echo_server       (the thing under test)
 *
 * Each chain does the MCP handshake (initialize, notifications/initialized, tools/list) and a
 * warm-up; then the chains take turns in rounds, in rotating order, so that machine noise hits
 * all of them alike. One request is in flight at a time. A sample is the CLOCK_MONOTONIC time
 * from just before the request is written to the moment the last byte of the reply line is
 * read; replies are checked (id, echoed text) after the clock stops. Results are numbers and
 * ratios, never assertions: the exit status is non-zero only when something failed to run.
 *
 *   usage: latency [-r rounds] [-n calls] [-w warmup] [-l large_calls] [-s sizes] [-R]
 *                  ECHO_SERVER RELAY CLAMPD
 *
 * A CLAMPD that is not an executable file is reported as "not built" and skipped (unless -R).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mini_json.h"

#define NSEC 1000000000ull
#define IO_TIMEOUT_NS (30ull * NSEC)  /* one request or reply; a hang is a failure, not a sample */
#define EXIT_TIMEOUT_NS (5ull * NSEC) /* from closing a chain's stdin to its exit */
#define RX_CHUNK (64u * 1024u)
#define RX_MAX (512u * 1024u * 1024u)
#define MAX_SIZES 8
#define MAX_CHAINS 3
#define LARGE_WARMUP 2
#define SMALL_TEXT "hello, clampd"

extern char **environ;

struct samples {
    uint64_t *ns;
    size_t n, cap;
};

struct chain {
    const char *name;
    pid_t pid;
    int to_fd, from_fd;
    char *rx; /* bytes read from the chain, [0, rx_len) */
    size_t rx_cap, rx_len, rx_scan, line_end;
    long next_id;
    unsigned long stray; /* messages that were not the awaited reply */
    bool has_hash;       /* tools/list carried _meta["clampd/contract_hash"] */
    long hwm_small_kib, hwm_large_kib, maxrss_kib;
    char log[512]; /* the chain's stderr */
};

struct opts {
    unsigned long rounds, calls, warmup, large_calls;
    size_t sizes[MAX_SIZES], nsizes;
    bool require_clampd;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* ---- spawning and I/O ------------------------------------------------------------------ */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int chain_spawn(struct chain *c, char *const argv[])
{
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, err = -1, rc = -1;
    posix_spawn_file_actions_t fa;

    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0) {
        fprintf(stderr, "%s: pipe: %s\n", c->name, strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0)
        goto out;
    err = posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, 2, c->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!err)
        err = posix_spawn(&c->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        fprintf(stderr, "%s: cannot run %s: %s\n", c->name, argv[0], strerror(err));
        goto out;
    }
    c->to_fd = pin[1];
    pin[1] = -1;
    c->from_fd = pout[0];
    pout[0] = -1;
    if (set_nonblock(c->to_fd) || set_nonblock(c->from_fd))
        goto out;
    rc = 0;
out:
    close_fd(&pin[0]);
    close_fd(&pin[1]);
    close_fd(&pout[0]);
    close_fd(&pout[1]);
    return rc;
}

/* One read() into the rx buffer; -1 on EOF or error (a chain must never close on us). */
static int rx_read(struct chain *c)
{
    ssize_t n;

    if (c->rx_cap - c->rx_len < RX_CHUNK) {
        size_t ncap = c->rx_cap ? c->rx_cap * 2 : 4 * RX_CHUNK;
        char *nrx = ncap <= RX_MAX ? realloc(c->rx, ncap) : NULL;

        if (!nrx) {
            fprintf(stderr, "%s: reply too large\n", c->name);
            return -1;
        }
        c->rx = nrx;
        c->rx_cap = ncap;
    }
    n = read(c->from_fd, c->rx + c->rx_len, c->rx_cap - c->rx_len);
    if (n > 0)
        c->rx_len += (size_t)n;
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        fprintf(stderr, "%s: %s\n", c->name, n == 0 ? "closed its stdout" : strerror(errno));
        return -1;
    }
    return 0;
}

/* True, with *line (no '\n') and *t_end, when a complete line is buffered. */
static bool rx_line(struct chain *c, struct mj_slice *line, uint64_t *t_end)
{
    char *nl =
        c->rx_scan < c->rx_len ? memchr(c->rx + c->rx_scan, '\n', c->rx_len - c->rx_scan) : NULL;

    if (!nl) {
        c->rx_scan = c->rx_len;
        return false;
    }
    *t_end = now_ns();
    line->p = c->rx;
    line->len = (size_t)(nl - c->rx);
    c->line_end = line->len + 1;
    return true;
}

/* Drops the line last returned by rx_line. */
static void rx_consume(struct chain *c)
{
    if (!c->line_end)
        return;
    memmove(c->rx, c->rx + c->line_end, c->rx_len - c->line_end);
    c->rx_len -= c->line_end;
    c->rx_scan = 0;
    c->line_end = 0;
}

/*
 * Writes all of iov (reading meanwhile, so a chain that answers early cannot deadlock us),
 * then, if line is not NULL, waits for the next complete line. -1 on error or timeout.
 */
static int chain_xfer(struct chain *c, struct iovec *iov, int iovcnt, struct mj_slice *line,
                      uint64_t *t_end)
{
    uint64_t deadline = now_ns() + IO_TIMEOUT_NS;

    rx_consume(c);
    for (;;) {
        struct pollfd pf[2] = {{c->from_fd, POLLIN, 0}, {c->to_fd, POLLOUT, 0}};
        uint64_t t;

        while (iovcnt > 0 && iov->iov_len == 0) {
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            ssize_t n = writev(c->to_fd, iov, iovcnt);

            for (; n > 0 && iovcnt > 0; iov++, iovcnt--) {
                size_t k = (size_t)n < iov->iov_len ? (size_t)n : iov->iov_len;

                iov->iov_base = (char *)iov->iov_base + k;
                iov->iov_len -= k;
                n -= (ssize_t)k;
                if (iov->iov_len)
                    break;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fprintf(stderr, "%s: write: %s\n", c->name, strerror(errno));
                return -1;
            }
        }
        if (iovcnt == 0 && (!line || rx_line(c, line, t_end)))
            return 0;
        t = now_ns();
        if (t >= deadline) {
            fprintf(stderr, "%s: no reply within %llu s\n", c->name, IO_TIMEOUT_NS / NSEC);
            return -1;
        }
        if (poll(pf, iovcnt > 0 ? 2 : 1, (int)((deadline - t) / 1000000u) + 1) < 0 &&
            errno != EINTR)
            return -1;
        if (pf[0].revents && rx_read(c) != 0)
            return -1;
    }
}

static bool is_reply_to(struct mj_slice line, long id)
{
    struct mj_slice got, method;
    char want[32];
    int n = snprintf(want, sizeof want, "%ld", id);

    return mj_get(line, "id", &got) && !mj_get(line, "method", &method) && n > 0 &&
           got.len == (size_t)n && memcmp(got.p, want, (size_t)n) == 0;
}

static void show_bad(const struct chain *c, const char *what, struct mj_slice line)
{
    fprintf(stderr, "%s: unexpected reply to %s: %.*s%s\n", c->name, what,
            (int)(line.len > 400 ? 400 : line.len), line.p, line.len > 400 ? "..." : "");
}

/* Sends one request; *line is its reply. Other messages in between are counted and skipped. */
static int chain_request(struct chain *c, const char *method, const char *params,
                         struct mj_slice *line)
{
    char buf[512];
    long id = ++c->next_id;
    int n = snprintf(buf, sizeof buf,
                     "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"%s\",\"params\":%s}\n", id,
                     method, params);
    struct iovec iov = {buf, n > 0 ? (size_t)n : 0};
    uint64_t t;

    if (n <= 0 || (size_t)n >= sizeof buf || chain_xfer(c, &iov, 1, line, &t) != 0)
        return -1;
    while (!is_reply_to(*line, id)) {
        c->stray++;
        if (chain_xfer(c, NULL, 0, line, &t) != 0)
            return -1;
    }
    return 0;
}

/* ---- MCP ------------------------------------------------------------------------------- */

static int chain_handshake(struct chain *c)
{
    static const char note[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
    struct iovec iov = {(void *)note, sizeof note - 1};
    struct mj_slice line, res, tools, tool, name, meta, hash;

    if (chain_request(c, "initialize",
                      "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                      "\"clientInfo\":{\"name\":\"clampd-bench\",\"version\":\"1\"}}",
                      &line) != 0)
        return -1;
    if (!mj_get(line, "result", &res)) {
        show_bad(c, "initialize", line);
        return -1;
    }
    if (chain_xfer(c, &iov, 1, NULL, NULL) != 0 || chain_request(c, "tools/list", "{}", &line))
        return -1;
    if (!mj_get(line, "result", &res) || !mj_get(res, "tools", &tools) || !mj_first(tools, &tool) ||
        !mj_get(tool, "name", &name) || !mj_eq(name, "\"echo\"")) {
        show_bad(c, "tools/list", line);
        return -1;
    }
    c->has_hash = mj_get(tool, "_meta", &meta) && mj_get(meta, "clampd/contract_hash", &hash);
    return 0;
}

/* One timed tools/call echo round trip; the reply is checked after the clock stops. */
static int chain_call(struct chain *c, const char *text, size_t text_len, uint64_t *ns)
{
    static const char tail[] = "\"}}}\n";
    char head[160];
    long id = ++c->next_id;
    int hl = snprintf(head, sizeof head,
                      "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":"
                      "{\"name\":\"echo\",\"arguments\":{\"text\":\"",
                      id);
    struct iovec iov[3] = {
        {head, hl > 0 ? (size_t)hl : 0}, {(void *)text, text_len}, {(void *)tail, sizeof tail - 1}};
    struct mj_slice line, res, content, item, got;
    uint64_t t0 = now_ns(), t1;

    if (chain_xfer(c, iov, 3, &line, &t1) != 0)
        return -1;
    while (!is_reply_to(line, id)) {
        c->stray++;
        if (chain_xfer(c, NULL, 0, &line, &t1) != 0)
            return -1;
    }
    *ns = t1 - t0;
    if (!mj_get(line, "result", &res) || !mj_get(res, "content", &content) ||
        !mj_first(content, &item) || !mj_get(item, "text", &got) || got.len != text_len + 2 ||
        memcmp(got.p + 1, text, text_len) != 0) {
        show_bad(c, "tools/call", line);
        return -1;
    }
    return 0;
}

/* Closes the chain's stdin, drains it to EOF, reaps it and records its ru_maxrss. */
static int chain_close(struct chain *c)
{
    uint64_t deadline = now_ns() + EXIT_TIMEOUT_NS;
    struct rusage ru;
    int status = 0, rc = 0;
    pid_t r;

    close_fd(&c->to_fd);
    while (c->from_fd >= 0 && now_ns() < deadline) {
        struct pollfd pf = {c->from_fd, POLLIN, 0};
        char sink[RX_CHUNK];

        if (poll(&pf, 1, 10) > 0 && read(c->from_fd, sink, sizeof sink) == 0)
            close_fd(&c->from_fd);
    }
    while ((r = wait4(c->pid, &status, WNOHANG, &ru)) == 0 && now_ns() < deadline)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    if (r == 0) {
        fprintf(stderr, "%s: still running 5 s after its stdin closed; killed\n", c->name);
        kill(c->pid, SIGKILL);
        r = wait4(c->pid, &status, 0, &ru);
        rc = -1;
    }
    close_fd(&c->from_fd);
    c->pid = -1;
    if (r < 0)
        return -1;
    c->maxrss_kib = ru.ru_maxrss;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        fprintf(stderr, "%s: exited abnormally (%s %d)\n", c->name,
                WIFEXITED(status) ? "status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        rc = -1;
    }
    return rc;
}

/* Peak RSS of the chain's top process alone (VmHWM), in KiB; -1 if unknown. */
static long vm_hwm_kib(pid_t pid)
{
    char path[64], row[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(row, sizeof row, f))
        if (strncmp(row, "VmHWM:", 6) == 0) {
            char *end;

            kib = strtol(row + 6, &end, 10);
            break;
        }
    fclose(f);
    return kib;
}

static void show_log_tail(const struct chain *c)
{
    char buf[2048];
    FILE *f = fopen(c->log, "r");
    size_t n;

    if (!f)
        return;
    if (fseek(f, -(long)sizeof buf + 1, SEEK_END) != 0)
        rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n)
        fprintf(stderr, "--- %s stderr (tail) ---\n%.*s\n", c->name, (int)n, buf);
}

/* ---- statistics and output ------------------------------------------------------------- */

static int samples_push(struct samples *s, uint64_t ns)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nns = realloc(s->ns, ncap * sizeof *nns);

        if (!nns)
            return -1;
        s->ns = nns;
        s->cap = ncap;
    }
    s->ns[s->n++] = ns;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

struct stats {
    double p50, p90, p99; /* microseconds */
    double per_s;         /* calls per second, one in flight */
};

/* Nearest-rank percentiles; sorts the samples in place. */
static struct stats stats_of(struct samples *s)
{
    struct stats st = {0, 0, 0, 0};
    double sum = 0;
    size_t i;

    if (!s->n)
        return st;
    qsort(s->ns, s->n, sizeof *s->ns, cmp_u64);
    for (i = 0; i < s->n; i++)
        sum += (double)s->ns[i];
#define PCT(q) ((double)s->ns[(size_t)((q) * (double)s->n + 0.999999) - 1] / 1e3)
    st.p50 = PCT(0.50);
    st.p90 = PCT(0.90);
    st.p99 = PCT(0.99);
#undef PCT
    st.per_s = (double)s->n * 1e9 / sum;
    return st;
}

static void print_row(const char *first, const char *name, const struct stats *st, double mib)
{
    printf("%-8s %-15s %9.1f %9.1f %9.1f", first, name, st->p50, st->p90, st->p99);
    if (mib > 0)
        printf(" %10.1f\n", 2 * mib / (st->p50 / 1e6));
    else
        printf(" %10.0f\n", st->per_s);
}

static void print_ratio(const char *first, const char *name, const struct stats *a,
                        const struct stats *b)
{
    printf("%-8s %-15s %8.2fx %8.2fx %8.2fx\n", first, name, a->p50 / b->p50, a->p90 / b->p90,
           a->p99 / b->p99);
}

/* Rows for every chain, then clampd against its two baselines when clampd ran. */
static void print_block(const char *first, struct chain *ch, size_t nch, struct samples *s,
                        double mib)
{
    struct stats st[MAX_CHAINS];
    size_t i;

    for (i = 0; i < nch; i++) {
        st[i] = stats_of(&s[i]);
        print_row(i ? "" : first, ch[i].name, &st[i], mib);
    }
    if (nch == MAX_CHAINS) {
        struct stats d = {st[2].p50 - st[1].p50, st[2].p90 - st[1].p90, st[2].p99 - st[1].p99, 0};

        print_ratio("", "clampd/relay", &st[2], &st[1]);
        print_ratio("", "clampd/direct", &st[2], &st[0]);
        printf("%-8s %-15s %+9.1f %+9.1f %+9.1f\n", "", "clampd-relay us", d.p50, d.p90, d.p99);
    }
    fflush(stdout);
}

static void print_kib(long kib)
{
    if (kib < 0)
        printf(" %20s", "n/a");
    else
        printf(" %9ld (%5.1f MiB)", kib, (double)kib / 1024.0);
}

static void print_memory(const struct chain *ch, size_t nch)
{
    size_t i;

    printf("\n== peak RSS, KiB (MiB)\n%-15s %20s %20s %20s\n", "chain", "VmHWM after small",
           "VmHWM after large", "ru_maxrss at exit");
    for (i = 0; i < nch; i++) {
        printf("%-15s", ch[i].name);
        print_kib(ch[i].hwm_small_kib);
        print_kib(ch[i].hwm_large_kib);
        print_kib(ch[i].maxrss_kib);
        printf("\n");
    }
    printf("VmHWM: the chain's first process alone (echo_server, relay, clampd).\n"
           "ru_maxrss: wait4() after its stdin closed; on Linux it is the larger of the process\n"
           "and the children it reaped, so for relay and clampd it may be the echo_server's.\n");
}

/* ---- scenarios ------------------------------------------------------------------------- */

/* Every round each chain makes `calls` calls; the chains take turns in rotating order. */
static int run_rounds(struct chain *ch, size_t nch, unsigned long rounds, unsigned long calls,
                      const char *text, size_t len, struct samples *out)
{
    unsigned long r, j;
    size_t i;

    for (r = 0; r < rounds; r++)
        for (i = 0; i < nch; i++) {
            size_t k = (r + i) % nch;

            for (j = 0; j < calls; j++) {
                uint64_t ns;

                if (chain_call(&ch[k], text, len, &ns) != 0)
                    return -1;
                if (out && samples_push(&out[k], ns) != 0)
                    return -1;
            }
        }
    return 0;
}

static void samples_reset(struct samples *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        s[i].n = 0;
}

static void size_label(size_t size, char *buf, size_t cap)
{
    if (size >= 1048576 && size % 1048576 == 0)
        snprintf(buf, cap, "%zu MiB", size / 1048576);
    else if (size >= 1024 && size % 1024 == 0)
        snprintf(buf, cap, "%zu KiB", size / 1024);
    else
        snprintf(buf, cap, "%zu B", size);
}

static int run_large(struct chain *ch, size_t nch, const struct opts *o, struct samples *s)
{
    size_t i, j;

    printf("\n== large text argument, echoed back (request and reply each carry it);\n"
           "   %lu rounds x %lu calls per chain per size; MiB/s = both directions at p50\n"
           "%-8s %-15s %9s %9s %9s %10s\n",
           o->rounds, o->large_calls, "size", "chain", "p50 us", "p90 us", "p99 us", "MiB/s");
    for (i = 0; i < o->nsizes; i++) {
        size_t size = o->sizes[i];
        char *text = malloc(size), label[32];
        int rc;

        if (!text)
            return -1;
        for (j = 0; j < size; j++)
            text[j] = (char)('a' + j % 26);
        samples_reset(s, nch);
        rc = run_rounds(ch, nch, 1, LARGE_WARMUP, text, size, NULL);
        if (!rc)
            rc = run_rounds(ch, nch, o->rounds, o->large_calls, text, size, s);
        free(text);
        if (rc)
            return -1;
        size_label(size, label, sizeof label);
        print_block(label, ch, nch, s, (double)size / 1048576.0);
    }
    return 0;
}

/* ---- options and main ------------------------------------------------------------------ */

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out,
                       char **end_out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *s == '-' || v < lo || v > hi || (!end_out && *end))
        return -1;
    if (end_out)
        *end_out = end;
    *out = v;
    return 0;
}

/* "65536,64K,1M": byte counts with an optional K or M suffix. */
static int parse_sizes(const char *s, struct opts *o)
{
    o->nsizes = 0;
    while (*s) {
        unsigned long v, mul = 1;
        char *end;

        if (o->nsizes == MAX_SIZES || parse_ulong(s, 1, 64ul << 20, &v, &end) != 0)
            return -1;
        if (*end == 'K' || *end == 'k')
            mul = 1024, end++;
        else if (*end == 'M' || *end == 'm')
            mul = 1048576, end++;
        if ((*end && *end != ',') || v * mul > (64ul << 20))
            return -1;
        o->sizes[o->nsizes++] = v * mul;
        s = *end ? end + 1 : end;
    }
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    int c;

    *o = (struct opts){20, 500, 200, 20, {65536, 1048576}, 2, false};
    while ((c = getopt(argc, argv, "r:n:w:l:s:R")) != -1) {
        int bad = 0;

        switch (c) {
        case 'r': bad = parse_ulong(optarg, 1, 100000, &o->rounds, NULL); break;
        case 'n': bad = parse_ulong(optarg, 1, 10000000, &o->calls, NULL); break;
        case 'w': bad = parse_ulong(optarg, 0, 10000000, &o->warmup, NULL); break;
        case 'l': bad = parse_ulong(optarg, 0, 1000000, &o->large_calls, NULL); break;
        case 's': bad = parse_sizes(optarg, o); break;
        case 'R': o->require_clampd = true; break;
        default: bad = -1;
        }
        if (bad) {
            fprintf(stderr, "latency: bad option -%c\n", optopt ? optopt : c);
            return -1;
        }
    }
    return argc - optind == 3 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void print_header(const struct opts *o, char **cmd[], size_t nch, const char *clampd)
{
    size_t i;
    char **a;

    printf("clampd latency bench: %lu rounds x %lu calls per chain, warm-up %lu, %ld CPUs\n",
           o->rounds, o->calls, o->warmup, sysconf(_SC_NPROCESSORS_ONLN));
    for (i = 0; i < MAX_CHAINS; i++) {
        printf("  %-7s", i == 0 ? "direct:" : i == 1 ? "relay:" : "clampd:");
        if (i >= nch)
            printf(" not built (%s), skipped", clampd);
        for (a = i < nch ? cmd[i] : NULL; a && *a; a++)
            printf(" %s", *a);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    struct chain ch[MAX_CHAINS];
    struct samples s[MAX_CHAINS];
    char tmp[] = "/tmp/clampd-bench.XXXXXX", state[64];
    char *echo, *relay, *clampd;
    char *argv_direct[2], *argv_relay[3], *argv_clampd[7], **cmd[MAX_CHAINS];
    size_t nch = 2, i;
    int rc = 1;

    memset(ch, 0, sizeof ch);
    memset(s, 0, sizeof s);
    for (i = 0; i < MAX_CHAINS; i++) {
        ch[i].name = i == 0 ? "direct" : i == 1 ? "relay" : "clampd";
        ch[i].pid = -1, ch[i].to_fd = -1, ch[i].from_fd = -1;
        ch[i].hwm_small_kib = ch[i].hwm_large_kib = ch[i].maxrss_kib = -1;
    }
    if (parse_opts(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: latency [-r rounds] [-n calls] [-w warmup] [-l large_calls]\n"
                        "               [-s size,size...] [-R] ECHO_SERVER RELAY CLAMPD\n");
        return 2;
    }
    echo = argv[optind];
    relay = argv[optind + 1];
    clampd = argv[optind + 2];
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(tmp)) {
        perror("latency: mkdtemp");
        return 1;
    }
    snprintf(state, sizeof state, "%s/state", tmp);
    if (access(clampd, X_OK) == 0)
        nch = 3;
    argv_direct[0] = echo, argv_direct[1] = NULL;
    argv_relay[0] = relay, argv_relay[1] = echo, argv_relay[2] = NULL;
    argv_clampd[0] = clampd, argv_clampd[1] = "mcp", argv_clampd[2] = "--downstream";
    argv_clampd[3] = echo, argv_clampd[4] = "--state-dir", argv_clampd[5] = state;
    argv_clampd[6] = NULL;
    cmd[0] = argv_direct, cmd[1] = argv_relay, cmd[2] = argv_clampd;
    print_header(&o, cmd, nch, clampd);
    if (nch < MAX_CHAINS && o.require_clampd)
        goto out;
    for (i = 0; i < nch; i++) {
        snprintf(ch[i].log, sizeof ch[i].log, "%s/%s.stderr", tmp, ch[i].name);
        if ((i == 2 && mkdir(state, 0700) != 0) || chain_spawn(&ch[i], cmd[i]) != 0 ||
            chain_handshake(&ch[i]) != 0)
            goto out;
    }
    if (nch == 3)
        printf("  clampd tools/list: _meta[\"clampd/contract_hash\"] %s\n",
               ch[2].has_hash ? "present" : "MISSING (is interception on?)");
    if (run_rounds(ch, nch, 1, o.warmup, SMALL_TEXT, sizeof SMALL_TEXT - 1, NULL) != 0 ||
        run_rounds(ch, nch, o.rounds, o.calls, SMALL_TEXT, sizeof SMALL_TEXT - 1, s) != 0)
        goto out;
    printf("\n== small call: tools/call echo {text: \"%s\"}\n%-8s %-15s %9s %9s %9s %10s\n",
           SMALL_TEXT, "", "chain", "p50 us", "p90 us", "p99 us", "calls/s");
    print_block("", ch, nch, s, 0);
    for (i = 0; i < nch; i++)
        ch[i].hwm_small_kib = vm_hwm_kib(ch[i].pid);
    if (o.nsizes && o.large_calls && run_large(ch, nch, &o, s) != 0)
        goto out;
    rc = 0;
    for (i = 0; i < nch; i++) {
        ch[i].hwm_large_kib = o.nsizes && o.large_calls ? vm_hwm_kib(ch[i].pid) : -1;
        if (chain_close(&ch[i]) != 0)
            rc = 1;
        if (ch[i].stray)
            printf("%s: %lu unexpected messages skipped\n", ch[i].name, ch[i].stray);
    }
    print_memory(ch, nch);
out:
    for (i = 0; i < nch; i++) {
        if (ch[i].pid > 0) {
            kill(ch[i].pid, SIGKILL);
            waitpid(ch[i].pid, NULL, 0);
        }
        if (rc)
            show_log_tail(&ch[i]);
        close_fd(&ch[i].to_fd);
        close_fd(&ch[i].from_fd);
        free(ch[i].rx);
        free(s[i].ns);
    }
    nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return rc;
}
