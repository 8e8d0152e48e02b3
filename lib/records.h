/*
 * The record codec of cache_all replies (internal, prefix gc_rec_): one
 * encoder that every backend's worker uses and one decoder on the caller's
 * side, so the wire format is written down once.
 *
 * Format: a u64 count, then for each record a u64 key length, a u64 value
 * length, an i64 TTL (ms left, or CACHE_TTL_NONE), the key bytes and the
 * value bytes; integers in host order (the reply never leaves the process).
 */
#ifndef GC_RECORDS_H
#define GC_RECORDS_H

#include <gencache/cache.h>

#include <stddef.h>
#include <stdint.h>

/* Bytes of the header, and of one record, for sizing the reply buffer. */
size_t gc_rec_header_size(void);
size_t gc_rec_size(size_t key_len, size_t value_len);

/* Write the header (count records follow); returns the next byte. */
unsigned char *gc_rec_begin(unsigned char *out, uint64_t count);

/* Write one record at out (room for gc_rec_size bytes); returns the next. */
unsigned char *gc_rec_put(unsigned char *out, const void *key, size_t key_len,
                          const void *value, size_t value_len, int64_t ttl_ms);

/*
 * Decode a reply of len bytes into one block for cache_records_free: an
 * array of *n records followed by their keys and values.  Returns 0, or
 * -ENOMEM (*out NULL), or -EPROTO for a malformed reply (never from our
 * encoder; checked so a bug cannot read out of bounds).
 */
int gc_rec_decode(const unsigned char *buf, size_t len, cache_record_t **out, size_t *n);

/* Key order of cache_all: memcmp order, a prefix before its extensions. */
static inline int
gc_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int r = __builtin_memcmp(a, b, alen < blen ? alen : blen);

    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

#endif /* GC_RECORDS_H */
