/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "coap-option.h"

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
        uint32_t value;
        size_t len;
        uint8_t bytes[4];
} uint_cases[] = {
        {0, 0, {0}},
        {1, 1, {0x01}},
        {255, 1, {0xff}},
        {256, 2, {0x01, 0x00}},
        {65535, 2, {0xff, 0xff}},
        {65536, 3, {0x01, 0x00, 0x00}},
        {(1u << 24) - 1, 3, {0xff, 0xff, 0xff}},
        {1u << 24, 4, {0x01, 0x00, 0x00, 0x00}},
        {UINT32_MAX, 4, {0xff, 0xff, 0xff, 0xff}},
};

START_TEST(test_uint_encode_decode) {
        uint8_t out[4] = {0xaa, 0xaa, 0xaa, 0xaa};
        uint32_t v = 12345;

        ck_assert_uint_eq(coap_uint_encode(uint_cases[_i].value, out), uint_cases[_i].len);
        ck_assert_mem_eq(out, uint_cases[_i].bytes, uint_cases[_i].len);
        ck_assert_int_eq(coap_uint_decode(out, uint_cases[_i].len, &v), 0);
        ck_assert_uint_eq(v, uint_cases[_i].value);
}
END_TEST

START_TEST(test_uint_decode_lenient) {
        /* Leading zeros are not minimal but still decode (RFC 7252 §3.2 "SHOULD"). */
        static const uint8_t padded[] = {0x00, 0x00, 0x01, 0x02};
        static const uint8_t five[] = {0x00, 0x00, 0x00, 0x00, 0x01};
        uint32_t v = 77;

        ck_assert_int_eq(coap_uint_decode(padded, sizeof(padded), &v), 0);
        ck_assert_uint_eq(v, 0x0102);
        ck_assert_int_eq(coap_uint_decode(NULL, 0, &v), 0);
        ck_assert_uint_eq(v, 0);
        v = 77;
        ck_assert_int_eq(coap_uint_decode(five, sizeof(five), &v), -EBADMSG);
        ck_assert_uint_eq(v, 77);
}
END_TEST

/* Path cases: expected options as "P:value" (Uri-Path) or "Q:value" (Uri-Query). */
static const struct {
        const char *path;
        const char *expected[6];
} path_cases[] = {
        {"", {NULL}},
        {"/", {NULL}},
        {"test", {"P:test", NULL}},
        {"/temperature", {"P:temperature", NULL}},
        {"a/b/c?x=1&y", {"P:a", "P:b", "P:c", "Q:x=1", "Q:y", NULL}},
        {"/a//b/", {"P:a", "P:b", NULL}},
        {"?x=1", {"Q:x=1", NULL}},
        {"a?", {"P:a", NULL}},
        {"a?&&x&", {"P:a", "Q:x", NULL}},
        {"a?u=/x/y&v=?", {"P:a", "Q:u=/x/y", "Q:v=?", NULL}},
        {".well-known/core?rt=temp", {"P:.well-known", "P:core", "Q:rt=temp", NULL}},
};

START_TEST(test_path_to_options) {
        CoapOption opts[8];
        size_t n = 99, expected = 0;

        ck_assert_int_eq(coap_path_to_options(path_cases[_i].path, opts, ELEMENTS(opts), &n), 0);
        while (path_cases[_i].expected[expected])
                expected++;
        ck_assert_uint_eq(n, expected);
        for (size_t i = 0; i < n; i++) {
                const char *e = path_cases[_i].expected[i];

                ck_assert_uint_eq(opts[i].number,
                                  e[0] == 'P' ? COAP_OPTION_URI_PATH : COAP_OPTION_URI_QUERY);
                ck_assert_uint_eq(opts[i].len, strlen(e + 2));
                ck_assert_mem_eq(opts[i].value, e + 2, opts[i].len);
                /* values point into the path */
                ck_assert((const char *) opts[i].value >= path_cases[_i].path &&
                          (const char *) opts[i].value <
                                  path_cases[_i].path + strlen(path_cases[_i].path));
        }
}
END_TEST

START_TEST(test_path_segment_length) {
        char path[2 + 256 + 1 + 256 + 1];
        CoapOption opts[4];
        size_t n;

        /* "/" + 255 bytes + "?" + 255 bytes: both at the limit */
        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[256] = '?';
        path[512] = '\0';
        ck_assert_int_eq(coap_path_to_options(path, opts, ELEMENTS(opts), &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(opts[0].len, 255);
        ck_assert_uint_eq(opts[1].len, 255);
        ck_assert_uint_eq(opts[1].number, COAP_OPTION_URI_QUERY);

        /* 256-byte query argument */
        path[513] = '\0';
        path[512] = 'p';
        ck_assert_int_eq(coap_path_to_options(path, opts, ELEMENTS(opts), &n), -EINVAL);

        /* 256-byte path segment */
        memset(path, 'p', sizeof(path));
        path[0] = '/';
        path[257] = '\0';
        ck_assert_int_eq(coap_path_to_options(path, opts, ELEMENTS(opts), &n), -EINVAL);
        path[257] = '/';
        path[260] = '\0';
        ck_assert_int_eq(coap_path_to_options(path, opts, ELEMENTS(opts), &n), -EINVAL);
}
END_TEST

START_TEST(test_path_too_many) {
        CoapOption opts[3];
        size_t n = 0;

        ck_assert_int_eq(coap_path_to_options("a/b/c", opts, 3, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(coap_path_to_options("a/b/c/d", opts, 3, &n), -E2BIG);
        ck_assert_int_eq(coap_path_to_options("a/b?c&d", opts, 3, &n), -E2BIG);
        ck_assert_int_eq(coap_path_to_options("a/b?c", opts, 3, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_int_eq(coap_path_to_options("/", NULL, 0, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(coap_path_to_options("x", NULL, 0, &n), -E2BIG);
}
END_TEST

static const struct {
        CoapBlock block;
        size_t len;
        uint8_t bytes[3];
} block_cases[] = {
        {{0, false, 0}, 0, {0}},
        {{0, false, 6}, 1, {0x06}},
        {{0, true, 2}, 1, {0x0a}},
        {{15, true, 6}, 1, {0xfe}},
        {{16, false, 0}, 2, {0x01, 0x00}},
        {{4095, true, 6}, 2, {0xff, 0xfe}},
        {{4096, false, 1}, 3, {0x01, 0x00, 0x01}},
        {{(1u << 20) - 1, true, 6}, 3, {0xff, 0xff, 0xfe}},
};

START_TEST(test_block_encode_decode) {
        const CoapBlock *b = &block_cases[_i].block;
        uint8_t out[3];
        CoapBlock got;

        ck_assert_int_eq(coap_block_encode(b, out), (int) block_cases[_i].len);
        ck_assert_mem_eq(out, block_cases[_i].bytes, block_cases[_i].len);
        ck_assert_int_eq(coap_block_decode(out, block_cases[_i].len, &got), 0);
        ck_assert_uint_eq(got.num, b->num);
        ck_assert_int_eq(got.more, b->more);
        ck_assert_uint_eq(got.szx, b->szx);
}
END_TEST

START_TEST(test_block_errors) {
        static const uint8_t four[] = {0x00, 0x00, 0x00, 0x06};
        static const uint8_t bert[] = {0x17};
        CoapBlock b = {.num = 1u << 20, .szx = 0};
        CoapBlock got = {.num = 5};
        uint8_t out[3];

        ck_assert_int_eq(coap_block_encode(&b, out), -EINVAL);
        b = (CoapBlock){.num = 0, .szx = 7};
        ck_assert_int_eq(coap_block_encode(&b, out), -EINVAL);
        ck_assert_int_eq(coap_block_decode(four, sizeof(four), &got), -EBADMSG);
        ck_assert_int_eq(coap_block_decode(bert, sizeof(bert), &got), -EINVAL);
        ck_assert_uint_eq(got.num, 5);
        /* Not minimal, still decodes. */
        ck_assert_int_eq(coap_block_decode(four + 1, 3, &got), 0);
        ck_assert_uint_eq(got.num, 0);
        ck_assert_uint_eq(got.szx, 6);
}
END_TEST

START_TEST(test_szx) {
        static const size_t bad[] = {0, 1, 8, 15, 17, 24, 100, 1023, 1025, 2048, 4096};

        for (uint8_t szx = 0; szx <= COAP_BLOCK_SZX_MAX; szx++) {
                ck_assert_uint_eq(coap_szx_to_size(szx), 16u << szx);
                ck_assert_int_eq(coap_size_to_szx(coap_szx_to_size(szx)), szx);
        }
        ck_assert_uint_eq(coap_szx_to_size(0), 16);
        ck_assert_uint_eq(coap_szx_to_size(6), 1024);
        for (size_t i = 0; i < ELEMENTS(bad); i++)
                ck_assert_int_eq(coap_size_to_szx(bad[i]), -EINVAL);
}
END_TEST

#define SEC 1000000ull

START_TEST(test_observe_sequence) {
        const uint32_t half = 1u << 23;

        ck_assert(coap_observe_is_fresher(1, 0, 2, 0));
        ck_assert(!coap_observe_is_fresher(2, 0, 1, 0));
        ck_assert(!coap_observe_is_fresher(7, 0, 7, 0));
        ck_assert(coap_observe_is_fresher(0, 0, half - 1, 0));
        /* Exactly 2^23 apart: neither direction is fresher. */
        ck_assert(!coap_observe_is_fresher(0, 0, half, 0));
        ck_assert(!coap_observe_is_fresher(half, 0, 0, 0));
        ck_assert(coap_observe_is_fresher(half + 1, 0, 0, 0));
        ck_assert(!coap_observe_is_fresher(0, 0, half + 1, 0));
}
END_TEST

START_TEST(test_observe_wrap) {
        ck_assert(coap_observe_is_fresher(COAP_OBSERVE_MAX, 0, 0, 0));
        ck_assert(coap_observe_is_fresher(COAP_OBSERVE_MAX - 2, 0, 5, 0));
        ck_assert(!coap_observe_is_fresher(5, 0, COAP_OBSERVE_MAX, 0));
        ck_assert(!coap_observe_is_fresher(0, 0, COAP_OBSERVE_MAX, 0));
}
END_TEST

START_TEST(test_observe_time) {
        /* An older sequence number wins once more than 128 s have passed. */
        ck_assert(!coap_observe_is_fresher(10, 5 * SEC, 9, 5 * SEC + 128 * SEC));
        ck_assert(coap_observe_is_fresher(10, 5 * SEC, 9, 5 * SEC + 128 * SEC + 1));
        ck_assert(coap_observe_is_fresher(10, 0, 10, 129 * SEC));
        /* A clock going backwards never makes a stale one fresh. */
        ck_assert(!coap_observe_is_fresher(10, 200 * SEC, 9, 0));
        ck_assert(!coap_observe_is_fresher(10, UINT64_MAX, 9, 0));
        ck_assert(coap_observe_is_fresher(9, UINT64_MAX, 10, 0));
}
END_TEST

static Suite *coap_option_suite(void) {
        Suite *s = suite_create("coap-option");
        TCase *tc;

        tc = tcase_create("uint");
        tcase_add_loop_test(tc, test_uint_encode_decode, 0, (int) ELEMENTS(uint_cases));
        tcase_add_test(tc, test_uint_decode_lenient);
        suite_add_tcase(s, tc);

        tc = tcase_create("path");
        tcase_add_loop_test(tc, test_path_to_options, 0, (int) ELEMENTS(path_cases));
        tcase_add_test(tc, test_path_segment_length);
        tcase_add_test(tc, test_path_too_many);
        suite_add_tcase(s, tc);

        tc = tcase_create("block");
        tcase_add_loop_test(tc, test_block_encode_decode, 0, (int) ELEMENTS(block_cases));
        tcase_add_test(tc, test_block_errors);
        tcase_add_test(tc, test_szx);
        suite_add_tcase(s, tc);

        tc = tcase_create("observe");
        tcase_add_test(tc, test_observe_sequence);
        tcase_add_test(tc, test_observe_wrap);
        tcase_add_test(tc, test_observe_time);
        suite_add_tcase(s, tc);

        return s;
}

DEFINE_CHECK_MAIN(coap_option_suite)
