/*
 * proxy: one MCP session relayed between our stdio (the client) and a spawned
 * downstream server, with interception points for discovery and tool calls.
 *
 *   client ──stdin──▶ frame ─▶ peek ─┬─ tools/call ─▶ engine_decide ─┬─ allow: forward bytes
 *                                    │                               └─ deny: typed denial back
 *                                    └─ anything else: forward bytes (requests tracked by id)
 *   client ◀─stdout── frame ◀─ peek ◀┬─ tools/list, prompts/list, …, initialize result:
 *                                    │      engine_discover_* rewrites it
 *                                    ├─ tools/list_changed: re-list first, then forward
 *                                    ├─ answers to our own requests: consumed
 *                                    └─ anything else: forward bytes
 *
 * The proxy knows nothing of rules: it asks the engine.
 */
#ifndef CLAMPD_PROXY_H
#define CLAMPD_PROXY_H

#include "engine/engine.h"

/* Remote mode: every tools/call is decided by a clampd gateway (docs/gateway.md). */
struct proxy_gateway {
    const char *url;     /* base URL, e.g. http://127.0.0.1:8700 */
    const char *api_key; /* sent as X-AG-Key */
    bool fail_open;      /* gateway unreachable: decide with the local engine (loud) instead
                          * of denying */
    unsigned timeout_ms; /* per decision */
};

struct proxy_config {
    char *const *argv;        /* downstream argv, NULL-terminated */
    char *const *env;         /* downstream environment, NULL-terminated "K=V" */
    const char *command;      /* the downstream command as given: part of the pin identity */
    struct engine *engine;    /* shared, not owned */
    unsigned relist_interval; /* seconds between background re-listings; 0: never */
    unsigned kill_grace_ms;   /* wait after closing the downstream's stdin before SIGTERM,
                               * and after SIGTERM before SIGKILL */
    const struct proxy_gateway *gateway; /* NULL: decisions in-process by engine */
};

/* Exit statuses of `clampd mcp` (documented in --help and README). */
#define PROXY_EXIT_OK 0                /* the client closed stdin; the downstream ended */
#define PROXY_EXIT_USAGE 1             /* bad flags or configuration */
#define PROXY_EXIT_START_FAILED 2      /* the downstream could not be started */
#define PROXY_EXIT_DOWNSTREAM_EXITED 3 /* the downstream exited while the client was connected */
#define PROXY_EXIT_SIGNAL 4            /* clampd was asked to stop by SIGINT or SIGTERM */

/* Runs one session over fds 0 and 1 until it ends; returns a PROXY_EXIT_* status. */
int proxy_run(const struct proxy_config *cfg);

#endif
