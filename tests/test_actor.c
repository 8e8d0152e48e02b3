/*
 * Check suite "actor": the process core, tested against the contract written
 * in <gencache/actor.h> and nothing else.
 *
 *   lifecycle  start/stop, init results, terminate and its reason, exit
 *              requests (precedence, from a callback), actor_wait
 *   call       replies, truncation, status, -ENOTSUP, timeouts and late
 *              replies, dead and dying processes, -EDEADLK, no allocation
 *   mailbox    many producers (FIFO, no loss), parking, mailbox_limit
 *   timers     manual clock: order, deadlines, cancel (outside and inside)
 *   names      register, whereis, duplicates, release at exit, unregister
 *   monitors   DOWN notices and reasons, dead targets, demonitor
 *   handles    every operation on an exited handle
 *   bad-input  -EINVAL everywhere, actor_strerror
 *
 * Every test stops what it started, drops its references and checks that
 * its processes are gone (libuv's MAKE_VALGRIND_HAPPY).  Check's fork mode
 * stays on: each test runs in its own child process.
 */
#include <gencache/gencache.h>
#include <gencache/actor.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TC_TIMEOUT   20     /* seconds, per tcase */
#define WAIT_MS      5000   /* bound for anything that must happen "soon" */
#define SETTLE_MS    20     /* time given to something that must NOT happen */
#define MAX_FIRED    32
#define PRODUCERS    4
#define PER_PRODUCER 20000

/* Call and cast tags understood by the test behaviour. */
enum {
    T_ECHO = 1,        /* call: reply = request (actor_reply_set) */
    T_BLOCK,           /* call/cast: wait until probe->gate != 0 */
    T_COUNT,           /* cast: counted++ */
    T_GET_COUNT,       /* call: reply = counted (int) */
    T_BUF,             /* call: reply "buf" via actor_reply_buf, status 42 */
    T_BIG,             /* call: reply of N bytes (N = request size_t) */
    T_REPLY_TWICE,     /* call: actor_reply_set twice, the last wins */
    T_BAD_REPLY,       /* call: a good reply, then bad reply_set/reply_buf */
    T_GET_BAD,         /* call: results of T_BAD_REPLY's bad calls */
    T_SELF_CALL,       /* cast: actor_call/actor_wait on actor_self() */
    T_GET_SELF,        /* call: what T_SELF_CALL and init recorded */
    T_EXIT_SELF,       /* cast: actor_exit(self, 42), then block, then mark */
    T_GET_FIRED,       /* call: timer tags in firing order (int[]) */
    T_GET_FIRED_REFS,  /* call: timer refs in firing order (uint64_t[]) */
    T_GET_TDATA,       /* call: the payload of the last timer with data */
    T_CANCEL,          /* call: actor_cancel_timer(self, ref) as status */
    T_SET_CANCEL_REF,  /* cast: the timer that timer T_CANCELLER cancels */
    T_GET_CANCEL_RC,   /* call: what that in-callback cancel returned */
    T_GET_SEQ,         /* call: per-producer counts and sequence errors */
    T_GET_DOWN,        /* call: the DOWN notices seen */
    T_CANCELLER = 99,  /* timer tag: cancels cancel_ref from handle_info */
    T_PROD0 = 1000     /* cast tags T_PROD0 + id: producer messages */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Poll *v until it reaches want or ms pass; returns the last value seen. */
static int
wait_atomic(atomic_int *v, int want, int ms)
{
    int64_t end = now_ms() + ms;

    while (atomic_load(v) < want && now_ms() < end)
        sleep_ms(1);
    return atomic_load(v);
}

/* ------------------------------------------------------------------ */
/* The test behaviour                                                   */

/* Shared between a test and its process; lives in the test's frame (the
 * test stops the process before returning). */
typedef struct probe {
    atomic_int gate;        /* T_BLOCK waits while 0 */
    atomic_int entered;     /* T_BLOCK handlers started */
    atomic_int left;        /* T_BLOCK handlers finished */
    atomic_int inits;       /* init invocations */
    atomic_int terms;       /* terminate invocations */
    atomic_int term_reason; /* terminate's reason */
    atomic_int calls;       /* handle_call invocations */
    atomic_int casts;       /* handle_cast invocations */
    atomic_int infos;       /* handle_info invocations */
    atomic_int exit_rc;     /* T_EXIT_SELF: actor_exit's result */
    atomic_int alive_in_cb; /* T_EXIT_SELF: actor_is_alive(self) after it */
    atomic_int after_exit;  /* T_EXIT_SELF: the callback ran to its end */
} probe_t;

typedef struct targ {
    probe_t *p;
    int init_rc;            /* non-zero: init returns it at once */
} targ_t;

typedef struct down_seen {
    int downs;
    int reason;
    uint64_t ref;
    actor_t *who;
} down_seen_t;

typedef struct self_seen {
    actor_t *in_init;
    actor_t *in_cast;
    int call_rc;
    int wait_rc;
    int ran;
} self_seen_t;

typedef struct seq_seen {
    uint64_t count[PRODUCERS];
    uint64_t errors;
} seq_seen_t;

typedef struct tstate {
    actor_t *self;
    probe_t *p;
    self_seen_t selfs;
    int counted;
    int fired[MAX_FIRED];
    uint64_t fired_ref[MAX_FIRED];
    int nfired;
    char tdata[16];
    size_t tdata_len;
    uint64_t cancel_ref;
    int cancel_rc;
    uint64_t seq_next[PRODUCERS];
    seq_seen_t seq;
    int bad[4];
    down_seen_t down;
} tstate_t;

static int
t_init(actor_t *self, void *arg, void **state)
{
    targ_t *ta = arg;
    probe_t *p = ta != NULL ? ta->p : NULL;
    tstate_t *s;

    if (p != NULL)
        atomic_fetch_add(&p->inits, 1);
    if (ta != NULL && ta->init_rc != 0)
        return ta->init_rc;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->self = self;
    s->p = p;
    s->selfs.in_init = actor_self();
    s->cancel_rc = 1;   /* "not run" */
    *state = s;
    return 0;
}

static void
block_on_gate(tstate_t *s)
{
    if (s->p == NULL)
        return;
    atomic_fetch_add(&s->p->entered, 1);
    while (atomic_load(&s->p->gate) == 0)
        sleep_ms(1);
    atomic_fetch_add(&s->p->left, 1);
}

static int
t_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    tstate_t *s = state;

    if (s->p != NULL)
        atomic_fetch_add(&s->p->calls, 1);
    switch (req->tag) {
    case T_ECHO:
        return actor_reply_set(reply, req->data, req->len);
    case T_BLOCK:
        block_on_gate(s);
        return actor_reply_set(reply, "late", 4);
    case T_GET_COUNT:
        return actor_reply_set(reply, &s->counted, sizeof(s->counted));
    case T_BUF: {
        char *buf = actor_reply_buf(reply, 3);

        if (buf == NULL)
            return -ENOMEM;
        memcpy(buf, "buf", 3);
        return 42;
    }
    case T_BIG: {
        size_t n, i;
        unsigned char *buf;

        if (req->len != sizeof(n))
            return -EPROTO;
        memcpy(&n, req->data, sizeof(n));
        buf = actor_reply_buf(reply, n);
        if (buf == NULL)
            return -ENOMEM;
        for (i = 0; i < n; i++)
            buf[i] = (unsigned char)(i * 7 + 1);
        return 0;
    }
    case T_REPLY_TWICE: {
        int rc = actor_reply_set(reply, "first reply", 11);

        if (rc != 0)
            return rc;
        return actor_reply_set(reply, "second", 6);
    }
    case T_BAD_REPLY: {
        int rc = actor_reply_set(reply, "ok", 2);

        s->bad[0] = actor_reply_set(reply, NULL, 5);
        s->bad[1] = actor_reply_set(reply, "x", ACTOR_MSG_MAX + 1);
        s->bad[2] = actor_reply_buf(reply, ACTOR_MSG_MAX + 1) == NULL;
        s->bad[3] = actor_reply_set(NULL, "x", 1);
        return rc;
    }
    case T_GET_BAD:
        return actor_reply_set(reply, s->bad, sizeof(s->bad));
    case T_GET_SELF:
        return actor_reply_set(reply, &s->selfs, sizeof(s->selfs));
    case T_GET_FIRED:
        return actor_reply_set(reply, s->fired, sizeof(int) * (size_t)s->nfired);
    case T_GET_FIRED_REFS:
        return actor_reply_set(reply, s->fired_ref, sizeof(uint64_t) * (size_t)s->nfired);
    case T_GET_TDATA:
        return actor_reply_set(reply, s->tdata, s->tdata_len);
    case T_CANCEL: {
        uint64_t ref;

        if (req->len != sizeof(ref))
            return -EPROTO;
        memcpy(&ref, req->data, sizeof(ref));
        return actor_cancel_timer(s->self, ref);
    }
    case T_GET_CANCEL_RC:
        return actor_reply_set(reply, &s->cancel_rc, sizeof(s->cancel_rc));
    case T_GET_SEQ:
        return actor_reply_set(reply, &s->seq, sizeof(s->seq));
    case T_GET_DOWN:
        return actor_reply_set(reply, &s->down, sizeof(s->down));
    default:
        return -ENOSYS;
    }
}

static void
t_cast(void *state, const actor_msg_view_t *msg)
{
    tstate_t *s = state;

    if (s->p != NULL)
        atomic_fetch_add(&s->p->casts, 1);
    if (msg->tag >= T_PROD0 && msg->tag < T_PROD0 + PRODUCERS) {
        unsigned id = msg->tag - T_PROD0;
        uint64_t seq;

        if (msg->len != sizeof(seq) || msg->data == NULL) {
            s->seq.errors++;
            return;
        }
        memcpy(&seq, msg->data, sizeof(seq));
        if (seq != s->seq_next[id])
            s->seq.errors++;   /* out of order, lost or duplicated */
        s->seq_next[id] = seq + 1;
        s->seq.count[id]++;
        return;
    }
    switch (msg->tag) {
    case T_BLOCK:
        block_on_gate(s);
        break;
    case T_COUNT:
        s->counted++;
        break;
    case T_SELF_CALL:
        s->selfs.in_cast = actor_self();
        s->selfs.call_rc = actor_call(actor_self(), T_ECHO, "x", 1, NULL, 0, NULL, 1000);
        s->selfs.wait_rc = actor_wait(actor_self(), 0, NULL);
        s->selfs.ran = 1;
        break;
    case T_EXIT_SELF:
        if (s->p == NULL)
            break;
        atomic_store(&s->p->exit_rc, actor_exit(actor_self(), 42));
        atomic_store(&s->p->alive_in_cb, actor_is_alive(s->self));
        block_on_gate(s);
        atomic_store(&s->p->after_exit, 1);
        break;
    case T_SET_CANCEL_REF:
        if (msg->len == sizeof(s->cancel_ref))
            memcpy(&s->cancel_ref, msg->data, sizeof(s->cancel_ref));
        break;
    default:
        break;
    }
}

static void
t_info(void *state, const actor_info_t *info)
{
    tstate_t *s = state;

    if (s->p != NULL)
        atomic_fetch_add(&s->p->infos, 1);
    if (info->kind == ACTOR_INFO_TIMER) {
        if (s->nfired < MAX_FIRED) {
            s->fired[s->nfired] = (int)info->msg.tag;
            s->fired_ref[s->nfired] = info->ref;
            s->nfired++;
        }
        if (info->msg.len > 0 && info->msg.len <= sizeof(s->tdata) && info->msg.data != NULL) {
            memcpy(s->tdata, info->msg.data, info->msg.len);
            s->tdata_len = info->msg.len;
        }
        if (info->msg.tag == T_CANCELLER)
            s->cancel_rc = actor_cancel_timer(s->self, s->cancel_ref);
    } else if (info->kind == ACTOR_INFO_DOWN) {
        s->down.downs++;
        s->down.reason = info->reason;
        s->down.ref = info->ref;
        s->down.who = info->who;
    }
}

static void
t_terminate(void *state, int reason)
{
    tstate_t *s = state;

    if (s->p != NULL) {
        atomic_store(&s->p->term_reason, reason);
        atomic_fetch_add(&s->p->terms, 1);
    }
    free(s);
}

static const actor_behaviour_t tb = {
    .init = t_init,
    .handle_call = t_call,
    .handle_cast = t_cast,
    .handle_info = t_info,
    .terminate = t_terminate,
};

/* Start the test behaviour (must succeed). */
static actor_t *
start(probe_t *p, const actor_opts_t *o)
{
    targ_t ta = { p, 0 };
    actor_t *a = NULL;

    ck_assert_int_eq(actor_start(&tb, &ta, o, &a), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(actor_is_alive(a), 1);
    return a;
}

/* Stop with ACTOR_SHUTDOWN, check it is gone, drop the reference. */
static void
stop_and_release(actor_t *a)
{
    int reason = -12345;

    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, WAIT_MS), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}

/* For a process that exits by itself: wait, check reason, release. */
static void
wait_and_release(actor_t *a, int want_reason)
{
    int reason = -12345;

    ck_assert_int_eq(actor_wait(a, WAIT_MS, &reason), 0);
    ck_assert_int_eq(reason, want_reason);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}

/* A call that must succeed with status 0; returns the reply length. */
static size_t
get(actor_t *a, uint32_t tag, void *out, size_t cap)
{
    size_t len = (size_t)-1;

    ck_assert_int_eq(actor_call(a, tag, NULL, 0, out, cap, &len, WAIT_MS), 0);
    ck_assert(len <= cap);
    return len;
}

static int
get_int(actor_t *a, uint32_t tag)
{
    int v = -1;

    ck_assert_uint_eq(get(a, tag, &v, sizeof(v)), sizeof(v));
    return v;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

START_TEST(test_start_stop_normal)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL), *r;
    char buf[8];
    size_t len;
    int reason = -1;

    /* init ran (once) before actor_start returned, on the process thread. */
    ck_assert_int_eq(atomic_load(&p.inits), 1);
    ck_assert_int_eq(actor_call(a, T_ECHO, "hi", 2, buf, sizeof(buf), &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 2);
    /* actor_retain hands back the same handle; dropping it stops nothing. */
    r = actor_retain(a);
    ck_assert_ptr_eq(r, a);
    actor_release(r);
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(atomic_load(&p.terms), 0);

    ck_assert_int_eq(actor_stop(a, ACTOR_NORMAL, WAIT_MS), 0);
    ck_assert_int_eq(actor_is_alive(a), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_NORMAL);
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    ck_assert_int_eq(atomic_load(&p.term_reason), ACTOR_NORMAL);
    /* Stopping an exited process gives 0; its reason does not change and
     * terminate does not run again. */
    ck_assert_int_eq(actor_stop(a, ACTOR_KILLED, WAIT_MS), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_NORMAL);
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    actor_release(a);
}
END_TEST

START_TEST(test_init_ignore)
{
    probe_t p = { 0 };
    targ_t ta = { &p, ACTOR_IGNORE };
    actor_opts_t o = { .name = "ignored-proc" };
    actor_t *a = (actor_t *)&p, *found = NULL;

    ck_assert_int_eq(actor_start(&tb, &ta, &o, &a), 0);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(atomic_load(&p.inits), 1);
    /* No process remains: in particular not under the name. */
    ck_assert_int_eq(actor_whereis("ignored-proc", &found), -ENOENT);
    /* And the name can be used by a real process. */
    a = start(&p, &o);
    ck_assert_int_eq(actor_whereis("ignored-proc", &found), 0);
    ck_assert_ptr_eq(found, a);
    actor_release(found);
    stop_and_release(a);
}
END_TEST

START_TEST(test_init_error)
{
    probe_t p = { 0 };
    targ_t ta = { &p, -ENOMEM };
    actor_opts_t o = { .name = "failed-init" };
    actor_t *a = (actor_t *)&p, *found = NULL;

    ck_assert_int_eq(actor_start(&tb, &ta, &o, &a), -ENOMEM);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(atomic_load(&p.inits), 1);
    /* terminate is not run after a failed init. */
    ck_assert_int_eq(atomic_load(&p.terms), 0);
    ck_assert_int_eq(actor_whereis("failed-init", &found), -ENOENT);

    /* Any negative value is passed through; other values give -EPROTO. */
    ta.init_rc = -EACCES;
    a = (actor_t *)&p;
    ck_assert_int_eq(actor_start(&tb, &ta, &o, &a), -EACCES);
    ck_assert_ptr_null(a);
    ta.init_rc = 7;
    a = (actor_t *)&p;
    ck_assert_int_eq(actor_start(&tb, &ta, &o, &a), -EPROTO);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(atomic_load(&p.terms), 0);
    ck_assert_int_eq(actor_whereis("failed-init", &found), -ENOENT);

    /* Nothing was left behind: the name is free. */
    a = start(&p, &o);
    stop_and_release(a);
    ck_assert_int_eq(atomic_load(&p.terms), 1);
}
END_TEST

START_TEST(test_terminate_on_shutdown)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    int reason = -1;

    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, WAIT_MS), 0);
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    ck_assert_int_eq(atomic_load(&p.term_reason), ACTOR_SHUTDOWN);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_SHUTDOWN);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}
END_TEST

/* actor.h: terminate "Runs for every reason, ACTOR_KILLED included ... so a
 * kill still frees it".  (OTP does not run terminate on kill; this library
 * documents that it does, and that is what is tested.) */
START_TEST(test_terminate_on_killed)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    int reason = -1;

    ck_assert_int_eq(actor_stop(a, ACTOR_KILLED, WAIT_MS), 0);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    ck_assert_int_eq(atomic_load(&p.term_reason), ACTOR_KILLED);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}
END_TEST

START_TEST(test_exit_request_precedence)
{
    probe_t p1 = { 0 }, p2 = { 0 };
    actor_t *a = start(&p1, NULL), *b = start(&p2, NULL);

    /* Hold both in a callback so the requests pile up. */
    ck_assert_int_eq(actor_cast(a, T_BLOCK, NULL, 0), 0);
    ck_assert_int_eq(actor_cast(b, T_BLOCK, NULL, 0), 0);
    ck_assert_int_eq(wait_atomic(&p1.entered, 1, WAIT_MS), 1);
    ck_assert_int_eq(wait_atomic(&p2.entered, 1, WAIT_MS), 1);
    /* The first request wins... */
    ck_assert_int_eq(actor_exit(a, 42), 0);
    ck_assert_int_eq(actor_exit(a, ACTOR_SHUTDOWN), 0);
    /* ...except that ACTOR_KILLED overrides. */
    ck_assert_int_eq(actor_exit(b, ACTOR_SHUTDOWN), 0);
    ck_assert_int_eq(actor_exit(b, ACTOR_KILLED), 0);
    /* A running callback is never interrupted. */
    sleep_ms(SETTLE_MS);
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(actor_is_alive(b), 1);
    ck_assert_int_eq(atomic_load(&p1.left), 0);
    atomic_store(&p1.gate, 1);
    atomic_store(&p2.gate, 1);
    wait_and_release(a, 42);
    wait_and_release(b, ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&p1.left), 1);
    ck_assert_int_eq(atomic_load(&p1.term_reason), 42);
    ck_assert_int_eq(atomic_load(&p2.term_reason), ACTOR_KILLED);

    ck_assert_int_eq(actor_reason_is_abnormal(ACTOR_NORMAL), 0);
    ck_assert_int_eq(actor_reason_is_abnormal(ACTOR_SHUTDOWN), 0);
    ck_assert_int_eq(actor_reason_is_abnormal(ACTOR_KILLED), 1);
    ck_assert_int_eq(actor_reason_is_abnormal(42), 1);
    ck_assert_int_eq(actor_reason_is_abnormal(ACTOR_REASON_USER), 1);
    ck_assert_int_eq(actor_reason_is_abnormal(-ENOMEM), 1);
}
END_TEST

/* actor_exit from inside a callback: the callback runs to its end, then the
 * process exits; a message queued behind it is not handled. */
START_TEST(test_exit_from_callback)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);

    atomic_store(&p.exit_rc, 99);
    atomic_store(&p.alive_in_cb, -1);
    ck_assert_int_eq(actor_cast(a, T_EXIT_SELF, NULL, 0), 0);
    ck_assert_int_eq(wait_atomic(&p.entered, 1, WAIT_MS), 1);
    /* Exit requested, callback still running: the process is alive. */
    ck_assert_int_eq(atomic_load(&p.exit_rc), 0);
    ck_assert_int_eq(atomic_load(&p.alive_in_cb), 1);
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(actor_cast(a, T_COUNT, NULL, 0), 0);
    atomic_store(&p.gate, 1);
    wait_and_release(a, 42);
    ck_assert_int_eq(atomic_load(&p.after_exit), 1);
    ck_assert_int_eq(atomic_load(&p.casts), 1);   /* T_COUNT never ran */
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    ck_assert_int_eq(atomic_load(&p.term_reason), 42);
}
END_TEST

typedef struct exiter {
    actor_t *a;
    int reason;
} exiter_t;

static void *
delayed_exit(void *arg)
{
    exiter_t *e = arg;

    sleep_ms(50);
    actor_exit(e->a, e->reason);
    return NULL;
}

START_TEST(test_wait)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    exiter_t ex = { a, 77 };
    pthread_t th;
    int reason = 123;
    int64_t t0, dt;

    /* A live process: -ETIMEDOUT after about the timeout, reason untouched. */
    t0 = now_ms();
    ck_assert_int_eq(actor_wait(a, 50, &reason), -ETIMEDOUT);
    dt = now_ms() - t0;
    ck_assert_int_ge(dt, 40);
    ck_assert_int_lt(dt, 3000);
    ck_assert_int_eq(reason, 123);
    ck_assert_int_eq(actor_wait(a, 0, &reason), -ETIMEDOUT);
    ck_assert_int_eq(actor_is_alive(a), 1);
    /* An exit requested from another thread ends an infinite wait. */
    ck_assert_int_eq(pthread_create(&th, NULL, delayed_exit, &ex), 0);
    ck_assert_int_eq(actor_wait(a, ACTOR_INFINITY, &reason), 0);
    ck_assert_int_eq(reason, 77);
    pthread_join(th, NULL);
    /* "Exited" includes: terminate has run. */
    ck_assert_int_eq(atomic_load(&p.terms), 1);
    ck_assert_int_eq(actor_wait(a, ACTOR_INFINITY, NULL), 0);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* call                                                                 */

START_TEST(test_call_reply)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    char buf[32], req[8] = "request";
    size_t len = 0;

    /* actor_reply_set: an echo. */
    ck_assert_int_eq(actor_call(a, T_ECHO, req, 7, buf, sizeof(buf), &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 7);
    ck_assert_mem_eq(buf, "request", 7);
    /* actor_reply_buf, and the handler's status becomes the result. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(actor_call(a, T_BUF, NULL, 0, buf, sizeof(buf), &len, WAIT_MS), 42);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(buf, "buf", 3);
    /* A negative status too. */
    ck_assert_int_eq(actor_call(a, 5555, NULL, 0, NULL, 0, NULL, WAIT_MS), -ENOSYS);
    /* reply_set twice: the last wins. */
    ck_assert_int_eq(actor_call(a, T_REPLY_TWICE, NULL, 0, buf, sizeof(buf), &len, WAIT_MS),
                     0);
    ck_assert_uint_eq(len, 6);
    ck_assert_mem_eq(buf, "second", 6);
    /* Empty request and reply; rep_len NULL is allowed. */
    len = 99;
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 0, NULL, 0, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(actor_call(a, T_ECHO, "abc", 3, buf, sizeof(buf), NULL, WAIT_MS), 0);
    ck_assert_mem_eq(buf, "abc", 3);
    ck_assert_int_eq(actor_call(a, T_ECHO, "abc", 3, buf, sizeof(buf), NULL, ACTOR_INFINITY),
                     0);
    ck_assert_int_eq(atomic_load(&p.calls), 7);
    stop_and_release(a);
}
END_TEST

START_TEST(test_call_truncated_reply)
{
    actor_t *a = start(NULL, NULL);
    unsigned char buf[16];
    size_t len = 0, n = (size_t)1 << 20, i;

    /* min(reply length, rep_cap) bytes, the full length in *rep_len, and
     * nothing written past rep_cap. */
    memset(buf, 0xEE, sizeof(buf));
    ck_assert_int_eq(actor_call(a, T_ECHO, "abcdefgh", 8, buf, 3, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert_mem_eq(buf, "abc", 3);
    for (i = 3; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], 0xEE);
    /* rep NULL, rep_cap 0: the length alone. */
    ck_assert_int_eq(actor_call(a, T_ECHO, "abcdefgh", 8, NULL, 0, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 8);
    /* A 1 MiB reply (actor_reply_buf) into 16 bytes. */
    memset(buf, 0xEE, sizeof(buf));
    ck_assert_int_eq(actor_call(a, T_BIG, &n, sizeof(n), buf, 10, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, n);
    for (i = 0; i < 10; i++)
        ck_assert_uint_eq(buf[i], (unsigned char)(i * 7 + 1));
    for (i = 10; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], 0xEE);
    /* Exact fit. */
    ck_assert_int_eq(actor_call(a, T_ECHO, "abcdefgh", 8, buf, 8, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert_mem_eq(buf, "abcdefgh", 8);
    stop_and_release(a);
}
END_TEST

START_TEST(test_call_no_handle_call)
{
    static const actor_behaviour_t empty = { 0 };
    actor_t *a = NULL;

    ck_assert_int_eq(actor_start(&empty, NULL, NULL, &a), 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(actor_call(a, 1, "x", 1, NULL, 0, NULL, WAIT_MS), -ENOTSUP);
    ck_assert_int_eq(actor_call(a, 1, NULL, 0, NULL, 0, NULL, ACTOR_INFINITY), -ENOTSUP);
    /* The other callbacks may be NULL: messages are simply dropped. */
    ck_assert_int_eq(actor_cast(a, 1, "x", 1), 0);
    ck_assert_int_eq(actor_send_after(a, 0, 1, NULL, 0, NULL), 0);
    ck_assert_int_eq(actor_call(a, 1, NULL, 0, NULL, 0, NULL, WAIT_MS), -ENOTSUP);
    ck_assert_int_eq(actor_is_alive(a), 1);
    stop_and_release(a);
}
END_TEST

/* A call from a frame that is gone right after the call times out: a late
 * reply written to rep or *rep_len would be a stack use after return. */
static int __attribute__((noinline))
call_in_frame(actor_t *a, int timeout_ms)
{
    char frame_buf[64];
    size_t len = 0;
    volatile char sink;
    int rc;

    memset(frame_buf, 'x', sizeof(frame_buf));
    rc = actor_call(a, T_BLOCK, "q", 1, frame_buf, sizeof(frame_buf), &len, timeout_ms);
    sink = frame_buf[0];
    (void)sink;
    return rc;
}

/* Reuse the stack where call_in_frame's frames were. */
static void __attribute__((noinline))
scribble_stack(void)
{
    volatile char junk[4096];
    size_t i;

    for (i = 0; i < sizeof(junk); i++)
        junk[i] = (char)i;
}

static void
echo_round(actor_t *a, int round)
{
    int i;

    for (i = 0; i < 5; i++) {
        char req[24], buf[32];
        size_t len = 0, rl;

        snprintf(req, sizeof(req), "round%d-call%d", round, i);
        rl = strlen(req);
        memset(buf, '#', sizeof(buf));
        ck_assert_int_eq(actor_call(a, T_ECHO, req, rl, buf, sizeof(buf), &len, WAIT_MS), 0);
        ck_assert_uint_eq(len, rl);
        ck_assert_mem_eq(buf, req, rl);
        ck_assert_int_eq(buf[rl], '#');   /* a longer ("late") reply never lands */
    }
}

START_TEST(test_call_timeout_late_reply)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    unsigned char *hbuf = malloc(64);
    size_t *hlen = malloc(sizeof(*hlen));
    int64_t t0, dt;
    int i;

    ck_assert_ptr_nonnull(hbuf);
    ck_assert_ptr_nonnull(hlen);
    /* 1. Calls from short-lived frames time out while the handler blocks. */
    for (i = 0; i < 3; i++) {
        t0 = now_ms();
        ck_assert_int_eq(call_in_frame(a, 50), -ETIMEDOUT);
        dt = now_ms() - t0;
        ck_assert_int_ge(dt, 40);
        ck_assert_int_lt(dt, 3000);
    }
    scribble_stack();
    ck_assert_int_eq(wait_atomic(&p.entered, 1, WAIT_MS), 1);
    /* 2. One into heap memory that stays valid, to see that it is never
     * written. */
    memset(hbuf, 0xAB, 64);
    *hlen = 12345;
    ck_assert_int_eq(actor_call(a, T_BLOCK, "q", 1, hbuf, 64, hlen, 30), -ETIMEDOUT);
    /* What actor_call itself leaves in *rep_len on an error is not
     * specified; after it returned, nothing may write there. */
    *hlen = 12345;
    for (i = 0; i < 64; i++)
        ck_assert_uint_eq(hbuf[i], 0xAB);

    /* 3. Release the handler.  The timed-out requests may still be handled
     * (their replies discarded); the same thread's next calls come after
     * them (one sender: FIFO) and get their own replies. */
    atomic_store(&p.gate, 1);
    ck_assert_int_ge(wait_atomic(&p.left, 1, WAIT_MS), 1);
    echo_round(a, 1);
    ck_assert_int_eq(atomic_load(&p.left), atomic_load(&p.entered));
    ck_assert_int_le(atomic_load(&p.left), 4);
    /* 4. No late reply was written to rep or *rep_len. */
    sleep_ms(SETTLE_MS);
    for (i = 0; i < 64; i++)
        ck_assert_uint_eq(hbuf[i], 0xAB);
    ck_assert_uint_eq(*hlen, 12345);

    /* 5. Again, with the late reply racing the next call. */
    atomic_store(&p.gate, 0);
    ck_assert_int_eq(call_in_frame(a, 20), -ETIMEDOUT);
    scribble_stack();
    atomic_store(&p.gate, 1);
    echo_round(a, 2);
    ck_assert_int_eq(atomic_load(&p.left), atomic_load(&p.entered));
    echo_round(a, 3);
    stop_and_release(a);
    free(hbuf);
    free(hlen);
}
END_TEST

START_TEST(test_call_dead_process)
{
    actor_t *a = start(NULL, NULL);
    int64_t t0;

    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, WAIT_MS), 0);
    /* -ESRCH at once, even with an infinite timeout. */
    t0 = now_ms();
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", 1, NULL, 0, NULL, ACTOR_INFINITY), -ESRCH);
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", 1, NULL, 0, NULL, 10000), -ESRCH);
    ck_assert_int_lt(now_ms() - t0, 1000);
    ck_assert_int_eq(actor_is_alive(a), 0);
    actor_release(a);
}
END_TEST

typedef struct caller {
    actor_t *a;
    uint32_t tag;
    int timeout_ms;
    int rc;
    char buf[16];
    size_t len;
} caller_t;

static void *
caller_main(void *arg)
{
    caller_t *c = arg;

    c->rc = actor_call(c->a, c->tag, "y", 1, c->buf, sizeof(c->buf), &c->len, c->timeout_ms);
    return NULL;
}

/* A process exits while calls are queued behind a blocked call: the call
 * being handled gets its reply, the queued ones -ESRCH (not a hang). */
START_TEST(test_call_queued_on_exit)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    caller_t first = { .a = a, .tag = T_BLOCK, .timeout_ms = 10000 };
    caller_t q1 = { .a = a, .tag = T_ECHO, .timeout_ms = ACTOR_INFINITY };
    caller_t q2 = { .a = a, .tag = T_ECHO, .timeout_ms = 10000 };
    pthread_t t1, t2, t3;
    int i;

    ck_assert_int_eq(pthread_create(&t1, NULL, caller_main, &first), 0);
    ck_assert_int_eq(wait_atomic(&p.entered, 1, WAIT_MS), 1);
    ck_assert_int_eq(pthread_create(&t2, NULL, caller_main, &q1), 0);
    ck_assert_int_eq(pthread_create(&t3, NULL, caller_main, &q2), 0);
    ck_assert_int_eq(actor_cast(a, T_COUNT, NULL, 0), 0);
    /* Give the callers time to queue (depth is only a hint). */
    for (i = 0; i < 400 && actor_mailbox_depth(a) < 3; i++)
        sleep_ms(5);
    sleep_ms(SETTLE_MS);
    ck_assert_int_eq(actor_exit(a, ACTOR_SHUTDOWN), 0);
    atomic_store(&p.gate, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_join(t3, NULL);
    ck_assert_int_eq(first.rc, 0);
    ck_assert_uint_eq(first.len, 4);
    ck_assert_mem_eq(first.buf, "late", 4);
    ck_assert_int_eq(q1.rc, -ESRCH);
    ck_assert_int_eq(q2.rc, -ESRCH);
    ck_assert_int_eq(atomic_load(&p.calls), 1);
    ck_assert_int_eq(atomic_load(&p.casts), 0);
    wait_and_release(a, ACTOR_SHUTDOWN);
}
END_TEST

/* actor_call on actor_self() from handle_cast: -EDEADLK (and at once, not
 * after the 1 s timeout).  actor_wait on itself: -EDEADLK too. */
START_TEST(test_self_call_edeadlk)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    self_seen_t seen;
    int64_t t0;

    ck_assert_ptr_null(actor_self());   /* not a process thread */
    t0 = now_ms();
    ck_assert_int_eq(actor_cast(a, T_SELF_CALL, NULL, 0), 0);
    ck_assert_uint_eq(get(a, T_GET_SELF, &seen, sizeof(seen)), sizeof(seen));
    ck_assert_int_lt(now_ms() - t0, 900);
    ck_assert_int_eq(seen.ran, 1);
    ck_assert_ptr_eq(seen.in_init, a);
    ck_assert_ptr_eq(seen.in_cast, a);
    ck_assert_int_eq(seen.call_rc, -EDEADLK);
    ck_assert_int_eq(seen.wait_rc, -EDEADLK);
    /* The process is unharmed. */
    ck_assert_int_eq(actor_call(a, T_ECHO, "z", 1, NULL, 0, NULL, WAIT_MS), 0);
    stop_and_release(a);
}
END_TEST

/* The documented "no allocation in the steady state" of actor_call, counted
 * on the calling thread through gencache_replace_allocator (which must be
 * installed before any other gencache call: true in a forked test). */
static _Thread_local int tl_counting;
static _Thread_local long tl_allocs;

static void *
count_malloc(size_t n)
{
    if (tl_counting)
        tl_allocs++;
    return malloc(n);
}

static void *
count_realloc(void *q, size_t n)
{
    if (tl_counting)
        tl_allocs++;
    return realloc(q, n);
}

static void *
count_calloc(size_t c, size_t n)
{
    if (tl_counting)
        tl_allocs++;
    return calloc(c, n);
}

START_TEST(test_call_steady_state_no_alloc)
{
    const char *fork_env = getenv("CK_FORK");
    actor_t *a;
    char buf[16];
    size_t len;
    long allocs;
    int i;

    if (fork_env != NULL && strcmp(fork_env, "no") == 0)
        return;   /* the allocator can only be replaced in a fresh process */
    ck_assert_int_eq(gencache_replace_allocator(count_malloc, count_realloc, count_calloc, free),
                     0);
    a = start(NULL, NULL);
    for (i = 0; i < 3; i++)   /* warm up: the per-thread record */
        ck_assert_int_eq(actor_call(a, T_ECHO, "warm", 4, buf, sizeof(buf), &len, WAIT_MS), 0);
    tl_allocs = 0;
    tl_counting = 1;
    for (i = 0; i < 500; i++) {
        ck_assert_int_eq(actor_call(a, T_ECHO, "ping", 4, buf, sizeof(buf), &len, WAIT_MS), 0);
        ck_assert_uint_eq(len, 4);
    }
    tl_counting = 0;
    allocs = tl_allocs;
    ck_assert_msg(allocs == 0, "500 steady-state calls made %ld allocations on the caller",
                  allocs);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* mailbox                                                              */

typedef struct producer {
    actor_t *a;
    unsigned id;
    atomic_int *failures;
} producer_t;

static void *
producer_main(void *arg)
{
    producer_t *pr = arg;
    uint64_t seq;

    for (seq = 0; seq < PER_PRODUCER; seq++)
        if (actor_cast(pr->a, T_PROD0 + pr->id, &seq, sizeof(seq)) != 0)
            atomic_fetch_add(pr->failures, 1);
    return NULL;
}

START_TEST(test_many_producers_fifo)
{
    atomic_int failures = 0;
    actor_t *a = start(NULL, NULL);
    producer_t pr[PRODUCERS];
    pthread_t th[PRODUCERS];
    seq_seen_t seen;
    uint64_t total = 0;
    unsigned i;
    int tries;

    for (i = 0; i < PRODUCERS; i++) {
        pr[i] = (producer_t){ a, i, &failures };
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer_main, &pr[i]), 0);
    }
    for (i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&failures), 0);   /* unbounded: every cast 0 */
    /* All casts are queued; poll until they are handled (bounded). */
    for (tries = 0; tries < 2000; tries++) {
        ck_assert_uint_eq(get(a, T_GET_SEQ, &seen, sizeof(seen)), sizeof(seen));
        for (i = 0, total = 0; i < PRODUCERS; i++)
            total += seen.count[i];
        if (total >= (uint64_t)PRODUCERS * PER_PRODUCER || seen.errors != 0)
            break;
        sleep_ms(5);
    }
    ck_assert_msg(seen.errors == 0, "%llu messages out of order, lost or duplicated",
                  (unsigned long long)seen.errors);
    for (i = 0; i < PRODUCERS; i++)
        ck_assert_uint_eq(seen.count[i], PER_PRODUCER);
    sleep_ms(SETTLE_MS);   /* and nothing more arrives */
    ck_assert_uint_eq(get(a, T_GET_SEQ, &seen, sizeof(seen)), sizeof(seen));
    for (i = 0; i < PRODUCERS; i++)
        ck_assert_uint_eq(seen.count[i], PER_PRODUCER);
    ck_assert_uint_eq(seen.errors, 0);
    stop_and_release(a);
}
END_TEST

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

    ck_assert_int_eq(actor_call(a, T_ECHO, "a", 1, buf, sizeof(buf), &len, WAIT_MS), 0);
    sleep_ms(20);   /* past any spin-before-park phase */
    c0 = cpu_seconds();
    sleep_ms(300);
    used = cpu_seconds() - c0;
    /* An idle process must sleep: a spinning one would use ~300 ms. */
    ck_assert_msg(used < 0.030, "idle process used %.1f ms of CPU in 300 ms", used * 1e3);
    /* A cast wakes it, and a call is answered after it (same sender: FIFO). */
    ck_assert_int_eq(actor_cast(a, T_COUNT, NULL, 0), 0);
    ck_assert_int_eq(get_int(a, T_GET_COUNT), 1);
    ck_assert_int_eq(actor_call(a, T_ECHO, "c", 1, buf, sizeof(buf), &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(buf[0], 'c');
    stop_and_release(a);
}
END_TEST

START_TEST(test_mailbox_limit)
{
    probe_t p = { 0 };
    actor_opts_t o = { .mailbox_limit = 4 };
    actor_t *a = start(&p, &o);
    int i, ok = 0, again = 0;
    int64_t t0, dt;

    /* The handler blocks; the mailbox fills behind it. */
    ck_assert_int_eq(actor_cast(a, T_BLOCK, NULL, 0), 0);
    ck_assert_int_eq(wait_atomic(&p.entered, 1, WAIT_MS), 1);
    for (i = 0; i < 10; i++) {
        int rc = actor_cast(a, T_COUNT, NULL, 0);

        ck_assert_msg(rc == 0 || rc == -EAGAIN, "cast %d returned %d", i, rc);
        ok += rc == 0;
        again += rc == -EAGAIN;
        if (i >= 4)   /* beyond the limit: -EAGAIN at once */
            ck_assert_int_eq(rc, -EAGAIN);
    }
    ck_assert_int_eq(ok, 4);
    ck_assert_int_eq(again, 6);
    ck_assert_uint_eq(actor_mailbox_depth(a), 4);
    /* A call to the full mailbox waits for room within its timeout. */
    t0 = now_ms();
    ck_assert_int_eq(actor_call(a, T_ECHO, "y", 1, NULL, 0, NULL, 60), -ETIMEDOUT);
    dt = now_ms() - t0;
    ck_assert_int_ge(dt, 50);
    ck_assert_int_lt(dt, 3000);
    atomic_store(&p.gate, 1);
    /* Only the accepted casts ran; the refused ones were never queued. */
    ck_assert_int_eq(get_int(a, T_GET_COUNT), 4);
    sleep_ms(SETTLE_MS);
    ck_assert_int_eq(get_int(a, T_GET_COUNT), 4);
    ck_assert_int_eq(atomic_load(&p.casts), 5);
    /* Room again. */
    ck_assert_int_eq(actor_cast(a, T_COUNT, NULL, 0), 0);
    ck_assert_int_eq(get_int(a, T_GET_COUNT), 5);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* timers                                                               */

static int
fired(actor_t *a, int *out)
{
    return (int)(get(a, T_GET_FIRED, out, sizeof(int) * MAX_FIRED) / sizeof(int));
}

/* Poll (bounded) until n timers have fired; returns how many did. */
static int
wait_fired(actor_t *a, int n, int *out)
{
    int i, got = 0;

    for (i = 0; i < 1000 && (got = fired(a, out)) < n; i++)
        sleep_ms(2);
    return got;
}

/* Let a wrongly due timer fire, then count. */
static int
settled_fired(actor_t *a, int *out)
{
    sleep_ms(SETTLE_MS);
    return fired(a, out);
}

START_TEST(test_timers_manual_clock_order)
{
    actor_clock_t *clk = NULL;
    actor_opts_t o = { 0 };
    actor_t *a;
    int out[MAX_FIRED];
    uint64_t r30, r10, r20a, r20b, refs[MAX_FIRED];
    char data[16];

    ck_assert_int_eq(actor_clock_manual_new(1000, &clk), 0);
    ck_assert_ptr_nonnull(clk);
    ck_assert_uint_eq(actor_clock_now(clk), 1000);
    o.clock = clk;
    a = start(NULL, &o);
    ck_assert_int_eq(actor_send_after(a, 30, 30, NULL, 0, &r30), 0);
    ck_assert_int_eq(actor_send_after(a, 10, 10, "ten", 3, &r10), 0);
    ck_assert_int_eq(actor_send_after(a, 20, 21, NULL, 0, &r20a), 0);
    ck_assert_int_eq(actor_send_after(a, 20, 22, NULL, 0, &r20b), 0);
    ck_assert(r30 != r10 && r30 != r20a && r30 != r20b && r10 != r20a && r10 != r20b &&
              r20a != r20b);
    ck_assert_int_eq(settled_fired(a, out), 0);   /* the clock has not moved */

    /* Step by step: nothing fires before its deadline. */
    ck_assert_int_eq(actor_clock_advance(clk, 9), 0);
    ck_assert_uint_eq(actor_clock_now(clk), 1009);
    ck_assert_int_eq(settled_fired(a, out), 0);
    ck_assert_int_eq(actor_clock_advance(clk, 1), 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], 10);
    ck_assert_uint_eq(get(a, T_GET_TDATA, data, sizeof(data)), 3);
    ck_assert_mem_eq(data, "ten", 3);

    ck_assert_int_eq(actor_clock_advance(clk, 9), 0);
    ck_assert_int_eq(settled_fired(a, out), 1);
    ck_assert_int_eq(actor_clock_advance(clk, 1), 0);
    ck_assert_int_eq(wait_fired(a, 3, out), 3);
    /* Same deadline: in the order they were set. */
    ck_assert_int_eq(out[1], 21);
    ck_assert_int_eq(out[2], 22);

    ck_assert_int_eq(actor_clock_advance(clk, 9), 0);
    ck_assert_int_eq(settled_fired(a, out), 3);
    ck_assert_int_eq(actor_clock_advance(clk, 1), 0);
    ck_assert_int_eq(wait_fired(a, 4, out), 4);
    ck_assert_int_eq(out[3], 30);
    ck_assert_uint_eq(actor_clock_now(clk), 1030);
    /* Each fired once, with its own ref. */
    ck_assert_int_eq(actor_clock_advance(clk, 1000), 0);
    ck_assert_int_eq(settled_fired(a, out), 4);
    ck_assert_uint_eq(get(a, T_GET_FIRED_REFS, refs, sizeof(refs)), 4 * sizeof(uint64_t));
    ck_assert(refs[0] == r10 && refs[1] == r20a && refs[2] == r20b && refs[3] == r30);

    /* A clock in use cannot be freed. */
    ck_assert_int_eq(actor_clock_free(clk), -EBUSY);
    stop_and_release(a);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

START_TEST(test_timer_cancel)
{
    actor_clock_t *clk = NULL;
    actor_opts_t o = { 0 };
    actor_t *a;
    int out[MAX_FIRED];
    uint64_t r1, r2;

    ck_assert_int_eq(actor_clock_manual_new(0, &clk), 0);
    o.clock = clk;
    a = start(NULL, &o);
    ck_assert_int_eq(actor_send_after(a, 10, 1, NULL, 0, &r1), 0);
    ck_assert_int_eq(actor_send_after(a, 20, 2, "two", 3, &r2), 0);
    /* Before it fires: 0, and then it is gone. */
    ck_assert_int_eq(actor_cancel_timer(a, r2), 0);
    ck_assert_int_eq(actor_cancel_timer(a, r2), -ENOENT);
    ck_assert_int_eq(actor_cancel_timer(a, UINT64_MAX), -ENOENT);   /* unknown */
    ck_assert_int_eq(actor_clock_advance(clk, 10), 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], 1);
    /* After it fired: -ENOENT. */
    ck_assert_int_eq(actor_cancel_timer(a, r1), -ENOENT);
    /* The cancelled one never fires. */
    ck_assert_int_eq(actor_clock_advance(clk, 100), 0);
    ck_assert_int_eq(settled_fired(a, out), 1);
    stop_and_release(a);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

START_TEST(test_timer_cancel_from_callback)
{
    actor_clock_t *clk = NULL;
    actor_opts_t o = { 0 };
    actor_t *a;
    int out[MAX_FIRED];
    uint64_t r5, r6, r99;

    ck_assert_int_eq(actor_clock_manual_new(0, &clk), 0);
    o.clock = clk;
    a = start(NULL, &o);
    /* From handle_call. */
    ck_assert_int_eq(actor_send_after(a, 50, 5, NULL, 0, &r5), 0);
    ck_assert_int_eq(actor_call(a, T_CANCEL, &r5, sizeof(r5), NULL, 0, NULL, WAIT_MS), 0);
    ck_assert_int_eq(actor_call(a, T_CANCEL, &r5, sizeof(r5), NULL, 0, NULL, WAIT_MS),
                     -ENOENT);
    ck_assert_int_eq(actor_cancel_timer(a, r5), -ENOENT);
    /* From handle_info: timer 99 (at 10) cancels timer 6 (at 20). */
    ck_assert_int_eq(actor_send_after(a, 20, 6, NULL, 0, &r6), 0);
    ck_assert_int_eq(actor_send_after(a, 10, T_CANCELLER, NULL, 0, &r99), 0);
    ck_assert_int_eq(actor_cast(a, T_SET_CANCEL_REF, &r6, sizeof(r6)), 0);
    ck_assert_int_eq(get_int(a, T_GET_COUNT), 0);   /* the cast was handled */
    ck_assert_int_eq(actor_clock_advance(clk, 10), 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], T_CANCELLER);
    ck_assert_int_eq(get_int(a, T_GET_CANCEL_RC), 0);
    ck_assert_int_eq(actor_cancel_timer(a, r6), -ENOENT);
    ck_assert_int_eq(actor_clock_advance(clk, 100), 0);
    ck_assert_int_eq(settled_fired(a, out), 1);   /* neither 5 nor 6 fired */
    stop_and_release(a);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

START_TEST(test_timer_monotonic_clock)
{
    actor_t *a = start(NULL, NULL);
    int out[MAX_FIRED];
    uint64_t c0 = actor_clock_now(NULL), ref = 0;
    int64_t t0 = now_ms();

    ck_assert_int_eq(actor_send_after(a, 30, 7, NULL, 0, &ref), 0);
    ck_assert(ref != 0);
    ck_assert_int_eq(wait_fired(a, 1, out), 1);
    ck_assert_int_eq(out[0], 7);
    ck_assert_int_ge(now_ms() - t0, 25);   /* not before its deadline */
    ck_assert_uint_ge(actor_clock_now(NULL), c0 + 25);
    stop_and_release(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* names                                                                */

START_TEST(test_names_register_whereis)
{
    actor_opts_t o = { .name = "names-a" };
    actor_t *a = start(NULL, &o), *b, *found = NULL;
    char name[ACTOR_NAME_MAX + 1], maxname[ACTOR_NAME_MAX + 1];

    ck_assert_int_eq(actor_whereis("names-a", &found), 0);
    ck_assert_ptr_eq(found, a);
    actor_release(found);   /* dropping the found reference stops nothing */
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 0, NULL, 0, NULL, WAIT_MS), 0);
    ck_assert_int_eq(actor_name(a, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "names-a");
    ck_assert_int_eq(actor_name(a, name, 8), 0);           /* exact fit */
    ck_assert_str_eq(name, "names-a");
    ck_assert_int_eq(actor_name(a, name, 7), -ERANGE);     /* no room for NUL */
    /* Issue 12, item 8: a zero-size buffer is too small, as the header
     * says (-ERANGE), not bad input. */
    ck_assert_int_eq(actor_name(a, name, 0), -ERANGE);
    ck_assert_int_eq(actor_name(a, NULL, 0), -ERANGE);
    ck_assert_int_eq(actor_whereis("names-b", &found), -ENOENT);

    /* A name of exactly ACTOR_NAME_MAX bytes is fine. */
    memset(maxname, 'm', ACTOR_NAME_MAX);
    maxname[ACTOR_NAME_MAX] = '\0';
    b = start(NULL, NULL);
    ck_assert_int_eq(actor_name(b, name, sizeof(name)), -ENOENT);
    ck_assert_int_eq(actor_register(b, maxname), 0);
    ck_assert_int_eq(actor_whereis(maxname, &found), 0);
    ck_assert_ptr_eq(found, b);
    actor_release(found);
    ck_assert_int_eq(actor_name(b, name, sizeof(name)), 0);
    ck_assert_str_eq(name, maxname);
    stop_and_release(a);
    stop_and_release(b);
}
END_TEST

START_TEST(test_names_duplicate)
{
    probe_t p = { 0 };
    actor_opts_t o = { .name = "names-dup" };
    actor_t *a = start(NULL, &o), *b = (actor_t *)&o, *c, *found = NULL;
    targ_t ta = { &p, 0 };
    char name[ACTOR_NAME_MAX + 1];

    ck_assert_int_eq(actor_start(&tb, &ta, &o, &b), -EEXIST);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(atomic_load(&p.terms), 0);
    c = start(NULL, NULL);
    ck_assert_int_eq(actor_register(c, "names-dup"), -EEXIST);
    ck_assert_int_eq(actor_name(c, name, sizeof(name)), -ENOENT);   /* unchanged */
    /* A process has one name at most. */
    ck_assert_int_eq(actor_register(c, "names-other"), 0);
    ck_assert_int_eq(actor_register(c, "names-third"), -EEXIST);
    ck_assert_int_eq(actor_whereis("names-third", &found), -ENOENT);
    ck_assert_int_eq(actor_register(a, "names-fourth"), -EEXIST);
    /* The first owner keeps it. */
    ck_assert_int_eq(actor_whereis("names-dup", &found), 0);
    ck_assert_ptr_eq(found, a);
    actor_release(found);
    stop_and_release(a);
    stop_and_release(c);
}
END_TEST

START_TEST(test_names_released_after_exit)
{
    actor_opts_t o = { .name = "names-exit" };
    actor_t *a = start(NULL, &o), *b, *c, *found = NULL;
    int i;

    stop_and_release(a);
    /* Released as part of exiting: no wait needed. */
    ck_assert_int_eq(actor_whereis("names-exit", &found), -ENOENT);
    /* A new process can take it, at start... */
    b = start(NULL, &o);
    ck_assert_int_eq(actor_whereis("names-exit", &found), 0);
    ck_assert_ptr_eq(found, b);
    actor_release(found);
    ck_assert_int_eq(actor_stop(b, ACTOR_KILLED, WAIT_MS), 0);
    ck_assert_int_eq(actor_whereis("names-exit", &found), -ENOENT);
    /* ...or with actor_register. */
    c = start(NULL, NULL);
    ck_assert_int_eq(actor_register(c, "names-exit"), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(actor_whereis("names-exit", &found), 0);
        ck_assert_ptr_eq(found, c);
        actor_release(found);
    }
    ck_assert_int_eq(actor_is_alive(b), 0);
    actor_release(b);
    stop_and_release(c);
    ck_assert_int_eq(actor_whereis("names-exit", &found), -ENOENT);
}
END_TEST

START_TEST(test_names_unregister)
{
    actor_t *a = start(NULL, NULL), *found = NULL;
    char name[ACTOR_NAME_MAX + 1];

    ck_assert_int_eq(actor_register(a, "names-u1"), 0);
    ck_assert_int_eq(actor_unregister("names-u1"), 0);
    ck_assert_int_eq(actor_unregister("names-u1"), -ENOENT);
    ck_assert_int_eq(actor_unregister("names-never"), -ENOENT);
    ck_assert_int_eq(actor_whereis("names-u1", &found), -ENOENT);
    ck_assert_int_eq(actor_name(a, name, sizeof(name)), -ENOENT);
    /* Still running, and free to take another name. */
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(actor_register(a, "names-u2"), 0);
    ck_assert_int_eq(actor_name(a, name, sizeof(name)), 0);
    ck_assert_str_eq(name, "names-u2");
    ck_assert_int_eq(actor_whereis("names-u2", &found), 0);
    ck_assert_ptr_eq(found, a);
    actor_release(found);
    stop_and_release(a);
    ck_assert_int_eq(actor_unregister("names-u2"), -ENOENT);
}
END_TEST

/* ------------------------------------------------------------------ */
/* monitors                                                             */

/* Poll the watcher (bounded) until it has seen want DOWN notices. */
static down_seen_t
read_down(actor_t *w, int want)
{
    down_seen_t d = { 0 };
    int i;

    for (i = 0; i < 1000; i++) {
        ck_assert_uint_eq(get(w, T_GET_DOWN, &d, sizeof(d)), sizeof(d));
        if (d.downs >= want)
            break;
        sleep_ms(2);
    }
    return d;
}

START_TEST(test_monitor_down_reasons)
{
    static const int reasons[] = { ACTOR_NORMAL, ACTOR_SHUTDOWN, ACTOR_KILLED, 42, -ENOMEM };
    uint64_t refs[5];
    actor_t *w = start(NULL, NULL);
    size_t i, j;

    for (i = 0; i < 5; i++) {
        actor_t *t = start(NULL, NULL);
        down_seen_t d;
        int reason = -12345;

        refs[i] = 0;
        ck_assert_int_eq(actor_monitor(t, w, &refs[i]), 0);
        for (j = 0; j < i; j++)
            ck_assert(refs[j] != refs[i]);   /* refs are unique */
        ck_assert_int_eq(actor_exit(t, reasons[i]), 0);
        ck_assert_int_eq(actor_wait(t, WAIT_MS, &reason), 0);
        ck_assert_int_eq(reason, reasons[i]);
        ck_assert_int_eq(actor_is_alive(t), 0);
        d = read_down(w, (int)i + 1);
        ck_assert_int_eq(d.downs, (int)i + 1);
        ck_assert_int_eq(d.reason, reasons[i]);
        ck_assert(d.ref == refs[i]);
        ck_assert_ptr_eq(d.who, t);
        actor_release(t);
    }
    sleep_ms(SETTLE_MS);
    ck_assert_int_eq(read_down(w, 5).downs, 5);   /* one DOWN each */
    stop_and_release(w);
}
END_TEST

START_TEST(test_monitor_dead_target)
{
    actor_t *w = start(NULL, NULL), *t = start(NULL, NULL);
    uint64_t ref = 0;
    down_seen_t d;

    ck_assert_int_eq(actor_stop(t, 77, WAIT_MS), 0);
    ck_assert_int_eq(actor_monitor(t, w, &ref), 0);
    ck_assert(ref != 0);
    d = read_down(w, 1);
    ck_assert_int_eq(d.downs, 1);
    ck_assert_int_eq(d.reason, 77);
    ck_assert(d.ref == ref);
    ck_assert_ptr_eq(d.who, t);
    /* A watcher that exited cannot monitor. */
    ck_assert_int_eq(actor_stop(w, ACTOR_SHUTDOWN, WAIT_MS), 0);
    ck_assert_int_eq(actor_monitor(t, w, NULL), -ESRCH);
    ck_assert_int_eq(actor_is_alive(t), 0);
    ck_assert_int_eq(actor_is_alive(w), 0);
    actor_release(t);
    actor_release(w);
}
END_TEST

START_TEST(test_demonitor)
{
    actor_t *w = start(NULL, NULL), *t1 = start(NULL, NULL), *t2 = start(NULL, NULL);
    uint64_t ref1 = 0, ref2 = 0;
    down_seen_t d;

    ck_assert_int_eq(actor_monitor(t1, w, &ref1), 0);
    ck_assert_int_eq(actor_monitor(t2, w, &ref2), 0);
    ck_assert(ref1 != ref2);
    ck_assert_int_eq(actor_demonitor(t1, ref1), 0);
    ck_assert_int_eq(actor_demonitor(t1, ref1), -ENOENT);
    ck_assert_int_eq(actor_demonitor(t1, UINT64_MAX), -ENOENT);
    stop_and_release(t1);
    ck_assert_int_eq(actor_stop(t2, 55, WAIT_MS), 0);
    d = read_down(w, 1);
    ck_assert_int_eq(d.downs, 1);
    ck_assert(d.ref == ref2);
    ck_assert_int_eq(d.reason, 55);
    /* Already fired: -ENOENT. */
    ck_assert_int_eq(actor_demonitor(t2, ref2), -ENOENT);
    sleep_ms(SETTLE_MS);
    d = read_down(w, 1);
    ck_assert_int_eq(d.downs, 1);   /* no DOWN for the demonitored t1 */
    ck_assert_int_eq(actor_is_alive(t2), 0);
    actor_release(t2);
    stop_and_release(w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* handles                                                              */

START_TEST(test_handle_after_exit)
{
    actor_t *a = start(NULL, NULL), *w = start(NULL, NULL), *r;
    uint64_t ref = 0;
    int reason = -1;
    int64_t t0;

    ck_assert_int_eq(actor_send_after(a, 100000, 1, NULL, 0, &ref), 0);
    ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, WAIT_MS), 0);
    ck_assert_int_eq(actor_is_alive(a), 0);
    t0 = now_ms();
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", 1, NULL, 0, NULL, ACTOR_INFINITY), -ESRCH);
    ck_assert_int_lt(now_ms() - t0, 1000);
    ck_assert_int_eq(actor_cast(a, T_COUNT, "x", 1), -ESRCH);
    ck_assert_int_eq(actor_send_after(a, 1, 1, NULL, 0, NULL), -ESRCH);
    ck_assert_int_eq(actor_cancel_timer(a, ref), -ESRCH);
    ck_assert_int_eq(actor_exit(a, ACTOR_KILLED), -ESRCH);
    ck_assert_int_eq(actor_register(a, "dead-handle"), -ESRCH);
    ck_assert_int_eq(actor_monitor(w, a, NULL), -ESRCH);   /* a as watcher */
    /* Still a valid handle: retain/release, wait, stop. */
    r = actor_retain(a);
    ck_assert_ptr_eq(r, a);
    actor_release(r);
    ck_assert_int_eq(actor_wait(a, 0, &reason), 0);
    ck_assert_int_eq(reason, ACTOR_SHUTDOWN);   /* not changed by exit(KILLED) */
    ck_assert_int_eq(actor_stop(a, ACTOR_NORMAL, 0), 0);
    actor_release(a);
    stop_and_release(w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* bad input                                                            */

START_TEST(test_bad_input_start)
{
    probe_t p = { 0 };
    targ_t ta = { &p, 0 };
    char longname[ACTOR_NAME_MAX + 2];
    actor_opts_t o = { 0 };
    actor_t *out = (actor_t *)&p, *found = NULL;

    memset(longname, 'n', ACTOR_NAME_MAX + 1);
    longname[ACTOR_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(actor_start(NULL, &ta, NULL, &out), -EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(actor_start(&tb, &ta, NULL, NULL), -EINVAL);
    o.name = "";
    out = (actor_t *)&p;
    ck_assert_int_eq(actor_start(&tb, &ta, &o, &out), -EINVAL);
    ck_assert_ptr_null(out);
    o.name = longname;
    out = (actor_t *)&p;
    ck_assert_int_eq(actor_start(&tb, &ta, &o, &out), -EINVAL);
    ck_assert_ptr_null(out);
    /* Nothing changed: init never ran, no name was taken. */
    ck_assert_int_eq(atomic_load(&p.inits), 0);
    ck_assert_int_eq(actor_whereis(longname, &found), -EINVAL);
    longname[ACTOR_NAME_MAX] = '\0';
    ck_assert_int_eq(actor_whereis(longname, &found), -ENOENT);
}
END_TEST

START_TEST(test_bad_input_messages)
{
    probe_t p = { 0 };
    actor_t *a = start(&p, NULL);
    char buf[8];
    int bad[4], out[MAX_FIRED];
    size_t len;

    ck_assert_int_eq(actor_call(NULL, T_ECHO, NULL, 0, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 5, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 0, NULL, 5, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", ACTOR_MSG_MAX + 1, buf, sizeof(buf), &len, 10),
                     -EINVAL);
    ck_assert_int_eq(actor_call(a, T_ECHO, "x", SIZE_MAX, NULL, 0, NULL, 10), -EINVAL);
    ck_assert_int_eq(actor_cast(NULL, T_COUNT, NULL, 0), -EINVAL);
    ck_assert_int_eq(actor_cast(a, T_COUNT, NULL, 3), -EINVAL);
    ck_assert_int_eq(actor_cast(a, T_COUNT, "x", ACTOR_MSG_MAX + 1), -EINVAL);
    ck_assert_int_eq(actor_cast(a, T_COUNT, "x", SIZE_MAX), -EINVAL);
    ck_assert_int_eq(actor_send_after(NULL, 0, 1, NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(actor_send_after(a, 0, 1, NULL, 9, NULL), -EINVAL);
    ck_assert_int_eq(actor_send_after(a, 0, 1, "x", ACTOR_MSG_MAX + 1, NULL), -EINVAL);
    ck_assert_int_eq(actor_reply_set(NULL, "x", 1), -EINVAL);
    ck_assert_ptr_null(actor_reply_buf(NULL, 1));
    /* Nothing was delivered: no handler ran, no timer fired. */
    sleep_ms(SETTLE_MS);
    ck_assert_int_eq(atomic_load(&p.calls), 0);
    ck_assert_int_eq(atomic_load(&p.casts), 0);
    ck_assert_int_eq(fired(a, out), 0);
    ck_assert_int_eq(atomic_load(&p.infos), 0);

    /* Inside handle_call: bad reply_set/reply_buf say -EINVAL/NULL and
     * leave the reply already set alone. */
    ck_assert_int_eq(actor_call(a, T_BAD_REPLY, NULL, 0, buf, sizeof(buf), &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 2);
    ck_assert_mem_eq(buf, "ok", 2);
    ck_assert_uint_eq(get(a, T_GET_BAD, bad, sizeof(bad)), sizeof(bad));
    ck_assert_int_eq(bad[0], -EINVAL);
    ck_assert_int_eq(bad[1], -EINVAL);
    ck_assert_int_eq(bad[2], 1);
    ck_assert_int_eq(bad[3], -EINVAL);
    stop_and_release(a);
}
END_TEST

START_TEST(test_bad_input_other)
{
    actor_t *a = start(NULL, NULL), *out = NULL;
    char longname[ACTOR_NAME_MAX + 2], name[ACTOR_NAME_MAX + 1];
    actor_clock_t *clk = NULL;

    memset(longname, 'n', ACTOR_NAME_MAX + 1);
    longname[ACTOR_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(actor_cancel_timer(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_exit(NULL, ACTOR_SHUTDOWN), -EINVAL);
    ck_assert_int_eq(actor_wait(NULL, 0, NULL), -EINVAL);
    ck_assert_int_eq(actor_stop(NULL, ACTOR_SHUTDOWN, 0), -EINVAL);
    ck_assert_int_eq(actor_monitor(NULL, a, NULL), -EINVAL);
    ck_assert_int_eq(actor_monitor(a, NULL, NULL), -EINVAL);
    ck_assert_int_eq(actor_monitor(NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(actor_demonitor(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_register(NULL, "bad-x"), -EINVAL);
    ck_assert_int_eq(actor_register(a, NULL), -EINVAL);
    ck_assert_int_eq(actor_register(a, ""), -EINVAL);
    ck_assert_int_eq(actor_register(a, longname), -EINVAL);
    ck_assert_int_eq(actor_name(a, name, sizeof(name)), -ENOENT);   /* unchanged */
    ck_assert_int_eq(actor_unregister(NULL), -EINVAL);
    ck_assert_int_eq(actor_unregister(""), -EINVAL);
    ck_assert_int_eq(actor_unregister(longname), -EINVAL);
    ck_assert_int_eq(actor_whereis(NULL, &out), -EINVAL);
    ck_assert_int_eq(actor_whereis("", &out), -EINVAL);
    ck_assert_int_eq(actor_whereis(longname, &out), -EINVAL);
    ck_assert_int_eq(actor_whereis("bad-x", NULL), -EINVAL);
    ck_assert_int_eq(actor_name(NULL, name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(actor_name(a, NULL, 4), -EINVAL);
    ck_assert_int_eq(actor_clock_manual_new(0, NULL), -EINVAL);
    ck_assert_int_eq(actor_clock_advance(NULL, 1), -EINVAL);
    ck_assert_int_eq(actor_clock_free(NULL), -EINVAL);
    ck_assert_ptr_null(actor_retain(NULL));
    actor_release(NULL);
    ck_assert_int_eq(actor_is_alive(NULL), 0);
    ck_assert_uint_eq(actor_mailbox_depth(NULL), 0);
    ck_assert_ptr_null(actor_self());
    /* A clock made and freed unused. */
    ck_assert_int_eq(actor_clock_manual_new(5, &clk), 0);
    ck_assert_uint_eq(actor_clock_now(clk), 5);
    ck_assert_int_eq(actor_clock_advance(clk, 3), 0);
    ck_assert_uint_eq(actor_clock_now(clk), 8);
    ck_assert_int_eq(actor_clock_free(clk), 0);
    /* The process is unharmed by all that. */
    ck_assert_int_eq(actor_is_alive(a), 1);
    ck_assert_int_eq(actor_call(a, T_ECHO, NULL, 0, NULL, 0, NULL, WAIT_MS), 0);
    stop_and_release(a);
}
END_TEST

START_TEST(test_strerror)
{
    static const int extremes[] = { INT_MIN, INT_MIN + 1, -100000, 100000, INT_MAX };
    int e;
    size_t i;

    for (e = -4200; e <= 4200; e++) {
        const char *s = actor_strerror(e);

        ck_assert_ptr_nonnull(s);
        ck_assert_int_gt((int)strlen(s), 0);
    }
    for (i = 0; i < sizeof(extremes) / sizeof(extremes[0]); i++)
        ck_assert_ptr_nonnull(actor_strerror(extremes[i]));
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *
tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_set_timeout(tc, TC_TIMEOUT);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *
actor_suite(void)
{
    Suite *s = suite_create("actor");
    TCase *tc;

    tc = tcase(s, "lifecycle");
    tcase_add_test(tc, test_start_stop_normal);
    tcase_add_test(tc, test_init_ignore);
    tcase_add_test(tc, test_init_error);
    tcase_add_test(tc, test_terminate_on_shutdown);
    tcase_add_test(tc, test_terminate_on_killed);
    tcase_add_test(tc, test_exit_request_precedence);
    tcase_add_test(tc, test_exit_from_callback);
    tcase_add_test(tc, test_wait);

    tc = tcase(s, "call");
    tcase_add_test(tc, test_call_reply);
    tcase_add_test(tc, test_call_truncated_reply);
    tcase_add_test(tc, test_call_no_handle_call);
    tcase_add_test(tc, test_call_timeout_late_reply);
    tcase_add_test(tc, test_call_dead_process);
    tcase_add_test(tc, test_call_queued_on_exit);
    tcase_add_test(tc, test_self_call_edeadlk);
    tcase_add_test(tc, test_call_steady_state_no_alloc);

    tc = tcase(s, "mailbox");
    tcase_add_test(tc, test_many_producers_fifo);
    tcase_add_test(tc, test_idle_parks_and_wakes);
    tcase_add_test(tc, test_mailbox_limit);

    tc = tcase(s, "timers");
    tcase_add_test(tc, test_timers_manual_clock_order);
    tcase_add_test(tc, test_timer_cancel);
    tcase_add_test(tc, test_timer_cancel_from_callback);
    tcase_add_test(tc, test_timer_monotonic_clock);

    tc = tcase(s, "names");
    tcase_add_test(tc, test_names_register_whereis);
    tcase_add_test(tc, test_names_duplicate);
    tcase_add_test(tc, test_names_released_after_exit);
    tcase_add_test(tc, test_names_unregister);

    tc = tcase(s, "monitors");
    tcase_add_test(tc, test_monitor_down_reasons);
    tcase_add_test(tc, test_monitor_dead_target);
    tcase_add_test(tc, test_demonitor);

    tc = tcase(s, "handles");
    tcase_add_test(tc, test_handle_after_exit);

    tc = tcase(s, "bad-input");
    tcase_add_test(tc, test_bad_input_start);
    tcase_add_test(tc, test_bad_input_messages);
    tcase_add_test(tc, test_bad_input_other);
    tcase_add_test(tc, test_strerror);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(actor_suite());
    int nfailed;

    srunner_run_all(sr, CK_NORMAL);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
