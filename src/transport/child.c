/*
 * child: the downstream process.
 *
 *          our end          child's end
 *   stdin  tp_out  ──pipe──▶ fd 0
 *   stdout tp_in   ◀──pipe── fd 1
 *   stderr tp_in   ◀──pipe── fd 2   copied to our stderr as it arrives; tail kept
 *
 * The child runs in a new session (UV_PROCESS_DETACHED: setsid), so its pid is its
 * process group id and tp_child_signal_group() reaches what it spawned too (npx → sh →
 * node). Our pipe ends are close-on-exec, so the child inherits nothing else of ours.
 */
#include "transport/transport-int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tp_child {
    uv_process_t proc;
    struct tp_out *in, *in_closing; /* in_closing: closed, still flushing */
    struct tp_in *out, *err;
    struct tp_child_cbs cbs;
    int pid;
    bool exited, proc_closed, freed;
    int64_t exit_status;
    int term_signal;
    char tail[CLAMPD_STDERR_TAIL + 1];
    size_t tail_len;
};

static void on_child_stdout(void *ctx, const char *data, size_t len)
{
    struct tp_child *c = ctx;
    c->cbs.on_stdout(c->cbs.ctx, data, len);
}

static void on_child_stdout_eof(void *ctx)
{
    struct tp_child *c = ctx;
    if (c->cbs.on_stdout_eof)
        c->cbs.on_stdout_eof(c->cbs.ctx);
}

/* Keeps the last CLAMPD_STDERR_TAIL bytes of the child's stderr. */
static void keep_tail(struct tp_child *c, const char *data, size_t len)
{
    if (len >= CLAMPD_STDERR_TAIL) {
        memcpy(c->tail, data + len - CLAMPD_STDERR_TAIL, CLAMPD_STDERR_TAIL);
        c->tail_len = CLAMPD_STDERR_TAIL;
    } else {
        size_t keep =
            c->tail_len + len > CLAMPD_STDERR_TAIL ? CLAMPD_STDERR_TAIL - len : c->tail_len;
        memmove(c->tail, c->tail + c->tail_len - keep, keep);
        memcpy(c->tail + keep, data, len);
        c->tail_len = keep + len;
    }
    c->tail[c->tail_len] = '\0';
}

static void on_child_stderr(void *ctx, const char *data, size_t len)
{
    struct tp_child *c = ctx;
    size_t off = 0;

    keep_tail(c, data, len);
    /* The downstream's stderr is passed through: it is the user's only window into it. */
    while (off < len) {
        ssize_t n = write(STDERR_FILENO, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

static void on_stdin_drain(void *ctx)
{
    struct tp_child *c = ctx;
    if (c->cbs.on_stdin_drain)
        c->cbs.on_stdin_drain(c->cbs.ctx);
}

static void maybe_free(struct tp_child *c)
{
    if (c->freed && c->proc_closed)
        free(c);
}

static void proc_closed(uv_handle_t *h)
{
    struct tp_child *c = h->data;
    c->proc_closed = true;
    maybe_free(c);
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    struct tp_child *c = p->data;

    c->exited = true;
    c->exit_status = status;
    c->term_signal = sig;
    uv_close((uv_handle_t *)p, proc_closed);
    if (!c->freed && c->cbs.on_exit)
        c->cbs.on_exit(c->cbs.ctx);
}

static char *spawn_message(const char *cmd, int err)
{
    char buf[1024];

    if (err == UV_ENOENT)
        snprintf(buf, sizeof(buf), "command not found: %s", cmd);
    else if (err == UV_EACCES)
        snprintf(buf, sizeof(buf), "permission denied: %s", cmd);
    else
        snprintf(buf, sizeof(buf), "cannot start %s: %s", cmd, uv_strerror(err));
    return strdup(buf);
}

/* Creates the three pipes; ours[i] is our end, theirs[i] the child's fd i. */
static int make_pipes(uv_file ours[3], uv_file theirs[3])
{
    uv_file fds[2];

    for (int i = 0; i < 3; i++) {
        int rc = uv_pipe(fds, 0, 0);
        if (rc)
            return rc; /* the caller closes what was made so far */
        ours[i] = i == 0 ? fds[1] : fds[0];
        theirs[i] = i == 0 ? fds[0] : fds[1];
    }
    return 0;
}

static void close_fds(uv_file fds[3])
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static int start_streams(uv_loop_t *loop, struct tp_child *c, uv_file ours[3])
{
    c->in = tp_out_open(loop, ours[0], CLAMPD_MAX_WRITE_BACKLOG, on_stdin_drain, NULL, c);
    if (c->in)
        ours[0] = -1;
    c->out = tp_in_open(loop, ours[1], on_child_stdout, on_child_stdout_eof, c);
    if (c->out)
        ours[1] = -1;
    c->err = tp_in_open(loop, ours[2], on_child_stderr, NULL, c);
    if (c->err)
        ours[2] = -1;
    return c->in && c->out && c->err ? 0 : ERR_IO;
}

int tp_child_spawn(uv_loop_t *loop, char *const *argv, char *const *env,
                   const struct tp_child_cbs *cbs, struct tp_child **out, char **errmsg)
{
    struct tp_child *c = calloc(1, sizeof(*c));
    uv_file ours[3] = {-1, -1, -1}, theirs[3] = {-1, -1, -1};
    uv_stdio_container_t stdio[3];
    uv_process_options_t opts;
    int rc = ERR_NOMEM, err;

    *out = NULL;
    if (!c)
        goto out;
    c->cbs = *cbs;
    c->proc.data = c;
    err = make_pipes(ours, theirs);
    if (err) {
        close_fds(theirs);
        rc = ERR_IO;
        *errmsg = spawn_message(argv[0], err);
        goto out;
    }
    for (int i = 0; i < 3; i++) {
        stdio[i].flags = UV_INHERIT_FD;
        stdio[i].data.fd = theirs[i];
    }
    memset(&opts, 0, sizeof(opts));
    opts.file = argv[0];
    opts.args = (char **)argv;
    opts.env = (char **)env;
    opts.flags = UV_PROCESS_DETACHED;
    opts.exit_cb = on_proc_exit;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    err = uv_spawn(loop, &c->proc, &opts);
    close_fds(theirs);
    if (err) {
        rc = ERR_IO;
        *errmsg = spawn_message(argv[0], err);
        /* libuv wants the failed handle closed; the close callback frees c. */
        c->freed = true;
        uv_close((uv_handle_t *)&c->proc, proc_closed);
        c = NULL;
        goto out;
    }
    c->pid = c->proc.pid;
    rc = start_streams(loop, c, ours);
    if (rc) {
        *errmsg = strdup("cannot attach to the downstream's pipes");
        tp_child_signal_group(c, SIGKILL);
        tp_child_free(c);
        c = NULL;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    close_fds(ours);
    free(c);
    return rc;
}

int tp_child_write(struct tp_child *c, char *buf, size_t len)
{
    return tp_out_write(c->in, buf, len);
}

bool tp_child_stdin_congested(const struct tp_child *c)
{
    return c->in && tp_out_congested(c->in);
}

static void stdin_closed(void *ctx)
{
    struct tp_child *c = ctx;
    c->in_closing = NULL;
}

void tp_child_close_stdin(struct tp_child *c)
{
    if (c->in) {
        c->in_closing = c->in;
        tp_out_close(c->in, stdin_closed, c);
    }
    c->in = NULL;
}

void tp_child_pause_stdout(struct tp_child *c)
{
    tp_in_pause(c->out);
}
void tp_child_resume_stdout(struct tp_child *c)
{
    tp_in_resume(c->out);
}

bool tp_child_signal_group(struct tp_child *c, int sig)
{
    if (c->pid <= 0)
        return false;
    return kill(-c->pid, sig) == 0;
}

bool tp_child_exited(const struct tp_child *c)
{
    return c->exited;
}

void tp_child_exit_status(const struct tp_child *c, int64_t *status, int *term_signal)
{
    *status = c->exit_status;
    *term_signal = c->term_signal;
}

int tp_child_pid(const struct tp_child *c)
{
    return c->pid;
}

const char *tp_child_stderr_tail(struct tp_child *c)
{
    return c->tail;
}

void tp_child_free(struct tp_child *c)
{
    if (!c)
        return;
    /* SECURITY: bounded: writes still queued for a downstream (or a stray process holding
     * its stdin) that never reads are dropped, not waited for. */
    if (c->in)
        tp_out_abort(c->in);
    if (c->in_closing)
        tp_out_abort(c->in_closing);
    c->in = c->in_closing = NULL;
    tp_in_close(c->out);
    tp_in_close(c->err);
    c->out = c->err = NULL;
    c->freed = true;
    if (!c->exited) {
        /* The process handle stays open until it exits so it is reaped: no zombie. */
        return;
    }
    maybe_free(c);
}
