/* SPDX-License-Identifier: MIT */
/* Flow control must not switch itself off (issue 12 point 4). 141 callers of three uids each
 * download 96 KiB (more than a sixteenth of MaxQueuedBytesPerCaller=, so the daemon pings each)
 * and never read: more Pings pending than the bus's max_replies_per_connection (128) lets the
 * daemon have. Then a caller of another uid downloads 64 × 96 KiB (6 MiB) and never answers a
 * Ping: the daemon must still hold it to twice its budget (2 MiB), i.e. pause its downloads,
 * end its requests with -ENOBUFS, refuse them or cut it off, rather than send it everything.
 * Counted in Response signals of 1 KiB blocks: at most 3072 (3 MiB, a margin of one budget),
 * where sending everything is 6144. */

#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-helper.h"
#include "check-main.h"
#include "hostile-util.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "net-helper.h"

#define BODY_SIZE     (96 * 1024)
#define STALLERS      3    /* users; a user may have 64 callers (MaxCallersPerUser) */
#define STALLED_EACH  "47" /* callers each: 141 in all */
#define OVERFLOW_GETS "64"
#define DELIVERED_MAX 3072

/* example_data on the peer becomes BODY_SIZE bytes. */
static void put_body(void) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_free_ uint8_t *body = malloc(BODY_SIZE);
        _cleanup_close_ int fd = -EBADF;
        TestRequest put = {.method = TEST_PUT, .path = "example_data"};
        TestResponse *rs = NULL;
        size_t n = 0;
        uint64_t id;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, BODY_SIZE, 12);
        put.payload = body;
        put.payload_len = BODY_SIZE;
        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "put", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_bus_request(b, client, fd, "", &put, &id, NULL), 0);
        ck_assert_int_eq(test_bus_collect(b, id, hostile_usec(30 * USEC_PER_SEC), &rs, &n), 0);
        ck_assert_int_ge(rs[n - 1].result, 0x41);
        ck_assert_int_le(rs[n - 1].result, 0x44);
        test_responses_free(rs, n);
}

START_TEST(test_flow_control_after_refused_pings) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        HostileCaller stall[STALLERS] = {}, overflow = {};
        char line[256], state[32];
        uint64_t delivered, in_flight;
        unsigned refused;
        uint32_t v;

        put_body();
        ck_assert_int_ge(hostile_bus_open(&bus), 0);
        ck_assert(hostile_daemon_same(bus));

        /* Users a, c and d; b overflows. */
        for (unsigned u = 0; u < STALLERS; u++)
                ck_assert_int_ge(hostile_spawn(hostile_user(u == 0 ? 0 : u + 1),
                                               (const char *const[]){"stall", STALLED_EACH, NULL},
                                               &stall[u]),
                                 0);
        for (unsigned u = 0; u < STALLERS; u++)
                ck_assert_int_eq(hostile_expect(&stall[u], "stalled", line, sizeof(line),
                                                hostile_usec(120 * USEC_PER_SEC)),
                                 0);
        /* Their downloads are done (within their budget): the daemon has pinged each. */
        v = hostile_await_manager_u32(bus, "RequestsInFlight", 0, hostile_usec(60 * USEC_PER_SEC));
        printf("# %u × %s callers of %s, %s and %s with %u KiB unread each; requests in flight: "
               "%u\n",
               STALLERS, STALLED_EACH, hostile_user(0), hostile_user(2), hostile_user(3),
               BODY_SIZE / 1024, v);
        fflush(stdout);
        ck_assert_uint_eq(v, 0);

        ck_assert_int_ge(hostile_spawn(hostile_user(1),
                                       (const char *const[]){"overflow", OVERFLOW_GETS, NULL},
                                       &overflow),
                         0);
        ck_assert_int_eq(hostile_expect(&overflow, "overflow ", line, sizeof(line),
                                        hostile_usec(180 * USEC_PER_SEC)),
                         0);
        ck_assert_int_eq(sscanf(line, "overflow %" SCNu64 " %" SCNu64 " %u %31s", &delivered,
                                &in_flight, &refused, state),
                         4);
        printf("# the overflowing caller (%s, %s GETs of %u KiB): %" PRIu64
               " Response signals sent to it, %" PRIu64 " requests paused, %u refused, %s "
               "(at most %u signals allowed)\n",
               hostile_user(1), OVERFLOW_GETS, BODY_SIZE / 1024, delivered, in_flight, refused,
               state, DELIVERED_MAX);
        fflush(stdout);

        ck_assert_int_eq(hostile_stop(&overflow, hostile_usec(10 * USEC_PER_SEC)), 0);
        for (unsigned u = 0; u < STALLERS; u++)
                ck_assert_int_eq(hostile_stop(&stall[u], hostile_usec(10 * USEC_PER_SEC)), 0);
        ck_assert(hostile_daemon_same(bus));
        ck_assert_msg(strcmp(state, "cut") == 0 || delivered <= DELIVERED_MAX,
                      "the daemon sent %" PRIu64 " Response signals to a caller that read none: "
                      "no flow control",
                      delivered);
}
END_TEST

static Suite *flow_control_suite(void) {
        Suite *s = suite_create("hostile-flow-control");
        TCase *tc = tcase_create("flow-control");

        tcase_set_timeout(tc, (double) hostile_usec(120 * USEC_PER_SEC) / USEC_PER_SEC);
        tcase_add_test(tc, test_flow_control_after_refused_pings);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(flow_control_suite)
