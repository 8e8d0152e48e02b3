/*
 * Helpers shared by the two benchmark programs (gencache_bench and
 * gencache_redis_bench): key sets, visiting orders, and the output rows
 * (a Markdown-like table, or one JSON object per line with --json).
 */
#include "bench_util.h"

#include "baselines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bench_json;

int
bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

double
bench_median(double *v, int n)
{
    int i, j;

    for (i = 1; i < n; i++)
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t
bench_pct(uint64_t *sorted, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));

    return sorted[i];
}

void
bench_make_key(unsigned char *k, uint64_t i)
{
    char tmp[32];   /* "key" + up to 20 digits; keys use the first BKEY */

    snprintf(tmp, sizeof(tmp), "key%013llu", (unsigned long long)i);
    memcpy(k, tmp, BKEY);
}

unsigned char *
bench_make_keys(size_t n)
{
    unsigned char *keys = malloc(n * BKEY);
    size_t i;

    for (i = 0; i < n; i++)
        bench_make_key(keys + i * BKEY, i);
    return keys;
}

/* A shuffled visiting order, so lookups do not walk memory in order. */
uint32_t *
bench_make_order(size_t n, unsigned seed)
{
    uint32_t *o = malloc(n * sizeof(*o));
    size_t i;

    for (i = 0; i < n; i++)
        o[i] = (uint32_t)i;
    for (i = n - 1; i > 0; i--) {
        size_t j;
        uint32_t t;

        seed = seed * 1103515245u + 12345u;
        j = ((size_t)seed << 16 ^ (size_t)(seed >> 8)) % (i + 1);
        t = o[i];
        o[i] = o[j];
        o[j] = t;
    }
    return o;
}


void
bench_emit(row_t r)
{
    int has_ratio = r.base_value > 0;
    double ratio = has_ratio ? r.value / r.base_value : 0;

    if (bench_json) {
        printf("{\"workload\":\"%s\",\"figure\":\"%s\",\"value\":%.4g,\"unit\":\"%s\"",
               r.workload, r.figure, r.value, r.unit);
        if (r.baseline != NULL && has_ratio)
            printf(",\"baseline\":\"%s\",\"baseline_value\":%.4g,\"ratio\":%.3f", r.baseline,
                   r.base_value, ratio);
        else if (r.baseline != NULL)
            printf(",\"baseline\":\"%s\",\"baseline_value\":null,\"ratio\":null", r.baseline);
        if (r.met >= 0)
            printf(",\"target\":\"%s\",\"met\":%s", r.target, r.met ? "true" : "false");
        else if (r.met == BENCH_UNMEASURED)
            printf(",\"target\":\"%s\",\"met\":null", r.target);
        printf("}\n");
    } else {
        printf("| %-30s | %-22s | %12.4g %-8s |", r.workload, r.figure, r.value, r.unit);
        if (r.baseline != NULL && has_ratio)
            printf(" %-22s %10.4g | %6.2fx |", r.baseline, r.base_value, ratio);
        else if (r.baseline != NULL)
            printf(" %-33s | %7s |", r.baseline, "");
        else
            printf(" %-33s | %7s |", "", "");
        if (r.met >= 0)
            printf(" %-26s %-3s |\n", r.target, r.met ? "met" : "NOT");
        else if (r.met == BENCH_UNMEASURED)
            printf(" %-26s %-3s |\n", r.target, "n/a");
        else
            printf(" %-30s |\n", "");
    }
    fflush(stdout);
}
