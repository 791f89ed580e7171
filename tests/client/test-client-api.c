/* SPDX-License-Identifier: MIT */

/* The coap_client API against coapclientd and coap-server-gnutls: both forms of
 * coap_client_req()'s fifth argument, Zephyr's return codes, response details, options. */

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "internal/bus-api.h"

static struct coap_client client;
static Recorder rec;
static int sock;

static void setup(void) {
        recorder_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, "test-client-api"), 0);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
}

static void teardown(void) {
        coap_client_deinit(&client);
        close(sock);
        recorder_done(&rec);
}

/* Waits for the final callback of the request just sent and returns its code. */
static int wait_code(unsigned n_before) {
        ck_assert(recorder_wait_last(&rec, n_before + 1, 30));
        return rec.code;
}

START_TEST(test_fifth_argument_forms) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "/", &rec);
        struct coap_transmission_parameters params = coap_get_transmission_parameters();
        const struct coap_transmission_parameters *const_params = &params;
        unsigned n = 0;

        /* Zephyr 3.4: int retries, -1 for the default. */
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, 2), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        /* Newer Zephyr: a parameters pointer, NULL for the defaults. */
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req,
                                         (struct coap_transmission_parameters *) 0),
                         0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        params.ack_timeout = 500;
        params.max_retransmission = 2;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, &params), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, const_params), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        /* The two exported functions behind the macro. */
        ck_assert_int_eq(coap_client_req_retries(&client, sock, NULL, &req, -1), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(coap_client_req_params(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(rec.n_calls, n);
        ck_assert_uint_gt(rec.body_len, 0);
}
END_TEST

START_TEST(test_invalid_arguments) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "time", &rec);
        struct coap_client_option options[COAP_CLIENT_MAX_EXTRA_OPTIONS + 1] = {};
        struct coap_transmission_parameters params = coap_get_transmission_parameters();
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        struct coap_client other = {};
        int pipe_fds[2];

        ck_assert_int_eq(coap_client_init(NULL, NULL), -EINVAL);
        ck_assert_int_eq(coap_client_init(&client, NULL), -EALREADY);
        ck_assert_int_eq(coap_client_req(NULL, sock, NULL, &req, -1), -EINVAL);
        ck_assert_int_eq(coap_client_req(&other, sock, NULL, &req, -1), -EINVAL);
        ck_assert_int_eq(coap_client_req(&client, -1, NULL, &req, -1), -EINVAL);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, NULL, -1), -EINVAL);
        req.path = NULL;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), -EINVAL);
        req.path = "";
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), -EINVAL);
        req.path = "time";
        req.options = options;
        req.num_options = COAP_CLIENT_MAX_EXTRA_OPTIONS + 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), -EINVAL);
        options[0] = (struct coap_client_option){.code = COAP_OPTION_ACCEPT, .len = 13};
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), -EINVAL);
        req.num_options = 0;
        ck_assert_int_eq(coap_client_req(&client, sock, (struct sockaddr *) &un, &req, -1),
                         -ENOTSUP);
        /* Rejected by coapclientd, mapped to Zephyr's errno. */
        req.method = 0;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), -EINVAL);
        req.method = COAP_METHOD_GET;
        params.ack_timeout = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, &params), -EINVAL);
        ck_assert_int_eq(pipe(pipe_fds), 0);
        ck_assert_int_eq(coap_client_req(&client, pipe_fds[0], NULL, &req, -1), -ENOTSOCK);
        close(pipe_fds[0]);
        close(pipe_fds[1]);

        ck_assert_int_eq(coap_client_set_block_size(&client, 7), -EINVAL);
        ck_assert_int_eq(coap_client_set_block_size(&other, COAP_BLOCK_64), -EINVAL);
        ck_assert_int_eq(coap_client_deregister_observe(&other, &req), -EINVAL);
        ck_assert(!coap_client_has_ongoing_exchange(&other));
        /* Nothing was sent, so nothing was called back. */
        ck_assert_uint_eq(rec.n_calls, 0);
        /* Not in external-loop mode. */
        ck_assert_int_eq(coap_client_get_fd(), -ENXIO);
        ck_assert_int_eq(coap_client_process(), -ENXIO);
        ck_assert_int_eq(coap_client_loop_external(), -EBUSY);
}
END_TEST

/* What the library can check fails coap_client_req() at once, as in Zephyr; what only
 * coapclientd finds out ends the request in its callback. */
START_TEST(test_refused_in_callback) {
        struct coap_client_option query = {.code = COAP_OPTION_URI_QUERY, .len = 1, .value = "x"};
        struct sockaddr_in peer;
        struct coap_client_request req;
        char path[300];
        int v6only = 1, v6;

        /* A path segment longer than a CoAP option may be (255 bytes). */
        memset(path, 'x', sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        req = make_request(COAP_METHOD_GET, path, &rec);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        /* An option coapclientd sets itself. */
        req.path = "time";
        req.options = &query;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        ck_assert_uint_eq(rec.n_calls, 0);

        /* An IPv4 destination on an IPv6-only socket: the first send fails in coapclientd, which
         * finds out when it sends the turn's datagrams (a data channel's batch). */
        req.num_options = 0;
        v6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(v6, 0);
        ck_assert_int_eq(setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)), 0);
        ck_assert_int_eq(peer_address(&peer), 0);
        ck_assert_int_eq(coap_client_req(&client, v6, (struct sockaddr *) &peer, &req, NULL), 0);
        ck_assert_int_eq(wait_code(0), -ENETUNREACH);
        ck_assert_uint_eq(rec.n_calls, 1);
        /* The callback can tell what coapclientd said. */
        ck_assert_msg(
                strstr(rec.error_message, "Failed to send the request: Network is unreachable"),
                "last error '%s'", rec.error_message);
        ck_assert(!rec.error_not_last);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        close(v6);

        /* The client goes on as before. */
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(1), COAP_RESPONSE_CODE_CONTENT);
}
END_TEST

START_TEST(test_not_found_and_details) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "nonexistent", &rec);
        struct coap_client_response_info info;

        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(0), COAP_RESPONSE_CODE_NOT_FOUND);
        ck_assert_int_eq(COAP_RESPONSE_CODE_CLASS(rec.code), 4);
        ck_assert_int_eq(COAP_RESPONSE_CODE_DETAIL(rec.code), 4);

        req.path = "time";
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(1), COAP_RESPONSE_CODE_CONTENT);
        /* coap-server-gnutls sends /time with Max-Age only. */
        ck_assert(rec.has_info);
        ck_assert(!rec.info.has_content_format);
        ck_assert(!rec.info.has_observe);
        ck_assert_uint_gt(rec.body_len, 0);
        /* Only valid inside a callback. */
        ck_assert_int_eq(coap_client_get_response_info(&info), -ENODATA);
        ck_assert_int_eq(coap_client_get_response_info(NULL), -EINVAL);
}
END_TEST

START_TEST(test_unconnected_socket_and_query) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "async?1", &rec);
        struct sockaddr_in peer;
        int unconnected = peer_socket(/* connected= */ false);

        ck_assert_int_ge(unconnected, 0);
        ck_assert_int_eq(peer_address(&peer), 0);
        /* A separate response after a second; the query goes as Uri-Query. */
        ck_assert_int_eq(coap_client_req(&client, unconnected, (struct sockaddr *) &peer, &req, -1),
                         0);
        ck_assert(coap_client_has_ongoing_exchange(&client));
        ck_assert_int_eq(wait_code(0), COAP_RESPONSE_CODE_CONTENT);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        ck_assert_uint_eq(rec.body_len, 4);
        ck_assert_int_eq(memcmp(rec.body, "done", 4), 0);
        close(unconnected);
}
END_TEST

START_TEST(test_options_and_early_block2) {
        struct coap_client_option options[2] = {
                coap_client_option_initial_block2(),
                {.code = COAP_OPTION_ACCEPT, .len = 0},
        };
        struct coap_client_request req = make_request(COAP_METHOD_GET, "/", &rec);

        ck_assert_uint_eq(options[0].code, COAP_OPTION_BLOCK2);
        ck_assert_uint_eq(options[0].len, 1);
        ck_assert_uint_eq(options[0].value[0], COAP_BLOCK_1024);
        req.options = options;
        req.num_options = 2;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(0), COAP_RESPONSE_CODE_CONTENT);
        /* The request was copied: changing it now changes nothing. */
        options[0].value[0] = 0x7;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
}
END_TEST

START_TEST(test_deinit_cancels) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "async?5", &rec);

        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        coap_client_deinit(&client);
        /* Reported before coap_client_deinit() returned. */
        ck_assert_uint_eq(rec.n_calls, 1);
        ck_assert_int_eq(rec.code, -ECANCELED);
        ck_assert(!rec.error_not_last);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);

        /* The struct can be initialised again. */
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req.path = "time";
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(1), COAP_RESPONSE_CODE_CONTENT);
}
END_TEST

START_TEST(test_transmission_defaults) {
        struct coap_transmission_parameters p = coap_get_transmission_parameters(), q;

        ck_assert_uint_eq(p.ack_timeout, 2000);
        ck_assert_uint_eq(p.ack_random_percent, 150);
        ck_assert_uint_eq(p.coap_backoff_percent, 200);
        ck_assert_uint_eq(p.max_retransmission, 4);
        q = p;
        q.ack_timeout = 1000;
        coap_set_transmission_parameters(&q);
        coap_set_transmission_parameters(NULL);
        ck_assert_uint_eq(coap_get_transmission_parameters().ack_timeout, 1000);
        coap_set_transmission_parameters(&p);
        ck_assert_uint_eq(coap_get_transmission_parameters().ack_timeout, 2000);
}
END_TEST

/* Waits up to 10 s for the daemon's Manager.Sockets to be n; returns the last value seen. */
static uint32_t await_daemon_sockets(uint32_t n) {
        uint64_t deadline = now_usec() + 10 * 1000 * 1000;
        sd_bus *bus = NULL;
        uint32_t v;

        ck_assert_int_ge(sd_bus_new(&bus), 0);
        ck_assert_int_ge(sd_bus_set_address(bus, getenv(COAPCLIENTD_BUS_ADDRESS_ENV)), 0);
        ck_assert_int_ge(sd_bus_set_bus_client(bus, true), 0);
        ck_assert_int_ge(sd_bus_start(bus), 0);
        for (;;) {
                ck_assert_int_ge(sd_bus_get_property_trivial(
                                         bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                                         COAPCLIENTD_MANAGER_IFACE, "Sockets", NULL, 'u', &v),
                                 0);
                if (v == n || now_usec() > deadline)
                        break;
                usleep(20 * 1000);
        }
        sd_bus_flush_close_unref(bus);
        return v;
}

/* The library names a socket it registered by id: when the application closes it and the number
 * comes back with another socket, requests go out on the new one; and an unused registration is
 * released, so that the daemon lets the socket go. */
START_TEST(test_socket_registration) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "/", &rec);
        struct sockaddr_in peer;
        int other;
        unsigned n = 0;

        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);

        /* Under the same number, an unconnected socket: without a destination the daemon must
         * refuse the request, which the first socket, connected, would have run. */
        other = peer_socket(/* connected= */ false);
        ck_assert_int_ge(other, 0);
        ck_assert_int_eq(dup2(other, sock), sock);
        close(other);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert_int_lt(wait_code(n++), 0);
        ck_assert_int_eq(peer_address(&peer), 0);
        ck_assert_int_eq(coap_client_req(&client, sock, (struct sockaddr *) &peer, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);

        /* Unused, the registration goes, and the daemon's socket with it. */
        ck_assert_uint_eq(await_daemon_sockets(0), 0);
        ck_assert_int_eq(coap_client_req(&client, sock, (struct sockaddr *) &peer, &req, NULL), 0);
        ck_assert_int_eq(wait_code(n++), COAP_RESPONSE_CODE_CONTENT);
}
END_TEST

static Suite *api_suite(void) {
        Suite *s = suite_create("client-api");
        TCase *tc = tcase_create("api");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_fifth_argument_forms);
        tcase_add_test(tc, test_invalid_arguments);
        tcase_add_test(tc, test_refused_in_callback);
        tcase_add_test(tc, test_not_found_and_details);
        tcase_add_test(tc, test_unconnected_socket_and_query);
        tcase_add_test(tc, test_options_and_early_block2);
        tcase_add_test(tc, test_deinit_cancels);
        tcase_add_test(tc, test_transmission_defaults);
        tcase_add_test(tc, test_socket_registration);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(api_suite)
