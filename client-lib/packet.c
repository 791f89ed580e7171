/* SPDX-License-Identifier: MIT */

/* Zephyr's packet-reading API over the response message the library rebuilds from an EVENT
 * frame (API 403's data->packet). Every function checks its bounds: the options are the
 * server's bytes as received. */

#include <errno.h>
#include <string.h>

#include "client-private.h"

#define PAYLOAD_MARKER 0xff

static bool packet_valid(const struct coap_packet *cpkt) {
        return cpkt && cpkt->data && cpkt->offset >= 4 && cpkt->hdr_len >= 4 &&
               cpkt->hdr_len <= cpkt->offset;
}

_public_ uint8_t coap_header_get_version(const struct coap_packet *cpkt) {
        return packet_valid(cpkt) ? cpkt->data[0] >> 6 : 0;
}

_public_ uint8_t coap_header_get_type(const struct coap_packet *cpkt) {
        return packet_valid(cpkt) ? (cpkt->data[0] >> 4) & 0x3 : 0;
}

_public_ uint8_t coap_header_get_token(const struct coap_packet *cpkt, uint8_t *token) {
        uint8_t tkl;

        if (!packet_valid(cpkt))
                return 0;
        tkl = cpkt->data[0] & 0xf;
        if (tkl > COAP_TOKEN_MAX_LEN || 4u + tkl > cpkt->hdr_len)
                return 0;
        if (token)
                memcpy(token, cpkt->data + 4, tkl);
        return tkl;
}

_public_ uint8_t coap_header_get_code(const struct coap_packet *cpkt) {
        return packet_valid(cpkt) ? cpkt->data[1] : 0;
}

_public_ uint16_t coap_header_get_id(const struct coap_packet *cpkt) {
        return packet_valid(cpkt) ? (uint16_t) (cpkt->data[2] << 8 | cpkt->data[3]) : 0;
}

_public_ const uint8_t *coap_packet_get_payload(const struct coap_packet *cpkt, uint16_t *len) {
        size_t start;

        if (len)
                *len = 0;
        if (!packet_valid(cpkt))
                return NULL;
        /* After the header, the options and the payload marker. */
        start = (size_t) cpkt->hdr_len + cpkt->opt_len + 1;
        if (start >= cpkt->offset || cpkt->data[start - 1] != PAYLOAD_MARKER)
                return NULL;
        if (len)
                *len = (uint16_t) (cpkt->offset - start);
        return cpkt->data + start;
}

/* An extended delta or length nibble (RFC 7252 §3.1): its value, or -1 when malformed. */
static long option_nibble(unsigned nibble, const uint8_t **p, const uint8_t *end) {
        long v;

        switch (nibble) {
        case 13:
                if (end - *p < 1)
                        return -1;
                v = 13 + (*p)[0];
                *p += 1;
                return v;
        case 14:
                if (end - *p < 2)
                        return -1;
                v = 269 + ((*p)[0] << 8 | (*p)[1]);
                *p += 2;
                return v;
        case 15:
                return -1;
        default:
                return nibble;
        }
}

_public_ int coapclient_packet_next_option(const struct coap_packet *cpkt,
                                           struct coapclient_option_iter *iter, uint16_t *ret_code,
                                           const uint8_t **ret_value, uint16_t *ret_len) {
        const uint8_t *p, *q, *end;
        long delta, len;

        if (!packet_valid(cpkt) || !iter || (size_t) cpkt->hdr_len + cpkt->opt_len > cpkt->offset)
                return -EINVAL;
        end = cpkt->data + cpkt->hdr_len + cpkt->opt_len;
        p = cpkt->data + cpkt->hdr_len + iter->offset;
        if (p >= end)
                return 0;
        q = p + 1;
        delta = option_nibble(p[0] >> 4, &q, end);
        len = delta < 0 ? -1 : option_nibble(p[0] & 0xf, &q, end);
        if (len < 0 || end - q < len || iter->number + delta > UINT16_MAX)
                return -EINVAL;
        iter->number = (uint16_t) (iter->number + delta);
        iter->offset = (size_t) (q + len - (cpkt->data + cpkt->hdr_len));
        if (ret_code)
                *ret_code = iter->number;
        if (ret_value)
                *ret_value = q;
        if (ret_len)
                *ret_len = (uint16_t) len;
        return 1;
}

_public_ int coap_get_option_int(const struct coap_packet *cpkt, uint16_t code) {
        struct coapclient_option_iter iter = {};
        const uint8_t *value;
        uint16_t c, len;
        int r;

        if (!packet_valid(cpkt))
                return -EINVAL;
        while ((r = coapclient_packet_next_option(cpkt, &iter, &c, &value, &len)) > 0) {
                unsigned v = 0;

                if (c != code)
                        continue;
                /* As Zephyr: the value of up to 4 bytes, as an int. */
                for (uint16_t i = 0; i < len && i < 4; i++)
                        v = v << 8 | value[i];
                return (int) v;
        }
        return r < 0 ? r : -ENOENT;
}
