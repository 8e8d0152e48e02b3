/*
 * The cache front: Pow's EtsCache in C (see include/gencache/cache.h), the
 * part of a cache that is the same whatever backend holds its data.
 *
 * Modules, top-down (docs/design.md, section 1):
 *   cache.c (this file)  handles, names, incarnations, call/cast, direct
 *                        reads, stats, lost-cast accounting, and the host
 *                        side of the backend seam (the table, its expiry
 *                        and eviction);
 *   request.c            validation, encoding and parsing of requests;
 *   fetch.c              cache_fetch;
 *   cache_backend.h      the seam: a backend's ops (called down from here)
 *                        and the host interface (the only calls up);
 *   backends/local.c     the data is the table;
 *   backends/<remote>.c  the data is in a shared store, the table is its
 *                        near-cache (the front never knows which);
 *   table.c              the lock-free table (one writer, many readers);
 *   process.c            the worker is an ordinary process: it uses the
 *                        public request protocol of actor.h, as supervisors
 *                        do (no back door into the process core).
 *
 * A cache is a stable, reference-counted object (struct cache) holding the
 * table, its backend and a pointer to its current worker process.  The
 * worker is the table's only writer: every put, delete, expiry and eviction
 * runs on it, as a call (the request is built in place in the caller's call
 * record: actor_call_buf) or as a cast (one heap message: actor_cast_buf).
 * Readers use the table directly.
 *
 * Incarnations.  The worker can exit and be started again (by a supervisor,
 * through cache_child_start) while the cache object stays: handles, names
 * and direct reads keep working across the restart, and with keep_data the
 * table is kept as it was.  Callers load the worker pointer inside a read
 * section (ebr.h) and take a reference on it; replacing the pointer waits
 * for those sections (gc_ebr_sync) before dropping the old reference.  A call
 * that finds no live worker waits on `incarnation` (a futex word bumped when
 * a worker starts or the cache stops) within its timeout.
 *
 * Expiry.  Deadlines live in the table's heap; the worker keeps one process
 * timer armed for the earliest deadline and, when it fires, removes due
 * entries in slices of GC_EXPIRE_SLICE so that a mass expiry never stalls
 * the mailbox for long.  Readers check the deadline themselves, so a value
 * is never returned after its TTL even before the worker removes it.
 */
#define _GNU_SOURCE
#include <gencache/cache.h>

#include "alloc.h"
#include "atomic.h"
#include "cache_int.h"
#include "errors.h"
#include "glob.h"
#include "park.h"
#include "process.h"
#include "records.h"
#include "registry.h"
#include "snapshot.h"

#include "ebr.h"
#include "tab.h"

#include <sched.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static __thread unsigned int gc_tls_stripe;   /* 1 + stripe index; 0: unset */
static unsigned int gc_stripe_next;
static __thread uint32_t gc_tls_sender;       /* this thread's sender id; 0: unset */
static uint32_t gc_sender_next;

/* A cast's payload: who sent it, then the request (16 bytes keep the
 * request, and the user operation's arg after its header, aligned). */
typedef struct gc_cast_hdr {
    uint32_t sender;
    uint32_t pad[3];
} gc_cast_hdr_t;

_Static_assert(sizeof(gc_cast_hdr_t) % _Alignof(max_align_t) == 0,
               "the request after the cast header must stay aligned");

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

int
gc_cache_valid(const cache_t *c)
{
    return c != NULL && c->magic == GC_CACHE_MAGIC;
}

static int
gc_stopped(cache_t *c)
{
    /* Pairs with the store under wlock in cache_stop; a stale 0 only lets
     * one more operation reach a worker that is itself stopping. */
    return gc_load_32(&c->stopped) != 0;
}

static gc_stripe_t *
gc_stripe(cache_t *c)
{
    /* Round-robin stripe assignment: a relaxed counter, nothing pairs with
     * it (two threads sharing a stripe only share a cache line). */
    if (gc_tls_stripe == 0)
        gc_tls_stripe = 1 + ck_pr_faa_uint(&gc_stripe_next, 1) % GC_STRIPES;
    return &c->stripes[gc_tls_stripe - 1];
}

static void
gc_stat_inc(uint64_t *p, uint64_t n)
{
    /* The worker is the only writer; the store is atomic for readers of
     * cache_stats (gc_load_64 there). */
    gc_store_64(p, *p + n);
}

/* ------------------------------------------------------------------ */
/* Casts lost or failed, reported per sender by cache_sync             */

/* This thread's sender id, carried in every cast's message tag. */
static uint32_t
gc_sender(void)
{
    /* A relaxed counter: ids only need to be distinct (they wrap after
     * 2^32 threads, which only merges two threads' reports). */
    while (gc_tls_sender == 0)
        gc_tls_sender = ck_pr_faa_32(&gc_sender_next, 1) + 1;
    return gc_tls_sender;
}

static void
gc_loss_note(cache_t *c, uint32_t sender, uint64_t lost, uint64_t failed)
{
    size_t i;

    if (sender == 0 || (lost == 0 && failed == 0))
        return;
    pthread_mutex_lock(&c->llock);
    for (i = 0; i < c->nlosses && c->losses[i].sender != sender; i++)
        ;
    if (i == c->nlosses && c->nlosses == c->lcap) {
        size_t cap = c->lcap ? c->lcap * 2 : 8;
        gc_loss_t *p = gc_realloc(c->losses, cap * sizeof(*p));

        if (p != NULL) {
            c->losses = p;
            c->lcap = cap;
        }
    }
    if (i < c->lcap) {
        if (i == c->nlosses) {
            c->losses[i] = (gc_loss_t){ .sender = sender };
            c->nlosses++;
        }
        c->losses[i].lost += lost;
        c->losses[i].failed += failed;
    } else {
        /* No memory to say whose: the next cache_sync of any thread
         * reports it (documented in cache.h). */
        c->unattr_lost += lost;
        c->unattr_failed += failed;
    }
    /* Under llock; cache_sync's unlocked load only decides whether to take
     * the lock, after its call returned (the call's completion orders this
     * store before that load). */
    gc_store_32(&c->loss_pending, 1);
    pthread_mutex_unlock(&c->llock);
}

static void
gc_cast_lost(cache_t *c, uint32_t sender, uint64_t n)
{
    gc_loss_note(c, sender, n, 0);
}

static void
gc_cast_failed(cache_t *c, uint32_t sender, uint64_t n)
{
    gc_loss_note(c, sender, 0, n);
}

/* cache_sync's verdict for this thread: -ECONNRESET when some of its casts
 * were lost, else -EIO when some failed, else 0; each reported once. */
static int
gc_loss_take(cache_t *c)
{
    uint32_t me = gc_sender();
    uint64_t lost = 0, failed = 0;
    size_t i;

    if (gc_load_32(&c->loss_pending) == 0)
        return 0;
    pthread_mutex_lock(&c->llock);
    for (i = 0; i < c->nlosses; i++) {
        if (c->losses[i].sender == me) {
            lost = c->losses[i].lost;
            failed = c->losses[i].failed;
            c->losses[i] = c->losses[--c->nlosses];
            break;
        }
    }
    lost += c->unattr_lost;
    failed += c->unattr_failed;
    c->unattr_lost = c->unattr_failed = 0;
    gc_store_32(&c->loss_pending, c->nlosses > 0);
    pthread_mutex_unlock(&c->llock);
    return lost > 0 ? -ECONNRESET : failed > 0 ? -EIO : 0;
}

/* ------------------------------------------------------------------ */
/* The table (worker thread)                                            */

/*
 * Keys.  The table names a namespace by a 16-bit id it interned (tab.h).
 * The worker interns a namespace on its first write; readers only look it
 * up, and a namespace never interned holds no key.  The default namespace
 * is interned at cache_new, so its id is at hand without a lookup.
 */
static int
gc_key_make(cache_t *c, const char *ns, size_t ns_len, const void *key, size_t key_len,
            int intern, gc_tab_key_t *k)
{
    int rc;

    if (ns == c->ns && ns_len == c->cfg.ns_len)
        k->ns = c->ns_id;
    else if ((rc = intern ? gc_tab_ns_intern(c->tab, ns, ns_len, &k->ns)
                          : gc_tab_ns_find(c->tab, ns, ns_len, &k->ns)) != 0)
        return rc;
    k->key = key;
    k->len = (uint32_t)key_len;
    k->hash = gc_tab_hash(k->ns, key, key_len);
    return 0;
}

static void
gc_arm_expiry(cache_t *c)
{
    uint64_t dl = gc_tab_next_deadline(c->tab);

    if (dl == 0 || (c->timer_ref != 0 && c->timer_deadline <= dl))
        return;
    if (c->timer_ref != 0)
        (void)actor_cancel_timer(c->self, c->timer_ref);
    c->timer_ref = 0;
    /* At the entry's deadline itself: a delay from a clock reading here
     * would drift if the (manual) clock moved before the timer is set. */
    if (actor_send_at(c->self, dl, GC_TAG_EXPIRE, NULL, 0, &c->timer_ref) == 0)
        c->timer_deadline = dl;
    /* On -ENOMEM the next write re-arms; readers check deadlines anyway. */
}

/* After every write: keep the expiry timer at the earliest deadline, and
 * make sure retired memory is reclaimed soon even if no other write comes
 * (the table reclaims in batches: gc_tab_maintain, gc_tab_reclaim). */
static void
gc_after_write(cache_t *c)
{
    gc_tab_maintain(c->tab);
    if (!c->reclaim_armed && gc_tab_pending(c->tab) &&
        actor_send_after(c->self, GC_RECLAIM_MS, GC_TAG_RECLAIM, NULL, 0, NULL) == 0)
        c->reclaim_armed = 1;
    gc_arm_expiry(c);
}

/* All-or-nothing for the worker and for readers: every record is staged
 * (allocated, invisible) before the commit publishes them at once. */
static int
gc_apply_batch(cache_t *c, const gc_view_t *v)
{
    size_t n = v->r.batch_len, i;
    const unsigned char *p = v->next;
    int64_t evicted = 0;
    int rc;

    if ((rc = gc_tab_batch_begin(c->tab, n)) != 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++) {
        gc_view_t sub;
        gc_tab_key_t k;

        gc_view_parse(p, &sub);
        p = sub.next;
        rc = gc_key_make(c, sub.ns, sub.r.ns_len, sub.key, sub.r.key_len, 1, &k);
        if (rc == 0)
            rc = gc_tab_batch_put(c->tab, &k, sub.value, sub.r.value_len, sub.r.ttl_ms);
    }
    if (rc != 0) {
        gc_tab_batch_abort(c->tab);
        return rc == -ENOSPC ? -ENOMEM : rc;
    }
    (void)gc_tab_batch_commit(c->tab, &evicted);
    gc_stat_inc(&c->puts, n);
    gc_stat_inc(&c->evictions, (uint64_t)evicted);
    return 0;
}

/* cache_all: the live records of one namespace matching a pattern. */
typedef struct gc_rec_ref {
    const void *key, *value;
    size_t klen, vlen;
    int64_t ttl;
} gc_rec_ref_t;

typedef struct gc_all_ctx {
    const char *pat;
    gc_rec_ref_t *v;
    size_t n, cap;
    uint64_t size;
    int rc;
} gc_all_ctx_t;

static int
gc_all_one(void *arg, const void *key, size_t klen, const void *v, size_t vlen,
           int64_t ttl_left)
{
    gc_all_ctx_t *a = arg;

    if (!gc_glob(a->pat, key, klen))
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        gc_rec_ref_t *nv = gc_realloc(a->v, cap * sizeof(*nv));

        if (nv == NULL) {
            a->rc = -ENOMEM;
            return 1;
        }
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = (gc_rec_ref_t){ key, v, klen, vlen, ttl_left };
    a->size += gc_rec_size(klen, vlen);
    return 0;
}

static int
gc_rec_ref_cmp(const void *a, const void *b)
{
    const gc_rec_ref_t *x = a, *y = b;

    return gc_key_cmp(x->key, x->klen, y->key, y->klen);
}

/* ALL reply, in the record codec's format (records.h), sorted by key. */
static int
gc_reply_all(cache_t *c, const gc_view_t *v, actor_reply_t *reply)
{
    gc_all_ctx_t a = { v->r.arg_len > 0 ? (const char *)v->arg : "*", NULL, 0, 0,
                       gc_rec_header_size(), 0 };
    gc_tab_key_t k;
    unsigned char *out;
    size_t i;

    if (gc_key_make(c, v->ns, v->r.ns_len, "", 0, 0, &k) == 0)
        (void)gc_tab_foreach(c->tab, k.ns, gc_all_one, &a);
    if (a.rc != 0) {
        gc_free(a.v);
        return a.rc;
    }
    if (a.n > 1)
        qsort(a.v, a.n, sizeof(*a.v), gc_rec_ref_cmp);
    if (a.size > ACTOR_MSG_MAX || (out = actor_reply_buf(reply, a.size)) == NULL) {
        gc_free(a.v);
        return a.size > ACTOR_MSG_MAX ? -EMSGSIZE : -ENOMEM;
    }
    out = gc_rec_begin(out, a.n);
    for (i = 0; i < a.n; i++)
        out = gc_rec_put(out, a.v[i].key, a.v[i].klen, a.v[i].value, a.v[i].vlen,
                         a.v[i].ttl);
    gc_free(a.v);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Events (cache_opts_t.on_event)                                       */

_Static_assert((int)CACHE_EVENT_EXPIRED == (int)GC_TAB_EXPIRED &&
               (int)CACHE_EVENT_EVICTED == (int)GC_TAB_EVICTED &&
               (int)CACHE_EVENT_DELETED == (int)GC_TAB_DELETED,
               "cache_event_t mirrors tab.h's reasons");

/* The table's hook, installed only when on_event is set (so a cache
 * without events pays nothing): runs on the table's writer, the worker,
 * since no write is applied inline then (gc_try_inline). */
static void
gc_tab_event(void *ctx, int why, uint16_t ns, const void *key, size_t klen)
{
    cache_t *c = ctx;
    size_t ns_len = 0;
    const char *name = gc_tab_ns_name(c->tab, ns, &ns_len);

    c->on_event(c->event_ctx, (cache_event_t)why, name != NULL ? name : "", ns_len, key, klen);
}

/* ------------------------------------------------------------------ */
/* The host interface (cache_backend.h)                                 */

int
gc_host_put(gc_host_t *c, const char *ns, size_t ns_len, const void *key, size_t key_len,
            const void *value, size_t value_len, int64_t ttl_ms, uint64_t base_ms)
{
    gc_tab_key_t k;
    int64_t evicted = 0;
    int rc;

    if (base_ms != 0 && ttl_ms > 0) {
        /* Counted from base_ms: what is left of it now. */
        uint64_t now = actor_clock_now(c->clock);

        if (now >= base_ms) {
            if (now - base_ms >= (uint64_t)ttl_ms) {
                (void)gc_host_drop(c, ns, ns_len, key, key_len, NULL);
                return 0;   /* already past its deadline: nothing to keep */
            }
            ttl_ms -= (int64_t)(now - base_ms);
        }
    }
    if ((rc = gc_key_make(c, ns, ns_len, key, key_len, 1, &k)) != 0)
        return rc == -ENOSPC ? -ENOMEM : rc;
    rc = gc_tab_put(c->tab, &k, value, value_len, ttl_ms, &evicted);
    gc_stat_inc(&c->evictions, (uint64_t)evicted);
    return rc;
}

int
gc_host_drop(gc_host_t *c, const char *ns, size_t ns_len, const void *key, size_t key_len,
             int *expired)
{
    gc_tab_key_t k;
    int dead = 0, rc;

    if (expired != NULL)
        *expired = 0;
    if (gc_key_make(c, ns, ns_len, key, key_len, 0, &k) != 0)
        return -ENOENT;
    rc = gc_tab_delete(c->tab, &k, &dead);
    if (expired != NULL)
        *expired = dead;
    return rc;
}

int
gc_host_find(gc_host_t *c, const char *ns, size_t ns_len, const void *key, size_t key_len,
             const void **value, size_t *value_len, int64_t *ttl_left, int64_t *ttl_len)
{
    gc_tab_key_t k;

    if (gc_key_make(c, ns, ns_len, key, key_len, 0, &k) != 0)
        return -ENOENT;
    return gc_tab_find(c->tab, &k, value, value_len, ttl_left, ttl_len);
}

int
gc_host_set_ttl(gc_host_t *c, const char *ns, size_t ns_len, const void *key, size_t key_len,
                int64_t ttl)
{
    gc_tab_key_t k;

    if (gc_key_make(c, ns, ns_len, key, key_len, 0, &k) != 0)
        return -ENOENT;
    /* The table allocates first and commits after: an error (-ENOMEM)
     * changes nothing, the TTL length included. */
    return gc_tab_set_ttl(c->tab, &k, ttl);
}

static int
gc_count_one(void *arg, const void *key, size_t klen, const void *v, size_t vlen,
             int64_t ttl_left)
{
    (void)key, (void)klen, (void)v, (void)vlen, (void)ttl_left;
    ++*(uint64_t *)arg;
    return 0;
}

/* Remove every entry whose deadline passed (the worker's expiry, done now
 * rather than slice by slice), so that the table's count is exact. */
static void
gc_expire_all(cache_t *c)
{
    size_t k;

    do {
        k = gc_tab_expire(c->tab, GC_EXPIRE_SLICE);
        gc_stat_inc(&c->expirations, k);
    } while (k == GC_EXPIRE_SLICE);
}

uint64_t
gc_host_ns_count(gc_host_t *c, const char *ns, size_t ns_len)
{
    gc_tab_key_t k;
    uint64_t n = 0;

    if (ns == NULL) {
        gc_expire_all(c);
        return gc_tab_count(c->tab);
    }
    if (gc_key_make(c, ns, ns_len, "", 0, 0, &k) == 0)
        (void)gc_tab_foreach(c->tab, k.ns, gc_count_one, &n);
    return n;
}

/* The keys to remove, collected before any is removed (gc_tab_foreach
 * allows no write): records of [uint16 ns][uint32 len][key] in one
 * growing buffer. */
typedef struct gc_keys {
    unsigned char *p;
    size_t len, cap;
    uint16_t ns;
    int rc;
} gc_keys_t;

static int
gc_keys_one(void *arg, const void *key, size_t klen, const void *v, size_t vlen,
            int64_t ttl_left)
{
    gc_keys_t *a = arg;
    uint32_t l = (uint32_t)klen;
    size_t need = a->len + sizeof(a->ns) + sizeof(l) + klen;

    (void)v, (void)vlen, (void)ttl_left;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        unsigned char *np;

        while (cap < need)
            cap *= 2;
        if ((np = gc_realloc(a->p, cap)) == NULL) {
            a->rc = -ENOMEM;
            return 1;
        }
        a->p = np;
        a->cap = cap;
    }
    memcpy(a->p + a->len, &a->ns, sizeof(a->ns));
    memcpy(a->p + a->len + sizeof(a->ns), &l, sizeof(l));
    memcpy(a->p + a->len + sizeof(a->ns) + sizeof(l), key, klen);
    a->len = need;
    return 0;
}

int
gc_host_ns_clear(gc_host_t *c, const char *ns, size_t ns_len, uint64_t *removed)
{
    gc_keys_t a = { NULL, 0, 0, 0, 0 };
    uint64_t live = 0;
    size_t off;
    gc_tab_key_t k;

    if (removed != NULL)
        *removed = 0;
    if (ns == NULL) {
        gc_expire_all(c);   /* reported as expired, not deleted */
        if (c->on_event == NULL) {
            /* Nobody to tell key by key: drop the table at once. */
            live = gc_tab_count(c->tab);
            gc_tab_clear(c->tab);
            if (removed != NULL)
                *removed = live;
            return 0;
        }
        /* Every namespace interned so far (ids are dense from 0). */
        for (a.ns = 0; a.rc == 0 && gc_tab_ns_name(c->tab, a.ns, &off) != NULL; a.ns++)
            (void)gc_tab_foreach(c->tab, a.ns, gc_keys_one, &a);
    } else if (gc_key_make(c, ns, ns_len, "", 0, 0, &k) == 0) {
        a.ns = k.ns;
        (void)gc_tab_foreach(c->tab, k.ns, gc_keys_one, &a);
    }
    if (a.rc != 0) {
        gc_free(a.p);
        return a.rc;
    }
    for (off = 0; off < a.len;) {
        uint32_t l;
        int dead = 0;

        memcpy(&k.ns, a.p + off, sizeof(k.ns));
        memcpy(&l, a.p + off + sizeof(k.ns), sizeof(l));
        off += sizeof(k.ns) + sizeof(l);
        k.key = a.p + off;
        k.len = l;
        k.hash = gc_tab_hash(k.ns, k.key, l);
        off += l;
        if (gc_tab_delete(c->tab, &k, &dead) == 0)
            live++;
        else if (dead)
            gc_stat_inc(&c->expirations, 1);
    }
    gc_free(a.p);
    if (removed != NULL)
        *removed = live;
    return 0;
}

int
gc_host_batch(gc_host_t *c, const gc_view_t *v)
{
    return gc_apply_batch(c, v);
}

int
gc_host_all(gc_host_t *c, const gc_view_t *v, actor_reply_t *reply)
{
    return gc_reply_all(c, v, reply);
}

void
gc_host_clear(gc_host_t *c)
{
    gc_tab_clear(c->tab);
}

size_t
gc_host_max_bytes(const gc_host_t *c)
{
    return c->max_bytes;
}

uint64_t
gc_host_entries(const gc_host_t *c)
{
    return gc_tab_count(c->tab);
}

size_t
gc_host_backlog(const gc_host_t *c)
{
    return actor_mailbox_depth(c->self);
}

void
gc_host_crash(gc_host_t *c, int reason)
{
    (void)actor_exit(c->self, reason);
}

void
gc_host_count(gc_host_t *c, enum gc_host_stat which, uint64_t n)
{
    switch (which) {
    case GC_STAT_PUTS:
        gc_stat_inc(&c->puts, n);
        break;
    case GC_STAT_DELETES:
        gc_stat_inc(&c->deletes, n);
        break;
    case GC_STAT_EXPIRATIONS:
        gc_stat_inc(&c->expirations, n);
        break;
    case GC_STAT_EVICTIONS:
        gc_stat_inc(&c->evictions, n);
        break;
    case GC_STAT_HITS:
        /* Stripe counters: relaxed atomic adds, read by cache_stats. */
        ck_pr_add_64(&gc_stripe(c)->hits, n);
        break;
    case GC_STAT_MISSES:
        ck_pr_add_64(&gc_stripe(c)->misses, n);
        break;
    }
}

void
gc_host_cast_lost(gc_host_t *c, uint32_t sender, uint64_t n)
{
    gc_cast_lost(c, sender, n);
}

void
gc_host_cast_failed(gc_host_t *c, uint32_t sender, uint64_t n)
{
    gc_cast_failed(c, sender, n);
}

uint64_t
gc_host_now(const gc_host_t *c)
{
    return actor_clock_now(c->clock);
}

int
gc_host_timer(gc_host_t *c, uint64_t delay_ms, uint32_t tag)
{
    return actor_send_after(c->self, delay_ms, GC_TAG_BACKEND + tag, NULL, 0, NULL);
}

void *
gc_host_msg_buf(size_t len)
{
    return actor_cast_buf(len);
}

void
gc_host_msg_free(void *buf)
{
    actor_cast_buf_free(buf);
}

static actor_t *gc_worker_get(cache_t *c);

int
gc_host_msg_send(gc_host_t *c, uint32_t tag, void *buf)
{
    actor_t *w = gc_worker_get(c);
    int rc;

    if (w == NULL)
        return -ESRCH;
    /* Unbounded by mailbox_limit: a backend's own reports (invalidations)
     * must not be refused for lack of room the callers filled. */
    rc = actor_cast_send(w, GC_MSG_BACKEND + tag, buf);
    actor_release(w);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The worker: a process like any other                                 */

/* A cast's result: not sent for want of a link, it was lost
 * (-ECONNRESET from cache_sync); any other error but "no such key" means
 * it failed (-EIO). */
static void
gc_cast_result(cache_t *c, uint32_t sender, int rc)
{
    if (rc == -ENOTCONN || rc == -ECONNRESET)
        gc_cast_lost(c, sender, 1);
    else if (rc < 0 && rc != -ENOENT)
        gc_cast_failed(c, sender, 1);
}

/* ------------------------------------------------------------------ */
/* Snapshots: collecting the records (snapshot.h)                       */

static int gc_send_call(cache_t *c, const void *buf, size_t len, void *rep, size_t cap,
                        size_t *rep_len, int timeout_ms, void **take);

typedef struct gc_collect {
    gc_snap_rec_t *v;
    size_t n, cap;
    const char *ns;
    size_t ns_len;
    int rc;
} gc_collect_t;

static int
gc_collect_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen,
               int64_t ttl_left)
{
    gc_collect_t *x = arg;

    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 1024;
        gc_snap_rec_t *nv = gc_realloc(x->v, cap * sizeof(*nv));

        if (nv == NULL) {
            x->rc = -ENOMEM;
            return 1;
        }
        x->v = nv;
        x->cap = cap;
    }
    x->v[x->n++] = (gc_snap_rec_t){ x->ns, key, val, (uint32_t)x->ns_len, (uint32_t)klen,
                                    (uint32_t)vlen, ttl_left };
    return 0;
}

/* On the worker: pointers to every live record, one pass (the entries
 * they point into are immutable; snapshot.c's file comment says why the
 * dumping thread may read them after this returns).  Reply: the array and
 * its count, owned by the reply (gc_collect_dispose if nobody reads it). */
static int
gc_collect_reply(cache_t *c, actor_reply_t *reply)
{
    gc_collect_t x = { 0 };
    struct { gc_snap_rec_t *v; size_t n; } out;
    uint16_t id;

    for (id = 1; x.rc == 0 && (x.ns = gc_tab_ns_name(c->tab, id, &x.ns_len)) != NULL; id++) {
        (void)gc_tab_foreach(c->tab, id, gc_collect_one, &x);
        if (id == UINT16_MAX)
            break;
    }
    if (x.rc == 0) {
        out.v = x.v;
        out.n = x.n;
        x.rc = actor_reply_set(reply, &out, sizeof(out));
    }
    if (x.rc != 0)
        gc_free(x.v);
    return x.rc;
}

static void
gc_collect_dispose(void *rep, size_t len)
{
    struct { gc_snap_rec_t *v; size_t n; } out;

    if (len == sizeof(out)) {
        memcpy(&out, rep, sizeof(out));
        gc_free(out.v);
    }
}

int
gc_cache_reserve(cache_t *c, uint64_t n, int timeout_ms)
{
    unsigned char *buf = actor_call_buf(sizeof(gc_req_t));
    gc_req_t r;

    if (buf == NULL)
        return -ENOMEM;
    memset(&r, 0, sizeof(r));
    r.kind = GC_OP_RESERVE;
    r.batch_len = n;
    memcpy(buf, &r, sizeof(r));
    return gc_send_call(c, buf, sizeof(r), NULL, 0, NULL, timeout_ms, NULL);
}

int
gc_cache_collect(cache_t *c, gc_snap_rec_t **recs, size_t *n, int timeout_ms)
{
    struct { gc_snap_rec_t *v; size_t n; } out;
    unsigned char *buf;
    size_t len = 0;
    actor_t *w;
    int rc, handled = 0;

    *recs = NULL;
    *n = 0;
    if (!(c->ops->flags & GC_BE_SNAPSHOT))
        return -ENOTSUP;
    if (gc_stopped(c))
        return -ESRCH;
    /* Not gc_worker_get: the caller is inside a read section already
     * (sections do not nest); the lock is fine on this slow path. */
    pthread_mutex_lock(&c->wlock);
    w = actor_retain(c->worker);
    pthread_mutex_unlock(&c->wlock);
    if (w == NULL)
        return -ESRCH;
    buf = actor_call_buf(sizeof(gc_req_t));
    if (buf == NULL) {
        actor_release(w);
        return -ENOMEM;
    }
    {
        gc_req_t r;

        memset(&r, 0, sizeof(r));
        r.kind = GC_OP_DUMP;
        memcpy(buf, &r, sizeof(r));
    }
    {
        actor_call_args_t x = { .tag = GC_CALL_OP, .req = buf, .req_len = sizeof(gc_req_t),
                                .rep = &out, .rep_cap = sizeof(out), .rep_len = &len,
                                .rep_dispose = gc_collect_dispose, .handled = &handled,
                                .timeout_ms = timeout_ms };

        rc = actor_call_ex(w, &x);
    }
    actor_release(w);
    if (rc == 0 && len == sizeof(out)) {
        *recs = out.v;
        *n = out.n;
    } else if (rc == 0) {
        rc = -EPROTO;
    }
    return rc;
}

/* Apply one parsed request.  reply is NULL for casts. */
static int
gc_apply(cache_t *c, const gc_view_t *v, actor_reply_t *reply, uint32_t sender)
{
    int rc;

    if (v->r.kind == GC_OP_RESERVE) {
        /* Room for the whole load at once: a snapshot lists its records in
         * the source table's bucket order (ascending hash), and inserting
         * them so into a table still small, growing as it goes, packs each
         * batch into a narrow run of home buckets (long probe chains: a
         * 30x slower load, measured).  Sized once, home buckets spread the
         * same way as the source's did.  A hint: no room, no harm. */
        if ((c->ops->flags & GC_BE_SNAPSHOT) && v->r.batch_len > 0 &&
            v->r.batch_len <= UINT32_MAX && gc_tab_batch_begin(c->tab, v->r.batch_len) == 0)
            gc_tab_batch_abort(c->tab);
        return 0;
    }
    if (v->r.kind == GC_OP_DUMP) {
        /* The front's own request: the table is the front's. */
        return reply != NULL && (c->ops->flags & GC_BE_SNAPSHOT) ? gc_collect_reply(c, reply)
                                                                  : -EINVAL;
    }
    if (v->r.kind == CACHE_OP_USER) {
        cache_txn_t txn = { c, reply };

        if (c->ops->before_user != NULL)
            c->ops->before_user(c->be);   /* ordered after earlier casts */
        rc = v->r.fn(&txn, v->r.arg_len ? v->arg : NULL, v->r.arg_len);
    } else {
        rc = c->ops->apply(c->be, v, reply, sender);
    }
    gc_after_write(c);
    return rc;
}

static int
gc_worker_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    gc_view_t v;

    if (req->tag != GC_CALL_OP || req->len < sizeof(gc_req_t))
        return -EINVAL;
    gc_view_parse(req->data, &v);
    return gc_apply(state, &v, reply, 0);
}

static void
gc_worker_cast(void *state, const actor_msg_view_t *msg)
{
    cache_t *c = state;

    if (msg->tag == GC_CAST_OP) {
        gc_cast_hdr_t h;
        gc_view_t v;

        int rc;

        memcpy(&h, msg->data, sizeof(h));
        gc_view_parse((const unsigned char *)msg->data + sizeof(h), &v);
        rc = gc_apply(c, &v, NULL, h.sender);
        if (v.r.kind == CACHE_OP_PUT_NEW && rc == -EEXIST)
            rc = 0;   /* "already there" is an answer, not a failure */
        gc_cast_result(c, h.sender, rc);
    } else if (msg->tag >= GC_MSG_BACKEND && c->ops->message != NULL) {
        c->ops->message(c->be, msg->tag - GC_MSG_BACKEND, msg->data, msg->len);
        gc_after_write(c);
    }
}

/* A cast dropped unhandled because the worker exited: its sender learns of
 * the loss from its next cache_sync. */
static void
gc_worker_drop(void *state, const actor_msg_view_t *msg)
{
    if (msg->tag == GC_CAST_OP) {
        gc_cast_hdr_t h;

        memcpy(&h, msg->data, sizeof(h));
        gc_cast_lost(state, h.sender, 1);
    }
}

static void
gc_worker_idle(void *state)
{
    cache_t *c = state;

    if (c->ops->idle != NULL) {
        c->ops->idle(c->be);
        gc_after_write(c);   /* what it removed from the table is reclaimed */
    }
}

static void cache_free(cache_t *c);

static void
gc_worker_exit(void *state, int reason)
{
    cache_t *c = state;

    (void)reason;
    if (c->ops->stop != NULL)
        c->ops->stop(c->be);
    /* Without keep_data, an incarnation's table dies with it (the next one
     * starts empty, as a restarted GenServer would). */
    if (!c->keep_data || gc_stopped(c))
        gc_tab_clear(c->tab);
    c->timer_ref = 0;
    c->timer_deadline = 0;
    c->reclaim_armed = 0;
    c->self = NULL;
    cache_release(c);  /* the worker's reference (taken in init) */
}

static int
gc_worker_init(actor_t *self, void *arg, void **state)
{
    cache_t *c = arg;
    int rc;

    cache_retain(c);
    c->self = self;
    c->timer_ref = 0;
    c->timer_deadline = 0;
    c->reclaim_armed = 0;
    *state = c;
    if (!c->keep_data)
        gc_tab_clear(c->tab);
    if (c->ops->start != NULL && (rc = c->ops->start(c->be)) != 0) {
        c->self = NULL;
        cache_release(c);
        return rc;
    }
    gc_after_write(c);   /* arm expiry for data kept from before */
    return 0;
}

static void
gc_worker_info(void *state, const actor_info_t *info)
{
    cache_t *c = state;

    if (info->kind != ACTOR_INFO_TIMER)
        return;
    if (info->msg.tag == GC_TAG_EXPIRE && info->ref == c->timer_ref) {
        size_t k;

        c->timer_ref = 0;
        c->timer_deadline = 0;
        k = gc_tab_expire(c->tab, GC_EXPIRE_SLICE);
        gc_stat_inc(&c->expirations, k);
        gc_after_write(c);
    } else if (info->msg.tag == GC_TAG_RECLAIM) {
        c->reclaim_armed = 0;
        gc_tab_reclaim(c->tab);
        gc_after_write(c);
    } else if (info->msg.tag >= GC_TAG_BACKEND && c->ops->timer != NULL) {
        c->ops->timer(c->be, info->msg.tag - GC_TAG_BACKEND);
        gc_after_write(c);
    }
}

static const actor_behaviour_t gc_cache_behaviour = {
    .init = gc_worker_init,
    .handle_call = gc_worker_call,
    .handle_cast = gc_worker_cast,
    .handle_info = gc_worker_info,
    .terminate = gc_worker_exit,
    .handle_idle = gc_worker_idle,
    .handle_drop = gc_worker_drop,
};

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

cache_t *
cache_retain(cache_t *c)
{
    if (c == NULL)
        return NULL;
    /* From an existing reference; see cache_release for the ordering. */
    ck_pr_inc_32(&c->refs);
    return c;
}

static void
cache_free(cache_t *c)
{
    actor_release(c->worker);
    actor_release(c->sup);
    if (c->tab != NULL)
        gc_tab_free(c->tab);
    actor__clock_unhold(c->clock);
    if (c->be != NULL)
        c->ops->destroy(c->be);
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->flock);
    pthread_mutex_destroy(&c->llock);
    gc_free(c->losses);
    c->magic = 0;
    gc_aligned_free(c);
}

void
cache_release(cache_t *c)
{
    if (c == NULL)
        return;
    /* Release before the decrement, acquire after the last one: every use
     * by other holders happens before the free. */
    ck_pr_fence_release();
    if (gc_dec_32_is_zero(&c->refs)) {
        ck_pr_fence_acquire();
        cache_free(c);
    }
}

/* The name registry (registry.c) holds a reference: a named cache stays
 * findable, and alive, until cache_stop releases the name, even if every
 * other handle was dropped. */
static int
gc_name_add(cache_t *c)
{
    int rc;

    cache_retain(c);
    rc = gc_reg_add(GC_REG_CACHE, c->name, c, NULL);
    if (rc != 0)
        cache_release(c);
    return rc;
}

static void
gc_name_drop(cache_t *c)
{
    if (gc_reg_remove(GC_REG_CACHE, c->name, c) == 0)
        cache_release(c);  /* the registry's reference */
}

static void *
gc_name_retain(void *obj)
{
    return cache_retain(obj);
}

int
cache_lookup(const char *name, cache_t **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (gc_reg_name_check(name) != 0)
        return -EINVAL;
    *out = gc_reg_find(GC_REG_CACHE, name, gc_name_retain);
    return *out != NULL ? 0 : -ENOENT;
}

int
cache_new(const cache_opts_t *opts, cache_t **out)
{
    static const cache_opts_t defaults;
    const gc_backend_ops_t *ops;
    const char *ns;
    cache_t *c;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    ns = opts->default_ns != NULL ? opts->default_ns : "cache";
    if ((opts->name != NULL && gc_reg_name_check(opts->name) != 0) ||
        strnlen(ns, CACHE_NS_MAX + 1) == 0 || strnlen(ns, CACHE_NS_MAX + 1) > CACHE_NS_MAX ||
        opts->default_ttl_ms < 0 ||
        (opts->async_writes != 0 && opts->async_writes != 1) ||
        (opts->keep_data != 0 && opts->keep_data != 1) ||
        (opts->clock != NULL && !actor__clock_is_manual(opts->clock)))
        return -EINVAL;
    if ((rc = gc_backend_select(opts, &ops)) != 0)
        return rc;
    if (opts->on_event != NULL && !(ops->flags & GC_BE_EVENTS))
        return -ENOTSUP;   /* the data is not in the table (Redis) */
    if ((opts->clock != NULL && (ops->flags & GC_BE_NO_CLOCK)) ||
        (opts->default_ttl_ms != CACHE_TTL_NONE && opts->default_ttl_ms > ops->ttl_max))
        return -EINVAL;
    /* The read-counter stripes are cache-line aligned (CK_CC_CACHELINE). */
    c = gc_aligned_calloc(_Alignof(cache_t), sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->ops = ops;
    if ((rc = ops->create(opts, c, &c->be)) != 0) {
        gc_aligned_free(c);
        return rc;
    }
    c->magic = GC_CACHE_MAGIC;
    c->refs = 1;
    if (opts->name != NULL) {
        strcpy(c->name, opts->name);
        c->has_name = 1;
    }
    c->cfg.ns_len = strlen(ns);
    memcpy(c->ns, ns, c->cfg.ns_len + 1);
    c->cfg.ns = c->ns;
    /* CACHE_TTL_NONE as a default means the same as 0: no TTL. */
    c->cfg.default_ttl = opts->default_ttl_ms == CACHE_TTL_NONE ? 0 : opts->default_ttl_ms;
    c->cfg.ttl_max = ops->ttl_max;
    c->async_writes = opts->async_writes;
    c->max_entries = opts->max_entries;
    c->max_bytes = opts->max_bytes;
    /* A near-cache cannot outlive its connection. */
    c->keep_data = (ops->flags & GC_BE_NO_KEEP_DATA) ? 0 : opts->keep_data;
    /* Readers check TTLs against the clock from any thread, with or without
     * a worker: the cache holds it until its memory goes (cache_free). */
    c->clock = opts->clock;
    actor__clock_hold(c->clock);
    c->mailbox_limit = opts->mailbox_limit;
    c->on_event = opts->on_event;
    c->event_ctx = opts->event_ctx;
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->flock, NULL);
    pthread_mutex_init(&c->llock, NULL);
    {
        gc_tab_opts_t to = { .max_entries = c->max_entries, .max_bytes = c->max_bytes,
                             .clock = c->clock };

        /* The creating thread is the table's writer until a worker starts
         * (the spawn hands it over through thread creation). */
        if ((rc = gc_tab_new(&to, &c->tab)) != 0 ||
            (rc = gc_tab_ns_intern(c->tab, c->ns, c->cfg.ns_len, &c->ns_id)) != 0) {
            cache_free(c);
            return rc == -ENOSPC ? -ENOMEM : rc;
        }
        if (c->on_event != NULL)
            gc_tab_set_events(c->tab, gc_tab_event, c);
    }
    if (c->has_name && (rc = gc_name_add(c)) != 0) {
        cache_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Start a worker and install it.  wlock held. */
static int
gc_spawn(cache_t *c, actor_t **old)
{
    actor_opts_t ao = { .clock = c->clock, .mailbox_limit = c->mailbox_limit };
    actor_t *w;
    int rc;

    *old = NULL;
    if (c->worker != NULL && actor_wait(c->worker, 0, NULL) != 0)
        return -EALREADY; /* still running, or still leaving the table */
    rc = actor_start(&gc_cache_behaviour, c, &ao, &w);
    if (rc != 0)
        return rc;
    if (c->started_once)
        gc_store_64(&c->restarts, c->restarts + 1);
    c->started_once = 1;
    *old = c->worker;
    /* Readers of the pointer (gc_worker_get) hold an epoch section; the
     * caller waits for them before dropping *old. */
    gc_store_ptr(&c->worker, w);
    /* The bump orders after the pointer store (atomic RMW) and pairs with
     * the load of incarnation in gc_send_call, taken before it looks for
     * a worker: a caller that saw the old value and no worker either sees
     * the new worker or sleeps on the old value and is woken here. */
    ck_pr_inc_32(&c->incarnation);
    gc_futex_wake(&c->incarnation, INT_MAX);
    return 0;
}

/* Drop the previous worker's reference once no caller can still be taking
 * one from the pointer it read (gc_worker_get's read section). */
static void
gc_drop_old_worker(actor_t *old)
{
    uint64_t tag = 0;

    if (old == NULL)
        return;
    /* Every section that may have read `old` began before the pointer
     * changed; wait until the threshold passes the tag of that change.
     * Slow path (a restart), so polling with a yield is fine. */
    while (gc_ebr_sync(tag == 0 ? &tag : &(uint64_t){ 0 }) < tag)
        sched_yield();
    actor_release(old);
}

int
cache_child_start(void *arg, actor_t **out)
{
    cache_t *c = arg;
    actor_t *old = NULL;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (!gc_cache_valid(c))
        return -EINVAL;
    pthread_mutex_lock(&c->wlock);
    if (gc_stopped(c)) {
        /* A stopped cache asks its supervisor to ignore it (OTP `ignore`),
         * so stopping a supervised cache does not look like a crash loop. */
        pthread_mutex_unlock(&c->wlock);
        return 0;
    }
    rc = gc_spawn(c, &old);
    if (rc == 0) {
        actor_t *sup = actor_self();

        gc_store_32(&c->supervised, 1);
        *out = actor_retain(c->worker);
        /* The process starting the worker (a supervisor, normally) is
         * what can restart it: callers waiting for an incarnation give up
         * at once when it has exited (gc_can_restart). */
        if (sup != c->sup) {
            actor_release(c->sup);
            gc_store_ptr(&c->sup, actor_retain(sup));
        }
    }
    pthread_mutex_unlock(&c->wlock);
    gc_drop_old_worker(old);
    return rc;
}

int
cache_start(const cache_opts_t *opts, cache_t **out)
{
    cache_t *c;
    actor_t *old;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    rc = cache_new(opts, &c);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&c->wlock);
    rc = gc_spawn(c, &old);
    pthread_mutex_unlock(&c->wlock);
    if (rc != 0) {
        gc_name_drop(c);
        cache_release(c);
        return rc;
    }
    *out = c;
    return 0;
}

int
cache_stop(cache_t *c, int timeout_ms)
{
    actor_t *w;
    int rc = 0;

    if (!gc_cache_valid(c))
        return -EINVAL;
    pthread_mutex_lock(&c->wlock);
    if (c->stopped) {
        pthread_mutex_unlock(&c->wlock);
        return -ESRCH;
    }
    gc_store_32(&c->stopped, 1);
    w = actor_retain(c->worker);
    /* Wakes callers waiting for an incarnation (see gc_spawn): they
     * re-check stopped and give up with -ESRCH. */
    ck_pr_inc_32(&c->incarnation);
    pthread_mutex_unlock(&c->wlock);
    gc_futex_wake(&c->incarnation, INT_MAX);
    if (c->has_name)
        gc_name_drop(c);
    if (w != NULL) {
        rc = actor_stop(w, ACTOR_SHUTDOWN, timeout_ms);
        actor_release(w);
    }
    return rc == -ETIMEDOUT ? rc : 0;
}

actor_t *
cache_worker(cache_t *c)
{
    actor_t *w;

    if (!gc_cache_valid(c))
        return NULL;
    pthread_mutex_lock(&c->wlock);
    w = c->worker != NULL && actor_is_alive(c->worker) ? actor_retain(c->worker) : NULL;
    pthread_mutex_unlock(&c->wlock);
    return w;
}

/* The current worker with a reference, or NULL. */
static actor_t *
gc_worker_get(cache_t *c)
{
    gc_ebr_rec_t *rec = gc_ebr_reader();
    actor_t *w;

    if (rec == NULL) {
        pthread_mutex_lock(&c->wlock);
        w = actor_retain(c->worker);
        pthread_mutex_unlock(&c->wlock);
        return w;
    }
    gc_ebr_enter(rec);
    /* Pairs with gc_store_ptr in gc_spawn; the section keeps the actor
     * alive until our reference is taken (gc_drop_old_worker waits). */
    w = actor_retain(gc_load_ptr(&c->worker));
    gc_ebr_exit(rec);
    return w;
}

/*
 * Whether a worker can still come back for c: not when the cache is
 * stopped, when no supervisor ever started a worker, or when the process
 * that last did (its supervisor) has exited for good.  Slow path only (no
 * worker running), so the lock is fine.
 */
static int
gc_can_restart(cache_t *c)
{
    int ok;

    pthread_mutex_lock(&c->wlock);
    ok = !c->stopped && c->supervised && (c->sup == NULL || actor_is_alive(c->sup));
    pthread_mutex_unlock(&c->wlock);
    return ok;
}

/* Longest sleep of a caller waiting for an incarnation while a supervisor
 * is known: it re-checks that the supervisor is alive this often, since a
 * supervisor that gives up does not tell the caches it supervised. */
#define GC_RESTART_POLL_NS 5000000

/* ------------------------------------------------------------------ */
/* Requests from callers                                                */

/* Longest sleep of a caller waiting for an incarnation while a supervisor
 * is known: it re-checks that the supervisor is alive this often, since a
 * supervisor that gives up does not tell the caches it supervised. */
#define GC_RESTART_POLL_NS 5000000

/*
 * Send the request already built in this thread's call buffer (buf, len:
 * actor_call_buf), waiting within timeout_ms for a live worker (see the
 * file comment).
 *
 * The request is sent again to the next incarnation only when the previous
 * one never handled it (actor_call_ex's `handled`), which is known from the
 * call record's own state: a handler's result is never read as a transport
 * signal, so a user operation returning -ESRCH is answered with -ESRCH once
 * and never runs twice.  Returns the handler's result, -ETIMEDOUT (sent, no
 * reply in time: it may still be applied), or -ESRCH (never handled: the
 * cache is stopped, no worker can come back, or none came back within the
 * timeout).  *take is the reply of the attempt that was handled, or NULL.
 */
static int
gc_send_call(cache_t *c, const void *buf, size_t len, void *rep, size_t cap, size_t *rep_len,
             int timeout_ms, void **take)
{
    int64_t deadline = timeout_ms < 0 ? -1 : gc_mono_ns() + (int64_t)timeout_ms * 1000000;

    if (take != NULL)
        *take = NULL;
    for (;;) {
        uint32_t inc = gc_load_32(&c->incarnation);
        int64_t left;
        actor_t *w;
        int rc, handled = 0;

        if (gc_stopped(c))
            return -ESRCH;
        left = deadline < 0 ? -1 : deadline - gc_mono_ns();
        if (deadline >= 0 && left < 0)
            left = 0;
        w = gc_worker_get(c);
        if (w != NULL) {
            actor_call_args_t x = {
                .tag = GC_CALL_OP, .req = buf, .req_len = len, .rep = rep, .rep_cap = cap,
                .rep_len = rep_len, .rep_take = take, .handled = &handled,
                .timeout_ms = left < 0 ? ACTOR_INFINITY : (int)((left + 999999) / 1000000),
            };

            rc = actor_call_ex(w, &x);
            actor_release(w);
            /* Handled (whatever it returned), or sent and timed out: the
             * request may have been applied, so it is never sent again. */
            if (handled || rc != -ESRCH)
                return rc;
        }
        /* Not handled: the worker is gone (or going).  Wait for the next
         * incarnation if one can come. */
        if (!gc_can_restart(c))
            return -ESRCH;
        if (left == 0)
            return -ESRCH;  /* down, and not back within the timeout */
        if (gc_load_32(&c->incarnation) == inc) {
            int64_t nap = left;

            if (gc_load_ptr(&c->sup) != NULL && (nap < 0 || nap > GC_RESTART_POLL_NS))
                nap = GC_RESTART_POLL_NS;
            gc_futex_wait(&c->incarnation, inc, nap);
        }
    }
}

/* A write applied by the calling thread in place of the idle worker
 * (actor_try_inline): the same gc_apply the worker would run. */
static int
gc_inline_apply(void *state, void *arg)
{
    gc_view_t v;

    gc_view_parse(arg, &v);
    return gc_apply(state, &v, NULL, 0);
}

/* The fast path of a synchronous write: when the worker is idle (parked,
 * nothing queued), apply it here instead of waking it for a round trip.
 * Same result, same order (actor_try_inline's contract: every earlier
 * message of this thread has been handled), same memory ordering as a
 * call.  1 and *rc when it ran; 0 when the worker is busy or absent (send
 * a message). */
static int
gc_try_inline(cache_t *c, const cache_op_t *op, unsigned char *buf, int *rc)
{
    actor_t *w;
    int r;

    /* With events, the table's writer must be the worker: on_event is
     * documented to run there (cache_event_fn). */
    if (!(c->ops->flags & GC_BE_INLINE) || c->on_event != NULL)
        return 0;
    switch (op->kind) {
    case CACHE_OP_PUT:
    case CACHE_OP_PUT_BATCH:
    case CACHE_OP_DELETE:
    case CACHE_OP_EXPIRE:
    case CACHE_OP_TOUCH:
    case CACHE_OP_PERSIST:
    case CACHE_OP_PUT_NEW:
    case CACHE_OP_CAS:
    case CACHE_OP_CLEAR:
    case CACHE_OP_CLEAR_ALL:
        break;
    default:
        return 0;   /* replies and user operations go through the worker */
    }
    if ((w = gc_worker_get(c)) == NULL)
        return 0;
    r = actor_try_inline(w, gc_inline_apply, buf, rc);
    actor_release(w);
    return r == 0;
}

int
cache_call(cache_t *c, const cache_op_t *op, int timeout_ms)
{
    int64_t size;
    unsigned char *buf;
    size_t rep_len = 0;
    void *take = NULL;
    int rc;

    if (!gc_cache_valid(c) || op == NULL)
        return -EINVAL;
    if (op->out_len != NULL)
        *op->out_len = 0;
    if ((op->kind == CACHE_OP_GET || op->kind == CACHE_OP_USER || op->kind == CACHE_OP_TAKE) &&
        op->buf == NULL && op->cap > 0)
        return -EINVAL;
    if (gc_stopped(c))
        return -ESRCH;
    size = gc_req_measure(&c->cfg, op);
    if (size < 0)
        return (int)size;
    buf = actor_call_buf((size_t)size);
    if (buf == NULL)
        return -ENOMEM;
    gc_req_encode(&c->cfg, op, buf);
    if (gc_try_inline(c, op, buf, &rc))
        return rc;

    if (op->kind == CACHE_OP_INCR || op->kind == CACHE_OP_COUNT ||
        op->kind == CACHE_OP_COUNT_ALL) {
        int64_t num = 0;

        rc = gc_send_call(c, buf, (size_t)size, &num, sizeof(num), &rep_len, timeout_ms, NULL);
        if (rc == 0 && rep_len == sizeof(num) && op->out_int != NULL)
            *op->out_int = num;
        return rc;
    }
    if (op->kind == CACHE_OP_GET || op->kind == CACHE_OP_TTL || op->kind == CACHE_OP_TAKE) {
        int64_t ttl = 0;

        rc = gc_send_call(c, buf, (size_t)size, NULL, 0, &rep_len, timeout_ms, &take);
        /* A take too long for cap replies the value too (nothing taken). */
        if ((rc == 0 || (rc == -ENOBUFS && op->kind == CACHE_OP_TAKE)) && take != NULL &&
            rep_len >= sizeof(ttl)) {
            size_t vlen = rep_len - sizeof(ttl);

            memcpy(&ttl, take, sizeof(ttl));
            if (op->out_ttl_ms != NULL && op->kind != CACHE_OP_TAKE)
                *op->out_ttl_ms = ttl;
            if (op->kind != CACHE_OP_TTL) {
                if (op->out_len != NULL)
                    *op->out_len = vlen;
                if (op->cap > 0)
                    memcpy(op->buf, (unsigned char *)take + sizeof(ttl),
                           vlen < op->cap ? vlen : op->cap);
                if (vlen > op->cap)
                    rc = -ENOBUFS;
            }
        }
        actor_buf_free(take);
        return rc;
    }
    rc = gc_send_call(c, buf, (size_t)size, op->buf, op->kind == CACHE_OP_USER ? op->cap : 0,
                      &rep_len, timeout_ms, NULL);
    if (op->out_len != NULL && op->kind == CACHE_OP_USER)
        *op->out_len = rep_len;
    return rc;
}

/* This thread's sender id, carried in every cast. */
static uint32_t gc_sender(void);

int
cache_cast(cache_t *c, const cache_op_t *op)
{
    gc_cast_hdr_t h = { 0 };
    unsigned char *buf;
    actor_t *w;
    int64_t size;
    int rc;

    if (!gc_cache_valid(c) || op == NULL)
        return -EINVAL;
    switch (op->kind) {
    case CACHE_OP_GET:
    case CACHE_OP_TTL:
    case CACHE_OP_SYNC:
    case CACHE_OP_TAKE:
    case CACHE_OP_CAS:
    case CACHE_OP_COUNT:
    case CACHE_OP_COUNT_ALL:
        return -EINVAL;   /* their answer is their point: calls only */
    default:
        break;
    }
    size = gc_req_measure(&c->cfg, op);
    if (size < 0)
        return (int)size;
    if (gc_stopped(c))
        return -ESRCH;
    /* A backend that cannot take casts now (not connected) would drop it:
     * say so.  Racy by nature; a cast lost later is reported by
     * cache_sync. */
    if (c->ops->ready != NULL && !c->ops->ready(c->be))
        return -ENOTCONN;
    w = gc_worker_get(c);
    if (w == NULL)
        return -ESRCH;
    buf = actor_cast_buf(sizeof(h) + (size_t)size);
    if (buf == NULL) {
        actor_release(w);
        return -ENOMEM;
    }
    h.sender = gc_sender();
    memcpy(buf, &h, sizeof(h));
    gc_req_encode(&c->cfg, op, buf + sizeof(h));
    rc = actor_cast_send(w, GC_CAST_OP, buf);
    if (rc != 0)
        actor_cast_buf_free(buf);
    actor_release(w);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Convenience wrappers                                                 */

static int
gc_write(cache_t *c, const cache_op_t *op)
{
    if (!gc_cache_valid(c))
        return -EINVAL;
    return c->async_writes ? cache_cast(c, op) : cache_call(c, op, CACHE_DEFAULT_TIMEOUT);
}

int
cache_put(cache_t *c, const char *ns, const void *key, size_t key_len,
          const void *value, size_t value_len, int64_t ttl_ms)
{
    cache_op_t op = { .kind = CACHE_OP_PUT, .ns = ns, .key = key, .key_len = key_len,
                      .value = value, .value_len = value_len, .ttl_ms = ttl_ms };

    return gc_write(c, &op);
}

int
cache_delete(cache_t *c, const char *ns, const void *key, size_t key_len)
{
    cache_op_t op = { .kind = CACHE_OP_DELETE, .ns = ns, .key = key, .key_len = key_len };

    return gc_write(c, &op);
}

static int
gc_key_call(cache_t *c, cache_op_kind_t kind, const char *ns, const void *key,
            size_t key_len, int64_t ttl_ms)
{
    cache_op_t op = { .kind = kind, .ns = ns, .key = key, .key_len = key_len,
                      .ttl_ms = ttl_ms };

    return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
}

int
cache_touch(cache_t *c, const char *ns, const void *key, size_t key_len)
{
    return gc_key_call(c, CACHE_OP_TOUCH, ns, key, key_len, 0);
}

int
cache_persist(cache_t *c, const char *ns, const void *key, size_t key_len)
{
    return gc_key_call(c, CACHE_OP_PERSIST, ns, key, key_len, 0);
}

int
cache_expire(cache_t *c, const char *ns, const void *key, size_t key_len, int64_t ttl_ms)
{
    return gc_key_call(c, CACHE_OP_EXPIRE, ns, key, key_len, ttl_ms);
}

/* Issue 15's operations: calls, whatever async_writes says. */

int
cache_put_new(cache_t *c, const char *ns, const void *key, size_t key_len,
              const void *value, size_t value_len, int64_t ttl_ms)
{
    cache_op_t op = { .kind = CACHE_OP_PUT_NEW, .ns = ns, .key = key, .key_len = key_len,
                      .value = value, .value_len = value_len, .ttl_ms = ttl_ms };

    return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
}

int
cache_take(cache_t *c, const char *ns, const void *key, size_t key_len, void *buf,
           size_t cap, size_t *value_len)
{
    cache_op_t op = { .kind = CACHE_OP_TAKE, .ns = ns, .key = key, .key_len = key_len,
                      .buf = buf, .cap = cap, .out_len = value_len };

    return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
}

int
cache_incr(cache_t *c, const char *ns, const void *key, size_t key_len, int64_t delta,
           int64_t ttl_ms, int64_t *result)
{
    cache_op_t op = { .kind = CACHE_OP_INCR, .ns = ns, .key = key, .key_len = key_len,
                      .delta = delta, .ttl_ms = ttl_ms, .out_int = result };

    return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
}

int
cache_cas(cache_t *c, const char *ns, const void *key, size_t key_len, const void *expected,
          size_t expected_len, const void *value, size_t value_len, int64_t ttl_ms)
{
    cache_op_t op = { .kind = CACHE_OP_CAS, .ns = ns, .key = key, .key_len = key_len,
                      .expected = expected, .expected_len = expected_len, .value = value,
                      .value_len = value_len, .ttl_ms = ttl_ms };

    return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
}

static int
gc_count_call(cache_t *c, cache_op_kind_t kind, const char *ns, uint64_t *n, int timeout_ms)
{
    cache_op_t op = { .kind = kind, .ns = ns };
    int64_t num = 0;
    int rc;

    if (n == NULL)
        return -EINVAL;
    *n = 0;
    op.out_int = &num;
    rc = cache_call(c, &op, timeout_ms);
    if (rc == 0)
        *n = (uint64_t)num;
    return rc;
}

int
cache_count(cache_t *c, const char *ns, uint64_t *n, int timeout_ms)
{
    return gc_count_call(c, CACHE_OP_COUNT, ns, n, timeout_ms);
}

int
cache_count_all(cache_t *c, uint64_t *n, int timeout_ms)
{
    return gc_count_call(c, CACHE_OP_COUNT_ALL, NULL, n, timeout_ms);
}

int
cache_clear(cache_t *c, const char *ns, int timeout_ms)
{
    cache_op_t op = { .kind = CACHE_OP_CLEAR, .ns = ns };

    return cache_call(c, &op, timeout_ms);
}

int
cache_clear_all(cache_t *c, int timeout_ms)
{
    cache_op_t op = { .kind = CACHE_OP_CLEAR_ALL };

    return cache_call(c, &op, timeout_ms);
}

int
cache_sync(cache_t *c, int timeout_ms)
{
    cache_op_t op = { .kind = CACHE_OP_SYNC };
    int rc = cache_call(c, &op, timeout_ms);

    /* The call was handled after every earlier cast of this thread was
     * applied or dropped (FIFO per sender; a dropped one is recorded before
     * its incarnation is gone, and the call then went to a later one). */
    return rc == 0 ? gc_loss_take(c) : rc;
}

/* ------------------------------------------------------------------ */
/* Direct reads                                                         */

/*
 * Look the key up from this thread: lock-free, no allocation, no wait for
 * the worker (tab.h: gc_tab_get validates what it read and never returns a
 * torn or freed value, nor one past its deadline).  With buf == NULL only
 * the TTL is read.
 */
static int
gc_read(cache_t *c, const char *ns, const void *key, size_t key_len, void *buf,
        size_t cap, size_t *value_len, int64_t *ttl_out)
{
    const char *nsp;
    size_t ns_len, vlen = 0;
    gc_tab_key_t k;
    int rc;

    if (value_len != NULL)
        *value_len = 0;
    if (!gc_cache_valid(c) || gc_req_ns(&c->cfg, ns, &nsp, &ns_len) != 0 ||
        !gc_req_key_ok(key, key_len) || (buf == NULL && cap > 0))
        return -EINVAL;
    if (gc_stopped(c))
        return -ESRCH;
    rc = gc_key_make(c, nsp, ns_len, key, key_len, 0, &k);
    if (rc == 0)
        rc = gc_tab_get(c->tab, &k, buf, buf != NULL ? cap : 0, &vlen, ttl_out);
    if (rc == -ENOBUFS && buf == NULL)
        rc = 0;   /* only the TTL was asked for */
    if (rc == 0 || rc == -ENOBUFS) {
        if (value_len != NULL)
            *value_len = vlen;
    }
    if (rc == -ENOENT && (c->ops->flags & GC_BE_READ_THROUGH) && buf != NULL) {
        /* The table holds part of the data (a near-cache): ask the worker,
         * which counts the hit or miss. */
        cache_op_t op = { .kind = CACHE_OP_GET, .ns = ns, .key = key, .key_len = key_len,
                          .buf = buf, .cap = cap, .out_len = value_len };

        return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
    }
    if (buf != NULL && (rc == 0 || rc == -ENOBUFS || rc == -ENOENT)) {
        gc_stripe_t *st = gc_stripe(c);
        uint64_t *ctr = rc == -ENOENT ? &st->misses : &st->hits;

        /* A plain load and store, not an atomic add: a thread has its own
         * stripe (up to GC_STRIPES threads per cache), so nothing is lost
         * then; past that two threads may share one and a count may be
         * lost, which stats are allowed (cache.h).  The store is atomic
         * for cache_stats's loads. */
        gc_store_64(ctr, gc_load_64(ctr) + 1);
    }
    return rc;
}

int
cache_get(cache_t *c, const char *ns, const void *key, size_t key_len, void *buf,
          size_t cap, size_t *value_len)
{
    unsigned char dummy;

    /* buf may be NULL with cap 0 (a length query); keep gc_read's "value
     * wanted" path by pointing at a dummy byte. */
    if (buf == NULL && cap == 0)
        buf = &dummy;
    return gc_read(c, ns, key, key_len, buf, cap, value_len, NULL);
}

int
cache_ttl(cache_t *c, const char *ns, const void *key, size_t key_len, int64_t *ttl_ms)
{
    if (ttl_ms == NULL)
        return -EINVAL;
    *ttl_ms = 0;
    if (gc_cache_valid(c) && (c->ops->flags & GC_BE_TTL_REMOTE)) {
        /* The table's deadline may be shorter than the data's. */
        cache_op_t op = { .kind = CACHE_OP_TTL, .ns = ns, .key = key, .key_len = key_len,
                          .out_ttl_ms = ttl_ms };

        return cache_call(c, &op, CACHE_DEFAULT_TIMEOUT);
    }
    return gc_read(c, ns, key, key_len, NULL, 0, NULL, ttl_ms);
}

/* ------------------------------------------------------------------ */
/* all                                                                  */

int
cache_all(cache_t *c, const char *ns, const char *pattern, cache_record_t **out,
          size_t *n, int timeout_ms)
{
    const char *nsp;
    size_t ns_len, pat_len, rep_len = 0, size;
    unsigned char *buf;
    void *take = NULL;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (!gc_cache_valid(c) || out == NULL || n == NULL ||
        gc_req_ns(&c->cfg, ns, &nsp, &ns_len) != 0)
        return -EINVAL;
    if (pattern == NULL)
        pattern = "*";
    pat_len = strnlen(pattern, CACHE_KEY_MAX + 1);
    if (pat_len > CACHE_KEY_MAX)
        return -EINVAL;
    if (gc_stopped(c))
        return -ESRCH;
    size = gc_req_all_size(ns_len, pat_len + 1);
    buf = actor_call_buf(size);
    if (buf == NULL)
        return -ENOMEM;
    gc_req_encode_all(buf, nsp, ns_len, pattern, pat_len + 1);   /* with its NUL */
    rc = gc_send_call(c, buf, size, NULL, 0, &rep_len, timeout_ms, &take);
    if (rc != 0 || take == NULL) {
        actor_buf_free(take);
        return rc != 0 ? rc : -ENOMEM;
    }
    rc = gc_rec_decode(take, rep_len, out, n);
    actor_buf_free(take);
    return rc;
}

void
cache_records_free(cache_record_t *recs)
{
    gc_free(recs);
}

/* ------------------------------------------------------------------ */
/* Stats, transactions, errors                                          */

int
cache_stats(cache_t *c, cache_stats_t *st)
{
    actor_t *w;
    int i;

    if (!gc_cache_valid(c) || st == NULL)
        return -EINVAL;
    memset(st, 0, sizeof(*st));
    for (i = 0; i < GC_STRIPES; i++) {
        st->hits += gc_load_64(&c->stripes[i].hits);
        st->misses += gc_load_64(&c->stripes[i].misses);
    }
    /* Worker-written counters: single writer, atomic stores (gc_stat_inc). */
    st->puts = gc_load_64(&c->puts);
    st->deletes = gc_load_64(&c->deletes);
    st->expirations = gc_load_64(&c->expirations);
    st->evictions = gc_load_64(&c->evictions);
    st->entries = gc_tab_count(c->tab);
    st->bytes = gc_tab_bytes(c->tab);
    st->restarts = gc_load_64(&c->restarts);
    if (c->ops->stats != NULL)
        c->ops->stats(c->be, st);
    w = gc_worker_get(c);
    st->mailbox_depth = actor_mailbox_depth(w);
    actor_release(w);
    return 0;
}

int
cache_txn_get(cache_txn_t *txn, const char *ns, const void *key, size_t key_len,
              void *buf, size_t cap, size_t *value_len)
{
    const char *nsp;
    size_t ns_len;

    if (value_len != NULL)
        *value_len = 0;
    if (txn == NULL || gc_req_ns(&txn->c->cfg, ns, &nsp, &ns_len) != 0 ||
        !gc_req_key_ok(key, key_len) || (buf == NULL && cap > 0))
        return -EINVAL;
    return txn->c->ops->txn_get(txn->c->be, nsp, ns_len, key, key_len, buf, cap, value_len);
}

int
cache_txn_put(cache_txn_t *txn, const char *ns, const void *key, size_t key_len,
              const void *value, size_t value_len, int64_t ttl_ms)
{
    const char *nsp;
    size_t ns_len;
    int64_t ttl;

    if (txn == NULL || gc_req_ns(&txn->c->cfg, ns, &nsp, &ns_len) != 0 ||
        !gc_req_key_ok(key, key_len) || !gc_req_value_ok(value, value_len) ||
        gc_req_ttl(&txn->c->cfg, ttl_ms, &ttl) != 0)
        return -EINVAL;
    return txn->c->ops->txn_put(txn->c->be, nsp, ns_len, key, key_len, value, value_len, ttl);
}

int
cache_txn_delete(cache_txn_t *txn, const char *ns, const void *key, size_t key_len)
{
    const char *nsp;
    size_t ns_len;

    if (txn == NULL || gc_req_ns(&txn->c->cfg, ns, &nsp, &ns_len) != 0 ||
        !gc_req_key_ok(key, key_len))
        return -EINVAL;
    return txn->c->ops->txn_delete(txn->c->be, nsp, ns_len, key, key_len);
}

int
cache_txn_reply(cache_txn_t *txn, const void *data, size_t len)
{
    if (txn == NULL)
        return -EINVAL;
    if (txn->reply == NULL)
        return 0;  /* a cast has nobody to reply to */
    return actor_reply_set(txn->reply, data, len);
}

const char *
cache_strerror(int err)
{
    return gc_strerror(GC_MOD_CACHE, err);
}
