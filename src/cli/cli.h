/* cli: one cmd_<name>.c per command; main.c dispatches. */
#ifndef CLAMPD_CLI_H
#define CLAMPD_CLI_H

#include <stdbool.h>

int cmd_mcp(int argc, char **argv);
int cmd_tools(int argc, char **argv);
int cmd_rules(int argc, char **argv);

/* Resolves the state directory: dir if given, else $XDG_STATE_HOME/clampd, else
 * ~/.local/state/clampd; creates it (mode 0700) when create is set. Returns a malloc'd
 * path or NULL after printing why. */
char *cli_state_dir(const char *dir, bool create);

/* The cache directory for compiled rules: $XDG_CACHE_HOME/clampd, else ~/.cache/clampd
 * (created 0700). NULL when there is none; the caller frees the result. */
char *cli_cache_dir(void);

#endif
