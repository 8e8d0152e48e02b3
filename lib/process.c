/*
 * Processes: start, call, cast, timers, exit, monitors.
 *
 * Each process is one detached thread running gc_worker_main: it takes its
 * whole mailbox at once (mailbox.c), handles the messages oldest first,
 * fires due timers, and parks on its mailbox's futex word when idle, with a
 * timeout bounded by its next timer deadline.
 *
 * Synchronous calls.  A call's message is the calling thread's gc_call_t,
 * allocated on the thread's first call and reused after that: the steady
 * state allocates nothing.  The request is copied into the record and the
 * worker writes the reply into it, never into the caller's frame, so the
 * caller's buffers may die with its frame at any time.  The record's `state`
 * word decides who owns it:
 *
 *   PENDING  --caller parks-->        SLEEPING
 *   PENDING|SLEEPING --worker done--> DONE       (caller owns the record)
 *   PENDING|SLEEPING --caller timeout--> ABANDONED (worker owns and frees it)
 *
 * Both transitions out of PENDING/SLEEPING are CASes, so exactly one of
 * "reply delivered" and "caller gave up" happens.  A caller that gave up
 * forgets its record (the thread allocates a new one on its next call); the
 * worker frees an abandoned record once it has handled the call, or when it
 * drops it unhandled at exit.  A late reply therefore lands in a record that
 * only the worker still references, and is freed with it.
 *
 * Exit.  A process exits when an exit was requested (actor_exit, checked at
 * every message boundary) or when init fails.  gc_process_exit closes the
 * mailbox (later sends fail with -ESRCH; queued calls are answered -ESRCH),
 * runs terminate, drops timers and the name, publishes the reason with
 * life = DEAD (waking actor_wait), and sends the DOWN notices.
 */
#define _GNU_SOURCE
#include "alloc.h"
#include "process.h"
#include "park.h"

#include "atomic.h"
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum gc_call_state {
    GC_CALL_PENDING = 0,
    GC_CALL_SLEEPING = 1,
    GC_CALL_DONE = 2,
    GC_CALL_ABANDONED = 3,
};

typedef struct gc_cast {
    gc_msg_t hdr;
    size_t len;
    max_align_t data[];     /* payload: aligned for whatever the sender puts */
} gc_cast_t;

/* Keep a thread's call buffers after a call only up to this size. */
#define GC_CALL_KEEP_BYTES ((size_t)64 << 10)

static __thread actor_t *gc_tls_self;     /* process running on this thread */
static __thread gc_call_t *gc_tls_call;   /* this thread's call record */
static pthread_key_t gc_call_key;         /* frees the record at thread exit */
static pthread_once_t gc_call_once = PTHREAD_ONCE_INIT;
static uint64_t gc_monitor_next_ref = 1;   /* monitor refs, process-wide */

/* ------------------------------------------------------------------ */
/* Handles                                                              */

int
actor__valid(const actor_t *a)
{
    return a != NULL && a->magic == GC_ACTOR_MAGIC;
}

actor_t *
actor_retain(actor_t *a)
{
    if (a == NULL)
        return NULL;
    /* A new reference is taken from an existing one, so no ordering is
     * needed; the release in actor_release orders the frees. */
    ck_pr_inc_32(&a->refs);
    return a;
}

static void
gc_actor_free(actor_t *a)
{
    a->magic = GC_ACTOR_DEAD_MAGIC;
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->tlock);
    pthread_mutex_destroy(&a->run_lock);
    sem_destroy(&a->started);
    gc_aligned_free(a);
}

void
actor_release(actor_t *a)
{
    if (a == NULL)
        return;
    /* Release: every use of a by this holder happens before the decrement.
     * Pairs with the acquire fence taken by whoever drops the last one. */
    ck_pr_fence_release();
    if (gc_dec_32_is_zero(&a->refs)) {
        ck_pr_fence_acquire();
        gc_actor_free(a);
    }
}

actor_t *
actor_self(void)
{
    return gc_tls_self;
}

int
actor_is_alive(const actor_t *a)
{
    if (!actor__valid(a))
        return 0;
    return gc_load_32(&((actor_t *)a)->life) < GC_LIFE_EXITING;
}

size_t
actor_mailbox_depth(const actor_t *a)
{
    if (!actor__valid(a))
        return 0;
    return (size_t)gc_load_64(&((actor_t *)a)->mbox.depth);
}

/* ------------------------------------------------------------------ */
/* Call records                                                         */

static void
gc_call_free(void *p)
{
    gc_call_t *c = p;

    if (c == NULL)
        return;
    gc_free(c->req);
    gc_free(c->rep);
    gc_free(c);
}

static void
gc_call_key_init(void)
{
    (void)pthread_key_create(&gc_call_key, gc_call_free);
}

static gc_call_t *
gc_call_get(void)
{
    gc_call_t *c = gc_tls_call;

    if (c != NULL)
        return c;
    pthread_once(&gc_call_once, gc_call_key_init);
    c = gc_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (pthread_setspecific(gc_call_key, c) != 0) {
        gc_free(c);
        return NULL;
    }
    gc_tls_call = c;
    return c;
}

/* The thread gives its record up (abandoned to the worker). */
static void
gc_call_forget(void)
{
    gc_tls_call = NULL;
    (void)pthread_setspecific(gc_call_key, NULL);
}

static int
gc_buf_reserve(unsigned char **buf, size_t *cap, size_t len)
{
    unsigned char *p;
    size_t n;

    if (len <= *cap)
        return 0;
    n = *cap ? *cap : 64;
    while (n < len)
        n *= 2;
    p = gc_realloc(*buf, n);
    if (p == NULL)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static void
gc_buf_trim(unsigned char **buf, size_t *cap)
{
    if (*cap > GC_CALL_KEEP_BYTES) {
        gc_free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

/*
 * Worker side: publish the result of call c.  After this returns the worker
 * must not touch c (it is either the caller's again, or freed here).
 */
static void
gc_call_complete(gc_call_t *c, int status)
{
    uint32_t s;

    c->status = status;
    /* The reply and status are written before the state says DONE; pairs
     * with the ck_pr_fence_load the caller runs after it reads DONE. */
    ck_pr_fence_store();
    for (;;) {
        s = gc_load_32(&c->state);
        if (s == GC_CALL_ABANDONED) {
            /* The caller is gone and will never look at c again: the
             * record is ours to free (see the file comment), and a reply
             * that owns resources is disposed of first. */
            ck_pr_fence_acquire();
            if (c->handled && c->rep_dispose != NULL)
                c->rep_dispose(c->rep, c->rep_len);
            gc_call_free(c);
            return;
        }
        if (ck_pr_cas_32(&c->state, s, GC_CALL_DONE))
            break;
    }
    /* The caller may already be reading the reply, or even be gone;
     * gc_futex_wake does not touch the word (park.h). */
    if (s == GC_CALL_SLEEPING)
        gc_futex_wake(&c->state, 1);
}

static int64_t
gc_deadline_ns(int timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return gc_mono_ns() + (int64_t)timeout_ms * 1000000;
}

/* Remaining ns until deadline (-1: infinite, 0: passed). */
static int64_t
gc_remaining_ns(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - gc_mono_ns();
    return left > 0 ? left : 0;
}

/*
 * Caller side: wait for DONE until the deadline (gc_mono_ns clock, negative:
 * none).  Returns 0 (reply ready)
 * or -ETIMEDOUT (record abandoned to the worker).
 */
static int
gc_call_wait(gc_call_t *c, int64_t deadline)
{
    uint32_t s;

    if (gc_park_spin_begin()) {
        int i;

        for (i = 0; i < GC_PARK_SPINS; i++) {
            if (gc_load_32(&c->state) == GC_CALL_DONE)
                break;
            ck_pr_stall();
        }
        gc_park_spin_end();
    }
    for (;;) {
        int64_t left;

        s = gc_load_32(&c->state);
        if (s == GC_CALL_DONE)
            break;
        left = gc_remaining_ns(deadline);
        if (left == 0) {
            /* Give the record up unless the reply won the race. */
            if (ck_pr_cas_32(&c->state, s, GC_CALL_ABANDONED))
                return -ETIMEDOUT;
            continue;
        }
        if (s == GC_CALL_PENDING &&
            !ck_pr_cas_32(&c->state, GC_CALL_PENDING, GC_CALL_SLEEPING))
            continue;
        gc_futex_wait(&c->state, GC_CALL_SLEEPING, left);
    }
    /* Pairs with the ck_pr_fence_store in gc_call_complete. */
    ck_pr_fence_load();
    return 0;
}

/* Run the request's disposer, once (see actor_call_args_t). */
static void
gc_call_req_done(gc_call_t *c)
{
    void (*fn)(void *, size_t) = c->req_dispose;

    c->req_dispose = NULL;
    if (fn != NULL)
        fn(c->req, c->req_len);
}

/* Send this thread's record (request already in place) and wait. */
static int
gc_call_send(actor_t *a, const actor_call_args_t *x)
{
    gc_call_t *c = gc_tls_call;
    int64_t deadline = gc_deadline_ns(x->timeout_ms);
    int rc;

    c->rep_len = 0;
    c->status = 0;
    c->handled = 0;
    c->req_dispose = x->req_dispose;
    c->rep_dispose = x->rep_dispose;
    c->hdr.kind = GC_MSG_CALL;
    c->hdr.tag = x->tag;
    c->hdr.dispose = NULL;
    /* Plain store: gc_mbox_push's store fence publishes it with the rest. */
    gc_store_32(&c->state, GC_CALL_PENDING);

    /* Back-pressure: with a mailbox limit, wait for room within the
     * timeout; the record is not queued until there is room. */
    if (a->mbox.limit != 0)
        rc = gc_mbox_push_wait(&a->mbox, &c->hdr, deadline);
    else
        rc = gc_mbox_push(&a->mbox, &c->hdr, 0);
    if (rc != 0) {
        gc_call_req_done(c);   /* never queued: disposed of here */
        return rc;
    }
    rc = gc_call_wait(c, deadline);
    if (rc != 0) {
        gc_call_forget();
        return rc;
    }
    if (x->handled != NULL)
        *x->handled = c->handled;
    if (!c->handled) {
        /* Dropped unhandled at the worker's exit: no reply to hand over. */
        return -ESRCH;
    }
    if (x->rep_take != NULL) {
        /* Only a handled call's reply changes hands (the buffer would
         * otherwise be whatever an earlier call left in the record). */
        *x->rep_take = c->rep;
        c->rep = NULL;
        c->rep_cap = 0;
    } else if (x->rep_cap > 0 && c->rep_len > 0) {
        memcpy(x->rep, c->rep, c->rep_len < x->rep_cap ? c->rep_len : x->rep_cap);
    }
    if (x->rep_len != NULL)
        *x->rep_len = c->rep_len;
    gc_buf_trim(&c->rep, &c->rep_cap);
    return c->status;
}

static int
gc_call_check(actor_t *a)
{
    if (gc_tls_self == a)
        return -EDEADLK;
    if (gc_load_32(&a->life) >= GC_LIFE_EXITING)
        return -ESRCH;
    return 0;
}

void *
actor_call_buf(size_t len)
{
    gc_call_t *c;

    if (len > ACTOR_MSG_MAX || (c = gc_call_get()) == NULL ||
        gc_buf_reserve(&c->req, &c->req_cap, len ? len : 1) != 0)
        return NULL;
    return c->req;
}

void
actor_buf_free(void *p)
{
    gc_free(p);
}

int
actor_call_ex(actor_t *a, const actor_call_args_t *x)
{
    gc_call_t *c = NULL;
    int rc;

    if (x == NULL)
        return -EINVAL;
    if (x->rep_len != NULL)
        *x->rep_len = 0;
    if (x->rep_take != NULL)
        *x->rep_take = NULL;
    if (x->handled != NULL)
        *x->handled = 0;
    if (!actor__valid(a) || (x->req == NULL && x->req_len > 0) ||
        (x->rep == NULL && x->rep_cap > 0) || x->req_len > ACTOR_MSG_MAX)
        rc = -EINVAL;
    else
        rc = gc_call_check(a);
    if (rc == 0 && (c = gc_call_get()) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && x->req != c->req) {
        /* Copied into the record, unless it was built there in place. */
        if (gc_buf_reserve(&c->req, &c->req_cap, x->req_len ? x->req_len : 1) != 0)
            rc = -ENOMEM;
        else if (x->req_len > 0)
            memmove(c->req, x->req, x->req_len);   /* req may lie inside c->req */
    }
    if (rc != 0) {
        /* Never queued: the request's resources are disposed of here. */
        if (x->req_dispose != NULL)
            x->req_dispose((void *)x->req, x->req_len);
        return rc;
    }
    c->req_len = x->req_len;
    rc = gc_call_send(a, x);
    /* After a time-out the record was abandoned to the worker and this
     * thread has none.  A buffer built in place is kept (for a retry). */
    if (gc_tls_call != NULL && x->req != (const void *)gc_tls_call->req)
        gc_buf_trim(&gc_tls_call->req, &gc_tls_call->req_cap);
    return rc;
}

int
actor_call(actor_t *a, uint32_t tag, const void *req, size_t req_len, void *rep,
           size_t rep_cap, size_t *rep_len, int timeout_ms)
{
    actor_call_args_t x = { .tag = tag, .req = req, .req_len = req_len, .rep = rep,
                            .rep_cap = rep_cap, .rep_len = rep_len,
                            .timeout_ms = timeout_ms };

    return actor_call_ex(a, &x);
}

void *
actor_reply_buf(actor_reply_t *reply, size_t len)
{
    gc_call_t *c = (gc_call_t *)reply;

    if (c == NULL || len > ACTOR_MSG_MAX)
        return NULL;
    if (gc_buf_reserve(&c->rep, &c->rep_cap, len ? len : 1) != 0)
        return NULL;
    c->rep_len = len;
    return c->rep;
}

int
actor_reply_set(actor_reply_t *reply, const void *data, size_t len)
{
    void *p;

    if (reply == NULL || (data == NULL && len > 0) || len > ACTOR_MSG_MAX)
        return -EINVAL;
    p = actor_reply_buf(reply, len);
    if (p == NULL)
        return -ENOMEM;
    if (len > 0)
        memcpy(p, data, len);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Casts and internal messages                                          */

static void
gc_cast_dispose(gc_msg_t *m)
{
    gc_free(m);
}

static int
gc_send(actor_t *a, gc_msg_t *m, int bounded)
{
    if (gc_load_32(&a->life) >= GC_LIFE_EXITING)
        return -ESRCH;
    return gc_mbox_push(&a->mbox, m, bounded);
}

void *
actor_cast_buf(size_t len)
{
    gc_cast_t *m;

    if (len > ACTOR_MSG_MAX)
        return NULL;
    m = gc_malloc(sizeof(*m) + len);
    if (m == NULL)
        return NULL;
    m->hdr.kind = GC_MSG_CAST;
    m->hdr.tag = 0;
    m->hdr.dispose = gc_cast_dispose;
    m->len = len;
    return m->data;
}

static gc_cast_t *
gc_cast_of(void *buf)
{
    return (gc_cast_t *)(void *)((unsigned char *)buf - offsetof(gc_cast_t, data));
}

void
actor_cast_buf_free(void *buf)
{
    if (buf != NULL)
        gc_free(gc_cast_of(buf));
}

int
actor_cast_send(actor_t *a, uint32_t tag, void *buf)
{
    gc_cast_t *m;

    if (!actor__valid(a) || buf == NULL)
        return -EINVAL;
    m = gc_cast_of(buf);
    m->hdr.tag = tag;
    return gc_send(a, &m->hdr, 1);
}

int
actor_cast(actor_t *a, uint32_t tag, const void *data, size_t len)
{
    void *buf;
    int rc;

    if (!actor__valid(a) || (data == NULL && len > 0) || len > ACTOR_MSG_MAX)
        return -EINVAL;
    if (gc_load_32(&a->life) >= GC_LIFE_EXITING)
        return -ESRCH;
    buf = actor_cast_buf(len);
    if (buf == NULL)
        return -ENOMEM;
    if (len > 0)
        memcpy(buf, data, len);
    rc = actor_cast_send(a, tag, buf);
    if (rc != 0)
        actor_cast_buf_free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Timers                                                               */

int
actor_send_after(actor_t *a, uint64_t delay_ms, uint32_t tag, const void *data,
                 size_t len, uint64_t *ref)
{
    uint64_t now;

    if (ref != NULL)
        *ref = 0;
    if (!actor__valid(a))
        return -EINVAL;
    now = actor_clock_now(a->clock);
    return actor_send_at(a, delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms, tag,
                          data, len, ref);
}

int
actor_send_at(actor_t *a, uint64_t deadline_ms, uint32_t tag, const void *data,
               size_t len, uint64_t *ref)
{
    gc_timer_t *t;
    int rc = 0;

    if (ref != NULL)
        *ref = 0;
    if (!actor__valid(a) || (data == NULL && len > 0) || len > ACTOR_MSG_MAX)
        return -EINVAL;
    t = gc_malloc(sizeof(*t) + len);
    if (t == NULL)
        return -ENOMEM;
    t->deadline = deadline_ms;
    t->tag = tag;
    t->len = len;
    if (len > 0)
        memcpy(t->data, data, len);

    pthread_mutex_lock(&a->tlock);
    /* The exit path stores EXITING before it takes tlock to free the heap,
     * so a timer inserted here is either freed by it or never inserted. */
    if (gc_load_32(&a->life) >= GC_LIFE_EXITING) {
        rc = -ESRCH;
    } else {
        t->ref = ck_pr_faa_64(&a->next_ref, 1);
        rc = gc_timers_insert(&a->timers, t);
        gc_store_32(&a->ntimers, (uint32_t)a->timers.n);
    }
    if (rc == 0 && ref != NULL)
        *ref = t->ref;
    pthread_mutex_unlock(&a->tlock);
    if (rc != 0) {
        gc_free(t);
        return rc;
    }
    /* A new earliest deadline must shorten the worker's sleep. */
    if (gc_tls_self != a)
        gc_mbox_poke(&a->mbox, GC_ATTN_TICK);
    return 0;
}

int
actor_cancel_timer(actor_t *a, uint64_t ref)
{
    gc_timer_t *t;
    uint32_t life;

    if (!actor__valid(a))
        return -EINVAL;
    pthread_mutex_lock(&a->tlock);
    life = gc_load_32(&a->life);
    t = gc_timers_remove(&a->timers, ref);
    gc_store_32(&a->ntimers, (uint32_t)a->timers.n);
    pthread_mutex_unlock(&a->tlock);
    if (t != NULL) {
        gc_free(t);
        return 0;
    }
    return life >= GC_LIFE_EXITING ? -ESRCH : -ENOENT;
}

/* ------------------------------------------------------------------ */
/* Exit                                                                 */

static int
gc_exit_pending(actor_t *a, int *reason)
{
    if ((gc_load_32(&a->mbox.attn) & GC_ATTN_EXIT) == 0)
        return 0;
    /* The lock orders the reason written by actor_exit before this read. */
    pthread_mutex_lock(&a->lock);
    *reason = a->exit_req_reason;
    pthread_mutex_unlock(&a->lock);
    return 1;
}

int
actor_exit(actor_t *a, int reason)
{
    if (!actor__valid(a))
        return -EINVAL;
    pthread_mutex_lock(&a->lock);
    if (gc_load_32(&a->life) == GC_LIFE_DEAD) {
        pthread_mutex_unlock(&a->lock);
        return -ESRCH;
    }
    if (!a->exit_req || reason == ACTOR_KILLED) {
        a->exit_req = 1;
        a->exit_req_reason = reason;
    }
    pthread_mutex_unlock(&a->lock);
    gc_mbox_poke(&a->mbox, GC_ATTN_EXIT);
    return 0;
}

static void
gc_monitor_dispose(gc_msg_t *m)
{
    gc_monitor_t *mon = (gc_monitor_t *)m;

    actor_release(mon->who);
    gc_free(mon);
}

/* Send a DOWN (the monitor itself) to its watcher; consumes mon. */
static void
gc_monitor_fire(gc_monitor_t *mon, actor_t *target, int reason)
{
    actor_t *watcher = mon->watcher;

    mon->hdr.kind = GC_MSG_DOWN;
    mon->hdr.tag = 0;
    mon->hdr.dispose = gc_monitor_dispose;
    mon->who = actor_retain(target);
    mon->reason = reason;
    mon->watcher = NULL;
    if (gc_send(watcher, &mon->hdr, 0) != 0)
        gc_monitor_dispose(&mon->hdr);
    /* Once queued, the watcher's own exit drains the message, so our
     * reference to it is no longer needed. */
    actor_release(watcher);
}

/* Drop messages that will never be handled: calls get -ESRCH with
 * handled == 0 (their request disposed of); casts go to handle_drop first
 * when the behaviour has one (and init succeeded). */
static void
gc_drop_list(actor_t *a, gc_msg_t *m, int state_ok)
{
    while (m != NULL) {
        gc_msg_t *next = m->next;

        if (m->kind == GC_MSG_CALL) {
            gc_call_req_done((gc_call_t *)m);
            gc_call_complete((gc_call_t *)m, -ESRCH);
            m = next;
            continue;
        }
        if (m->kind == GC_MSG_CAST && state_ok && a->b->handle_drop != NULL) {
            gc_cast_t *cm = (gc_cast_t *)m;
            actor_msg_view_t v = { m->tag, cm->len ? (const void *)cm->data : NULL, cm->len };

            a->b->handle_drop(a->state, &v);
        }
        if (m->dispose != NULL)
            m->dispose(m);
        m = next;
    }
}

static void
gc_process_exit(actor_t *a, int reason, int run_terminate)
{
    gc_monitor_t *mons;

    /* No new sends from here on (they check life, then the closed head). */
    gc_store_32(&a->life, GC_LIFE_EXITING);
    gc_drop_list(a, gc_mbox_close(&a->mbox), run_terminate);
    if (run_terminate && a->b->terminate != NULL)
        a->b->terminate(a->state, reason);

    actor__clock_detach(a->clock, a);
    pthread_mutex_lock(&a->tlock);
    gc_timers_fini(&a->timers);
    gc_store_32(&a->ntimers, 0);
    pthread_mutex_unlock(&a->tlock);
    actor__registry_drop(a);

    pthread_mutex_lock(&a->lock);
    a->exit_reason = reason;
    mons = a->monitors;
    a->monitors = NULL;
    /* exit_reason before life = DEAD; pairs with the ck_pr_fence_load in
     * actor_wait after it reads DEAD. */
    ck_pr_fence_store();
    gc_store_32(&a->life, GC_LIFE_DEAD);
    pthread_mutex_unlock(&a->lock);
    gc_futex_wake(&a->life, INT_MAX);

    while (mons != NULL) {
        gc_monitor_t *next = mons->mon_next;

        gc_monitor_fire(mons, a, reason);
        mons = next;
    }
}

int
actor_wait(actor_t *a, int timeout_ms, int *reason)
{
    int64_t deadline = gc_deadline_ns(timeout_ms);
    uint32_t s;

    if (!actor__valid(a))
        return -EINVAL;
    if (gc_tls_self == a)
        return -EDEADLK;
    while ((s = gc_load_32(&a->life)) != GC_LIFE_DEAD) {
        int64_t left = gc_remaining_ns(deadline);

        if (left == 0)
            return -ETIMEDOUT;
        gc_futex_wait(&a->life, s, left);
    }
    /* Pairs with the fence before life = DEAD in gc_process_exit. */
    ck_pr_fence_load();
    if (reason != NULL)
        *reason = a->exit_reason;
    return 0;
}

int
actor_stop(actor_t *a, int reason, int timeout_ms)
{
    int rc = actor_exit(a, reason);

    if (rc != 0 && rc != -ESRCH)
        return rc;
    return actor_wait(a, timeout_ms, NULL);
}

/* ------------------------------------------------------------------ */
/* Monitors                                                             */

int
actor_monitor(actor_t *target, actor_t *watcher, uint64_t *ref)
{
    gc_monitor_t *mon;
    int dead;

    if (ref != NULL)
        *ref = 0;
    if (!actor__valid(target) || !actor__valid(watcher))
        return -EINVAL;
    if (gc_load_32(&watcher->life) >= GC_LIFE_EXITING)
        return -ESRCH;
    mon = gc_calloc(1, sizeof(*mon));
    if (mon == NULL)
        return -ENOMEM;
    /* Global, so a watcher's refs are unique across all its targets. */
    mon->ref = ck_pr_faa_64(&gc_monitor_next_ref, 1);
    mon->watcher = actor_retain(watcher);
    if (ref != NULL)
        *ref = mon->ref;

    pthread_mutex_lock(&target->lock);
    dead = gc_load_32(&target->life) == GC_LIFE_DEAD;
    if (!dead) {
        mon->mon_next = target->monitors;
        target->monitors = mon;
    }
    pthread_mutex_unlock(&target->lock);
    if (dead)
        gc_monitor_fire(mon, target, target->exit_reason);
    return 0;
}

int
actor_demonitor(actor_t *target, uint64_t ref)
{
    gc_monitor_t **pp, *mon = NULL;

    if (!actor__valid(target))
        return -EINVAL;
    pthread_mutex_lock(&target->lock);
    for (pp = &target->monitors; *pp != NULL; pp = &(*pp)->mon_next) {
        if ((*pp)->ref == ref) {
            mon = *pp;
            *pp = mon->mon_next;
            break;
        }
    }
    pthread_mutex_unlock(&target->lock);
    if (mon == NULL)
        return -ENOENT;
    actor_release(mon->watcher);
    gc_free(mon);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The worker                                                           */

static void
gc_dispatch(actor_t *a, gc_msg_t *m)
{
    const actor_behaviour_t *b = a->b;

    switch (m->kind) {
    case GC_MSG_CALL: {
        gc_call_t *c = (gc_call_t *)m;
        actor_msg_view_t v = { m->tag, c->req_len ? c->req : NULL, c->req_len };
        int st;

        c->rep_len = 0;
        c->handled = 1;
        if (b->handle_call != NULL)
            st = b->handle_call(a->state, &v, (actor_reply_t *)c);
        else
            st = -ENOTSUP;
        gc_call_req_done(c);
        gc_call_complete(c, st);
        break;
    }
    case GC_MSG_CAST: {
        gc_cast_t *c = (gc_cast_t *)m;
        actor_msg_view_t v = { m->tag, c->len ? c->data : NULL, c->len };

        if (b->handle_cast != NULL)
            b->handle_cast(a->state, &v);
        m->dispose(m);
        break;
    }
    case GC_MSG_DOWN: {
        gc_monitor_t *mon = (gc_monitor_t *)m;
        actor_info_t info;

        memset(&info, 0, sizeof(info));
        info.kind = ACTOR_INFO_DOWN;
        info.ref = mon->ref;
        info.who = mon->who;
        info.reason = mon->reason;
        if (b->handle_info != NULL)
            b->handle_info(a->state, &info);
        m->dispose(m);
        break;
    }
    default:
        if (m->dispose != NULL)
            m->dispose(m);
        break;
    }
}

/* Fire due timers; returns 1 if an exit became pending meanwhile. */
static int
gc_fire_timers(actor_t *a, int *reason)
{
    uint64_t now;
    gc_timer_t *t;

    /* Clear TICK before reading the clock: an advance after this read sets
     * it again and the park below returns at once. */
    ck_pr_and_32(&a->mbox.attn, ~GC_ATTN_TICK);
    /* A timer set after this load pokes TICK after its store of ntimers,
     * so the park below returns and we come back here. */
    if (gc_load_32(&a->ntimers) == 0)
        return gc_exit_pending(a, reason);
    now = actor_clock_now(a->clock);
    for (;;) {
        if (gc_exit_pending(a, reason))
            return 1;
        pthread_mutex_lock(&a->tlock);
        t = gc_timers_pop_due(&a->timers, now);
        gc_store_32(&a->ntimers, (uint32_t)a->timers.n);
        pthread_mutex_unlock(&a->tlock);
        if (t == NULL)
            return 0;
        if (a->b->handle_info != NULL) {
            actor_info_t info;

            memset(&info, 0, sizeof(info));
            info.kind = ACTOR_INFO_TIMER;
            info.ref = t->ref;
            info.msg.tag = t->tag;
            info.msg.data = t->len ? t->data : NULL;
            info.msg.len = t->len;
            a->b->handle_info(a->state, &info);
        }
        gc_free(t);
    }
}

/* How long the worker may sleep: until its next timer, if any. */
static int64_t
gc_sleep_ns(actor_t *a)
{
    gc_timer_t *t;
    uint64_t deadline, now;
    int has;

    if (gc_load_32(&a->ntimers) == 0)
        return -1;   /* see gc_fire_timers */
    pthread_mutex_lock(&a->tlock);
    t = gc_timers_peek(&a->timers);
    has = t != NULL;
    deadline = has ? t->deadline : 0;
    pthread_mutex_unlock(&a->tlock);
    if (!has || actor__clock_is_manual(a->clock))
        return -1;  /* a manual clock wakes us when it moves */
    now = actor_clock_now(a->clock);
    if (deadline <= now)
        return 0;
    if (deadline - now > (uint64_t)INT64_MAX / 1000000)
        return -1;
    return (int64_t)(deadline - now) * 1000000;
}

static int
gc_worker_loop(actor_t *a)
{
    int reason = ACTOR_NORMAL;

    for (;;) {
        gc_msg_t *m = gc_mbox_take_all(&a->mbox);
        size_t n = 0;
        int64_t sleep_ns;

        while (m != NULL) {
            gc_msg_t *next = m->next;

            if (gc_exit_pending(a, &reason)) {
                gc_drop_list(a, m, 1);
                return reason;
            }
            gc_dispatch(a, m);
            n++;
            m = next;
        }
        /* The batch is done: a module that defers work across messages
         * (the Redis backend's pipeline) finishes it before timers fire
         * and before the worker parks. */
        if (n > 0 && a->b->handle_idle != NULL)
            a->b->handle_idle(a->state);
        if (gc_fire_timers(a, &reason) || gc_exit_pending(a, &reason))
            return reason;
        if (n > 0)
            continue;  /* look for more work before parking */
        sleep_ns = gc_sleep_ns(a);
        if (sleep_ns != 0) {
            /* Idle: lend the process to a thread that wants to run in its
             * place (actor_try_inline) while it is parked; take it back
             * before touching the state again.  The mutex orders whatever
             * the inline caller did to the state before our next access. */
            pthread_mutex_unlock(&a->run_lock);
            gc_mbox_park(&a->mbox, sleep_ns);
            pthread_mutex_lock(&a->run_lock);
        }
    }
}

static void *
gc_worker_main(void *arg)
{
    actor_t *a = arg;
    int rc = 0;

    gc_tls_self = a;
    /* Held whenever the thread is not parked (see gc_worker_loop). */
    pthread_mutex_lock(&a->run_lock);
    if (a->b->init != NULL)
        rc = a->b->init(a, a->init_arg, &a->state);
    if (rc != 0) {
        /* Release the name and notify before actor_start returns, so the
         * caller can start a replacement under the same name at once. */
        a->init_rc = rc == ACTOR_IGNORE ? ACTOR_IGNORE : (rc < 0 ? rc : -EPROTO);
        gc_process_exit(a, rc == ACTOR_IGNORE ? ACTOR_NORMAL : a->init_rc, 0);
        sem_post(&a->started);
    } else {
        a->init_rc = 0;
        gc_store_32(&a->life, GC_LIFE_RUNNING);
        /* sem_post/sem_wait order init_rc and the state before the
         * starter reads them. */
        sem_post(&a->started);
        gc_process_exit(a, gc_worker_loop(a), 1);
    }
    pthread_mutex_unlock(&a->run_lock);
    gc_tls_self = NULL;
    actor_release(a);  /* the thread's reference */
    return NULL;
}

int
actor_try_inline(actor_t *a, int (*fn)(void *state, void *arg), void *arg, int *result)
{
    int i, rc;

    if (result != NULL)
        *result = 0;
    if (!actor__valid(a) || fn == NULL)
        return -EINVAL;
    if (gc_tls_self == a)
        return -EDEADLK;
    /* A short bounded spin: another inline caller holds it for a few
     * hundred ns at most; a busy process holds it for its whole batch, and
     * then the caller is better off sending a message. */
    for (i = 0; (rc = pthread_mutex_trylock(&a->run_lock)) != 0; i++) {
        if (i >= 64 || gc_load_32(&a->life) >= GC_LIFE_EXITING)
            return gc_load_32(&a->life) >= GC_LIFE_EXITING ? -ESRCH : -EAGAIN;
        ck_pr_stall();
    }
    /* Under run_lock the process's thread is parked (or not started, or
     * gone).  Idle means: running, nothing queued, no exit asked for.  Then
     * every message this thread sent before has been handled (it is not in
     * the mailbox and no batch is in progress), so running fn now keeps
     * this thread's order.  The loads pair with the producers' CAS (a
     * message queued after them is handled after fn, by the process). */
    if (gc_load_32(&a->life) != GC_LIFE_RUNNING) {
        rc = gc_load_32(&a->life) >= GC_LIFE_EXITING ? -ESRCH : -EAGAIN;
    } else if (gc_load_ptr(&a->mbox.head) != NULL ||
               (gc_load_32(&a->mbox.attn) & GC_ATTN_EXIT) != 0) {
        rc = -EAGAIN;
    } else {
        int r = fn(a->state, arg);

        if (result != NULL)
            *result = r;
        rc = 0;
    }
    pthread_mutex_unlock(&a->run_lock);
    return rc;
}

int
actor_start(const actor_behaviour_t *b, void *arg, const actor_opts_t *opts,
            actor_t **out)
{
    static const actor_opts_t defaults;
    pthread_attr_t attr;
    actor_t *a;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (b == NULL)
        return -EINVAL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->name != NULL && actor__name_check(opts->name) != 0)
        return -EINVAL;
    if (opts->clock != NULL && !actor__clock_is_manual(opts->clock))
        return -EINVAL;

    /* The mailbox's words sit on their own cache lines (CK_CC_CACHELINE):
     * the struct needs that alignment, which malloc does not give. */
    a = gc_aligned_calloc(_Alignof(actor_t), sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->magic = GC_ACTOR_MAGIC;
    a->refs = 2; /* the caller's and the thread's */
    a->life = GC_LIFE_STARTING;
    a->next_ref = 1;
    a->b = b;
    a->init_arg = arg;
    a->clock = opts->clock;
    gc_mbox_init(&a->mbox, opts->mailbox_limit);
    gc_timers_init(&a->timers);
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->tlock, NULL);
    pthread_mutex_init(&a->run_lock, NULL);
    sem_init(&a->started, 0, 0);

    if (opts->name != NULL && (rc = actor__registry_add(a, opts->name)) != 0)
        goto fail;
    if ((rc = actor__clock_attach(a->clock, a)) != 0)
        goto fail_name;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&a->thread, &attr, gc_worker_main, a);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        rc = rc == ENOMEM ? -ENOMEM : -EAGAIN;
        actor__clock_detach(a->clock, a);
        goto fail_name;
    }
    while (sem_wait(&a->started) != 0)
        ;  /* EINTR */
    rc = a->init_rc;
    if (rc == 0) {
        *out = a;
        return 0;
    }
    actor_release(a);
    return rc == ACTOR_IGNORE ? 0 : rc;

fail_name:
    actor__registry_drop(a);
fail:
    gc_actor_free(a);
    return rc;
}
