/*
 * The cache_all record codec (records.h).  Fixed-size integers are copied
 * with memcpy, so the reply buffer needs no alignment.
 */
#include "records.h"

#include "alloc.h"

#include <errno.h>
#include <string.h>

#define GC_REC_HDR (3 * sizeof(uint64_t))

size_t
gc_rec_header_size(void)
{
    return sizeof(uint64_t);
}

size_t
gc_rec_size(size_t key_len, size_t value_len)
{
    return GC_REC_HDR + key_len + value_len;
}

unsigned char *
gc_rec_begin(unsigned char *out, uint64_t count)
{
    memcpy(out, &count, sizeof(count));
    return out + sizeof(count);
}

unsigned char *
gc_rec_put(unsigned char *out, const void *key, size_t key_len, const void *value,
           size_t value_len, int64_t ttl_ms)
{
    uint64_t kl = key_len, vl = value_len;

    memcpy(out, &kl, 8);
    memcpy(out + 8, &vl, 8);
    memcpy(out + 16, &ttl_ms, 8);
    out += GC_REC_HDR;
    if (key_len > 0)
        memcpy(out, key, key_len);
    out += key_len;
    if (value_len > 0)
        memcpy(out, value, value_len);
    return out + value_len;
}

int
gc_rec_decode(const unsigned char *buf, size_t len, cache_record_t **out, size_t *n)
{
    const unsigned char *p = buf, *end = buf + len;
    uint64_t count, i;
    size_t bytes, size;
    cache_record_t *recs;
    unsigned char *dst;

    *out = NULL;
    *n = 0;
    if (len < sizeof(count))
        return -EPROTO;
    memcpy(&count, p, sizeof(count));
    p += sizeof(count);
    if (count > (len - sizeof(count)) / GC_REC_HDR)
        return -EPROTO;
    bytes = len - sizeof(count) - (size_t)count * GC_REC_HDR;
    size = (size_t)count * sizeof(cache_record_t) + bytes;
    recs = gc_malloc(size ? size : 1);
    if (recs == NULL)
        return -ENOMEM;
    dst = (unsigned char *)(recs + count);
    for (i = 0; i < count; i++) {
        uint64_t kl, vl;
        int64_t ttl;

        if ((size_t)(end - p) < GC_REC_HDR)
            break;
        memcpy(&kl, p, 8);
        memcpy(&vl, p + 8, 8);
        memcpy(&ttl, p + 16, 8);
        p += GC_REC_HDR;
        if (kl > (size_t)(end - p) || vl > (size_t)(end - p) - kl)
            break;
        memcpy(dst, p, kl);
        recs[i].key = dst;
        recs[i].key_len = kl;
        dst += kl;
        p += kl;
        if (vl > 0)
            memcpy(dst, p, vl);
        recs[i].value = dst;
        recs[i].value_len = vl;
        dst += vl;
        p += vl;
        recs[i].ttl_ms = ttl;
    }
    if (i < count) {
        gc_free(recs);
        return -EPROTO;
    }
    *out = recs;
    *n = (size_t)count;
    return 0;
}
