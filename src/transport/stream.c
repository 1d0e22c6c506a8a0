/*
 * stream: tp_out (ordered owned writes with a backlog count) and tp_in (reads until EOF)
 * over pipes, sockets, ttys and regular files.
 */
#include "transport/transport-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TP_READ_CHUNK (64u * 1024u)

struct out_req {
    uv_write_t req;
    struct tp_out *o;
    char *buf;
    size_t len;
};

struct tp_out {
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
        uv_handle_t handle;
    } h;
    int fd;
    bool is_file, failed, congested, closing, handle_open, close_started;
    unsigned busy; /* > 0 while a callback of ours runs: the struct must outlive it */
    size_t backlog, high, inflight;
    tp_event_fn on_drain, on_error, close_done;
    void *ctx, *close_ctx;
};

struct tp_in {
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
        uv_handle_t handle;
    } h;
    uv_fs_t fsreq;
    uv_loop_t *loop;
    int fd;
    bool is_file, paused, eof, closing, reading_file, dispatching;
    int64_t offset;
    tp_data_fn on_data;
    tp_event_fn on_eof;
    void *ctx;
    char buf[TP_READ_CHUNK];
};

/* Opens fd as a libuv stream in h; returns 0, 1 for a regular file, or a libuv error. */
static int open_stream(uv_loop_t *loop, int fd, uv_handle_t *h, bool readable)
{
    switch (uv_guess_handle(fd)) {
    case UV_FILE: return 1;
    case UV_TTY: return uv_tty_init(loop, (uv_tty_t *)h, fd, readable);
    default:
        if (uv_pipe_init(loop, (uv_pipe_t *)h, 0))
            return UV_EINVAL;
        return uv_pipe_open((uv_pipe_t *)h, fd);
    }
}

struct tp_out *tp_out_open(uv_loop_t *loop, int fd, size_t high_water, tp_event_fn on_drain,
                           tp_event_fn on_error, void *ctx)
{
    struct tp_out *o = calloc(1, sizeof(*o));
    int rc;

    if (!o)
        return NULL;
    o->fd = fd;
    o->high = high_water;
    o->on_drain = on_drain;
    o->on_error = on_error;
    o->ctx = ctx;
    rc = open_stream(loop, fd, &o->h.handle, false);
    if (rc < 0) {
        clog_error("cannot use fd %d for output: %s", fd, uv_strerror(rc));
        free(o);
        return NULL;
    }
    o->is_file = rc == 1;
    o->handle_open = !o->is_file;
    o->h.handle.data = o;
    return o;
}

static void out_closed(uv_handle_t *h)
{
    struct tp_out *o = h->data;
    if (o->close_done)
        o->close_done(o->close_ctx);
    free(o);
}

static void out_maybe_finish(struct tp_out *o)
{
    /* SECURITY: reached again from a write callback after a close began (an error callback
     * can start the close): freeing twice, or under a pending uv_close, must not happen. */
    if (!o->closing || o->inflight || o->close_started || o->busy)
        return;
    o->close_started = true;
    if (o->handle_open) {
        o->handle_open = false;
        uv_close(&o->h.handle, out_closed);
        return;
    }
    if (o->is_file)
        close(o->fd);
    if (o->close_done)
        o->close_done(o->close_ctx);
    free(o);
}

/* Calls an event callback; a close it starts takes effect only once we are back. */
static void notify(struct tp_out *o, tp_event_fn fn)
{
    if (!fn)
        return;
    o->busy++;
    fn(o->ctx);
    o->busy--;
}

static void out_fail(struct tp_out *o, int err)
{
    if (o->failed)
        return;
    o->failed = true;
    clog_debug("write to fd %d failed: %s", o->fd, uv_strerror(err));
    notify(o, o->on_error);
}

static void out_written(uv_write_t *req, int status)
{
    struct out_req *r = (struct out_req *)req;
    struct tp_out *o = r->o;

    o->backlog -= r->len;
    o->inflight--;
    free(r->buf);
    free(r);
    if (status < 0)
        out_fail(o, status);
    if (o->congested && o->backlog < o->high / 2) {
        o->congested = false;
        if (!o->closing)
            notify(o, o->on_drain);
    }
    out_maybe_finish(o);
}

static int out_write(struct tp_out *o, char *buf, size_t len);

static int write_file(struct tp_out *o, char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(o->fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out_fail(o, uv_translate_sys_error(errno));
            break;
        }
        off += (size_t)n;
    }
    free(buf);
    return o->failed ? ERR_IO : 0; /* o is alive: out_fail defers any close it caused */
}

int tp_out_write(struct tp_out *o, char *buf, size_t len)
{
    int rc = out_write(o, buf, len);

    out_maybe_finish(o); /* a close that a failure started during the write; may free o */
    return rc;
}

static int out_write(struct tp_out *o, char *buf, size_t len)
{
    struct out_req *r;
    uv_buf_t b;
    int rc;

    if (o->failed || o->closing) {
        free(buf);
        return ERR_IO;
    }
    if (o->is_file)
        return write_file(o, buf, len);
    r = malloc(sizeof(*r));
    if (!r) {
        free(buf);
        return ERR_NOMEM;
    }
    r->o = o, r->buf = buf, r->len = len;
    b = uv_buf_init(buf, (unsigned)len);
    rc = uv_write(&r->req, (uv_stream_t *)&o->h.handle, &b, 1, out_written);
    if (rc) {
        free(buf);
        free(r);
        out_fail(o, rc);
        return ERR_IO;
    }
    o->backlog += len;
    o->inflight++;
    if (o->backlog > o->high)
        o->congested = true;
    return 0;
}

void tp_out_abort(struct tp_out *o)
{
    o->close_done = NULL; /* the caller may be gone by the time the close completes */
    if (o->close_started)
        return;
    o->closing = true;
    o->close_started = true;
    if (o->handle_open) {
        /* Pending writes complete with UV_ECANCELED before the close callback frees o. */
        o->handle_open = false;
        uv_close(&o->h.handle, out_closed);
        return;
    }
    if (o->is_file)
        close(o->fd);
    free(o);
}

size_t tp_out_backlog(const struct tp_out *o)
{
    return o->backlog;
}
bool tp_out_congested(const struct tp_out *o)
{
    return o->congested;
}

void tp_out_close(struct tp_out *o, tp_event_fn done, void *ctx)
{
    if (o->closing)
        return;
    o->closing = true;
    o->close_done = done;
    o->close_ctx = ctx;
    out_maybe_finish(o);
}

/* ---- tp_in ---- */

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct tp_in *in = h->data;
    (void)hint;
    /* One buffer per stream: on_data consumes it before the next read is issued. */
    *b = uv_buf_init(in->buf, sizeof(in->buf));
}

static void in_eof(struct tp_in *in)
{
    if (in->eof)
        return;
    in->eof = true;
    if (!in->is_file)
        uv_read_stop((uv_stream_t *)&in->h.handle);
    if (in->on_eof)
        in->on_eof(in->ctx);
}

static void in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct tp_in *in = s->data;

    if (n > 0)
        in->on_data(in->ctx, b->base, (size_t)n);
    else if (n < 0) {
        if (n != UV_EOF)
            clog_debug("read from fd %d failed: %s", in->fd, uv_strerror((int)n));
        in_eof(in);
    }
}

static void file_read_next(struct tp_in *in);

static void file_read_done(uv_fs_t *req)
{
    struct tp_in *in = req->data;
    ssize_t n = req->result;

    uv_fs_req_cleanup(req);
    in->reading_file = false;
    if (in->closing) {
        free(in);
        return;
    }
    if (n <= 0) {
        in_eof(in);
        return;
    }
    in->offset += n;
    in->dispatching = true;
    in->on_data(in->ctx, in->buf, (size_t)n);
    in->dispatching = false;
    if (in->closing) {
        free(in); /* closed from inside on_data: freed only now that it returned */
        return;
    }
    if (!in->paused)
        file_read_next(in);
}

static void file_read_next(struct tp_in *in)
{
    uv_buf_t b = uv_buf_init(in->buf, sizeof(in->buf));

    if (in->reading_file || in->eof)
        return;
    in->fsreq.data = in;
    in->reading_file = true;
    if (uv_fs_read(in->loop, &in->fsreq, in->fd, &b, 1, in->offset, file_read_done)) {
        in->reading_file = false;
        in_eof(in);
    }
}

struct tp_in *tp_in_open(uv_loop_t *loop, int fd, tp_data_fn on_data, tp_event_fn on_eof, void *ctx)
{
    struct tp_in *in = calloc(1, sizeof(*in));
    int rc;

    if (!in)
        return NULL;
    in->fd = fd, in->on_data = on_data, in->on_eof = on_eof, in->ctx = ctx;
    rc = open_stream(loop, fd, &in->h.handle, true);
    if (rc < 0) {
        clog_error("cannot use fd %d for input: %s", fd, uv_strerror(rc));
        free(in);
        return NULL;
    }
    in->is_file = rc == 1;
    in->h.handle.data = in;
    in->loop = loop;
    tp_in_resume(in);
    return in;
}

void tp_in_pause(struct tp_in *in)
{
    if (in->paused || in->eof)
        return;
    in->paused = true;
    if (!in->is_file)
        uv_read_stop((uv_stream_t *)&in->h.handle);
}

void tp_in_resume(struct tp_in *in)
{
    in->paused = false;
    if (in->eof || in->closing)
        return;
    if (in->is_file) {
        file_read_next(in);
        return;
    }
    if (uv_read_start((uv_stream_t *)&in->h.handle, in_alloc, in_read))
        in_eof(in);
}

static void in_closed(uv_handle_t *h)
{
    free(h->data);
}

void tp_in_close(struct tp_in *in)
{
    if (!in || in->closing)
        return;
    in->closing = true;
    if (!in->is_file)
        uv_close(&in->h.handle, in_closed);
    else if (!in->reading_file && !in->dispatching)
        free(in);
}
