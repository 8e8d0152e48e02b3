/*
 * Internal to the Redis backend (lib/backends/redis*.c): what the worker
 * side (redis.c) and the connector (redis_conn.c) share.
 *
 * The split.  Everything that may wait on the network for a new connection
 * -- DNS, TCP connect, the set-up commands, asking sentinels for the
 * primary, reading a cluster's slot map -- runs on the connector thread
 * (redis_conn.c), never on the cache's worker.  The connector hands the
 * worker a finished topology (rd_topo_t: one ready link per primary, and a
 * cluster's slot map); the worker only installs it.  So while a
 * connection is being made, the worker goes on answering: near-cache reads,
 * and -ENOTCONN at once for what needs Redis.
 */
#ifndef GC_REDIS_INT_H
#define GC_REDIS_INT_H

#include "cache_backend.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define RD_SLOTS 16384        /* Redis Cluster hash slots */
#define RD_NO_NODE 0xffff     /* a slot no known primary serves */
#define RD_NODES_MAX 64       /* nodes in an option list; primaries kept */
#define RD_IP_MAX 64          /* a numeric address, NUL included */
#define RD_PREFIX_MAX 1024

enum { RD_MODE_ONE = 0, RD_MODE_SENTINEL = 1, RD_MODE_CLUSTER = 2 };

/* One address as the user gave it (a name or a numeric address). */
typedef struct rd_addr {
    char *host;
    int port;
} rd_addr_t;

/* Configuration: written by rd_create, read-only afterwards (so both the
 * worker and the connector read it without synchronisation). */
typedef struct rd_cfg {
    int mode;                 /* RD_MODE_* */
    rd_addr_t *seeds;         /* one server: host:port; Sentinel: the
                                 sentinels; Cluster: the seed nodes */
    size_t nseeds;
    char *master;             /* Sentinel: the master name */
    char *sentinel_pass;      /* Sentinel: AUTH for the sentinels (or NULL) */
    char *user, *pass;        /* AUTH for the data servers (or NULL) */
    char *prefix;
    size_t prefix_len;
    int db, connect_ms, io_ms, near;
} rd_cfg_t;

/* One primary, connected and set up: `cmd` (SELECT'ed, tracking on,
 * redirected to `sub`) and `sub` (subscribed to the invalidation channel;
 * NULL without a near-cache).  cmd NULL: this primary could not be
 * reached (the slots it serves are refused until the next topology). */
typedef struct rd_link {
    char ip[RD_IP_MAX];
    int port;
    redisContext *cmd, *sub;
} rd_link_t;

/* What the connector hands the worker.  Owned by whoever holds it:
 * rd_topo_free releases the contexts still in it. */
typedef struct rd_topo {
    size_t n;                 /* links[0..n) (one server, Sentinel: 1) */
    rd_link_t links[RD_NODES_MAX];
    uint16_t *slots;          /* Cluster: RD_SLOTS entries, each an index
                                 into links or RD_NO_NODE; else NULL */
    int err;                  /* 0, or why nothing could be reached */
} rd_topo_t;

void rd_topo_free(rd_topo_t *t);

/* The Redis Cluster slot of a key: CRC16 (XMODEM) of the key, or of its
 * hash tag (the bytes between the first '{' and the first '}' after it,
 * when not empty), modulo 16384. */
uint16_t rd_key_slot(const void *key, size_t len);

/* Parse "host:port" (the last ':' splits; "[v6]:port" too) into ip (cap
 * bytes) and *port.  0 or -EINVAL. */
int rd_parse_hostport(const char *s, size_t len, char *ip, size_t cap, int *port);

/*
 * The connector (redis_conn.c).  One thread per running incarnation of a
 * Redis cache, started by the worker (rd_conn_start) and joined by it
 * (rd_conn_stop).  The worker asks for a topology with rd_conn_request;
 * the connector builds one (every step bounded by connect_timeout_ms),
 * keeps it, and sends the worker a message with tag `topo_tag`
 * (gc_host_msg_send); the worker collects it with rd_conn_take.  In
 * Sentinel mode the connector also watches every sentinel: it sends
 * `fence_tag` when a failover of our master starts (the worker must stop
 * using its primary) and `switch_tag` (payload: rd_switch_msg_t; ip ""
 * when the address is not known) when it ended or the master moved.
 */
typedef struct rd_conn rd_conn_t;

typedef struct rd_switch_msg {
    char ip[RD_IP_MAX];
    int port;
} rd_switch_msg_t;

int rd_conn_start(const rd_cfg_t *cfg, gc_host_t *h, uint32_t topo_tag, uint32_t switch_tag,
                  uint32_t fence_tag, rd_conn_t **out);
/* Worker: build a new topology (several requests before one is served are
 * one).  A cluster is asked for its slot map through the primaries of the
 * last topology built first, then the seeds. */
void rd_conn_request(rd_conn_t *c);
/* Worker: the newest topology built and not yet taken (the caller owns
 * it), or NULL. */
rd_topo_t *rd_conn_take(rd_conn_t *c);
/* Worker: wait at most ms for the first request to be served.  1 if it
 * was. */
int rd_conn_wait(rd_conn_t *c, int ms);
/* Worker: stop and join the connector (it finishes the step it is in:
 * bounded by connect_timeout_ms), and free what it still holds. */
void rd_conn_stop(rd_conn_t *c);

#endif /* GC_REDIS_INT_H */
