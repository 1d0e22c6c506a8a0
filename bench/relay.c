/*
 * relay: a plain byte relay, the floor of any out-of-process stdio proxy.
 *
 *   usage: relay COMMAND [ARG...]
 *
 * Spawns COMMAND with pipes for its stdin and stdout and copies bytes both ways with poll():
 * our stdin -> its stdin, its stdout -> our stdout. Its stderr is ours. No framing, no
 * parsing: what clampd adds on top of this (JSON-RPC framing, inspection, hashing, pinning)
 * is what the bench's clampd/relay ratio shows. Each direction has one buffer of a pipe's
 * size; a direction is read only when its buffer is empty, so neither side can make us grow.
 * On stdin EOF the child's stdin is closed; on the child's stdout EOF we flush, reap the
 * child and exit with its status.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE (64u * 1024u)

extern char **environ;

struct direction {
    int in, out;
    size_t off, len;
    bool eof; /* `in` reached EOF; `out` is closed once the buffer drains */
    char buf[BUF_SIZE];
};

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static pid_t spawn_child(char *const argv[], int *child_in, int *child_out)
{
    int pin[2], pout[2];
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    int err;

    if (pipe2(pin, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pout, O_CLOEXEC) != 0) {
        close(pin[0]);
        close(pin[1]);
        return -1;
    }
    err = posix_spawn_file_actions_init(&fa);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    if (!err)
        err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pin[0]);
    close(pout[1]);
    if (err) {
        fprintf(stderr, "relay: cannot run %s: %s\n", argv[0], strerror(err));
        close(pin[1]);
        close(pout[0]);
        return -1;
    }
    *child_in = pin[1];
    *child_out = pout[0];
    return pid;
}

/* Moves what it can for one direction after poll() said it is ready; -1 on a hard error. */
static int pump(struct direction *d)
{
    ssize_t n;

    if (d->len == 0 && !d->eof) {
        n = read(d->in, d->buf, sizeof d->buf);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0)
            d->eof = true;
        d->off = 0;
        d->len = (size_t)n;
    }
    while (d->len > 0) {
        n = write(d->out, d->buf + d->off, d->len);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        d->off += (size_t)n;
        d->len -= (size_t)n;
    }
    if (d->eof && d->out >= 0) {
        close(d->out);
        d->out = -1;
    }
    return 0;
}

/* The pollfd for one side of a direction; fd -1 (ignored by poll) when it has nothing to wait
 * for, so a hung-up fd we are done with cannot make poll() spin. */
static struct pollfd watch(const struct direction *d, bool in_side)
{
    struct pollfd pf = {-1, 0, 0};

    if (in_side && d->len == 0 && !d->eof && d->out >= 0) {
        pf.fd = d->in;
        pf.events = POLLIN;
    } else if (!in_side && d->len > 0) {
        pf.fd = d->out;
        pf.events = POLLOUT;
    }
    return pf;
}

int main(int argc, char **argv)
{
    static struct direction up, down; /* client -> child, child -> client */
    int status = 0;
    pid_t pid;

    if (argc < 2) {
        fprintf(stderr, "usage: relay COMMAND [ARG...]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    up.in = 0;
    down.out = 1;
    pid = spawn_child(argv + 1, &up.out, &down.in);
    if (pid < 0 || set_nonblock(0) || set_nonblock(1) || set_nonblock(up.out) ||
        set_nonblock(down.in)) {
        perror("relay: setup");
        return 1;
    }
    while (down.out >= 0) {
        struct pollfd pf[4] = {watch(&up, true), watch(&up, false), watch(&down, true),
                               watch(&down, false)};

        if (poll(pf, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("relay: poll");
            return 1;
        }
        /* A write error towards the child (it exited) just ends that direction. */
        if ((pf[0].revents || pf[1].revents) && up.out >= 0 && pump(&up) < 0) {
            close(up.out);
            up.out = -1;
            up.eof = true;
            up.len = 0;
        }
        if ((pf[2].revents || pf[3].revents) && pump(&down) < 0)
            break; /* our client went away */
    }
    if (up.out >= 0)
        close(up.out);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
