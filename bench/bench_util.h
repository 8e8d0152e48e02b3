/* Helpers shared by the benchmark programs; see bench_util.c. */
#ifndef GC_BENCH_UTIL_H
#define GC_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* 1: bench_emit prints JSON lines instead of table rows. */
extern int bench_json;

/* One output row; ratio = value / base_value. */
typedef struct row {
    const char *workload;
    const char *figure;
    double value;
    const char *unit;
    const char *baseline;
    double base_value;
    const char *target;    /* human readable, or "" */
    int met;               /* 1 met, 0 not met, -1 no target, BENCH_UNMEASURED:
                              a target that could not be checked (the
                              baseline was not built) */
} row_t;

#define BENCH_UNMEASURED (-2)

/* Print one row.  A row whose baseline_value is <= 0 has no ratio (JSON:
 * null).  In JSON, "target" and "met" appear whenever a target is given. */
void bench_emit(row_t r);
/* qsort comparator for uint64_t. */
int bench_cmp_u64(const void *a, const void *b);
/* Median of v[0..n) (sorts v in place). */
double bench_median(double *v, int n);
/* The p-quantile (0..1) of sorted[0..n). */
uint64_t bench_pct(uint64_t *sorted, size_t n, double p);
/* Key i as BKEY bytes ("key" and 13 digits). */
void bench_make_key(unsigned char *k, uint64_t i);
/* n keys of BKEY bytes, malloc'ed (the caller frees). */
unsigned char *bench_make_keys(size_t n);
/* A shuffled order of 0..n-1, malloc'ed (the caller frees). */
uint32_t *bench_make_order(size_t n, unsigned seed);

#endif /* GC_BENCH_UTIL_H */
