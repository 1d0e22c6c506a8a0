/* policy internals shared between limit.c and limit_redis.c; not for other modules. */
#ifndef CLAMPD_POLICY_INT_H
#define CLAMPD_POLICY_INT_H

#include "policy/policy.h"

#define POL__KEY_MAX (2 * POL_NAME_MAX + 1100)

/* One token bucket a call is charged against: limit.c's key ("c|t|b\x1f" agent [\x1f tool]),
 * rate per minute, size, what the call costs, and the limit's name for the refusal. */
struct pol__bucket {
    char key[POL__KEY_MAX];
    double rate, burst, cost;
    const char *which;
};

/* Charges (commit) or checks the n buckets (at most 3) in order, in Redis, atomically;
 * the first that cannot pay stops the call. Returns true when every bucket paid; false with
 * *retry_ms and *which as pol_limiter_take() says, or with *retry_ms POL_RETRY_UNAVAILABLE
 * when Redis did not answer (unless the store fails open: then true). */
bool pol__redis_charge(struct pol_redis *r, const struct pol__bucket *b, size_t n, bool commit,
                       int64_t *retry_ms, const char **which);

#endif
