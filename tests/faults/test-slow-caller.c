/* SPDX-License-Identifier: MIT */
/* A caller that starts an observation and many 1 MiB downloads and then never reads its bus
 * connection must not stall the daemon for others: a second caller's 1 MiB GET completes, the
 * daemon's RSS stays bounded, and everything is freed when the slow caller goes away.
 * Runs on tests/faults/slow-bus.conf: its 4 MiB per-connection queues stand for the 127 MiB of
 * a stock system bus, so that they fill in seconds instead of after 128 downloads. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-helper.h"
#include "check-main.h"
#include "fault-util.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define BODY_SIZE                    (1024 * 1024)
#define SLOW_CLIENTS                 2
#define SLOW_GETS                    16 /* per client: 32 MiB of Response signals in all */
#define LOAD_USEC                    (3 * USEC_PER_SEC)
#define GET_BOUND_USEC               (30 * USEC_PER_SEC)
#define RSS_GROWTH_MAX_KIB           (64 * 1024)
#define RSS_GROWTH_MAX_SANITIZED_KIB (256 * 1024) /* ASan quarantine, see test-dying-callers */

/* GETs /example_data within GET_BOUND_USEC; returns the time it took, or a negative errno
 * (-ETIMEDOUT: the daemon did not answer). The bytes must match body. */
static int64_t get_body(TestBus *b, const char *client, int fd, const uint8_t *body) {
        TestRequest req = {.method = TEST_GET, .path = "example_data"};
        uint64_t id, t0 = fault_now_usec();
        TestResponse *rs = NULL;
        size_t n = 0, have = 0;
        int r;

        r = test_bus_request(b, client, fd, "", &req, &id, NULL);
        if (r < 0)
                return r;
        r = test_bus_collect(b, id, GET_BOUND_USEC, &rs, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(rs[i].result, 0x45);
                ck_assert_uint_eq(rs[i].offset, have);
                ck_assert_uint_le(have + rs[i].payload_len, BODY_SIZE);
                ck_assert_mem_eq(rs[i].payload, body + have, rs[i].payload_len);
                have += rs[i].payload_len;
        }
        test_responses_free(rs, n);
        ck_assert_uint_eq(have, BODY_SIZE);
        return (int64_t) (fault_now_usec() - t0);
}

/* The slow caller: requests sent, replies and signals never read. Every request has its own
 * socket (a session of its own at the peer: libcoap 4.3.1 serves one block-wise transfer per
 * resource and session, a second one changes the ETag under the first). */
static sd_bus *slow_caller_start(void) {
        sd_bus *bus = NULL;

        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, getenv(COAPCLIENTD_BUS_ADDRESS_ENV)), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, 1), 0);
        ck_assert_int_ge(sd_bus_negotiate_fds(bus, 1), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        for (int c = 0; c < SLOW_CLIENTS; c++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *client;

                ck_assert_int_ge(sd_bus_call_method(bus, COAPCLIENTD_BUS_NAME,
                                                    COAPCLIENTD_ROOT_PATH,
                                                    COAPCLIENTD_MANAGER_IFACE, "CreateClient", NULL,
                                                    &reply, "s", "slow"),
                                 0);
                ck_assert_int_ge(sd_bus_message_read(reply, "o", &client), 0);
                for (int i = 0; i <= SLOW_GETS; i++) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        _cleanup_close_ int fd = -EBADF;
                        bool observe = i == SLOW_GETS;

                        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
                        ck_assert_int_ge(fd, 0);

                        ck_assert_int_ge(sd_bus_message_new_method_call(
                                                 bus, &m, COAPCLIENTD_BUS_NAME, client,
                                                 COAPCLIENTD_CLIENT_IFACE, "Request"),
                                         0);
                        ck_assert_int_ge(sd_bus_message_append(m, "hsa{sv}", fd, "", 3, "method",
                                                               "y", 1, "path", "s",
                                                               observe ? "time" : "example_data",
                                                               "observe", "b", observe),
                                         0);
                        ck_assert_int_ge(sd_bus_send(bus, m, NULL), 0);
                }
        }
        ck_assert_int_ge(sd_bus_flush(bus), 0);
        return bus;
}

/* Reads everything queued for the slow caller; returns the number of Response signals. */
static unsigned slow_caller_drain(sd_bus *bus) {
        unsigned n = 0;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                int r = sd_bus_process(bus, &m);

                ck_assert_int_ge(r, 0);
                /* Nothing handles the signals: sd_bus_process() hands them out. */
                if (m && sd_bus_message_is_signal(m, COAPCLIENTD_CLIENT_IFACE, "Response"))
                        n++;
                if (r > 0)
                        continue;
                if (sd_bus_wait(bus, 500 * USEC_PER_MSEC) <= 0)
                        break;
        }
        return n;
}

START_TEST(test_slow_caller) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestRequest put = {.method = TEST_PUT, .path = "example_data"};
        TestResponse *rs = NULL;
        int64_t t_base, t_loaded;
        long rss0, rss1, rss2, rss3;
        uint64_t id;
        sd_bus *slow;
        size_t n = 0;
        int fds0;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "fast", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        body = malloc(BODY_SIZE);
        ck_assert_ptr_nonnull(body);
        test_fill_random(body, BODY_SIZE, 9);
        put.payload = body;
        put.payload_len = BODY_SIZE;
        ck_assert_int_eq(test_bus_request(b, client, fd, "", &put, &id, NULL), 0);
        ck_assert_int_eq(test_bus_collect(b, id, 30 * USEC_PER_SEC, &rs, &n), 0);
        ck_assert_int_eq(rs[n - 1].result, 0x41);
        test_responses_free(rs, n);

        t_base = get_body(b, client, fd, body);
        ck_assert_int_gt(t_base, 0);
        /* The daemon frees an idle socket one loop step after its last request: wait for it. */
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Sockets", 0, 5 * USEC_PER_SEC), 0);
        rss0 = fault_rss_kib(test_daemon_pid());
        fds0 = test_daemon_fd_count_settled();

        slow = slow_caller_start();
        /* Let the slow caller's queues fill up; we keep reading our own connection. */
        ck_assert_int_ge(test_bus_run(b, LOAD_USEC), 0);
        rss1 = fault_rss_kib(test_daemon_pid());
        /* Everything below is measured first and judged at the end, so that a failing run
         * still reports all figures and frees the slow caller. */
        t_loaded = get_body(b, client, fd, body);
        rss2 = fault_rss_kib(test_daemon_pid());
        printf("# 1 MiB GET of the other caller: %" PRIi64 " ms alone, %s%" PRIi64
               " beside the slow caller\n",
               t_base / 1000, t_loaded < 0 ? "failed with errno " : "",
               t_loaded < 0 ? -t_loaded : t_loaded / 1000);
        printf("# daemon VmRSS: %ld KiB before, %ld KiB after %" PRIu64
               " s of the slow caller, %ld KiB after the other caller's GET\n",
               rss0, rss1, LOAD_USEC / USEC_PER_SEC, rss2);
        fflush(stdout);

        /* What reached the slow caller once it reads at last. */
        printf("# the slow caller finally reads %u Response signals (%u blocks were sent)\n",
               slow_caller_drain(slow), SLOW_CLIENTS * SLOW_GETS * (BODY_SIZE / 1024));
        sd_bus_close(slow);
        sd_bus_unref(slow);

        /* The slow caller has gone: all of it is freed. */
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "Clients", 1, 10 * USEC_PER_SEC), 1);
        ck_assert_uint_eq(test_bus_await_manager_u32(b, "RequestsInFlight", 0, 5 * USEC_PER_SEC),
                          0);
        ck_assert_int_eq(test_bus_await_daemon_fds(b, fds0, 5 * USEC_PER_SEC), fds0);
        rss3 = fault_rss_kib(test_daemon_pid());
        printf("# daemon VmRSS after the slow caller left: %ld KiB\n", rss3);
        fflush(stdout);
        ck_assert(test_daemon_alive());

        ck_assert_msg(t_loaded > 0,
                      "the daemon did not serve another caller beside a slow one (errno %" PRIi64
                      ")",
                      -t_loaded);
        ck_assert_int_lt(MAX(rss1, rss2) - rss0,
                         fault_sanitized() ? RSS_GROWTH_MAX_SANITIZED_KIB : RSS_GROWTH_MAX_KIB);
}
END_TEST

static Suite *slow_caller_suite(void) {
        Suite *s = suite_create("faults-slow-caller");
        TCase *tc = tcase_create("slow-caller");

        tcase_set_timeout(tc, 90);
        tcase_add_test(tc, test_slow_caller);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(slow_caller_suite)
