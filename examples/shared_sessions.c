/*
 * shared_sessions: one session store seen by two "machines" through Redis.
 *
 *   shared_sessions [PORT]      (a redis-server on 127.0.0.1:PORT, default 6379)
 *
 * Two caches with the same Redis options stand for the same service running
 * on two machines.  A user logs in on machine A; machine B validates the
 * token with a direct cache_get (answered from B's near-cache after the
 * first read); the user logs out on A, and B stops accepting the token:
 * at once for a synchronous read, and within the invalidation delay for a
 * direct read.  The calling code is the same as for a local cache: only
 * cache_opts_t.redis differs.
 */
#include <gencache/gencache.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
die(const char *what, int rc)
{
    fprintf(stderr, "shared_sessions: %s: %s\n", what, cache_strerror(rc));
    exit(1);
}

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
main(int argc, char **argv)
{
    cache_redis_opts_t ro = { .port = argc > 1 ? atoi(argv[1]) : 6379,
                              .prefix = "example:sessions:" };
    cache_opts_t o = { .default_ns = "session", .default_ttl_ms = 60000, .redis = &ro };
    const char *token = "tok-8f3a", *user = "alice";
    cache_t *a, *b;
    cache_stats_t st;
    char buf[64];
    size_t n;
    int64_t t0;
    int rc, i;

    if ((rc = cache_start(&o, &a)) == -ENOTSUP) {
        printf("shared_sessions: %s (configured with -DGC_WITH_REDIS=OFF)\n",
               cache_strerror(rc));
        return 0;
    }
    if (rc != 0 || (rc = cache_start(&o, &b)) != 0)
        die("cache_start", rc);

    /* Login on machine A: a synchronous put, in Redis when it returns. */
    if ((rc = cache_put(a, NULL, token, strlen(token), user, strlen(user),
                        CACHE_TTL_DEFAULT)) != 0)
        die("login on A (is redis-server running on that port?)", rc);
    printf("A: login %s -> %s\n", token, user);

    /* Requests on machine B: the first read asks Redis, later ones are
     * lock-free near-cache hits. */
    for (i = 0; i < 1000; i++) {
        if ((rc = cache_get(b, NULL, token, strlen(token), buf, sizeof(buf), &n)) != 0)
            die("validate on B", rc);
    }
    cache_stats(b, &st);
    printf("B: 1000 validations of %s -> %.*s: %" PRIu64 " went to Redis, the rest to the near-cache\n",
           token, (int)n, buf, st.remote_reads);

    /* Logout on machine A. */
    if ((rc = cache_delete(a, NULL, token, strlen(token))) != 0)
        die("logout on A", rc);
    t0 = now_us();

    /* A synchronous read on B sees the logout at once. */
    {
        cache_op_t op = { .kind = CACHE_OP_GET, .key = token, .key_len = strlen(token),
                          .buf = buf, .cap = sizeof(buf), .out_len = &n };

        rc = cache_call(b, &op, 1000);
        printf("B: sync read after logout: %s\n", rc == -ENOENT ? "-ENOENT (logged out)" :
               cache_strerror(rc));
    }
    /* A direct read on B sees it once the invalidation has arrived.  Here
     * the sync read above has already dropped B's near copy, so this read
     * misses it and asks Redis; without that read it would be answered from
     * the near-cache until the invalidation (normally well under 1 ms). */
    while ((rc = cache_get(b, NULL, token, strlen(token), buf, sizeof(buf), &n)) == 0 &&
           now_us() - t0 < 1000000)
        ;
    printf("B: direct read after logout: %s after %" PRId64 " us\n",
           rc == -ENOENT ? "-ENOENT" : cache_strerror(rc), now_us() - t0);

    cache_stats(b, &st);
    printf("B: stats: hits %" PRIu64 ", remote reads %" PRIu64 ", invalidations %" PRIu64
           ", connected %" PRIu64 "\n", st.hits, st.remote_reads, st.invalidations, st.connected);
    cache_stop(a, 1000);
    cache_stop(b, 1000);
    cache_release(a);
    cache_release(b);
    return rc == -ENOENT ? 0 : 1;
}
