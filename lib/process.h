/*
 * Internal view of a process (prefix actor__ for internal functions).
 *
 * Lifetime.  struct actor is reference counted: the handle returned to the
 * starter holds one reference and the worker thread holds one until its very
 * last instruction, so the memory outlives both the thread and every handle.
 * `life` moves STARTING -> RUNNING -> EXITING -> DEAD and never back; it is
 * the futex word actor_wait sleeps on.
 */
#ifndef GC_PROCESS_H
#define GC_PROCESS_H

#include <gencache/actor.h>

#include "mailbox.h"
#include "timers.h"

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#define GC_ACTOR_MAGIC 0x61637472u /* "actr" */
#define GC_ACTOR_DEAD_MAGIC 0xdeadac70u

enum gc_life {
    GC_LIFE_STARTING = 0,
    GC_LIFE_RUNNING = 1,
    GC_LIFE_EXITING = 2,
    GC_LIFE_DEAD = 3,
};

/*
 * A monitor is allocated whole when it is set up and later travels as the
 * DOWN message itself, so notifying a watcher never allocates (and cannot
 * fail for lack of memory while a process exits).
 */
typedef struct gc_monitor {
    gc_msg_t hdr;                 /* GC_MSG_DOWN once sent */
    struct gc_monitor *mon_next;  /* target's list, under target->lock */
    uint64_t ref;
    actor_t *watcher;             /* reference held while listed */
    actor_t *who;                 /* reference to the target once sent */
    int reason;
} gc_monitor_t;

struct actor {
    gc_mbox_t mbox;
    uint32_t magic;
    uint32_t refs;
    uint32_t life;          /* enum gc_life; futex word for actor_wait */
    int exit_reason;        /* valid once life == DEAD */
    uint64_t next_ref;      /* timer and monitor refs */

    const actor_behaviour_t *b;
    void *state;
    actor_clock_t *clock;
    pthread_mutex_t tlock;  /* guards timers: any thread may set or cancel */
    gc_timer_heap_t timers;
    uint32_t ntimers;       /* timers.n, stored under tlock (gc_store_32) so
                               the worker can skip timer work without the
                               lock when there are none (gc_load_32) */

    pthread_mutex_t lock;   /* guards: exit_req*, monitors, exit_reason */
    pthread_mutex_t run_lock; /* held by the process's thread whenever it is
                               not parked: another thread that takes it
                               runs in place of an idle process
                               (actor_try_inline) */
    int exit_req;           /* 1 once an exit was requested */
    int exit_req_reason;
    gc_monitor_t *monitors;

    /* Guarded by the registry lock (registry.c). */
    char name[ACTOR_NAME_MAX + 1];
    int has_name;


    /* Start handshake. */
    sem_t started;
    void *init_arg;
    int init_rc;
    pthread_t thread;
};

/*
 * The per-thread call record: the message of a synchronous call and its reply
 * slot.  One per calling thread, reused from call to call; a record whose
 * call timed out is abandoned to the worker, which frees it, and the thread
 * allocates a new one for its next call.  actor_reply_t is this struct.
 */
typedef struct gc_call {
    gc_msg_t hdr;
    uint32_t state;       /* enum gc_call_state; futex word of the caller */
    int status;           /* handle_call's result */
    int handled;          /* 1 once the worker ran the handler; 0 when the
                             record was dropped unhandled (the process
                             exited first).  Written before DONE, like
                             status.  The caller learns "was it handled"
                             from this field, never from status: a handler
                             may return any errno, -ESRCH included. */
    /* actor_call_args_t's disposers (NULL: none); req_dispose is cleared
     * once it ran. */
    void (*req_dispose)(void *req, size_t len);
    void (*rep_dispose)(void *rep, size_t len);
    unsigned char *req;
    size_t req_len, req_cap;
    unsigned char *rep;
    size_t rep_len, rep_cap;
} gc_call_t;

struct actor_reply {
    gc_call_t call;
};

/* 1 when a looks like a live handle (magic intact). */
int actor__valid(const actor_t *a);

/* clock.c */
int actor__clock_attach(actor_clock_t *c, actor_t *a);
void actor__clock_detach(actor_clock_t *c, actor_t *a);
int actor__clock_is_manual(const actor_clock_t *c);
/* A user that reads c from any thread without being a process on it (a
 * cache reading TTLs) holds it: actor_clock_free refuses with -EBUSY until
 * every hold is dropped.  No-ops for NULL (the monotonic clock). */
void actor__clock_hold(actor_clock_t *c);
void actor__clock_unhold(actor_clock_t *c);

/* registry.c */
int actor__registry_add(actor_t *a, const char *name);
void actor__registry_drop(actor_t *a);

/* Validate a name: 0 or -EINVAL. */
int actor__name_check(const char *name);

#endif /* GC_PROCESS_H */
