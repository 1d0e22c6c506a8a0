/*
 * libFuzzer target for clampd_split_words() (src/core/words.c).
 *
 * The command line comes from configuration rather than from a peer, but it becomes the
 * argv clampd executes, so the splitter must never read past the line, leak, or hand
 * back a vector whose count and NULL terminator disagree. Those are checked here;
 * memory errors are ASan's job.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Checks the result contract of one call; abort() makes libFuzzer keep the input. */
static void fw_check(int rc, char **argv, size_t argc, const char *errmsg, size_t line_len)
{
    size_t i;

    if (rc != 0) {
        if (argv || argc || !errmsg)
            abort();
        if (rc != ERR_PARSE && rc != ERR_INVAL && rc != ERR_TOO_BIG)
            abort();
        return;
    }
    if (!argv || argc == 0 || argc > CLAMPD_MAX_ARGV || argv[argc] || errmsg)
        abort();
    for (i = 0; i < argc; i++)
        if (!argv[i] || strlen(argv[i]) > line_len)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    char **argv = NULL;
    char *errmsg = NULL;
    size_t argc = 0;
    int rc;

    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    rc = clampd_split_words(line, &argv, &argc, &errmsg);
    fw_check(rc, argv, argc, errmsg, strlen(line));
    clampd_free_words(argv);
    free(errmsg);
    free(line);
    return 0;
}
