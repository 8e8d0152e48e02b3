/*
 * Check suite "mailbox": the lock-free multi-producer, single-consumer queue
 * and its parking word (lib/mailbox.h), tested directly through the internal
 * header, with no process around it.  The test thread is the consumer.
 *
 *   order      FIFO for one producer, across batches; empty takes
 *   producers  N threads x M messages against a live consumer: no loss, no
 *              duplicate, per-producer order (N: 1, 4, max(4, nproc))
 *   close      close returns what was queued, in order; later pushes get
 *              -ESRCH and the message stays the caller's; close while
 *              producers push; take_all after close
 *   limit      depth counting; bounded and unbounded pushes at the limit;
 *              push_wait: -ETIMEDOUT at its deadline, success once the
 *              consumer makes room
 *   park       returns on a push and on a poke from another thread (also
 *              when that thread waited until the consumer was asleep), on
 *              its timeout, at once when something is already there; and
 *              many ping-pong rounds between two threads without a lost
 *              wake-up
 *
 * The tests own their messages (arrays, freed at the end) and end with the
 * mailbox empty and its depth 0.  Time bounds are generous upper bounds
 * only: a lost wake-up shows as a wait that lasts a whole bound (seconds),
 * not as a few milliseconds too many.  Check's fork mode stays on: each test
 * runs in its own child process (CK_FORK=no to debug one in-process).
 */
#include "atomic.h"
#include "mailbox.h"
#include "park.h"
#include "check_util.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TC_TIMEOUT     60          /* seconds, per tcase */
#define WAIT_NS        5000000000  /* bound for anything that must happen "soon" */
#define LOST_NS        2000000000  /* a park this long with a message queued: lost wake-up */
#define MAX_PRODUCERS  16
#define PER_PRODUCER   20000
#define N_FIFO         1000
#define PING_ROUNDS    5000
#define MS             1000000     /* ns */

/* ------------------------------------------------------------------ */
/* Messages and helpers                                                 */

typedef struct tmsg {
    gc_msg_t hdr;          /* first: a gc_msg_t * is a tmsg_t * */
    unsigned producer;
    uint64_t seq;
} tmsg_t;

#define TM(m) ((tmsg_t *)(m))

static void
tmsg_init(tmsg_t *m, unsigned producer, uint64_t seq)
{
    memset(m, 0, sizeof(*m));
    m->hdr.kind = GC_MSG_CAST;
    m->hdr.tag = producer;
    m->producer = producer;
    m->seq = seq;
}

static tmsg_t *
tmsg_array(size_t n, unsigned producer)
{
    tmsg_t *a = calloc(n, sizeof(*a));
    size_t i;

    ck_assert_ptr_nonnull(a);
    for (i = 0; i < n; i++)
        tmsg_init(&a[i], producer, i);
    return a;
}

static uint64_t
depth(gc_mbox_t *mb)
{
    return gc_load_64(&mb->depth);
}

static size_t
list_len(gc_msg_t *m)
{
    size_t n = 0;

    for (; m != NULL; m = m->next)
        n++;
    return n;
}

/* Assert that list is exactly msgs[from..to) in this order. */
static void
assert_list(gc_msg_t *list, tmsg_t *msgs, size_t from, size_t to)
{
    size_t i = from;

    for (; list != NULL; list = list->next, i++) {
        ck_assert_msg(i < to, "more messages than the %zu queued", to - from);
        ck_assert_msg(list == &msgs[i].hdr, "position %zu: seq %llu, expected %zu",
                      i - from, (unsigned long long)TM(list)->seq, i);
    }
    ck_assert_uint_eq(i, to);
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static unsigned
nproc(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (unsigned)n : 1;
}

/*
 * Consumer: take what is queued, parking up to LOST_NS while there is
 * nothing.  Returns NULL if nothing arrived in that time.  Sets *late when a
 * message was there only after a park that lasted the whole bound: the
 * sender pushes at once, so that is a lost wake-up.
 */
static gc_msg_t *
wait_msg(gc_mbox_t *mb, int *late)
{
    int64_t deadline = gc_mono_ns() + LOST_NS;
    gc_msg_t *m;

    while ((m = gc_mbox_take_all(mb)) == NULL) {
        int64_t now = gc_mono_ns();

        if (now >= deadline)
            return NULL;
        gc_mbox_park(mb, deadline - now);
    }
    if (gc_mono_ns() >= deadline)
        *late = 1;
    return m;
}

/* Wait (bounded) until the consumer of mb has announced it is going to
 * sleep, so that what the caller does next exercises the futex wake-up and
 * not only the spin phase.  Returns 1 if it did, 0 after max_ns. */
static int
wait_until_sleeping(gc_mbox_t *mb, int64_t max_ns)
{
    int64_t deadline = gc_mono_ns() + max_ns;

    while (gc_load_32(&mb->sleeping) == 0) {
        if (gc_mono_ns() >= deadline)
            return 0;
        sched_yield();
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* order                                                                */

START_TEST(test_fifo_one_producer)
{
    tmsg_t *msgs = tmsg_array(N_FIFO, 0);
    gc_mbox_t mb;
    gc_msg_t *list;
    size_t i;

    gc_mbox_init(&mb, 0);
    ck_assert_ptr_null(gc_mbox_take_all(&mb));
    for (i = 0; i < N_FIFO; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 0), 0);
    list = gc_mbox_take_all(&mb);
    assert_list(list, msgs, 0, N_FIFO);
    ck_assert_uint_eq(depth(&mb), 0);
    ck_assert_ptr_null(gc_mbox_take_all(&mb));
    free(msgs);
}
END_TEST

START_TEST(test_fifo_across_batches)
{
    tmsg_t *msgs = tmsg_array(40, 0);
    gc_mbox_t mb;

    gc_mbox_init(&mb, 0);
    /* One message, then batches of different sizes, taken in between. */
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[0].hdr, 0), 0);
    assert_list(gc_mbox_take_all(&mb), msgs, 0, 1);
    for (size_t i = 1; i < 10; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 0), 0);
    assert_list(gc_mbox_take_all(&mb), msgs, 1, 10);
    ck_assert_ptr_null(gc_mbox_take_all(&mb));
    for (size_t i = 10; i < 40; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 0), 0);
    assert_list(gc_mbox_take_all(&mb), msgs, 10, 40);
    ck_assert_uint_eq(depth(&mb), 0);
    /* A message taken before may be queued again: the mailbox keeps no
     * reference to what it handed out. */
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[5].hdr, 0), 0);
    assert_list(gc_mbox_take_all(&mb), msgs, 5, 6);
    free(msgs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* producers                                                            */

typedef struct producer {
    gc_mbox_t *mb;
    tmsg_t *msgs;
    int *rc;               /* push result per message */
    unsigned id;
    size_t n;
    atomic_int *go;
} producer_t;

static void *
producer_main(void *arg)
{
    producer_t *p = arg;
    size_t i;

    while (!atomic_load(p->go))    /* start together, for contention */
        sched_yield();
    for (i = 0; i < p->n; i++)
        p->rc[i] = gc_mbox_push(p->mb, &p->msgs[i].hdr, 0);
    return NULL;
}

static void
producers_start(gc_mbox_t *mb, producer_t *pr, pthread_t *th, unsigned np, size_t n,
                atomic_int *go)
{
    unsigned i;

    for (i = 0; i < np; i++) {
        pr[i] = (producer_t){ mb, tmsg_array(n, i), calloc(n, sizeof(int)), i, n, go };
        ck_assert_ptr_nonnull(pr[i].rc);
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer_main, &pr[i]), 0);
    }
    atomic_store(go, 1);
}

/* Check one batch against the per-producer expectations: every message
 * comes from a known producer with the next sequence number it sent. */
static size_t
consume_batch(gc_msg_t *m, uint64_t *expect, unsigned np)
{
    size_t n = 0;

    for (; m != NULL; m = m->next, n++) {
        tmsg_t *t = TM(m);

        ck_assert_msg(t->producer < np, "message from unknown producer %u", t->producer);
        ck_assert_msg(t->seq == expect[t->producer],
                      "producer %u: got seq %llu, expected %llu (lost, duplicated or reordered)",
                      t->producer, (unsigned long long)t->seq,
                      (unsigned long long)expect[t->producer]);
        expect[t->producer]++;
    }
    return n;
}

/* Producer counts by loop index: 1, 4, and max(4, nproc) up to MAX_PRODUCERS. */
static unsigned
producer_count(int i)
{
    unsigned n = nproc();

    if (i == 0)
        return 1;
    if (i == 1)
        return 4;
    n = n < 4 ? 4 : n;
    return n > MAX_PRODUCERS ? MAX_PRODUCERS : n;
}

START_TEST(test_many_producers)
{
    unsigned np = producer_count(_i), i;
    producer_t pr[MAX_PRODUCERS];
    pthread_t th[MAX_PRODUCERS];
    uint64_t expect[MAX_PRODUCERS] = { 0 };
    atomic_int go = 0;
    uint64_t total = 0, want = (uint64_t)np * PER_PRODUCER;
    int64_t deadline;
    gc_mbox_t mb;

    gc_mbox_init(&mb, 0);
    producers_start(&mb, pr, th, np, PER_PRODUCER, &go);
    deadline = gc_mono_ns() + 6 * WAIT_NS;
    /* Consume while they push: take_all races with every producer's CAS. */
    while (total < want) {
        gc_msg_t *m = gc_mbox_take_all(&mb);

        if (m == NULL) {
            ck_assert_msg(gc_mono_ns() < deadline, "only %llu of %llu messages arrived",
                          (unsigned long long)total, (unsigned long long)want);
            gc_mbox_park(&mb, 10 * MS);
            continue;
        }
        total += consume_batch(m, expect, np);
    }
    for (i = 0; i < np; i++)
        pthread_join(th[i], NULL);
    ck_assert_ptr_null(gc_mbox_take_all(&mb));   /* and nothing more */
    ck_assert_uint_eq(depth(&mb), 0);
    for (i = 0; i < np; i++) {
        ck_assert_uint_eq(expect[i], PER_PRODUCER);
        for (size_t k = 0; k < PER_PRODUCER; k++)
            ck_assert_int_eq(pr[i].rc[k], 0);
        free(pr[i].msgs);
        free(pr[i].rc);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* close                                                                */

START_TEST(test_close_returns_queued)
{
    tmsg_t *msgs = tmsg_array(5, 0), late;
    gc_mbox_t mb, other;

    gc_mbox_init(&mb, 0);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 0), 0);
    assert_list(gc_mbox_close(&mb), msgs, 0, 5);
    ck_assert_uint_eq(depth(&mb), 0);

    /* Every later push fails, bounded or not, and counts for nothing. */
    tmsg_init(&late, 7, 99);
    ck_assert_int_eq(gc_mbox_push(&mb, &late.hdr, 0), -ESRCH);
    ck_assert_int_eq(gc_mbox_push(&mb, &late.hdr, 1), -ESRCH);
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &late.hdr, -1), -ESRCH);
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &late.hdr, gc_mono_ns() + WAIT_NS), -ESRCH);
    ck_assert_uint_eq(depth(&mb), 0);
    /* Closing again finds nothing. */
    ck_assert_ptr_null(gc_mbox_close(&mb));

    /* The refused message is still the caller's: untouched, and free to be
     * sent elsewhere. */
    ck_assert_uint_eq(late.hdr.kind, GC_MSG_CAST);
    ck_assert_uint_eq(late.hdr.tag, 7);
    ck_assert_uint_eq(late.seq, 99);
    gc_mbox_init(&other, 0);
    ck_assert_int_eq(gc_mbox_push(&other, &late.hdr, 0), 0);
    ck_assert_ptr_eq(gc_mbox_take_all(&other), &late.hdr);
    free(msgs);
}
END_TEST

START_TEST(test_close_empty)
{
    gc_mbox_t mb;
    tmsg_t m;

    gc_mbox_init(&mb, 4);
    ck_assert_ptr_null(gc_mbox_close(&mb));
    tmsg_init(&m, 0, 0);
    ck_assert_int_eq(gc_mbox_push(&mb, &m.hdr, 1), -ESRCH);
    ck_assert_int_eq(gc_mbox_push(&mb, &m.hdr, 0), -ESRCH);
    ck_assert_uint_eq(depth(&mb), 0);
}
END_TEST

/* take_all after close: the mailbox stays closed and yields nothing. */
START_TEST(test_take_all_after_close)
{
    gc_mbox_t mb;
    tmsg_t m;

    gc_mbox_init(&mb, 0);
    tmsg_init(&m, 0, 0);
    ck_assert_int_eq(gc_mbox_push(&mb, &m.hdr, 0), 0);
    ck_assert_ptr_eq(gc_mbox_close(&mb), &m.hdr);
    ck_assert_ptr_null(gc_mbox_take_all(&mb));
    ck_assert_int_eq(gc_mbox_push(&mb, &m.hdr, 0), -ESRCH);   /* still closed */
    ck_assert_ptr_null(gc_mbox_take_all(&mb));
    ck_assert_uint_eq(depth(&mb), 0);
}
END_TEST

/*
 * Close while producers push: each message is either delivered (push 0,
 * returned once by take_all or close) or refused (push -ESRCH, never
 * delivered); per producer the delivered ones are a prefix, in order, and
 * after the first refusal every push is refused.
 */
START_TEST(test_close_while_pushing)
{
    unsigned np = producer_count(1), i;
    producer_t pr[MAX_PRODUCERS];
    pthread_t th[MAX_PRODUCERS];
    uint64_t expect[MAX_PRODUCERS] = { 0 };
    atomic_int go = 0;
    int late = 0;
    gc_msg_t *m;
    gc_mbox_t mb;

    gc_mbox_init(&mb, 0);
    producers_start(&mb, pr, th, np, PER_PRODUCER, &go);
    /* Take a first batch, then close in the middle of the stream. */
    m = wait_msg(&mb, &late);
    ck_assert_ptr_nonnull(m);
    consume_batch(m, expect, np);
    consume_batch(gc_mbox_close(&mb), expect, np);
    for (i = 0; i < np; i++)
        pthread_join(th[i], NULL);
    ck_assert_uint_eq(depth(&mb), 0);
    ck_assert_ptr_null(gc_mbox_close(&mb));
    for (i = 0; i < np; i++) {
        size_t k;

        for (k = 0; k < expect[i]; k++)
            ck_assert_msg(pr[i].rc[k] == 0, "producer %u: seq %zu delivered, push said %d",
                          i, k, pr[i].rc[k]);
        for (; k < PER_PRODUCER; k++)
            ck_assert_msg(pr[i].rc[k] == -ESRCH,
                          "producer %u: seq %zu not delivered, push said %d", i, k, pr[i].rc[k]);
        free(pr[i].msgs);
        free(pr[i].rc);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* limit                                                                */

START_TEST(test_depth_counts)
{
    tmsg_t *msgs = tmsg_array(8, 0);
    gc_mbox_t mb;

    gc_mbox_init(&mb, 0);
    ck_assert_uint_eq(depth(&mb), 0);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 0), 0);
        ck_assert_uint_eq(depth(&mb), i + 1);
    }
    /* Without a limit, a bounded push is an ordinary one. */
    for (size_t i = 3; i < 8; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 1), 0);
    ck_assert_uint_eq(depth(&mb), 8);
    ck_assert_uint_eq(list_len(gc_mbox_take_all(&mb)), 8);
    ck_assert_uint_eq(depth(&mb), 0);
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[0].hdr, 0), 0);
    ck_assert_uint_eq(depth(&mb), 1);
    ck_assert_uint_eq(list_len(gc_mbox_close(&mb)), 1);
    ck_assert_uint_eq(depth(&mb), 0);
    free(msgs);
}
END_TEST

START_TEST(test_limit_bounded_and_unbounded)
{
    tmsg_t *msgs = tmsg_array(8, 0);
    gc_mbox_t mb;

    gc_mbox_init(&mb, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(gc_mbox_push(&mb, &msgs[i].hdr, 1), 0);
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[4].hdr, 1), -EAGAIN);
    ck_assert_uint_eq(depth(&mb), 4);
    /* An unbounded push passes the limit (replies, exits: must not fail). */
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[4].hdr, 0), 0);
    ck_assert_uint_eq(depth(&mb), 5);
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[5].hdr, 1), -EAGAIN);
    ck_assert_uint_eq(depth(&mb), 5);
    /* The refused message was not queued. */
    assert_list(gc_mbox_take_all(&mb), msgs, 0, 5);
    ck_assert_uint_eq(depth(&mb), 0);
    /* Room again. */
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[5].hdr, 1), 0);
    assert_list(gc_mbox_take_all(&mb), msgs, 5, 6);
    free(msgs);
}
END_TEST

START_TEST(test_push_wait_times_out)
{
    tmsg_t *msgs = tmsg_array(2, 0);
    int64_t deadline, after;
    gc_mbox_t mb;

    gc_mbox_init(&mb, 1);
    /* Room: no wait. */
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &msgs[0].hdr, gc_mono_ns() + WAIT_NS), 0);
    /* Full, deadline already past: at once. */
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &msgs[1].hdr, 0), -ETIMEDOUT);
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &msgs[1].hdr, gc_mono_ns() - 1), -ETIMEDOUT);
    /* Full, deadline ahead: not before it, and not long after it. */
    deadline = gc_mono_ns() + 50 * MS;
    ck_assert_int_eq(gc_mbox_push_wait(&mb, &msgs[1].hdr, deadline), -ETIMEDOUT);
    after = gc_mono_ns();
    ck_assert_msg(after >= deadline, "-ETIMEDOUT %lld ns before the deadline",
                  (long long)(deadline - after));
    ck_assert_msg(after - deadline < WAIT_NS, "-ETIMEDOUT %lld ms after the deadline",
                  (long long)((after - deadline) / MS));
    /* Not queued. */
    ck_assert_uint_eq(depth(&mb), 1);
    assert_list(gc_mbox_take_all(&mb), msgs, 0, 1);
    ck_assert_uint_eq(depth(&mb), 0);
    free(msgs);
}
END_TEST

typedef struct waiter {
    gc_mbox_t *mb;
    gc_msg_t *m;
    int64_t deadline;
    atomic_int rc;         /* INT32_MIN until push_wait returned */
} waiter_t;

static void *
waiter_main(void *arg)
{
    waiter_t *w = arg;

    atomic_store(&w->rc, gc_mbox_push_wait(w->mb, w->m, w->deadline));
    return NULL;
}

/* Loop index 0: a deadline; 1: none (negative). */
START_TEST(test_push_wait_succeeds_after_take)
{
    tmsg_t *msgs = tmsg_array(2, 0);
    waiter_t w;
    pthread_t th;
    gc_mbox_t mb;
    gc_msg_t *m;
    int late = 0;

    gc_mbox_init(&mb, 1);
    ck_assert_int_eq(gc_mbox_push(&mb, &msgs[0].hdr, 1), 0);
    w.mb = &mb;
    w.m = &msgs[1].hdr;
    w.deadline = _i == 0 ? gc_mono_ns() + 3 * WAIT_NS : -1;
    atomic_init(&w.rc, INT32_MIN);
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
    sleep_ms(20);   /* usually finds it waiting; correct either way */
    ck_assert_int_eq(atomic_load(&w.rc), INT32_MIN);   /* full: it cannot be done */
    assert_list(gc_mbox_take_all(&mb), msgs, 0, 1);     /* make room */
    m = wait_msg(&mb, &late);
    ck_assert_msg(m != NULL && !late, "the waiting push did not get the room");
    assert_list(m, msgs, 1, 2);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&w.rc), 0);
    ck_assert_uint_eq(depth(&mb), 0);
    free(msgs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* park                                                                 */

START_TEST(test_park_timeout)
{
    int64_t t0, elapsed;
    gc_mbox_t mb;

    gc_mbox_init(&mb, 0);
    t0 = gc_mono_ns();
    gc_mbox_park(&mb, 20 * MS);
    gc_mbox_park(&mb, 0);
    elapsed = gc_mono_ns() - t0;
    ck_assert_msg(elapsed < WAIT_NS, "park(20 ms) + park(0) took %lld ms",
                  (long long)(elapsed / MS));
    ck_assert_uint_eq(gc_load_32(&mb.sleeping), 0);   /* not left asleep */
}
END_TEST

/* Something already there: park returns without waiting for its timeout
 * (no timeout here: a wrong wait would hang until the tcase's timeout). */
START_TEST(test_park_ready_returns)
{
    gc_mbox_t mb;
    tmsg_t m;

    gc_mbox_init(&mb, 0);
    tmsg_init(&m, 0, 0);
    ck_assert_int_eq(gc_mbox_push(&mb, &m.hdr, 0), 0);
    gc_mbox_park(&mb, -1);
    ck_assert_ptr_eq(gc_mbox_take_all(&mb), &m.hdr);

    /* Pokes without a sleeper accumulate their bits. */
    gc_mbox_poke(&mb, GC_ATTN_EXIT);
    gc_mbox_poke(&mb, GC_ATTN_TICK);
    ck_assert_uint_eq(gc_load_32(&mb.attn), GC_ATTN_EXIT | GC_ATTN_TICK);
    gc_mbox_park(&mb, -1);
    ck_assert_uint_eq(gc_fas_32(&mb.attn, 0), GC_ATTN_EXIT | GC_ATTN_TICK);
    ck_assert_uint_eq(gc_load_32(&mb.sleeping), 0);
}
END_TEST

typedef struct waker {
    gc_mbox_t *mb;
    gc_msg_t *m;           /* push it, or poke `bits` when NULL */
    uint32_t bits;
    atomic_int asleep;     /* 1: the consumer was seen asleep first */
} waker_t;

static void *
waker_main(void *arg)
{
    waker_t *w = arg;

    atomic_store(&w->asleep, wait_until_sleeping(w->mb, WAIT_NS));
    if (w->m != NULL)
        ck_assert_int_eq(gc_mbox_push(w->mb, w->m, 0), 0);
    else
        gc_mbox_poke(w->mb, w->bits);
    return NULL;
}

/* Loop index 0: woken by a push; 1: by a poke. */
START_TEST(test_park_wakes_from_thread)
{
    waker_t w;
    pthread_t th;
    gc_mbox_t mb;
    tmsg_t m;
    int64_t deadline;
    uint32_t attn = 0;
    gc_msg_t *got = NULL;

    gc_mbox_init(&mb, 0);
    tmsg_init(&m, 0, 0);
    w.mb = &mb;
    w.m = _i == 0 ? &m.hdr : NULL;
    w.bits = GC_ATTN_TICK;
    atomic_init(&w.asleep, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, waker_main, &w), 0);
    /* Park until it arrives: spurious returns are allowed, a sleep through
     * the whole bound is not. */
    deadline = gc_mono_ns() + LOST_NS;
    for (;;) {
        int64_t now;

        if (_i == 0 && (got = gc_mbox_take_all(&mb)) != NULL)
            break;
        if (_i == 1 && (attn = gc_fas_32(&mb.attn, 0)) != 0)
            break;
        now = gc_mono_ns();
        ck_assert_msg(now < deadline, "park slept through a %s (lost wake-up)",
                      _i == 0 ? "push" : "poke");
        gc_mbox_park(&mb, deadline - now);
    }
    pthread_join(th, NULL);
    ck_assert_msg(atomic_load(&w.asleep), "the consumer never went to sleep");
    if (_i == 0)
        ck_assert_ptr_eq(got, &m.hdr);
    else
        ck_assert_uint_eq(attn, GC_ATTN_TICK);
    ck_assert_uint_eq(gc_load_32(&mb.sleeping), 0);
    ck_assert_uint_eq(depth(&mb), 0);
}
END_TEST

/*
 * Ping-pong: two threads, each the consumer of its own mailbox, bounce one
 * message PING_ROUNDS times; every wait is park-based.  Each handshake is a
 * chance for the push to race with the other side's decision to sleep; a
 * lost wake-up shows as a wait that ends only at its LOST_NS bound.  Every
 * 8th round the sender first waits until the receiver is asleep, so the
 * futex path is exercised as well as the spin phase.
 */
typedef struct pong {
    gc_mbox_t *mine, *peer;
    int rounds_done;
    int lost;
    int errors;
} pong_t;

static void *
pong_main(void *arg)
{
    pong_t *p = arg;
    int i;

    for (i = 0; i < PING_ROUNDS; i++) {
        gc_msg_t *m = wait_msg(p->mine, &p->lost);

        if (m == NULL || m->next != NULL || TM(m)->seq != (uint64_t)i) {
            p->errors++;
            return NULL;
        }
        TM(m)->seq++;
        if (i % 8 == 7)
            wait_until_sleeping(p->peer, 100 * MS);
        if (gc_mbox_push(p->peer, m, 0) != 0) {
            p->errors++;
            return NULL;
        }
        p->rounds_done++;
    }
    return NULL;
}

START_TEST(test_park_ping_pong)
{
    gc_mbox_t a, b;
    pong_t p = { &b, &a, 0, 0, 0 };
    pthread_t th;
    tmsg_t m;
    int i, lost = 0;

    gc_mbox_init(&a, 0);
    gc_mbox_init(&b, 0);
    tmsg_init(&m, 0, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, pong_main, &p), 0);
    for (i = 0; i < PING_ROUNDS; i++) {
        gc_msg_t *got;

        if (i % 8 == 3)
            wait_until_sleeping(&b, 100 * MS);
        ck_assert_int_eq(gc_mbox_push(&b, &m.hdr, 0), 0);
        got = wait_msg(&a, &lost);
        ck_assert_msg(got == &m.hdr, "round %d: no reply", i);
        ck_assert_msg(!lost, "round %d: lost wake-up (the reply waited %d ms)", i,
                      (int)(LOST_NS / MS));
        ck_assert_uint_eq(m.seq, (uint64_t)i + 1);   /* the peer's increment */
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(p.errors, 0);
    ck_assert_msg(p.lost == 0, "the peer saw a lost wake-up");
    ck_assert_int_eq(p.rounds_done, PING_ROUNDS);
    ck_assert_uint_eq(depth(&a), 0);
    ck_assert_uint_eq(depth(&b), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *
tcase(Suite *s, const char *name)
{
    TCase *tc;

    if (gc_tcase_excluded(name))
        return NULL;
    tc = tcase_create(name);
    tcase_set_timeout(tc, TC_TIMEOUT);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *
mailbox_suite(void)
{
    Suite *s = suite_create("mailbox");
    TCase *tc;

    if ((tc = tcase(s, "order")) != NULL) {
        tcase_add_test(tc, test_fifo_one_producer);
        tcase_add_test(tc, test_fifo_across_batches);
    }
    if ((tc = tcase(s, "producers")) != NULL)
        tcase_add_loop_test(tc, test_many_producers, 0, 3);
    if ((tc = tcase(s, "close")) != NULL) {
        tcase_add_test(tc, test_close_returns_queued);
        tcase_add_test(tc, test_close_empty);
        tcase_add_test(tc, test_take_all_after_close);
        tcase_add_test(tc, test_close_while_pushing);
    }
    if ((tc = tcase(s, "limit")) != NULL) {
        tcase_add_test(tc, test_depth_counts);
        tcase_add_test(tc, test_limit_bounded_and_unbounded);
        tcase_add_test(tc, test_push_wait_times_out);
        tcase_add_loop_test(tc, test_push_wait_succeeds_after_take, 0, 2);
    }
    if ((tc = tcase(s, "park")) != NULL) {
        tcase_add_test(tc, test_park_timeout);
        tcase_add_test(tc, test_park_ready_returns);
        tcase_add_loop_test(tc, test_park_wakes_from_thread, 0, 2);
        tcase_add_test(tc, test_park_ping_pong);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(mailbox_suite());
    int nfailed;

    srunner_run_all(sr, CK_NORMAL);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
