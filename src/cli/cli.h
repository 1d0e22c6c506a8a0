/* cli: one cmd_<name>.c per command; main.c dispatches. */
#ifndef CLAMPD_CLI_H
#define CLAMPD_CLI_H

#include <stdbool.h>
#include <stddef.h>

struct insp_ruleset;

int cmd_mcp(int argc, char **argv);
int cmd_tools(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_gateway(int argc, char **argv);

/* Resolves the state directory: dir if given, else $XDG_STATE_HOME/clampd, else
 * ~/.local/state/clampd; creates it (mode 0700) when create is set. Returns a malloc'd
 * path or NULL after printing why. */
char *cli_state_dir(const char *dir, bool create);

/* The cache directory for compiled rules: $XDG_CACHE_HOME/clampd, else ~/.cache/clampd
 * (created 0700). NULL when there is none; the caller frees the result. */
char *cli_cache_dir(void);

/* Loads the rule packs of paths (none: $CLAMPD_RULES, else the packs built in), with the
 * compiled databases cached in cli_cache_dir(). On failure prints "clampd CMD: rules: why"
 * and returns a negative error. */
int cli_load_rules(const char *cmd, const char **paths, size_t n_paths,
                   struct insp_ruleset **out);

/* The environment of a downstream clampd starts: ours minus CLAMPD_* (API keys), then add
 * (KEY=VALUE; replacing an inherited KEY). The strings are not copied; free() the array. */
char **cli_child_env(char *const *add, size_t n_add);

#endif
