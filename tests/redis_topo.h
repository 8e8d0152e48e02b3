/*
 * Redis topologies for the Sentinel and Cluster suites (tests/test_sentinel.c,
 * tests/test_cluster.c) and the black-hole tcase of tests/test_redis.c,
 * built on tests/redis_harness.h; header-only, every function static.
 *
 * Everything runs on 127.0.0.1, in processes this test started:
 *   - a per-test directory (rh_tmpdir_new: mkdtemp) holding the servers'
 *     dumps, the sentinels' config files (a sentinel rewrites its own), the
 *     cluster nodes' nodes-<port>.conf and redis-cli's logs;
 *     rh_topo_teardown removes it.  A failed test ends without its
 *     teardown (Check's fork mode), so the suite's main makes one base
 *     directory for the run first (rh_topo_base_new: the tests' processes
 *     inherit its name and make theirs inside) and removes it, with what
 *     failed tests left in it, at the end (rh_topo_base_remove);
 *   - primaries and replicas (rh_primary_new, rh_replica_new: --replicaof,
 *     diskless sync without delay), sentinels (rh_sentinel_new: a config
 *     monitoring one primary with quorum 2, down-after 1000 ms, failover
 *     timeout 5000 ms), cluster nodes (rh_cluster_node_new: --cluster-enabled
 *     on a port whose +10000, the bus, is free too);
 *   - redis-cli runs (rh_proc_start / rh_proc_wait: --cluster create,
 *     --cluster reshard in the background), their output kept in a log that
 *     is printed when they fail;
 *   - black holes (rh_hole_open): a listening socket with a backlog of 1
 *     that never accepts, its accept queue filled by the harness itself, so
 *     that a connect() to it hangs (the kernel drops the SYN) until the
 *     caller's timeout.
 * The rules of tests/redis_harness.h hold for every process: each asks for
 * SIGKILL when the thread that forked it dies (PR_SET_PDEATHSIG: fork only
 * from the test's main thread), only async-signal-safe calls run between
 * fork and exec, every wait is bounded, and rh_topo_teardown kills what is
 * left (redis-cli runs, servers, sentinels), closes the black holes and
 * removes the directory.
 *
 * Cluster helpers read the cluster's own view: CLUSTER NODES (rh_cluster_nodes),
 * CLUSTER SLOTS (rh_cluster_slot_owners), CLUSTER INFO; rh_key_slot is
 * Redis's CRC16 key slot with hash tags, checked against CLUSTER KEYSLOT by
 * the suites' harness tcase; rh_cluster_cmd is a raw command that follows
 * MOVED and ASK.
 */
#ifndef GC_REDIS_TOPO_H
#define GC_REDIS_TOPO_H

#include "redis_harness.h"

#include <check.h>

#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>

#define RH_MAX_PROCS 8
#define RH_MAX_HOLES 4
#define RH_HOLE_FILL 8         /* connections queued to fill a black hole */
#define RH_SLOTS 16384

static char rh_cli_path[PATH_MAX];

/* ------------------------------------------------------------------ */
/* Programs and the per-test directory                                  */

/* Find redis-server, redis-sentinel and redis-cli in PATH.  NULL when all
 * are there, else the name of the first missing one. */
RH_FN const char *
rh_topo_missing(void)
{
    if (!rh_find_server())
        return "redis-server";
    if (!rh_find_prog("redis-sentinel", rh_sentinel_path))
        return "redis-sentinel";
    if (!rh_find_prog("redis-cli", rh_cli_path))
        return "redis-cli";
    return NULL;
}

/* The run's base directory ("": none, tests' directories go in /tmp). */
static char rh_base[128];

/* Remove directory `dir` and what is in it, `depth` levels of
 * subdirectories deep. */
static void
rh_rmtree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];

    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (unlink(path) != 0 && errno == EISDIR && depth > 0)
                rh_rmtree(path, depth - 1);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Create the run's base directory (in main, before the tests).  0 or -1. */
RH_FN int
rh_topo_base_new(void)
{
    char tmpl[] = "/tmp/gencache-topo-XXXXXX";

    if (mkdtemp(tmpl) == NULL)
        return -1;
    snprintf(rh_base, sizeof(rh_base), "%s", tmpl);
    return 0;
}

/* Remove the base directory with every test's directory left in it (in
 * main, after the tests: their processes are gone by then). */
RH_FN void
rh_topo_base_remove(void)
{
    if (rh_base[0] != '\0')
        rh_rmtree(rh_base, 1);
    rh_base[0] = '\0';
}

/* Create the per-test directory (rh_dir), in the base directory when there
 * is one.  0 or -1. */
RH_FN int
rh_tmpdir_new(void)
{
    char tmpl[sizeof(rh_base) + 32];

    if (rh_dir[0] != '\0')
        return -1;
    snprintf(tmpl, sizeof(tmpl), "%s/%s", rh_base[0] ? rh_base : "/tmp",
             rh_base[0] ? "t-XXXXXX" : "gencache-topo-XXXXXX");
    if (mkdtemp(tmpl) == NULL)
        return -1;
    snprintf(rh_dir, sizeof(rh_dir), "%s", tmpl);
    return 0;
}

/* Remove the per-test directory and the files in it (it has no
 * subdirectories).  Only after every process using it is gone. */
RH_FN void
rh_tmpdir_remove(void)
{
    if (rh_dir[0] == '\0')
        return;
    rh_rmtree(rh_dir, 0);
    rh_dir[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* INFO                                                                 */

/* Field `field` of INFO `section` on port (password NULL: none), as a
 * string into out (cap bytes).  0, or -1 (no answer, no such field). */
RH_FN int
rh_info_port(int port, const char *password, const char *section, const char *field,
             char *out, size_t cap)
{
    const char *argv[2] = { "INFO", section };
    rh_reply_t *r = rh_cmd(port, password, -1, 2, argv, NULL);
    size_t fl = strlen(field);
    const char *p;
    int rc = -1;

    if (r == NULL)
        return -1;
    if (r->type == '$') {
        for (p = r->str; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
            if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
                size_t n = strcspn(p + fl + 1, "\r\n");

                if (n >= cap)
                    n = cap - 1;
                memcpy(out, p + fl + 1, n);
                out[n] = '\0';
                rc = 0;
                break;
            }
        }
    }
    rh_reply_free(r);
    return rc;
}

RH_FN int
rh_info(const rh_server_t *s, const char *section, const char *field, char *out, size_t cap)
{
    return rh_info_port(s->port, s->password[0] ? s->password : NULL, section, field, out,
                        cap);
}

/* The same as a number; dflt when missing. */
RH_FN long long
rh_info_ll(const rh_server_t *s, const char *section, const char *field, long long dflt)
{
    char buf[64];

    return rh_info(s, section, field, buf, sizeof(buf)) == 0 ? strtoll(buf, NULL, 10) : dflt;
}

/* 1: role:master, 0: role:slave, -1: no answer. */
RH_FN int
rh_is_primary(const rh_server_t *s)
{
    char buf[32];

    if (rh_info(s, "replication", "role", buf, sizeof(buf)) != 0)
        return -1;
    return strcmp(buf, "master") == 0;
}

/* A replica's processed replication offset; -1 when unknown. */
RH_FN long long
rh_replica_offset(const rh_server_t *s)
{
    long long off = rh_info_ll(s, "replication", "slave_repl_offset", -1);

    return off >= 0 ? off : rh_info_ll(s, "replication", "master_repl_offset", -1);
}

/* Wait (bounded) until replica has processed the primary's replication
 * stream up to the primary's offset read now: every write the primary
 * acknowledged before this call is then on the replica.  0, or -1 (not in
 * ms, or no answer). */
RH_FN int
rh_wait_replica_caught_up(const rh_server_t *primary, const rh_server_t *replica, int ms)
{
    long long target = rh_info_ll(primary, "replication", "master_repl_offset", -1);
    int64_t deadline = rh_now_ms() + ms;

    if (target < 0)
        return -1;
    while (rh_now_ms() < deadline) {
        if (rh_replica_offset(replica) >= target)
            return 0;
        rh_sleep_ms(2);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Primaries, replicas, sentinels                                       */

/* A primary (not started) for replicas to follow: its dump under rh_dir
 * under its own name, and diskless full syncs without the 5 s delay Redis
 * waits by default for more replicas to join. */
RH_FN rh_server_t *
rh_primary_new(const char *password)
{
    rh_server_t *s = rh_server_new(password);

    if (s == NULL)
        return NULL;
    if (rh_server_arg(s, "--dbfilename") || rh_server_arg(s, "dump-$PORT.rdb") ||
        rh_server_arg(s, "--repl-diskless-sync-delay") || rh_server_arg(s, "0")) {
        s->used = 0;
        return NULL;
    }
    return s;
}

/* A replica of primary (not started; primary has its port). */
RH_FN rh_server_t *
rh_replica_new(const rh_server_t *primary)
{
    rh_server_t *s = rh_primary_new(primary->password[0] ? primary->password : NULL);

    if (s == NULL)
        return NULL;
    if (rh_server_arg(s, "--replicaof") || rh_server_arg(s, "127.0.0.1") ||
        rh_server_arg(s, "%d", primary->port) ||
        (primary->password[0] && (rh_server_arg(s, "--masterauth") ||
                                  rh_server_arg(s, "%s", primary->password)))) {
        s->used = 0;
        return NULL;
    }
    return s;
}

/* A sentinel (not started) monitoring primary_port as `master` with
 * quorum 2: a primary it cannot reach for 1000 ms is down, a failover
 * gives up after 5000 ms. */
RH_FN rh_server_t *
rh_sentinel_new(const char *master, int primary_port)
{
    rh_server_t *s = rh_server_new(NULL);

    if (s == NULL)
        return NULL;
    s->sentinel = 1;
    snprintf(s->conf_body, sizeof(s->conf_body),
             "sentinel resolve-hostnames no\n"
             "sentinel monitor %s 127.0.0.1 %d 2\n"
             "sentinel down-after-milliseconds %s 1000\n"
             "sentinel failover-timeout %s 5000\n",
             master, primary_port, master, master);
    return s;
}

/* SENTINEL GET-MASTER-ADDR-BY-NAME master on a sentinel: the port, or -1. */
RH_FN int
rh_sentinel_primary_port(const rh_server_t *sentinel, const char *master)
{
    rh_reply_t *r = rh_server_cmd(sentinel, -1, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", master,
                                  NULL);
    int port = -1;

    if (r != NULL && r->type == '*' && r->n == 2 && r->elem[1].type == '$')
        port = atoi(r->elem[1].str);
    rh_reply_free(r);
    return port;
}

/* Field `field` of SENTINEL MASTER master (a flat name/value list) into
 * out.  0 or -1. */
RH_FN int
rh_sentinel_master_field(const rh_server_t *sentinel, const char *master, const char *field,
                         char *out, size_t cap)
{
    rh_reply_t *r = rh_server_cmd(sentinel, -1, "SENTINEL", "MASTER", master, NULL);
    size_t i;
    int rc = -1;

    if (r != NULL && r->type == '*') {
        for (i = 0; i + 1 < r->n; i += 2) {
            if (r->elem[i].type == '$' && strcmp(r->elem[i].str, field) == 0 &&
                r->elem[i + 1].type == '$') {
                snprintf(out, cap, "%s", r->elem[i + 1].str);
                rc = 0;
                break;
            }
        }
    }
    rh_reply_free(r);
    return rc;
}

/* Wait (bounded) until every running sentinel of sents[0..n) sees master
 * as a healthy primary (flags "master"), with `replicas` replicas and
 * `others` other sentinels: what a failover needs (a known replica; for an
 * agreed one, the other sentinels).  0 or -1. */
RH_FN int
rh_sentinels_wait_ready(rh_server_t *const *sents, int n, const char *master, int replicas,
                        int others, int ms)
{
    int64_t deadline = rh_now_ms() + ms;

    while (rh_now_ms() < deadline) {
        int i, ready = 1;

        for (i = 0; i < n && ready; i++) {
            char flags[128], ns[16], no[16];

            if (sents[i]->pid == 0)
                continue;
            ready = rh_sentinel_master_field(sents[i], master, "flags", flags,
                                             sizeof(flags)) == 0 &&
                strcmp(flags, "master") == 0 &&
                rh_sentinel_master_field(sents[i], master, "num-slaves", ns, sizeof(ns)) == 0 &&
                atoi(ns) == replicas &&
                rh_sentinel_master_field(sents[i], master, "num-other-sentinels", no,
                                         sizeof(no)) == 0 &&
                atoi(no) == others;
        }
        if (ready)
            return 0;
        rh_sleep_ms(20);
    }
    return -1;
}

/* Wait (bounded) until every running sentinel names port as master's
 * primary.  0 or -1. */
RH_FN int
rh_sentinels_wait_primary(rh_server_t *const *sents, int n, const char *master, int port,
                          int ms)
{
    int64_t deadline = rh_now_ms() + ms;

    while (rh_now_ms() < deadline) {
        int i, agree = 1;

        for (i = 0; i < n && agree; i++)
            if (sents[i]->pid != 0)
                agree = rh_sentinel_primary_port(sents[i], master) == port;
        if (agree)
            return 0;
        rh_sleep_ms(10);
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* redis-cli runs                                                       */

typedef struct rh_proc {
    int used;
    pid_t pid;                 /* 0: reaped */
    int status;                /* exit code once reaped; -1: killed / signal */
    char log[PATH_MAX];        /* its stdout and stderr */
} rh_proc_t;

static rh_proc_t rh_procs[RH_MAX_PROCS];

/*
 * Start redis-cli with the arguments args[0..] (NULL-terminated, without
 * the program), its output in rh_dir/<name>-<n>.log.  NULL when there is
 * no free slot, no rh_dir or the fork failed.  The run dies with the
 * thread that started it (PR_SET_PDEATHSIG).
 */
RH_FN rh_proc_t *
rh_proc_start(const char *name, const char *const *args)
{
    const char *argv[40];
    int argc = 0, i, logfd, nullfd, fd;
    pid_t parent = getpid(), pid;
    rh_proc_t *p = NULL;

    if (rh_dir[0] == '\0' || (rh_cli_path[0] == '\0' &&
                              !rh_find_prog("redis-cli", rh_cli_path)))
        return NULL;
    for (i = 0; i < RH_MAX_PROCS && p == NULL; i++)
        if (!rh_procs[i].used)
            p = &rh_procs[i];
    if (p == NULL)
        return NULL;
    argv[argc++] = rh_cli_path;
    for (i = 0; args[i] != NULL && argc < 39; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    memset(p, 0, sizeof(*p));
    snprintf(p->log, sizeof(p->log), "%s/%s-%d.log", rh_dir, name, (int)(p - rh_procs));
    logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || nullfd < 0) {
        if (logfd >= 0)
            close(logfd);
        if (nullfd >= 0)
            close(nullfd);
        return NULL;
    }
    pid = fork();
    if (pid == 0) {
        /* Async-signal-safe calls only from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(nullfd, STDIN_FILENO);
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        execv(rh_cli_path, (char *const *)argv);
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    if (pid < 0)
        return NULL;
    p->used = 1;
    p->pid = pid;
    return p;
}

/* Has p exited?  1 (reaped), 0 (still running). */
RH_FN int
rh_proc_done(rh_proc_t *p)
{
    int status;

    if (p->pid == 0)
        return 1;
    if (waitpid(p->pid, &status, WNOHANG) != p->pid)
        return 0;
    p->pid = 0;
    p->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return 1;
}

/* Print p's log on stderr (after a failure). */
RH_FN void
rh_proc_dump_log(const rh_proc_t *p, const char *why)
{
    char line[512];
    FILE *f = fopen(p->log, "r");

    fprintf(stderr, "---- %s: %s\n", why, p->log);
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fclose(f);
    fprintf(stderr, "----\n");
}

/* Wait (bounded) for p; on timeout kill it.  Its exit code (0 success),
 * or -1 (killed: too slow, or died of a signal).  The log is printed
 * unless it exited 0.  Frees the slot. */
RH_FN int
rh_proc_wait(rh_proc_t *p, int ms)
{
    int64_t deadline = rh_now_ms() + ms;
    int status, rc;

    while (!rh_proc_done(p) && rh_now_ms() < deadline)
        rh_sleep_ms(5);
    if (p->pid != 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &status, 0);
        p->pid = 0;
        p->status = -1;
        fprintf(stderr, "redis-cli still running after %d ms: killed\n", ms);
    }
    rc = p->status;
    if (rc != 0)
        rh_proc_dump_log(p, "redis-cli failed");
    p->used = 0;
    return rc;
}

/* Run redis-cli with args (NULL-terminated) and wait at most ms: its exit
 * code as rh_proc_wait. */
RH_FN int
rh_cli(const char *name, int ms, const char *const *args)
{
    rh_proc_t *p = rh_proc_start(name, args);

    return p == NULL ? -1 : rh_proc_wait(p, ms);
}

RH_FN void
rh_proc_kill_all(void)
{
    int i, status;

    for (i = 0; i < RH_MAX_PROCS; i++) {
        if (rh_procs[i].used && rh_procs[i].pid != 0) {
            kill(rh_procs[i].pid, SIGKILL);
            waitpid(rh_procs[i].pid, &status, 0);
        }
        rh_procs[i].used = 0;
        rh_procs[i].pid = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Cluster                                                              */

/* A cluster node (not started): node timeout ms; the whole key space need
 * not be covered for a node to serve its own slots
 * (cluster-require-full-coverage no), so that a dead primary makes only
 * its own slots unavailable. */
RH_FN rh_server_t *
rh_cluster_node_new(int node_timeout_ms)
{
    rh_server_t *s = rh_primary_new(NULL);

    if (s == NULL)
        return NULL;
    s->want_bus = 1;
    if (rh_server_arg(s, "--cluster-enabled") || rh_server_arg(s, "yes") ||
        rh_server_arg(s, "--cluster-config-file") ||
        rh_server_arg(s, "%s/nodes-$PORT.conf", rh_dir[0] ? rh_dir : "/tmp") ||
        rh_server_arg(s, "--cluster-node-timeout") || rh_server_arg(s, "%d", node_timeout_ms) ||
        rh_server_arg(s, "--cluster-require-full-coverage") || rh_server_arg(s, "no")) {
        s->used = 0;
        return NULL;
    }
    return s;
}

/* Redis's key slot: CRC16 (XMODEM) of the key, or of its hash tag (the
 * bytes between the first '{' and the first '}' after it, when not
 * empty), modulo 16384. */
RH_FN unsigned
rh_key_slot(const void *key, size_t len)
{
    const unsigned char *k = key;
    size_t s, e, i;
    uint16_t crc = 0;
    int b;

    for (s = 0; s < len && k[s] != '{'; s++)
        ;
    if (s < len) {
        for (e = s + 1; e < len && k[e] != '}'; e++)
            ;
        if (e < len && e != s + 1) {
            k += s + 1;
            len = e - s - 1;
        }
    }
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)(k[i] << 8);
        for (b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc & (RH_SLOTS - 1);
}

/* CLUSTER KEYSLOT key on port: the slot, or -1. */
RH_FN int
rh_cluster_keyslot(int port, const void *key, size_t len)
{
    const char *argv[3] = { "CLUSTER", "KEYSLOT", key };
    size_t argl[3] = { 7, 7, len };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 3, argv, argl);
    int slot = r != NULL && r->type == ':' ? (int)r->integer : -1;

    rh_reply_free(r);
    return slot;
}

typedef struct rh_cnode {
    char id[41];
    int port;
    int primary;               /* flags: master */
    int failed;                /* flags: fail or fail? */
    int myself;
    char primary_id[41];       /* a replica's primary ("-": none) */
    int nslots;                /* slots it owns (ranges listed) */
} rh_cnode_t;

/* CLUSTER NODES on port, parsed into out[0..max).  The count, or -1. */
RH_FN int
rh_cluster_nodes(int port, rh_cnode_t *out, int max)
{
    static const char *const argv[2] = { "CLUSTER", "NODES" };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 2, argv, NULL);
    char *line, *save_line = NULL;
    int n = 0;

    if (r == NULL || r->type != '$') {
        rh_reply_free(r);
        return -1;
    }
    for (line = strtok_r(r->str, "\n", &save_line); line != NULL && n < max;
         line = strtok_r(NULL, "\n", &save_line)) {
        char *f[64], *save = NULL, *tok, *colon;
        int nf = 0, i;
        rh_cnode_t *c = &out[n];

        for (tok = strtok_r(line, " \r", &save); tok != NULL && nf < 64;
             tok = strtok_r(NULL, " \r", &save))
            f[nf++] = tok;
        if (nf < 8)
            continue;
        memset(c, 0, sizeof(*c));
        snprintf(c->id, sizeof(c->id), "%s", f[0]);
        f[1][strcspn(f[1], "@,")] = '\0';
        colon = strrchr(f[1], ':');
        c->port = colon != NULL ? atoi(colon + 1) : 0;
        c->primary = strstr(f[2], "master") != NULL;
        c->failed = strstr(f[2], "fail") != NULL;
        c->myself = strstr(f[2], "myself") != NULL;
        snprintf(c->primary_id, sizeof(c->primary_id), "%s", f[3]);
        for (i = 8; i < nf; i++) {
            int a, b;

            if (f[i][0] == '[')
                continue;          /* a slot being migrated or imported */
            if (sscanf(f[i], "%d-%d", &a, &b) == 2)
                c->nslots += b - a + 1;
            else if (sscanf(f[i], "%d", &a) == 1)
                c->nslots++;
        }
        n++;
    }
    rh_reply_free(r);
    return n;
}

/* Node `port`'s id (CLUSTER MYID) into id[41].  0 or -1. */
RH_FN int
rh_cluster_myid(int port, char *id)
{
    static const char *const argv[2] = { "CLUSTER", "MYID" };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 2, argv, NULL);
    int rc = -1;

    if (r != NULL && r->type == '$' && r->len == 40) {
        memcpy(id, r->str, 41);
        rc = 0;
    }
    rh_reply_free(r);
    return rc;
}

/* CLUSTER SLOTS on port: owner[slot] = the port of the slot's primary (0:
 * none).  The number of slots covered, or -1. */
RH_FN int
rh_cluster_slot_owners(int port, int *owner)
{
    static const char *const argv[2] = { "CLUSTER", "SLOTS" };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 2, argv, NULL);
    size_t i;
    int covered = 0;

    memset(owner, 0, sizeof(int) * RH_SLOTS);
    if (r == NULL || r->type != '*') {
        rh_reply_free(r);
        return -1;
    }
    for (i = 0; i < r->n; i++) {
        rh_reply_t *e = &r->elem[i];
        long long a, b, s;

        if (e->type != '*' || e->n < 3 || e->elem[2].type != '*' || e->elem[2].n < 2)
            continue;
        a = e->elem[0].integer;
        b = e->elem[1].integer;
        for (s = a; s <= b && s < RH_SLOTS; s++) {
            if (owner[s] == 0)
                covered++;
            owner[s] = (int)e->elem[2].elem[1].integer;
        }
    }
    rh_reply_free(r);
    return covered;
}

/* The port of slot's primary as port sees it; -1 when unknown. */
RH_FN int
rh_cluster_slot_primary(int port, unsigned slot)
{
    int *owner = malloc(sizeof(int) * RH_SLOTS), p = -1;

    if (owner != NULL && rh_cluster_slot_owners(port, owner) >= 0 && owner[slot % RH_SLOTS])
        p = owner[slot % RH_SLOTS];
    free(owner);
    return p;
}

/* Is CLUSTER INFO field `field` equal to want on port? */
static int
rh_cluster_info_is(int port, const char *field, const char *want)
{
    static const char *const argv[2] = { "CLUSTER", "INFO" };
    rh_reply_t *r = rh_cmd(port, NULL, -1, 2, argv, NULL);
    char pat[96];
    int yes;

    snprintf(pat, sizeof(pat), "%s:%s\r", field, want);
    yes = r != NULL && r->type == '$' && strstr(r->str, pat) != NULL;
    rh_reply_free(r);
    return yes;
}

/*
 * Wait (bounded) until the cluster made of the running nodes among
 * nodes[0..n) is settled: every one reports cluster_state:ok and 16384
 * slots ok; every one gives the same primary for each of the 16384 slots
 * (CLUSTER SLOTS), and each of those primaries is a running node that
 * calls itself a primary; every running replica's link to its primary is
 * up.  0, or -1 (the last thing missing is printed on stderr).
 */
RH_FN int
rh_cluster_wait_ok(rh_server_t *const *nodes, int n, int ms)
{
    int64_t deadline = rh_now_ms() + ms;
    int *ref = malloc(sizeof(int) * RH_SLOTS), *owner = malloc(sizeof(int) * RH_SLOTS);
    char why[160] = "";
    int rc = -1;

    while (ref != NULL && owner != NULL && rh_now_ms() < deadline) {
        int i, j, ok = 1, first = 1;

        for (i = 0; i < n && ok; i++) {
            char link[16];
            int prim;

            if (nodes[i]->pid == 0)
                continue;
            if (!rh_cluster_info_is(nodes[i]->port, "cluster_state", "ok") ||
                !rh_cluster_info_is(nodes[i]->port, "cluster_slots_ok", "16384")) {
                snprintf(why, sizeof(why), "node %d: cluster_state not ok", nodes[i]->port);
                ok = 0;
                break;
            }
            if (rh_cluster_slot_owners(nodes[i]->port, first ? ref : owner) != RH_SLOTS) {
                snprintf(why, sizeof(why), "node %d: CLUSTER SLOTS misses slots",
                         nodes[i]->port);
                ok = 0;
                break;
            }
            if (!first && memcmp(ref, owner, sizeof(int) * RH_SLOTS) != 0) {
                snprintf(why, sizeof(why), "node %d: another slot map", nodes[i]->port);
                ok = 0;
                break;
            }
            first = 0;
            prim = rh_is_primary(nodes[i]);
            if (prim == 0 && (rh_info(nodes[i], "replication", "master_link_status", link,
                                      sizeof(link)) != 0 || strcmp(link, "up") != 0)) {
                snprintf(why, sizeof(why), "replica %d: link to its primary not up",
                         nodes[i]->port);
                ok = 0;
                break;
            }
        }
        for (j = 0; ok && !first && j < RH_SLOTS; j++) {
            int k, found = 0;

            if (j > 0 && ref[j] == ref[j - 1])
                continue;
            for (k = 0; k < n && !found; k++)
                found = nodes[k]->pid != 0 && nodes[k]->port == ref[j] &&
                    rh_is_primary(nodes[k]) == 1;
            if (!found) {
                snprintf(why, sizeof(why), "slot %d: its primary %d is not a running primary",
                         j, ref[j]);
                ok = 0;
            }
        }
        if (ok && !first) {
            rc = 0;
            break;
        }
        rh_sleep_ms(50);
    }
    if (rc != 0)
        fprintf(stderr, "cluster not settled after %d ms: %s\n", ms, why);
    free(ref);
    free(owner);
    return rc;
}

/* redis-cli --cluster create over nodes[0..n) (all started, empty) with
 * `replicas` replicas per primary, then rh_cluster_wait_ok.  0 or -1. */
RH_FN int
rh_cluster_create(rh_server_t *const *nodes, int n, int replicas, int ms)
{
    char addr[RH_MAX_SERVERS][32], rep[16];
    const char *args[RH_MAX_SERVERS + 8];
    int argc = 0, i;
    int64_t t0 = rh_now_ms();

    if (n > RH_MAX_SERVERS)
        return -1;
    args[argc++] = "--cluster";
    args[argc++] = "create";
    for (i = 0; i < n; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", nodes[i]->port);
        args[argc++] = addr[i];
    }
    snprintf(rep, sizeof(rep), "%d", replicas);
    args[argc++] = "--cluster-replicas";
    args[argc++] = rep;
    args[argc++] = "--cluster-yes";
    args[argc] = NULL;
    if (rh_cli("create", ms, args) != 0)
        return -1;
    return rh_cluster_wait_ok(nodes, n, (int)(ms - (rh_now_ms() - t0)));
}

/* Start (in the background) redis-cli --cluster reshard moving nslots
 * slots from node id `from` to node id `to`, through the node on port.
 * rh_proc_wait it. */
RH_FN rh_proc_t *
rh_cluster_reshard_start(int port, const char *from, const char *to, int nslots)
{
    char addr[32], ns[16];
    const char *args[16] = { "--cluster", "reshard", addr, "--cluster-from", from,
                             "--cluster-to", to, "--cluster-slots", ns, "--cluster-yes",
                             NULL };

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(ns, sizeof(ns), "%d", nslots);
    return rh_proc_start("reshard", args);
}

/* CLUSTER FAILOVER on a replica (a coordinated switch with its primary),
 * then wait (bounded) until it calls itself a primary.  0 or -1. */
RH_FN int
rh_cluster_failover(const rh_server_t *replica, int ms)
{
    rh_reply_t *r = rh_server_cmd(replica, -1, "CLUSTER", "FAILOVER", NULL);
    int64_t deadline = rh_now_ms() + ms;
    int ok = r != NULL && r->type == '+';

    if (!ok)
        fprintf(stderr, "CLUSTER FAILOVER on %d: %s\n", replica->port,
                r != NULL && r->str != NULL ? r->str : "no reply");
    rh_reply_free(r);
    while (ok && rh_now_ms() < deadline) {
        if (rh_is_primary(replica) == 1)
            return 0;
        rh_sleep_ms(10);
    }
    return -1;
}

/*
 * One command to the cluster, sent first to port, following MOVED and ASK
 * redirections (ASKING first after an ASK) and retrying TRYAGAIN, at most
 * 8 hops.  argl NULL: C strings.  The final reply (rh_reply_free it), or
 * NULL on an I/O failure.
 */
RH_FN rh_reply_t *
rh_cluster_cmd(int port, int argc, const char *const *argv, const size_t *argl)
{
    static const char *const asking[1] = { "ASKING" };
    int hop, ask = 0;

    for (hop = 0; hop < 8; hop++) {
        rh_conn_t *c = rh_conn_open(port, NULL, -1);
        rh_reply_t *r = NULL;
        char *colon;

        if (c == NULL)
            return NULL;
        if (ask) {
            rh_reply_t *a;

            if (rh_conn_send(c, 1, asking, NULL) != 0 || (a = rh_conn_read(c)) == NULL) {
                rh_conn_close(c);
                return NULL;
            }
            rh_reply_free(a);
        }
        if (rh_conn_send(c, argc, argv, argl) == 0)
            r = rh_conn_read(c);
        rh_conn_close(c);
        if (r == NULL || r->type != '-')
            return r;
        ask = strncmp(r->str, "ASK ", 4) == 0;
        if (strncmp(r->str, "MOVED ", 6) != 0 && !ask) {
            if (strncmp(r->str, "TRYAGAIN", 8) != 0)
                return r;
            rh_reply_free(r);
            rh_sleep_ms(20);
            continue;
        }
        colon = strrchr(r->str, ':');
        port = colon != NULL ? atoi(colon + 1) : 0;
        rh_reply_free(r);
        if (port <= 0)
            return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Black holes                                                          */

typedef struct rh_hole {
    int used;
    int lfd;                   /* the listener (backlog 1, never accepts) */
    int port;
    int fill[RH_HOLE_FILL];    /* our own connections, filling its queue */
    int nfill;
} rh_hole_t;

static rh_hole_t rh_holes[RH_MAX_HOLES];

/* A connection to 127.0.0.1:port completed within ms?  Its socket, or -1
 * (then it is closed). */
static int
rh_try_connect(int port, int ms)
{
    struct sockaddr_in sa;
    struct pollfd pfd;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), err = 0;
    socklen_t el = sizeof(err);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (errno == EINPROGRESS && poll(&pfd, 1, ms) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
        return fd;
    close(fd);
    return -1;
}

/*
 * A black hole on 127.0.0.1:port (0: a free port; else that port, bound
 * with SO_REUSEADDR so that a stopped server's TIME_WAIT connections do
 * not stand in the way): a socket that listens with a backlog of 1 and
 * never accepts.  The kernel would still complete the first connections
 * into its accept queue; the harness fills that queue with its own, so
 * that every later connect() gets no answer at all (its SYN is dropped)
 * and hangs until the caller's timeout.  NULL on failure.
 */
RH_FN rh_hole_t *
rh_hole_open(int port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    rh_hole_t *h = NULL;
    int i, one = 1, fd;

    for (i = 0; i < RH_MAX_HOLES && h == NULL; i++)
        if (!rh_holes[i].used)
            h = &rh_holes[i];
    if (h == NULL)
        return NULL;
    memset(h, 0, sizeof(*h));
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->lfd < 0)
        return NULL;
    setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(h->lfd, 1) != 0 ||
        getsockname(h->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        close(h->lfd);
        return NULL;
    }
    h->port = ntohs(sa.sin_port);
    h->used = 1;
    while (h->nfill < RH_HOLE_FILL && (fd = rh_try_connect(h->port, 100)) >= 0)
        h->fill[h->nfill++] = fd;
    if (h->nfill == RH_HOLE_FILL) {
        /* Still accepting after all those: not a black hole. */
        for (i = 0; i < h->nfill; i++)
            close(h->fill[i]);
        close(h->lfd);
        h->used = 0;
        return NULL;
    }
    return h;
}

RH_FN void
rh_hole_close(rh_hole_t *h)
{
    int i;

    if (h == NULL || !h->used)
        return;
    for (i = 0; i < h->nfill; i++)
        close(h->fill[i]);
    close(h->lfd);
    h->used = 0;
}

RH_FN void
rh_hole_close_all(void)
{
    int i;

    for (i = 0; i < RH_MAX_HOLES; i++)
        rh_hole_close(&rh_holes[i]);
}

/* ------------------------------------------------------------------ */

/* Checked teardown: kill redis-cli runs, stop every server and sentinel,
 * close the black holes, remove the per-test directory. */
RH_FN void
rh_topo_teardown(void)
{
    rh_proc_kill_all();
    rh_server_stop_all();
    rh_hole_close_all();
    rh_tmpdir_remove();
}

/*
 * The main of a topology suite (test_sentinel, test_cluster): exit 77 with
 * one line when the backend or a binary is missing, else run the suite in
 * Check's fork mode (CK_FORK=no to debug in-process) inside a base
 * directory removed at the end, with what failed tests left in it.
 */
RH_FN int
rh_topo_main(const char *name, Suite *(*make)(void))
{
    const char *missing;
    SRunner *sr;
    int nf;

    if (!rh_backend_built()) {
        printf("%s: gencache built without hiredis: SKIPPED\n", name);
        return 77;
    }
    missing = rh_topo_missing();
    if (missing != NULL) {
        printf("%s: %s not found: SKIPPED (install redis-server, redis-sentinel "
               "and redis-tools: tests/install-deps.sh)\n", name, missing);
        return 77;
    }
    if (rh_topo_base_new() != 0) {
        printf("%s: mkdtemp: %s\n", name, strerror(errno));
        return EXIT_FAILURE;
    }
    sr = srunner_create(make());
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    rh_topo_teardown();
    rh_topo_base_remove();
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* GC_REDIS_TOPO_H */
