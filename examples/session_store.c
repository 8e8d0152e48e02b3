/*
 * session_store: a session-token service built on named caches, the way a
 * Pow-backed Phoenix app uses EtsCache, in C.
 *
 *   - cache "sessions": token -> user id, in two namespaces:
 *       "session"  login sessions with a 300 ms TTL (think 30 minutes),
 *       "reset"    password-reset tokens that expire after 100 ms;
 *   - each request validates its token with a direct, lock-free cache_get
 *     and renews the session with cache_touch (sliding expiry);
 *   - cache "ratelimit": a per-user counter incremented atomically inside the
 *     worker by a user operation (GenServer-style handle_call on the table);
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

/* Rate limiter: increment the caller's counter inside the worker, so two
 * threads can never both read the same old value.  Replies the new count. */
static int
rate_incr(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    uint64_t n = 0;
    size_t len;
    int rc = cache_txn_get(txn, NULL, arg, arg_len, &n, sizeof(n), &len);

    if (rc != 0 && rc != -ENOENT)
        return rc;
    n++;
    rc = cache_txn_put(txn, NULL, arg, arg_len, &n, sizeof(n), CACHE_TTL_DEFAULT);
    if (rc != 0)
        return rc;
    return cache_txn_reply(txn, &n, sizeof(n));
}

static uint64_t
rate_hit(cache_t *rate, const char *user)
{
    uint64_t n = 0;
    size_t len = 0;
    cache_op_t op = { .kind = CACHE_OP_USER, .fn = rate_incr, .arg = user,
                      .arg_len = strlen(user), .buf = &n, .cap = sizeof(n),
                      .out_len = &len };
    int rc = cache_call(rate, &op, 1000);

    if (rc != 0)
        die("rate limiter", rc);
    return n;
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
    sleep_ms(150);
    rc = cache_get(sessions, "reset", "tok-1", 5, buf, sizeof(buf), &len);
    printf("reset token tok-1 after 150 ms: %s\n", rc == -ENOENT ? "expired" : "STILL VALID");

    cache_stats(sessions, &st);
    printf("sessions: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64 " puts, %" PRIu64
           " entries\n", st.hits, st.misses, st.puts, st.entries);

    cache_stop(rate, 1000);
    cache_stop(sessions, 1000);
    cache_release(rate);
    cache_release(sessions);
    return 0;
}
