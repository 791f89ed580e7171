/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "check-main.h"
#include "core/destination.h"
#include "internal/macro.h"

static CoapAddr parse_ok(const char *s, int family) {
        CoapAddr a;
        int r;

        memset(&a, 0xaa, sizeof a);
        r = parse_destination(s, family, &a);
        ck_assert_msg(r == 0, "'%s' (family %d): %d", s, family, r);
        return a;
}

static void parse_fails(const char *s, int family) {
        CoapAddr a, sentinel;
        int r;

        memset(&a, 0xaa, sizeof a);
        sentinel = a;
        r = parse_destination(s, family, &a);
        ck_assert_msg(r == -EINVAL, "'%s' (family %d): %d", s, family, r);
        ck_assert_msg(memcmp(&a, &sentinel, sizeof a) == 0, "'%s' wrote the result", s);
}

static void check_in(const CoapAddr *a, const char *addr, uint16_t port) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *) &a->ss;
        struct in_addr want;

        ck_assert_int_eq(inet_pton(AF_INET, addr, &want), 1);
        ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in));
        ck_assert_int_eq(sin->sin_family, AF_INET);
        ck_assert_uint_eq(ntohs(sin->sin_port), port);
        ck_assert_uint_eq(sin->sin_addr.s_addr, want.s_addr);
}

static void check_in6(const CoapAddr *a, const char *addr, uint16_t port, uint32_t scope) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &a->ss;
        struct in6_addr want;

        ck_assert_int_eq(inet_pton(AF_INET6, addr, &want), 1);
        ck_assert_uint_eq(a->len, sizeof(struct sockaddr_in6));
        ck_assert_int_eq(sin6->sin6_family, AF_INET6);
        ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
        ck_assert_mem_eq(&sin6->sin6_addr, &want, sizeof want);
        ck_assert_uint_eq(sin6->sin6_scope_id, scope);
        ck_assert_uint_eq(sin6->sin6_flowinfo, 0);
}

START_TEST(test_connected) {
        CoapAddr a;

        /* "": the socket is connected; no address at all. */
        a = parse_ok("", AF_INET);
        ck_assert_uint_eq(a.len, 0);
        a = parse_ok("", AF_INET6);
        ck_assert_uint_eq(a.len, 0);
}
END_TEST

START_TEST(test_ipv4) {
        CoapAddr a;

        a = parse_ok("192.0.2.1:5683", AF_INET);
        check_in(&a, "192.0.2.1", 5683);
        a = parse_ok("0.0.0.0:1", AF_INET);
        check_in(&a, "0.0.0.0", 1);
        a = parse_ok("255.255.255.255:65535", AF_INET);
        check_in(&a, "255.255.255.255", 65535);
        a = parse_ok("127.0.0.1:5684", AF_INET);
        check_in(&a, "127.0.0.1", 5684);
}
END_TEST

START_TEST(test_ipv4_on_ipv6_socket) {
        CoapAddr a;

        /* The kernel reports an IPv4 peer of an AF_INET6 socket as its v4-mapped address. */
        a = parse_ok("192.0.2.1:5683", AF_INET6);
        check_in6(&a, "::ffff:192.0.2.1", 5683, 0);
        a = parse_ok("127.0.0.1:1", AF_INET6);
        check_in6(&a, "::ffff:127.0.0.1", 1, 0);
}
END_TEST

START_TEST(test_ipv6) {
        CoapAddr a;

        a = parse_ok("[2001:db8::1]:5683", AF_INET6);
        check_in6(&a, "2001:db8::1", 5683, 0);
        a = parse_ok("[::1]:65535", AF_INET6);
        check_in6(&a, "::1", 65535, 0);
        a = parse_ok("[::]:1", AF_INET6);
        check_in6(&a, "::", 1, 0);
        a = parse_ok("[::ffff:192.0.2.1]:5683", AF_INET6);
        check_in6(&a, "::ffff:192.0.2.1", 5683, 0);
        a = parse_ok("[2001:0db8:0000:0000:0000:ff00:0042:8329]:5683", AF_INET6);
        check_in6(&a, "2001:db8::ff00:42:8329", 5683, 0);
        /* The longest text form inet_pton takes. */
        a = parse_ok("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:5683", AF_INET6);
        check_in6(&a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 5683, 0);

        /* Only AF_INET6 sockets can reach IPv6 destinations. */
        parse_fails("[2001:db8::1]:5683", AF_INET);
        parse_fails("[::ffff:192.0.2.1]:5683", AF_INET);
        parse_fails("[::1%1]:5683", AF_INET);
}
END_TEST

START_TEST(test_scope) {
        unsigned lo = if_nametoindex("lo");
        char big[64];
        CoapAddr a;

        ck_assert_uint_gt(lo, 0);
        a = parse_ok("[fe80::1%1]:5683", AF_INET6);
        check_in6(&a, "fe80::1", 5683, 1);
        a = parse_ok("[fe80::1%lo]:5683", AF_INET6);
        check_in6(&a, "fe80::1", 5683, lo);
        /* A numeric index is taken as is: the interface may come later. */
        a = parse_ok("[fe80::1%4294967295]:5683", AF_INET6);
        check_in6(&a, "fe80::1", 5683, UINT32_MAX);

        parse_fails("[fe80::1%0]:5683", AF_INET6);
        parse_fails("[fe80::1%4294967296]:5683", AF_INET6);
        parse_fails("[fe80::1%]:5683", AF_INET6);
        parse_fails("[fe80::1%no-such-if0]:5683", AF_INET6);
        parse_fails("[fe80::1%lo%lo]:5683", AF_INET6);
        parse_fails("[%lo]:5683", AF_INET6);
        parse_fails("[fe80::1]%lo:5683", AF_INET6);
        parse_fails("192.0.2.1%lo:5683", AF_INET);
        parse_fails("192.0.2.1%lo:5683", AF_INET6);
        /* Interface names have at most IF_NAMESIZE - 1 bytes. */
        memset(big, 'x', sizeof big);
        memcpy(big, "[fe80::1%", 9);
        strcpy(big + 9 + IF_NAMESIZE, "]:1");
        parse_fails(big, AF_INET6);
        memcpy(big + 9, "99999999999999999999", 20);
        strcpy(big + 9 + 20, "]:1");
        parse_fails(big, AF_INET6);
}
END_TEST

START_TEST(test_ports) {
        static const char *const bad[] = {
                "0",    "65536", "99999", "100000",       "",  "-1",    "+1", " 1", "1 ",
                "0x10", "1e3",   "1.0",   "\xef\xbc\x95", "a", "5683:",
        };
        char s[64];
        CoapAddr a;

        a = parse_ok("192.0.2.1:1", AF_INET);
        check_in(&a, "192.0.2.1", 1);
        a = parse_ok("192.0.2.1:65535", AF_INET);
        check_in(&a, "192.0.2.1", 65535);
        a = parse_ok("[::1]:1", AF_INET6);
        check_in6(&a, "::1", 1, 0);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(s, sizeof s, "192.0.2.1:%s", bad[i]);
                parse_fails(s, AF_INET);
                parse_fails(s, AF_INET6);
                snprintf(s, sizeof s, "[::1]:%s", bad[i]);
                parse_fails(s, AF_INET6);
        }
}
END_TEST

START_TEST(test_junk) {
        static const char *const bad[] = {
                "192.0.2.1",
                "192.0.2.1:",
                ":5683",
                "192.0.2:5683",
                "192.0.2.1.1:5683",
                "256.0.0.1:5683",
                "192.0.2.1 :5683",
                " 192.0.2.1:5683",
                "localhost:5683",
                "example.com:5683",
                "coap://192.0.2.1:5683",
                "192.0.2.1:5683/path",
                "::1:5683",
                "2001:db8::1:5683",
                "[::1]",
                "[::1]:",
                "[::1]5683",
                "[::1:5683",
                "::1]:5683",
                "[]:5683",
                "[[::1]]:5683",
                "[::1]:5683]",
                "[192.0.2.1]:5683",
                "[::g]:5683",
                "[1:2:3:4:5:6:7:8:9]:5683",
                "[localhost]:5683",
                "[",
                "]",
                ":",
                "[]:",
                "[]",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                parse_fails(bad[i], AF_INET);
                parse_fails(bad[i], AF_INET6);
        }
}
END_TEST

START_TEST(test_long_inputs) {
        char s[4096];

        /* Longer than any address: refused before copying into the fixed buffer. */
        memset(s, '1', sizeof s - 1);
        s[sizeof s - 1] = '\0';
        parse_fails(s, AF_INET);
        parse_fails(s, AF_INET6);
        memcpy(s + sizeof s - 6, ":5683", 6);
        parse_fails(s, AF_INET);
        parse_fails(s, AF_INET6);

        s[0] = '[';
        memcpy(s + sizeof s - 8, "]:5683", 7);
        parse_fails(s, AF_INET6);
        memset(s + 1, ':', sizeof s - 9);
        parse_fails(s, AF_INET6);
}
END_TEST

static Suite *parse_destination_suite(void) {
        Suite *s = suite_create("parse_destination");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_connected);
        tcase_add_test(tc, test_ipv4);
        tcase_add_test(tc, test_ipv4_on_ipv6_socket);
        tcase_add_test(tc, test_ipv6);
        tcase_add_test(tc, test_scope);
        tcase_add_test(tc, test_ports);
        tcase_add_test(tc, test_junk);
        tcase_add_test(tc, test_long_inputs);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(parse_destination_suite)
