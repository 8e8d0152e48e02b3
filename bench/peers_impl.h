/*
 * The seam between peers.c (the dispatch and the GLib peers) and each
 * peer's implementation: a peer is a const ops table, and every peer_t
 * starts with a pointer to its table.  Internal to the benchmark.
 */
#ifndef BENCH_PEERS_IMPL_H
#define BENCH_PEERS_IMPL_H

#include "peers.h"

typedef struct peer_ops {
    int (*create)(size_t expected, peer_t **out);
    void (*destroy)(peer_t *p);
    int (*put)(peer_t *p, const unsigned char *key, const unsigned char *val);
    int (*get)(peer_t *p, const unsigned char *key, unsigned char *val);
    void (*thread_register)(peer_t *p);
    void (*thread_unregister)(peer_t *p);
    void (*quiescent)(peer_t *p);
} peer_ops_t;

struct peer {
    const peer_ops_t *ops;
};

/* Defined by peer_urcu.c, built once per flavour when liburcu is found. */
extern const peer_ops_t peer_urcu_qsbr_ops;
extern const peer_ops_t peer_urcu_memb_ops;

#endif /* BENCH_PEERS_IMPL_H */
