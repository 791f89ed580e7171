/* SPDX-License-Identifier: MIT */
#pragma once

/* Option value helpers on top of the codec (coap-msg.h, which also encodes integer values):
 * Uri-Path/Uri-Query from a path, Block1/Block2, Observe freshness. Pure: libc only. Depends on
 * coap-msg only, never the other way round. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap-msg.h"

/* Splits "a/b/c?x=1&y" into Uri-Path "a","b","c" and Uri-Query "x=1","y". A leading '/' is
 * skipped; "" and "/" give no option. Values point into path. Returns 0 and *ret_n, -EINVAL for
 * a segment longer than 255 bytes, -E2BIG when more than max options would be needed.
 * Empty segments ("a//b", "a?&x") are skipped, as Zephyr's coap_packet_set_path() does. */
int coap_path_to_options(const char *path, CoapOption *opts, size_t max, size_t *ret_n);

/* Block1/Block2 option (RFC 7959 §2.2): NUM << 4 | M << 3 | SZX. */
typedef struct CoapBlock {
        uint32_t num; /* < 2^20 */
        bool more;
        uint8_t szx; /* 0..6 */
} CoapBlock;

static inline size_t coap_szx_to_size(uint8_t szx) {
        return (size_t) 16 << szx;
}
/* -EINVAL unless size is a power of two in 16..1024. */
int coap_size_to_szx(size_t size);
/* -EBADMSG when len > 3, -EINVAL for SZX 7 (BERT, invalid over UDP). */
int coap_block_decode(const uint8_t *value, size_t len, CoapBlock *ret);
/* Minimal encoding into out[3]; returns the length (0 for NUM 0, M 0, SZX 0). -EINVAL when
 * num >= 2^20 or szx > 6. */
int coap_block_encode(const CoapBlock *block, uint8_t out[3]);

/* RFC 7641 §3.4: whether a notification (new_seq at new_usec) is fresher than the last one
 * accepted (old_seq at old_usec). Sequence numbers are 24 bit. */
bool coap_observe_is_fresher(uint32_t old_seq, uint64_t old_usec, uint32_t new_seq,
                             uint64_t new_usec);
