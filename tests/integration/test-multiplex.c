/* SPDX-License-Identifier: MIT */
/* One socket handed over in many requests by two client contexts at once is one daemon socket:
 * every request completes, each answer reaches the client that asked. */

#include <check.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define PER_CLIENT 4

static void run_multiplexed(int fd, const char *dest) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        char *clients[2] = {};
        uint64_t ids[2][PER_CLIENT];
        uint32_t sockets, inflight;
        int fds_before;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_bus_new(&b), 0);
        for (size_t c = 0; c < 2; c++)
                ck_assert_int_eq(test_bus_create_client(b, "mux", &clients[c], NULL), 0);
        fds_before = test_daemon_fd_count();

        /* Interleave the clients; /async?2 keeps every request in flight for 2 s. Its separate
         * responses are held for 3 x ACK_TIMEOUT after they arrive, to ACK their retransmissions
         * (RFC 7252 §4.5), and the socket with them: a short ACK_TIMEOUT keeps that short. */
        for (size_t i = 0; i < PER_CLIENT; i++)
                for (size_t c = 0; c < 2; c++) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                        ck_assert_msg(test_bus_request(b, clients[c], fd, dest,
                                                       &(TestRequest){.method = TEST_GET,
                                                                      .path = "async?2",
                                                                      .ack_timeout = 300,
                                                                      .ack_random_percent = 100},
                                                       &ids[c][i], &error) >= 0,
                                      "Request: %s: %s", error.name, error.message);
                }

        ck_assert_int_ge(test_bus_get_manager_u32(b, "Sockets", &sockets), 0);
        ck_assert_uint_eq(sockets, 1);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 2 * PER_CLIENT);
        /* One dup of the socket, however often it was passed. */
        ck_assert_int_eq(test_daemon_fd_count(), fds_before + 1);

        for (size_t c = 0; c < 2; c++)
                for (size_t i = 0; i < PER_CLIENT; i++) {
                        TestResponse *resp = NULL;
                        size_t n;

                        ck_assert_int_eq(
                                test_bus_collect(b, ids[c][i], 20 * USEC_PER_SEC, &resp, &n), 0);
                        ck_assert_uint_eq(n, 1);
                        ck_assert_int_eq(resp[0].result, 0x45);
                        ck_assert_uint_eq(resp[0].payload_len, 4);
                        ck_assert_mem_eq(resp[0].payload, "done", 4);
                        ck_assert_str_eq(resp[0].path, clients[c]);
                        test_responses_free(resp, n);
                }
        ck_assert_uint_eq(test_bus_count_queued(b, UINT64_MAX), 0);

        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Sockets", 0, 3 * USEC_PER_SEC), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(b, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 0);
        ck_assert_int_eq(test_bus_await_daemon_fds(b, fds_before, USEC_PER_SEC), fds_before);
        for (size_t c = 0; c < 2; c++)
                free(clients[c]);
        safe_close(fd);
}

START_TEST(test_connected_socket_shared) {
        run_multiplexed(test_udp_socket(AF_INET, test_peer_host(), test_peer_port()), "");
}
END_TEST

START_TEST(test_unconnected_socket_shared) {
        char dest[64];

        test_format_destination(dest, sizeof(dest), test_peer_host(), test_peer_port());
        run_multiplexed(test_udp_socket(AF_INET, NULL, 0), dest);
}
END_TEST

static Suite *multiplex_suite(void) {
        Suite *s = suite_create("multiplex");
        TCase *tc = tcase_create("multiplex");

        tcase_set_timeout(tc, 25);
        tcase_add_test(tc, test_connected_socket_shared);
        tcase_add_test(tc, test_unconnected_socket_shared);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multiplex_suite)
