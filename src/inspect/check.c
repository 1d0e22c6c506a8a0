/*
 * check: structured checks, for what a pattern cannot express (issue 3: "Patterns that
 * Hyperscan cannot express get a structured check in C"). A rule with `check: NAME` is
 * reported only when its patterns matched (the cheap prefilter) and the check, run over
 * the whole text scanned, says yes. One function and one table row per check, as
 * validate.c.
 */
#include "inspect/inspect-int.h"

#include <string.h>

static bool host_metadata(const char *s, size_t n)
{
    return insp_hosts_find(s, n) & 1u << INSP_HOST_METADATA;
}

static bool host_loopback(const char *s, size_t n)
{
    return insp_hosts_find(s, n) & 1u << INSP_HOST_LOOPBACK;
}

static bool host_private(const char *s, size_t n)
{
    return insp_hosts_find(s, n) & (1u << INSP_HOST_PRIVATE | 1u << INSP_HOST_LINK_LOCAL);
}

static bool host_obfuscated(const char *s, size_t n)
{
    return insp_hosts_find(s, n) & INSP_HOSTS_OBFUSCATED;
}

static const struct {
    const char *name;
    bool (*fn)(const char *s, size_t n);
} checks[] = {
    {"host_metadata", host_metadata},
    {"host_loopback", host_loopback},
    {"host_private", host_private},
    {"host_obfuscated", host_obfuscated},
};

int insp__check_index(const char *name)
{
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        if (strcmp(checks[i].name, name) == 0)
            return (int)i + 1;
    return -1;
}

bool insp__check(int check, const char *s, size_t n)
{
    if (check <= 0)
        return true;
    return checks[check - 1].fn(s, n);
}
