/*
 * Baselines the benchmark compares gencache with, compiled into the same
 * binary and run in the same process:
 *   - an unsynchronised single-threaded open-addressing hash map (linear
 *     probing, 16-byte keys and 64-byte values stored inline): what a lookup
 *     costs at all;
 *   - the same map behind a pthread mutex, and behind a pthread rwlock;
 *   - a two-thread ping-pong on one cache line: the floor of any
 *     synchronous round trip between two cores.
 */
#ifndef BENCH_BASELINES_H
#define BENCH_BASELINES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define BKEY 16
#define BVAL 64

typedef struct bslot {
    uint64_t hash;      /* 0: empty */
    unsigned char key[BKEY];
    unsigned char val[BVAL];
} bslot_t;

typedef struct bmap {
    bslot_t *slots;
    size_t mask;
    size_t n;
    pthread_mutex_t mu;
    pthread_rwlock_t rw;
} bmap_t;

/* The map's hash of a BKEY-byte key (never 0); the peers use it too. */
uint64_t bmap_hash(const unsigned char *key);

int bmap_init(bmap_t *m, size_t expected);
void bmap_fini(bmap_t *m);
/* Unsynchronised. */
int bmap_put(bmap_t *m, const unsigned char *key, const unsigned char *val);
int bmap_get(bmap_t *m, const unsigned char *key, unsigned char *val);
/* Behind the mutex / the rwlock. */
int bmap_get_mutex(bmap_t *m, const unsigned char *key, unsigned char *val);
int bmap_put_mutex(bmap_t *m, const unsigned char *key, const unsigned char *val);
int bmap_get_rwlock(bmap_t *m, const unsigned char *key, unsigned char *val);
int bmap_put_rwlock(bmap_t *m, const unsigned char *key, const unsigned char *val);

/*
 * Ping-pong: `rounds` round trips between the caller and a second thread
 * spinning on one cache line.  Stores each round trip's latency in ns into
 * lat (when not NULL, `rounds` entries) and returns the total ns.
 */
uint64_t pingpong(uint64_t rounds, uint64_t *lat);

uint64_t now_ns(void);

#endif /* BENCH_BASELINES_H */
