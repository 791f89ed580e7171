/* SPDX-License-Identifier: MIT */
/* Parse, rebuild from the parsed parts, parse again. CoAP's option encoding is unique (each
 * delta and length has exactly one form), so a valid datagram must be rebuilt byte for byte. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coap-msg.h"
#include "coap-option.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

static void check_msg_equal(const CoapMsg *a, const CoapMsg *b) {
        check(a->type == b->type);
        check(a->code == b->code);
        check(a->mid == b->mid);
        check(a->token_len == b->token_len);
        check(memcmp(a->token, b->token, a->token_len) == 0);
        check(a->n_options == b->n_options);
        check(a->options_len == b->options_len);
        check(a->options_len == 0 || memcmp(a->options, b->options, a->options_len) == 0);
        check(a->payload_len == b->payload_len);
        check((a->payload == NULL) == (b->payload == NULL));
        check(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* The value helpers must agree with themselves on whatever option values arrive. */
static void check_option_value(const CoapMsg *m, const CoapOption *o) {
        CoapOption first;
        CoapBlock block;
        uint32_t v, first_v;
        uint8_t enc[4];

        check(coap_msg_find_option(m, o->number, &first));
        check(first.number == o->number);

        if (coap_uint_decode(o->value, o->len, &v) == 0) {
                check(o->len <= 4);
                check(coap_msg_get_uint_option(m, o->number, &first_v) != -ENOENT);
                check(coap_uint_decode(enc, coap_uint_encode(v, enc), &v) == 0);
        } else {
                check(o->len > 4);
        }

        if (coap_block_decode(o->value, o->len, &block) == 0) {
                CoapBlock again;
                int n = coap_block_encode(&block, enc);

                check(n >= 0 && n <= 3);
                check(coap_block_decode(enc, (size_t) n, &again) == 0);
                check(again.num == block.num && again.more == block.more && again.szx == block.szx);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CoapOption *opts = NULL;
        CoapParseError e = _COAP_PARSE_ERROR_MAX;
        CoapOptionIter it;
        CoapBuilder b;
        CoapMsg m, m2;
        uint8_t *buf;
        size_t n = 0, len;

        if (coap_msg_parse(data, size, &m, &e) < 0) {
                check(e > COAP_PARSE_OK && e < _COAP_PARSE_ERROR_MAX);
                check(coap_parse_error_to_string(e));
                return 0;
        }
        check(e == COAP_PARSE_OK);

        if (m.n_options > 0) {
                opts = calloc(m.n_options, sizeof(CoapOption));
                check(opts);
        }
        coap_option_iter_init(&it, &m);
        while (n < m.n_options && coap_option_iter_next(&it, &opts[n])) {
                check(n == 0 || opts[n].number >= opts[n - 1].number);
                check_option_value(&m, &opts[n]);
                n++;
        }
        check(n == m.n_options);
        check(!coap_option_iter_next(&it, NULL));
        check(coap_msg_encoded_size(m.token_len, opts, n, m.payload_len) == size);

        /* Exactly the input size: ASan catches any write past what the builder claims. */
        buf = malloc(size);
        check(buf);
        coap_builder_init(&b, buf, size, m.type, m.code, m.mid, m.token, m.token_len);
        check(coap_builder_add_options(&b, opts, n) == 0);
        check(coap_builder_set_payload(&b, m.payload, m.payload_len) == 0);
        check(coap_builder_finish(&b, &len) == 0);
        check(len == size);
        check(memcmp(buf, data, size) == 0);

        check(coap_msg_parse(buf, len, &m2, NULL) == 0);
        check_msg_equal(&m, &m2);

        free(buf);
        free(opts);
        return 0;
}
