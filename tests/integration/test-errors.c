/* SPDX-License-Identifier: MIT */
/* Failures on the network side reach the caller as final Response signals with a negative
 * errno: a refused port, retransmission timeout, RST, cancellation. */

#include <check.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

typedef struct Fixture {
        TestBus *bus;
        char *client;
} Fixture;

static void fixture_open(Fixture *f) {
        ck_assert_int_eq(test_bus_new(&f->bus), 0);
        ck_assert_int_eq(test_bus_create_client(f->bus, "errors", &f->client, NULL), 0);
}

static void fixture_close(Fixture *f) {
        f->bus = test_bus_free(f->bus);
        free(f->client);
}

static uint64_t request_ok(Fixture *f, int fd, const char *dest, const TestRequest *req) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;

        ck_assert_msg(test_bus_request(f->bus, f->client, fd, dest, req, &id, &error) >= 0,
                      "Request: %s: %s", error.name, error.message);
        return id;
}

/* The only Response of id, which must be final and an error. */
static TestResponse final_error(Fixture *f, uint64_t id, uint64_t timeout_usec) {
        TestResponse *resp = NULL, r;
        size_t n;

        ck_assert_int_eq(test_bus_collect(f->bus, id, timeout_usec, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert(resp[0].final);
        ck_assert(resp[0].last_block);
        ck_assert_uint_eq(resp[0].payload_len, 0);
        r = resp[0];
        free(resp);
        return r;
}

static void assert_idle(Fixture *f) {
        uint32_t inflight;

        ck_assert_int_ge(test_bus_get_manager_u32(f->bus, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 0);
}

START_TEST(test_connection_refused) {
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        TestResponse r;
        uint64_t start, id;
        uint16_t port;

        ck_assert_int_eq(test_udp_closed_port(&port), 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        start = test_now_usec();
        id = request_ok(&f, fd, "", &(TestRequest){.method = TEST_GET, .path = "x"});
        /* The ICMP error comes back at once; the first retransmission would be after 2 s. */
        r = final_error(&f, id, 1500 * USEC_PER_MSEC);
        ck_assert_int_eq(r.result, -ECONNREFUSED);
        ck_assert_uint_lt(r.received_usec - start, USEC_PER_SEC);
        test_response_done(&r);
        assert_idle(&f);
        fixture_close(&f);
}
END_TEST

START_TEST(test_timeout) {
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        Fixture f = {};
        TestResponse r;
        uint64_t start, elapsed, id, retrans0, retrans1, timeouts0, timeouts1;
        uint16_t port;
        uint8_t buf[1500], mid[2] = {};
        struct sockaddr_in ours;
        int datagrams = 0;

        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        ck_assert_int_ge(test_bus_get_manager_u64(f.bus, "Retransmissions", &retrans0), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(f.bus, "Timeouts", &timeouts0), 0);
        start = test_now_usec();
        id = request_ok(&f, fd, "",
                        &(TestRequest){.method = TEST_GET,
                                       .path = "x",
                                       .ack_timeout = 100,
                                       .ack_random_percent = 100,
                                       .max_retransmission = 2});
        /* Sent at 0, 100 and 300 ms; given up at 700 ms. */
        r = final_error(&f, id, 3 * USEC_PER_SEC);
        elapsed = r.received_usec - start;
        ck_assert_int_eq(r.result, -ETIMEDOUT);
        ck_assert_msg(elapsed >= 650 * USEC_PER_MSEC && elapsed < 1500 * USEC_PER_MSEC,
                      "timed out after %llu ms", (unsigned long long) elapsed / 1000);
        test_response_done(&r);

        /* The peer saw the request three times, always with the same message ID. Only datagrams
         * from our socket count: the silent port is an ephemeral one, and a daemon of a test
         * running alongside may still send to a peer that had it before. */
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *) &ours, &(socklen_t){sizeof(ours)}), 0);
        for (;;) {
                struct sockaddr_in from;
                socklen_t from_len = sizeof(from);
                ssize_t n = recvfrom(silent, buf, sizeof(buf), MSG_DONTWAIT,
                                     (struct sockaddr *) &from, &from_len);

                if (n <= 0)
                        break;
                if (from.sin_port != ours.sin_port)
                        continue;
                datagrams++;
                ck_assert_int_ge(n, 4);
                ck_assert_uint_eq(buf[0] & 0x30, 0x00); /* CON */
                if (datagrams > 1)
                        ck_assert_mem_eq(mid, buf + 2, 2);
                memcpy(mid, buf + 2, 2);
        }
        ck_assert_int_eq(datagrams, 3);
        ck_assert_int_ge(test_bus_get_manager_u64(f.bus, "Retransmissions", &retrans1), 0);
        ck_assert_int_ge(test_bus_get_manager_u64(f.bus, "Timeouts", &timeouts1), 0);
        ck_assert_uint_eq(retrans1 - retrans0, 2);
        ck_assert_uint_eq(timeouts1 - timeouts0, 1);
        assert_idle(&f);
        fixture_close(&f);
}
END_TEST

START_TEST(test_reset) {
        _cleanup_close_ int fd = -EBADF;
        Fixture f = {};
        TestResponse r;
        uint64_t id;
        uint16_t port;
        pid_t peer;

        ck_assert_int_eq(test_rst_peer_spawn(&port, &peer), 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        id = request_ok(&f, fd, "", &(TestRequest){.method = TEST_GET, .path = "x"});
        r = final_error(&f, id, USEC_PER_SEC);
        ck_assert_int_eq(r.result, -ECONNRESET);
        test_response_done(&r);
        assert_idle(&f);
        fixture_close(&f);
        test_child_stop(peer);
}
END_TEST

START_TEST(test_noisy_peer) {
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        Fixture f = {};
        uint64_t id;
        uint16_t port;
        size_t n;
        pid_t peer;

        ck_assert_int_eq(test_noisy_peer_spawn(&port, &peer), 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        for (int round = 0; round < 2; round++) {
                id = request_ok(&f, fd, "", &(TestRequest){.method = TEST_GET, .path = "x"});
                ck_assert_int_eq(test_bus_collect(f.bus, id, USEC_PER_SEC, &resp, &n), 0);
                ck_assert_uint_eq(n, 1);
                ck_assert_int_eq(resp[0].result, 0x45);
                ck_assert_uint_eq(resp[0].payload_len, 2);
                ck_assert_mem_eq(resp[0].payload, "ok", 2);
                test_responses_free(resp, n);
        }
        /* The duplicate answers produce no event. */
        ck_assert_int_eq(test_bus_run(f.bus, 300 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(test_bus_count_queued(f.bus, UINT64_MAX), 0);
        ck_assert(test_daemon_alive());
        assert_idle(&f);
        fixture_close(&f);
        test_child_stop(peer);
}
END_TEST

START_TEST(test_cancel) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        Fixture f = {};
        TestResponse r;
        uint64_t id, ids[3];
        uint16_t port;

        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);

        id = request_ok(&f, fd, "", &(TestRequest){.method = TEST_GET, .path = "x"});
        ck_assert_int_ge(test_bus_call_id(f.bus, f.client, "Cancel", id, NULL), 0);
        r = final_error(&f, id, USEC_PER_SEC);
        ck_assert_int_eq(r.result, -ECANCELED);
        test_response_done(&r);
        ck_assert_int_lt(test_bus_call_id(f.bus, f.client, "Cancel", id, &error), 0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_UNKNOWN_REQUEST);

        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                ids[i] = request_ok(&f, fd, "", &(TestRequest){.method = TEST_POST, .path = "x"});
        ck_assert_int_ge(test_bus_call_void(f.bus, f.client, "CancelAll", NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                r = final_error(&f, ids[i], USEC_PER_SEC);
                ck_assert_int_eq(r.result, -ECANCELED);
                test_response_done(&r);
        }
        assert_idle(&f);
        fixture_close(&f);
}
END_TEST

START_TEST(test_close_with_requests) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_close_ int silent = -EBADF, fd = -EBADF;
        Fixture f = {};
        uint32_t clients0, clients1;
        uint16_t port;

        silent = test_udp_silent(AF_INET, &port);
        ck_assert_int_ge(silent, 0);
        fd = test_udp_socket(AF_INET, "127.0.0.1", port);
        ck_assert_int_ge(fd, 0);
        fixture_open(&f);
        ck_assert_int_ge(test_bus_get_manager_u32(f.bus, "Clients", &clients0), 0);
        (void) request_ok(&f, fd, "", &(TestRequest){.method = TEST_GET, .path = "x"});
        ck_assert_int_ge(test_bus_call_void(f.bus, f.client, "Close", NULL), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(f.bus, "Clients", &clients1), 0);
        ck_assert_uint_eq(clients1, clients0 - 1);
        ck_assert_uint_eq(test_bus_await_manager_u32(f.bus, "Sockets", 0, USEC_PER_SEC), 0);
        assert_idle(&f);
        /* The object is gone. */
        ck_assert_int_lt(test_bus_request(f.bus, f.client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "x"}, NULL,
                                          &error),
                         0);
        ck_assert_str_eq(error.name, TEST_ERROR_UNKNOWN_OBJECT);
        fixture_close(&f);
}
END_TEST

static Suite *errors_suite(void) {
        Suite *s = suite_create("errors");
        TCase *tc = tcase_create("errors");

        tcase_set_timeout(tc, 10);
        tcase_add_test(tc, test_connection_refused);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_reset);
        tcase_add_test(tc, test_noisy_peer);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_close_with_requests);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(errors_suite)
