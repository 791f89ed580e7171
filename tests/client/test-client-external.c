/* SPDX-License-Identifier: MIT */

/* External-loop mode: no library thread; the application polls coap_client_get_fd() and
 * callbacks run inside coap_client_process(), in the application's thread. */

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

static pthread_t main_thread;
static bool wrong_thread;

static void thread_checking_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                               bool last_block, void *user_data) {
        if (!pthread_equal(pthread_self(), main_thread))
                wrong_thread = true;
        recorder_cb(code, offset, payload, len, last_block, user_data);
}

START_TEST(test_external_loop) {
        const struct coap_client_option observe = {.code = COAP_OPTION_OBSERVE};
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder rec, obs;
        int sock, fd;

        main_thread = pthread_self();
        recorder_init(&rec);
        recorder_init(&obs);
        ck_assert_int_eq(coap_client_loop_external(), 0);
        fd = coap_client_get_fd();
        ck_assert_int_ge(fd, 0);
        ck_assert_uint_eq(coap_client_get_timeout_usec(), UINT64_MAX);
        ck_assert_int_eq(coap_client_process(), 0);

        ck_assert_int_eq(coap_client_init(&client, "external"), 0);
        /* The fd stays the same once the bus is open. */
        ck_assert_int_eq(coap_client_get_fd(), fd);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);

        /* Block-wise: /example_data is 1500 bytes, two blocks. */
        req = make_request(COAP_METHOD_GET, "example_data", &rec);
        req.cb = thread_checking_cb;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_pump_last(&rec, 1, 20));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(rec.n_calls, 2);
        ck_assert_uint_eq(rec.body_len, 1500);
        ck_assert(!rec.bad_offset);

        /* An observation, cancelled from the loop's thread. */
        req = make_request(COAP_METHOD_GET, "time", &obs);
        req.cb = thread_checking_cb;
        req.options = &observe;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_pump_last(&obs, 2, 20));
        coap_client_cancel_requests(&client);
        ck_assert_int_eq(obs.code, -ECANCELED);
        ck_assert(!wrong_thread);

        /* Asking again is harmless. */
        ck_assert_int_eq(coap_client_loop_external(), 0);
        coap_client_deinit(&client);
        recorder_done(&rec);
        recorder_done(&obs);
        close(sock);
}
END_TEST

START_TEST(test_nothing_without_process) {
        struct coap_client client = {};
        struct coap_client_request req;
        struct pollfd p;
        Recorder rec;
        int sock;

        recorder_init(&rec);
        ck_assert_int_eq(coap_client_loop_external(), 0);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
        req = make_request(COAP_METHOD_GET, "time", &rec);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);

        /* The response makes the fd readable, but no callback runs until process(). */
        p = (struct pollfd){.fd = coap_client_get_fd(), .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, 10000), 1);
        ck_assert_uint_eq(recorder_n_calls(&rec), 0);
        ck_assert(recorder_pump_last(&rec, 1, 20));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);

        coap_client_deinit(&client);
        recorder_done(&rec);
        close(sock);
}
END_TEST

static Suite *external_suite(void) {
        Suite *s = suite_create("client-external");
        TCase *tc = tcase_create("external");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_external_loop);
        tcase_add_test(tc, test_nothing_without_process);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(external_suite)
