/* SPDX-License-Identifier: MIT */

/* Observe (RFC 7641) through the library: /time of coap-server-gnutls notifies every second.
 * A notification is a callback with last_block set while the observation goes on; it ends by
 * cancelling or by deregistering. */

#include <check.h>
#include <errno.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

static struct coap_client client;
static Recorder rec;
static int sock;

static void setup(void) {
        recorder_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, "observe"), 0);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
}

static void teardown(void) {
        coap_client_deinit(&client);
        close(sock);
        recorder_done(&rec);
}

static void observe(const struct coap_client_option *option, bool confirmable) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "time", &rec);

        req.options = option;
        req.num_options = 1;
        req.confirmable = confirmable;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        /* The first answer and two notifications. */
        ck_assert(recorder_wait_last(&rec, 3, 20));
        ck_assert_uint_eq(rec.n_errors, 0);
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert(rec.has_info);
        ck_assert(rec.info.has_observe);
        ck_assert(coap_client_has_ongoing_exchange(&client));
}

START_TEST(test_observe_then_cancel) {
        /* Zephyr applications register with Observe 0: empty or a zero byte. */
        const struct coap_client_option option = {.code = COAP_OPTION_OBSERVE, .len = 0};
        unsigned n;

        observe(&option, true);
        coap_client_cancel_requests(&client);
        n = rec.n_calls;
        ck_assert_int_eq(rec.code, -ECANCELED);
        ck_assert_uint_eq(rec.n_errors, 1);
        ck_assert(!coap_client_has_ongoing_exchange(&client));

        /* Nothing comes after the cancel: a request sent now is answered after the next
         * notification would have been. */
        {
                struct coap_client_request later = make_request(COAP_METHOD_GET, "async?2", &rec);

                ck_assert_int_eq(coap_client_req(&client, sock, NULL, &later, NULL), 0);
                ck_assert(recorder_wait_last(&rec, rec.n_last + 1, 20));
                ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
                ck_assert_uint_eq(rec.n_calls, n + 1);
        }
}
END_TEST

START_TEST(test_observe_then_deregister) {
        const struct coap_client_option option = {.code = COAP_OPTION_OBSERVE, .len = 1};
        struct coap_client_request match = {.method = COAP_METHOD_GET, .path = "time"};
        unsigned n;

        observe(&option, true);
        n = rec.n_last;
        ck_assert_int_eq(coap_client_deregister_observe(&client, &match), 0);
        /* The server's answer to the GET with Observe 1 is the final callback. */
        ck_assert(recorder_wait_last(&rec, n + 1, 20));
        ck_assert_uint_eq(rec.n_errors, 0);
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        /* The request is forgotten before its last callback runs. */
        ck_assert(!coap_client_has_ongoing_exchange(&client));
}
END_TEST

START_TEST(test_observe_non) {
        const struct coap_client_option option = {.code = COAP_OPTION_OBSERVE};

        observe(&option, false);
        coap_client_cancel_request(&client, &(struct coap_client_request){.path = "time"});
        /* Does not wait for a notification callback running meanwhile. */
        ck_assert(recorder_wait_errors(&rec, 1, 5));
        ck_assert_int_eq(rec.code, -ECANCELED);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
}
END_TEST

/* /example_data of coap-server-gnutls is observable but never changes: after the first
 * notification (its two blocks) only a refresh brings another. */
START_TEST(test_observe_reregister) {
        const struct coap_client_option option = {.code = COAP_OPTION_OBSERVE};
        struct coap_client_request req = make_request(COAP_METHOD_GET, "example_data", &rec);
        struct coap_client_request other = {.path = "time"};

        req.options = &option;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_reregister_observe(&client, &req), -ENOENT);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_wait_last(&rec, 1, 20));
        ck_assert_uint_eq(rec.body_len, 1500);
        ck_assert_int_eq(coap_client_reregister_observe(&client, &other), -ENOENT);
        ck_assert_int_eq(coap_client_reregister_observe(NULL, &req), -EINVAL);

        /* Twice: the server answers each refresh with the resource again. */
        for (unsigned i = 2; i <= 3; i++) {
                ck_assert_int_eq(coap_client_reregister_observe(&client, &req), 0);
                ck_assert(recorder_wait_last(&rec, i, 20));
                ck_assert_uint_eq(rec.body_len, 1500);
                ck_assert(!rec.bad_offset);
                ck_assert_uint_eq(rec.n_errors, 0);
                ck_assert(coap_client_has_ongoing_exchange(&client));
        }
        coap_client_cancel_requests(&client);
        ck_assert_int_eq(coap_client_reregister_observe(&client, &req), -ENOENT);
}
END_TEST

static Suite *observe_suite(void) {
        Suite *s = suite_create("client-observe");
        TCase *tc = tcase_create("observe");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 40);
        tcase_add_test(tc, test_observe_then_cancel);
        tcase_add_test(tc, test_observe_then_deregister);
        tcase_add_test(tc, test_observe_non);
        tcase_add_test(tc, test_observe_reregister);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(observe_suite)
