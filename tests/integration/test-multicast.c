/* SPDX-License-Identifier: MIT */
/* Multicast on the bus front end: Request with "multicast-timeout" to a group joined on the
 * loopback by two members, one Response per member with its address as the "source" detail,
 * then the final Response (result 0, no source); the refusals of a bad multicast request. */

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "mcast-responder.h"

/* Long enough for both members' answers on a loaded machine (sanitizers, valgrind): the window
 * is how long the request waits for them. */
#define WINDOW_MS 1500

static char *format_source(const struct sockaddr_in *a) {
        char ip[INET_ADDRSTRLEN], *s = NULL;

        ck_assert_ptr_nonnull(inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)));
        ck_assert_int_ge(asprintf(&s, "%s:%u", ip, ntohs(a->sin_port)), 0);
        return s;
}

START_TEST(test_bus_two_members) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint16_t port = mcast_test_port();
        const TestExtra window = {"multicast-timeout", 'u', WINDOW_MS, NULL};
        const TestRequest req = {
                .method = TEST_GET, .non = true, .path = "who", .extra = &window, .n_extra = 1};
        char dest[64], *client = NULL, *sa, *sb;
        TestResponse *resp = NULL;
        McastResponder a, m;
        size_t n = 0;
        uint64_t id;
        int fd;

        mcast_responder_start(&a, "127.0.0.6", port, "A", 1);
        mcast_responder_start(&m, "127.0.0.7", port, "B", 2);
        fd = mcast_test_client_socket();
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "multicast", &client, NULL), 0);
        snprintf(dest, sizeof(dest), "%s:%u", MCAST_TEST_GROUP, port);

        ck_assert_msg(test_bus_request(b, client, fd, dest, &req, &id, &error) >= 0, "%s: %s",
                      error.name, error.message);
        ck_assert_int_eq(test_bus_collect(b, id, 30 * 1000000ULL, &resp, &n), 0);
        ck_assert_uint_eq(n, 3);
        sa = format_source(&a.source);
        sb = format_source(&m.source);
        for (size_t i = 0; i < 2; i++) {
                ck_assert_int_eq(resp[i].result, 0x45);
                ck_assert(!resp[i].final);
                ck_assert(resp[i].last_block);
                ck_assert_ptr_nonnull(resp[i].source);
                ck_assert_uint_eq(resp[i].payload_len, 1);
                if (resp[i].payload[0] == 'A')
                        ck_assert_str_eq(resp[i].source, sa);
                else
                        ck_assert_str_eq(resp[i].source, sb);
        }
        ck_assert_uint_ne(resp[0].payload[0], resp[1].payload[0]);
        ck_assert_int_eq(resp[2].result, 0);
        ck_assert(resp[2].final);
        ck_assert(!resp[2].last_block);
        ck_assert_ptr_null(resp[2].source);
        ck_assert_uint_eq(resp[2].payload_len, 0);
        test_responses_free(resp, n);
        free(sa);
        free(sb);

        ck_assert_uint_eq(mcast_responder_stop(&a), 0);
        ck_assert_uint_eq(mcast_responder_stop(&m), 0);
        ck_assert_uint_eq(a.n_requests, 1);
        ck_assert_uint_eq(a.n_not_non, 0);
        close(fd);
        free(client);
}
END_TEST

static void assert_refused(TestBus *b, const char *client, int fd, const char *dest,
                           const TestRequest *req, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;

        ck_assert_int_lt(test_bus_request(b, client, fd, dest, req, &id, &error), 0);
        ck_assert_str_eq(error.name, name);
}

START_TEST(test_bus_refused) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        const TestExtra window = {"multicast-timeout", 'u', WINDOW_MS, NULL};
        const TestRequest non = {
                .method = TEST_GET, .non = true, .path = "p", .extra = &window, .n_extra = 1};
        TestRequest req;
        char *client = NULL;
        int fd = mcast_test_client_socket();

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "multicast", &client, NULL), 0);
        assert_refused(b, client, fd, "127.0.0.1:5683", &non, COAPCLIENTD_ERROR_INVALID_ADDRESS);
        req = non;
        req.non = false;
        assert_refused(b, client, fd, "239.255.0.1:5683", &req, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        req = non;
        req.observe = true;
        assert_refused(b, client, fd, "239.255.0.1:5683", &req, COAPCLIENTD_ERROR_INVALID_ARGUMENT);
        close(fd);
        free(client);
}
END_TEST

static Suite *multicast_suite(void) {
        Suite *s = suite_create("multicast");
        TCase *tc = tcase_create("bus");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_bus_two_members);
        tcase_add_test(tc, test_bus_refused);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multicast_suite)
