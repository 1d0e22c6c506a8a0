/*
 * limits: every maximum clampd enforces, in one place.
 * SECURITY: these bound what a hostile client or downstream can make us allocate.
 */
#ifndef CLAMPD_LIMITS_H
#define CLAMPD_LIMITS_H

/* One JSON-RPC message (one line). MCP results may carry base64 images of tens of MB. */
#define CLAMPD_MAX_MESSAGE (64u * 1024u * 1024u)
/* Nesting depth accepted by the JSON-RPC peek scanner. */
#define CLAMPD_MAX_JSON_DEPTH 512
/* Requests from the client awaiting an answer from the downstream. */
#define CLAMPD_MAX_PENDING 65536u
/* Length of a JSON-RPC id token we track (raw bytes). */
#define CLAMPD_MAX_ID_LEN 1024u
/* Bytes queued towards one peer before we stop reading from the other side. */
#define CLAMPD_MAX_WRITE_BACKLOG (256u * 1024u * 1024u)
/* Tool calls held while a re-listing of tools is in flight. */
#define CLAMPD_MAX_HELD_CALLS 1024u
/* Pages followed when clampd lists tools itself. */
#define CLAMPD_MAX_LIST_PAGES 1000u
/* Tools tracked in one session. */
#define CLAMPD_MAX_TOOLS 10000u
/* Last stderr bytes of the downstream kept for error reports. */
#define CLAMPD_STDERR_TAIL 4096u
/* Canonical JSON output (one tool descriptor or one call's arguments). */
#define CLAMPD_MAX_CANONICAL (64u * 1024u * 1024u)
/* Words in a --downstream command line. */
#define CLAMPD_MAX_ARGV 4096u
/* Scope-token limits (token size, lifetime, JWKS size, replay cache) are in
 * include/clampd/verify.h, which downstream verifiers compile without this header. */

#endif
