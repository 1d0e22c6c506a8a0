/* state: where clampd keeps pins (and later audit and keys), its rules, and what a
 * downstream it starts inherits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/core.h"
#include "inspect/inspect.h"

/* Creates every missing directory of path with mode 0700. */
static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return -1;
    return 0;
}

char *cli_state_dir(const char *dir, bool create)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];

    if (dir && *dir)
        snprintf(buf, sizeof(buf), "%s", dir);
    else if (xdg && *xdg == '/')
        snprintf(buf, sizeof(buf), "%s/clampd", xdg);
    else if (home && *home)
        snprintf(buf, sizeof(buf), "%s/.local/state/clampd", home);
    else {
        fprintf(stderr, "clampd: no state directory: set --state-dir, XDG_STATE_HOME or HOME\n");
        return NULL;
    }
    if (create && mkdirs(buf)) {
        fprintf(stderr, "clampd: cannot create state directory %s: %s\n", buf, strerror(errno));
        return NULL;
    }
    return strdup(buf);
}

char *cli_cache_dir(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];

    if (xdg && *xdg == '/')
        snprintf(buf, sizeof(buf), "%s/clampd", xdg);
    else if (home && *home)
        snprintf(buf, sizeof(buf), "%s/.cache/clampd", home);
    else
        return NULL;
    return mkdirs(buf) ? NULL : strdup(buf); /* no cache is slower, not wrong */
}

int cli_load_rules(const char *cmd, const char **paths, size_t n_paths, struct insp_ruleset **out)
{
    char *cache = cli_cache_dir(), *err = NULL;
    const char *env = getenv("CLAMPD_RULES");
    int rc;

    if (!n_paths && env && *env) {
        paths = &env;
        n_paths = 1;
    }
    rc = insp_ruleset_load_cached(n_paths ? paths : NULL, n_paths, cache, out, &err);
    if (rc)
        fprintf(stderr, "clampd %s: rules: %s\n", cmd, err ? err : "cannot load");
    free(err);
    free(cache);
    return rc;
}

extern char **environ;

char **cli_child_env(char *const *add, size_t n_add)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    env = calloc(n + n_add + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        bool replaced = false;
        if (strncmp(environ[i], "CLAMPD_", 7) == 0)
            continue; /* SECURITY: clampd's API keys never reach the downstream */
        for (size_t j = 0; eq && j < n_add; j++)
            if (strncmp(add[j], environ[i], (size_t)(eq - environ[i]) + 1) == 0)
                replaced = true;
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < n_add; j++)
        env[k++] = add[j];
    return env;
}
