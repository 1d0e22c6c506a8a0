/* state: where clampd keeps pins (and later audit and keys). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/core.h"

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
