/*
 * echo_server: a minimal MCP stdio server, the downstream of every chain in the latency bench.
 *
 * Reads newline-delimited JSON-RPC 2.0 on stdin and answers on stdout:
 *   initialize  -> protocolVersion "2025-06-18", capabilities {tools:{}}, serverInfo bench-echo
 *   tools/list  -> one tool, "echo", taking {text: string}
 *   tools/call  -> {content: [{type: "text", text: <arguments.text>}]}
 *   ping        -> {}
 * Notifications (no id) and responses are ignored; other requests get -32601. Input is
 * buffered until the newline, so a message split over many reads (a 1 MiB argument) is fine.
 * The text argument is echoed as the raw JSON string token, never decoded: the fixture should
 * cost the same in every chain and as little as possible. Exits 0 on stdin EOF.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mini_json.h"

#define READ_CHUNK (64u * 1024u)
#define MAX_LINE (256u * 1024u * 1024u)

static const char init_result[] =
    "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},"
    "\"serverInfo\":{\"name\":\"bench-echo\",\"version\":\"1\"}}";

static const char tools_result[] =
    "{\"tools\":[{\"name\":\"echo\",\"description\":\"Returns the text argument unchanged.\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}}}}]}";

static void put(const char *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n)
        exit(1); /* the client went away: nothing left to serve */
}

static void put_str(const char *s)
{
    put(s, strlen(s));
}

static void reply_begin(struct mj_slice id)
{
    put_str("{\"jsonrpc\":\"2.0\",\"id\":");
    put(id.p, id.len);
}

static void reply_end(void)
{
    put_str("}\n");
    if (fflush(stdout) != 0)
        exit(1);
}

static void reply(struct mj_slice id, const char *result)
{
    reply_begin(id);
    put_str(",\"result\":");
    put_str(result);
    reply_end();
}

static void reply_error(struct mj_slice id, int code, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, ",\"error\":{\"code\":%d,\"message\":\"%s\"}", code, message);

    reply_begin(id);
    if (n > 0)
        put(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    reply_end();
}

static void handle_call(struct mj_slice msg, struct mj_slice id)
{
    struct mj_slice params, name, args, text;

    if (!mj_get(msg, "params", &params) || !mj_get(params, "name", &name) ||
        !mj_eq(name, "\"echo\"")) {
        reply_error(id, -32602, "unknown tool");
        return;
    }
    if (!mj_get(params, "arguments", &args) || !mj_get(args, "text", &text) || text.len < 2 ||
        text.p[0] != '"') {
        reply_error(id, -32602, "arguments.text must be a string");
        return;
    }
    reply_begin(id);
    put_str(",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
    put(text.p, text.len);
    put_str("}]}");
    reply_end();
}

static void handle_line(const char *p, size_t n)
{
    struct mj_slice msg = {p, n}, id, method;

    if (!mj_get(msg, "method", &method) || !mj_get(msg, "id", &id))
        return; /* a response, a notification, or junk: nothing to answer */
    if (mj_eq(method, "\"initialize\""))
        reply(id, init_result);
    else if (mj_eq(method, "\"tools/list\""))
        reply(id, tools_result);
    else if (mj_eq(method, "\"tools/call\""))
        handle_call(msg, id);
    else if (mj_eq(method, "\"ping\""))
        reply(id, "{}");
    else
        reply_error(id, -32601, "method not found");
}

int main(void)
{
    char *buf = NULL;
    size_t cap = 0, len = 0, scanned = 0;

    for (;;) {
        size_t start = 0;
        ssize_t got;
        char *nl;

        if (cap - len < READ_CHUNK) {
            size_t ncap = cap ? cap * 2 : 2 * READ_CHUNK;
            char *nbuf = ncap <= MAX_LINE + 2 * READ_CHUNK ? realloc(buf, ncap) : NULL;

            if (!nbuf) {
                fprintf(stderr, "echo_server: line too long or out of memory\n");
                return 1;
            }
            buf = nbuf;
            cap = ncap;
        }
        got = read(0, buf + len, cap - len);
        if (got == 0)
            break;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_server: read");
            return 1;
        }
        len += (size_t)got;
        while ((nl = memchr(buf + scanned, '\n', len - scanned)) != NULL) {
            size_t end = (size_t)(nl - buf);

            handle_line(buf + start, end - start);
            start = scanned = end + 1;
        }
        scanned = len;
        if (start) {
            memmove(buf, buf + start, len - start);
            len -= start;
            scanned -= start;
        }
    }
    free(buf);
    return 0;
}
