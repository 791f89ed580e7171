/* SPDX-License-Identifier: MIT */
/* The peer (coap-server) is killed in the middle of a 1 MiB block-wise transfer: the request
 * must end promptly with a transport error, what was delivered before must be intact, and the
 * daemon must hold nothing of it afterwards. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-helper.h"
#include "check-main.h"
#include "fault-util.h"
#include "net-helper.h"

#define BODY_SIZE      (1024 * 1024)
/* The daemon runs far ahead of the test reading its signals: the peer is frozen (SIGSTOP) as
 * soon as the transfer is seen running, then killed, so that it dies mid-transfer for sure. */
#define KILL_OFFSET    (16 * 1024)
#define BLOCK_SIZE     256
/* 200 ms doubling over 4 retransmissions: 6.2 s; plus slack. */
#define END_BOUND_USEC (8 * USEC_PER_SEC)

static const TestRequest base_req = {
        .path = "example_data",
        .ack_timeout = 200,
        .ack_random_percent = 100,
        .backoff_percent = 200,
        .max_retransmission = 4,
        .block_size = BLOCK_SIZE,
};

typedef struct Setup {
        TestBus *bus;
        char *client;
        uint8_t *body;
        uint16_t port;
        pid_t server;
        int fd;
        char dest[64];
        uint32_t sockets0;
        int fds0;
} Setup;

static void setup_start(Setup *s, bool connected, bool put_first) {
        *s = (Setup){.fd = -EBADF};
        ck_assert_int_eq(test_coap_server_spawn("127.0.0.1", &s->port, &s->server), 0);
        ck_assert_int_eq(test_bus_new(&s->bus), 0);
        ck_assert_int_eq(test_bus_get_manager_u32(s->bus, "Sockets", &s->sockets0), 0);
        s->fds0 = test_daemon_fd_count_settled();
        ck_assert_int_gt(s->fds0, 0);
        ck_assert_int_eq(test_bus_create_client(s->bus, "peer-death", &s->client, NULL), 0);
        s->fd = test_udp_socket(AF_INET, connected ? "127.0.0.1" : NULL, s->port);
        ck_assert_int_ge(s->fd, 0);
        if (!connected)
                test_format_destination(s->dest, sizeof(s->dest), "127.0.0.1", s->port);
        s->body = malloc(BODY_SIZE);
        ck_assert_ptr_nonnull(s->body);
        test_fill_random(s->body, BODY_SIZE, 77);

        if (put_first) {
                TestRequest req = base_req;
                TestResponse *rs = NULL;
                size_t n = 0;
                uint64_t id;

                req.method = TEST_PUT;
                req.payload = s->body;
                req.payload_len = BODY_SIZE;
                ck_assert_int_eq(
                        test_bus_request(s->bus, s->client, s->fd, s->dest, &req, &id, NULL), 0);
                ck_assert_int_eq(test_bus_collect(s->bus, id, 60 * USEC_PER_SEC, &rs, &n), 0);
                ck_assert_int_eq(rs[n - 1].result, 0x41);
                test_responses_free(rs, n);
        }
}

static void setup_finish(Setup *s) {
        ck_assert(test_daemon_alive());
        ck_assert_int_ge(test_bus_call_void(s->bus, s->client, "Close", NULL), 0);
        ck_assert_uint_eq(
                test_bus_await_manager_u32(s->bus, "RequestsInFlight", 0, 2 * USEC_PER_SEC), 0);
        ck_assert_uint_eq(
                test_bus_await_manager_u32(s->bus, "Sockets", s->sockets0, 2 * USEC_PER_SEC),
                s->sockets0);
        ck_assert_int_eq(test_bus_await_daemon_fds(s->bus, s->fds0, 2 * USEC_PER_SEC), s->fds0);
        safe_close(s->fd);
        free(s->body);
        free(s->client);
        test_bus_free(s->bus);
}

/* Waits for the final Response of id after the kill; checks it is prompt and an error. */
static int32_t await_end(Setup *s, uint64_t id, uint64_t killed_at, size_t *have) {
        for (;;) {
                TestResponse r;
                int32_t result;

                ck_assert_int_eq(test_bus_next_response(s->bus, id, END_BOUND_USEC, &r), 0);
                if (!r.final) {
                        /* Blocks already on the way when the peer died. */
                        ck_assert_int_ge(r.result, 0);
                        if (r.payload_len > 0) {
                                ck_assert_uint_eq(r.offset, *have);
                                ck_assert_mem_eq(r.payload, s->body + r.offset, r.payload_len);
                                *have += r.payload_len;
                        }
                        test_response_done(&r);
                        continue;
                }
                result = r.result;
                ck_assert(r.last_block);
                ck_assert_uint_eq(r.payload_len, 0);
                test_response_done(&r);
                printf("# peer killed at %zu bytes: request ended with %d after %" PRIu64 " ms\n",
                       *have, result, (fault_now_usec() - killed_at) / 1000);
                ck_assert_uint_lt(fault_now_usec() - killed_at, END_BOUND_USEC);
                return result;
        }
}

static void get_and_kill(bool connected) {
        TestRequest req = base_req;
        uint64_t id, killed_at;
        size_t have = 0;
        int32_t result;
        Setup s;

        setup_start(&s, connected, true);
        req.method = TEST_GET;
        ck_assert_int_eq(test_bus_request(s.bus, s.client, s.fd, s.dest, &req, &id, NULL), 0);
        while (have < KILL_OFFSET) {
                TestResponse r;

                ck_assert_int_eq(test_bus_next_response(s.bus, id, 5 * USEC_PER_SEC, &r), 0);
                ck_assert(!r.final);
                ck_assert_int_eq(r.result, 0x45);
                ck_assert_uint_eq(r.offset, have);
                ck_assert_mem_eq(r.payload, s.body + have, r.payload_len);
                have += r.payload_len;
                test_response_done(&r);
        }
        ck_assert_int_eq(kill(s.server, SIGSTOP), 0);
        test_child_stop(s.server);
        killed_at = fault_now_usec();
        result = await_end(&s, id, killed_at, &have);
        ck_assert_uint_lt(have, BODY_SIZE);
        if (connected)
                /* The connected socket hears the ICMP port unreachable of the next block. */
                ck_assert_int_eq(result, -ECONNREFUSED);
        else
                ck_assert_msg(result == -ETIMEDOUT || result == -ECONNREFUSED, "result %d", result);
        setup_finish(&s);
}

START_TEST(test_get_connected) {
        get_and_kill(true);
}
END_TEST

START_TEST(test_get_unconnected) {
        get_and_kill(false);
}
END_TEST

/* The same in the other direction: the peer dies during a Block1 upload. */
START_TEST(test_put_connected) {
        TestRequest req = base_req;
        uint64_t id, killed_at, acked = 0;
        size_t have = 0;
        int32_t result;
        Setup s;

        setup_start(&s, true, false);
        req.method = TEST_PUT;
        req.payload = s.body;
        req.payload_len = BODY_SIZE;
        ck_assert_int_eq(test_bus_request(s.bus, s.client, s.fd, s.dest, &req, &id, NULL), 0);
        while (acked < KILL_OFFSET) {
                TestResponse r;

                ck_assert_int_eq(test_bus_next_response(s.bus, id, 5 * USEC_PER_SEC, &r), 0);
                ck_assert(!r.final);
                ck_assert_int_eq(r.result, 0x5f); /* 2.31 Continue */
                acked = r.offset;
                test_response_done(&r);
        }
        ck_assert_int_eq(kill(s.server, SIGSTOP), 0);
        test_child_stop(s.server);
        killed_at = fault_now_usec();
        result = await_end(&s, id, killed_at, &have);
        ck_assert_int_eq(result, -ECONNREFUSED);
        setup_finish(&s);
}
END_TEST

static Suite *peer_death_suite(void) {
        Suite *s = suite_create("faults-peer-death");
        TCase *tc = tcase_create("peer-death");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_get_connected);
        tcase_add_test(tc, test_get_unconnected);
        tcase_add_test(tc, test_put_connected);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(peer_death_suite)
