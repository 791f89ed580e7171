/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "coap-msg.h"
#include "coap-option.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 7252 Figure 16 style request: CON GET, MID 0x7d34, token 0x71, Uri-Path "temperature". */
static const uint8_t get_temperature[] = {
        0x41, 0x01, 0x7d, 0x34, 0x71, 0xbb, 't', 'e', 'm', 'p', 'e', 'r', 'a', 't', 'u', 'r', 'e',
};

/* CON GET, MID 0x1234, token de ad be ef, Uri-Path "sensors" "temp", Uri-Query "u=c". */
static const uint8_t get_sensors_temp[] = {
        0x44, 0x01, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0xb7, 's', 'e', 'n', 's',
        'o',  'r',  's',  0x04, 't',  'e',  'm',  'p',  0x43, 'u', '=', 'c',
};

/* ACK 2.05, MID 0x7d34, token 0x71, Content-Format 0 (empty value), payload "22.3 C". */
static const uint8_t content_response[] = {
        0x61, 0x45, 0x7d, 0x34, 0x71, 0xc0, 0xff, '2', '2', '.', '3', ' ', 'C',
};

static void assert_option(const CoapOption *o, uint16_t number, const char *value) {
        ck_assert_uint_eq(o->number, number);
        ck_assert_uint_eq(o->len, strlen(value));
        ck_assert_mem_eq(o->value, value, o->len);
}

START_TEST(test_build_rfc_get) {
        const uint8_t token = 0x71;
        CoapOption opt = {COAP_OPTION_URI_PATH, 11, (const uint8_t *) "temperature"};
        uint8_t buf[64];
        CoapBuilder b;
        size_t len;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 0x7d34, &token, 1);
        ck_assert_int_eq(coap_builder_add_option(&b, opt.number, opt.value, opt.len), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, sizeof(get_temperature));
        ck_assert_mem_eq(buf, get_temperature, len);
        ck_assert_uint_eq(coap_msg_encoded_size(1, &opt, 1, 0), len);
}
END_TEST

START_TEST(test_build_path_and_query) {
        const uint8_t token[] = {0xde, 0xad, 0xbe, 0xef};
        CoapOption opts[8];
        uint8_t buf[64];
        CoapBuilder b;
        size_t n, len;

        ck_assert_int_eq(coap_path_to_options("/sensors/temp?u=c", opts, ELEMENTS(opts), &n), 0);
        ck_assert_uint_eq(n, 3);
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 0x1234, token, 4);
        ck_assert_int_eq(coap_builder_add_options(&b, opts, n), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, sizeof(get_sensors_temp));
        ck_assert_mem_eq(buf, get_sensors_temp, len);
        ck_assert_uint_eq(coap_msg_encoded_size(4, opts, n, 0), len);
}
END_TEST

START_TEST(test_parse_rfc_get) {
        const uint8_t token[] = {0xde, 0xad, 0xbe, 0xef};
        CoapParseError e = _COAP_PARSE_ERROR_MAX;
        CoapOptionIter it;
        CoapOption o;
        CoapMsg m;

        ck_assert_int_eq(coap_msg_parse(get_sensors_temp, sizeof(get_sensors_temp), &m, &e), 0);
        ck_assert_int_eq(e, COAP_PARSE_OK);
        ck_assert_uint_eq(m.type, COAP_TYPE_CON);
        ck_assert_uint_eq(m.code, COAP_CODE_GET);
        ck_assert_uint_eq(m.mid, 0x1234);
        ck_assert_uint_eq(m.token_len, 4);
        ck_assert_mem_eq(m.token, token, 4);
        ck_assert_uint_eq(m.n_options, 3);
        ck_assert_ptr_eq(m.options, get_sensors_temp + 8);
        ck_assert_uint_eq(m.options_len, sizeof(get_sensors_temp) - 8);
        ck_assert_ptr_null(m.payload);
        ck_assert_uint_eq(m.payload_len, 0);

        coap_option_iter_init(&it, &m);
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, COAP_OPTION_URI_PATH, "sensors");
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, COAP_OPTION_URI_PATH, "temp");
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, COAP_OPTION_URI_QUERY, "u=c");
        ck_assert(!coap_option_iter_next(&it, &o));
        ck_assert(!coap_option_iter_next(&it, &o));
}
END_TEST

START_TEST(test_parse_response_payload) {
        uint32_t cf = 99;
        CoapOption o;
        CoapMsg m;

        ck_assert_int_eq(coap_msg_parse(content_response, sizeof(content_response), &m, NULL), 0);
        ck_assert_uint_eq(m.type, COAP_TYPE_ACK);
        ck_assert_uint_eq(m.code, COAP_CODE_CONTENT);
        ck_assert_uint_eq(m.mid, 0x7d34);
        ck_assert_uint_eq(m.token_len, 1);
        ck_assert_uint_eq(m.token[0], 0x71);
        ck_assert_uint_eq(m.n_options, 1);
        ck_assert_uint_eq(m.payload_len, 6);
        ck_assert_mem_eq(m.payload, "22.3 C", 6);

        ck_assert(coap_msg_find_option(&m, COAP_OPTION_CONTENT_FORMAT, &o));
        ck_assert_uint_eq(o.len, 0);
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_CONTENT_FORMAT, NULL));
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_URI_PATH, &o));
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, &o));
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_CONTENT_FORMAT, &cf), 0);
        ck_assert_uint_eq(cf, 0);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_MAX_AGE, &cf), -ENOENT);
}
END_TEST

START_TEST(test_parse_header_fields) {
        static const uint8_t types[] = {0x50, 0x60, 0x70};
        const uint8_t token8[] = {1, 2, 3, 4, 5, 6, 7, 8};
        uint8_t buf[] = {0x48, 0xa0, 0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8};
        CoapMsg m;

        ck_assert_int_eq(coap_msg_parse(buf, sizeof(buf), &m, NULL), 0);
        ck_assert_uint_eq(m.type, COAP_TYPE_CON);
        ck_assert_uint_eq(m.code, COAP_CODE_INTERNAL_SERVER_ERROR);
        ck_assert_uint_eq(m.mid, 0xabcd);
        ck_assert_uint_eq(m.token_len, 8);
        ck_assert_mem_eq(m.token, token8, 8);
        ck_assert_uint_eq(m.n_options, 0);
        ck_assert_uint_eq(m.options_len, 0);

        /* Empty NON, ACK and RST. */
        for (size_t i = 0; i < ELEMENTS(types); i++) {
                const uint8_t empty[] = {types[i], 0x00, 0x00, 0x01};

                ck_assert_int_eq(coap_msg_parse(empty, sizeof(empty), &m, NULL), 0);
                ck_assert_uint_eq(m.type, i + 1);
                ck_assert_uint_eq(m.code, COAP_CODE_EMPTY);
                ck_assert_uint_eq(m.mid, 1);
        }
}
END_TEST

/* One minimal datagram per malformation. */
static const struct {
        CoapParseError error;
        size_t len;
        uint8_t bytes[8];
} bad_datagrams[] = {
        {COAP_PARSE_TOO_SHORT, 0, {0}},
        {COAP_PARSE_TOO_SHORT, 3, {0x40, 0x01, 0x00}},
        {COAP_PARSE_BAD_VERSION, 4, {0x00, 0x01, 0x00, 0x00}},
        {COAP_PARSE_BAD_VERSION, 4, {0x80, 0x01, 0x00, 0x00}},
        {COAP_PARSE_BAD_TOKEN_LENGTH, 4, {0x49, 0x01, 0x00, 0x00}},
        {COAP_PARSE_BAD_TOKEN_LENGTH, 4, {0x4f, 0x01, 0x00, 0x00}},
        {COAP_PARSE_TRUNCATED_TOKEN, 5, {0x42, 0x01, 0x00, 0x00, 0xaa}},
        {COAP_PARSE_BAD_OPTION_DELTA, 5, {0x40, 0x01, 0x00, 0x00, 0xf0}},
        {COAP_PARSE_BAD_OPTION_DELTA, 6, {0x40, 0x01, 0x00, 0x00, 0xf1, 0x00}},
        {COAP_PARSE_BAD_OPTION_LENGTH, 5, {0x40, 0x01, 0x00, 0x00, 0x0f}},
        {COAP_PARSE_TRUNCATED_OPTION, 5, {0x40, 0x01, 0x00, 0x00, 0xd0}},
        {COAP_PARSE_TRUNCATED_OPTION, 6, {0x40, 0x01, 0x00, 0x00, 0xe0, 0x00}},
        {COAP_PARSE_TRUNCATED_OPTION, 5, {0x40, 0x01, 0x00, 0x00, 0x0d}},
        {COAP_PARSE_TRUNCATED_OPTION, 6, {0x40, 0x01, 0x00, 0x00, 0x0e, 0x00}},
        {COAP_PARSE_TRUNCATED_OPTION, 6, {0x40, 0x01, 0x00, 0x00, 0xb2, 'a'}},
        {COAP_PARSE_OPTION_OVERFLOW, 7, {0x40, 0x01, 0x00, 0x00, 0xe0, 0xfe, 0xf3}},
        {COAP_PARSE_OPTION_OVERFLOW, 8, {0x40, 0x01, 0x00, 0x00, 0xe0, 0xfe, 0xf2, 0x10}},
        {COAP_PARSE_EMPTY_PAYLOAD, 5, {0x40, 0x01, 0x00, 0x00, 0xff}},
        {COAP_PARSE_EMPTY_PAYLOAD, 6, {0x40, 0x01, 0x00, 0x00, 0xb0, 0xff}},
        {COAP_PARSE_BAD_EMPTY_MESSAGE, 5, {0x40, 0x00, 0x00, 0x00, 0xb0}},
        {COAP_PARSE_BAD_EMPTY_MESSAGE, 4, {0x41, 0x00, 0x00, 0x00}},
        {COAP_PARSE_BAD_EMPTY_MESSAGE, 6, {0x60, 0x00, 0x00, 0x00, 0xff, 0x01}},
        {COAP_PARSE_RESERVED_CODE, 4, {0x40, 0x20, 0x00, 0x00}},
        {COAP_PARSE_RESERVED_CODE, 4, {0x60, 0xc0, 0x00, 0x00}},
        {COAP_PARSE_RESERVED_CODE, 4, {0x60, 0xff, 0x00, 0x00}},
};

START_TEST(test_parse_errors) {
        CoapParseError e = COAP_PARSE_OK;
        CoapMsg m, untouched;

        memset(&m, 0x5a, sizeof(m));
        untouched = m;
        ck_assert_int_eq(coap_msg_parse(bad_datagrams[_i].bytes, bad_datagrams[_i].len, &m, &e),
                         -EBADMSG);
        ck_assert_msg(e == bad_datagrams[_i].error, "datagram %d: got %s, expected %s", _i,
                      coap_parse_error_to_string(e),
                      coap_parse_error_to_string(bad_datagrams[_i].error));
        ck_assert_mem_eq(&m, &untouched, sizeof(m));
        ck_assert_int_eq(coap_msg_parse(bad_datagrams[_i].bytes, bad_datagrams[_i].len, NULL, NULL),
                         -EBADMSG);
}
END_TEST

START_TEST(test_parse_error_coverage) {
        /* Every malformation has a test datagram (OPTION_TOO_LONG needs 64 KiB, see below). */
        for (int e = COAP_PARSE_TOO_SHORT; e < _COAP_PARSE_ERROR_MAX; e++) {
                bool found = e == COAP_PARSE_OPTION_TOO_LONG;

                for (size_t i = 0; i < ELEMENTS(bad_datagrams); i++)
                        found = found || bad_datagrams[i].error == (CoapParseError) e;
                ck_assert_msg(found, "no datagram for %s", coap_parse_error_to_string(e));
        }
}
END_TEST

START_TEST(test_parse_error_strings) {
        for (int e = 0; e < _COAP_PARSE_ERROR_MAX; e++) {
                const char *s = coap_parse_error_to_string(e);

                ck_assert_ptr_nonnull(s);
                for (int f = 0; f < e; f++)
                        ck_assert_str_ne(s, coap_parse_error_to_string(f));
        }
        ck_assert_ptr_null(coap_parse_error_to_string(_COAP_PARSE_ERROR_MAX));
        ck_assert_ptr_null(coap_parse_error_to_string((CoapParseError) -1));
}
END_TEST

/* Option number boundaries: the delta nibble and its extension bytes. */
static const struct {
        uint16_t number;
        uint8_t header[3];
        size_t header_len;
} delta_cases[] = {
        {12, {0xc0}, 1},
        {13, {0xd0, 0x00}, 2},
        {268, {0xd0, 0xff}, 2},
        {269, {0xe0, 0x00, 0x00}, 3},
        {65535, {0xe0, 0xfe, 0xf2}, 3},
};

START_TEST(test_option_delta_boundaries) {
        uint8_t buf[16];
        CoapOption o = {.number = delta_cases[_i].number};
        CoapBuilder b;
        CoapMsg m;
        size_t len;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_NON, COAP_CODE_POST, 7, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, o.number, NULL, 0), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 4 + delta_cases[_i].header_len);
        ck_assert_mem_eq(buf + 4, delta_cases[_i].header, delta_cases[_i].header_len);
        ck_assert_uint_eq(coap_msg_encoded_size(0, &o, 1, 0), len);

        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        ck_assert_uint_eq(m.n_options, 1);
        ck_assert(coap_msg_find_option(&m, o.number, &o));
        ck_assert_uint_eq(o.len, 0);
}
END_TEST

START_TEST(test_option_delta_between_options) {
        /* 11 then 11 + 269: the second delta (not the number) decides the encoding. */
        uint8_t buf[32];
        CoapBuilder b;
        CoapOptionIter it;
        CoapOption o;
        CoapMsg m;
        size_t len;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "a", 1), 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "b", 1), 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 280, "c", 1), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 4 + 2 + 2 + 4);
        ck_assert_mem_eq(buf + 4,
                         "\xb1"
                         "a"
                         "\x01"
                         "b"
                         "\xe1\x00\x00"
                         "c",
                         8);

        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        coap_option_iter_init(&it, &m);
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, 11, "a");
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, 11, "b");
        ck_assert(coap_option_iter_next(&it, &o));
        assert_option(&o, 280, "c");
        ck_assert(!coap_option_iter_next(&it, NULL));
        /* find returns the first of repeated options */
        ck_assert(coap_msg_find_option(&m, 11, &o));
        assert_option(&o, 11, "a");
}
END_TEST

/* Option length boundaries, up to the largest encodable length 65535 + 269. */
static const struct {
        size_t len;
        uint8_t header[3];
        size_t header_len;
} length_cases[] = {
        {0, {0x10}, 1},
        {12, {0x1c}, 1},
        {13, {0x1d, 0x00}, 2},
        {268, {0x1d, 0xff}, 2},
        {269, {0x1e, 0x00, 0x00}, 3},
        {65535, {0x1e, 0xfe, 0xf2}, 3},
        {65535 + 269, {0x1e, 0xff, 0xff}, 3},
};

static uint8_t big_value[65535 + 270];
static uint8_t big_buf[4 + 3 + sizeof(big_value) + 2];

START_TEST(test_option_length_boundaries) {
        size_t vlen = length_cases[_i].len, len;
        CoapBuilder b;
        CoapParseError e;
        CoapOption o;
        CoapMsg m;

        for (size_t i = 0; i < vlen; i++)
                big_value[i] = (uint8_t) (i * 7);
        coap_builder_init(&b, big_buf, sizeof(big_buf), COAP_TYPE_CON, COAP_CODE_PUT, 2, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 1, big_value, vlen), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "p", 1), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 4 + length_cases[_i].header_len + vlen + 2);
        ck_assert_mem_eq(big_buf + 4, length_cases[_i].header, length_cases[_i].header_len);
        ck_assert_mem_eq(big_buf + 4 + length_cases[_i].header_len, big_value, vlen);

        if (vlen > UINT16_MAX) {
                /* Valid on the wire, but it cannot be a CoapOption. */
                ck_assert_int_eq(coap_msg_parse(big_buf, len, &m, &e), -EBADMSG);
                ck_assert_int_eq(e, COAP_PARSE_OPTION_TOO_LONG);
                return;
        }
        o = (CoapOption){.number = 1, .len = (uint16_t) vlen, .value = big_value};
        ck_assert_uint_eq(coap_msg_encoded_size(0, &o, 1, 1), len);
        ck_assert_int_eq(coap_msg_parse(big_buf, len, &m, NULL), 0);
        ck_assert(coap_msg_find_option(&m, 1, &o));
        ck_assert_uint_eq(o.len, vlen);
        ck_assert_mem_eq(o.value, big_value, vlen);
        ck_assert_uint_eq(m.payload_len, 1);
        ck_assert_uint_eq(m.payload[0], 'p');
}
END_TEST

START_TEST(test_option_length_too_long) {
        CoapBuilder b;

        coap_builder_init(&b, big_buf, sizeof(big_buf), COAP_TYPE_CON, COAP_CODE_PUT, 2, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 1, big_value, 65535 + 270), -EINVAL);
        ck_assert_int_eq(coap_builder_finish(&b, NULL), -EINVAL);
}
END_TEST

START_TEST(test_payload_marker) {
        /* The marker ends the options, and 0xFF in the payload is just data. */
        static const uint8_t msg[] = {0x40, 0x02, 0x00, 0x09, 0xb1, 'x', 0xff, 0xff, 0xff};
        static const uint8_t no_opts[] = {0x40, 0x02, 0x00, 0x09, 0xff, 0x00};
        uint8_t buf[16];
        CoapBuilder b;
        CoapMsg m;
        size_t len;

        ck_assert_int_eq(coap_msg_parse(msg, sizeof(msg), &m, NULL), 0);
        ck_assert_uint_eq(m.n_options, 1);
        ck_assert_uint_eq(m.options_len, 2);
        ck_assert_ptr_eq(m.payload, msg + 7);
        ck_assert_uint_eq(m.payload_len, 2);

        ck_assert_int_eq(coap_msg_parse(no_opts, sizeof(no_opts), &m, NULL), 0);
        ck_assert_uint_eq(m.n_options, 0);
        ck_assert_uint_eq(m.options_len, 0);
        ck_assert_uint_eq(m.payload_len, 1);
        ck_assert_uint_eq(m.payload[0], 0x00);

        /* An empty payload adds no marker. */
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_POST, 9, NULL, 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, NULL, 0), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 4);
        ck_assert_uint_eq(coap_msg_encoded_size(0, NULL, 0, 0), 4);

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_POST, 9, NULL, 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "\0", 1), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, sizeof(no_opts));
        ck_assert_mem_eq(buf, no_opts, len);
}
END_TEST

START_TEST(test_round_trip) {
        static const uint8_t token[] = {9, 8, 7, 6, 5, 4, 3, 2};
        static const char payload[] = "hello, world";
        uint8_t value300[300], buf[512], buf2[512];
        CoapOption opts[] = {
                {COAP_OPTION_BLOCK2, 1, (const uint8_t *) "\x06"},
                {COAP_OPTION_IF_MATCH, 0, NULL},
                {COAP_OPTION_URI_PATH, 3, (const uint8_t *) "one"},
                {COAP_OPTION_ETAG, 8, (const uint8_t *) "\x01\x02\x03\x04\x05\x06\x07\x08"},
                {COAP_OPTION_URI_PATH, 3, (const uint8_t *) "two"},
                {COAP_OPTION_ECHO, sizeof(value300), value300},
                {COAP_OPTION_REQUEST_TAG, 2, (const uint8_t *) "rt"},
                {COAP_OPTION_SIZE1, 2, (const uint8_t *) "\x04\x00"},
        };
        CoapOption got[ELEMENTS(opts) + 1];
        CoapOptionIter it;
        CoapBuilder b;
        size_t len, len2, n = 0;
        CoapMsg m;

        memset(value300, 0xee, sizeof(value300));
        coap_options_sort(opts, ELEMENTS(opts));
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_NON, COAP_CODE_FETCH, 0xfffe, token, 8);
        ck_assert_int_eq(coap_builder_add_options(&b, opts, ELEMENTS(opts)), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, payload, strlen(payload)), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(coap_msg_encoded_size(8, opts, ELEMENTS(opts), strlen(payload)), len);

        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        ck_assert_uint_eq(m.type, COAP_TYPE_NON);
        ck_assert_uint_eq(m.code, COAP_CODE_FETCH);
        ck_assert_uint_eq(m.mid, 0xfffe);
        ck_assert_mem_eq(m.token, token, 8);
        ck_assert_uint_eq(m.n_options, ELEMENTS(opts));
        ck_assert_uint_eq(m.payload_len, strlen(payload));
        ck_assert_mem_eq(m.payload, payload, m.payload_len);

        coap_option_iter_init(&it, &m);
        while (coap_option_iter_next(&it, &got[n])) {
                ck_assert_uint_lt(n, ELEMENTS(opts));
                ck_assert_uint_eq(got[n].number, opts[n].number);
                ck_assert_uint_eq(got[n].len, opts[n].len);
                if (opts[n].len > 0)
                        ck_assert_mem_eq(got[n].value, opts[n].value, opts[n].len);
                n++;
        }
        ck_assert_uint_eq(n, ELEMENTS(opts));

        /* Rebuilding from the parsed parts gives the same bytes. */
        coap_builder_init(&b, buf2, sizeof(buf2), m.type, m.code, m.mid, m.token, m.token_len);
        ck_assert_int_eq(coap_builder_add_options(&b, got, n), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, m.payload, m.payload_len), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len2), 0);
        ck_assert_uint_eq(len2, len);
        ck_assert_mem_eq(buf2, buf, len);
}
END_TEST

START_TEST(test_uint_option) {
        uint8_t buf[64];
        CoapBuilder b;
        uint32_t v;
        CoapMsg m;
        size_t len;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CODE_CONTENT, 3, NULL, 0);
        ck_assert_int_eq(coap_builder_add_uint_option(&b, COAP_OPTION_OBSERVE, 0), 0);
        ck_assert_int_eq(coap_builder_add_uint_option(&b, COAP_OPTION_CONTENT_FORMAT, 50), 0);
        ck_assert_int_eq(coap_builder_add_uint_option(&b, COAP_OPTION_MAX_AGE, 0x10000), 0);
        ck_assert_int_eq(coap_builder_add_option(&b, COAP_OPTION_SIZE2, "\1\2\3\4\5", 5), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        /* 6: empty; 12: 1 byte; 14: 3 bytes; 28: delta 14 needs the 1-byte extension */
        ck_assert_uint_eq(len, 4 + 1 + 2 + 4 + 7);
        ck_assert_mem_eq(buf + 4, "\x60\x61\x32\x23\x01\x00\x00\xd5\x01\1\2\3\4\5", 14);

        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_OBSERVE, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_CONTENT_FORMAT, &v), 0);
        ck_assert_uint_eq(v, 50);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_MAX_AGE, &v), 0);
        ck_assert_uint_eq(v, 0x10000);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_SIZE2, &v), -EBADMSG);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_SIZE1, &v), -ENOENT);
}
END_TEST

START_TEST(test_builder_init_errors) {
        const uint8_t token[9] = {0};
        uint8_t buf[16];
        CoapBuilder b;
        size_t len = 77;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, token, 9);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EINVAL);
        ck_assert_uint_eq(len, 77);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "a", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_set_payload(&b, "a", 1), -EINVAL);

        coap_builder_init(&b, buf, 3, COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EMSGSIZE);
        coap_builder_init(&b, buf, 4 + 7, COAP_TYPE_CON, COAP_CODE_GET, 1, token, 8);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EMSGSIZE);
        ck_assert_int_eq(coap_builder_add_uint_option(&b, 6, 1), -EMSGSIZE);

        coap_builder_init(&b, buf, 4 + 8, COAP_TYPE_CON, COAP_CODE_GET, 1, token, 8);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 12);
}
END_TEST

START_TEST(test_builder_order_errors) {
        uint8_t buf[64];
        CoapBuilder b;
        size_t len;

        /* Descending numbers are refused, and the error sticks. */
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "a", 1), 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 3, "h", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_add_option(&b, 15, "q", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_set_payload(&b, "x", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EINVAL);

        /* No option after the payload. */
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "x", 1), 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "a", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EINVAL);

        /* Only one payload. */
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "x", 1), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "y", 1), -EINVAL);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EINVAL);

        /* Unsorted option arrays are refused too. */
        CoapOption opts[] = {{15, 1, (const uint8_t *) "q"}, {11, 1, (const uint8_t *) "p"}};
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_options(&b, opts, 2), -EINVAL);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EINVAL);
        coap_options_sort(opts, 2);
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_options(&b, opts, 2), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 4 + 2 + 2);
}
END_TEST

START_TEST(test_builder_no_room) {
        uint8_t buf[64];
        CoapBuilder b;
        size_t len;

        /* Exact fit: header + option (1 + 3) + marker + 2 bytes payload = 11. */
        coap_builder_init(&b, buf, 11, COAP_TYPE_CON, COAP_CODE_PUT, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "abc", 3), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "xy", 2), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_uint_eq(len, 11);

        /* One byte short of the payload, then sticky. */
        coap_builder_init(&b, buf, 10, COAP_TYPE_CON, COAP_CODE_PUT, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "abc", 3), 0);
        ck_assert_int_eq(coap_builder_set_payload(&b, "xy", 2), -EMSGSIZE);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EMSGSIZE);

        /* One byte short of the option, counting its extension byte. */
        coap_builder_init(&b, buf, 4 + 2 + 12, COAP_TYPE_CON, COAP_CODE_PUT, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "0123456789abc", 13), -EMSGSIZE);
        ck_assert_int_eq(coap_builder_add_option(&b, 11, "", 0), -EMSGSIZE);
        ck_assert_int_eq(coap_builder_finish(&b, &len), -EMSGSIZE);
}
END_TEST

START_TEST(test_options_sort_stable) {
        CoapOption opts[] = {
                {15, 1, (const uint8_t *) "1"}, {11, 1, (const uint8_t *) "2"},
                {60, 1, (const uint8_t *) "3"}, {11, 1, (const uint8_t *) "4"},
                {3, 1, (const uint8_t *) "5"},  {15, 1, (const uint8_t *) "6"},
                {11, 1, (const uint8_t *) "7"},
        };
        static const uint16_t numbers[] = {3, 11, 11, 11, 15, 15, 60};
        static const char order[] = "5247163";

        coap_options_sort(opts, ELEMENTS(opts));
        for (size_t i = 0; i < ELEMENTS(opts); i++) {
                ck_assert_uint_eq(opts[i].number, numbers[i]);
                ck_assert_uint_eq(opts[i].value[0], (uint8_t) order[i]);
        }
        coap_options_sort(opts, 0);
}
END_TEST

START_TEST(test_iter_unvalidated) {
        /* A hand-made CoapMsg with bad option bytes ends the iteration instead of overreading. */
        static const uint8_t bad_delta[] = {0xf0};
        static const uint8_t truncated[] = {0xb5, 'a', 'b'};
        static const uint8_t overflow[] = {0xe0, 0xfe, 0xf2, 0x10};
        CoapMsg m = {.options = bad_delta, .options_len = sizeof(bad_delta)};
        CoapOptionIter it;
        CoapOption o;

        coap_option_iter_init(&it, &m);
        ck_assert(!coap_option_iter_next(&it, &o));
        m = (CoapMsg){.options = truncated, .options_len = sizeof(truncated)};
        coap_option_iter_init(&it, &m);
        ck_assert(!coap_option_iter_next(&it, &o));
        m = (CoapMsg){.options = overflow, .options_len = sizeof(overflow)};
        coap_option_iter_init(&it, &m);
        ck_assert(coap_option_iter_next(&it, &o));
        ck_assert_uint_eq(o.number, 65535);
        ck_assert(!coap_option_iter_next(&it, &o));
        ck_assert(!coap_option_iter_next(&it, &o));
        m = (CoapMsg){0};
        coap_option_iter_init(&it, &m);
        ck_assert(!coap_option_iter_next(&it, &o));
        ck_assert(!coap_msg_find_option(&m, 11, &o));
}
END_TEST

START_TEST(test_find_option_by_number) {
        /* Numbers on both sides of the presence map's last bit (63 and above share it), and
         * neighbours that are absent. */
        static const uint16_t present[] = {1, 62, 64, 300}, absent[] = {0, 2, 61, 63, 65, 299, 301};
        uint8_t buf[64];
        CoapBuilder b;
        CoapOption o;
        CoapMsg m;
        size_t len;

        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        for (size_t i = 0; i < ELEMENTS(present); i++)
                ck_assert_int_eq(coap_builder_add_uint_option(&b, present[i], present[i]), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        ck_assert_uint_eq(m.present, UINT64_C(1) << 1 | UINT64_C(1) << 62 | UINT64_C(1) << 63);
        for (size_t i = 0; i < ELEMENTS(present); i++) {
                uint32_t v = 0;

                ck_assert(coap_msg_find_option(&m, present[i], &o));
                ck_assert_uint_eq(o.number, present[i]);
                ck_assert_int_eq(coap_msg_get_uint_option(&m, present[i], &v), 0);
                ck_assert_uint_eq(v, present[i]);
        }
        for (size_t i = 0; i < ELEMENTS(absent); i++)
                ck_assert(!coap_msg_find_option(&m, absent[i], &o));

        /* Without options of 63 and above, none of them is found. */
        coap_builder_init(&b, buf, sizeof(buf), COAP_TYPE_CON, COAP_CODE_GET, 1, NULL, 0);
        ck_assert_int_eq(coap_builder_add_option(&b, 62, "x", 1), 0);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        ck_assert_int_eq(coap_msg_parse(buf, len, &m, NULL), 0);
        ck_assert_uint_eq(m.present, UINT64_C(1) << 62);
        ck_assert(coap_msg_find_option(&m, 62, &o));
        ck_assert(!coap_msg_find_option(&m, 63, &o));
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_ECHO, &o));
}
END_TEST

static Suite *coap_msg_suite(void) {
        Suite *s = suite_create("coap-msg");
        TCase *tc;

        tc = tcase_create("rfc");
        tcase_add_test(tc, test_build_rfc_get);
        tcase_add_test(tc, test_build_path_and_query);
        tcase_add_test(tc, test_parse_rfc_get);
        tcase_add_test(tc, test_parse_response_payload);
        tcase_add_test(tc, test_parse_header_fields);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse-errors");
        tcase_add_loop_test(tc, test_parse_errors, 0, (int) ELEMENTS(bad_datagrams));
        tcase_add_test(tc, test_parse_error_coverage);
        tcase_add_test(tc, test_parse_error_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("encoding");
        tcase_add_loop_test(tc, test_option_delta_boundaries, 0, (int) ELEMENTS(delta_cases));
        tcase_add_test(tc, test_option_delta_between_options);
        tcase_add_test(tc, test_find_option_by_number);
        tcase_add_loop_test(tc, test_option_length_boundaries, 0, (int) ELEMENTS(length_cases));
        tcase_add_test(tc, test_option_length_too_long);
        tcase_add_test(tc, test_payload_marker);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_uint_option);
        tcase_add_test(tc, test_iter_unvalidated);
        suite_add_tcase(s, tc);

        tc = tcase_create("builder");
        tcase_add_test(tc, test_builder_init_errors);
        tcase_add_test(tc, test_builder_order_errors);
        tcase_add_test(tc, test_builder_no_room);
        tcase_add_test(tc, test_options_sort_stable);
        suite_add_tcase(s, tc);

        return s;
}

DEFINE_CHECK_MAIN(coap_msg_suite)
