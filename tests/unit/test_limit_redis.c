/* Unit tests for the Redis store of the rate limiter (src/policy/limit_redis.c): the URL
 * grammar, the password's sources, and failing closed (or open) when nothing answers. The
 * script itself runs against a real redis-server in tests/e2e/redis.test.mjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

/* the static parser is reached by including the file (tests/unit convention) */
#include "../../src/policy/limit_redis.c"

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_urls(void **state)
{
    struct pol_redis *r = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(pol_redis_new("redis://cache.internal", NULL, false, &r, &err), 0);
    assert_string_equal(r->host, "cache.internal");
    assert_int_equal(r->port, 6379);
    assert_int_equal(r->db, 0);
    assert_null(r->password);
    pol_redis_free(r);

    assert_int_equal(pol_redis_new("redis://10.0.0.5:7000/3", NULL, false, &r, &err), 0);
    assert_string_equal(r->host, "10.0.0.5");
    assert_int_equal(r->port, 7000);
    assert_int_equal(r->db, 3);
    pol_redis_free(r);

    /* the URL's password wins over the environment's */
    assert_int_equal(pol_redis_new("redis://:pw-url@h:1/0", "pw-env", false, &r, &err), 0);
    assert_string_equal(r->password, "pw-url");
    assert_string_equal(r->host, "h");
    assert_int_equal(r->port, 1);
    pol_redis_free(r);
    assert_int_equal(pol_redis_new("redis://h", "pw-env", false, &r, &err), 0);
    assert_string_equal(r->password, "pw-env");
    pol_redis_free(r);
    assert_int_equal(pol_redis_new("redis://h", "", false, &r, &err), 0);
    assert_null(r->password);
    pol_redis_free(r);

    assert_int_equal(pol_redis_new("unix:/run/redis/redis.sock", NULL, false, &r, &err), 0);
    assert_true(r->unix_socket);
    assert_string_equal(r->host, "/run/redis/redis.sock");
    pol_redis_free(r);
}

static void test_bad_urls(void **state)
{
    static const char *bad[] = {"",
                                "http://h",
                                "redis://",
                                "redis://:6379",
                                "redis://h:0",
                                "redis://h:65536",
                                "redis://h:",
                                "redis://h:12x",
                                "redis://h/x",
                                "redis://h/-1",
                                "redis://user:secret-pw@h",
                                "redis://secret-pw@h",
                                "unix:relative.sock",
                                "unix:"};
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pol_redis *r = NULL;
        char *err = NULL;
        assert_int_equal(pol_redis_new(bad[i], NULL, false, &r, &err), ERR_INVAL);
        assert_null(r);
        assert_non_null(err);
        /* SECURITY: the message never repeats the URL (it may hold a password) */
        assert_null(strstr(err, "secret-pw"));
        free(err);
    }
}

/* A port nothing listens on: every call is refused as unavailable, or passes when open. */
static void test_unavailable(void **state)
{
    struct pol_rate rate = {.calls_per_minute = 60, .burst = 1};
    struct pol_rate none = {0};
    struct pol_redis *r = NULL;
    struct pol_limiter *l;
    int64_t retry = 0;
    const char *which = NULL;
    char *err = NULL;

    (void)state;
    assert_int_equal(pol_redis_new("redis://127.0.0.1:1", NULL, false, &r, &err), 0);
    assert_int_equal(pol_redis_ping(r), ERR_IO);
    pol_limiter_use_redis(r);
    assert_non_null(l = pol_limiter_new());
    pol_limiter_use_redis(NULL);
    assert_false(pol_limiter_take(l, &rate, "a", "t", 10, 0, &retry, &which));
    assert_int_equal(retry, POL_RETRY_UNAVAILABLE);
    assert_non_null(strstr(which, "unavailable"));
    assert_false(pol_limiter_peek(l, &rate, "a", "t", 10, 0, &retry, &which));
    assert_int_equal(retry, POL_RETRY_UNAVAILABLE);
    /* an agent without limits has no bucket to ask for */
    assert_true(pol_limiter_take(l, &none, "b", "t", 10, 0, &retry, &which));
    pol_limiter_free(l);
    pol_redis_free(r);

    assert_int_equal(pol_redis_new("redis://127.0.0.1:1", NULL, true, &r, &err), 0);
    pol_limiter_use_redis(r);
    assert_non_null(l = pol_limiter_new());
    pol_limiter_use_redis(NULL);
    assert_true(pol_limiter_take(l, &rate, "a", "t", 10, 0, &retry, &which));
    pol_limiter_free(l);
    pol_redis_free(r);

    /* limiters made without a store keep their buckets in memory, as before */
    assert_non_null(l = pol_limiter_new());
    assert_true(pol_limiter_take(l, &rate, "a", "t", 10, 0, &retry, &which));
    assert_false(pol_limiter_take(l, &rate, "a", "t", 10, 0, &retry, &which));
    assert_true(retry > 0 && retry <= 1001);
    pol_limiter_free(l);
}

/* The bucket keys are hashes of limit.c's keys: no agent id or tool name in Redis. */
static void test_bucket_key(void **state)
{
    char k[80];

    (void)state;
    bucket_key(k, "c\x1f"
                  "agent-7");
    assert_int_equal(strlen(k), strlen("clampd:rl:") + 64);
    assert_int_equal(strncmp(k, "clampd:rl:", 10), 0);
    assert_null(strstr(k, "agent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_unavailable),
        cmocka_unit_test(test_bucket_key),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
