/*
 * Futex wrappers and the spin policy (see park.h).
 *
 * The count of spinning threads is advisory: it only decides whether a
 * waiter spins before sleeping, never whether it is woken, so a relaxed
 * fetch-and-add is enough and no fence is needed.
 */
#define _GNU_SOURCE
#include "park.h"

#include "atomic.h"
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static unsigned int gc_spinners;       /* threads now in a spin phase */
static unsigned int gc_ncpu_cached;    /* 0 until first read */

static unsigned int
gc_ncpu(void)
{
    /* Relaxed: every thread computes the same value; a race only repeats
     * the sysconf call. */
    unsigned int n = gc_load_uint(&gc_ncpu_cached);

    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (unsigned int)v : 1;
        gc_store_uint(&gc_ncpu_cached, n);
    }
    return n;
}

int
gc_park_spin_begin(void)
{
    unsigned int n = gc_ncpu();

    if (n < 2)
        return 0;
    /* Advisory counter, no ordering needed (see the file comment). */
    if (ck_pr_faa_uint(&gc_spinners, 1) >= n) {
        ck_pr_dec_uint(&gc_spinners);
        return 0;
    }
    return 1;
}

void
gc_park_spin_end(void)
{
    ck_pr_dec_uint(&gc_spinners);
}

int
gc_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    long r;

    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    if (r == -1 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0;
}

void
gc_futex_wake(uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int64_t
gc_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
