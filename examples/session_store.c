/*
 * session_store: a session-token service built on named caches, the way a
 * Pow-backed Phoenix app uses EtsCache, in C.
 *
 *   - cache "sessions": token -> user id, in two namespaces:
 *       "session"  login sessions with a 300 ms TTL (think 30 minutes),
 *       "reset"    password-reset tokens that expire after 100 ms;
 *   - each request validates its token with a direct, lock-free cache_get
 *     and renews the session with cache_touch (sliding expiry);
 *   - cache "ratelimit": a per-user counter incremented atomically with
 *     cache_incr (a decimal integer, as Redis's INCRBY keeps it);
 *   - a reset token is redeemed once with cache_take (get and delete in one
 *     step: of two concurrent redeemers, one gets it);
 *   - logout deletes the session; cache_all lists a user's live sessions.
 *
 * Several client threads share the caches by name: none of them holds a
 * lock, and every read returns either a live value or -ENOENT.
 */
#include <gencache/gencache.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENTS 4
#define REQUESTS 2000
#define RATE_LIMIT 1500

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "session_store: %s: %s\n", what, cache_strerror(rc));
    exit(1);
}

/* Rate limiter: cache_incr adds one to the caller's counter in a single
 * request (two threads never both read the same old value), creating it
 * with the cache's default TTL (the window) on the first hit of a window;
 * later hits keep that TTL.  Returns the new count. */
static uint64_t
rate_hit(cache_t *rate, const char *user)
{
    int64_t n = 0;
    int rc = cache_incr(rate, NULL, user, strlen(user), 1, CACHE_TTL_DEFAULT, &n);

    if (rc != 0)
        die("rate limiter", rc);
    return (uint64_t)n;
}

static void
login(cache_t *sessions, const char *token, const char *user)
{
    int rc = cache_put(sessions, "session", token, strlen(token), user, strlen(user),
                       CACHE_TTL_DEFAULT);

    if (rc != 0)
        die("login", rc);
}

struct client {
    int id;
    unsigned long served, limited;
};

static void *
client_main(void *arg)
{
    struct client *cl = arg;
    cache_t *sessions, *rate;
    char token[32], user[32], buf[64];
    size_t len;
    int i, rc;

    /* Clients find the caches by name, as separate modules of a service
     * would. */
    if ((rc = cache_lookup("sessions", &sessions)) != 0 ||
        (rc = cache_lookup("ratelimit", &rate)) != 0)
        die("lookup", rc);
    snprintf(token, sizeof(token), "tok-%d", cl->id);
    snprintf(user, sizeof(user), "user-%d", cl->id);
    login(sessions, token, user);

    for (i = 0; i < REQUESTS; i++) {
        rc = cache_get(sessions, "session", token, strlen(token), buf, sizeof(buf), &len);
        if (rc == -ENOENT) {
            login(sessions, token, user);   /* expired: log in again */
            continue;
        }
        if (rc != 0)
            die("validate", rc);
        if (len != strlen(user) || memcmp(buf, user, len) != 0) {
            fprintf(stderr, "session_store: wrong session value\n");
            exit(1);
        }
        if (rate_hit(rate, user) > RATE_LIMIT) {
            cl->limited++;
            continue;
        }
        if (i % 64 == 0)
            (void)cache_touch(sessions, "session", token, strlen(token));
        cl->served++;
    }
    cache_release(rate);
    cache_release(sessions);
    return NULL;
}

int
main(void)
{
    cache_opts_t sopts = { .name = "sessions", .default_ns = "session",
                           .default_ttl_ms = 300, .keep_data = 1 };
    cache_opts_t ropts = { .name = "ratelimit", .default_ttl_ms = 60000 };
    cache_t *sessions, *rate;
    pthread_t th[CLIENTS];
    struct client cl[CLIENTS];
    cache_record_t *recs;
    cache_stats_t st;
    char buf[64];
    size_t n, len, i;
    int rc;

    if ((rc = cache_start(&sopts, &sessions)) != 0 || (rc = cache_start(&ropts, &rate)) != 0)
        die("start", rc);

    for (i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){ .id = (int)i };
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    for (i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        printf("client %zu: %lu requests served, %lu rate-limited\n", i, cl[i].served,
               cl[i].limited);
    }

    /* A second login for user-0 from another device, then list them. */
    login(sessions, "tok-0-phone", "user-0");
    rc = cache_all(sessions, "session", "tok-0*", &recs, &n, 1000);
    if (rc != 0)
        die("all", rc);
    printf("live sessions matching tok-0*: %zu\n", n);
    for (i = 0; i < n; i++)
        printf("  %.*s -> %.*s (ttl %" PRId64 " ms)\n", (int)recs[i].key_len,
               (const char *)recs[i].key, (int)recs[i].value_len,
               (const char *)recs[i].value, recs[i].ttl_ms);
    cache_records_free(recs);

    /* Logout deletes; the same token in the "reset" namespace is a different
     * entry with its own, shorter TTL. */
    cache_put(sessions, "reset", "tok-1", 5, "user-1", 6, 100);
    cache_delete(sessions, "session", "tok-1", 5);
    rc = cache_get(sessions, "session", "tok-1", 5, buf, sizeof(buf), &len);
    printf("after logout, session tok-1: %s\n", rc == -ENOENT ? "gone" : "STILL THERE");
    rc = cache_get(sessions, "reset", "tok-1", 5, buf, sizeof(buf), &len);
    printf("reset token tok-1: %s\n", rc == 0 ? "valid" : "missing");
    /* Redeem it: taken once, the second try finds nothing. */
    rc = cache_take(sessions, "reset", "tok-1", 5, buf, sizeof(buf), &len);
    printf("redeem reset token tok-1: %s (user %.*s)\n", rc == 0 ? "ok" : "FAILED",
           rc == 0 ? (int)len : 0, buf);
    rc = cache_take(sessions, "reset", "tok-1", 5, buf, sizeof(buf), &len);
    printf("redeem it again: %s\n", rc == -ENOENT ? "already used" : "REDEEMED TWICE");
    cache_put(sessions, "reset", "tok-2", 5, "user-2", 6, 100);
    sleep_ms(150);
    rc = cache_take(sessions, "reset", "tok-2", 5, buf, sizeof(buf), &len);
    printf("reset token tok-2 after 150 ms: %s\n", rc == -ENOENT ? "expired" : "STILL VALID");

    cache_stats(sessions, &st);
    printf("sessions: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " puts, %" PRIu64
           " entries\n", st.hits, st.misses, st.puts, st.entries);

    cache_stop(rate, 1000);
    cache_stop(sessions, 1000);
    cache_release(rate);
    cache_release(sessions);
    return 0;
}
