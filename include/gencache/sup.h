/*
 * gencache supervisors (public prefix sup_): OTP's supervisor in C.
 *
 * A supervisor is a process (actor.h) that starts child processes from child
 * specifications, monitors them, and restarts them when they exit, according
 * to a strategy and within a restart intensity.  Supervisors nest: a
 * supervisor is started with actor_start underneath, so it can itself be the
 * child of another supervisor, be monitored, and be stopped with actor_stop.
 * docs/supervisor.md is the guide; this header is the contract.
 *
 * Handles.  Every actor_t * this module returns (sup_start, sup_start_child,
 * sup_restart_child, sup_which_children) is a new reference that the caller
 * drops with actor_release() (or sup_children_free()).  Dropping it never
 * stops anything.
 *
 * Errors.  Every function returns 0 (or a documented value) on success and a
 * negative errno on failure; sup_strerror() gives the text.  OTP's error
 * terms map to errnos as follows:
 *
 *   OTP                          errno          returned by
 *   {error, {already_started,P}} -EALREADY      sup_start_child (*out = P)
 *   {error, already_present}     -EEXIST        sup_start_child
 *   {error, running}             -EBUSY         sup_restart_child, sup_delete_child
 *   {error, restarting}          -EINPROGRESS   sup_restart_child, sup_delete_child
 *   {error, not_found}           -ENOENT        terminate/restart/delete_child
 *   {error, simple_one_for_one}  -ENOTSUP       a call that the strategy does
 *                                               not support (both ways round)
 *   bad child spec or flags      -EINVAL        sup_start, sup_start_child
 *   start function's error       that error     sup_start, start/restart_child
 *
 * plus, for every call into a running supervisor: -ESRCH (the supervisor
 * has exited), -ETIMEDOUT (no answer within timeout_ms: the request may still
 * be carried out later, exactly as with actor_call), -EDEADLK (called from
 * the supervisor's own thread, e.g. from a child's start function or the
 * log callback), -EINVAL (sup is not a supervisor), -ENOMEM.
 *
 * Threads.  Every function may be called from any thread, including from
 * another process's callbacks, except that a supervisor's own thread (its
 * children's start functions and its log callback run there) must not call
 * into that same supervisor (-EDEADLK).  The supervisor never runs two
 * things at once: requests, exit notices and restarts are handled one at a
 * time on its thread, in arrival order.
 */
#ifndef GENCACHE_SUP_H
#define GENCACHE_SUP_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest child id, in bytes, not counting the terminating NUL. */
#define SUP_ID_MAX 63

/* Child shutdown settings (sup_child_spec_t.shutdown); a value > 0 is a
 * timeout in milliseconds. */
#define SUP_SHUTDOWN_DEFAULT 0          /* 5000 ms for workers, infinity for supervisors */
#define SUP_SHUTDOWN_INFINITY (-1)      /* wait without limit (== ACTOR_INFINITY) */
#define SUP_SHUTDOWN_BRUTAL_KILL (-2)   /* actor_exit(child, ACTOR_KILLED) at once */

/* OTP's defaults: at most 1 restart in 5 seconds. */
#define SUP_DEFAULT_INTENSITY 1
#define SUP_DEFAULT_PERIOD_MS 5000

/* How long a child that was sent ACTOR_KILLED is waited for before it is
 * abandoned (sup_opts_t.kill_wait_ms = 0 selects this). */
#define SUP_KILL_WAIT_DEFAULT_MS 1000

typedef enum sup_strategy {
    SUP_ONE_FOR_ONE = 0,        /* restart only the child that exited */
    SUP_ONE_FOR_ALL = 1,        /* stop all others, restart all */
    SUP_REST_FOR_ONE = 2,       /* stop those started after it, restart them and it */
    SUP_SIMPLE_ONE_FOR_ONE = 3, /* one template; children added with sup_start_child_arg */
} sup_strategy_t;

typedef enum sup_restart {
    SUP_PERMANENT = 0, /* always restarted */
    SUP_TRANSIENT = 1, /* restarted only after an abnormal exit */
    SUP_TEMPORARY = 2, /* never restarted; forgotten once it is not running */
} sup_restart_t;

typedef enum sup_child_type {
    SUP_WORKER = 0,
    SUP_SUPERVISOR = 1,
} sup_child_type_t;

/*
 * A child's start function: start the child process and store a new
 * reference to it in *out (actor_start does exactly that), which the
 * supervisor then owns.  Return 0, or a negative errno (then *out is
 * ignored and must hold no reference).  Returning 0 with *out == NULL means
 * "ignore" (OTP's `ignore`).  A positive return is treated as -EPROTO.
 * Runs on the supervisor's thread; it may call actor_start (including
 * sup_start for a nested supervisor) but not into its own supervisor.
 * To keep a registered name across restarts, register it here
 * (actor_opts_t.name): the old incarnation has released it by the time the
 * supervisor learns that it exited.
 */
typedef int (*sup_start_fn)(void *arg, actor_t **out);

/*
 * A child specification.  Zero-initialised fields give OTP's defaults:
 * permanent, worker, default shutdown.  The supervisor copies the struct
 * and the id; `arg` is passed as is to every start of this child and must
 * stay valid for as long as the child may be (re)started.
 */
typedef struct sup_child_spec {
    const char *id;           /* 1..SUP_ID_MAX bytes, unique in its supervisor */
    sup_start_fn start;
    void *arg;
    sup_restart_t restart;
    int shutdown;             /* SUP_SHUTDOWN_* or a timeout in ms (> 0) */
    sup_child_type_t type;
} sup_child_spec_t;

/* Supervisor flags.  NULL gives SUP_FLAGS_DEFAULT. */
typedef struct sup_flags {
    sup_strategy_t strategy;
    int intensity;      /* at most this many restarts (>= 0) ... */
    uint64_t period_ms; /* ... within any window of this many ms (> 0) */
} sup_flags_t;

#define SUP_FLAGS_DEFAULT \
    { SUP_ONE_FOR_ONE, SUP_DEFAULT_INTENSITY, SUP_DEFAULT_PERIOD_MS }

/* What a report is about.  Reports are delivered on the supervisor's thread,
 * one at a time, in the order the events happened. */
typedef enum sup_report_kind {
    SUP_REPORT_CHILD_STARTED = 1,  /* started (first start or restart); child set */
    SUP_REPORT_CHILD_START_FAILED, /* start function failed; reason = its error */
    SUP_REPORT_CHILD_EXITED,       /* exited by itself; reason = exit reason */
    SUP_REPORT_CHILD_RESTARTING,   /* a restart is attempted (counted in intensity) */
    SUP_REPORT_CHILD_STOPPED,      /* stopped by the supervisor; reason = exit reason */
    SUP_REPORT_CHILD_ABANDONED,    /* would not stop even when killed: its handle
                                      was released (reason = ACTOR_KILLED) */
    SUP_REPORT_MAX_INTENSITY,      /* too many restarts: the supervisor shuts down */
    SUP_REPORT_SHUTDOWN,           /* the supervisor is exiting; reason = its reason */
} sup_report_kind_t;

/*
 * One report.  Every pointer is valid only during the log callback: copy
 * what must outlive it, and take actor_retain() to keep a handle.
 */
typedef struct sup_report {
    sup_report_kind_t kind;
    actor_t *sup;             /* the supervisor (borrowed) */
    const char *sup_name;     /* its registered name, or NULL */
    const char *child_id;     /* the child's id; NULL only for
                                 SUP_REPORT_SHUTDOWN (MAX_INTENSITY names the
                                 child whose restart went over the limit) */
    actor_t *child;           /* the child process (borrowed), or NULL */
    int reason;               /* see each kind; 0 otherwise */
    sup_restart_t restart;    /* the child's restart type (child kinds) */
    sup_child_type_t type;    /* the child's type (child kinds) */
} sup_report_t;

/* A log callback.  Runs on the supervisor's thread: it must not block for
 * long, and must not call into this supervisor (-EDEADLK). */
typedef void (*sup_log_fn)(void *ctx, const sup_report_t *r);

/* Options for sup_start; a zeroed struct (or NULL) gives the defaults. */
typedef struct sup_opts {
    const char *name;        /* register the supervisor under this name */
    actor_clock_t *clock;    /* clock for restart intensity (NULL: monotonic);
                                a manual clock must outlive the supervisor */
    sup_log_fn log;          /* NULL: sup_log_stderr */
    void *log_ctx;           /* borrowed: passed to log, must stay valid
                                until the supervisor has exited */
    int kill_wait_ms;        /* 0: SUP_KILL_WAIT_DEFAULT_MS; < 0 is -EINVAL */
} sup_opts_t;

/*
 * Start a supervisor and, in order, its children.
 *
 * flags NULL gives SUP_FLAGS_DEFAULT.  children[0..n) are copied.  For
 * SUP_SIMPLE_ONE_FOR_ONE, n must be 1: children[0] is the template, nothing
 * is started now, and children are added with sup_start_child_arg().
 *
 * Blocks until every child has started.  On success returns 0 and stores a
 * new reference to the supervisor in *out.  Stop the whole tree with
 * actor_stop(sup, ACTOR_SHUTDOWN, ACTOR_INFINITY): children are stopped in
 * reverse start order, each according to its shutdown setting.
 *
 * If a child's start function fails, the children already started are
 * stopped in reverse order, nothing is left running, *out = NULL, the id of
 * the failing child is copied into failed_id (when not NULL: a buffer of at
 * least SUP_ID_MAX + 1 bytes; it is set to "" for every other outcome) and a
 * SUP_REPORT_CHILD_START_FAILED report names it too.  Returns that child's
 * error.  Other errors (nothing started, *out = NULL):
 *   -EINVAL  out NULL; bad flags (strategy, intensity < 0, period_ms == 0);
 *            bad or duplicate child spec; n != 1 for simple_one_for_one;
 *            children NULL with n > 0; bad opts (name, clock, kill_wait_ms);
 *   -EEXIST  opts->name is taken;
 *   -ENOMEM, -EAGAIN  no memory or no thread.
 * Callable from any thread, including a parent supervisor's start function.
 */
GC_EXPORT int sup_start(const sup_flags_t *flags, const sup_child_spec_t *children,
                        size_t n, const sup_opts_t *opts, actor_t **out,
                        char *failed_id);

/*
 * Everything sup_start needs, in one struct, so that a nested supervisor can
 * be a child spec: { .id = "sub", .start = sup_start_def, .arg = &def,
 * .type = SUP_SUPERVISOR }.  The struct and what it points to must outlive
 * every start of that child.
 */
typedef struct sup_def {
    sup_flags_t flags;
    const sup_child_spec_t *children;
    size_t n;
    sup_opts_t opts;
} sup_def_t;

/* A sup_start_fn: sup_start(&def->flags, def->children, def->n, &def->opts,
 * out, NULL) with def = (const sup_def_t *)def.  -EINVAL for NULL def.
 * When one of the nested supervisor's children fails to start, the parent
 * reports the nested supervisor's own id (the child it knows) with the
 * grandchild's error; the grandchild's id is in the nested supervisor's
 * SUP_REPORT_CHILD_START_FAILED report, sent to def->opts.log (stderr by
 * default).  To name it in the parent too, call sup_start with a failed_id
 * buffer from a start function of your own. */
GC_EXPORT int sup_start_def(void *def, actor_t **out);

/*
 * Add a child to a running supervisor (not simple_one_for_one) and start it;
 * it goes last in start order.  The spec is copied.
 *
 * Returns 0 and a new reference in *out (when out is not NULL), or 0 with
 * *out = NULL when the start function asked to be ignored (the spec is then
 * kept, not running, unless the child is temporary).  Errors (nothing
 * added): -EALREADY (a running child has this id: *out = a new reference to
 * it), -EEXIST (a child spec with this id exists, not running), -EINVAL (bad
 * spec), -ENOTSUP (simple_one_for_one), the start function's error, and the
 * call errors listed at the top of this file.
 */
GC_EXPORT int sup_start_child(actor_t *sup, const sup_child_spec_t *spec,
                              actor_t **out, int timeout_ms);

/*
 * simple_one_for_one only: start a new child from the template, calling its
 * start function with `arg` instead of the template's arg (and again with
 * `arg` at every restart, so arg must stay valid while the child may be
 * restarted).  Returns 0 and a new reference in *out (when not NULL), 0 with
 * *out = NULL for ignore (nothing kept), -ENOTSUP for other strategies, the
 * start function's error, or a call error.
 */
GC_EXPORT int sup_start_child_arg(actor_t *sup, void *arg, actor_t **out,
                                  int timeout_ms);

/*
 * Stop the child with this id (not simple_one_for_one: -ENOTSUP), honouring
 * its shutdown setting.  Its spec is kept, not running, so that
 * sup_restart_child can start it again, unless the child is temporary (then
 * the spec is deleted).  A child that is between restart attempts stops
 * being retried.  Returns 0 (also when it was not running) or -ENOENT.
 * May block the supervisor for as long as the shutdown setting allows.
 */
GC_EXPORT int sup_terminate_child(actor_t *sup, const char *id, int timeout_ms);

/*
 * Stop the child whose process is `child` (any strategy; the only way for
 * simple_one_for_one, whose child is then forgotten).  `child` is compared,
 * never dereferenced by the supervisor; the caller keeps its reference.
 * Returns 0, or -ENOENT when `child` is not a running child of sup.
 */
GC_EXPORT int sup_terminate_child_handle(actor_t *sup, actor_t *child, int timeout_ms);

/*
 * Start again a child that is not running (after sup_terminate_child, or a
 * transient child that exited normally, or an ignored one).  Returns 0 and a
 * new reference in *out (when not NULL; NULL when ignored), or -ENOENT,
 * -EBUSY (running), -EINPROGRESS (being restarted), -ENOTSUP
 * (simple_one_for_one), the start function's error (the child stays not
 * running), or a call error.  Does not count toward restart intensity.
 */
GC_EXPORT int sup_restart_child(actor_t *sup, const char *id, actor_t **out,
                                int timeout_ms);

/* Delete the spec of a child that is not running.  Returns 0, -ENOENT,
 * -EBUSY, -EINPROGRESS, -ENOTSUP, or a call error. */
GC_EXPORT int sup_delete_child(actor_t *sup, const char *id, int timeout_ms);

typedef enum sup_child_status {
    SUP_CHILD_UNDEFINED = 0,  /* spec kept, no process (OTP's undefined) */
    SUP_CHILD_RUNNING = 1,
    SUP_CHILD_RESTARTING = 2, /* a restart failed; another attempt is queued */
} sup_child_status_t;

typedef struct sup_child_info {
    char id[SUP_ID_MAX + 1];  /* for simple_one_for_one: the template's id */
    actor_t *handle;          /* new reference when RUNNING, else NULL */
    sup_child_status_t status;
    sup_child_type_t type;
    sup_restart_t restart;
} sup_child_info_t;

/*
 * List the children in start order (simple_one_for_one: the dynamic
 * children, not the template).  On success returns 0, *out = an array of *n
 * entries (NULL when *n == 0) that the caller frees with
 * sup_children_free(*out, *n), which also drops the handles.  Errors leave
 * *out = NULL, *n = 0: -EINVAL (NULL out or n), -ENOMEM, or a call error.
 * Costs one allocation and O(children) on the supervisor.
 */
GC_EXPORT int sup_which_children(actor_t *sup, sup_child_info_t **out, size_t *n,
                                 int timeout_ms);

/* Free what sup_which_children returned and drop its handles.  NULL is
 * ignored. */
GC_EXPORT void sup_children_free(sup_child_info_t *v, size_t n);

typedef struct sup_counts {
    size_t specs;       /* child specs (simple_one_for_one: 1) */
    size_t active;      /* children whose process is alive */
    size_t supervisors; /* children (specs or dynamic) of type SUP_SUPERVISOR */
    size_t workers;     /* ... of type SUP_WORKER */
} sup_counts_t;

/* OTP's count_children.  Returns 0 and fills *out, -EINVAL (out NULL), or a
 * call error. */
GC_EXPORT int sup_count_children(actor_t *sup, sup_counts_t *out, int timeout_ms);

/* The default log callback: one line per report on stderr (ctx unused). */
GC_EXPORT void sup_log_stderr(void *ctx, const sup_report_t *r);

/*
 * Format a report as one line (no newline) into buf (cap bytes, always
 * NUL-terminated when cap > 0).  Returns the length the full line needs, as
 * snprintf does, or -EINVAL for NULL r or buf with cap > 0.
 */
GC_EXPORT int sup_report_format(const sup_report_t *r, char *buf, size_t cap);

/* Short name of a report kind ("child_started", ...); never NULL. */
GC_EXPORT const char *sup_report_kind_name(sup_report_kind_t kind);

/* Text for a negative errno as this module uses it (the table above), else
 * actor_strerror(err).  Never NULL, static storage. */
GC_EXPORT const char *sup_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* GENCACHE_SUP_H */
