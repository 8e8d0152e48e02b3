/*
 * Peers: the concurrent hash tables a C engineer would pick instead of
 * gencache, compiled into the benchmark and run in the same process, behind
 * one small interface so that every workload runs against every peer.
 *
 *   PEER_URCU_QSBR   liburcu's cds_lfht (lock-free, RCU-protected reads),
 *                    QSBR flavour: reads cost nothing, readers register and
 *                    announce quiescent states (peer_quiescent).
 *   PEER_URCU_MEMB   the same table, membarrier flavour: readers register,
 *                    a read section is two thread-local stores and compiler
 *                    barriers (the writer's grace period pays with
 *                    membarrier(2)); no quiescent states needed.
 *   PEER_GLIB_RW     GLib's GHashTable behind one GRWLock.
 *   PEER_GLIB_MUTEX  GHashTable behind one GMutex.
 *
 * Every peer stores 16-byte keys (BKEY) and 64-byte values (BVAL) in one
 * malloc'ed node per entry (key and value inline) and copies the value out
 * on get, as gencache's cache_get does.  Each is an optional dependency of
 * the benchmark: a peer whose library was not found at configure time is
 * not built (peer_built() is 0, peer_new returns -ENOTSUP).
 *
 * Threads.  peer_get and peer_put may be called from any number of threads
 * at once, each between peer_thread_register and peer_thread_unregister (a
 * no-op for the GLib peers).  peer_new and peer_free are not thread-safe:
 * call them with no other thread using the peer.
 */
#ifndef BENCH_PEERS_H
#define BENCH_PEERS_H

#include <stddef.h>

typedef enum peer_kind {
    PEER_URCU_QSBR,
    PEER_URCU_MEMB,
    PEER_GLIB_RW,
    PEER_GLIB_MUTEX,
    PEER_COUNT
} peer_kind_t;

typedef struct peer peer_t;

/* Short name for the output rows ("urcu-qsbr", ...). */
const char *peer_name(peer_kind_t k);
/* 1 when the peer's library was found at build time. */
int peer_built(peer_kind_t k);

/*
 * A new empty table sized for about `expected` entries (0: the library's
 * default start size; the urcu tables resize themselves in the background,
 * GHashTable on insert).  The calling thread need not be registered.
 * Returns 0, -ENOTSUP (not built) or -ENOMEM; the caller frees *out with
 * peer_free.
 */
int peer_new(peer_kind_t k, size_t expected, peer_t **out);
/* Free every entry and the table.  No thread may use p any more, and the
 * calling thread must not be registered with it. */
void peer_free(peer_t *p);

/* Insert or replace: returns 0 (the key and value are copied), -ENOMEM. */
int peer_put(peer_t *p, const unsigned char *key, const unsigned char *val);
/* Copy the value of key into val (BVAL bytes): 0, or -ENOENT. */
int peer_get(peer_t *p, const unsigned char *key, unsigned char *val);

/* Before the calling thread's first get/put on p / after its last. */
void peer_thread_register(peer_t *p);
void peer_thread_unregister(peer_t *p);
/* The calling thread holds no reference into p now (QSBR: a quiescent
 * state, so grace periods and background resizes can complete; others: a
 * no-op).  Workloads call it every PEER_QUIESCE_EVERY operations. */
void peer_quiescent(peer_t *p);
#define PEER_QUIESCE_EVERY 1024

#endif /* BENCH_PEERS_H */
