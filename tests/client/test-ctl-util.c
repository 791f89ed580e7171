/* SPDX-License-Identifier: MIT */

/* coapclientctl's parsers: URIs, option values, content formats, exit codes, PSKs. */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-main.h"
#include "ctl-util.h"
#include "link-format.h"

static void check_uri(const char *s, const char *host, unsigned port, const char *path) {
        CtlUri u;

        ck_assert_int_eq(ctl_uri_parse(s, &u, NULL), 0);
        ck_assert_str_eq(u.host, host);
        ck_assert_uint_eq(u.port, port);
        ck_assert_str_eq(u.path, path);
        ctl_uri_done(&u);
}

/* ctl_uri_parse() that must fail with error, naming the part containing what. */
static void check_bad_uri(const char *s, int error, const char *what) {
        const char *reason = NULL;
        CtlUri u;

        ck_assert_int_eq(ctl_uri_parse(s, &u, &reason), error);
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, what), "'%s': '%s' lacks '%s'", s, reason, what);
}

START_TEST(test_uri) {
        char long_segment[300], long_host[300];
        CtlUri u;

        check_uri("coap://127.0.0.1", "127.0.0.1", 5683, "/");
        check_uri("coap://127.0.0.1/", "127.0.0.1", 5683, "/");
        check_uri("COAP://host:1234/a/b?x=1&y=2", "host", 1234, "/a/b?x=1&y=2");
        check_uri("coap://[::1]:5684/time", "::1", 5684, "/time");
        check_uri("coap://[fe80::1%25eth0]/x", "fe80::1%eth0", 5683, "/x");
        check_uri("coap://h?q=1", "h", 5683, "/?q=1");
        /* Escapes are decoded, except the separators of the path syntax. */
        check_uri("coap://h/a%20b/c%2Fd", "h", 5683, "/a b/c%2Fd");

        ck_assert_int_eq(ctl_uri_parse("coaps://h/x", &u, NULL), 0);
        ck_assert(u.secure);
        ck_assert(!u.host_is_literal);
        ck_assert_uint_eq(u.port, 5684);
        ck_assert_str_eq(u.path, "/x");
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("COAPS://[::1]:6000", &u, NULL), 0);
        ck_assert(u.secure);
        ck_assert(u.host_is_literal);
        ck_assert_str_eq(u.host, "::1");
        ck_assert_uint_eq(u.port, 6000);
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("coap://h/", &u, NULL), 0);
        ck_assert(!u.secure);
        ctl_uri_done(&u);
        /* Uri-Host only for names (RFC 7252 §6.4). */
        ck_assert_int_eq(ctl_uri_parse("coap://192.0.2.1/", &u, NULL), 0);
        ck_assert(u.host_is_literal);
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("coap://localhost/", &u, NULL), 0);
        ck_assert(!u.host_is_literal);
        ctl_uri_done(&u);
        ck_assert_int_eq(ctl_uri_parse("coap://192.0.2.1.example/", &u, NULL), 0);
        ck_assert(!u.host_is_literal);
        ctl_uri_done(&u);

        check_bad_uri("coaps+tcp://h/", -EPROTONOSUPPORT, "scheme");
        check_bad_uri("http://h/", -EPROTONOSUPPORT, "scheme");
        check_bad_uri("h/x", -EINVAL, "scheme");
        check_bad_uri("coaps://", -EINVAL, "host");
        check_bad_uri("coap://", -EINVAL, "host");
        check_bad_uri("coap://h:0/", -EINVAL, "port");
        check_bad_uri("coap://h:65536/", -EINVAL, "port");
        check_bad_uri("coap://h:99999999999999999999999/", -EINVAL, "port");
        check_bad_uri("coap://h:x/", -EINVAL, "port");
        check_bad_uri("coap://h:1x/", -EINVAL, "port");
        check_bad_uri("coap://[::1/", -EINVAL, "']'");
        check_bad_uri("coap://[::1]x/", -EINVAL, "after the host");
        check_bad_uri("coap://h/a#frag", -EINVAL, "fragment");
        check_bad_uri("coap://h#", -EINVAL, "fragment");
        memset(long_segment, 'a', sizeof(long_segment));
        memcpy(long_segment, "coap://h/", 9);
        long_segment[sizeof(long_segment) - 1] = '\0';
        check_bad_uri(long_segment, -EMSGSIZE, "255 bytes");
        long_segment[9] = '?';
        check_bad_uri(long_segment, -EMSGSIZE, "255 bytes");
        memset(long_host, 'h', sizeof(long_host));
        memcpy(long_host, "coap://", 7);
        long_host[sizeof(long_host) - 1] = '\0';
        check_bad_uri(long_host, -EMSGSIZE, "host");
}
END_TEST

START_TEST(test_multicast) {
        ck_assert(ctl_host_is_multicast("224.0.1.187"));
        ck_assert(ctl_host_is_multicast("239.255.255.250"));
        ck_assert(ctl_host_is_multicast("ff02::fd"));
        ck_assert(ctl_host_is_multicast("ff02::1%eth0"));
        ck_assert(!ctl_host_is_multicast("192.0.2.1"));
        ck_assert(!ctl_host_is_multicast("::1"));
        ck_assert(!ctl_host_is_multicast("fe80::1%eth0"));
        ck_assert(!ctl_host_is_multicast("ff02.example"));
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

        /* Up to the library's limit, which the CLI does not lower. */
        {
                char opt[MAX_COAP_CLIENT_OPTION_LEN + 8];

                memcpy(opt, "35:", 3);
                memset(opt + 3, 'x', MAX_COAP_CLIENT_OPTION_LEN);
                opt[3 + MAX_COAP_CLIENT_OPTION_LEN] = '\0';
                ck_assert_int_eq(ctl_option_parse(opt, &o), 0);
                ck_assert_uint_eq(o.len, MAX_COAP_CLIENT_OPTION_LEN);
                strcpy(opt + 3 + MAX_COAP_CLIENT_OPTION_LEN, "x");
                ck_assert_int_eq(ctl_option_parse(opt, &o), -EMSGSIZE);
        }
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
        ck_assert_int_eq(ctl_exit_code(COAP_MAKE_RESPONSE_CODE(3, 1)), CTL_EXIT_PEER);
        ck_assert_int_eq(ctl_exit_code(-ETIMEDOUT), CTL_EXIT_TIMEOUT);
        ck_assert_int_eq(ctl_exit_code(-ECONNRESET), CTL_EXIT_PEER);
        ck_assert_int_eq(ctl_exit_code(-ECONNREFUSED), CTL_EXIT_PEER);
        ck_assert_int_eq(ctl_exit_code(-EACCES), CTL_EXIT_PEER);
        ck_assert_int_eq(ctl_exit_code(-ECONNABORTED), CTL_EXIT_DAEMON);
        ck_assert_int_eq(ctl_exit_code(-ENOBUFS), CTL_EXIT_FAILURE);
        ck_assert_int_eq(ctl_call_exit_code(-ECONNREFUSED), CTL_EXIT_DAEMON);
        ck_assert_int_eq(ctl_call_exit_code(-EINVAL), CTL_EXIT_USAGE);
        ck_assert_int_eq(ctl_call_exit_code(-EAGAIN), CTL_EXIT_FAILURE);
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-EAGAIN), "MaxRequestsPerClient="));
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-EMSGSIZE), "MaxPayloadBytes="));
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-ENOSPC), "MaxClientsPerCaller="));
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-ENOBUFS), "MaxRequests="));
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-EDQUOT), "MaxRequestsPerUser="));
        ck_assert_ptr_nonnull(strstr(ctl_limit_hint(-EUSERS), "MaxCallers="));
        ck_assert_ptr_null(ctl_limit_hint(-ETIMEDOUT));
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

static char *json_of(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        ctl_json_string(f, s);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

START_TEST(test_json) {
        char *j;

        j = json_of("plain");
        ck_assert_str_eq(j, "\"plain\"");
        free(j);
        j = json_of("a\"b\\c\nd\x01\x7f\xc3\xa9");
        ck_assert_str_eq(j, "\"a\\\"b\\\\c\\nd\\u0001\\u007f\xc3\xa9\"");
        free(j);
}
END_TEST

static char *base64_of(const char *s, size_t len) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        ctl_json_base64(f, (const uint8_t *) s, len);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

START_TEST(test_base64_and_text) {
        /* RFC 4648 §10. */
        static const char *const vectors[][2] = {
                {"", "\"\""},
                {"f", "\"Zg==\""},
                {"fo", "\"Zm8=\""},
                {"foo", "\"Zm9v\""},
                {"foob", "\"Zm9vYg==\""},
                {"fooba", "\"Zm9vYmE=\""},
                {"foobar", "\"Zm9vYmFy\""},
        };
        char *b;

        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                b = base64_of(vectors[i][0], strlen(vectors[i][0]));
                ck_assert_str_eq(b, vectors[i][1]);
                free(b);
        }
        b = base64_of("\xff\x00\xfe", 3);
        ck_assert_str_eq(b, "\"/wD+\"");
        free(b);

        ck_assert(ctl_is_text((const uint8_t *) "plain", 5));
        ck_assert(ctl_is_text((const uint8_t *) "", 0));
        ck_assert(ctl_is_text((const uint8_t *) "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
        ck_assert(!ctl_is_text((const uint8_t *) "a\0b", 3));
        ck_assert(!ctl_is_text((const uint8_t *) "\xc3", 1));             /* truncated */
        ck_assert(!ctl_is_text((const uint8_t *) "\xc0\xaf", 2));         /* overlong */
        ck_assert(!ctl_is_text((const uint8_t *) "\xe0\x80\xaf", 3));     /* overlong */
        ck_assert(!ctl_is_text((const uint8_t *) "\xed\xa0\x80", 3));     /* surrogate */
        ck_assert(!ctl_is_text((const uint8_t *) "\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        ck_assert(!ctl_is_text((const uint8_t *) "\x80", 1));
        ck_assert(!ctl_is_text((const uint8_t *) "\xc3\x28", 2));
}
END_TEST

static CtlLinkList parse_links(const char *s, int expected) {
        CtlLinkList l = {};

        ck_assert_int_eq(ctl_link_format_parse(s, strlen(s), &l), expected);
        return l;
}

START_TEST(test_link_format) {
        CtlLinkList l;

        /* RFC 6690 §5, the examples. */
        l = parse_links("</sensors/temp>;if=\"sensor\",</sensors/light>;if=\"sensor\"", 0);
        ck_assert_uint_eq(l.n_links, 2);
        ck_assert_str_eq(l.links[0].target, "/sensors/temp");
        ck_assert_uint_eq(l.links[0].n_params, 1);
        ck_assert_str_eq(l.links[0].params[0].name, "if");
        ck_assert_str_eq(l.links[0].params[0].value, "sensor");
        ck_assert_str_eq(l.links[1].target, "/sensors/light");
        ctl_link_list_done(&l);

        l = parse_links("</sensors>;ct=40;title=\"Sensor Index\",\n"
                        "</sensors/temp>;rt=\"temperature-c\";if=\"sensor\" ; obs,\r\n"
                        "<http://www.example.com/sensors/t123>;anchor=\"/sensors/temp\";"
                        "rel=\"describedby\"",
                        0);
        ck_assert_uint_eq(l.n_links, 3);
        ck_assert_uint_eq(l.links[0].n_params, 2);
        ck_assert_str_eq(l.links[0].params[0].value, "40");
        ck_assert_str_eq(l.links[0].params[1].value, "Sensor Index");
        ck_assert_uint_eq(l.links[1].n_params, 3);
        ck_assert_str_eq(l.links[1].params[2].name, "obs");
        ck_assert_ptr_null(l.links[1].params[2].value);
        ck_assert_str_eq(l.links[2].target, "http://www.example.com/sensors/t123");
        ck_assert_str_eq(l.links[2].params[1].value, "describedby");
        ctl_link_list_done(&l);

        /* Escapes in a quoted string; an empty one; empty input (no links). */
        l = parse_links("<a>;title=\"say \\\"hi\\\" \\\\o/\";x=\"\"", 0);
        ck_assert_str_eq(l.links[0].params[0].value, "say \"hi\" \\o/");
        ck_assert_str_eq(l.links[0].params[1].value, "");
        ctl_link_list_done(&l);
        l = parse_links("", 0);
        ck_assert_uint_eq(l.n_links, 0);
        ctl_link_list_done(&l);
        l = parse_links("<>", 0);
        ck_assert_str_eq(l.links[0].target, "");
        ctl_link_list_done(&l);

        parse_links("/no-brackets", -EBADMSG);
        parse_links("</a", -EBADMSG);
        parse_links("</a>,", -EBADMSG);
        parse_links("</a>;", -EBADMSG);
        parse_links("</a>;x=", -EBADMSG);
        parse_links("</a>;x=\"open", -EBADMSG);
        parse_links("</a> </b>", -EBADMSG);
        parse_links("</a>;=1", -EBADMSG);
        ck_assert_int_eq(ctl_link_format_parse("</a\0>", 5, &l), -EBADMSG);
        ck_assert_int_eq(ctl_link_format_parse("</a>;t=\"\\\0\"", 11, &l), -EBADMSG);
}
END_TEST

static Suite *ctl_util_suite(void) {
        Suite *s = suite_create("ctl-util");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_uri);
        tcase_add_test(tc, test_multicast);
        tcase_add_test(tc, test_option);
        tcase_add_test(tc, test_formats_and_codes);
        tcase_add_test(tc, test_psk);
        tcase_add_test(tc, test_json);
        tcase_add_test(tc, test_base64_and_text);
        tcase_add_test(tc, test_link_format);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(ctl_util_suite)
