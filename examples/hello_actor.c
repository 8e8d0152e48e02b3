/*
 * hello_actor: the process core in one page.
 *
 * A named "counter" process owns an integer.  Other threads reach it only by
 * messages: casts add to it, a call reads it, a timer it sets for itself
 * doubles it, and a monitor tells main how it exited.
 */
#include <gencache/gencache.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_ADD = 1, TAG_GET = 2, TAG_DOUBLE = 3 };

struct counter {
    actor_t *self;
    long value;
};

static int
counter_init(actor_t *self, void *arg, void **state)
{
    struct counter *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return -ENOMEM;
    c->self = self;
    c->value = *(long *)arg;
    *state = c;
    /* A timer to ourselves: handle_info runs in 50 ms. */
    return actor_send_after(self, 50, TAG_DOUBLE, NULL, 0, NULL);
}

static void
counter_cast(void *state, const actor_msg_view_t *msg)
{
    struct counter *c = state;
    long delta;

    if (msg->tag == TAG_ADD && msg->len == sizeof(delta)) {
        memcpy(&delta, msg->data, sizeof(delta));
        c->value += delta;
    }
}

static int
counter_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    struct counter *c = state;

    if (req->tag != TAG_GET)
        return -EINVAL;
    return actor_reply_set(reply, &c->value, sizeof(c->value));
}

static void
counter_info(void *state, const actor_info_t *info)
{
    struct counter *c = state;

    if (info->kind == ACTOR_INFO_TIMER && info->msg.tag == TAG_DOUBLE)
        c->value *= 2;
}

static void
counter_terminate(void *state, int reason)
{
    struct counter *c = state;

    printf("counter: terminate (%s), final value %ld\n", actor_strerror(reason),
           c->value);
    free(c);
}

static const actor_behaviour_t counter_behaviour = {
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .handle_info = counter_info,
    .terminate = counter_terminate,
};

/* A watcher process: prints the DOWN notice of whatever it monitors. */
static void
watcher_info(void *state, const actor_info_t *info)
{
    (void)state;
    if (info->kind == ACTOR_INFO_DOWN)
        printf("watcher: monitored process exited: %s\n",
               actor_strerror(info->reason));
}

static const actor_behaviour_t watcher_behaviour = { .handle_info = watcher_info };

#define CHECK(expr)                                                          \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        if (rc_ < 0) {                                                       \
            fprintf(stderr, "%s: %s\n", #expr, actor_strerror(rc_));         \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

int
main(void)
{
    actor_opts_t opts = { .name = "counter" };
    actor_t *counter, *found, *watcher;
    long start = 10, delta = 5, value = 0;
    size_t len;
    int reason, i;

    printf("gencache %s\n", gencache_version_string());
    CHECK(actor_start(&counter_behaviour, &start, &opts, &counter));
    CHECK(actor_start(&watcher_behaviour, NULL, NULL, &watcher));
    CHECK(actor_monitor(counter, watcher, NULL));

    /* Anyone can find the process by name. */
    CHECK(actor_whereis("counter", &found));
    for (i = 0; i < 4; i++)
        CHECK(actor_cast(found, TAG_ADD, &delta, sizeof(delta)));
    /* A call is ordered after this thread's casts. */
    CHECK(actor_call(found, TAG_GET, NULL, 0, &value, sizeof(value), &len, 1000));
    printf("after 4 casts of +5: %ld\n", value);

    /* Wait for the timer to double it (polling a call, as a client would). */
    for (i = 0; i < 100 && value != 60; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        CHECK(actor_call(found, TAG_GET, NULL, 0, &value, sizeof(value), &len, 1000));
    }
    printf("after the timer doubled it: %ld\n", value);
    actor_release(found);

    CHECK(actor_stop(counter, ACTOR_SHUTDOWN, 1000));
    CHECK(actor_wait(counter, 1000, &reason));
    printf("a call to the stopped process: %s\n",
           actor_strerror(actor_call(counter, TAG_GET, NULL, 0, NULL, 0, NULL, 100)));
    actor_release(counter);

    /* Give the watcher the DOWN notice, then stop it. */
    {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    CHECK(actor_stop(watcher, ACTOR_SHUTDOWN, 1000));
    actor_release(watcher);
    return value == 60 ? 0 : 1;
}
