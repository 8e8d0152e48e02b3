/*
 * Supervisors: OTP's supervisor on top of the process core (actor.h).
 *
 * A supervisor is an ordinary process.  Its state (struct sup) lives on its
 * own thread and is touched only there, by its callbacks: init starts the
 * children, handle_info receives their DOWN notices and restarts them,
 * handle_call serves the administration API, handle_cast carries the
 * "try this restart again" messages it sends to itself, and terminate stops
 * the children.  Nothing in this file is shared between threads: there is
 * no atomic and no mutex.
 *
 * Children.  A child is a struct sup_child in a doubly linked list kept in
 * start order (stopping walks it backwards).  A running child holds a
 * reference to its process and a monitor on it; the monitor's DOWN is
 * matched on (process, monitor ref), so a notice about an incarnation the
 * supervisor has already replaced or stopped itself is recognised as stale
 * and dropped: the DOWN message holds its own reference to the old process,
 * whose address therefore cannot be reused while the notice is queued.
 *
 * Restarts follow OTP's supervisor.erl: every restart (including each retry
 * of a restart whose start function failed) is first counted against the
 * intensity; over the limit the supervisor asks itself to exit with
 * ACTOR_SHUTDOWN, and terminate stops the remaining children in reverse
 * order.  A failed restart marks the child "restarting" and sends the
 * supervisor a cast to try again, so that requests queued meanwhile (a
 * terminate_child, a shutdown) are served between attempts instead of the
 * supervisor spinning inside one callback.
 *
 * Requests.  An API call is an actor_call_ex like any other (the one request
 * protocol of actor.h): the request and the reply are a sup_box_t copied by
 * value.  A request that owns a reference (the target of
 * sup_terminate_child_handle) hands it to the call with a request disposer,
 * which the process core runs exactly once, however the call ends; a reply
 * that owns references (a child handle, a which_children array) has a reply
 * disposer, which the core runs when the caller timed out and will never
 * read it.  So nothing is shared between the caller and the supervisor, and
 * nothing leaks when a call times out or the supervisor exits with it
 * queued.
 *
 * Memory comes from the library's allocator hook (alloc.h), like every other
 * allocation of gencache.
 */
#define _GNU_SOURCE
#include <gencache/sup.h>

#include "alloc.h"
#include "errors.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUP_MAGIC 0x73757076u      /* "supv" */
#define SUP_BOX_MAGIC 0x73626f78u  /* "sbox" */
#define SUP_DEAD_MAGIC 0xdead5b0au

/* Call tags: "SUP" in the high bytes keeps them apart from user tags. */
enum sup_op {
    SUP_OP_START_CHILD = 0x53555001u,
    SUP_OP_START_CHILD_ARG,
    SUP_OP_TERMINATE_ID,
    SUP_OP_TERMINATE_HANDLE,
    SUP_OP_RESTART,
    SUP_OP_DELETE,
    SUP_OP_WHICH,
    SUP_OP_COUNT,
};

/* Cast tag of the retry message a supervisor sends itself. */
#define SUP_TAG_RETRY 0x53555101u

/* Default shutdown of a worker (OTP: 5000 ms). */
#define SUP_WORKER_SHUTDOWN_MS 5000

typedef struct sup_child {
    struct sup_child *prev, *next; /* start order */
    uint64_t serial;               /* names this record in retry messages */
    char id[SUP_ID_MAX + 1];
    sup_start_fn start;
    void *arg;
    sup_restart_t restart;
    int shutdown;                  /* BRUTAL_KILL, INFINITY or ms > 0 */
    sup_child_type_t type;
    actor_t *proc;                 /* our reference while running, else NULL */
    uint64_t mon_ref;              /* our monitor on proc */
    int restarting;                /* a retry message is queued for it */
    int stop_pending;              /* sup_stop_set: still waited for */
} sup_child_t;

typedef struct sup {
    uint32_t magic;
    actor_t *self;                 /* borrowed for the process lifetime */
    sup_strategy_t strategy;
    int intensity;
    uint64_t period_ms;
    uint64_t *restarts;            /* restart times, oldest first */
    size_t nrestarts, caprestarts;
    actor_clock_t *clock;
    sup_log_fn log;
    void *log_ctx;
    int kill_wait_ms;
    char name[ACTOR_NAME_MAX + 1];
    int has_name;
    sup_child_t *head, *tail;
    size_t nchildren;
    sup_child_t tmpl;              /* simple_one_for_one: the template */
    uint64_t next_serial;
} sup_t;

/* What sup_start hands to init (valid while actor_start blocks). */
typedef struct sup_init_args {
    const sup_flags_t *flags;
    const sup_child_spec_t *children;
    size_t n;
    const sup_opts_t *opts;
    char *failed_id;
} sup_init_args_t;

/*
 * A request and its reply (see the file comment), copied by value both
 * ways.  spec.id points into the copy's own id (re-pointed by the handler).
 */
typedef struct sup_box {
    uint32_t magic;             /* SUP_BOX_MAGIC: from a supervisor's API */
    /* Request. */
    sup_child_spec_t spec;
    char id[SUP_ID_MAX + 1];
    void *arg;
    actor_t *target;            /* a reference owned by the request
                                   (released by sup_req_dispose) */
    /* Reply: references owned by the reply until the caller takes them
     * (released by sup_rep_dispose when nobody will). */
    actor_t *child;
    sup_child_info_t *infos;
    size_t ninfos;
    sup_counts_t counts;
} sup_box_t;

/* ------------------------------------------------------------------ */
/* Validation and small helpers                                         */

static int
sup_id_check(const char *id)
{
    size_t len;

    if (id == NULL)
        return -EINVAL;
    len = strnlen(id, SUP_ID_MAX + 1);
    return len == 0 || len > SUP_ID_MAX ? -EINVAL : 0;
}

static int
sup_spec_check(const sup_child_spec_t *sp)
{
    if (sp == NULL || sup_id_check(sp->id) != 0 || sp->start == NULL)
        return -EINVAL;
    if ((unsigned)sp->restart > SUP_TEMPORARY || (unsigned)sp->type > SUP_SUPERVISOR)
        return -EINVAL;
    if (sp->shutdown < SUP_SHUTDOWN_BRUTAL_KILL)
        return -EINVAL;
    return 0;
}

static int
sup_flags_check(const sup_flags_t *f)
{
    if ((unsigned)f->strategy > SUP_SIMPLE_ONE_FOR_ONE || f->intensity < 0 ||
        f->period_ms == 0)
        return -EINVAL;
    return 0;
}

/* Copy a (checked) spec into a child record and resolve its shutdown. */
static void
sup_child_fill(sup_child_t *c, const sup_child_spec_t *sp)
{
    memcpy(c->id, sp->id, strlen(sp->id) + 1);
    c->start = sp->start;
    c->arg = sp->arg;
    c->restart = sp->restart;
    c->type = sp->type;
    c->shutdown = sp->shutdown;
    if (c->shutdown == SUP_SHUTDOWN_DEFAULT)
        c->shutdown = c->type == SUP_SUPERVISOR ? SUP_SHUTDOWN_INFINITY
                                                : SUP_WORKER_SHUTDOWN_MS;
}

/* Milliseconds left until deadline on the monotonic clock, for actor_wait. */
static int
sup_remaining_ms(uint64_t deadline)
{
    uint64_t now = actor_clock_now(NULL);

    if (now >= deadline)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

static void
sup_report(sup_t *s, sup_report_kind_t kind, const sup_child_t *c, actor_t *proc,
           int reason)
{
    sup_report_t r;

    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.sup = s->self;
    r.sup_name = s->has_name ? s->name : NULL;
    r.reason = reason;
    r.child = proc;
    if (c != NULL) {
        r.child_id = c->id;
        r.restart = c->restart;
        r.type = c->type;
    }
    s->log(s->log_ctx, &r);
}

/* ------------------------------------------------------------------ */
/* The child list                                                       */

static sup_child_t *
sup_child_new(sup_t *s, const sup_child_spec_t *sp)
{
    sup_child_t *c = gc_calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    sup_child_fill(c, sp);
    c->serial = ++s->next_serial;
    return c;
}

static void
sup_child_link(sup_t *s, sup_child_t *c)
{
    c->next = NULL;
    c->prev = s->tail;
    if (s->tail != NULL)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->nchildren++;
}

/* Unlink and free a child that has no process. */
static void
sup_child_remove(sup_t *s, sup_child_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    s->nchildren--;
    gc_free(c);
}

static sup_child_t *
sup_find_id(sup_t *s, const char *id)
{
    sup_child_t *c;

    for (c = s->head; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static sup_child_t *
sup_find_proc(sup_t *s, const actor_t *p)
{
    sup_child_t *c;

    if (p == NULL)
        return NULL;
    for (c = s->head; c != NULL; c = c->next)
        if (c->proc == p)
            return c;
    return NULL;
}

/* The child a DOWN notice is about: matched on the process and on our
 * monitor's ref, so a start function that returns a process some other
 * child already holds cannot hide a notice. */
static sup_child_t *
sup_find_down(sup_t *s, const actor_t *p, uint64_t ref)
{
    sup_child_t *c;

    for (c = s->head; c != NULL; c = c->next)
        if (c->proc == p && c->mon_ref == ref)
            return c;
    return NULL;
}

static sup_child_t *
sup_find_serial(sup_t *s, uint64_t serial)
{
    sup_child_t *c;

    for (c = s->head; c != NULL; c = c->next)
        if (c->serial == serial)
            return c;
    return NULL;
}

/*
 * OTP's del_child for a child that is not running: a temporary child, and
 * any child of a simple_one_for_one supervisor, is forgotten; any other
 * keeps its spec, not running.
 */
static void
sup_del_child(sup_t *s, sup_child_t *c)
{
    c->restarting = 0;
    if (c->restart == SUP_TEMPORARY || s->strategy == SUP_SIMPLE_ONE_FOR_ONE)
        sup_child_remove(s, c);
}

/* ------------------------------------------------------------------ */
/* Starting and stopping children                                       */

/*
 * Run c's start function and supervise what it returns.  Returns 0 with
 * c->proc set (reported as started), 0 with c->proc NULL (ignored), or the
 * start error (reported; c->proc NULL).
 */
static int
sup_child_start(sup_t *s, sup_child_t *c)
{
    actor_t *p = NULL;
    uint64_t ref = 0;
    int rc;

    rc = c->start(c->arg, &p);
    if (rc > 0)
        rc = -EPROTO;
    if (rc < 0) {
        sup_report(s, SUP_REPORT_CHILD_START_FAILED, c, NULL, rc);
        return rc;
    }
    if (p == NULL)
        return 0;
    rc = actor_monitor(p, s->self, &ref);
    if (rc != 0) {
        /* A child we cannot watch must not run unsupervised. */
        (void)actor_exit(p, ACTOR_KILLED);
        (void)actor_wait(p, s->kill_wait_ms, NULL);
        actor_release(p);
        sup_report(s, SUP_REPORT_CHILD_START_FAILED, c, NULL, rc);
        return rc;
    }
    c->proc = p;
    c->mon_ref = ref;
    c->restarting = 0;
    sup_report(s, SUP_REPORT_CHILD_STARTED, c, p, 0);
    return 0;
}

/* c has stopped with reason (or is abandoned): report and drop it. */
static void
sup_child_stopped(sup_t *s, sup_child_t *c, int reason, int abandoned)
{
    c->stop_pending = 0;
    sup_report(s, abandoned ? SUP_REPORT_CHILD_ABANDONED : SUP_REPORT_CHILD_STOPPED, c,
               c->proc, abandoned ? ACTOR_KILLED : reason);
    actor_release(c->proc);
    c->proc = NULL;
}

/*
 * Stop the running children v[0..n) together: ask all of them to exit first
 * (ACTOR_KILLED for brutal kill, else ACTOR_SHUTDOWN), then wait for each
 * until its own deadline (its shutdown timeout from the common start; none
 * for infinity; kill_wait_ms for brutal kill), then kill those still
 * running and wait kill_wait_ms more for all of them together.  A child that
 * is still running after that is stuck in a callback that ignores exit
 * requests: it is reported abandoned and its reference dropped; the
 * supervisor never touches it again.  With n == 1 this is OTP's shutdown/2;
 * with every child of a simple_one_for_one supervisor it is OTP's
 * terminate_dynamic_children.  Blocks for at most the largest finite
 * shutdown plus kill_wait_ms (without limit if one is infinity).
 */
static void
sup_stop_set(sup_t *s, sup_child_t **v, size_t n)
{
    uint64_t t0 = actor_clock_now(NULL), t1;
    size_t i, pending = 0;
    int reason, rc;

    for (i = 0; i < n; i++) {
        sup_child_t *c = v[i];

        c->stop_pending = 1;
        (void)actor_demonitor(c->proc, c->mon_ref);
        (void)actor_exit(c->proc, c->shutdown == SUP_SHUTDOWN_BRUTAL_KILL
                                      ? ACTOR_KILLED : ACTOR_SHUTDOWN);
    }
    for (i = 0; i < n; i++) {
        sup_child_t *c = v[i];
        int timeout;

        if (c->shutdown == SUP_SHUTDOWN_INFINITY)
            timeout = ACTOR_INFINITY;
        else if (c->shutdown == SUP_SHUTDOWN_BRUTAL_KILL)
            timeout = sup_remaining_ms(t0 + (uint64_t)s->kill_wait_ms);
        else
            timeout = sup_remaining_ms(t0 + (uint64_t)c->shutdown);
        reason = ACTOR_NORMAL;
        rc = actor_wait(c->proc, timeout, &reason);
        if (rc == 0)
            sup_child_stopped(s, c, reason, 0);
        else if (c->shutdown == SUP_SHUTDOWN_BRUTAL_KILL)
            sup_child_stopped(s, c, ACTOR_KILLED, 1);
        else
            pending++;
    }
    if (pending == 0)
        return;
    for (i = 0; i < n; i++)
        if (v[i]->stop_pending)
            (void)actor_exit(v[i]->proc, ACTOR_KILLED);
    t1 = actor_clock_now(NULL) + (uint64_t)s->kill_wait_ms;
    for (i = 0; i < n; i++) {
        sup_child_t *c = v[i];

        if (!c->stop_pending)
            continue;
        reason = ACTOR_NORMAL;
        rc = actor_wait(c->proc, sup_remaining_ms(t1), &reason);
        sup_child_stopped(s, c, reason, rc != 0);
    }
}

/* Stop one child if it runs, honouring its shutdown setting. */
static void
sup_stop_child(sup_t *s, sup_child_t *c)
{
    c->restarting = 0;
    if (c->proc != NULL)
        sup_stop_set(s, &c, 1);
}

/*
 * OTP's terminate_children over the children after `after` (NULL: all),
 * newest first, except `skip`: each is stopped in turn; temporary ones are
 * forgotten, the others kept, not running.
 */
static void
sup_stop_after(sup_t *s, sup_child_t *after, sup_child_t *skip)
{
    sup_child_t *c = s->tail, *prev;

    while (c != NULL && c != after) {
        prev = c->prev;
        if (c != skip) {
            sup_stop_child(s, c);
            if (c->restart == SUP_TEMPORARY)
                sup_child_remove(s, c);
        }
        c = prev;
    }
}

/*
 * Stop every child: in reverse start order, one at a time, or for
 * simple_one_for_one all together (falling back to one at a time when the
 * array cannot be allocated).
 */
static void
sup_stop_all(sup_t *s)
{
    sup_child_t **v = NULL, *c;
    size_t n = 0;

    if (s->strategy == SUP_SIMPLE_ONE_FOR_ONE && s->nchildren > 1)
        v = gc_malloc(s->nchildren * sizeof(*v));
    if (v != NULL) {
        for (c = s->tail; c != NULL; c = c->prev)
            if (c->proc != NULL)
                v[n++] = c;
        sup_stop_set(s, v, n);
        gc_free(v);
        return;
    }
    for (c = s->tail; c != NULL; c = c->prev)
        sup_stop_child(s, c);
}

/* Start, in order, every child from `first` on that is not running.
 * Returns the child whose start failed, or NULL. */
static sup_child_t *
sup_start_from(sup_t *s, sup_child_t *first)
{
    sup_child_t *c;

    for (c = first; c != NULL; c = c->next) {
        if (c->proc != NULL)
            continue;
        if (sup_child_start(s, c) < 0)
            return c;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Restarts                                                             */

/*
 * Count a restart now, on the supervisor's clock.  Returns 1 when that makes
 * more than `intensity` restarts within the last period_ms (OTP keeps a
 * restart while now - then <= period), else 0.  Costs O(restarts kept),
 * which is at most intensity + 1.  If the history cannot grow (no memory)
 * the restart is refused as if over the limit: a supervisor that cannot
 * count must not restart without bound.
 */
static int
sup_add_restart(sup_t *s)
{
    uint64_t now = actor_clock_now(s->clock);
    size_t old = 0;

    while (old < s->nrestarts && s->restarts[old] <= now &&
           now - s->restarts[old] > s->period_ms)
        old++;
    if (old > 0) {
        memmove(s->restarts, s->restarts + old,
                (s->nrestarts - old) * sizeof(*s->restarts));
        s->nrestarts -= old;
    }
    if (s->nrestarts == s->caprestarts) {
        size_t cap = s->caprestarts ? s->caprestarts * 2 : 4;
        uint64_t *p = gc_realloc(s->restarts, cap * sizeof(*p));

        if (p == NULL)
            return 1;
        s->restarts = p;
        s->caprestarts = cap;
    }
    s->restarts[s->nrestarts++] = now;
    return s->nrestarts > (size_t)s->intensity;
}

static void sup_restart(sup_t *s, sup_child_t *c);

/* Too many restarts (or a retry that cannot be queued): give up, as OTP
 * does, with reason shutdown; terminate stops the other children. */
static void
sup_give_up(sup_t *s, sup_child_t *c, int reason)
{
    sup_report(s, SUP_REPORT_MAX_INTENSITY, c, NULL, reason);
    sup_del_child(s, c);
    (void)actor_exit(s->self, ACTOR_SHUTDOWN);
}

/* c failed to restart: mark it and queue another attempt behind whatever
 * is already in the mailbox. */
static void
sup_try_again(sup_t *s, sup_child_t *c)
{
    int rc;

    c->restarting = 1;
    rc = actor_cast(s->self, SUP_TAG_RETRY, &c->serial, sizeof(c->serial));
    if (rc != 0)
        sup_give_up(s, c, rc);
}

/* OTP's restart/2: c (not running) must be restarted under the strategy. */
static void
sup_restart(sup_t *s, sup_child_t *c)
{
    sup_child_t *failed = NULL;

    if (sup_add_restart(s)) {
        sup_give_up(s, c, 0);
        return;
    }
    sup_report(s, SUP_REPORT_CHILD_RESTARTING, c, NULL, 0);
    switch (s->strategy) {
    case SUP_ONE_FOR_ONE:
    case SUP_SIMPLE_ONE_FOR_ONE:
        if (sup_child_start(s, c) < 0)
            failed = c;
        else if (c->proc == NULL)
            sup_del_child(s, c);  /* ignored */
        break;
    case SUP_ONE_FOR_ALL:
        sup_stop_after(s, NULL, c);
        failed = sup_start_from(s, s->head);
        break;
    case SUP_REST_FOR_ONE:
        sup_stop_after(s, c, NULL);
        failed = sup_start_from(s, c);
        break;
    }
    if (failed != NULL)
        sup_try_again(s, failed);
}

/* ------------------------------------------------------------------ */
/* Behaviour callbacks                                                  */

static void
sup_free(sup_t *s)
{
    sup_child_t *c = s->head, *next;

    while (c != NULL) {
        next = c->next;
        actor_release(c->proc);
        gc_free(c);
        c = next;
    }
    gc_free(s->restarts);
    s->magic = SUP_DEAD_MAGIC;
    gc_free(s);
}

static int
sup_init(actor_t *self, void *arg, void **state)
{
    const sup_init_args_t *ia = arg;
    sup_child_t *c, *next;
    size_t i;
    int rc;
    sup_t *s = gc_calloc(1, sizeof(*s));

    if (s == NULL)
        return -ENOMEM;
    s->magic = SUP_MAGIC;
    s->self = self;
    s->strategy = ia->flags->strategy;
    s->intensity = ia->flags->intensity;
    s->period_ms = ia->flags->period_ms;
    s->clock = ia->opts->clock;
    s->log = ia->opts->log != NULL ? ia->opts->log : sup_log_stderr;
    s->log_ctx = ia->opts->log_ctx;
    s->kill_wait_ms = ia->opts->kill_wait_ms > 0 ? ia->opts->kill_wait_ms
                                                 : SUP_KILL_WAIT_DEFAULT_MS;
    s->has_name = actor_name(self, s->name, sizeof(s->name)) == 0;

    if (s->strategy == SUP_SIMPLE_ONE_FOR_ONE) {
        sup_child_fill(&s->tmpl, &ia->children[0]);
        *state = s;
        return 0;
    }
    for (i = 0; i < ia->n; i++) {
        c = sup_child_new(s, &ia->children[i]);
        if (c == NULL) {
            sup_free(s);
            return -ENOMEM;
        }
        sup_child_link(s, c);
    }
    for (c = s->head; c != NULL; c = next) {
        next = c->next;
        rc = sup_child_start(s, c);
        if (rc < 0) {
            if (ia->failed_id != NULL)
                memcpy(ia->failed_id, c->id, strlen(c->id) + 1);
            sup_stop_after(s, NULL, NULL);
            sup_free(s);
            return rc;
        }
        if (c->proc == NULL && c->restart == SUP_TEMPORARY)
            sup_child_remove(s, c);
    }
    *state = s;
    return 0;
}

static void
sup_handle_info(void *state, const actor_info_t *info)
{
    sup_t *s = state;
    sup_child_t *c;

    if (info->kind != ACTOR_INFO_DOWN)
        return;
    if (info->who == NULL)
        return;
    c = sup_find_down(s, info->who, info->ref);
    if (c == NULL)
        return;  /* about an incarnation we no longer supervise */
    sup_report(s, SUP_REPORT_CHILD_EXITED, c, c->proc, info->reason);
    actor_release(c->proc);
    c->proc = NULL;
    switch (c->restart) {
    case SUP_PERMANENT:
        sup_restart(s, c);
        break;
    case SUP_TRANSIENT:
        if (actor_reason_is_abnormal(info->reason))
            sup_restart(s, c);
        else
            sup_del_child(s, c);
        break;
    case SUP_TEMPORARY:
    default:
        sup_del_child(s, c);
        break;
    }
}

static void
sup_handle_cast(void *state, const actor_msg_view_t *msg)
{
    sup_t *s = state;
    sup_child_t *c;
    uint64_t serial;

    if (msg->tag != SUP_TAG_RETRY || msg->len != sizeof(serial))
        return;
    memcpy(&serial, msg->data, sizeof(serial));
    c = sup_find_serial(s, serial);
    /* Not restarting any more: terminated, or restarted with its siblings. */
    if (c == NULL || !c->restarting || c->proc != NULL)
        return;
    c->restarting = 0;
    sup_restart(s, c);
}

static void
sup_terminate(void *state, int reason)
{
    sup_t *s = state;

    sup_report(s, SUP_REPORT_SHUTDOWN, NULL, NULL, reason);
    sup_stop_all(s);
    sup_free(s);
}

/* ------------------------------------------------------------------ */
/* The administration calls, on the supervisor's thread                 */

static int
sup_op_start_child(sup_t *s, sup_box_t *b)
{
    sup_child_t *c;
    int rc;

    if (s->strategy == SUP_SIMPLE_ONE_FOR_ONE)
        return -ENOTSUP;
    c = sup_find_id(s, b->id);
    if (c != NULL) {
        if (c->proc == NULL)
            return -EEXIST;
        b->child = actor_retain(c->proc);
        return -EALREADY;
    }
    c = sup_child_new(s, &b->spec);
    if (c == NULL)
        return -ENOMEM;
    rc = sup_child_start(s, c);
    if (rc < 0 || (c->proc == NULL && c->restart == SUP_TEMPORARY)) {
        gc_free(c);
        return rc;
    }
    sup_child_link(s, c);
    b->child = actor_retain(c->proc);
    return 0;
}

static int
sup_op_start_child_arg(sup_t *s, sup_box_t *b)
{
    sup_child_t *c;
    int rc;

    if (s->strategy != SUP_SIMPLE_ONE_FOR_ONE)
        return -ENOTSUP;
    c = gc_calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    *c = s->tmpl;
    c->prev = c->next = NULL;
    c->arg = b->arg;
    c->serial = ++s->next_serial;
    rc = sup_child_start(s, c);
    if (rc < 0 || c->proc == NULL) {
        gc_free(c);
        return rc;
    }
    sup_child_link(s, c);
    b->child = actor_retain(c->proc);
    return 0;
}

static int
sup_op_terminate(sup_t *s, sup_child_t *c)
{
    if (c == NULL)
        return -ENOENT;
    sup_stop_child(s, c);
    sup_del_child(s, c);
    return 0;
}

static int
sup_op_restart(sup_t *s, sup_box_t *b)
{
    sup_child_t *c;
    int rc;

    if (s->strategy == SUP_SIMPLE_ONE_FOR_ONE)
        return -ENOTSUP;
    c = sup_find_id(s, b->id);
    if (c == NULL)
        return -ENOENT;
    if (c->proc != NULL)
        return -EBUSY;
    if (c->restarting)
        return -EINPROGRESS;
    rc = sup_child_start(s, c);
    if (rc < 0)
        return rc;
    b->child = actor_retain(c->proc);
    return 0;
}

static int
sup_op_delete(sup_t *s, sup_box_t *b)
{
    sup_child_t *c;

    if (s->strategy == SUP_SIMPLE_ONE_FOR_ONE)
        return -ENOTSUP;
    c = sup_find_id(s, b->id);
    if (c == NULL)
        return -ENOENT;
    if (c->proc != NULL)
        return -EBUSY;
    if (c->restarting)
        return -EINPROGRESS;
    sup_child_remove(s, c);
    return 0;
}

static int
sup_op_which(sup_t *s, sup_box_t *b)
{
    sup_child_info_t *v;
    sup_child_t *c;
    size_t i = 0;

    if (s->nchildren == 0)
        return 0;
    v = gc_calloc(s->nchildren, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    for (c = s->head; c != NULL; c = c->next, i++) {
        const char *id = s->strategy == SUP_SIMPLE_ONE_FOR_ONE ? s->tmpl.id : c->id;

        memcpy(v[i].id, id, strlen(id) + 1);
        v[i].handle = actor_retain(c->proc);
        v[i].status = c->proc != NULL ? SUP_CHILD_RUNNING
                      : c->restarting ? SUP_CHILD_RESTARTING
                                      : SUP_CHILD_UNDEFINED;
        v[i].type = c->type;
        v[i].restart = c->restart;
    }
    b->infos = v;
    b->ninfos = i;
    return 0;
}

static int
sup_op_count(sup_t *s, sup_box_t *b)
{
    sup_counts_t n;
    sup_child_t *c;

    memset(&n, 0, sizeof(n));
    for (c = s->head; c != NULL; c = c->next) {
        if (c->proc != NULL && actor_is_alive(c->proc))
            n.active++;
        if (c->type == SUP_SUPERVISOR)
            n.supervisors++;
        else
            n.workers++;
    }
    n.specs = s->strategy == SUP_SIMPLE_ONE_FOR_ONE ? 1 : s->nchildren;
    b->counts = n;
    return 0;
}

static int
sup_handle_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    sup_t *s = state;
    sup_box_t b;
    int rc;

    if (req->len != sizeof(b))
        return -EINVAL;
    memcpy(&b, req->data, sizeof(b));
    if (b.magic != SUP_BOX_MAGIC)
        return -EINVAL;
    b.spec.id = b.id;
    b.child = NULL;
    b.infos = NULL;
    b.ninfos = 0;
    memset(&b.counts, 0, sizeof(b.counts));

    switch (req->tag) {
    case SUP_OP_START_CHILD:
        rc = sup_op_start_child(s, &b);
        break;
    case SUP_OP_START_CHILD_ARG:
        rc = sup_op_start_child_arg(s, &b);
        break;
    case SUP_OP_TERMINATE_ID:
        rc = s->strategy == SUP_SIMPLE_ONE_FOR_ONE
                 ? -ENOTSUP : sup_op_terminate(s, sup_find_id(s, b.id));
        break;
    case SUP_OP_TERMINATE_HANDLE:
        rc = sup_op_terminate(s, sup_find_proc(s, b.target));
        break;
    case SUP_OP_RESTART:
        rc = sup_op_restart(s, &b);
        break;
    case SUP_OP_DELETE:
        rc = sup_op_delete(s, &b);
        break;
    case SUP_OP_WHICH:
        rc = sup_op_which(s, &b);
        break;
    case SUP_OP_COUNT:
        rc = sup_op_count(s, &b);
        break;
    default:
        rc = -EINVAL;
        break;
    }
    /* The target is the request's (its disposer releases it); the rest is
     * the reply, whose references pass to the caller or to sup_rep_dispose. */
    b.target = NULL;
    if (actor_reply_set(reply, &b, sizeof(b)) != 0) {
        actor_release(b.child);
        sup_children_free(b.infos, b.ninfos);
        return -ENOMEM;
    }
    return rc;
}

static const actor_behaviour_t sup_behaviour = {
    .init = sup_init,
    .handle_call = sup_handle_call,
    .handle_cast = sup_handle_cast,
    .handle_info = sup_handle_info,
    .terminate = sup_terminate,
};

/* ------------------------------------------------------------------ */
/* Requests, caller side                                                */

static void
sup_box_init(sup_box_t *b)
{
    memset(b, 0, sizeof(*b));
    b->magic = SUP_BOX_MAGIC;
    b->spec.id = b->id;
}

/* The request's references, once the call is over (or never happened):
 * run exactly once by the process core (actor_call_args_t.req_dispose). */
static void
sup_req_dispose(void *req, size_t len)
{
    sup_box_t *b = req;

    if (len == sizeof(*b))
        actor_release(b->target);
}

/* A reply nobody will read (the caller timed out): its references. */
static void
sup_rep_dispose(void *rep, size_t len)
{
    sup_box_t b;

    if (len != sizeof(b))
        return;
    memcpy(&b, rep, sizeof(b));
    actor_release(b.child);
    sup_children_free(b.infos, b.ninfos);
}

/*
 * Send request b (its target, if any, is handed to the call) and, unless the
 * call timed out, take the reply's references into b.  Returns the
 * handler's result, or actor_call's errors; -EINVAL when sup is not a
 * supervisor.  -ETIMEDOUT: the request may still be handled; whatever its
 * reply owns is released by sup_rep_dispose, nothing leaks.  A supervisor's
 * mailbox has no limit (sup_start), so -ETIMEDOUT means "queued, not
 * answered yet".
 */
static int
sup_call(actor_t *sup, uint32_t op, sup_box_t *b, int timeout_ms)
{
    sup_box_t rep;
    size_t len = 0;
    int handled = 0, rc;
    actor_call_args_t x = {
        .tag = op, .req = b, .req_len = sizeof(*b), .req_dispose = sup_req_dispose,
        .rep = &rep, .rep_cap = sizeof(rep), .rep_len = &len,
        .rep_dispose = sup_rep_dispose, .handled = &handled, .timeout_ms = timeout_ms,
    };

    rc = actor_call_ex(sup, &x);
    b->target = NULL;   /* released by sup_req_dispose */
    if (rc == -ETIMEDOUT)
        return rc;
    if (!handled)
        return rc == -ESRCH || rc == -EDEADLK || rc == -ENOMEM || rc == -EINVAL ? rc : -EINVAL;
    if (len != sizeof(rep) || rep.magic != SUP_BOX_MAGIC)
        return -EINVAL;   /* not a supervisor */
    b->child = rep.child;
    b->infos = rep.infos;
    b->ninfos = rep.ninfos;
    b->counts = rep.counts;
    return rc;
}

/* The common shape of the calls that return one child handle. */
static int
sup_call_child(actor_t *sup, uint32_t op, sup_box_t *b, actor_t **out, int timeout_ms)
{
    int rc = sup_call(sup, op, b, timeout_ms);

    if ((rc == 0 || rc == -EALREADY) && out != NULL) {
        *out = b->child;
        b->child = NULL;
    }
    actor_release(b->child);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

int
sup_start(const sup_flags_t *flags, const sup_child_spec_t *children, size_t n,
          const sup_opts_t *opts, actor_t **out, char *failed_id)
{
    static const sup_flags_t default_flags = SUP_FLAGS_DEFAULT;
    static const sup_opts_t default_opts;
    sup_init_args_t ia;
    actor_opts_t ao;
    size_t i, j;

    if (failed_id != NULL)
        failed_id[0] = '\0';
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (flags == NULL)
        flags = &default_flags;
    if (opts == NULL)
        opts = &default_opts;
    if (sup_flags_check(flags) != 0 || (n > 0 && children == NULL) ||
        opts->kill_wait_ms < 0)
        return -EINVAL;
    if (flags->strategy == SUP_SIMPLE_ONE_FOR_ONE && n != 1)
        return -EINVAL;
    for (i = 0; i < n; i++) {
        if (sup_spec_check(&children[i]) != 0)
            return -EINVAL;
        for (j = 0; j < i; j++)
            if (strcmp(children[i].id, children[j].id) == 0)
                return -EINVAL;
    }
    ia.flags = flags;
    ia.children = children;
    ia.n = n;
    ia.opts = opts;
    ia.failed_id = failed_id;
    memset(&ao, 0, sizeof(ao));
    ao.name = opts->name;
    ao.clock = opts->clock;
    return actor_start(&sup_behaviour, &ia, &ao, out);
}

int
sup_start_def(void *def, actor_t **out)
{
    const sup_def_t *d = def;

    if (out != NULL)
        *out = NULL;
    if (d == NULL)
        return -EINVAL;
    return sup_start(&d->flags, d->children, d->n, &d->opts, out, NULL);
}

int
sup_start_child(actor_t *sup, const sup_child_spec_t *spec, actor_t **out,
                int timeout_ms)
{
    sup_box_t bx, *b = &bx;

    if (out != NULL)
        *out = NULL;
    if (sup == NULL || sup_spec_check(spec) != 0)
        return -EINVAL;
    sup_box_init(b);
    b->spec = *spec;
    memcpy(b->id, spec->id, strlen(spec->id) + 1);
    b->spec.id = b->id;   /* the handler re-points it into its copy */
    return sup_call_child(sup, SUP_OP_START_CHILD, b, out, timeout_ms);
}

int
sup_start_child_arg(actor_t *sup, void *arg, actor_t **out, int timeout_ms)
{
    sup_box_t bx, *b = &bx;

    if (out != NULL)
        *out = NULL;
    if (sup == NULL)
        return -EINVAL;
    sup_box_init(b);
    b->arg = arg;
    return sup_call_child(sup, SUP_OP_START_CHILD_ARG, b, out, timeout_ms);
}

/* The calls that name a child by id and return no handle. */
static int
sup_call_id(actor_t *sup, uint32_t op, const char *id, int timeout_ms)
{
    sup_box_t bx, *b = &bx;

    if (sup == NULL || sup_id_check(id) != 0)
        return -EINVAL;
    sup_box_init(b);
    memcpy(b->id, id, strlen(id) + 1);
    return sup_call(sup, op, b, timeout_ms);
}

int
sup_terminate_child(actor_t *sup, const char *id, int timeout_ms)
{
    return sup_call_id(sup, SUP_OP_TERMINATE_ID, id, timeout_ms);
}

int
sup_terminate_child_handle(actor_t *sup, actor_t *child, int timeout_ms)
{
    sup_box_t bx, *b = &bx;

    if (sup == NULL || child == NULL)
        return -EINVAL;
    sup_box_init(b);
    /* Held by the request (until its disposer runs), so the address cannot
     * be reused by another process while the request may still be compared
     * against the children. */
    b->target = actor_retain(child);
    return sup_call(sup, SUP_OP_TERMINATE_HANDLE, b, timeout_ms);
}

int
sup_restart_child(actor_t *sup, const char *id, actor_t **out, int timeout_ms)
{
    sup_box_t bx, *b = &bx;

    if (out != NULL)
        *out = NULL;
    if (sup == NULL || sup_id_check(id) != 0)
        return -EINVAL;
    sup_box_init(b);
    memcpy(b->id, id, strlen(id) + 1);
    return sup_call_child(sup, SUP_OP_RESTART, b, out, timeout_ms);
}

int
sup_delete_child(actor_t *sup, const char *id, int timeout_ms)
{
    return sup_call_id(sup, SUP_OP_DELETE, id, timeout_ms);
}

int
sup_which_children(actor_t *sup, sup_child_info_t **out, size_t *n, int timeout_ms)
{
    sup_box_t bx, *b = &bx;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (sup == NULL || out == NULL || n == NULL)
        return -EINVAL;
    sup_box_init(b);
    rc = sup_call(sup, SUP_OP_WHICH, b, timeout_ms);
    if (rc == 0) {
        *out = b->infos;
        *n = b->ninfos;
        b->infos = NULL;
        b->ninfos = 0;
    }
    return rc;
}

void
sup_children_free(sup_child_info_t *v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        actor_release(v[i].handle);
    gc_free(v);
}

int
sup_count_children(actor_t *sup, sup_counts_t *out, int timeout_ms)
{
    sup_box_t bx, *b = &bx;
    int rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (sup == NULL || out == NULL)
        return -EINVAL;
    sup_box_init(b);
    rc = sup_call(sup, SUP_OP_COUNT, b, timeout_ms);
    if (rc == 0)
        *out = b->counts;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reports and errors                                                   */

const char *
sup_report_kind_name(sup_report_kind_t kind)
{
    switch (kind) {
    case SUP_REPORT_CHILD_STARTED:
        return "child_started";
    case SUP_REPORT_CHILD_START_FAILED:
        return "child_start_failed";
    case SUP_REPORT_CHILD_EXITED:
        return "child_exited";
    case SUP_REPORT_CHILD_RESTARTING:
        return "child_restarting";
    case SUP_REPORT_CHILD_STOPPED:
        return "child_stopped";
    case SUP_REPORT_CHILD_ABANDONED:
        return "child_abandoned";
    case SUP_REPORT_MAX_INTENSITY:
        return "max_intensity";
    case SUP_REPORT_SHUTDOWN:
        return "shutdown";
    }
    return "unknown";
}

int
sup_report_format(const sup_report_t *r, char *buf, size_t cap)
{
    char who[ACTOR_NAME_MAX + 32];
    const char *id;

    if (r == NULL || (buf == NULL && cap > 0))
        return -EINVAL;
    if (r->sup_name != NULL)
        snprintf(who, sizeof(who), "%s", r->sup_name);
    else
        snprintf(who, sizeof(who), "<%p>", (void *)r->sup);
    id = r->child_id != NULL ? r->child_id : "";
    switch (r->kind) {
    case SUP_REPORT_CHILD_STARTED:
        return snprintf(buf, cap, "supervisor %s: child '%s' started (process %p)",
                        who, id, (void *)r->child);
    case SUP_REPORT_CHILD_START_FAILED:
        return snprintf(buf, cap, "supervisor %s: child '%s' failed to start: %s",
                        who, id, actor_strerror(r->reason));
    case SUP_REPORT_CHILD_EXITED:
        return snprintf(buf, cap, "supervisor %s: child '%s' (process %p) exited: %s",
                        who, id, (void *)r->child, actor_strerror(r->reason));
    case SUP_REPORT_CHILD_RESTARTING:
        return snprintf(buf, cap, "supervisor %s: restarting child '%s'", who, id);
    case SUP_REPORT_CHILD_STOPPED:
        return snprintf(buf, cap, "supervisor %s: child '%s' (process %p) stopped: %s",
                        who, id, (void *)r->child, actor_strerror(r->reason));
    case SUP_REPORT_CHILD_ABANDONED:
        return snprintf(buf, cap,
                        "supervisor %s: child '%s' (process %p) did not stop when "
                        "killed: abandoned",
                        who, id, (void *)r->child);
    case SUP_REPORT_MAX_INTENSITY:
        return snprintf(buf, cap,
                        "supervisor %s: reached max restart intensity at child '%s'%s%s;"
                        " shutting down",
                        who, id, r->reason != 0 ? ": " : "",
                        r->reason != 0 ? actor_strerror(r->reason) : "");
    case SUP_REPORT_SHUTDOWN:
        return snprintf(buf, cap, "supervisor %s: shutting down: %s", who,
                        actor_strerror(r->reason));
    }
    return snprintf(buf, cap, "supervisor %s: report %d", who, (int)r->kind);
}

void
sup_log_stderr(void *ctx, const sup_report_t *r)
{
    char line[256];

    (void)ctx;
    if (sup_report_format(r, line, sizeof(line)) >= 0)
        fprintf(stderr, "%s\n", line);
}

const char *
sup_strerror(int err)
{
    return gc_strerror(GC_MOD_SUP, err);
}
