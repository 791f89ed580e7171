/* SPDX-License-Identifier: MIT */
/* libcoapclient's packet-reading API (API 403's data->packet) over any bytes: the first byte is
 * the token length the packet claims (hdr_len 4 + it), the next two its options' length, the
 * rest the message. Whatever the claims, nothing may be read outside the message, every option
 * and the payload must lie inside it, and coap_get_option_int() must agree with the first option
 * the iterator finds for each number. */

#define COAPCLIENT_ZEPHYR_API 403

#include <stdlib.h>
#include <string.h>

#include "coapclient/coap_client.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

static bool inside(const uint8_t *p, size_t len, const uint8_t *buf, size_t size) {
        return p >= buf && p <= buf + size && len <= size - (size_t) (p - buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct coapclient_option_iter iter = {0, 0};
        struct coap_option found[4];
        uint8_t token[COAP_TOKEN_MAX_LEN];
        struct coap_packet p;
        const uint8_t *payload, *value;
        uint16_t code, len, payload_len;
        uint8_t *msg;
        size_t n;
        int r;

        if (size < 3 || size - 3 > UINT16_MAX)
                return 0;
        n = size - 3;
        /* Exactly the message's size, so that ASan sees any overread. */
        msg = malloc(n ? n : 1);
        check(msg);
        memcpy(msg, data + 3, n);
        p = (struct coap_packet){
                .data = msg,
                .offset = (uint16_t) n,
                .max_len = (uint16_t) n,
                .hdr_len = (uint8_t) (4 + (data[0] & 0xf)),
                .opt_len = (uint16_t) (data[1] | data[2] << 8),
        };

        (void) coap_header_get_version(&p);
        (void) coap_header_get_type(&p);
        (void) coap_header_get_code(&p);
        (void) coap_header_get_id(&p);
        check(coap_header_get_token(&p, token) <= COAP_TOKEN_MAX_LEN);
        payload = coap_packet_get_payload(&p, &payload_len);
        check(payload ? payload_len > 0 && inside(payload, payload_len, msg, n) : payload_len == 0);

        while ((r = coapclient_packet_next_option(&p, &iter, &code, &value, &len)) > 0) {
                struct coapclient_option_iter first = {0, 0};
                const uint8_t *first_value = NULL;
                uint16_t c = 0, first_len = 0;
                unsigned v = 0;

                check(inside(value, len, msg, n));
                check(iter.offset <= p.opt_len);
                /* The first option of this number, found again from the start. */
                while (coapclient_packet_next_option(&p, &first, &c, &first_value, &first_len) >
                               0 &&
                       c != code)
                        ;
                check(c == code && first_value);
                for (uint16_t i = 0; i < first_len && i < 4; i++)
                        v = v << 8 | first_value[i];
                check((unsigned) coap_get_option_int(&p, code) == v);
                check(coap_find_options(&p, code, found, 4) != 0);
        }
        check(r == 0 || r == -EINVAL);
        free(msg);
        return 0;
}
