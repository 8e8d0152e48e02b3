/*
 * Peers (see peers.h): the dispatch through each peer's ops table, and the
 * two GLib peers.  The liburcu peers live in peer_urcu.c.
 *
 * GLib peers: one GHashTable whose value is a g_malloc'ed node holding the
 * key and value inline (the table's key pointer points into the node, so
 * an entry is one allocation plus GHashTable's own arrays of hashes, keys
 * and values), behind one GRWLock (gets share it, puts take it
 * exclusively) or one GMutex.  A put of a present key overwrites the value
 * in place under the exclusive lock; a get copies the value out under the
 * lock.  Hash: the baseline map's (bmap_hash), as for every peer.
 */
#define _GNU_SOURCE
#include "peers_impl.h"

#include "baselines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef PEER_HAVE_GLIB
#include <glib.h>
#endif

const char *
peer_name(peer_kind_t k)
{
    static const char *const names[PEER_COUNT] = { "urcu-qsbr", "urcu-memb", "GLib+GRWLock",
                                                   "GLib+GMutex" };

    return k < PEER_COUNT ? names[k] : "?";
}

#ifdef PEER_HAVE_GLIB

typedef struct gnode {
    unsigned char key[BKEY];
    unsigned char val[BVAL];
} gnode_t;

typedef struct gpeer {
    peer_t base;
    GHashTable *h;
    GRWLock rw;     /* PEER_GLIB_RW */
    GMutex mu;      /* PEER_GLIB_MUTEX */
} gpeer_t;

static guint
gkey_hash(gconstpointer k)
{
    return (guint)bmap_hash(k);
}

static gboolean
gkey_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, BKEY) == 0;
}

static int
gpeer_create(gpeer_t *p, peer_t **out)
{
    p->h = g_hash_table_new_full(gkey_hash, gkey_equal, NULL, g_free);
    g_rw_lock_init(&p->rw);
    g_mutex_init(&p->mu);
    *out = &p->base;
    return 0;
}

static void
gpeer_destroy(peer_t *base)
{
    gpeer_t *p = (gpeer_t *)base;

    g_hash_table_destroy(p->h);
    g_rw_lock_clear(&p->rw);
    g_mutex_clear(&p->mu);
    g_free(p);
}

/* Under the exclusive lock. */
static void
gpeer_put_locked(gpeer_t *p, const unsigned char *key, const unsigned char *val)
{
    gnode_t *n = g_hash_table_lookup(p->h, key);

    if (n != NULL) {
        memcpy(n->val, val, BVAL);
        return;
    }
    n = g_new(gnode_t, 1);   /* aborts on out of memory, as GLib does */
    memcpy(n->key, key, BKEY);
    memcpy(n->val, val, BVAL);
    g_hash_table_insert(p->h, n->key, n);
}

/* Under a shared or exclusive lock. */
static int
gpeer_get_locked(gpeer_t *p, const unsigned char *key, unsigned char *val)
{
    const gnode_t *n = g_hash_table_lookup(p->h, key);

    if (n == NULL)
        return -ENOENT;
    memcpy(val, n->val, BVAL);
    return 0;
}

static int
grw_create(size_t expected, peer_t **out)
{
    (void)expected;   /* GHashTable has no size hint */
    return gpeer_create(g_new0(gpeer_t, 1), out);
}

static int
grw_put(peer_t *base, const unsigned char *key, const unsigned char *val)
{
    gpeer_t *p = (gpeer_t *)base;

    g_rw_lock_writer_lock(&p->rw);
    gpeer_put_locked(p, key, val);
    g_rw_lock_writer_unlock(&p->rw);
    return 0;
}

static int
grw_get(peer_t *base, const unsigned char *key, unsigned char *val)
{
    gpeer_t *p = (gpeer_t *)base;
    int rc;

    g_rw_lock_reader_lock(&p->rw);
    rc = gpeer_get_locked(p, key, val);
    g_rw_lock_reader_unlock(&p->rw);
    return rc;
}

static int
gmu_put(peer_t *base, const unsigned char *key, const unsigned char *val)
{
    gpeer_t *p = (gpeer_t *)base;

    g_mutex_lock(&p->mu);
    gpeer_put_locked(p, key, val);
    g_mutex_unlock(&p->mu);
    return 0;
}

static int
gmu_get(peer_t *base, const unsigned char *key, unsigned char *val)
{
    gpeer_t *p = (gpeer_t *)base;
    int rc;

    g_mutex_lock(&p->mu);
    rc = gpeer_get_locked(p, key, val);
    g_mutex_unlock(&p->mu);
    return rc;
}

/* GLib threads need no registration and hold nothing between calls. */
static void
gpeer_nothing(peer_t *p)
{
    (void)p;
}

static const peer_ops_t glib_rw_ops = {
    grw_create, gpeer_destroy, grw_put, grw_get, gpeer_nothing, gpeer_nothing, gpeer_nothing,
};
static const peer_ops_t glib_mutex_ops = {
    grw_create, gpeer_destroy, gmu_put, gmu_get, gpeer_nothing, gpeer_nothing, gpeer_nothing,
};
#endif /* PEER_HAVE_GLIB */

static const peer_ops_t *
peer_ops_of(peer_kind_t k)
{
    switch (k) {
#ifdef PEER_HAVE_URCU_QSBR
    case PEER_URCU_QSBR:
        return &peer_urcu_qsbr_ops;
#endif
#ifdef PEER_HAVE_URCU_MEMB
    case PEER_URCU_MEMB:
        return &peer_urcu_memb_ops;
#endif
#ifdef PEER_HAVE_GLIB
    case PEER_GLIB_RW:
        return &glib_rw_ops;
    case PEER_GLIB_MUTEX:
        return &glib_mutex_ops;
#endif
    default:
        return NULL;
    }
}

int
peer_built(peer_kind_t k)
{
    return peer_ops_of(k) != NULL;
}

int
peer_new(peer_kind_t k, size_t expected, peer_t **out)
{
    const peer_ops_t *ops = peer_ops_of(k);
    int rc;

    if (ops == NULL)
        return -ENOTSUP;
    rc = ops->create(expected, out);
    if (rc == 0)
        (*out)->ops = ops;
    return rc;
}

void
peer_free(peer_t *p)
{
    p->ops->destroy(p);
}

int
peer_put(peer_t *p, const unsigned char *key, const unsigned char *val)
{
    return p->ops->put(p, key, val);
}

int
peer_get(peer_t *p, const unsigned char *key, unsigned char *val)
{
    return p->ops->get(p, key, val);
}

void
peer_thread_register(peer_t *p)
{
    p->ops->thread_register(p);
}

void
peer_thread_unregister(peer_t *p)
{
    p->ops->thread_unregister(p);
}

void
peer_quiescent(peer_t *p)
{
    p->ops->quiescent(p);
}
