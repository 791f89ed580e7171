/* SPDX-License-Identifier: MIT */

/* coapclientctl's parsers: URIs, option values, content formats, exit codes, PSKs. */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "ctl-util.h"

static void check_uri(const char *s, const char *host, unsigned port, const char *path) {
        CtlUri u;

        ck_assert_int_eq(ctl_uri_parse(s, &u), 0);
        ck_assert_str_eq(u.host, host);
        ck_assert_uint_eq(u.port, port);
        ck_assert_str_eq(u.path, path);
        ctl_uri_done(&u);
}

START_TEST(test_uri) {
        CtlUri u;

        check_uri("coap://127.0.0.1", "127.0.0.1", 5683, "/");
        check_uri("coap://127.0.0.1/", "127.0.0.1", 5683, "/");
        check_uri("COAP://host:1234/a/b?x=1&y=2#frag", "host", 1234, "/a/b?x=1&y=2");
        check_uri("coap://[::1]:5684/time", "::1", 5684, "/time");
        check_uri("coap://[fe80::1%25eth0]/x", "fe80::1%eth0", 5683, "/x");
        check_uri("coap://h?q=1", "h", 5683, "/?q=1");
        /* Escapes are decoded, except the separators of the path syntax. */
        check_uri("coap://h/a%20b/c%2Fd", "h", 5683, "/a b/c%2Fd");

        ck_assert_int_eq(ctl_uri_parse("coaps://h/x", &u), 0);
        ck_assert(u.secure);
        ck_assert_uint_eq(u.port, 5684);
        ck_assert_str_eq(u.path, "/x");
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("COAPS://[::1]:6000", &u), 0);
        ck_assert(u.secure);
        ck_assert_str_eq(u.host, "::1");
        ck_assert_uint_eq(u.port, 6000);
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("coap://h/", &u), 0);
        ck_assert(!u.secure);
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("coaps+tcp://h/", &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(ctl_uri_parse("coaps://", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("http://h/", &u), -EPROTONOSUPPORT);
        ck_assert_int_eq(ctl_uri_parse("h/x", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://h:0/", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://h:65536/", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://h:x/", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://[::1/", &u), -EINVAL);
        ck_assert_int_eq(ctl_uri_parse("coap://[::1]x/", &u), -EINVAL);
}
END_TEST

START_TEST(test_option) {
        struct coap_client_option o;

        ck_assert_int_eq(ctl_option_parse("17:#0", &o), 0);
        ck_assert_uint_eq(o.code, 17);
        ck_assert_uint_eq(o.len, 0);
        ck_assert_int_eq(ctl_option_parse("60:#70000", &o), 0);
        ck_assert_uint_eq(o.len, 3);
        ck_assert_int_eq(memcmp(o.value, "\x01\x11\x70", 3), 0);
        ck_assert_int_eq(ctl_option_parse("4:0xDEADbeef", &o), 0);
        ck_assert_uint_eq(o.code, 4);
        ck_assert_uint_eq(o.len, 4);
        ck_assert_int_eq(memcmp(o.value, "\xde\xad\xbe\xef", 4), 0);
        ck_assert_int_eq(ctl_option_parse("3:example.org", &o), 0);
        ck_assert_uint_eq(o.len, 11);
        ck_assert_int_eq(memcmp(o.value, "example.org", 11), 0);
        ck_assert_int_eq(ctl_option_parse("3:", &o), 0);
        ck_assert_uint_eq(o.len, 0);

        ck_assert_int_eq(ctl_option_parse("3:thirteen-long", &o), -EMSGSIZE);
        ck_assert_int_eq(ctl_option_parse("0:x", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("65536:x", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("x:1", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("3", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("3:0xabc", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("3:0xzz", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("3:#", &o), -EINVAL);
        ck_assert_int_eq(ctl_option_parse("3:#4294967296", &o), -EINVAL);
}
END_TEST

START_TEST(test_formats_and_codes) {
        uint16_t f;

        ck_assert_int_eq(ctl_content_format_parse("json", &f), 0);
        ck_assert_uint_eq(f, COAP_CONTENT_FORMAT_APP_JSON);
        ck_assert_int_eq(ctl_content_format_parse("application/cbor", &f), 0);
        ck_assert_uint_eq(f, COAP_CONTENT_FORMAT_APP_CBOR);
        ck_assert_int_eq(ctl_content_format_parse("11542", &f), 0);
        ck_assert_uint_eq(f, 11542);
        ck_assert_int_eq(ctl_content_format_parse("yaml", &f), -EINVAL);
        ck_assert_int_eq(ctl_content_format_parse("70000", &f), -EINVAL);
        ck_assert_str_eq(ctl_content_format_name(0), "text/plain");
        ck_assert_ptr_null(ctl_content_format_name(9999));

        ck_assert_str_eq(ctl_code_name(COAP_RESPONSE_CODE_CONTENT), "Content");
        ck_assert_str_eq(ctl_code_name(COAP_RESPONSE_CODE_NOT_FOUND), "Not Found");
        ck_assert_ptr_null(ctl_code_name(COAP_MAKE_RESPONSE_CODE(3, 1)));
        ck_assert_int_eq(ctl_exit_code(COAP_RESPONSE_CODE_CHANGED), CTL_EXIT_SUCCESS);
        ck_assert_int_eq(ctl_exit_code(COAP_RESPONSE_CODE_NOT_FOUND), CTL_EXIT_CLIENT_ERROR);
        ck_assert_int_eq(ctl_exit_code(COAP_RESPONSE_CODE_GATEWAY_TIMEOUT), CTL_EXIT_SERVER_ERROR);
        ck_assert_int_eq(ctl_exit_code(-ETIMEDOUT), CTL_EXIT_TRANSPORT);
        ck_assert_int_eq(ctl_exit_code(COAP_MAKE_RESPONSE_CODE(3, 1)), CTL_EXIT_TRANSPORT);
}
END_TEST

START_TEST(test_psk) {
        uint8_t buf[64];
        size_t len;

        ck_assert_int_eq(ctl_psk_parse("secretPSK", buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, 9);
        ck_assert_int_eq(memcmp(buf, "secretPSK", 9), 0);
        ck_assert_int_eq(ctl_psk_parse("0x00fF10", buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, 3);
        ck_assert_int_eq(memcmp(buf, "\x00\xff\x10", 3), 0);
        ck_assert_int_eq(ctl_psk_parse("", buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(ctl_psk_parse("0x", buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(ctl_psk_parse("0xabc", buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(ctl_psk_parse("0xzz", buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(ctl_psk_parse("12345", buf, 4, &len), -EINVAL);
        ck_assert_int_eq(ctl_psk_parse("0x0102030405", buf, 4, &len), -EINVAL);

        ck_assert_ptr_nonnull(strstr(ctl_tls_error_hint(-EACCES), "--ca"));
        ck_assert_ptr_nonnull(ctl_tls_error_hint(-ETIMEDOUT));
        ck_assert_ptr_null(ctl_tls_error_hint(-ENOMEM));
}
END_TEST

static Suite *ctl_util_suite(void) {
        Suite *s = suite_create("ctl-util");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_uri);
        tcase_add_test(tc, test_option);
        tcase_add_test(tc, test_formats_and_codes);
        tcase_add_test(tc, test_psk);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(ctl_util_suite)
