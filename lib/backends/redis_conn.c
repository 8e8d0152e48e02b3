/*
 * The Redis backend's connector (see redis_int.h): the thread that makes
 * connections, so that the cache's worker never waits on one.
 *
 * What it does, on request of the worker (rd_conn_request):
 *   - one server: resolve the host (bounded, below), open the link;
 *   - Sentinel: ask the sentinels in turn (the one that answered last
 *     first) for the address of the master, open the link, and check with
 *     ROLE that the server is a primary now (a sentinel may still name a
 *     demoted one for a moment); then watch every sentinel (a connection
 *     subscribed to its failover events: see "Fencing" below);
 *   - Cluster: ask a node (the primaries of the last map first, then the
 *     seeds) for CLUSTER SLOTS, and open a link to every primary.
 * Then it keeps the topology for the worker (rd_conn_take) and tells it
 * with a message.  Between requests it sleeps in poll(2) on a wake-up pipe
 * and, in Sentinel mode, on the watches; a +switch-master for our master is
 * forwarded to the worker, which drops its link and asks for a new
 * topology.  A lost watch is restored within a second, and the master's
 * address is asked again then (a switch announced while no watch was
 * listening is not missed).
 *
 * Bounds.  Every connection attempt, and every set-up command, is bounded
 * by connect_timeout_ms; a name is resolved on a thread of its own
 * (rd_resolve) and given up after connect_timeout_ms too (the lookup
 * finishes, and frees itself, on its own).  A numeric address is never
 * looked up.  So rd_conn_stop waits at most for the step in progress.
 */
#define _GNU_SOURCE
#include "redis_int.h"

#include "alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RD_WATCH_RETRY_MS 1000   /* a lost sentinel watch is restored */
#define RD_FENCE_MAX_MS 15000    /* a failover heard of and never ended */
#define RD_INVAL_CHANNEL "__redis__:invalidate"

struct rd_conn {
    const rd_cfg_t *cfg;      /* the backend's: read-only */
    gc_host_t *h;
    uint32_t topo_tag, switch_tag;
    pthread_t thread;
    int wake[2];              /* pipe: rd_conn_request / _stop -> thread */

    pthread_mutex_t lock;     /* guards the four fields below */
    pthread_cond_t served_cv; /* signalled when `served` grows */
    int want, stop;
    unsigned served;          /* requests served */
    rd_topo_t *ready;         /* built, not yet taken */

    /* Connector thread only. */
    redisContext *watch[RD_NODES_MAX];   /* Sentinel: one per sentinel,
                                 subscribed to its failover events */
    int trying[RD_NODES_MAX]; /* that sentinel is failing our master over */
    int watched;              /* watches were opened once already */
    uint64_t watch_retry;     /* when missing watches are tried again */
    int fenced;               /* a failover of our master is in progress */
    uint64_t fence_since;
    size_t sentinel;          /* the sentinel that answered last */
    char cur_ip[RD_IP_MAX];   /* Sentinel: the primary of the last topology */
    int cur_port;
    rd_link_t known[RD_NODES_MAX];   /* Cluster: primaries of the last map */
    size_t nknown;
    uint32_t fence_tag;
};

/* ------------------------------------------------------------------ */
/* Slots                                                                */

/* CRC16-CCITT (XMODEM: poly 0x1021, init 0), a nibble at a time. */
static const uint16_t rd_crc_nib[16] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
};

static uint16_t
rd_crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        crc = (uint16_t)((crc << 4) ^ rd_crc_nib[((crc >> 12) ^ (p[i] >> 4)) & 0x0f]);
        crc = (uint16_t)((crc << 4) ^ rd_crc_nib[((crc >> 12) ^ (p[i] & 0x0f)) & 0x0f]);
    }
    return crc;
}

uint16_t
rd_key_slot(const void *key, size_t len)
{
    const unsigned char *k = key;
    const unsigned char *open = memchr(k, '{', len), *close;

    if (open != NULL) {
        size_t rest = len - (size_t)(open - k) - 1;

        close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return rd_crc16(open + 1, (size_t)(close - open - 1)) & (RD_SLOTS - 1);
    }
    return rd_crc16(k, len) & (RD_SLOTS - 1);
}

int
rd_parse_hostport(const char *s, size_t len, char *ip, size_t cap, int *port)
{
    const char *colon = NULL, *p;
    size_t hl;
    long v = 0;

    for (p = s; p < s + len; p++)
        if (*p == ':')
            colon = p;
    if (colon == NULL || colon == s || colon + 1 == s + len)
        return -EINVAL;
    for (p = colon + 1; p < s + len; p++) {
        if (*p < '0' || *p > '9' || v > 65535)
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    hl = (size_t)(colon - s);
    if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
        s++;
        hl -= 2;
    }
    if (hl == 0 || hl >= cap)
        return -EINVAL;
    memcpy(ip, s, hl);
    ip[hl] = '\0';
    *port = (int)v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Names, bounded                                                       */

static uint64_t
rd_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * One lookup: a thread of ours runs getaddrinfo(3) (which has no timeout)
 * and the connector waits for it at most connect_timeout_ms.  Whoever is
 * last of the two (refs) frees the request, so a connector that gave up
 * leaves nothing behind once the resolver returns.  (Not getaddrinfo_a:
 * its helper threads are created inside glibc, out of the sanitizers'
 * sight, and TSan crashes in them.)
 */
#define RD_ADDRS_MAX 4   /* addresses of a name tried, in the resolver's order */

typedef struct rd_addrs {
    int n;
    char ip[RD_ADDRS_MAX][RD_IP_MAX];
} rd_addrs_t;

typedef struct rd_gai {
    pthread_mutex_t lock;
    pthread_cond_t cv;        /* signalled when done */
    int refs, done, rc;
    rd_addrs_t out;
    char name[];
} rd_gai_t;

static void
rd_gai_unref(rd_gai_t *q)
{
    int last;

    pthread_mutex_lock(&q->lock);
    last = --q->refs == 0;
    pthread_mutex_unlock(&q->lock);
    if (last) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->lock);
        gc_free(q);
    }
}

static void *
rd_gai_main(void *arg)
{
    rd_gai_t *q = arg;
    struct addrinfo hints, *res = NULL, *ai;
    rd_addrs_t out;

    memset(&hints, 0, sizeof(hints));
    memset(&out, 0, sizeof(out));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(q->name, NULL, &hints, &res) == 0)
        for (ai = res; ai != NULL && out.n < RD_ADDRS_MAX; ai = ai->ai_next)
            if (getnameinfo(ai->ai_addr, ai->ai_addrlen, out.ip[out.n], RD_IP_MAX, NULL, 0,
                            NI_NUMERICHOST) == 0)
                out.n++;
    if (res != NULL)
        freeaddrinfo(res);
    pthread_mutex_lock(&q->lock);
    q->done = 1;
    q->rc = out.n > 0 ? 0 : -EHOSTUNREACH;
    q->out = out;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->lock);
    rd_gai_unref(q);
    return NULL;
}

/* The numeric addresses of host (up to RD_ADDRS_MAX, in the resolver's
 * order: every one is worth a try, "localhost" may give ::1 first to a
 * server bound to 127.0.0.1 only), within ms.  0, -ETIMEDOUT,
 * -EHOSTUNREACH (no such name), -ENOMEM, -EAGAIN, -EINVAL. */
static int
rd_resolve(const char *host, rd_addrs_t *out, int ms)
{
    unsigned char a[sizeof(struct in6_addr)];
    size_t n = strlen(host);
    pthread_condattr_t ca;
    pthread_attr_t ta;
    struct timespec ts;
    pthread_t t;
    rd_gai_t *q;
    int rc;

    out->n = 0;
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1) {
        if (n >= RD_IP_MAX)
            return -EINVAL;
        memcpy(out->ip[0], host, n + 1);
        out->n = 1;
        return 0;
    }
    if ((q = gc_calloc(1, sizeof(*q) + n + 1)) == NULL)
        return -ENOMEM;
    memcpy(q->name, host, n + 1);
    q->refs = 2;
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &ta, rd_gai_main, q);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        q->refs = 1;
        rd_gai_unref(q);
        return -EAGAIN;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->lock);
    while (!q->done && pthread_cond_timedwait(&q->cv, &q->lock, &ts) != ETIMEDOUT)
        ;
    rc = !q->done ? -ETIMEDOUT : q->rc;
    if (rc == 0)
        *out = q->out;
    pthread_mutex_unlock(&q->lock);
    rd_gai_unref(q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static struct timeval
rd_tv(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    return tv;
}

/* Send one command and wait for its reply (connection set-up, the
 * connector's own queries).  NULL on a transport failure or an error
 * reply. */
static redisReply *
rd_command(redisContext *x, int argc, const char **argv, const size_t *lens)
{
    redisReply *rep = redisCommandArgv(x, argc, argv, lens);

    if (rep != NULL && rep->type == REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Connect to ip:port (numeric) and AUTH (user may be NULL; pass NULL: no
 * AUTH); every step within connect_ms.  NULL on failure. */
static redisContext *
rd_dial(const rd_cfg_t *cfg, const char *ip, int port, const char *user, const char *pass)
{
    redisContext *x = redisConnectWithTimeout(ip, port, rd_tv(cfg->connect_ms));
    redisReply *rep;

    if (x == NULL)
        return NULL;
    /* Set-up commands run under the connect timeout too: an attempt is
     * bounded by it.  Keepalive makes a silently dead peer an error. */
    if (x->err != 0 || redisSetTimeout(x, rd_tv(cfg->connect_ms)) != REDIS_OK ||
        redisEnableKeepAlive(x) != REDIS_OK)
        goto fail;
    if (pass != NULL) {
        const char *argv[3] = { "AUTH", user, pass };
        size_t lens[3] = { 4, user ? strlen(user) : 0, strlen(pass) };

        if (user == NULL) {
            argv[1] = pass;
            lens[1] = lens[2];
        }
        if ((rep = rd_command(x, user != NULL ? 3 : 2, argv, lens)) == NULL)
            goto fail;
        freeReplyObject(rep);
    }
    return x;
fail:
    redisFree(x);
    return NULL;
}

static void
rd_link_close(rd_link_t *l)
{
    if (l->cmd != NULL)
        redisFree(l->cmd);
    if (l->sub != NULL)
        redisFree(l->sub);
    l->cmd = l->sub = NULL;
}

void
rd_topo_free(rd_topo_t *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++)
        rd_link_close(&t->links[i]);
    gc_free(t->slots);
    gc_free(t);
}

/* Open a data server's link (l->ip, l->port): `sub` subscribed to the
 * invalidation channel, `cmd` SELECT'ed and tracking the prefix, its
 * reports redirected to `sub`.  With check_primary, ROLE must say
 * "master".  0, or -ENOTCONN with l's contexts closed. */
static int rd_conn_stopping(rd_conn_t *c);

static int
rd_link_open(rd_conn_t *c, rd_link_t *l, int check_primary)
{
    const rd_cfg_t *cfg = c->cfg;
    redisReply *rep;
    long long id = 0;
    char idbuf[32], dbbuf[16];

    if (cfg->near) {
        const char *argv[2] = { "SUBSCRIBE", RD_INVAL_CHANNEL };
        size_t lens[2] = { 9, sizeof(RD_INVAL_CHANNEL) - 1 };
        const char *idv[2] = { "CLIENT", "ID" };
        size_t idl[2] = { 6, 2 };

        if ((l->sub = rd_dial(cfg, l->ip, l->port, cfg->user, cfg->pass)) == NULL)
            goto fail;
        rep = rd_command(l->sub, 2, idv, idl);
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(rep);
            goto fail;
        }
        id = rep->integer;
        freeReplyObject(rep);
        rep = rd_command(l->sub, 2, argv, lens);
        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            goto fail;
        }
        freeReplyObject(rep);
    }
    /* Between the steps: rd_conn_stop waits for one step, not all. */
    if (rd_conn_stopping(c) ||
        (l->cmd = rd_dial(cfg, l->ip, l->port, cfg->user, cfg->pass)) == NULL)
        goto fail;
    if (check_primary) {
        const char *argv[1] = { "ROLE" };
        size_t lens[1] = { 4 };
        int ok;

        rep = rd_command(l->cmd, 1, argv, lens);
        ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[0]->str, "master") == 0;
        if (rep != NULL)
            freeReplyObject(rep);
        if (!ok)
            goto fail;
    }
    if (cfg->db != 0) {
        const char *argv[2] = { "SELECT", dbbuf };
        size_t lens[2] = { 6, 0 };

        lens[1] = (size_t)snprintf(dbbuf, sizeof(dbbuf), "%d", cfg->db);
        if ((rep = rd_command(l->cmd, 2, argv, lens)) == NULL)
            goto fail;
        freeReplyObject(rep);
    }
    if (cfg->near) {
        const char *argv[9] = { "CLIENT", "TRACKING", "on", "REDIRECT", idbuf, "BCAST",
                                "NOLOOP", "PREFIX", cfg->prefix };
        size_t lens[9] = { 6, 8, 2, 8, 0, 5, 6, 6, cfg->prefix_len };

        lens[4] = (size_t)snprintf(idbuf, sizeof(idbuf), "%lld", id);
        /* An empty prefix means every key: BCAST without PREFIX. */
        if ((rep = rd_command(l->cmd, cfg->prefix_len > 0 ? 9 : 7, argv, lens)) == NULL)
            goto fail;
        freeReplyObject(rep);
        /* The worker's listener blocks on `sub` until it is shut down. */
        if (redisSetTimeout(l->sub, rd_tv(0)) != REDIS_OK)
            goto fail;
    }
    if (redisSetTimeout(l->cmd, rd_tv(cfg->io_ms)) != REDIS_OK)
        goto fail;
    return 0;
fail:
    rd_link_close(l);
    return -ENOTCONN;
}

static int
rd_conn_stopping(rd_conn_t *c)
{
    int s;

    pthread_mutex_lock(&c->lock);
    s = c->stop;
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* ------------------------------------------------------------------ */
/* Sentinel                                                             */

/* Dial host:port, trying each address of the name in turn (the stop
 * flag checked between), with AUTH (pass NULL: none).  NULL on failure;
 * the address used in ip_used (RD_IP_MAX bytes) if not NULL. */
static redisContext *
rd_dial_name(rd_conn_t *c, const char *host, int port, const char *user, const char *pass,
             char *ip_used)
{
    rd_addrs_t a;
    int k;

    if (rd_resolve(host, &a, c->cfg->connect_ms) != 0)
        return NULL;
    for (k = 0; k < a.n && !rd_conn_stopping(c); k++) {
        redisContext *x = rd_dial(c->cfg, a.ip[k], port, user, pass);

        if (x != NULL) {
            if (ip_used != NULL)
                memcpy(ip_used, a.ip[k], RD_IP_MAX);
            return x;
        }
    }
    return NULL;
}

/* Ask sentinel i for the master's address (resolved: ip, RD_IP_MAX
 * bytes).  0 or -ENOTCONN. */
static int
rd_sentinel_ask(rd_conn_t *c, size_t i, char *ip, int *port)
{
    const rd_cfg_t *cfg = c->cfg;
    const char *argv[3] = { "SENTINEL", "get-master-addr-by-name", cfg->master };
    size_t lens[3] = { 8, 23, strlen(cfg->master) };
    redisContext *x;
    redisReply *rep;
    rd_addrs_t a;
    int ok;

    x = rd_dial_name(c, cfg->seeds[i].host, cfg->seeds[i].port, NULL, cfg->sentinel_pass, NULL);
    if (x == NULL)
        return -ENOTCONN;
    rep = rd_command(x, 3, argv, lens);
    redisFree(x);
    ok = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_STRING &&
        rep->element[1]->type == REDIS_REPLY_STRING;
    if (ok) {
        char host[256];
        size_t n = rep->element[0]->len < sizeof(host) ? rep->element[0]->len : 0;

        memcpy(host, rep->element[0]->str, n);
        host[n] = '\0';
        *port = atoi(rep->element[1]->str);
        /* A name (announce-hostnames) is resolved here, so that the
         * worker compares addresses with addresses. */
        ok = n > 0 && *port > 0 && *port <= 65535 &&
            rd_resolve(host, &a, cfg->connect_ms) == 0;
        if (ok)
            memcpy(ip, a.ip[0], RD_IP_MAX);
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return ok ? 0 : -ENOTCONN;
}

static void
rd_send_switch(rd_conn_t *c, const char *ip, int port)
{
    rd_switch_msg_t *m = gc_host_msg_buf(sizeof(*m));

    if (m == NULL)
        return;   /* the worker finds out from its link (READONLY, EOF) */
    memset(m, 0, sizeof(*m));
    snprintf(m->ip, sizeof(m->ip), "%s", ip);
    m->port = port;
    if (gc_host_msg_send(c->h, c->switch_tag, m) != 0)
        gc_host_msg_free(m);
}

/* Tell the worker to stop writing to the primary it has: a failover of
 * our master has started. */
static void
rd_send_fence(rd_conn_t *c)
{
    void *m = gc_host_msg_buf(1);

    if (m != NULL && gc_host_msg_send(c->h, c->fence_tag, m) != 0)
        gc_host_msg_free(m);
}

/* The primary of the master, from the sentinels; link opened into t. */
static int
rd_build_sentinel(rd_conn_t *c, rd_topo_t *t)
{
    const rd_cfg_t *cfg = c->cfg;
    size_t k;

    /* During a failover the sentinels still name the old master: do not
     * go back to it (what it acknowledges now may be lost). */
    if (c->fenced)
        return -EAGAIN;
    for (k = 0; k < cfg->nseeds && !rd_conn_stopping(c); k++) {
        size_t i = (c->sentinel + k) % cfg->nseeds;
        rd_link_t *l = &t->links[0];

        if (rd_sentinel_ask(c, i, l->ip, &l->port) != 0)
            continue;
        c->sentinel = i;
        if (rd_link_open(c, l, 1) != 0) {
            /* Named but not a primary (yet, or any more): another
             * sentinel may know better; the next request tries again. */
            continue;
        }
        snprintf(c->cur_ip, sizeof(c->cur_ip), "%s", l->ip);
        c->cur_port = l->port;
        return 0;
    }
    return -ENOTCONN;
}

/*
 * Fencing.  Sentinel promotes a replica first and announces the new master
 * (+switch-master) only once it has seen the promotion, about a second
 * later with its defaults; meanwhile the old master still acknowledges
 * writes, and loses them when it is made a replica.  So the connector
 * watches every sentinel, and from the moment one announces
 * +try-failover for our master until that attempt ends (+switch-master,
 * -failover-abort-*, +failover-end*) or RD_FENCE_MAX_MS pass, the worker
 * holds no link (calls get -ENOTCONN) and the connector does not
 * reconnect to the old master.  Sentinel moves from +try-failover to the
 * promotion over several of its 100 ms ticks, so the fence is up before
 * the replica is promoted.
 */
static void
rd_fence_update(rd_conn_t *c, const char *ip, int port)
{
    size_t i;
    int any = 0;

    for (i = 0; i < c->cfg->nseeds; i++)
        any |= c->trying[i];
    if (any && !c->fenced) {
        c->fenced = 1;
        c->fence_since = rd_mono_ms();
        rd_send_fence(c);
    } else if (!any && c->fenced) {
        c->fenced = 0;
        rd_send_switch(c, ip, port);   /* ip "": look again */
    } else if (ip[0] != '\0') {
        rd_send_switch(c, ip, port);
    }
}

/* One event from sentinel i's watch. */
static void
rd_watch_event(rd_conn_t *c, size_t i, const char *chan, const char *data)
{
    char a[256], name[256], nip[RD_IP_MAX], oip[RD_IP_MAX];
    int oport, nport;
    size_t k;

    if (strcmp(chan, "+switch-master") == 0) {
        /* "<name> <old ip> <old port> <new ip> <new port>" */
        if (sscanf(data, "%255s %63s %d %63s %d", name, oip, &oport, nip, &nport) == 5 &&
            strcmp(name, c->cfg->master) == 0) {
            rd_addrs_t res;

            for (k = 0; k < c->cfg->nseeds; k++)
                c->trying[k] = 0;
            /* A name (announce-hostnames) becomes an address, as the
             * worker's links are named by address. */
            if (rd_resolve(nip, &res, c->cfg->connect_ms) == 0)
                rd_fence_update(c, res.ip[0], nport);
            else
                rd_fence_update(c, "", 0);
        }
        return;
    }
    /* "master <name> <ip> <port> ..." */
    if (sscanf(data, "%255s %255s", a, name) != 2 || strcmp(a, "master") != 0 ||
        strcmp(name, c->cfg->master) != 0)
        return;
    c->trying[i] = strcmp(chan, "+try-failover") == 0;   /* else: ended */
    rd_fence_update(c, "", 0);
}

static void
rd_watch_close(rd_conn_t *c, size_t i)
{
    if (c->watch[i] != NULL)
        redisFree(c->watch[i]);
    c->watch[i] = NULL;
    /* trying[i] stays: a sentinel lost mid-failover may be the leader,
     * and lifting the fence now could send us back to the old master.
     * It ends with +switch-master from any sentinel, or the cap. */
}

static void rd_watch_pending(rd_conn_t *c, size_t i);

/* Read what watch i has. */
static void
rd_watch_read(rd_conn_t *c, size_t i)
{
    if (redisBufferRead(c->watch[i]) != REDIS_OK) {
        rd_watch_close(c, i);
        return;
    }
    rd_watch_pending(c, i);
}

/* Handle the events already read into watch i's buffer. */
static void
rd_watch_pending(rd_conn_t *c, size_t i)
{
    redisReply *rep;

    for (;;) {
        rep = NULL;
        if (redisGetReplyFromReader(c->watch[i], (void **)&rep) != REDIS_OK) {
            rd_watch_close(c, i);
            return;
        }
        if (rep == NULL)
            return;
        /* ["pmessage", pattern, channel, data] */
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 4 &&
            rep->element[2]->type == REDIS_REPLY_STRING &&
            rep->element[3]->type == REDIS_REPLY_STRING && rep->element[3]->len < 1024)
            rd_watch_event(c, i, rep->element[2]->str, rep->element[3]->str);
        freeReplyObject(rep);
    }
}

/* Handle whatever the open watches have now, without waiting. */
static void
rd_watch_poll0(rd_conn_t *c)
{
    size_t i;

    for (i = 0; i < c->cfg->nseeds; i++) {
        struct pollfd p;

        if (c->watch[i] == NULL)
            continue;
        p.fd = c->watch[i]->fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 0) == 1)
            rd_watch_read(c, i);
    }
}

/* Open the watches that are missing.  After the first time, a watch that
 * comes back also asks its sentinel for the master: a switch announced
 * while nobody listened is not missed. */
static void
rd_watch_fill(rd_conn_t *c)
{
    static const char *const pats[4] = { "+switch-master", "+try-failover",
                                         "-failover-abort-*", "+failover-end*" };
    const rd_cfg_t *cfg = c->cfg;
    size_t i;

    for (i = 0; i < cfg->nseeds && !rd_conn_stopping(c); i++) {
        const char *argv[5] = { "PSUBSCRIBE", pats[0], pats[1], pats[2], pats[3] };
        size_t lens[5] = { 10, strlen(pats[0]), strlen(pats[1]), strlen(pats[2]),
                           strlen(pats[3]) };
        char ip[RD_IP_MAX];
        redisContext *x;
        redisReply *rep;
        int k, ok = 1, port;

        if (c->watch[i] != NULL)
            continue;
        /* Events of the watches we have first: a dial below may take
         * connect_timeout_ms (a sentinel down with its host). */
        rd_watch_poll0(c);
        x = rd_dial_name(c, cfg->seeds[i].host, cfg->seeds[i].port, NULL, cfg->sentinel_pass,
                         NULL);
        if (x == NULL)
            continue;
        if (redisAppendCommandArgv(x, 5, argv, lens) != REDIS_OK)
            ok = 0;
        for (k = 0; k < 4 && ok; k++) {
            rep = NULL;
            ok = redisGetReply(x, (void **)&rep) == REDIS_OK && rep != NULL &&
                rep->type == REDIS_REPLY_ARRAY;
            if (rep != NULL)
                freeReplyObject(rep);
        }
        if (!ok) {
            redisFree(x);
            continue;
        }
        c->watch[i] = x;
        rd_watch_pending(c, i);   /* events read with the confirmations */
        if (c->watch[i] != NULL && c->watched && c->cur_port != 0 &&
            rd_sentinel_ask(c, i, ip, &port) == 0) {
            if (!c->fenced && (strcmp(ip, c->cur_ip) != 0 || port != c->cur_port))
                rd_send_switch(c, ip, port);
        }
    }
    c->watched = 1;
    c->watch_retry = rd_mono_ms() + RD_WATCH_RETRY_MS;
}

/* ------------------------------------------------------------------ */
/* Cluster                                                              */

static int
rd_link_find(const rd_topo_t *t, const char *ip, int port)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->links[i].port == port && strcmp(t->links[i].ip, ip) == 0)
            return (int)i;
    return -1;
}

/* Fill t's links and slot map from one node's CLUSTER SLOTS reply. */
static int
rd_slots_parse(rd_topo_t *t, const redisReply *rep, const char *asked_ip)
{
    size_t i;
    long long s;

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        return -EIO;
    for (i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i], *p;
        char ip[RD_IP_MAX];
        int idx;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
            return -EIO;
        p = e->element[2];
        if ((p->element[0]->type != REDIS_REPLY_STRING &&
             p->element[0]->type != REDIS_REPLY_NIL) ||
            p->element[1]->type != REDIS_REPLY_INTEGER ||
            (p->element[0]->type == REDIS_REPLY_STRING && p->element[0]->len >= RD_IP_MAX))
            return -EIO;
        /* No address (NULL, "" or "?"): the node we asked, on this port
         * (Redis's convention for an unknown endpoint). */
        if (p->element[0]->type == REDIS_REPLY_NIL || p->element[0]->len == 0 ||
            strcmp(p->element[0]->str, "?") == 0)
            snprintf(ip, sizeof(ip), "%s", asked_ip);
        else
            snprintf(ip, sizeof(ip), "%s", p->element[0]->str);
        idx = rd_link_find(t, ip, (int)p->element[1]->integer);
        if (idx < 0) {
            if (t->n == RD_NODES_MAX)
                return -E2BIG;
            idx = (int)t->n++;
            snprintf(t->links[idx].ip, sizeof(t->links[idx].ip), "%s", ip);
            t->links[idx].port = (int)p->element[1]->integer;
        }
        for (s = e->element[0]->integer; s <= e->element[1]->integer && s < RD_SLOTS; s++)
            if (s >= 0)
                t->slots[s] = (uint16_t)idx;
    }
    return 0;
}

/* Ask one node for the slot map. */
static int
rd_cluster_ask(rd_conn_t *c, const char *ip, int port, rd_topo_t *t)
{
    const char *argv[2] = { "CLUSTER", "SLOTS" };
    size_t lens[2] = { 7, 5 }, i;
    redisContext *x = rd_dial(c->cfg, ip, port, c->cfg->user, c->cfg->pass);
    redisReply *rep;
    int rc;

    if (x == NULL)
        return -ENOTCONN;
    rep = rd_command(x, 2, argv, lens);
    redisFree(x);
    if (rep == NULL)
        return -ENOTCONN;
    t->n = 0;
    for (i = 0; i < RD_SLOTS; i++)
        t->slots[i] = RD_NO_NODE;
    rc = rd_slots_parse(t, rep, ip);
    freeReplyObject(rep);
    return rc;
}

static int
rd_build_cluster(rd_conn_t *c, rd_topo_t *t)
{
    const rd_cfg_t *cfg = c->cfg;
    size_t i, up = 0;
    int rc = -ENOTCONN;

    if ((t->slots = gc_malloc(RD_SLOTS * sizeof(*t->slots))) == NULL)
        return -ENOMEM;
    /* The primaries of the last map know a failover or a reshard first. */
    for (i = 0; i < c->nknown && rc != 0 && !rd_conn_stopping(c); i++)
        rc = rd_cluster_ask(c, c->known[i].ip, c->known[i].port, t);
    for (i = 0; i < cfg->nseeds && rc != 0 && !rd_conn_stopping(c); i++) {
        rd_addrs_t a;
        int k;

        if (rd_resolve(cfg->seeds[i].host, &a, cfg->connect_ms) != 0)
            continue;
        for (k = 0; k < a.n && rc != 0 && !rd_conn_stopping(c); k++)
            rc = rd_cluster_ask(c, a.ip[k], cfg->seeds[i].port, t);
    }
    if (rc != 0)
        return rc;
    for (i = 0; i < t->n && !rd_conn_stopping(c); i++)
        if (rd_link_open(c, &t->links[i], 0) == 0)
            up++;
    c->nknown = t->n;
    for (i = 0; i < t->n; i++) {
        c->known[i] = t->links[i];
        c->known[i].cmd = c->known[i].sub = NULL;
    }
    return up > 0 ? 0 : -ENOTCONN;
}

/* ------------------------------------------------------------------ */
/* The thread                                                           */

static rd_topo_t *
rd_build(rd_conn_t *c)
{
    const rd_cfg_t *cfg = c->cfg;
    rd_topo_t *t = gc_calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    if (cfg->mode == RD_MODE_SENTINEL) {
        t->n = 1;
        t->err = rd_build_sentinel(c, t);
    } else if (cfg->mode == RD_MODE_CLUSTER) {
        t->err = rd_build_cluster(c, t);
    } else {
        rd_link_t *l = &t->links[0];
        rd_addrs_t a;
        int k;

        t->n = 1;
        l->port = cfg->seeds[0].port;
        t->err = rd_resolve(cfg->seeds[0].host, &a, cfg->connect_ms);
        for (k = 0; t->err == 0 && k < a.n; k++) {
            memcpy(l->ip, a.ip[k], sizeof(l->ip));
            if (rd_link_open(c, l, 0) == 0)
                break;
            if (k + 1 == a.n || rd_conn_stopping(c))
                t->err = -ENOTCONN;
        }
    }
    return t;
}

static void *
rd_conn_main(void *arg)
{
    rd_conn_t *c = arg;
    sigset_t set;
    int k;

    /* hiredis writes with write(2): a closed peer must give EPIPE, not kill
     * the program.  A SIGPIPE left pending on this thread dies with it. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        struct pollfd fds[1 + RD_NODES_MAX];
        size_t widx[1 + RD_NODES_MAX];
        int want, stop, nfds = 1, timeout = -1;

        pthread_mutex_lock(&c->lock);
        stop = c->stop;
        want = c->want;
        c->want = 0;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
        if (want) {
            rd_topo_t *t = rd_build(c);
            void *note;

            pthread_mutex_lock(&c->lock);
            rd_topo_free(c->ready);   /* an older one nobody took */
            c->ready = t;
            c->served++;
            pthread_cond_broadcast(&c->served_cv);
            pthread_mutex_unlock(&c->lock);
            /* The worker also looks (rd_conn_take) when its reconnection
             * timer fires, so a note lost for lack of memory only delays. */
            if ((note = gc_host_msg_buf(1)) != NULL &&
                gc_host_msg_send(c->h, c->topo_tag, note) != 0)
                gc_host_msg_free(note);
            continue;
        }
        fds[0].fd = c->wake[0];
        fds[0].events = POLLIN;
        if (c->cfg->mode == RD_MODE_SENTINEL && c->cur_port != 0) {
            uint64_t now = rd_mono_ms();
            size_t i, missing = 0;

            if (c->fenced && now - c->fence_since >= RD_FENCE_MAX_MS) {
                for (i = 0; i < c->cfg->nseeds; i++)
                    c->trying[i] = 0;
                rd_fence_update(c, "", 0);   /* never ended: give up */
            }
            if (now >= c->watch_retry)
                rd_watch_fill(c);
            for (i = 0; i < c->cfg->nseeds; i++) {
                if (c->watch[i] == NULL) {
                    missing++;
                    continue;
                }
                fds[nfds].fd = c->watch[i]->fd;
                fds[nfds].events = POLLIN;
                widx[nfds++] = i;
            }
            now = rd_mono_ms();
            if (missing > 0)
                timeout = c->watch_retry > now ? (int)(c->watch_retry - now) : 0;
            if (c->fenced) {
                uint64_t end = c->fence_since + RD_FENCE_MAX_MS;
                int left = end > now ? (int)(end - now) : 0;

                timeout = timeout < 0 || left < timeout ? left : timeout;
            }
        }
        if (poll(fds, (nfds_t)nfds, timeout) < 0)
            continue;   /* EINTR */
        if (fds[0].revents != 0) {
            char buf[64];

            while (read(c->wake[0], buf, sizeof(buf)) > 0)
                ;
        }
        for (k = 1; k < nfds; k++)
            if (fds[k].revents != 0 && c->watch[widx[k]] != NULL)
                rd_watch_read(c, widx[k]);
    }
    for (k = 0; k < (int)c->cfg->nseeds && c->cfg->mode == RD_MODE_SENTINEL; k++)
        rd_watch_close(c, (size_t)k);
    return NULL;
}

static void
rd_conn_wake(rd_conn_t *c)
{
    ssize_t n;

    do
        n = write(c->wake[1], "w", 1);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full, so a wake-up is pending anyway. */
}

int
rd_conn_start(const rd_cfg_t *cfg, gc_host_t *h, uint32_t topo_tag, uint32_t switch_tag,
              uint32_t fence_tag, rd_conn_t **out)
{
    pthread_condattr_t ca;
    rd_conn_t *c;

    *out = NULL;
    if ((c = gc_calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    c->cfg = cfg;
    c->h = h;
    c->topo_tag = topo_tag;
    c->switch_tag = switch_tag;
    c->fence_tag = fence_tag;
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        gc_free(c);
        return -EMFILE;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->served_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&c->thread, NULL, rd_conn_main, c) != 0) {
        pthread_cond_destroy(&c->served_cv);
        pthread_mutex_destroy(&c->lock);
        close(c->wake[0]);
        close(c->wake[1]);
        gc_free(c);
        return -EAGAIN;
    }
    *out = c;
    return 0;
}

void
rd_conn_request(rd_conn_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->want = 1;
    pthread_mutex_unlock(&c->lock);
    rd_conn_wake(c);
}

rd_topo_t *
rd_conn_take(rd_conn_t *c)
{
    rd_topo_t *t;

    pthread_mutex_lock(&c->lock);
    t = c->ready;
    c->ready = NULL;
    pthread_mutex_unlock(&c->lock);
    return t;
}

int
rd_conn_wait(rd_conn_t *c, int ms)
{
    struct timespec ts;
    int served;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    while (c->served == 0 &&
           pthread_cond_timedwait(&c->served_cv, &c->lock, &ts) != ETIMEDOUT)
        ;
    served = c->served > 0;
    pthread_mutex_unlock(&c->lock);
    return served;
}

void
rd_conn_stop(rd_conn_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_mutex_unlock(&c->lock);
    rd_conn_wake(c);
    pthread_join(c->thread, NULL);
    rd_topo_free(c->ready);
    pthread_cond_destroy(&c->served_cv);
    pthread_mutex_destroy(&c->lock);
    close(c->wake[0]);
    close(c->wake[1]);
    gc_free(c);
}
