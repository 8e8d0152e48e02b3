/*
 * Parking primitives shared by the mailbox (a worker waiting for messages)
 * and by actor_call (a caller waiting for its reply).
 *
 * A waiter first spins for a short, bounded time and then sleeps on a futex.
 * Spinning pays off only when the thread that will wake us is running on
 * another core, so a process-wide count of spinning threads is kept and a
 * thread spins only while fewer threads than online cores are spinning; on a
 * single core nobody spins.  Everything is internal (prefix gc_park_).
 */
#ifndef GC_PARK_H
#define GC_PARK_H

#include <stdint.h>

/* Iterations of the spin phase (each one ck_pr_stall + a load). */
#define GC_PARK_SPINS 2000

/* Claim a spinning slot; returns 1 when the caller may spin, 0 otherwise.
 * A caller that got 1 must call gc_park_spin_end() when it stops spinning. */
int gc_park_spin_begin(void);
void gc_park_spin_end(void);

/*
 * Sleep while *word == expected, for at most timeout_ns (negative: no limit).
 * Returns 0 when woken or the value differed, -ETIMEDOUT on time-out;
 * spurious returns are possible and callers re-check their condition.
 */
int gc_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wake up to n threads sleeping on word.  FUTEX_WAKE never reads or writes
 * *word, so waking an address whose memory was reused is at worst a spurious
 * wake-up, which every waiter tolerates. */
void gc_futex_wake(uint32_t *word, int n);

/* Monotonic time in nanoseconds. */
int64_t gc_mono_ns(void);

#endif /* GC_PARK_H */
