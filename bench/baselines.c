/*
 * Baselines: see baselines.h.  The map uses the same class of hash as the
 * library (a 64-bit multiply-xorshift mix) so that the comparison measures
 * synchronisation and layout, not hash quality.
 */
#define _GNU_SOURCE
#include "baselines.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bmap_hash(const unsigned char *k)
{
    uint64_t a, b, h;

    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1;   /* never 0: 0 marks an empty slot */
}

int
bmap_init(bmap_t *m, size_t expected)
{
    size_t cap = 16;

    while (cap < expected * 2)
        cap *= 2;
    /* malloc + memset, not calloc: the memset touches every page now, so
     * an insert measures the map, not the kernel's first-touch page faults
     * (a compiler may drop a memset of calloc'ed memory as redundant). */
    m->slots = malloc(cap * sizeof(*m->slots));
    if (m->slots == NULL)
        return -1;
    memset(m->slots, 0, cap * sizeof(*m->slots));
    m->mask = cap - 1;
    m->n = 0;
    pthread_mutex_init(&m->mu, NULL);
    pthread_rwlock_init(&m->rw, NULL);
    return 0;
}

void
bmap_fini(bmap_t *m)
{
    free(m->slots);
    pthread_mutex_destroy(&m->mu);
    pthread_rwlock_destroy(&m->rw);
}

int
bmap_put(bmap_t *m, const unsigned char *key, const unsigned char *val)
{
    uint64_t h = bmap_hash(key);
    size_t i = h & m->mask;

    for (;;) {
        bslot_t *s = &m->slots[i];

        if (s->hash == 0) {
            if (m->n * 2 >= m->mask + 1)
                return -1;  /* sized up front by bmap_init */
            s->hash = h;
            memcpy(s->key, key, BKEY);
            memcpy(s->val, val, BVAL);
            m->n++;
            return 0;
        }
        if (s->hash == h && memcmp(s->key, key, BKEY) == 0) {
            memcpy(s->val, val, BVAL);
            return 0;
        }
        i = (i + 1) & m->mask;
    }
}

int
bmap_get(bmap_t *m, const unsigned char *key, unsigned char *val)
{
    uint64_t h = bmap_hash(key);
    size_t i = h & m->mask;

    for (;;) {
        const bslot_t *s = &m->slots[i];

        if (s->hash == 0)
            return -1;
        if (s->hash == h && memcmp(s->key, key, BKEY) == 0) {
            memcpy(val, s->val, BVAL);
            return 0;
        }
        i = (i + 1) & m->mask;
    }
}

int
bmap_get_mutex(bmap_t *m, const unsigned char *key, unsigned char *val)
{
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = bmap_get(m, key, val);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
bmap_put_mutex(bmap_t *m, const unsigned char *key, const unsigned char *val)
{
    int rc;

    pthread_mutex_lock(&m->mu);
    rc = bmap_put(m, key, val);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
bmap_get_rwlock(bmap_t *m, const unsigned char *key, unsigned char *val)
{
    int rc;

    pthread_rwlock_rdlock(&m->rw);
    rc = bmap_get(m, key, val);
    pthread_rwlock_unlock(&m->rw);
    return rc;
}

int
bmap_put_rwlock(bmap_t *m, const unsigned char *key, const unsigned char *val)
{
    int rc;

    pthread_rwlock_wrlock(&m->rw);
    rc = bmap_put(m, key, val);
    pthread_rwlock_unlock(&m->rw);
    return rc;
}

/* ------------------------------------------------------------------ */

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static struct {
    _Alignas(64) atomic_uint_fast64_t ball;
    _Alignas(64) char pad;
} pp;

static void *
pong_main(void *arg)
{
    uint64_t rounds = *(uint64_t *)arg, i;

    for (i = 0; i < rounds; i++) {
        /* Wait for the odd value (ping), answer with the next even one. */
        while (atomic_load_explicit(&pp.ball, memory_order_acquire) != 2 * i + 1)
            cpu_relax();
        atomic_store_explicit(&pp.ball, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

uint64_t
pingpong(uint64_t rounds, uint64_t *lat)
{
    pthread_t th;
    uint64_t i, t0, start;

    atomic_store(&pp.ball, 0);
    pthread_create(&th, NULL, pong_main, &rounds);
    start = now_ns();
    for (i = 0; i < rounds; i++) {
        t0 = lat != NULL ? now_ns() : 0;
        atomic_store_explicit(&pp.ball, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&pp.ball, memory_order_acquire) != 2 * i + 2)
            cpu_relax();
        if (lat != NULL)
            lat[i] = now_ns() - t0;
    }
    pthread_join(th, NULL);
    return now_ns() - start;
}
