/* SPDX-License-Identifier: MIT */
/* Observe end to end against coap-server-gnutls's /time (one notification a second):
 * notifications, deregistration, cancellation, and silence afterwards. */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define NOTIFICATIONS       3
#define COAP_OPTION_OBSERVE 6

typedef struct Observation {
        TestBus *bus;
        char *client;
        int fd;
        uint64_t id;
} Observation;

/* Registers on /time and checks the first NOTIFICATIONS events (the registration response
 * included): 2.05, not final, increasing Observe values. */
static void observe_start(Observation *o, const TestRequest *req) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t last_observe = 0;

        ck_assert_int_eq(test_bus_new(&o->bus), 0);
        ck_assert_int_eq(test_bus_create_client(o->bus, "observe", &o->client, NULL), 0);
        o->fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(o->fd, 0);
        ck_assert_msg(test_bus_request(o->bus, o->client, o->fd, "", req, &o->id, &error) >= 0,
                      "Request: %s: %s", error.name, error.message);
        for (int i = 0; i < NOTIFICATIONS; i++) {
                TestResponse r;

                ck_assert_int_eq(test_bus_next_response(o->bus, o->id, 3 * USEC_PER_SEC, &r), 0);
                ck_assert_int_eq(r.result, 0x45);
                ck_assert_msg(!r.final, "notification %d is final", i);
                ck_assert_uint_gt(r.payload_len, 0);
                ck_assert_msg(r.has_observe, "notification %d without observe detail", i);
                if (i > 0)
                        ck_assert_uint_gt(r.observe, last_observe);
                last_observe = r.observe;
                test_response_done(&r);
        }
}

/* Reads events until the final one (within timeout), then checks nothing follows it. */
static TestResponse observe_finish(Observation *o) {
        TestResponse r;
        uint32_t inflight;

        for (;;) {
                ck_assert_int_eq(test_bus_next_response(o->bus, o->id, 3 * USEC_PER_SEC, &r), 0);
                if (r.final)
                        break;
                /* A notification may have crossed the deregistration. */
                ck_assert_int_eq(r.result, 0x45);
                test_response_done(&r);
        }
        /* /time notifies every second: 2.5 s of silence means the observation is gone. */
        ck_assert_int_eq(test_bus_run(o->bus, 2500 * USEC_PER_MSEC), 0);
        ck_assert_uint_eq(test_bus_count_queued(o->bus, UINT64_MAX), 0);
        ck_assert_int_ge(test_bus_get_manager_u32(o->bus, "RequestsInFlight", &inflight), 0);
        ck_assert_uint_eq(inflight, 0);
        return r;
}

static void observation_done(Observation *o) {
        o->bus = test_bus_free(o->bus);
        free(o->client);
        safe_close(o->fd);
}

START_TEST(test_observe_deregister) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Observation o = {};
        TestResponse r;

        observe_start(&o, &(TestRequest){.method = TEST_GET, .path = "time", .observe = true});
        ck_assert_msg(test_bus_call_id(o.bus, o.client, "DeregisterObserve", o.id, &error) >= 0,
                      "DeregisterObserve: %s: %s", error.name, error.message);
        r = observe_finish(&o);
        /* The answer to the deregistering GET: a plain 2.05 without Observe. */
        ck_assert_int_eq(r.result, 0x45);
        ck_assert(!r.has_observe);
        test_response_done(&r);
        observation_done(&o);
}
END_TEST

START_TEST(test_observe_option_cancel) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const TestOption observe = {.number = COAP_OPTION_OBSERVE, .value = NULL, .len = 0};
        Observation o = {};
        TestResponse r;

        observe_start(&o, &(TestRequest){.method = TEST_GET,
                                         .path = "time",
                                         .options = &observe,
                                         .n_options = 1});
        ck_assert_msg(test_bus_call_id(o.bus, o.client, "Cancel", o.id, &error) >= 0,
                      "Cancel: %s: %s", error.name, error.message);
        r = observe_finish(&o);
        ck_assert_int_eq(r.result, -ECANCELED);
        test_response_done(&r);
        /* The id is forgotten. */
        ck_assert_int_lt(test_bus_call_id(o.bus, o.client, "Cancel", o.id, &error), 0);
        ck_assert_str_eq(error.name, COAPCLIENTD_ERROR_UNKNOWN_REQUEST);
        observation_done(&o);
}
END_TEST

/* As Zephyr: a second registration for the same resource on one client is EALREADY; a plain GET
 * of it, or another client's registration, is not. */
START_TEST(test_observe_twice) {
        const TestRequest reg = {.method = TEST_GET, .path = "time", .observe = true};
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *other = NULL;
        Observation o = {};
        uint64_t id, id2;
        TestResponse r;

        ck_assert_int_eq(test_bus_new(&o.bus), 0);
        ck_assert_int_eq(test_bus_create_client(o.bus, "observe", &o.client, NULL), 0);
        ck_assert_int_eq(test_bus_create_client(o.bus, "other", &other, NULL), 0);
        o.fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(o.fd, 0);
        ck_assert_int_ge(test_bus_request(o.bus, o.client, o.fd, "", &reg, &o.id, NULL), 0);
        ck_assert_int_eq(test_bus_next_response(o.bus, o.id, 3 * USEC_PER_SEC, &r), 0);
        ck_assert_int_eq(r.result, 0x45);
        ck_assert(!r.final);
        test_response_done(&r);

        ck_assert_int_eq(test_bus_request(o.bus, o.client, o.fd, "", &reg, &id, &error), -EALREADY);
        ck_assert_str_eq(error.name, "System.Error.EALREADY");
        ck_assert_int_ge(test_bus_request(o.bus, o.client, o.fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "time"}, &id,
                                          NULL),
                         0);
        ck_assert_int_ge(test_bus_request(o.bus, other, o.fd, "", &reg, &id2, NULL), 0);
        ck_assert_int_ge(test_bus_call_id(o.bus, other, "Cancel", id2, NULL), 0);

        /* Once the first has ended, the client may register again. */
        ck_assert_int_ge(test_bus_call_id(o.bus, o.client, "Cancel", o.id, NULL), 0);
        ck_assert_int_ge(test_bus_request(o.bus, o.client, o.fd, "", &reg, &id2, NULL), 0);
        ck_assert_int_ge(test_bus_call_id(o.bus, o.client, "Cancel", id2, NULL), 0);
        observation_done(&o);
}
END_TEST

START_TEST(test_deregister_not_observing) {
        _cleanup_(test_bus_freep) TestBus *b = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e1 = SD_BUS_ERROR_NULL, e2 = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;

        ck_assert_int_eq(test_bus_new(&b), 0);
        ck_assert_int_eq(test_bus_create_client(b, "plain", &client, NULL), 0);
        fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(test_bus_request(b, client, fd, "",
                                          &(TestRequest){.method = TEST_GET, .path = "async?1"},
                                          &id, NULL),
                         0);
        ck_assert_int_lt(test_bus_call_id(b, client, "DeregisterObserve", id, &e1), 0);
        ck_assert_str_eq(e1.name, COAPCLIENTD_ERROR_NOT_OBSERVING);
        ck_assert_int_lt(test_bus_call_id(b, client, "DeregisterObserve", id + 1000, &e2), 0);
        ck_assert_str_eq(e2.name, COAPCLIENTD_ERROR_UNKNOWN_REQUEST);
        /* The refused deregistration left the request alone. */
        ck_assert_int_eq(test_bus_collect(b, id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(resp[0].result, 0x45);
        test_responses_free(resp, n);
}
END_TEST

/* Collects one block-wise representation of an observation: events up to last_block, none
 * final, offsets contiguous from 0. Returns the body (NUL-terminated) and its length. */
static uint8_t *collect_representation(TestBus *b, uint64_t id, size_t *ret_len) {
        uint8_t *body = NULL;
        size_t len = 0;

        for (;;) {
                TestResponse r;
                uint8_t *p;

                ck_assert_int_eq(test_bus_next_response(b, id, 5 * USEC_PER_SEC, &r), 0);
                ck_assert_int_eq(r.result, 0x45);
                ck_assert(!r.final);
                ck_assert_uint_eq(r.offset, len);
                p = realloc(body, len + r.payload_len + 1);
                ck_assert_ptr_nonnull(p);
                body = p;
                memcpy(body + len, r.payload, r.payload_len);
                len += r.payload_len;
                body[len] = 0;
                if (r.last_block) {
                        test_response_done(&r);
                        break;
                }
                test_response_done(&r);
        }
        *ret_len = len;
        return body;
}

START_TEST(test_observe_blockwise) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ uint8_t *first = NULL, *second = NULL;
        _cleanup_close_ int put_fd = -EBADF;
        TestResponse *resp = NULL;
        uint8_t body[3000];
        Observation o = {};
        uint64_t id, put_id;
        size_t len, n;
        TestResponse r;

        ck_assert_int_eq(test_bus_new(&o.bus), 0);
        ck_assert_int_eq(test_bus_create_client(o.bus, "observe", &o.client, NULL), 0);
        o.fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(o.fd, 0);
        ck_assert_msg(test_bus_request(o.bus, o.client, o.fd, "",
                                       &(TestRequest){.method = TEST_GET,
                                                      .path = "example_data",
                                                      .observe = true,
                                                      .block_size = 256},
                                       &id, &error) >= 0,
                      "Request: %s: %s", error.name, error.message);
        o.id = id;
        first = collect_representation(o.bus, id, &len);
        ck_assert_uint_gt(len, 256);

        /* A new representation, uploaded over another socket, is notified block-wise. */
        test_fill_random(body, sizeof(body), 99);
        put_fd = test_udp_socket(AF_INET, test_peer_host(), test_peer_port());
        ck_assert_int_ge(put_fd, 0);
        ck_assert_int_ge(test_bus_request(o.bus, o.client, put_fd, "",
                                          &(TestRequest){.method = TEST_PUT,
                                                         .path = "example_data",
                                                         .payload = body,
                                                         .payload_len = sizeof(body),
                                                         .block_size = 1024},
                                          &put_id, NULL),
                         0);
        ck_assert_int_eq(test_bus_collect(o.bus, put_id, 5 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_int_eq(resp[n - 1].result, 0x44);
        test_responses_free(resp, n);
        second = collect_representation(o.bus, id, &len);
        ck_assert_uint_eq(len, sizeof(body));
        ck_assert_mem_eq(second, body, sizeof(body));

        ck_assert_int_ge(test_bus_call_id(o.bus, o.client, "Cancel", id, NULL), 0);
        r = observe_finish(&o);
        ck_assert_int_eq(r.result, -ECANCELED);
        test_response_done(&r);
        observation_done(&o);
}
END_TEST

static Suite *observe_suite(void) {
        Suite *s = suite_create("observe");
        TCase *tc = tcase_create("observe");

        tcase_set_timeout(tc, 15);
        tcase_add_test(tc, test_observe_deregister);
        tcase_add_test(tc, test_observe_option_cancel);
        tcase_add_test(tc, test_observe_twice);
        tcase_add_test(tc, test_deregister_not_observing);
        tcase_add_test(tc, test_observe_blockwise);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(observe_suite)
