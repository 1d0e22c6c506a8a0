/*
 * clampd: a security gateway for the Model Context Protocol.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/cli.h"
#include "core/core.h"

static const char usage[] =
    "Usage: clampd <command> [options]\n"
    "\n"
    "A security gateway for the Model Context Protocol (MCP).\n"
    "\n"
    "Commands:\n"
    "  mcp      run as a stdio MCP server in front of a downstream MCP server\n"
    "           (clampd mcp --downstream \"npx -y @modelcontextprotocol/server-filesystem /tmp\")\n"
    "  gateway  serve the same checks over HTTP for many agents and proxies (--policy FILE)\n"
    "  tools    list, approve or revoke pinned tool contract hashes\n"
    "  rules    list the detection rule packs and check their examples\n"
    "  inspect  judge tool descriptions, call arguments or results offline (JSON Lines)\n"
    "  scan     start an MCP server, list its tools and report what the rules find\n"
    "  keys     rotate the keys that sign scope tokens, or print their JWKS\n"
    "  token    mint a scope token, or verify one as a downstream would\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help\n"
    "  --version      print the version\n"
    "\n"
    "Run 'clampd <command> --help' for a command's options.\n";

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fputs("clampd: cannot initialise libsodium\n", stderr);
        return 1;
    }
    if (argc < 2) {
        fputs(usage, stderr);
        return 1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("clampd %s\n", CLAMPD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "mcp") == 0)
        return cmd_mcp(argc - 1, argv + 1);
    if (strcmp(argv[1], "gateway") == 0)
        return cmd_gateway(argc - 1, argv + 1);
    if (strcmp(argv[1], "tools") == 0)
        return cmd_tools(argc - 1, argv + 1);
    if (strcmp(argv[1], "rules") == 0)
        return cmd_rules(argc - 1, argv + 1);
    if (strcmp(argv[1], "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "scan") == 0)
        return cmd_scan(argc - 1, argv + 1);
    if (strcmp(argv[1], "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    fprintf(stderr, "clampd: unknown command '%s'\n\n%s", argv[1], usage);
    return 1;
}
