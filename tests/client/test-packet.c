/* SPDX-License-Identifier: MIT */

/* Zephyr's packet-reading API of API 403 (data->packet) over hand-made messages: header fields,
 * options with every delta and length encoding, the payload, and malformed options, read as
 * coap_find_options() and coap_get_option_int() read them. No daemon. */

#define COAPCLIENT_ZEPHYR_API 403

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "coapclient/coap_client.h"

/* cpkt over msg, whose options take opt_len bytes after a token of tkl bytes. */
static struct coap_packet packet(uint8_t *msg, size_t len, uint8_t tkl, uint16_t opt_len) {
        return (struct coap_packet){
                .data = msg,
                .offset = (uint16_t) len,
                .max_len = (uint16_t) len,
                .hdr_len = (uint8_t) (4 + tkl),
                .opt_len = opt_len,
        };
}

START_TEST(test_header_and_payload) {
        /* ACK 2.05, MID 0x1234, token ab cd, Content-Format 42, Max-Age 60, payload "hi". */
        uint8_t msg[] = {0x62, 0x45, 0x12, 0x34, 0xab, 0xcd, 0xc1, 42, 0x21, 60, 0xff, 'h', 'i'};
        struct coap_packet p = packet(msg, sizeof(msg), 2, 4);
        uint8_t token[COAP_TOKEN_MAX_LEN] = {0};
        const uint8_t *payload;
        uint16_t len = 99;

        ck_assert_uint_eq(coap_header_get_version(&p), 1);
        ck_assert_uint_eq(coap_header_get_type(&p), COAP_TYPE_ACK);
        ck_assert_uint_eq(coap_header_get_code(&p), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(coap_header_get_id(&p), 0x1234);
        ck_assert_uint_eq(coap_header_get_token(&p, token), 2);
        ck_assert_uint_eq(token[0], 0xab);
        ck_assert_uint_eq(token[1], 0xcd);
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_CONTENT_FORMAT), 42);
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_MAX_AGE), 60);
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_OBSERVE), -ENOENT);
        payload = coap_packet_get_payload(&p, &len);
        ck_assert_ptr_eq(payload, msg + 11);
        ck_assert_uint_eq(len, 2);

        /* Without a payload: NULL and 0. */
        p = packet(msg, 10, 2, 4);
        ck_assert_ptr_null(coap_packet_get_payload(&p, &len));
        ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_find_options) {
        uint8_t msg[512], *q = msg;
        struct coap_option opts[4];
        struct coap_packet p;

        *q++ = 0x41; /* CON, tkl 1 */
        *q++ = COAP_RESPONSE_CODE_CHANGED;
        *q++ = 0;
        *q++ = 1;
        *q++ = 0x77;
        *q++ = 0x41; /* ETag (4), 1 byte */
        *q++ = 0xe1;
        *q++ = 0x01; /* ETag again (delta 0), 1 byte */
        *q++ = 0xe2;
        *q++ = 0xde; /* Proxy-Uri (35): delta 13 + 18, length 269 + 31 = 300 */
        *q++ = 18;
        *q++ = 0;
        *q++ = 31;
        memset(q, 'u', 300);
        q += 300;
        *q++ = 0xd1; /* Request-Tag (292): delta 13 + 244, 1 byte */
        *q++ = 244;
        *q++ = 9;
        p = packet(msg, (size_t) (q - msg), 1, (uint16_t) (q - msg - 5));

        /* Two ETags, in their order. */
        ck_assert_int_eq(coap_find_options(&p, COAP_OPTION_ETAG, opts, 4), 2);
        ck_assert_uint_eq(opts[0].delta, COAP_OPTION_ETAG);
        ck_assert_uint_eq(opts[0].len, 1);
        ck_assert_uint_eq(opts[0].value[0], 0xe1);
        ck_assert_uint_eq(opts[1].value[0], 0xe2);
        /* veclen bounds what is copied. */
        ck_assert_int_eq(coap_find_options(&p, COAP_OPTION_ETAG, opts, 1), 1);
        /* The 300-byte value does not fit struct coap_option (255 by default). */
        ck_assert_int_eq(coap_find_options(&p, COAP_OPTION_PROXY_URI, opts, 4), -EINVAL);
        ck_assert_int_eq(coap_find_options(&p, COAP_OPTION_ACCEPT, opts, 4), 0);
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_ETAG), 0xe1);
        /* Past the long one. */
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_REQUEST_TAG), 9);
}
END_TEST

START_TEST(test_option_encodings) {
        /* NON 2.05 without a token: Observe (6) 0x010203, then option 300 (a 2-byte delta
         * extension, 269 + 25) of 13 bytes (a 1-byte length extension, 13 + 0). */
        uint8_t msg[25] = {0x50, 0x45, 0, 2, 0x63, 1, 2, 3, 0xed, 0x00, 25, 0};
        struct coap_option opts[2];
        struct coap_option o = {.len = 2, .value = {1, 2}};
        struct coap_packet p;
        uint16_t len;

        memset(msg + 12, 'x', 13);
        p = packet(msg, sizeof(msg), 0, (uint16_t) (sizeof(msg) - 4));
        ck_assert_uint_eq(coap_header_get_type(&p), COAP_TYPE_NON_CON);
        ck_assert_uint_eq(coap_header_get_token(&p, NULL), 0);
        ck_assert_int_eq(coap_get_option_int(&p, COAP_OPTION_OBSERVE), 0x010203);
        ck_assert_int_eq(coap_find_options(&p, 300, opts, 2), 1);
        ck_assert_uint_eq(opts[0].delta, 300);
        ck_assert_uint_eq(opts[0].len, 13);
        ck_assert_uint_eq(opts[0].value[12], 'x');
        ck_assert_ptr_null(coap_packet_get_payload(&p, &len));
        ck_assert_uint_eq(coap_option_value_to_int(&o), 0x0102);
}
END_TEST

START_TEST(test_malformed) {
        uint8_t truncated[] = {0x40, 0x45, 0, 3, 0x13, 'a'};       /* length 3, 1 byte left */
        uint8_t nibble15[] = {0x40, 0x45, 0, 4, 0xf1, 0};          /* delta nibble 15 */
        uint8_t ext_cut[] = {0x40, 0x45, 0, 5, 0xe1, 0};           /* 2-byte delta, 1 given */
        uint8_t overflow[] = {0x40, 0x45, 0, 6, 0xe0, 0xff, 0xff}; /* number past 65535 */
        struct coap_packet p;
        struct coap_option o;

        p = packet(truncated, sizeof(truncated), 0, 2);
        ck_assert_int_eq(coap_get_option_int(&p, 1), -EINVAL);
        ck_assert_int_eq(coap_find_options(&p, 1, &o, 1), -EINVAL);
        p = packet(nibble15, sizeof(nibble15), 0, 2);
        ck_assert_int_eq(coap_get_option_int(&p, 1), -EINVAL);
        p = packet(ext_cut, sizeof(ext_cut), 0, 2);
        ck_assert_int_eq(coap_get_option_int(&p, 1), -EINVAL);
        p = packet(overflow, sizeof(overflow), 0, 3);
        ck_assert_int_eq(coap_get_option_int(&p, 1), -EINVAL);

        /* Options claimed past the message, and NULL: -EINVAL, never a read out of bounds. */
        p = packet(truncated, sizeof(truncated), 0, 200);
        ck_assert_int_eq(coap_get_option_int(&p, 1), -EINVAL);
        ck_assert_int_eq(coap_get_option_int(NULL, 1), -EINVAL);
        ck_assert_int_eq(coap_find_options(NULL, 1, &o, 1), -EINVAL);
        ck_assert_uint_eq(coap_header_get_code(NULL), 0);
        ck_assert_ptr_null(coap_packet_get_payload(NULL, NULL));
}
END_TEST

static Suite *packet_suite(void) {
        Suite *s = suite_create("packet");
        TCase *tc = tcase_create("packet");

        tcase_add_test(tc, test_header_and_payload);
        tcase_add_test(tc, test_find_options);
        tcase_add_test(tc, test_option_encodings);
        tcase_add_test(tc, test_malformed);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(packet_suite)
