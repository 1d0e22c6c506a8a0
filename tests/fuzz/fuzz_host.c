/*
 * fuzz_host: the structured SSRF check on hostile bytes. insp_hosts_find() walks any text
 * for URL authorities, UNC names and bare literals; insp_host_classify() reads one host in
 * every IPv4/IPv6/name form. Checks what callers rely on: no read outside the input (ASan),
 * only defined bits in the result, and the same answer twice (no hidden state).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes, so ASan sees any read past the end */
    char *t = malloc(size ? size : 1);
    struct insp_host h;
    unsigned all = INSP_HOSTS_OBFUSCATED | 1u << INSP_HOST_PRIVATE | 1u << INSP_HOST_LINK_LOCAL |
                   1u << INSP_HOST_LOOPBACK | 1u << INSP_HOST_METADATA;

    if (!t)
        return 0;
    memcpy(t, data, size);
    unsigned a = insp_hosts_find(t, size);
    if ((a & ~all) || a != insp_hosts_find(t, size))
        abort();
    if (insp_host_classify(t, size, &h) == 0 &&
        (h.cls > INSP_HOST_METADATA || (h.obfuscated && h.cls == INSP_HOST_PUBLIC)))
        abort();
    free(t);
    return 0;
}
