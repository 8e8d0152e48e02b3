/*
 * The mailbox: a lock-free multi-producer, single-consumer queue of
 * intrusive messages, plus the parking word of the process that owns it.
 *
 * Algorithm.  Producers push onto a Treiber stack (one CAS on `head`); the
 * single consumer takes the whole stack at once with one atomic exchange and
 * reverses it, which yields the messages in push order.  Because the
 * consumer never pops a single node, the ABA problem of Treiber stacks cannot
 * arise: a producer's CAS only ever links its node in front of whatever head
 * it observed.  Closing the mailbox exchanges `head` with the GC_MBOX_CLOSED
 * sentinel; a producer that sees the sentinel fails with -ESRCH, so no
 * message can be queued after the consumer's final drain.
 *
 * Order.  Pushes are linearised by their CAS, so messages from one producer
 * are delivered in the order sent (FIFO per sender) and no message is lost
 * or delivered twice.
 *
 * Parking.  See gc_mbox_park() and gc_mbox_push() in mailbox.c for the
 * Dekker-style handshake between `sleeping` and `head`.
 */
#ifndef GC_MAILBOX_H
#define GC_MAILBOX_H

#include <ck_cc.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gc_msg gc_msg_t;

/* Message kinds (internal). */
enum gc_msg_kind {
    GC_MSG_CALL = 1,      /* struct gc_call: a synchronous call */
    GC_MSG_CAST,          /* struct gc_cast: bytes for handle_cast */
    GC_MSG_DOWN,          /* struct gc_down: a monitored process exited */
};

/*
 * The header every queued message starts with.  `dispose` releases a message
 * that is dropped unhandled (mailbox closed) or, for kinds that do not keep
 * it, after it was handled.
 */
struct gc_msg {
    gc_msg_t *next;
    uint32_t kind;
    uint32_t tag;
    void (*dispose)(gc_msg_t *m);
};

#define GC_MBOX_CLOSED ((gc_msg_t *)(uintptr_t)1)

/* Attention bits: reasons to wake a worker that are not messages. */
#define GC_ATTN_EXIT 1u   /* an exit was requested */
#define GC_ATTN_TICK 2u   /* its manual clock moved: re-check timers */

typedef struct gc_mbox {
    /* Written by every producer: alone on its cache line. */
    gc_msg_t *head CK_CC_CACHELINE;
    /* Futex word: 1 while the consumer is (about to be) asleep. */
    uint32_t sleeping CK_CC_CACHELINE;
    uint32_t attn;
    /* Queued and not yet taken by the consumer; bounded by `limit`. */
    uint64_t depth;
    uint64_t limit;
    /* Back-pressure: callers waiting for room in a full mailbox sleep on
     * space_seq, which the consumer bumps when it frees room. */
    uint32_t space_seq;
    uint32_t space_waiters;
} gc_mbox_t;

void gc_mbox_init(gc_mbox_t *mb, size_t limit);

/*
 * Push m.  With bounded != 0 and a limit set, fails with -EAGAIN when the
 * mailbox already holds `limit` messages.  Returns 0, or -ESRCH when the
 * mailbox is closed (m was not queued and still belongs to the caller).
 */
int gc_mbox_push(gc_mbox_t *mb, gc_msg_t *m, int bounded);

/*
 * Push m, waiting while the mailbox is at its limit, until deadline_ns
 * (gc_mono_ns clock; negative: no limit).  Returns 0, -ESRCH (closed), or
 * -ETIMEDOUT (still full at the deadline; m was not queued).
 */
int gc_mbox_push_wait(gc_mbox_t *mb, gc_msg_t *m, int64_t deadline_ns);

/* Consumer only: take every queued message, oldest first (NULL if none,
 * and always NULL once the mailbox is closed). */
gc_msg_t *gc_mbox_take_all(gc_mbox_t *mb);

/* Consumer only: close the mailbox and return what was still queued, oldest
 * first.  Every later push fails with -ESRCH. */
gc_msg_t *gc_mbox_close(gc_mbox_t *mb);

/* Consumer only (called by take_all and close): n messages left the
 * mailbox; wakes callers waiting for room. */
void gc_mbox_consumed(gc_mbox_t *mb, size_t n);

/* Set attention bits and wake the consumer if it sleeps. */
void gc_mbox_poke(gc_mbox_t *mb, uint32_t bits);

/*
 * Consumer only: wait until a message or an attention bit arrives, or
 * timeout_ns passes (negative: no limit).  Spins briefly first when a core
 * is free (park.h).  May return early.
 */
void gc_mbox_park(gc_mbox_t *mb, int64_t timeout_ns);

#endif /* GC_MAILBOX_H */
