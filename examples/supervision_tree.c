/*
 * supervision_tree: caches under a supervisor survive their workers' crashes.
 *
 *   app (one_for_one, at most 10 restarts in 1 s)
 *   |-- "sessions"   cache with keep_data: its table outlives a worker crash
 *   `-- "counters"   cache without keep_data: restarts empty
 *
 * Client threads keep reading and writing through stable cache handles while
 * main kills the "sessions" worker again and again (ACTOR_KILLED, as a
 * crash would).  Every call returns a result or a clear error within its
 * timeout, direct reads keep answering during restarts, and no write that
 * was acknowledged is lost.
 */
#include <gencache/gencache.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENTS 3
#define KILLS 30

static atomic_int stop_clients;
static atomic_long restarts_seen;

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* Supervisor reports: count restarts, print the first few. */
static void
log_report(void *ctx, const sup_report_t *r)
{
    char line[256];

    (void)ctx;
    if (r->kind == SUP_REPORT_CHILD_RESTARTING &&
        atomic_fetch_add(&restarts_seen, 1) >= 3)
        return;
    if (r->kind == SUP_REPORT_CHILD_EXITED || r->kind == SUP_REPORT_CHILD_STARTED)
        if (atomic_load(&restarts_seen) > 3)
            return;
    if (sup_report_format(r, line, sizeof(line)) >= 0)
        printf("  [sup] %s\n", line);
}

struct client {
    cache_t *c;
    int id;
    long acked, errors, reads;
};

/* Each client writes its own keys and checks every acknowledged one. */
static void *
client_main(void *arg)
{
    struct client *cl = arg;
    char key[32], buf[32];
    long i;
    size_t len;

    for (i = 0; !atomic_load(&stop_clients); i++) {
        int rc;

        snprintf(key, sizeof(key), "c%d-k%ld", cl->id, i % 500);
        rc = cache_put(cl->c, NULL, key, strlen(key), &i, sizeof(i), CACHE_TTL_NONE);
        if (rc == 0) {
            long v;

            cl->acked++;
            /* An acknowledged write is visible to a direct read at once,
             * even while the worker is being restarted. */
            rc = cache_get(cl->c, NULL, key, strlen(key), &v, sizeof(v), &len);
            if (rc != 0 || v != i) {
                fprintf(stderr, "client %d: acknowledged %s lost (%s)\n", cl->id, key,
                        cache_strerror(rc));
                exit(1);
            }
            cl->reads++;
        } else if (rc == -ETIMEDOUT || rc == -ESRCH) {
            cl->errors++;   /* a clear error, within the timeout */
        } else {
            fprintf(stderr, "client %d: unexpected %s\n", cl->id, cache_strerror(rc));
            exit(1);
        }
        (void)buf;
    }
    return NULL;
}

int
main(void)
{
    cache_opts_t sessions_opts = { .name = "sessions", .keep_data = 1 };
    cache_opts_t counters_opts = { .name = "counters" };
    cache_t *sessions, *counters;
    sup_flags_t flags = { SUP_ONE_FOR_ONE, 10, 1000 };
    sup_opts_t sopts = { .name = "app", .log = log_report };
    sup_child_spec_t children[2];
    struct client cl[CLIENTS];
    pthread_t th[CLIENTS];
    cache_stats_t st;
    actor_t *app;
    char failed[SUP_ID_MAX + 1];
    long acked = 0, errors = 0;
    int i, rc;
    size_t len;
    long v;

    /* Caches are created first (stable handles), their workers are
     * started and restarted by the supervisor through cache_child_start. */
    if ((rc = cache_new(&sessions_opts, &sessions)) != 0 ||
        (rc = cache_new(&counters_opts, &counters)) != 0) {
        fprintf(stderr, "cache_new: %s\n", cache_strerror(rc));
        return 1;
    }
    children[0] = (sup_child_spec_t){ .id = "sessions", .start = cache_child_start,
                                      .arg = sessions, .restart = SUP_PERMANENT };
    children[1] = (sup_child_spec_t){ .id = "counters", .start = cache_child_start,
                                      .arg = counters, .restart = SUP_PERMANENT };
    printf("starting the tree\n");
    rc = sup_start(&flags, children, 2, &sopts, &app, failed);
    if (rc != 0) {
        fprintf(stderr, "sup_start: child %s: %s\n", failed, sup_strerror(rc));
        return 1;
    }

    cache_put(counters, NULL, "visits", 6, &(long){ 41 }, sizeof(long), CACHE_TTL_NONE);
    for (i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){ .c = sessions, .id = i };
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }

    printf("killing the sessions worker %d times under load\n", KILLS);
    for (i = 0; i < KILLS; i++) {
        actor_t *w;
        int spins;

        sleep_ms(10);
        /* Wait for the current incarnation (the supervisor restarts it). */
        for (spins = 0; (w = cache_worker(sessions)) == NULL && spins < 1000; spins++)
            sleep_ms(1);
        if (w == NULL) {
            fprintf(stderr, "no worker came back\n");
            return 1;
        }
        actor_exit(w, ACTOR_KILLED);
        actor_release(w);
        /* Keep within the intensity: 10 restarts per second. */
        sleep_ms(100);
    }
    atomic_store(&stop_clients, 1);
    for (i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        acked += cl[i].acked;
        errors += cl[i].errors;
    }
    sleep_ms(20);
    cache_stats(sessions, &st);
    printf("%ld writes acknowledged and read back, %ld clear errors during restarts, "
           "none lost\n", acked, errors);
    printf("sessions: %" PRIu64 " entries kept across %" PRIu64 " restarts\n", st.entries,
           st.restarts);

    /* A crash of the counters cache loses its data: it has no keep_data. */
    {
        actor_t *w = cache_worker(counters);
        if (w != NULL) {
            actor_exit(w, ACTOR_KILLED);
            actor_wait(w, 1000, NULL);
            actor_release(w);
        }
        sleep_ms(50);
        rc = cache_get(counters, NULL, "visits", 6, &v, sizeof(v), &len);
        printf("counters after a crash without keep_data: visits %s\n",
               rc == -ENOENT ? "gone (restarted empty)" : "still there");
    }

    printf("shutting the tree down\n");
    actor_stop(app, ACTOR_SHUTDOWN, ACTOR_INFINITY);
    actor_release(app);
    cache_stop(sessions, 1000);
    cache_stop(counters, 1000);
    cache_release(sessions);
    cache_release(counters);
    return 0;
}
