/* SPDX-License-Identifier: MIT */
#include "coap-option.h"

#include <errno.h>
#include <string.h>

#define URI_SEGMENT_MAX 255u
#define BLOCK_NUM_LIMIT (UINT32_C(1) << 20)
#define OBSERVE_HALF    (UINT32_C(1) << 23)
#define OBSERVE_TIMEOUT (UINT64_C(128) * 1000000u) /* RFC 7641 §3.4: 128 s */

/* Appends the segments of [s, end) split at sep; empty segments are skipped, as Zephyr's
 * coap_packet_set_path() does. */
static int split_append(const char *s, const char *end, char sep, uint16_t number, CoapOption *opts,
                        size_t max, size_t *n) {
        while (s < end) {
                const char *e = memchr(s, sep, (size_t) (end - s));
                size_t len;

                if (!e)
                        e = end;
                len = (size_t) (e - s);
                if (len > URI_SEGMENT_MAX)
                        return -EINVAL;
                if (len > 0) {
                        if (*n >= max)
                                return -E2BIG;
                        opts[(*n)++] = (CoapOption){
                                .number = number,
                                .len = (uint16_t) len,
                                .value = (const uint8_t *) s,
                        };
                }
                s = e + 1;
        }
        return 0;
}

int coap_path_to_options(const char *path, CoapOption *opts, size_t max, size_t *ret_n) {
        const char *end, *query;
        size_t n = 0;
        int r;

        if (!path)
                return -EINVAL;
        end = path + strlen(path);
        query = memchr(path, '?', (size_t) (end - path));

        r = split_append(path, query ?: end, '/', COAP_OPTION_URI_PATH, opts, max, &n);
        if (r < 0)
                return r;
        if (query) {
                r = split_append(query + 1, end, '&', COAP_OPTION_URI_QUERY, opts, max, &n);
                if (r < 0)
                        return r;
        }
        if (ret_n)
                *ret_n = n;
        return 0;
}

int coap_size_to_szx(size_t size) {
        for (uint8_t szx = 0; szx <= COAP_BLOCK_SZX_MAX; szx++)
                if (coap_szx_to_size(szx) == size)
                        return szx;
        return -EINVAL;
}

int coap_block_decode(const uint8_t *value, size_t len, CoapBlock *ret) {
        uint32_t v;

        if (len > 3)
                return -EBADMSG;
        (void) coap_uint_decode(value, len, &v);
        if ((v & 0x07u) > COAP_BLOCK_SZX_MAX)
                return -EINVAL;
        if (ret)
                *ret = (CoapBlock){
                        .num = v >> 4,
                        .more = (v & 0x08u) != 0,
                        .szx = (uint8_t) (v & 0x07u),
                };
        return 0;
}

int coap_block_encode(const CoapBlock *block, uint8_t out[3]) {
        uint8_t v[4];
        size_t n;

        if (block->num >= BLOCK_NUM_LIMIT || block->szx > COAP_BLOCK_SZX_MAX)
                return -EINVAL;
        /* NUM < 2^20 keeps the value within 3 bytes. */
        n = coap_uint_encode(block->num << 4 | (block->more ? 0x08u : 0u) | block->szx, v);
        memcpy(out, v, n);
        return (int) n;
}

bool coap_observe_is_fresher(uint32_t old_seq, uint64_t old_usec, uint32_t new_seq,
                             uint64_t new_usec) {
        uint32_t v1 = old_seq & COAP_OBSERVE_MAX, v2 = new_seq & COAP_OBSERVE_MAX;

        return (v1 < v2 && v2 - v1 < OBSERVE_HALF) || (v1 > v2 && v1 - v2 > OBSERVE_HALF) ||
               (new_usec > old_usec && new_usec - old_usec > OBSERVE_TIMEOUT);
}
