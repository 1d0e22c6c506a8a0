/*
 * jsonrpc: newline-delimited JSON-RPC 2.0 framing and a non-allocating message peek.
 *
 *   bytes in arbitrary chunks ──jrpc_framer_feed()──▶ one callback per complete line
 *   line ──jrpc_peek()──▶ kind, id token, method  (validates the whole line as JSON,
 *                                                  builds no tree, allocates nothing)
 *
 * Only messages that need inspection are later parsed fully (jansson); everything else
 * is relayed as the exact bytes that arrived.
 */
#ifndef CLAMPD_JSONRPC_H
#define CLAMPD_JSONRPC_H

#include "core/core.h"

/* ---- framing ---- */

/* Called once per line. status is 0 for a complete line (without its "\n" or "\r\n"), or
 * ERR_TOO_BIG when a line exceeded the framer's maximum: its bytes were discarded (line is
 * NULL, len is how many bytes were dropped). A non-zero return stops feeding and is
 * returned by jrpc_framer_feed(). */
typedef int (*jrpc_line_fn)(void *ctx, int status, const char *line, size_t len);

struct jrpc_framer {
    struct dbuf buf; /* bytes of the current, incomplete line */
    size_t max;      /* maximum line length */
    size_t skipping; /* > 0 while discarding an oversized line: bytes dropped so far */
};

/* Initialises a framer accepting lines of at most max bytes. Allocates nothing. */
void jrpc_framer_init(struct jrpc_framer *f, size_t max);
void jrpc_framer_deinit(struct jrpc_framer *f);

/* Feeds len bytes. Complete lines are handed to cb in order; lines wholly inside data are
 * passed without copying, only a trailing partial line is buffered. Empty lines are
 * skipped. Returns 0, the first non-zero value cb returned, or ERR_NOMEM. Work is linear
 * in the bytes fed, however they are chunked. */
int jrpc_framer_feed(struct jrpc_framer *f, const char *data, size_t len, jrpc_line_fn cb,
                     void *ctx);

/* Bytes of the partial line held (for end-of-stream reporting). */
size_t jrpc_framer_pending(const struct jrpc_framer *f);

/* ---- peek ---- */

enum jrpc_kind {
    JRPC_INVALID = 0,  /* valid JSON but not a JSON-RPC message */
    JRPC_REQUEST,      /* method + id */
    JRPC_NOTIFICATION, /* method, no id */
    JRPC_RESPONSE,     /* id + result or error */
    JRPC_BATCH,        /* a JSON array: callers parse it fully */
};

struct jrpc_slice {
    const char *p;
    size_t n;
};

#define JRPC_METHOD_MAX 256

struct jrpc_peek {
    enum jrpc_kind kind;
    struct jrpc_slice id; /* the id's raw JSON token, {NULL,0} when absent */
    bool id_is_null;
    char method[JRPC_METHOD_MAX]; /* decoded method, NUL-terminated ("" when absent) */
    bool method_too_long;         /* method longer than JRPC_METHOD_MAX-1: method[] is empty */
    struct jrpc_slice params;     /* the raw value of "params", {NULL,0} when absent */
    struct jrpc_slice result;     /* the raw value of "result", {NULL,0} when absent */
    bool has_params, has_result, has_error;
};

/* Validates msg as one JSON text (RFC 8259, UTF-8, nesting <= CLAMPD_MAX_JSON_DEPTH) and
 * fills out with its top-level JSON-RPC members. Returns 0, or ERR_PARSE when msg is not
 * JSON. A duplicated top-level "id", "method", "params", "result" or "error" makes the
 * message JRPC_INVALID: SECURITY: parsers disagree on which duplicate wins, and we must
 * classify a message exactly as the peer that receives it will. */
int jrpc_peek(const char *msg, size_t len, struct jrpc_peek *out);

/* Called for each member of an object: key is the decoded key (NUL-terminated, key_len
 * bytes; it may contain a NUL, which callers treat as suspicious), or NULL when it decodes
 * to more than JRPC_KEY_MAX-1 bytes or holds a lone surrogate (callers that match keys
 * must then refuse the object: such a key may be any key to the peer); value is the
 * member's raw JSON. A non-zero return
 * stops the walk and is returned. */
#define JRPC_KEY_MAX 256
typedef int (*jrpc_member_fn)(void *ctx, const char *key, size_t key_len, struct jrpc_slice value);

/* Walks the members of obj, a JSON object already validated by jrpc_peek (e.g. pk.params),
 * in order, without allocating. Returns 0, ERR_PARSE when obj is not an object, or the
 * callback's non-zero value. */
int jrpc_object_each(struct jrpc_slice obj, jrpc_member_fn fn, void *ctx);

/* Called for each element of an array (its raw JSON); a non-zero return stops the walk. */
typedef int (*jrpc_element_fn)(void *ctx, size_t index, struct jrpc_slice value);

/* Walks the elements of arr, a JSON array already validated by jrpc_peek, in order,
 * without allocating. Returns 0, ERR_PARSE when arr is not an array, or the callback's
 * non-zero value. */
int jrpc_array_each(struct jrpc_slice arr, jrpc_element_fn fn, void *ctx);

/* Decodes a validated JSON string token (with its quotes) into out, NUL-terminated.
 * Returns the decoded length, or -1 if tok is not a string, does not fit in cap-1, or
 * holds a lone surrogate. */
long jrpc_string_decode(struct jrpc_slice tok, char *out, size_t cap);

/* True when key (key_len bytes) is not name but a case-insensitive decoder would take it
 * for name: Go's encoding/json and .NET with case-insensitive names match keys by ASCII
 * case folding, and Go also folds U+017F (ſ) to 's' and U+212A (Kelvin) to 'k'. A key with
 * an embedded NUL counts as an alias of every name. */
bool jrpc_key_aliases(const char *key, size_t key_len, const char *name);

/* Writes into out the canonical key of an id token (a string or number): the key is the
 * same for tokens that decode to the same value ("\u0041" and "A"; 1 and 1.0). Returns 0,
 * ERR_INVAL for null/object/array ids, ERR_TOO_BIG past CLAMPD_MAX_ID_LEN. */
int jrpc_id_key(struct jrpc_slice id, struct dbuf *out);

/* Appends a JSON-RPC error response line (with trailing "\n") to out. id is a raw JSON
 * token or {NULL,0} for null; message is escaped. */
int jrpc_emit_error(struct dbuf *out, struct jrpc_slice id, int code, const char *message);

/* JSON-RPC / MCP error codes used by clampd. */
#define JRPC_PARSE_ERROR (-32700)
#define JRPC_INVALID_REQUEST (-32600)
#define JRPC_METHOD_NOT_FOUND (-32601)
#define JRPC_INVALID_PARAMS (-32602)
#define JRPC_INTERNAL_ERROR (-32603)
#define JRPC_DOWNSTREAM_ERROR (-32000) /* downstream unavailable, exited or failed */

#endif
