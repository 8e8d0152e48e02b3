/*
 * liburcu's lock-free hash table (cds_lfht) as a benchmark peer, built
 * twice: with PEER_URCU_FLAVOUR_QSBR for the QSBR flavour (urcu-qsbr) and
 * with PEER_URCU_FLAVOUR_MEMB for the membarrier flavour (urcu-memb).  The two flavours
 * cannot share a translation unit: each one's header maps the generic names
 * (rcu_read_lock, call_rcu, ...) to its own functions, which is also what
 * lets this file be written once with those generic names.
 *
 * _LGPL_SOURCE inlines the read-side primitives (a QSBR read section is
 * then empty, a memb one two thread-local stores), as liburcu's README
 * recommends for speed; it applies to the benchmark binary only, never to
 * the library.
 *
 * One node per entry: the cds_lfht_node, the key and value inline, and the
 * rcu_head that frees a replaced node after a grace period.  The table
 * resizes itself (CDS_LFHT_AUTO_RESIZE, in liburcu's call_rcu worker
 * thread), starting at the size of peer_new's hint.  Hash: the same
 * multiply-xorshift hash as the baseline map (bmap_hash), so that every
 * system is compared with the same hash quality.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include "baselines.h"
#include "peers_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* URCU_API_MAP: the flavour's header maps the generic names to its own
 * (what liburcu's top-level <urcu.h> and <urcu-qsbr.h> do). */
#define URCU_API_MAP
#if defined(PEER_URCU_FLAVOUR_QSBR)
#include <urcu/urcu-qsbr.h>
#define PEER_URCU_OPS peer_urcu_qsbr_ops
#elif defined(PEER_URCU_FLAVOUR_MEMB)
#include <urcu/urcu-memb.h>
#define PEER_URCU_OPS peer_urcu_memb_ops
#else
#error "build with PEER_URCU_FLAVOUR_QSBR or PEER_URCU_FLAVOUR_MEMB"
#endif
/* After the flavour: rculfhash.h needs its rcu_flavor. */
#include <urcu/rculfhash.h>

typedef struct unode {
    struct cds_lfht_node node;
    unsigned char key[BKEY];
    unsigned char val[BVAL];
    struct rcu_head rcu;
} unode_t;

typedef struct upeer {
    peer_t base;
    struct cds_lfht *ht;
} upeer_t;

static int
match_key(struct cds_lfht_node *node, const void *key)
{
    const unode_t *n = caa_container_of(node, unode_t, node);

    return memcmp(n->key, key, BKEY) == 0;
}

static void
free_node_rcu(struct rcu_head *head)
{
    free(caa_container_of(head, unode_t, rcu));
}

static int
upeer_create(size_t expected, peer_t **out)
{
    upeer_t *p = malloc(sizeof(*p));
    unsigned long init = 1;

    if (p == NULL)
        return -ENOMEM;
    /* The hint as a power of two (cds_lfht keeps about one node per
     * bucket); 0: liburcu's customary start size of 1024 buckets. */
    while (init < (expected ? expected : 1024))
        init <<= 1;
    p->ht = cds_lfht_new(init, 1, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
    if (p->ht == NULL) {
        free(p);
        return -ENOMEM;
    }
    *out = &p->base;
    return 0;
}

/* Unlink every node, wait one grace period for readers (there are none
 * left by contract, but the table may still be resizing), free them. */
static void
upeer_destroy(peer_t *base)
{
    upeer_t *p = (upeer_t *)base;
    struct cds_lfht_iter it;
    unode_t *n;
    unode_t **all = NULL;
    size_t cnt = 0, cap = 0, i;

    rcu_register_thread();
    rcu_read_lock();
    cds_lfht_for_each_entry(p->ht, &it, n, node) {
        if (cds_lfht_del(p->ht, &n->node) != 0)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 1024;
            all = realloc(all, cap * sizeof(*all));
            if (all == NULL)
                abort();  /* a benchmark: no recovery */
        }
        all[cnt++] = n;
    }
    rcu_read_unlock();
    synchronize_rcu();
    for (i = 0; i < cnt; i++)
        free(all[i]);
    free(all);
    /* Replaced nodes still waiting in call_rcu. */
    rcu_barrier();
    rcu_unregister_thread();
    cds_lfht_destroy(p->ht, NULL);
    free(p);
}

/* Insert or replace.  The replaced node is freed after a grace period by
 * liburcu's call_rcu thread. */
static int
upeer_put(peer_t *base, const unsigned char *key, const unsigned char *val)
{
    upeer_t *p = (upeer_t *)base;
    unode_t *n = malloc(sizeof(*n));
    struct cds_lfht_node *old;

    if (n == NULL)
        return -ENOMEM;
    cds_lfht_node_init(&n->node);
    memcpy(n->key, key, BKEY);
    memcpy(n->val, val, BVAL);
    rcu_read_lock();
    old = cds_lfht_add_replace(p->ht, (unsigned long)bmap_hash(key), match_key, key, &n->node);
    rcu_read_unlock();
    if (old != NULL)
        call_rcu(&caa_container_of(old, unode_t, node)->rcu, free_node_rcu);
    return 0;
}

static int
upeer_get(peer_t *base, const unsigned char *key, unsigned char *val)
{
    upeer_t *p = (upeer_t *)base;
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    int rc = -ENOENT;

    rcu_read_lock();
    cds_lfht_lookup(p->ht, (unsigned long)bmap_hash(key), match_key, key, &it);
    node = cds_lfht_iter_get_node(&it);
    if (node != NULL) {
        memcpy(val, caa_container_of(node, unode_t, node)->val, BVAL);
        rc = 0;
    }
    rcu_read_unlock();
    return rc;
}

static void
upeer_register(peer_t *p)
{
    (void)p;
    rcu_register_thread();
}

static void
upeer_unregister(peer_t *p)
{
    (void)p;
    rcu_unregister_thread();
}

static void
upeer_quiescent(peer_t *p)
{
    (void)p;
#if defined(PEER_URCU_FLAVOUR_QSBR)
    rcu_quiescent_state();
#endif
}

const peer_ops_t PEER_URCU_OPS = {
    upeer_create, upeer_destroy, upeer_put, upeer_get,
    upeer_register, upeer_unregister, upeer_quiescent,
};
