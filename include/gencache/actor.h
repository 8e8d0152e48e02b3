/*
 * gencache process core (public prefix actor_).
 *
 * A process is one OS thread that owns its state and is reached only through
 * its mailbox, in the manner of an OTP gen_server:
 *
 *   - actor_start() spawns the thread, runs the behaviour's init callback and
 *     returns once init has answered;
 *   - actor_call() sends a request and waits (bounded by a timeout) for the
 *     reply computed by handle_call;
 *   - actor_cast() sends a message and returns at once (handle_cast);
 *   - timers (actor_send_after) and exit notices of monitored processes
 *     arrive through handle_info;
 *   - actor_exit() asks a process to stop at its next message boundary;
 *     terminate runs once, on the worker thread, before the thread ends.
 *
 * Handles.  An actor_t * is a reference-counted handle.  Every function that
 * returns one (actor_start, actor_whereis, actor_retain) hands the caller a
 * reference that the caller must drop with actor_release().  The memory of a
 * process stays valid while any reference exists, so a handle never dangles:
 * using the handle of a process that has exited returns -ESRCH.
 *
 * Errors.  Every fallible function returns 0 (or a documented non-negative
 * value) on success and a negative errno on failure; actor_strerror() turns
 * either into text.  Bad input (NULL, empty name, absurd sizes) returns
 * -EINVAL and changes nothing.
 *
 * Threads.  Every function here may be called from any thread, including from
 * inside a process's own callbacks, unless its comment says otherwise.
 * A callback must not call actor_call() on its own process (-EDEADLK).
 */
#ifndef GENCACHE_ACTOR_H
#define GENCACHE_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct actor actor_t;
typedef struct actor_clock actor_clock_t;
typedef struct actor_reply actor_reply_t;

/* Timeout value meaning "wait for ever" for actor_call and actor_wait. */
#define ACTOR_INFINITY (-1)

/* Longest registered name, in bytes, not counting the terminating NUL. */
#define ACTOR_NAME_MAX 63

/* Largest payload of a call, reply, cast or timer message (128 MiB: room
 * for a largest cache value, CACHE_VALUE_MAX, with its key and header). */
#define ACTOR_MSG_MAX ((size_t)128 << 20)

/*
 * Exit reasons.  A reason is an int: ACTOR_NORMAL and ACTOR_SHUTDOWN are the
 * two normal reasons; ACTOR_KILLED and every other value (a negative errno such
 * as -ENOMEM, or a positive code of the user's own, >= ACTOR_REASON_USER) are
 * abnormal.  actor_reason_is_abnormal() tells which.
 */
#define ACTOR_NORMAL      0
#define ACTOR_SHUTDOWN    1
#define ACTOR_KILLED      2
#define ACTOR_REASON_USER 16

/* init may return this to ask to be ignored: actor_start then returns 0 and
 * stores NULL in *out (OTP's `ignore`). */
#define ACTOR_IGNORE 1

/* Kinds of message delivered to handle_info. */
typedef enum actor_info_kind {
    ACTOR_INFO_TIMER = 1, /* a timer set with actor_send_after fired */
    ACTOR_INFO_DOWN = 2,  /* a process monitored with actor_monitor exited */
} actor_info_kind_t;

/*
 * A message as a callback sees it.  All pointers are valid only during the
 * callback; copy what must outlive it.
 */
typedef struct actor_msg_view {
    uint32_t tag;     /* the caller's tag (call, cast, timer) */
    const void *data; /* payload bytes (NULL when len == 0) */
    size_t len;       /* payload length */
} actor_msg_view_t;

typedef struct actor_info {
    actor_info_kind_t kind;
    uint64_t ref;          /* timer ref or monitor ref */
    actor_msg_view_t msg;  /* TIMER: the tag and bytes given to send_after */
    actor_t *who;          /* DOWN: the process that exited (borrowed: take
                              actor_retain() to keep it past the callback) */
    int reason;            /* DOWN: its exit reason */
} actor_info_t;

/*
 * Behaviour callbacks, all run on the process's own thread, one at a time.
 * Any callback may be NULL, except that a call to a process without
 * handle_call returns -ENOTSUP.
 *
 * init(self, arg, &state): runs before actor_start returns.  Return 0 to run,
 *     ACTOR_IGNORE to be ignored, or a negative errno to fail: actor_start
 *     then returns that value.  `self` is borrowed for the process lifetime.
 * handle_call(state, req, reply): compute the reply with actor_reply_set() or
 *     actor_reply_buf(); the int returned becomes actor_call's result (use 0
 *     or a negative errno).
 * handle_cast(state, msg) / handle_info(state, info): no reply.
 * terminate(state, reason): the process is exiting with `reason`; free the
 *     state here.  Runs for every reason, ACTOR_KILLED included: unlike the
 *     BEAM, C has no collector to reclaim a killed process's state, so a
 *     kill still frees it (keep terminate short on ACTOR_KILLED).  Not run
 *     when init failed (init cleans up after itself).
 *
 * handle_idle(state): runs after each batch of messages the process took
 *     from its mailbox, before due timers fire and before it parks: for
 *     work deferred across messages (flushing a pipeline).  Optional.
 * handle_drop(state, msg): the process is exiting with this cast still
 *     queued: it will never be handled.  For accounting (telling the sender
 *     its message was lost); msg is valid during the callback only.  Runs
 *     before terminate.  Optional (dropped casts are then just freed).
 *
 * A callback stops its own process with actor_exit(self, reason); the stop
 * takes effect when the callback returns.
 */
typedef struct actor_behaviour {
    int (*init)(actor_t *self, void *arg, void **state);
    int (*handle_call)(void *state, const actor_msg_view_t *req, actor_reply_t *reply);
    void (*handle_cast)(void *state, const actor_msg_view_t *msg);
    void (*handle_info)(void *state, const actor_info_t *info);
    void (*terminate)(void *state, int reason);
    void (*handle_idle)(void *state);
    void (*handle_drop)(void *state, const actor_msg_view_t *msg);
} actor_behaviour_t;

/* Options for actor_start; a zeroed struct (or NULL) gives the defaults. */
typedef struct actor_opts {
    const char *name;            /* register under this name (NULL: none) */
    actor_clock_t *clock;        /* timers' clock (NULL: CLOCK_MONOTONIC) */
    size_t mailbox_limit;        /* 0: unbounded; else a cast to a full
                                    mailbox gets -EAGAIN at once, and a call
                                    waits for room within its timeout */
} actor_opts_t;

/*
 * Start a process: spawn its thread, register opts->name if given, and run
 * init.  Blocks until init has returned.
 *
 * On success returns 0 and stores in *out a new reference the caller must
 * drop with actor_release() (dropping it does not stop the process).
 * If init returned ACTOR_IGNORE: returns 0, *out = NULL, no process remains.
 * Errors (nothing is left running, *out = NULL):
 *   -EINVAL  b or out NULL, name empty or longer than ACTOR_NAME_MAX;
 *   -EEXIST  the name is registered to a live process;
 *   -ENOMEM, -EAGAIN  no memory / no thread could be created;
 *   any negative value init returned (other init results give -EPROTO).
 * Must not be called by a process's init on itself.
 */
GC_EXPORT int actor_start(const actor_behaviour_t *b, void *arg,
                          const actor_opts_t *opts, actor_t **out);

/* Take one more reference on a handle.  Returns a (same pointer), or NULL
 * when a is NULL.  Valid on exited processes. */
GC_EXPORT actor_t *actor_retain(actor_t *a);

/* Drop one reference.  The handle must not be used by this holder afterwards.
 * NULL is ignored.  Never stops the process. */
GC_EXPORT void actor_release(actor_t *a);

/*
 * Synchronous call: deliver (tag, req, req_len) to handle_call and wait up to
 * timeout_ms (ACTOR_INFINITY: no limit) for the reply.
 *
 * The request bytes are copied before the call waits; rep (capacity rep_cap)
 * receives min(reply length, rep_cap) bytes and *rep_len (when not NULL)
 * the full reply length, so a reply longer than rep_cap is visible as
 * *rep_len > rep_cap.  The call allocates no memory in the steady state: its
 * message is a per-thread record reused from call to call (docs/design.md).
 *
 * Returns what handle_call returned, or:
 *   -EINVAL     a NULL, req NULL with req_len > 0, rep NULL with rep_cap > 0,
 *               req_len > ACTOR_MSG_MAX;
 *   -ESRCH      the process has exited, or exits before it handles the call;
 *   -ETIMEDOUT  no reply in time.  The request may still be handled later;
 *               its reply is discarded and never written to rep.  Also when
 *               the mailbox stayed full (mailbox_limit) for the whole
 *               timeout: the request was then never queued;
 *   -EDEADLK    called from the process's own thread;
 *   -ENOTSUP    the behaviour has no handle_call;
 *   -ENOMEM     the per-thread call record could not be allocated.
 */
GC_EXPORT int actor_call(actor_t *a, uint32_t tag, const void *req, size_t req_len,
                         void *rep, size_t rep_cap, size_t *rep_len, int timeout_ms);

/*
 * The full form of a call: the one request protocol of the library (caches
 * and supervisors use it through this same API).  Zero-initialise and set
 * what you need; actor_call(a, tag, req, len, rep, cap, rep_len, timeout)
 * is actor_call_ex with just those fields.
 *
 *   req / req_len   the request bytes, copied into this thread's call record
 *                   before the call waits; if req is the buffer returned by
 *                   actor_call_buf on this thread, nothing is copied (build a
 *                   large request in place).
 *   req_dispose     optional: the request owns resources (references): the
 *                   library runs req_dispose(req, req_len) exactly once,
 *                   after handle_call returned or when the request is
 *                   dropped unhandled (on the process's thread), or on the
 *                   calling thread when it was never queued.  The caller
 *                   must not release them itself once the call is made.
 *                   It receives the request's bytes, but once queued from
 *                   the library's copy: the pointer need not be req.
 *   rep / rep_cap / rep_len   as actor_call.
 *   rep_take        optional: instead of a copy into rep, the whole reply
 *                   buffer is handed over in *rep_take (free it with
 *                   actor_buf_free), only when handle_call ran and the call
 *                   returned its result; NULL otherwise.
 *   rep_dispose     optional: the reply owns resources (a reference handed
 *                   to the caller): when nobody will read it (the caller
 *                   timed out first), the library runs rep_dispose(rep,
 *                   rep_len) on the process's thread before freeing it.
 *   handled         optional out: 1 when handle_call ran, 0 when it did not
 *                   (the process had exited, or exited first).  Only then is
 *                   it safe to send the same request elsewhere: this is
 *                   known from the call's own state, never from its result,
 *                   so handle_call may return any errno, -ESRCH included.
 *                   On -ETIMEDOUT it is 0 as well, yet the request may
 *                   still be handled later: never resend after a time-out.
 *                   With req_dispose, the resources were released by
 *                   then: a resend must take them again.  A process
 *                   without handle_call took the call: -ENOTSUP with 1.
 *   timeout_ms      as actor_call.
 *
 * Returns what actor_call returns.  Any thread but a's own.
 */
typedef struct actor_call_args {
    uint32_t tag;
    const void *req;
    size_t req_len;
    void (*req_dispose)(void *req, size_t len);
    void *rep;
    size_t rep_cap;
    size_t *rep_len;
    void **rep_take;
    void (*rep_dispose)(void *rep, size_t len);
    int *handled;
    int timeout_ms;
} actor_call_args_t;

GC_EXPORT int actor_call_ex(actor_t *a, const actor_call_args_t *args);

/*
 * This thread's request buffer, of at least len bytes, for building a
 * request in place before actor_call_ex (req = the returned pointer): the
 * call then copies nothing.  Valid until the next actor_call_buf,
 * actor_call or actor_call_ex on this thread that sends a different buffer,
 * and across several actor_call_ex of the same buffer (a retry), except
 * that a call returning -ETIMEDOUT takes the buffer with it (the process
 * may still read it, then frees it): ask for a new one.  NULL on
 * -ENOMEM (or len > ACTOR_MSG_MAX).  The library owns it; never free it.
 */
GC_EXPORT void *actor_call_buf(size_t len);

/* Free a buffer the library handed over (actor_call_args_t.rep_take).
 * NULL is ignored. */
GC_EXPORT void actor_buf_free(void *p);

/*
 * Inside handle_call: set the reply to a copy of (data, len).  Returns 0,
 * -EINVAL (reply NULL, data NULL with len > 0, len > ACTOR_MSG_MAX) or
 * -ENOMEM.  May be called again; the last reply wins.
 */
GC_EXPORT int actor_reply_set(actor_reply_t *reply, const void *data, size_t len);

/*
 * Inside handle_call: return a buffer of len bytes that becomes the reply,
 * so a handler can write the reply in place.  NULL on -EINVAL/-ENOMEM.
 * The buffer is valid until handle_call returns.
 */
GC_EXPORT void *actor_reply_buf(actor_reply_t *reply, size_t len);

/*
 * Asynchronous send to handle_cast; returns at once.  The bytes are copied.
 * Messages from one sender are handled in the order sent.
 * Returns 0, or -EINVAL (bad arguments), -ESRCH (process exited: the
 * message was not delivered), -EAGAIN (mailbox_limit reached: not queued),
 * -ENOMEM.
 */
GC_EXPORT int actor_cast(actor_t *a, uint32_t tag, const void *data, size_t len);

/*
 * Run fn(state, arg) on the calling thread in place of process a, if and
 * only if a is idle: parked, with nothing in its mailbox and no exit asked
 * for.  While fn runs, a's own thread does not run any callback (it waits
 * if it wakes), and every message the calling thread sent a before has
 * been handled, so fn sees the state as a handle_call would, in order with
 * this thread's earlier casts.  Memory is ordered as if fn ran on a's
 * thread (a mutex hands the state over both ways).  fn must not block for
 * long and must not call or wait on a (it may set and cancel a's timers);
 * it runs with actor_self() still the caller.
 * A fast path for cheap requests: when a is busy, send a message instead.
 *
 * Returns 0 when fn ran (its result in *result when not NULL), -EAGAIN
 * when a is not idle (fn did not run), -ESRCH (a exited or is exiting),
 * -EDEADLK (called from a's own thread), -EINVAL.  Any thread.
 */
GC_EXPORT int actor_try_inline(actor_t *a, int (*fn)(void *state, void *arg), void *arg,
                               int *result);

/*
 * Casts built in place, so a large cast is copied once: actor_cast_buf
 * returns a message of len payload bytes (NULL: -ENOMEM, or len >
 * ACTOR_MSG_MAX), owned by the caller, who fills it and sends it with
 * actor_cast_send (0: queued, the message is the process's now; on an error
 * it is still the caller's: send it again or free it with
 * actor_cast_buf_free).  actor_cast_send returns actor_cast's errors; a
 * message may be allocated long before it is sent (to report an event
 * later without allocating then).  Any thread.
 */
GC_EXPORT void *actor_cast_buf(size_t len);
GC_EXPORT int actor_cast_send(actor_t *a, uint32_t tag, void *buf);
GC_EXPORT void actor_cast_buf_free(void *buf);

/*
 * Arrange for handle_info(ACTOR_INFO_TIMER) with (tag, data) to run on a after
 * delay_ms of a's clock.  The bytes are copied.  On success stores the timer's
 * ref in *ref (when not NULL).  Returns 0, -EINVAL, -ESRCH, -ENOMEM.
 * Timers with the same deadline fire in the order they were set.
 */
GC_EXPORT int actor_send_after(actor_t *a, uint64_t delay_ms, uint32_t tag,
                               const void *data, size_t len, uint64_t *ref);

/*
 * actor_send_after with an absolute deadline on a's clock (actor_clock_now
 * units): for a deadline already known (an entry's expiry), which a delay
 * computed from one clock reading and added to a later one would let drift.
 * Same results as actor_send_after.
 */
GC_EXPORT int actor_send_at(actor_t *a, uint64_t deadline_ms, uint32_t tag,
                            const void *data, size_t len, uint64_t *ref);

/*
 * Cancel a timer.  Returns 0 when the timer was cancelled before it fired,
 * -ENOENT when it already fired, was cancelled, or is unknown, -ESRCH when a
 * has exited, -EINVAL for a NULL a.  Exact from any thread: the timers are
 * guarded by a per-process mutex, so the call never waits for the process
 * (it may be used from a function run by actor_try_inline).
 */
GC_EXPORT int actor_cancel_timer(actor_t *a, uint64_t ref);

/*
 * Ask a process to exit with `reason` at its next message boundary: a running
 * callback is never interrupted.  The first request wins, except that
 * ACTOR_KILLED overrides an earlier one.  Unlike OTP's exit(Pid, normal),
 * which a process that does not trap exits ignores, every reason stops the
 * process, ACTOR_NORMAL included (there are no links to propagate it: this
 * is a request to stop, and the reason is what monitors and supervisors
 * see; ACTOR_NORMAL and ACTOR_SHUTDOWN stop a transient child for good).  Returns 0 once
 * the request is recorded (not once the process has exited: see
 * actor_wait), -ESRCH if it had already exited, -EINVAL for NULL.
 * From a callback on its own process, the exit follows the callback's return.
 */
GC_EXPORT int actor_exit(actor_t *a, int reason);

/*
 * Wait until a has exited, up to timeout_ms (ACTOR_INFINITY: no limit).
 * Returns 0 and stores the exit reason in *reason (when not NULL), or
 * -ETIMEDOUT, -EINVAL (NULL a), -EDEADLK (called from a's own thread).
 * "Exited" means: terminate has run, the name is released, monitors are
 * notified, and no callback of a will run again.
 */
GC_EXPORT int actor_wait(actor_t *a, int timeout_ms, int *reason);

/* actor_exit followed by actor_wait; returns actor_wait's result (an already
 * exited process gives 0 and its reason). */
GC_EXPORT int actor_stop(actor_t *a, int reason, int timeout_ms);

/* 1 while a is running (started, and no exit under way), else 0: 0 as
 * soon as a has begun to exit (while its terminate runs), when calls to it
 * already fail with -ESRCH. */
GC_EXPORT int actor_is_alive(const actor_t *a);

/*
 * Monitor: when `target` exits, `watcher` receives handle_info with
 * kind ACTOR_INFO_DOWN, the monitor ref, the target handle and its reason.
 * If target has already exited the notice is sent at once.  Stores the ref in
 * *ref (when not NULL); monitor refs are unique in the program.  Returns 0, -EINVAL, -ESRCH (watcher exited), -ENOMEM.
 */
GC_EXPORT int actor_monitor(actor_t *target, actor_t *watcher, uint64_t *ref);

/* Remove a monitor: no DOWN for it is sent afterwards (one already queued may
 * still arrive).  Returns 0, -ENOENT (unknown or already fired), -EINVAL. */
GC_EXPORT int actor_demonitor(actor_t *target, uint64_t ref);

/*
 * Register a under name.  Returns 0, -EEXIST (name taken by a live process,
 * or a already has a name), -ESRCH (a exited), -EINVAL (NULL, empty or
 * over-long name), -ENOMEM.  The name is released when a exits.
 */
GC_EXPORT int actor_register(actor_t *a, const char *name);

/* Release a name.  Returns 0, -ENOENT (not registered), -EINVAL. */
GC_EXPORT int actor_unregister(const char *name);

/*
 * Look a name up.  On success returns 0 and stores a new reference in *out
 * (drop it with actor_release).  Returns -ENOENT when no live process has the
 * name, -EINVAL for bad input.
 */
GC_EXPORT int actor_whereis(const char *name, actor_t **out);

/* The name of a, copied into buf (cap bytes, NUL-terminated).  Returns 0,
 * -ENOENT (no name), -ERANGE (buf too small, cap 0 included: buf may then
 * be NULL), -EINVAL (a NULL or invalid, or buf NULL with cap > 0). */
GC_EXPORT int actor_name(const actor_t *a, char *buf, size_t cap);

/* The process whose callback is running on this thread (borrowed, no new
 * reference), or NULL on a thread that is not a process. */
GC_EXPORT actor_t *actor_self(void);

/* Messages waiting in a's mailbox (approximate under concurrency). */
GC_EXPORT size_t actor_mailbox_depth(const actor_t *a);

/* 1 when reason is abnormal (not ACTOR_NORMAL nor ACTOR_SHUTDOWN). */
GC_EXPORT int actor_reason_is_abnormal(int reason);

/* Text for a negative errno or an exit reason; never NULL, static storage. */
GC_EXPORT const char *actor_strerror(int err);

/*
 * Clocks.  Timers (and cache TTLs) read a clock in milliseconds.  The default
 * (NULL) is CLOCK_MONOTONIC.  A manual clock only moves when the test moves
 * it: every process started with it is woken to fire due timers.
 */

/* Create a manual clock at start_ms.  Returns 0 and *out, -EINVAL, -ENOMEM. */
GC_EXPORT int actor_clock_manual_new(uint64_t start_ms, actor_clock_t **out);

/* Move a manual clock forward by ms and wake its processes.  Returns 0,
 * -EINVAL (NULL clock, or not a manual clock), or -EOVERFLOW (the time
 * would pass UINT64_MAX: the clock does not move, so it never goes back). */
GC_EXPORT int actor_clock_advance(actor_clock_t *c, uint64_t ms);

/* Current time of c in ms (NULL: CLOCK_MONOTONIC). */
GC_EXPORT uint64_t actor_clock_now(const actor_clock_t *c);

/*
 * Free a manual clock.  A clock is borrowed by whatever is given it: a
 * process started with it uses it until it has exited, and a cache created
 * with it (cache_opts_t.clock) until the cache's memory is freed (after
 * cache_stop and the last cache_release), since any thread may read the
 * clock to check a TTL while the cache exists.  Returns 0, or -EBUSY while
 * a process or a cache still uses it (nothing is freed: free it after
 * them), -EINVAL for NULL or a clock that is not manual.
 */
GC_EXPORT int actor_clock_free(actor_clock_t *c);

#ifdef __cplusplus
}
#endif

#endif /* GENCACHE_ACTOR_H */
