/*
 * A small harness for tests/test_redis.c: real redis-server processes and a
 * raw RESP client, header-only (every function static).  tests/redis_topo.h
 * builds on it for the Sentinel and Cluster suites (replicas, sentinels,
 * cluster nodes, redis-cli, black holes).
 *
 * Servers.  rh_server_new() takes one of a few static slots (so that a
 * checked teardown can find every server even after a failed test in
 * CK_FORK=no mode); rh_server_start() forks and execs
 *
 *   redis-server --port N --bind 127.0.0.1 --save '' --appendonly no
 *                --daemonize no --protected-mode no [--requirepass P]
 *
 * plus the slot's extra arguments (rh_server_arg: "$PORT" in one stands
 * for the port) on a free port (bind port 0, read it back; another port on
 * failure) or on the slot's port (a restart: retried while the port is
 * still busy), and waits, bounded, until it answers PING.  --dir is the
 * per-test directory rh_dir when one is set (tests/redis_topo.h), else
 * /tmp.  A sentinel slot (rh_server_sentinel) runs redis-sentinel on a
 * config file it writes at the first start (sentinels rewrite their own
 * config, so it lives in rh_dir and is kept across a restart).  A slot
 * with want_bus set gets a port below 32768 whose +10000 (the cluster
 * bus) is free too.  The child asks for SIGKILL when its
 * parent dies (PR_SET_PDEATHSIG): Check's fork mode ends a failed test with
 * _exit(), which runs no teardown, so that is what reaps the server then.
 * Between fork and exec the child calls only async-signal-safe functions
 * (the argument vector is built before the fork).  rh_server_stop() sends
 * SIGCONT (in case it was frozen) and SIGTERM, waits (bounded), then
 * SIGKILL.  Set GC_REDIS_LOG=1 to keep the servers' log on stderr.
 *
 * Raw client.  rh_cmd() opens a fresh connection (2 s send/receive
 * timeouts), optionally AUTHs and SELECTs a db, sends one command as a RESP
 * array of bulk strings (binary safe) and parses the reply into an
 * rh_reply_t tree; NULL on any I/O or protocol failure.  It never raises
 * SIGPIPE (MSG_NOSIGNAL).
 */
#ifndef GC_REDIS_HARNESS_H
#define GC_REDIS_HARNESS_H

#include <gencache/gencache.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RH_FN static __attribute__((unused))

#define RH_START_WAIT_MS 5000   /* until the server answers PING */
#define RH_STOP_WAIT_MS 5000    /* SIGTERM, then SIGKILL */
#define RH_IO_TIMEOUT_MS 2000   /* raw client */
#define RH_MAX_SERVERS 10      /* 6 cluster nodes; 2 servers + 3 sentinels */
#define RH_MAX_EXTRA 12        /* extra arguments per server */
#define RH_ARG_MAX 320         /* bytes per extra argument */

/* ------------------------------------------------------------------ */
/* Time                                                                 */

RH_FN int64_t
rh_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

RH_FN void
rh_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------ */
/* Finding redis-server                                                 */

static char rh_server_path[PATH_MAX];
static char rh_sentinel_path[PATH_MAX];

/* The per-test directory (tests/redis_topo.h): servers' --dir, sentinels'
 * config files, cluster nodes' nodes.conf.  "": none (/tmp). */
static char rh_dir[256];

/* Look for program `name` in PATH (access X_OK) and store its path in out
 * (PATH_MAX bytes).  1 if found, 0 if not (out is then ""). */
RH_FN int
rh_find_prog(const char *name, char *out)
{
    const char *path = getenv("PATH"), *p, *end;
    size_t nl = strlen(name);

    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
        size_t n;

        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        n = (size_t)(end - p);
        if (n == 0)
            continue;
        if (n + 1 + nl + 1 > PATH_MAX)
            continue;
        memcpy(out, p, n);
        out[n] = '/';
        memcpy(out + n + 1, name, nl + 1);
        if (access(out, X_OK) == 0)
            return 1;
    }
    out[0] = '\0';
    return 0;
}

/* Look for redis-server in PATH.  1 if found (its path is kept for
 * rh_server_start), 0 if not. */
RH_FN int
rh_find_server(void)
{
    return rh_find_prog("redis-server", rh_server_path);
}

/* ------------------------------------------------------------------ */
/* Raw RESP client                                                      */

typedef struct rh_reply {
    char type;                 /* '+', '-', ':', '$', '*'; 'n' for a nil */
    long long integer;         /* ':' */
    char *str;                 /* '+', '-', '$' (NUL-terminated copy) */
    size_t len;
    struct rh_reply *elem;     /* '*' */
    size_t n;
} rh_reply_t;

typedef struct rh_reader {
    int fd;
    char buf[4096];
    size_t pos, len;
} rh_reader_t;

RH_FN void
rh_reply_clear(rh_reply_t *r)
{
    size_t i;

    if (r == NULL)
        return;
    free(r->str);
    for (i = 0; i < r->n; i++)
        rh_reply_clear(&r->elem[i]);
    free(r->elem);
    memset(r, 0, sizeof(*r));
}

RH_FN void
rh_reply_free(rh_reply_t *r)
{
    rh_reply_clear(r);
    free(r);
}

static int
rh_read_byte(rh_reader_t *rd, char *c)
{
    if (rd->pos == rd->len) {
        ssize_t n;

        do
            n = recv(rd->fd, rd->buf, sizeof(rd->buf), 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return -1;
        rd->pos = 0;
        rd->len = (size_t)n;
    }
    *c = rd->buf[rd->pos++];
    return 0;
}

/* A line without its CRLF, into line (cap bytes, NUL-terminated). */
static int
rh_read_line(rh_reader_t *rd, char *line, size_t cap)
{
    size_t n = 0;
    char c;

    for (;;) {
        if (rh_read_byte(rd, &c) != 0)
            return -1;
        if (c == '\r') {
            if (rh_read_byte(rd, &c) != 0 || c != '\n')
                return -1;
            line[n] = '\0';
            return 0;
        }
        if (n + 1 >= cap)
            return -1;
        line[n++] = c;
    }
}

static int
rh_read_reply(rh_reader_t *rd, rh_reply_t *r, int depth)
{
    char line[512], c;
    long long v;
    size_t i;

    memset(r, 0, sizeof(*r));
    if (depth > 8 || rh_read_byte(rd, &c) != 0 || rh_read_line(rd, line, sizeof(line)) != 0)
        return -1;
    r->type = c;
    switch (c) {
    case '+':
    case '-':
        r->len = strlen(line);
        r->str = strdup(line);
        return r->str == NULL ? -1 : 0;
    case ':':
        r->integer = strtoll(line, NULL, 10);
        return 0;
    case '$':
        v = strtoll(line, NULL, 10);
        if (v < 0) {
            r->type = 'n';
            return 0;
        }
        r->len = (size_t)v;
        r->str = malloc(r->len + 1);
        if (r->str == NULL)
            return -1;
        for (i = 0; i < r->len; i++)
            if (rh_read_byte(rd, &r->str[i]) != 0)
                return -1;
        r->str[r->len] = '\0';
        if (rh_read_byte(rd, &c) != 0 || c != '\r' || rh_read_byte(rd, &c) != 0 || c != '\n')
            return -1;
        return 0;
    case '*':
        v = strtoll(line, NULL, 10);
        if (v < 0) {
            r->type = 'n';
            return 0;
        }
        r->n = (size_t)v;
        r->elem = calloc(r->n ? r->n : 1, sizeof(*r->elem));
        if (r->elem == NULL)
            return -1;
        for (i = 0; i < r->n; i++)
            if (rh_read_reply(rd, &r->elem[i], depth + 1) != 0)
                return -1;
        return 0;
    default:
        return -1;
    }
}

static int
rh_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
rh_send_cmd(int fd, int argc, const char *const *argv, const size_t *argl)
{
    size_t cap = 32, n, i;
    char *buf, *p;
    int rc;

    for (i = 0; i < (size_t)argc; i++)
        cap += 32 + (argl ? argl[i] : strlen(argv[i]));
    buf = malloc(cap);
    if (buf == NULL)
        return -1;
    p = buf + sprintf(buf, "*%d\r\n", argc);
    for (i = 0; i < (size_t)argc; i++) {
        n = argl ? argl[i] : strlen(argv[i]);
        p += sprintf(p, "$%zu\r\n", n);
        memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    rc = rh_send_all(fd, buf, (size_t)(p - buf));
    free(buf);
    return rc;
}

/* A connected socket to 127.0.0.1:port with I/O timeouts, or -1. */
static int
rh_connect(int port, int timeout_ms)
{
    struct sockaddr_in sa;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A raw connection kept open (pipelining, MULTI/EXEC). */
typedef struct rh_conn {
    rh_reader_t rd;
} rh_conn_t;

RH_FN void
rh_conn_close(rh_conn_t *c)
{
    if (c == NULL)
        return;
    close(c->rd.fd);
    free(c);
}

/* Send one command (argl NULL: C strings); 0 or -1. */
RH_FN int
rh_conn_send(rh_conn_t *c, int argc, const char *const *argv, const size_t *argl)
{
    return rh_send_cmd(c->rd.fd, argc, argv, argl);
}

/* Read the next reply (rh_reply_free it), NULL on failure. */
RH_FN rh_reply_t *
rh_conn_read(rh_conn_t *c)
{
    rh_reply_t *r = calloc(1, sizeof(*r));

    if (r != NULL && rh_read_reply(&c->rd, r, 0) != 0) {
        rh_reply_free(r);
        r = NULL;
    }
    return r;
}

/* Open a connection to 127.0.0.1:port, AUTH password and SELECT db first
 * when given (password NULL, db < 0 for none).  NULL on failure, or when
 * AUTH / SELECT failed. */
RH_FN rh_conn_t *
rh_conn_open(int port, const char *password, int db)
{
    rh_conn_t *c;
    rh_reply_t *r;
    int fd = rh_connect(port, RH_IO_TIMEOUT_MS);

    if (fd < 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->rd.fd = fd;
    if (password != NULL) {
        const char *a[2] = { "AUTH", password };

        if (rh_conn_send(c, 2, a, NULL) != 0 || (r = rh_conn_read(c)) == NULL)
            goto fail;
        if (r->type != '+') {
            rh_reply_free(r);
            goto fail;
        }
        rh_reply_free(r);
    }
    if (db >= 0) {
        char dbs[16];
        const char *a[2] = { "SELECT", dbs };

        snprintf(dbs, sizeof(dbs), "%d", db);
        if (rh_conn_send(c, 2, a, NULL) != 0 || (r = rh_conn_read(c)) == NULL)
            goto fail;
        if (r->type != '+') {
            rh_reply_free(r);
            goto fail;
        }
        rh_reply_free(r);
    }
    return c;
fail:
    rh_conn_close(c);
    return NULL;
}

/* One command on a new connection (AUTH password and SELECT db first when
 * given: password NULL, db < 0 for none).  argl NULL: C strings.  Returns
 * the reply (rh_reply_free it) or NULL on an I/O or protocol failure, or
 * when AUTH / SELECT failed. */
RH_FN rh_reply_t *
rh_cmd(int port, const char *password, int db, int argc, const char *const *argv,
       const size_t *argl)
{
    rh_conn_t *c = rh_conn_open(port, password, db);
    rh_reply_t *r = NULL;

    if (c == NULL)
        return NULL;
    if (rh_conn_send(c, argc, argv, argl) == 0)
        r = rh_conn_read(c);
    rh_conn_close(c);
    return r;
}

/* ------------------------------------------------------------------ */
/* Servers                                                              */

typedef struct rh_server {
    int used;
    pid_t pid;                 /* 0: not running */
    int port;                  /* 0: not chosen yet */
    char password[64];         /* "" : none; else --requirepass */
    int frozen;                /* SIGSTOP'ed */
    char extra[RH_MAX_EXTRA][RH_ARG_MAX]; /* more arguments ("$PORT": the port) */
    int n_extra;
    int want_bus;              /* the port + 10000 must be free too (cluster bus) */
    int sentinel;              /* run redis-sentinel on conf */
    char conf_body[1024];      /* sentinel: config lines after port, bind, dir */
    char conf[PATH_MAX];       /* sentinel: its config file ("" until started) */
} rh_server_t;

static rh_server_t rh_servers[RH_MAX_SERVERS];

/* A free TCP port on 127.0.0.1 (bound to port 0 and read back), or -1. */
RH_FN int
rh_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* A free port p below 32768 (out of Linux's default ephemeral range, where
 * the library's own connections take their ports) whose p + 10000 is free
 * too: a cluster node's bus port.  -1 when none was found. */
RH_FN int
rh_free_port_pair(void)
{
    static unsigned seed;
    int attempt;

    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)rh_now_ms();
    for (attempt = 0; attempt < 200; attempt++) {
        int port = 15000 + (int)(rand_r(&seed) % 7700), ok = 1, i;

        for (i = 0; i < 2 && ok; i++) {
            struct sockaddr_in sa;
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            sa.sin_port = htons((uint16_t)(port + i * 10000));
            ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
            if (fd >= 0)
                close(fd);
        }
        if (ok)
            return port;
    }
    return -1;
}

/* Append an argument (printf format; "$PORT" in the result stands for the
 * server's port) to a slot not started yet.  0, or -1 when full. */
RH_FN __attribute__((format(printf, 2, 3))) int
rh_server_arg(rh_server_t *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (s->n_extra >= RH_MAX_EXTRA)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(s->extra[s->n_extra], RH_ARG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= RH_ARG_MAX)
        return -1;
    s->n_extra++;
    return 0;
}

/* A new server slot (not started), with a password or NULL. */
RH_FN rh_server_t *
rh_server_new(const char *password)
{
    int i;

    for (i = 0; i < RH_MAX_SERVERS; i++) {
        if (!rh_servers[i].used) {
            memset(&rh_servers[i], 0, sizeof(rh_servers[i]));
            rh_servers[i].used = 1;
            if (password != NULL)
                snprintf(rh_servers[i].password, sizeof(rh_servers[i].password), "%s",
                         password);
            return &rh_servers[i];
        }
    }
    return NULL;
}

/* Does something answer PING on port?  1: +PONG (or -NOAUTH: the server is
 * up and wants a password), 0: not (yet). */
RH_FN int
rh_ping(int port)
{
    static const char *const ping[1] = { "PING" };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 1, ping, NULL);
    int up;

    if (r == NULL)
        return 0;
    up = (r->type == '+' && strcmp(r->str, "PONG") == 0) ||
        (r->type == '-' && strncmp(r->str, "NOAUTH", 6) == 0);
    rh_reply_free(r);
    return up;
}

/* One attempt on s->port: 0 when the server answers PING, -1 when it
 * exited (port busy...) or did not answer in time (then it is killed). */
/* Copy src into dst (cap bytes) with every "$PORT" replaced by port. */
static void
rh_subst_port(char *dst, size_t cap, const char *src, const char *port)
{
    size_t n = 0, pl = strlen(port);

    while (*src != '\0' && n + 1 < cap) {
        if (strncmp(src, "$PORT", 5) == 0 && n + pl + 1 < cap) {
            memcpy(dst + n, port, pl);
            n += pl;
            src += 5;
        } else {
            dst[n++] = *src++;
        }
    }
    dst[n] = '\0';
}

/* A sentinel's config file, written at its first start (the port is known
 * then); kept when it exists (a restart: the sentinel rewrote it with what
 * it learnt).  1: written now, 0: kept, -1: error. */
static int
rh_sentinel_conf(rh_server_t *s)
{
    FILE *f;

    snprintf(s->conf, sizeof(s->conf), "%s/sentinel-%d.conf", rh_dir[0] ? rh_dir : "/tmp",
             s->port);
    if (access(s->conf, F_OK) == 0)
        return 0;
    f = fopen(s->conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir %s\n%s",
            s->port, rh_dir[0] ? rh_dir : "/tmp", s->conf_body);
    if (fclose(f) != 0) {
        unlink(s->conf);
        return -1;
    }
    return 1;
}

static int
rh_server_try(rh_server_t *s)
{
    char port[16], xargs[RH_MAX_EXTRA][RH_ARG_MAX];
    const char *argv[24 + RH_MAX_EXTRA];
    const char *prog = s->sentinel ? rh_sentinel_path : rh_server_path;
    int argc = 0, devnull = -1, status, fd, i, fresh_conf = 0;
    pid_t parent = getpid(), pid;
    int64_t deadline;

    snprintf(port, sizeof(port), "%d", s->port);
    if (s->sentinel) {
        fresh_conf = rh_sentinel_conf(s);
        if (fresh_conf < 0)
            return -1;
        argv[argc++] = rh_sentinel_path;
        argv[argc++] = s->conf;
        goto args_done;
    }
    argv[argc++] = rh_server_path;
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    argv[argc++] = "--daemonize";
    argv[argc++] = "no";
    argv[argc++] = "--protected-mode";
    argv[argc++] = "no";
    argv[argc++] = "--dir";
    argv[argc++] = rh_dir[0] ? rh_dir : "/tmp";
    if (s->password[0] != '\0') {
        argv[argc++] = "--requirepass";
        argv[argc++] = s->password;
    }
    for (i = 0; i < s->n_extra; i++) {
        rh_subst_port(xargs[i], sizeof(xargs[i]), s->extra[i], port);
        argv[argc++] = xargs[i];
    }
args_done:
    argv[argc] = NULL;
    if (getenv("GC_REDIS_LOG") == NULL)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

    pid = fork();
    if (pid < 0) {
        if (devnull >= 0)
            close(devnull);
        goto failed;
    }
    if (pid == 0) {
        /* Async-signal-safe calls only from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        /* Leave the test's descriptors (the library's Redis connections
         * among them) behind. */
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    if (devnull >= 0)
        close(devnull);
    s->pid = pid;
    s->frozen = 0;
    deadline = rh_now_ms() + RH_START_WAIT_MS;
    while (rh_now_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            goto failed;
        }
        if (rh_ping(s->port))
            return 0;
        rh_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    s->pid = 0;
failed:
    /* A sentinel that never ran on this port leaves no config behind (the
     * next attempt may take another port). */
    if (fresh_conf)
        unlink(s->conf);
    return -1;
}

/*
 * Start s: on s->port when it has one (a restart: retried for a while in
 * case the port is still busy), else on a free port (another one on each
 * failure).  0 on success, -1 if it would not start.
 */
RH_FN int
rh_server_start(rh_server_t *s)
{
    int attempt, fixed = s->port != 0;

    if (rh_server_path[0] == '\0' && !rh_find_server())
        return -1;
    if (s->sentinel && rh_sentinel_path[0] == '\0' &&
        !rh_find_prog("redis-sentinel", rh_sentinel_path))
        return -1;
    if (s->pid != 0)
        return -1;
    for (attempt = 0; attempt < 20; attempt++) {
        if (!fixed) {
            s->port = s->want_bus ? rh_free_port_pair() : rh_free_port();
            if (s->port <= 0)
                continue;
        }
        if (rh_server_try(s) == 0)
            return 0;
        rh_sleep_ms(fixed ? 100 : 10);
    }
    if (!fixed)
        s->port = 0;
    return -1;
}

/* Stop s (SIGCONT, SIGTERM, bounded wait, SIGKILL) and reap it.  The slot
 * keeps its port for a restart.  0, or -1 if it was not running. */
RH_FN int
rh_server_stop(rh_server_t *s)
{
    int64_t deadline;
    int status;

    if (s->pid == 0)
        return -1;
    kill(s->pid, SIGCONT);
    kill(s->pid, SIGTERM);
    s->frozen = 0;
    deadline = rh_now_ms() + RH_STOP_WAIT_MS;
    while (rh_now_ms() < deadline) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return 0;
        }
        rh_sleep_ms(2);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return 0;
}

/* Kill s at once (SIGKILL) and reap it: a crash. */
RH_FN int
rh_server_kill(rh_server_t *s)
{
    int status;

    if (s->pid == 0)
        return -1;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    s->frozen = 0;
    return 0;
}

/* Freeze / thaw s (SIGSTOP / SIGCONT): a server that accepts connections
 * (the kernel completes them) but never answers. */
RH_FN int
rh_server_freeze(rh_server_t *s, int frozen)
{
    if (s->pid == 0 || kill(s->pid, frozen ? SIGSTOP : SIGCONT) != 0)
        return -1;
    s->frozen = frozen;
    return 0;
}

/* Stop every server and free every slot (a checked teardown). */
RH_FN void
rh_server_stop_all(void)
{
    int i;

    for (i = 0; i < RH_MAX_SERVERS; i++) {
        if (rh_servers[i].used && rh_servers[i].pid != 0)
            rh_server_stop(&rh_servers[i]);
        rh_servers[i].used = 0;
    }
}

/* A command with C-string arguments (NULL-terminated list) on s, db (< 0:
 * none), authenticated with s's password. */
RH_FN rh_reply_t *
rh_server_cmd(const rh_server_t *s, int db, const char *arg0, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;

    argv[argc++] = arg0;
    va_start(ap, arg0);
    while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL)
        argc++;
    va_end(ap);
    return rh_cmd(s->port, s->password[0] ? s->password : NULL, db, argc, argv, NULL);
}

/* A kept connection to s (authenticated), on db (< 0: none). */
RH_FN rh_conn_t *
rh_server_conn(const rh_server_t *s, int db)
{
    return rh_conn_open(s->port, s->password[0] ? s->password : NULL, db);
}

/* The same with binary arguments. */
RH_FN rh_reply_t *
rh_server_cmdb(const rh_server_t *s, int db, int argc, const char *const *argv,
               const size_t *argl)
{
    return rh_cmd(s->port, s->password[0] ? s->password : NULL, db, argc, argv, argl);
}

/* Is the Redis backend built in (1), or was gencache built without
 * hiredis (0)?  Asked in a child process (cache_new, which starts no
 * worker), so that a suite's runner forks its test processes from a
 * library it has never used. */
RH_FN int
rh_backend_built(void)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        cache_redis_opts_t r = { .host = "127.0.0.1", .port = 1 };
        cache_t *c = NULL;
        int rc = cache_new(&(cache_opts_t){ .redis = &r }, &c);

        if (rc == 0) {
            cache_stop(c, 5000);
            cache_release(c);
        }
        _exit(rc == -ENOTSUP ? 3 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 1;
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 3);
}

#endif /* GC_REDIS_HARNESS_H */
