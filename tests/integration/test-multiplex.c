/* SPDX-License-Identifier: MIT */
/* One socket handed over in many requests by two client contexts at once is one daemon socket:
 * every request completes, each answer reaches the client that asked. A socket with more queued
 * than the daemon reads from one socket per turn of its loop is read to the end. */

#include <check.h>
#include <netinet/in.h>
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
        fds_before = test_daemon_fd_count_settled();

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

/* More than SOCKET_READ_BURST (256) datagrams. */
#define QUEUED 600

/* The daemon reads sockets edge-triggered: what one turn leaves in the queue must be read in
 * the next ones although no new datagram announces it. */
START_TEST(test_queue_longer_than_a_turn) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int peer = -EBADF, fd = -EBADF;
        struct sockaddr_in self;
        socklen_t len = sizeof(self);
        uint64_t recv0, recv = 0, deadline, id;
        int size = 4 << 20;
        uint16_t port;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "burst", &client, NULL), 0);
        peer = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(peer, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        /* room for all of them (the tests run as root) */
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &self, &len), 0);
        /* Empty datagrams: each one counts as received, none is answered. */
        for (unsigned i = 0; i < QUEUED; i++)
                ck_assert_int_eq(sendto(peer, "", 0, 0, (struct sockaddr *) &self, len), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(b, "MessagesReceived", &recv0), 0);

        /* The request hands the socket over with everything already queued; the peer never
         * answers it. */
        ck_assert_msg(test_bus_request(b, client, fd, "",
                                       &(TestRequest){.method = TEST_GET, .path = "burst"}, &id,
                                       &error) >= 0,
                      "Request: %s: %s", error.name, error.message);
        deadline = test_now_usec() + 10 * USEC_PER_SEC;
        while (test_bus_get_manager_u64(b, "MessagesReceived", &recv) >= 0 &&
               recv - recv0 < QUEUED && test_now_usec() < deadline)
                (void) test_bus_run(b, 10 * USEC_PER_MSEC);
        ck_assert_uint_eq(recv - recv0, QUEUED);
}
END_TEST

static Suite *multiplex_suite(void) {
        Suite *s = suite_create("multiplex");
        TCase *tc = tcase_create("multiplex");

        tcase_set_timeout(tc, 25);
        tcase_add_test(tc, test_connected_socket_shared);
        tcase_add_test(tc, test_unconnected_socket_shared);
        tcase_add_test(tc, test_queue_longer_than_a_turn);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multiplex_suite)
