/* SPDX-License-Identifier: MIT */

/* test-client-restart in external-loop mode: the application drives the library through
 * coap_client_get_fd(), coap_client_get_timeout_usec() and coap_client_process() alone. When
 * coapclientd is killed, a pending one-shot request ends with -ECONNABORTED, and the
 * observation is registered again with the next coapclientd from inside coap_client_process()
 * and its notifications go on. Runs with TEST_NO_DAEMON=1: the test starts and kills the
 * daemons itself. A program of its own: external-loop mode must be chosen before the process's
 * first client. */

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "daemon-test-util.h"

START_TEST(test_external_restart) {
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder rec_a, rec_obs, rec_b;
        unsigned n_obs;
        pid_t pid;
        int sock, status;

        recorder_init(&rec_a);
        recorder_init(&rec_obs);
        recorder_init(&rec_b);
        ck_assert_int_eq(coap_client_loop_external(), 0);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
        pid = start_daemon();
        ck_assert_int_eq(coap_client_init(&client, "external-restart"), 0);

        /* A separate response 10 s away, and an observation: both pending. */
        req = make_request(COAP_METHOD_GET, "async?10", &rec_a);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        observe_time(&client, sock, &rec_obs);
        ck_assert(recorder_pump_last(&rec_obs, 1, 10));
        ck_assert_uint_eq(rec_a.n_calls, 0);

        /* A crash: the one-shot request ends, the observation waits for the next coapclientd. */
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));
        ck_assert(recorder_pump_last(&rec_a, 1, 10));
        ck_assert_int_eq(rec_a.code, -ECONNABORTED);
        ck_assert_uint_eq(rec_a.n_calls, 1);
        ck_assert_uint_eq(rec_obs.n_errors, 0);
        ck_assert(coap_client_has_ongoing_exchange(&client));
        /* The loop must wake to give the observation up if no coapclientd comes (15 s). */
        ck_assert_uint_le(coap_client_get_timeout_usec(), 15 * 1000000u);

        /* A new daemon: nothing but the application's own loop registers the observation with
         * it, and its notifications go on, from the same callback, with no error in between. */
        n_obs = recorder_n_last(&rec_obs);
        pid = start_daemon();
        ck_assert(recorder_pump_last(&rec_obs, n_obs + 2, 15));
        ck_assert_uint_eq(rec_obs.n_errors, 0);
        ck_assert_int_eq(rec_obs.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert(rec_obs.info.has_observe);

        /* The client works again for new requests too. */
        req = make_request(COAP_METHOD_GET, "time", &rec_b);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_pump_last(&rec_b, 1, 10));
        ck_assert_int_eq(rec_b.code, COAP_RESPONSE_CODE_CONTENT);

        /* Killed and replaced while the application's loop did not run: one
         * coap_client_process() then sees the channel's end, the old daemon go and the new one
         * come, all at once. */
        req = make_request(COAP_METHOD_GET, "async?10", &rec_a);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        n_obs = recorder_n_last(&rec_obs);
        ck_assert(recorder_pump_last(&rec_obs, n_obs + 1, 10));
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));
        pid = start_daemon();
        n_obs = recorder_n_last(&rec_obs);
        ck_assert(recorder_pump_last(&rec_a, 2, 10));
        ck_assert_int_eq(rec_a.code, -ECONNABORTED);
        ck_assert_uint_eq(rec_a.n_calls, 2);
        ck_assert(recorder_pump_last(&rec_obs, n_obs + 2, 15));
        ck_assert_uint_eq(rec_obs.n_errors, 0);
        ck_assert_int_eq(rec_obs.code, COAP_RESPONSE_CODE_CONTENT);

        coap_client_cancel_requests(&client);
        ck_assert_int_eq(rec_obs.code, -ECANCELED);
        ck_assert_uint_eq(rec_obs.n_errors, 1);
        ck_assert(!coap_client_has_ongoing_exchange(&client));

        coap_client_deinit(&client);
        stop_daemon_cleanly(pid);
        recorder_done(&rec_a);
        recorder_done(&rec_obs);
        recorder_done(&rec_b);
        close(sock);
}
END_TEST

static Suite *restart_external_suite(void) {
        Suite *s = suite_create("client-restart-external");
        TCase *tc = tcase_create("restart-external");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_external_restart);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(restart_external_suite)
