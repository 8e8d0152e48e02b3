/*
 * Check suite for the process core (actor.h): start/init results, call and
 * reply, call timeouts and late replies, dead and dying processes, many
 * producers into one mailbox, parking, timers on a manual clock, names,
 * monitors, exit reasons, back-pressure, and bad input.  Every test stops
 * what it started and checks that it is gone.
 */
#include <gencache/gencache.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T_ECHO = 1, T_BLOCK, T_COUNT, T_SELF, T_EXIT_SELF, T_TIMER, T_CANCEL, T_GET_FIRED,
       T_SEQ, T_GET_SEQ };

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
stop_and_release(actor_t *a)
{
    int reason;

    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, 5000), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert(!actor_is_alive(a));
    actor_release(a);
}

/* ------------------------------------------------------------------ */
/* A test behaviour with a bit of everything                            */

#define MAX_FIRED 32
#define PRODUCERS 4
#define PER_PRODUCER 20000

typedef struct tstate {
    actor_t *self;
    atomic_int *gate;          /* T_BLOCK waits until *gate != 0 */
    atomic_int *terminated;    /* set to reason + 1000 by terminate */
    int fired[MAX_FIRED];      /* timer tags in firing order */
    int nfired;
    uint64_t timer_ref;
    uint64_t next_seq[PRODUCERS];
    int seq_errors;
    int self_call_rc;
    int down_reason;
    uint64_t down_ref;
    int downs;
} tstate_t;

typedef struct targ {
    atomic_int *gate;
    atomic_int *terminated;
    int init_rc;
} targ_t;

static int
t_init(actor_t *self, void *arg, void **state)
{
    targ_t *ta = arg;
    tstate_t *s;

    if (ta != NULL && ta->init_rc != 0)
        return ta->init_rc;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->self = self;
    if (ta != NULL) {
        s->gate = ta->gate;
        s->terminated = ta->terminated;
    }
    *state = s;
    return 0;
}

static void
wait_gate(tstate_t *s)
{
    while (s->gate != NULL && atomic_load(s->gate) == 0)
        sleep_ms(1);
}

static int
t_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    tstate_t *s = state;
    void *buf;

    switch (req->tag) {
    case T_ECHO:
        return actor_reply_set(reply, req->data, req->len);
    case T_BLOCK:
        wait_gate(s);
        return actor_reply_set(reply, "late", 4);
    case T_GET_FIRED:
        return actor_reply_set(reply, s->fired, sizeof(int) * (size_t)s->nfired);
    case T_GET_SEQ: {
        int errors = s->seq_errors;
        uint64_t counts[PRODUCERS + 1];

        memcpy(counts, s->next_seq, sizeof(s->next_seq));
        counts[PRODUCERS] = (uint64_t)errors;
        return actor_reply_set(reply, counts, sizeof(counts));
    }
    case T_CANCEL: {
        uint64_t ref;

        memcpy(&ref, req->data, sizeof(ref));
        return actor_cancel_timer(s->self, ref);
    }
    default:
        buf = actor_reply_buf(reply, 3);
        if (buf == NULL)
            return -ENOMEM;
        memcpy(buf, "buf", 3);
        return 42;
    }
}

static void
t_cast(void *state, const actor_msg_view_t *msg)
{
    tstate_t *s = state;

    switch (msg->tag) {
    case T_BLOCK:
        wait_gate(s);
        break;
    case T_SELF:
        s->self_call_rc = actor_call(s->self, T_ECHO, "x", 1, NULL, 0, NULL, 100);
        break;
    case T_EXIT_SELF:
        actor_exit(s->self, 42);
        break;
    case T_SEQ: {
        uint64_t v[2];

        memcpy(v, msg->data, sizeof(v));
        if (v[0] >= PRODUCERS || v[1] != s->next_seq[v[0]])
            s->seq_errors++;
        else
            s->next_seq[v[0]]++;
        break;
    }
    default:
        break;
    }
}

static void
t_info(void *state, const actor_info_t *info)
{
    tstate_t *s = state;

    if (info->kind == ACTOR_INFO_TIMER && s->nfired < MAX_FIRED) {
        s->fired[s->nfired++] = (int)info->msg.tag;
        /* A timer can cancel another one from inside the process. */
        if (info->msg.tag == 99 && s->timer_ref != 0)
            (void)actor_cancel_timer(s->self, s->timer_ref);
    } else if (info->kind == ACTOR_INFO_DOWN) {
        s->down_reason = info->reason;
        s->down_ref = info->ref;
        s->downs++;
    }
}

static void
t_terminate(void *state, int reason)
{
    tstate_t *s = state;

    if (s->terminated != NULL)
        atomic_store(s->terminated, reason + 1000);
    free(s);
}

static const actor_behaviour_t tb = {
    .init = t_init,
    .handle_call = t_call,
    .handle_cast = t_cast,
    .handle_info = t_info,
    .terminate = t_terminate,
};

static actor_t *
start(targ_t *ta, const actor_opts_t *o)
{
    actor_t *a = NULL;

    ck_assert_int_eq(actor_start(&tb, ta, o, &a), 0);
    ck_assert_ptr_nonnull(a);
    return a;
}

/* ------------------------------------------------------------------ */
/* Start, init results, exit reasons                                    */

START_TEST(test_start_stop_terminate)
{
    atomic_int term = 0;
    targ_t ta = { .terminated = &term };
    actor_t *a = start(&ta, NULL);
    int reason = -1;

    ck_assert(actor_is_alive(a));
    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, 5000), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_SHUTDOWN);
    ck_assert_int_eq(atomic_load(&term), ACTOR_SHUTDOWN + 1000);
    ck_assert(!actor_is_alive(a));
    /* A second stop of an exited process reports its reason. */
    ck_assert_int_eq(actor_stop(a, ACTOR_NORMAL, 100), 0);
    actor_release(a);
}
END_TEST

START_TEST(test_killed_runs_terminate)
{
    atomic_int term = 0;
    targ_t ta = { .terminated = &term };
    actor_t *a = start(&ta, NULL);
    int reason;

    ck_assert_int_eq(actor_exit(a, ACTOR_KILLED), 0);
    ck_assert_int_eq(actor_wait(a, 5000, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_KILLED);
    /* Unlike OTP, a kill still runs terminate: C must free the state. */
    ck_assert_int_eq(atomic_load(&term), ACTOR_KILLED + 1000);
    ck_assert(actor_reason_is_abnormal(ACTOR_KILLED));
    ck_assert(!actor_reason_is_abnormal(ACTOR_SHUTDOWN));
    ck_assert(!actor_reason_is_abnormal(ACTOR_NORMAL));
    ck_assert(actor_reason_is_abnormal(-ENOMEM));
    actor_release(a);
}
END_TEST

START_TEST(test_init_ignore_and_error)
{
    targ_t ign = { .init_rc = ACTOR_IGNORE }, err = { .init_rc = -ENOMEM },
           odd = { .init_rc = 7 };
    actor_opts_t o = { .name = "init-test" };
    actor_t *a = (actor_t *)1, *found;

    ck_assert_int_eq(actor_start(&tb, &ign, &o, &a), 0);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(actor_start(&tb, &err, &o, &a), -ENOMEM);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(actor_start(&tb, &odd, &o, &a), -EPROTO);
    /* A failed start released the name before returning. */
    ck_assert_int_eq(actor_whereis("init-test", &found), -ENOENT);
    a = start(NULL, &o);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Calls                                                                */

START_TEST(test_call_reply)
{
    actor_t *a = start(NULL, NULL);
    char buf[16];
    size_t len = 0;

    ck_assert_int_eq(actor_call(a, T_ECHO, "hello", 5, buf, sizeof(buf), &len, 5000), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(buf, "hello", 5) == 0);
    /* actor_reply_buf and the handler's status. */
    ck_assert_int_eq(actor_call(a, 77, NULL, 0, buf, sizeof(buf), &len, 5000), 42);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(buf, "buf", 3) == 0);
    /* Truncation: the first cap bytes, the full length reported. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(actor_call(a, T_ECHO, "abcdefgh", 8, buf, 3, &len, 5000), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert(memcmp(buf, "abc", 3) == 0 && buf[3] == 0);
    /* Zero-length request and no reply buffer. */
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 0, NULL, 0, &len, 5000), 0);
    ck_assert_uint_eq(len, 0);
    stop_and_release(a);
}
END_TEST

START_TEST(test_call_without_handler)
{
    static const actor_behaviour_t empty = { 0 };
    actor_t *a = NULL;

    ck_assert_int_eq(actor_start(&empty, NULL, NULL, &a), 0);
    ck_assert_int_eq(actor_call(a, 1, NULL, 0, NULL, 0, NULL, 5000), -ENOTSUP);
    ck_assert_int_eq(actor_cast(a, 1, "x", 1), 0);
    stop_and_release(a);
}
END_TEST

/* Calls from a helper frame that returns right after its call times out,
 * so a late reply written into it would be a use after return (ASan). */
static int __attribute__((noinline))
call_in_frame(actor_t *a, int timeout_ms)
{
    char frame_buf[64];
    size_t len = 0;

    memset(frame_buf, 'x', sizeof(frame_buf));
    return actor_call(a, T_BLOCK, "q", 1, frame_buf, sizeof(frame_buf), &len, timeout_ms);
}

START_TEST(test_call_timeout_late_reply)
{
    atomic_int gate = 0;
    targ_t ta = { .gate = &gate };
    actor_t *a = start(&ta, NULL);
    char buf[16];
    size_t len;
    int i;

    for (i = 0; i < 3; i++)
        ck_assert_int_eq(call_in_frame(a, 50), -ETIMEDOUT);
    /* Overwrite the dead frames, then let the blocked handlers reply. */
    call_in_frame(a, 0);
    atomic_store(&gate, 1);
    /* The next calls get their own replies, never a late one. */
    for (i = 0; i < 5; i++) {
        char req[8];

        snprintf(req, sizeof(req), "r%d", i);
        ck_assert_int_eq(actor_call(a, T_ECHO, req, strlen(req), buf, sizeof(buf), &len,
                                    5000), 0);
        ck_assert_uint_eq(len, strlen(req));
        ck_assert(memcmp(buf, req, len) == 0);
    }
    stop_and_release(a);
}
END_TEST

START_TEST(test_call_dead_and_dying)
{
    atomic_int gate = 0;
    targ_t ta = { .gate = &gate };
    actor_t *a = start(&ta, NULL);
    int reason;

    /* A blocked handler; a queued call; an exit request: the queued call
     * must come back -ESRCH when the process exits, not hang. */
    ck_assert_int_eq(actor_cast(a, T_BLOCK, NULL, 0), 0);
    ck_assert_int_eq(actor_exit(a, ACTOR_SHUTDOWN), 0);
    atomic_store(&gate, 1);
    ck_assert_int_eq(actor_wait(a, 5000, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_SHUTDOWN);
    /* Dead: every operation says -ESRCH at once. */
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", 1, NULL, 0, NULL, ACTOR_INFINITY), -ESRCH);
    ck_assert_int_eq(actor_cast(a, T_ECHO, "x", 1), -ESRCH);
    ck_assert_int_eq(actor_send_after(a, 10, 1, NULL, 0, NULL), -ESRCH);
    ck_assert_int_eq(actor_exit(a, ACTOR_NORMAL), -ESRCH);
    ck_assert_int_eq(actor_register(a, "dead-one"), -ESRCH);
    actor_release(a);
}
END_TEST

typedef struct caller_arg {
    actor_t *a;
    int rc;
} caller_arg_t;

static void *
blocked_caller(void *p)
{
    caller_arg_t *ca = p;

    ca->rc = actor_call(ca->a, T_ECHO, "y", 1, NULL, 0, NULL, ACTOR_INFINITY);
    return NULL;
}

START_TEST(test_queued_call_gets_esrch)
{
    atomic_int gate = 0;
    targ_t ta = { .gate = &gate };
    actor_t *a = start(&ta, NULL);
    caller_arg_t ca = { a, 1 };
    pthread_t th;

    ck_assert_int_eq(actor_cast(a, T_BLOCK, NULL, 0), 0);
    pthread_create(&th, NULL, blocked_caller, &ca);
    sleep_ms(50);  /* the call is queued behind the blocked cast */
    ck_assert_int_eq(actor_exit(a, ACTOR_SHUTDOWN), 0);
    atomic_store(&gate, 1);
    pthread_join(th, NULL);
    /* Exit requests take effect at the next message boundary, before the
     * queued call: it is answered -ESRCH, even with an infinite timeout. */
    ck_assert_int_eq(ca.rc, -ESRCH);
    ck_assert_int_eq(actor_wait(a, 5000, NULL), 0);
    actor_release(a);
}
END_TEST

START_TEST(test_self_call_and_self_exit)
{
    actor_t *a = start(NULL, NULL);
    int reason;

    ck_assert_int_eq(actor_cast(a, T_SELF, NULL, 0), 0);
    ck_assert_int_eq(actor_cast(a, T_EXIT_SELF, NULL, 0), 0);
    ck_assert_int_eq(actor_wait(a, 5000, &reason), 0);
    ck_assert_int_eq(reason, 42);
    ck_assert(actor_reason_is_abnormal(reason));
    actor_release(a);
}
END_TEST

static int
deadlock_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    tstate_t *s = state;
    int rc = actor_call(s->self, T_ECHO, NULL, 0, NULL, 0, NULL, 100);
    int rc2 = actor_wait(s->self, 0, NULL);

    (void)req;
    return actor_reply_set(reply, (int[2]){ rc, rc2 }, 2 * sizeof(int));
}

START_TEST(test_self_call_is_edeadlk)
{
    static const actor_behaviour_t b = { .init = t_init, .handle_call = deadlock_call,
                                         .terminate = t_terminate };
    actor_t *a = NULL;
    int rcs[2];
    size_t len;

    ck_assert_int_eq(actor_start(&b, NULL, NULL, &a), 0);
    ck_assert_int_eq(actor_call(a, 0, NULL, 0, rcs, sizeof(rcs), &len, 5000), 0);
    ck_assert_int_eq(rcs[0], -EDEADLK);
    ck_assert_int_eq(rcs[1], -EDEADLK);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Many producers                                                       */

typedef struct producer {
    actor_t *a;
    uint64_t id;
} producer_t;

static void *
producer_main(void *p)
{
    producer_t *pr = p;
    uint64_t i;

    for (i = 0; i < PER_PRODUCER; i++) {
        uint64_t v[2] = { pr->id, i };

        while (actor_cast(pr->a, T_SEQ, v, sizeof(v)) == -EAGAIN)
            ;
    }
    return NULL;
}

START_TEST(test_many_producers_fifo)
{
    actor_t *a = start(NULL, NULL);
    producer_t pr[PRODUCERS];
    pthread_t th[PRODUCERS];
    uint64_t counts[PRODUCERS + 1];
    size_t len;
    int i;

    for (i = 0; i < PRODUCERS; i++) {
        pr[i] = (producer_t){ a, (uint64_t)i };
        pthread_create(&th[i], NULL, producer_main, &pr[i]);
    }
    for (i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    /* This call is ordered after the main thread's messages only, so wait
     * for the depth to drain first. */
    for (i = 0; i < 5000 && actor_mailbox_depth(a) > 0; i++)
        sleep_ms(1);
    ck_assert_int_eq(actor_call(a, T_GET_SEQ, NULL, 0, counts, sizeof(counts), &len, 5000),
                     0);
    for (i = 0; i < PRODUCERS; i++)
        ck_assert_uint_eq(counts[i], PER_PRODUCER);   /* no loss, no duplicate */
    ck_assert_uint_eq(counts[PRODUCERS], 0);          /* per-producer FIFO */
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parking                                                              */

static double
cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_idle_parks_and_wakes)
{
    actor_t *a = start(NULL, NULL);
    double c0, used;
    char buf[4];
    size_t len;

    ck_assert_int_eq(actor_call(a, T_ECHO, "a", 1, buf, sizeof(buf), &len, 5000), 0);
    sleep_ms(20);  /* past the spin phase */
    c0 = cpu_seconds();
    sleep_ms(300);
    used = cpu_seconds() - c0;
    /* An idle process sleeps on a futex: well under 10% of 300 ms even on a
     * loaded machine (a spinning one would use ~300 ms). */
    ck_assert_msg(used < 0.03, "idle process used %.3f s of CPU in 0.3 s", used);
    /* A cast wakes it, and a call is answered. */
    ck_assert_int_eq(actor_cast(a, T_ECHO, "b", 1), 0);
    ck_assert_int_eq(actor_call(a, T_ECHO, "c", 1, buf, sizeof(buf), &len, 5000), 0);
    ck_assert(buf[0] == 'c');
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Timers on a manual clock                                             */

static int
fired(actor_t *a, int *out, int max)
{
    size_t len = 0;

    ck_assert_int_eq(actor_call(a, T_GET_FIRED, NULL, 0, out, sizeof(int) * (size_t)max, &len,
                                5000), 0);
    return (int)(len / sizeof(int));
}

/* Poll until n timers fired (the process fires them after being woken). */
static int
wait_fired(actor_t *a, int n, int *out)
{
    int i, got = 0;

    for (i = 0; i < 500 && (got = fired(a, out, MAX_FIRED)) < n; i++)
        sleep_ms(2);
    return got;
}

START_TEST(test_timers_order_and_cancel)
{
    actor_clock_t *clk;
    actor_opts_t o = { 0 };
    actor_t *a;
    int out[MAX_FIRED];
    uint64_t r1, rc_ref;

    ck_assert_int_eq(actor_clock_manual_new(1000, &clk), 0);
    o.clock = clk;
    a = start(NULL, &o);
    ck_assert_int_eq(actor_send_after(a, 30, 3, NULL, 0, NULL), 0);
    ck_assert_int_eq(actor_send_after(a, 10, 1, "d", 1, &r1), 0);
    ck_assert_int_eq(actor_send_after(a, 20, 21, NULL, 0, NULL), 0);
    ck_assert_int_eq(actor_send_after(a, 20, 22, NULL, 0, NULL), 0);
    ck_assert_int_eq(actor_send_after(a, 25, 9, NULL, 0, &rc_ref), 0);
    ck_assert(r1 != 0 && rc_ref != 0 && r1 != rc_ref);

    /* Nothing fires before its deadline. */
    ck_assert_int_eq(actor_clock_advance(clk, 9), 0);
    sleep_ms(20);
    ck_assert_int_eq(fired(a, out, MAX_FIRED), 0);
    ck_assert_int_eq(actor_clock_advance(clk, 1), 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], 1);
    /* Cancel before firing; a second cancel and a cancel after firing say
     * -ENOENT. */
    ck_assert_int_eq(actor_cancel_timer(a, rc_ref), 0);
    ck_assert_int_eq(actor_cancel_timer(a, rc_ref), -ENOENT);
    ck_assert_int_eq(actor_cancel_timer(a, r1), -ENOENT);
    ck_assert_int_eq(actor_clock_advance(clk, 20), 0);
    ck_assert_int_eq(wait_fired(a, 4, out), 4);
    /* Same deadline: set order.  The cancelled 9 never fired. */
    ck_assert_int_eq(out[1], 21);
    ck_assert_int_eq(out[2], 22);
    ck_assert_int_eq(out[3], 3);
    sleep_ms(10);
    ck_assert_int_eq(fired(a, out, MAX_FIRED), 4);
    stop_and_release(a);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

START_TEST(test_timer_cancel_from_callback)
{
    actor_clock_t *clk;
    actor_opts_t o = { 0 };
    actor_t *a;
    int out[MAX_FIRED];
    uint64_t ref;
    int rc;
    size_t len;

    ck_assert_int_eq(actor_clock_manual_new(0, &clk), 0);
    o.clock = clk;
    a = start(NULL, &o);
    ck_assert_int_eq(actor_send_after(a, 50, 5, NULL, 0, &ref), 0);
    /* Cancel from inside the process (handle_call runs actor_cancel_timer). */
    ck_assert_int_eq(actor_call(a, T_CANCEL, &ref, sizeof(ref), NULL, 0, &len, 5000), 0);
    ck_assert_int_eq(actor_call(a, T_CANCEL, &ref, sizeof(ref), NULL, 0, &len, 5000),
                     -ENOENT);
    ck_assert_int_eq(actor_clock_advance(clk, 100), 0);
    sleep_ms(20);
    rc = fired(a, out, MAX_FIRED);
    ck_assert_int_eq(rc, 0);
    /* Timers of a process are dropped when it exits. */
    ck_assert_int_eq(actor_send_after(a, 1000, 6, NULL, 0, &ref), 0);
    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, 5000), 0);
    ck_assert_int_eq(actor_cancel_timer(a, ref), -ESRCH);
    actor_release(a);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

START_TEST(test_timer_monotonic_clock)
{
    actor_t *a = start(NULL, NULL);
    int out[MAX_FIRED];

    ck_assert_int_eq(actor_send_after(a, 30, 7, NULL, 0, NULL), 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], 7);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Names                                                                */

START_TEST(test_names)
{
    actor_opts_t o = { .name = "registry-test" };
    actor_t *a = start(NULL, &o), *b, *found;
    char name[ACTOR_NAME_MAX + 1];
    int i;

    ck_assert_int_eq(actor_whereis("registry-test", &found), 0);
    ck_assert_ptr_eq(found, a);
    actor_release(found);
    ck_assert_int_eq(actor_name(a, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "registry-test");
    ck_assert_int_eq(actor_name(a, name, 4), -ERANGE);
    /* Taken names. */
    ck_assert_int_eq(actor_start(&tb, NULL, &o, &b), -EEXIST);
    ck_assert_ptr_null(b);
    b = start(NULL, NULL);
    ck_assert_int_eq(actor_register(b, "registry-test"), -EEXIST);
    ck_assert_int_eq(actor_register(b, "second-name"), 0);
    ck_assert_int_eq(actor_register(b, "third-name"), -EEXIST);  /* one name each */
    ck_assert_int_eq(actor_unregister("second-name"), 0);
    ck_assert_int_eq(actor_unregister("second-name"), -ENOENT);
    ck_assert_int_eq(actor_name(b, name, sizeof(name)), -ENOENT);
    /* Released at exit: another process can take it at once. */
    stop_and_release(a);
    ck_assert_int_eq(actor_whereis("registry-test", &found), -ENOENT);
    ck_assert_int_eq(actor_register(b, "registry-test"), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(actor_whereis("registry-test", &found), 0);
        ck_assert_ptr_eq(found, b);
        actor_release(found);
    }
    stop_and_release(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Monitors and actor_wait                                              */

typedef struct down_probe {
    int reason;
    uint64_t ref;
    int downs;
} down_probe_t;

static int
down_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    tstate_t *s = state;
    down_probe_t d = { s->down_reason, s->down_ref, s->downs };

    (void)req;
    return actor_reply_set(reply, &d, sizeof(d));
}

static const actor_behaviour_t watcher_b = { .init = t_init, .handle_call = down_call,
                                             .handle_info = t_info,
                                             .terminate = t_terminate };

static down_probe_t
read_down(actor_t *w, int want_downs)
{
    down_probe_t d = { 0 };
    size_t len;
    int i;

    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(actor_call(w, 0, NULL, 0, &d, sizeof(d), &len, 5000), 0);
        if (d.downs >= want_downs)
            break;
        sleep_ms(2);
    }
    return d;
}

START_TEST(test_monitors)
{
    static const int reasons[] = { ACTOR_NORMAL, ACTOR_SHUTDOWN, ACTOR_KILLED, 42, -ENOMEM };
    actor_t *w = NULL;
    size_t i;

    ck_assert_int_eq(actor_start(&watcher_b, NULL, NULL, &w), 0);
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        actor_t *t = start(NULL, NULL);
        uint64_t ref = 0;
        down_probe_t d;

        ck_assert_int_eq(actor_monitor(t, w, &ref), 0);
        ck_assert(ref != 0);
        ck_assert_int_eq(actor_exit(t, reasons[i]), 0);
        d = read_down(w, (int)i + 1);
        ck_assert_int_eq(d.downs, (int)i + 1);
        ck_assert_int_eq(d.reason, reasons[i]);
        ck_assert(d.ref == ref);
        actor_release(t);
    }
    stop_and_release(w);
}
END_TEST

START_TEST(test_monitor_dead_and_demonitor)
{
    actor_t *w = NULL, *t = start(NULL, NULL), *t2 = start(NULL, NULL);
    uint64_t ref = 0, ref2 = 0;
    down_probe_t d;

    ck_assert_int_eq(actor_start(&watcher_b, NULL, NULL, &w), 0);
    /* Demonitor: no DOWN for it. */
    ck_assert_int_eq(actor_monitor(t2, w, &ref2), 0);
    ck_assert_int_eq(actor_demonitor(t2, ref2), 0);
    ck_assert_int_eq(actor_demonitor(t2, ref2), -ENOENT);
    stop_and_release(t2);
    /* Monitoring a dead process sends DOWN at once, with its reason. */
    ck_assert_int_eq(actor_stop(t, 77, 5000), 0);
    ck_assert_int_eq(actor_monitor(t, w, &ref), 0);
    d = read_down(w, 1);
    ck_assert_int_eq(d.downs, 1);
    ck_assert_int_eq(d.reason, 77);
    ck_assert(d.ref == ref && ref != ref2);
    sleep_ms(20);
    d = read_down(w, 1);
    ck_assert_int_eq(d.downs, 1);   /* the demonitored one never came */
    actor_release(t);
    stop_and_release(w);
}
END_TEST

START_TEST(test_wait_timeout)
{
    actor_t *a = start(NULL, NULL);
    int reason = 123;

    ck_assert_int_eq(actor_wait(a, 30, &reason), -ETIMEDOUT);
    ck_assert_int_eq(reason, 123);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Back-pressure                                                        */

START_TEST(test_mailbox_limit)
{
    atomic_int gate = 0;
    targ_t ta = { .gate = &gate };
    actor_opts_t o = { .mailbox_limit = 4 };
    actor_t *a = start(&ta, &o);
    int i, again = 0, ok = 0;
    struct timespec t0, t1;
    long ms;

    ck_assert_int_eq(actor_cast(a, T_BLOCK, NULL, 0), 0);
    sleep_ms(20);  /* the worker is now blocked in the handler */
    for (i = 0; i < 10; i++) {
        int rc = actor_cast(a, T_ECHO, "x", 1);

        ck_assert(rc == 0 || rc == -EAGAIN);
        ok += rc == 0;
        again += rc == -EAGAIN;
    }
    ck_assert_int_ge(again, 1);
    ck_assert_int_le(ok, 4);
    /* A call to the full mailbox waits for room within its timeout. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(actor_call(a, T_ECHO, "y", 1, NULL, 0, NULL, 80), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_int_ge(ms, 70);
    ck_assert_int_lt(ms, 2000);
    atomic_store(&gate, 1);
    ck_assert_int_eq(actor_call(a, T_ECHO, "z", 1, NULL, 0, NULL, 5000), 0);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad input                                                            */

START_TEST(test_bad_input)
{
    actor_t *a = start(NULL, NULL), *out = (actor_t *)1;
    char longname[ACTOR_NAME_MAX + 2];
    actor_opts_t o = { .name = "" };
    actor_clock_t *clk;
    int e;

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(actor_start(NULL, NULL, NULL, &out), -EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(actor_start(&tb, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(actor_start(&tb, NULL, &o, &out), -EINVAL);
    o.name = longname;
    ck_assert_int_eq(actor_start(&tb, NULL, &o, &out), -EINVAL);
    ck_assert_int_eq(actor_call(NULL, 0, NULL, 0, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, 0, NULL, 5, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, 0, NULL, 0, NULL, 5, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, 0, "x", ACTOR_MSG_MAX + 1, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_cast(NULL, 0, NULL, 0), -EINVAL);
    ck_assert_int_eq(actor_cast(a, 0, NULL, 3), -EINVAL);
    ck_assert_int_eq(actor_cast(a, 0, "x", ACTOR_MSG_MAX + 1), -EINVAL);
    ck_assert_int_eq(actor_send_after(NULL, 1, 0, NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(actor_send_after(a, 1, 0, NULL, 9, NULL), -EINVAL);
    ck_assert_int_eq(actor_cancel_timer(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_cancel_timer(a, 999999), -ENOENT);
    ck_assert_int_eq(actor_exit(NULL, 0), -EINVAL);
    ck_assert_int_eq(actor_wait(NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(actor_stop(NULL, 0, 0), -EINVAL);
    ck_assert_int_eq(actor_monitor(NULL, a, NULL), -EINVAL);
    ck_assert_int_eq(actor_monitor(a, NULL, NULL), -EINVAL);
    ck_assert_int_eq(actor_demonitor(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_register(NULL, "x"), -EINVAL);
    ck_assert_int_eq(actor_register(a, NULL), -EINVAL);
    ck_assert_int_eq(actor_register(a, ""), -EINVAL);
    ck_assert_int_eq(actor_register(a, longname), -EINVAL);
    ck_assert_int_eq(actor_unregister(NULL), -EINVAL);
    ck_assert_int_eq(actor_whereis(NULL, &out), -EINVAL);
    ck_assert_int_eq(actor_whereis("x", NULL), -EINVAL);
    ck_assert_int_eq(actor_name(NULL, longname, 4), -EINVAL);
    ck_assert_int_eq(actor_name(a, NULL, 4), -EINVAL);
    ck_assert_int_eq(actor_reply_set(NULL, "x", 1), -EINVAL);
    ck_assert_ptr_null(actor_reply_buf(NULL, 1));
    ck_assert_int_eq(actor_clock_manual_new(0, NULL), -EINVAL);
    ck_assert_int_eq(actor_clock_advance(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_clock_free(NULL), -EINVAL);
    ck_assert_ptr_null(actor_retain(NULL));
    actor_release(NULL);
    ck_assert(!actor_is_alive(NULL));
    ck_assert_uint_eq(actor_mailbox_depth(NULL), 0);
    ck_assert_ptr_null(actor_self());
    /* A clock in use cannot be freed. */
    ck_assert_int_eq(actor_clock_manual_new(0, &clk), 0);
    o.name = NULL;
    o.clock = clk;
    ck_assert_int_eq(actor_start(&tb, NULL, &o, &out), 0);
    ck_assert_int_eq(actor_clock_free(clk), -EBUSY);
    stop_and_release(out);
    ck_assert_int_eq(actor_clock_free(clk), 0);
    for (e = -200; e < 200; e++)
        ck_assert_ptr_nonnull(actor_strerror(e));
    ck_assert_ptr_nonnull(actor_strerror(-2147483647 - 1));
    ck_assert_str_eq(gencache_version_string(), "0.1.0");
    stop_and_release(a);
}
END_TEST

static Suite *
actor_suite(void)
{
    Suite *s = suite_create("actor");
    TCase *life = tcase_create("lifecycle"), *call = tcase_create("call"),
          *mbox = tcase_create("mailbox"), *tm = tcase_create("timers"),
          *reg = tcase_create("names-monitors"), *bad = tcase_create("bad-input");

    tcase_set_timeout(life, 30);
    tcase_add_test(life, test_start_stop_terminate);
    tcase_add_test(life, test_killed_runs_terminate);
    tcase_add_test(life, test_init_ignore_and_error);
    tcase_add_test(life, test_self_call_and_self_exit);
    tcase_add_test(life, test_wait_timeout);
    suite_add_tcase(s, life);

    tcase_set_timeout(call, 30);
    tcase_add_test(call, test_call_reply);
    tcase_add_test(call, test_call_without_handler);
    tcase_add_test(call, test_call_timeout_late_reply);
    tcase_add_test(call, test_call_dead_and_dying);
    tcase_add_test(call, test_queued_call_gets_esrch);
    tcase_add_test(call, test_self_call_is_edeadlk);
    suite_add_tcase(s, call);

    tcase_set_timeout(mbox, 60);
    tcase_add_test(mbox, test_many_producers_fifo);
    tcase_add_test(mbox, test_idle_parks_and_wakes);
    tcase_add_test(mbox, test_mailbox_limit);
    suite_add_tcase(s, mbox);

    tcase_set_timeout(tm, 30);
    tcase_add_test(tm, test_timers_order_and_cancel);
    tcase_add_test(tm, test_timer_cancel_from_callback);
    tcase_add_test(tm, test_timer_monotonic_clock);
    suite_add_tcase(s, tm);

    tcase_set_timeout(reg, 30);
    tcase_add_test(reg, test_names);
    tcase_add_test(reg, test_monitors);
    tcase_add_test(reg, test_monitor_dead_and_demonitor);
    suite_add_tcase(s, reg);

    tcase_set_timeout(bad, 30);
    tcase_add_test(bad, test_bad_input);
    suite_add_tcase(s, bad);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(actor_suite());
    int nf;

    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
