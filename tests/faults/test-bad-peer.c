/* SPDX-License-Identifier: MIT */
/* coapclientd against a peer that misbehaves (bad-peer): every request ends cleanly with the
 * right result, nothing bogus is delivered, and the daemon keeps serving afterwards. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bus-helper.h"
#include "check-main.h"
#include "fault-util.h"
#include "net-helper.h"

/* 200 + 400 + 800 ms: a request without an answer times out after 1.4 s. */
#define FAST_TIMEOUT_USEC (1400 * USEC_PER_MSEC)

typedef struct Run {
        TestBus *bus;
        char *client;
        char *stats;
        uint16_t port;
        pid_t pid;
        int fd;
} Run;

static const TestRequest fast_get = {
        .method = TEST_GET,
        .path = "bad",
        .ack_timeout = 200,
        .ack_random_percent = 100,
        .backoff_percent = 200,
        .max_retransmission = 2,
};

static void run_start(Run *run, const char *mode, bool connected) {
        *run = (Run){.fd = -EBADF};
        run->stats = fault_tmp_path(mode);
        ck_assert_ptr_nonnull(run->stats);
        ck_assert_int_eq(fault_bad_peer_spawn(mode, run->stats, &run->port, &run->pid), 0);
        ck_assert_int_eq(test_bus_new(&run->bus), 0);
        ck_assert_int_eq(test_bus_create_client(run->bus, mode, &run->client, NULL), 0);
        run->fd = test_udp_socket(AF_INET, connected ? "127.0.0.1" : NULL, run->port);
        ck_assert_int_ge(run->fd, 0);
}

static uint64_t run_request(Run *run, const TestRequest *req) {
        char dest[64] = "";
        uint64_t id;
        int r;

        if (run->fd >= 0) {
                struct sockaddr_in sin;
                socklen_t len = sizeof(sin);

                /* Connected sockets take "" as destination. */
                if (getpeername(run->fd, (struct sockaddr *) &sin, &len) < 0)
                        test_format_destination(dest, sizeof(dest), "127.0.0.1", run->port);
        }
        r = test_bus_request(run->bus, run->client, run->fd, dest, req, &id, NULL);
        ck_assert_int_eq(r, 0);
        return id;
}

/* All Responses of id: must end with a final one within timeout_usec. */
static TestResponse *run_collect(Run *run, uint64_t id, uint64_t timeout_usec, size_t *ret_n) {
        TestResponse *rs = NULL;

        ck_assert_int_eq(test_bus_collect(run->bus, id, timeout_usec, &rs, ret_n), 0);
        ck_assert_uint_ge(*ret_n, 1);
        ck_assert(rs[*ret_n - 1].final);
        ck_assert(rs[*ret_n - 1].last_block);
        return rs;
}

/* The peer rewrites its stats after it answered: waits (bounded) until key reaches min. */
static uint64_t run_stat(Run *run, const char *key, uint64_t min) {
        return fault_stats_await(run->stats, key, min, USEC_PER_SEC);
}

/* The daemon survived, forgot the request, and still serves the real peer. */
static void run_finish(Run *run, const char *what) {
        _cleanup_close_ int fd = -EBADF;
        TestRequest req = {.method = TEST_GET, .path = "time"};
        TestResponse *rs = NULL;
        size_t n = 0;
        uint64_t id;

        /* The peer rewrites its stats after it answered: let it finish. */
        (void) fault_stats_await(run->stats, "requests", 1, USEC_PER_SEC);
        fault_stats_print(what, run->stats);
        ck_assert(test_daemon_alive());
        ck_assert_uint_eq(
                test_bus_await_manager_u32(run->bus, "RequestsInFlight", 0, 2 * USEC_PER_SEC), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_bus_request(run->bus, run->client, fd, "", &req, &id, NULL), 0);
        rs = run_collect(run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_int_eq(rs[n - 1].result, 0x45);
        test_responses_free(rs, n);

        if (run->pid > 0)
                (void) fault_child_stop(run->pid);
        safe_close(run->fd);
        free(run->client);
        free(run->stats);
        test_bus_free(run->bus);
}

START_TEST(test_garbage) {
        TestResponse *rs;
        uint64_t id, t0 = fault_now_usec();
        size_t n;
        Run run;

        run_start(&run, "garbage", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        /* Nothing of the noise is delivered: the only signal is the timeout. */
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -ETIMEDOUT);
        ck_assert_uint_ge(fault_now_usec() - t0, FAST_TIMEOUT_USEC - 100 * USEC_PER_MSEC);
        test_responses_free(rs, n);
        ck_assert_uint_eq(run_stat(&run, "requests", 3), 3);
        /* The malformed CON (reserved token length) was rejected with an RST each time. */
        ck_assert_uint_eq(fault_stats_await(run.stats, "rst_received", 3, USEC_PER_SEC), 3);
        run_finish(&run, "garbage peer");
}
END_TEST

START_TEST(test_rst) {
        TestResponse *rs;
        uint64_t id, t0 = fault_now_usec();
        size_t n;
        Run run;

        run_start(&run, "rst", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -ECONNRESET);
        /* At once, not after the retransmissions. */
        ck_assert_uint_lt(fault_now_usec() - t0, 150 * USEC_PER_MSEC);
        test_responses_free(rs, n);
        ck_assert_uint_eq(run_stat(&run, "requests", 1), 1);
        run_finish(&run, "rst peer");
}
END_TEST

START_TEST(test_wrong_token) {
        TestResponse *rs;
        uint64_t id, requests;
        size_t n;
        Run run;

        run_start(&run, "wrong-token", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -ETIMEDOUT);
        test_responses_free(rs, n);
        requests = run_stat(&run, "requests", 3);
        ck_assert_uint_eq(requests, 3);
        /* Every separate response with a foreign token was rejected (RFC 7252 §4.2). */
        ck_assert_uint_eq(fault_stats_await(run.stats, "rst_received", requests, USEC_PER_SEC),
                          requests);
        run_finish(&run, "wrong-token peer");
}
END_TEST

START_TEST(test_wrong_token_ack) {
        TestResponse *rs;
        uint64_t id;
        size_t n;
        Run run;

        run_start(&run, "wrong-token-ack", false);
        id = run_request(&run, &fast_get);
        /* Either ignored (retransmissions go on) or taken as an empty ACK (then the separate
         * response is awaited): in both cases nothing is delivered and the request times out. */
        rs = run_collect(&run, id, 10 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -ETIMEDOUT);
        test_responses_free(rs, n);
        run_finish(&run, "wrong-token-ack peer");
}
END_TEST

START_TEST(test_oversize) {
        TestResponse *rs;
        uint64_t id;
        size_t n;
        Run run;

        run_start(&run, "oversize", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        printf("# oversize: %zu signal(s), final result %d, %zu payload bytes\n", n,
               rs[n - 1].result, rs[n - 1].payload_len);
        if (rs[n - 1].result >= 0) {
                /* Handled: the whole body, intact. */
                ck_assert_uint_eq(n, 1);
                ck_assert_int_eq(rs[0].result, 0x45);
                ck_assert_uint_eq(rs[0].payload_len, 65507 - 4 - 8 - 1);
                for (size_t i = 0; i < rs[0].payload_len; i++)
                        ck_assert_uint_eq(rs[0].payload[i], i % 251);
        } else {
                /* Dropped: too big for the receive buffer, and the peer cannot do Block2. */
                ck_assert_msg(rs[n - 1].result == -EMSGSIZE || rs[n - 1].result == -ETIMEDOUT,
                              "oversize: %d", rs[n - 1].result);
                for (size_t i = 0; i < n; i++)
                        ck_assert_uint_eq(rs[i].payload_len, 0);
        }
        test_responses_free(rs, n);
        run_finish(&run, "oversize peer");
}
END_TEST

START_TEST(test_ok_then_die) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *rs;
        uint64_t id, t0;
        size_t n;
        Run run;
        int r, status;

        run_start(&run, "ok-then-die", true);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, 0x45);
        ck_assert_uint_eq(rs[0].payload_len, 2);
        ck_assert_mem_eq(rs[0].payload, "ok", 2);
        test_responses_free(rs, n);
        ck_assert_int_eq(waitpid(run.pid, &status, 0), run.pid);
        run.pid = 0;
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

        /* The peer's port is closed now: the connected socket hears ICMP port unreachable. */
        t0 = fault_now_usec();
        r = test_bus_request(run.bus, run.client, run.fd, "", &fast_get, &id, &error);
        if (r >= 0) {
                rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
                ck_assert_uint_eq(n, 1);
                ck_assert_int_eq(rs[0].result, -ECONNREFUSED);
                test_responses_free(rs, n);
        } else {
                ck_assert_int_eq(r, -ECONNREFUSED);
        }
        ck_assert_uint_lt(fault_now_usec() - t0, USEC_PER_SEC);
        run_finish(&run, "ok-then-die peer");
}
END_TEST

START_TEST(test_ack_then_silent) {
        TestResponse *rs;
        uint64_t id, t0 = fault_now_usec(), elapsed;
        size_t n;
        Run run;

        run_start(&run, "ack-then-silent", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 15 * USEC_PER_SEC, &n);
        elapsed = fault_now_usec() - t0;
        printf("# ack-then-silent: timed out after %" PRIu64 " ms\n", elapsed / 1000);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -ETIMEDOUT);
        test_responses_free(rs, n);
        /* The empty ACK stopped the retransmissions. */
        ck_assert_uint_eq(run_stat(&run, "requests", 1), 1);
        run_finish(&run, "ack-then-silent peer");
}
END_TEST

START_TEST(test_bad_block) {
        TestResponse *rs;
        uint64_t id;
        size_t n;
        Run run;

        run_start(&run, "bad-block", false);
        id = run_request(&run, &fast_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, -EBADMSG);
        ck_assert_uint_eq(rs[0].payload_len, 0);
        test_responses_free(rs, n);
        run_finish(&run, "bad-block peer");
}
END_TEST

/* The exchange is held for 3 x ACK_TIMEOUT after its end: 3 s here, far beyond the peer's 300 ms
 * however slow the daemon runs (valgrind). */
static const TestRequest held_get = {
        .method = TEST_GET,
        .path = "bad",
        .ack_timeout = 1000,
        .ack_random_percent = 100,
        .max_retransmission = 2,
};

/* Our ACK of a separate response is "lost": the peer sends the response again after the exchange
 * ended, and the app makes no other request. The daemon still reads the socket and ACKs it again
 * (RFC 7252 §4.5), without a second delivery. */
START_TEST(test_lost_ack) {
        TestResponse *rs;
        uint64_t id;
        size_t n;
        Run run;

        run_start(&run, "lost-ack", false);
        id = run_request(&run, &held_get);
        rs = run_collect(&run, id, 5 * USEC_PER_SEC, &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(rs[0].result, 0x45);
        ck_assert_mem_eq(rs[0].payload, "sep", 3);
        test_responses_free(rs, n);
        ck_assert_uint_eq(fault_stats_await(run.stats, "ack_received", 2, 2 * USEC_PER_SEC), 2);
        ck_assert_uint_eq(run_stat(&run, "rst_received", 0), 0);
        ck_assert_uint_eq(test_bus_count_queued(run.bus, id), 0);
        run_finish(&run, "lost-ack peer");
}
END_TEST

/* After Cancel, the next notification is rejected with an RST at once (RFC 7641 §3.6), not when
 * the app makes its next request. */
START_TEST(test_notify_after_cancel) {
        TestRequest req = held_get;
        TestResponse r = {};
        uint64_t id;
        Run run;

        req.observe = true;
        run_start(&run, "notify", false);
        id = run_request(&run, &req);
        ck_assert_int_eq(test_bus_next_response(run.bus, id, 2 * USEC_PER_SEC, &r), 0);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert(!r.final);
        test_response_done(&r);
        ck_assert_int_ge(test_bus_call_id(run.bus, run.client, "Cancel", id, NULL), 0);
        ck_assert_uint_eq(fault_stats_await(run.stats, "rst_received", 1, 2 * USEC_PER_SEC), 1);
        run_finish(&run, "notify peer");
}
END_TEST

static Suite *bad_peer_suite(void) {
        Suite *s = suite_create("faults-bad-peer");
        TCase *tc = tcase_create("bad-peer");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_garbage);
        tcase_add_test(tc, test_lost_ack);
        tcase_add_test(tc, test_notify_after_cancel);
        tcase_add_test(tc, test_rst);
        tcase_add_test(tc, test_wrong_token);
        tcase_add_test(tc, test_wrong_token_ack);
        tcase_add_test(tc, test_oversize);
        tcase_add_test(tc, test_ok_then_die);
        tcase_add_test(tc, test_ack_then_silent);
        tcase_add_test(tc, test_bad_block);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(bad_peer_suite)
