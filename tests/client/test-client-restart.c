/* SPDX-License-Identifier: MIT */

/* The daemon goes away: pending requests get -ECONNABORTED at once, observations are registered
 * again with the next coapclientd and go on; once a new coapclientd owns the bus name, the same
 * client works again, DTLS credentials included. Runs with TEST_NO_DAEMON=1: the test starts
 * and kills the daemons itself. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "daemon-test-util.h"

START_TEST(test_no_daemon) {
        struct coap_client client = {};

        ck_assert_int_eq(coap_client_init(&client, NULL), -ECONNREFUSED);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
}
END_TEST

START_TEST(test_daemon_restart) {
        struct coap_client a = {}, b = {};
        struct coap_client_request req;
        Recorder rec_a, rec_obs, rec_b;
        unsigned n_obs;
        uint64_t t0;
        pid_t pid;
        int sock, status;

        recorder_init(&rec_a);
        recorder_init(&rec_obs);
        recorder_init(&rec_b);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
        pid = start_daemon();
        ck_assert_int_eq(coap_client_init(&a, "a"), 0);
        ck_assert_int_eq(coap_client_init(&b, "b"), 0);

        /* A separate response 10 s away, and an observation: both pending. */
        req = make_request(COAP_METHOD_GET, "async?10", &rec_a);
        ck_assert_int_eq(coap_client_req(&a, sock, NULL, &req, NULL), 0);
        observe_time(&a, sock, &rec_obs);
        ck_assert(recorder_wait_last(&rec_obs, 1, 10));

        /* A crash: the one-shot request ends, the observation waits. */
        t0 = now_usec();
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));
        ck_assert(recorder_wait_last(&rec_a, 1, 5));
        ck_assert_uint_lt(now_usec() - t0, 2 * 1000000u);
        ck_assert_int_eq(rec_a.code, -ECONNABORTED);
        ck_assert_uint_eq(rec_a.n_calls, 1);
        ck_assert(coap_client_has_ongoing_exchange(&a));

        /* Nobody there: a request fails at once. */
        req = make_request(COAP_METHOD_GET, "time", &rec_b);
        ck_assert_int_eq(coap_client_req(&b, sock, NULL, &req, NULL), -ECONNREFUSED);

        /* A new daemon: the observation is registered with it by itself and its notifications
         * go on, from the same callback, with no error in between. */
        n_obs = recorder_n_last(&rec_obs);
        pid = start_daemon();
        ck_assert(recorder_wait_last(&rec_obs, n_obs + 2, 15));
        ck_assert_uint_eq(rec_obs.n_errors, 0);
        ck_assert_int_eq(rec_obs.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert(rec_obs.info.has_observe);

        /* Both clients work again, their objects made anew. */
        ck_assert_int_eq(do_request(&b, sock, &req, &rec_b), COAP_RESPONSE_CODE_CONTENT);
        req = make_request(COAP_METHOD_GET, "time", &rec_a);
        ck_assert_int_eq(do_request(&a, sock, &req, &rec_a), COAP_RESPONSE_CODE_CONTENT);

        /* And again, a clean stop this time; the observation still ends as usual. */
        n_obs = recorder_n_last(&rec_obs);
        status = stop_daemon(pid, SIGTERM);
        ck_assert(WIFEXITED(status));
        pid = start_daemon();
        ck_assert(recorder_wait_last(&rec_obs, n_obs + 2, 15));
        ck_assert_uint_eq(rec_obs.n_errors, 0);
        coap_client_cancel_requests(&a);
        ck_assert_int_eq(rec_obs.code, -ECANCELED);
        ck_assert_uint_eq(rec_obs.n_errors, 1);
        ck_assert(!coap_client_has_ongoing_exchange(&a));

        coap_client_deinit(&a);
        coap_client_deinit(&b);
        stop_daemon_cleanly(pid);
        recorder_done(&rec_a);
        recorder_done(&rec_obs);
        recorder_done(&rec_b);
        close(sock);
}
END_TEST

/* No coapclientd comes back: after its wait (15 s) the observation ends with one -ECONNABORTED. */
START_TEST(test_observation_daemon_gone) {
        struct coap_client client = {};
        Recorder rec;
        pid_t pid;
        int sock, status;

        recorder_init(&rec);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);
        pid = start_daemon();
        ck_assert_int_eq(coap_client_init(&client, "gone"), 0);
        observe_time(&client, sock, &rec);
        ck_assert(recorder_wait_last(&rec, 1, 10));
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));
        ck_assert(coap_client_has_ongoing_exchange(&client));
        ck_assert(recorder_wait_errors(&rec, 1, 40));
        ck_assert_int_eq(rec.code, -ECONNABORTED);
        ck_assert_uint_eq(rec.n_errors, 1);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        coap_client_deinit(&client);
        recorder_done(&rec);
        close(sock);
}
END_TEST

/* The credentials go to the new daemon's object too: the DTLS port answers nothing else. */
START_TEST(test_tls_restart) {
        static const char id[] = "CoAP", key[] = "secretPSK";
        const int tags[] = {1};
        struct sockaddr_in peer;
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder rec;
        pid_t pid;
        int sock, status;

        recorder_init(&rec);
        ck_assert_int_eq(peer_address(&peer), 0);
        peer.sin_port = htons((uint16_t) (ntohs(peer.sin_port) + 1));
        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(sock, 0);
        ck_assert_int_eq(connect(sock, (struct sockaddr *) &peer, sizeof(peer)), 0);
        ck_assert_int_eq(coap_client_tls_credential_add(1, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID, id,
                                                        strlen(id)),
                         0);
        ck_assert_int_eq(
                coap_client_tls_credential_add(1, COAP_CLIENT_TLS_CREDENTIAL_PSK, key, strlen(key)),
                0);

        pid = start_daemon();
        ck_assert_int_eq(coap_client_init(&client, "tls"), 0);
        ck_assert_int_eq(coap_client_set_tls(&client, tags, 1, NULL, 0), 0);
        req = make_request(COAP_METHOD_GET, "time", &rec);
        ck_assert_int_eq(do_request(&client, sock, &req, &rec), COAP_RESPONSE_CODE_CONTENT);
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));

        /* A new socket: the server still holds the old session for the old port, and libcoap
         * drops a new ClientHello on it (epoch 0) until that session times out. */
        close(sock);
        sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(sock, 0);
        ck_assert_int_eq(connect(sock, (struct sockaddr *) &peer, sizeof(peer)), 0);
        pid = start_daemon();
        ck_assert_int_eq(do_request(&client, sock, &req, &rec), COAP_RESPONSE_CODE_CONTENT);

        /* Gone from the store meanwhile: no request runs without them. */
        status = stop_daemon(pid, SIGKILL);
        ck_assert(WIFSIGNALED(status));
        pid = start_daemon();
        ck_assert_int_eq(coap_client_tls_credential_delete(1, COAP_CLIENT_TLS_CREDENTIAL_PSK), 0);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        ck_assert_int_eq(coap_client_tls_credential_delete(1, COAP_CLIENT_TLS_CREDENTIAL_PSK_ID),
                         0);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -ENOENT);

        coap_client_deinit(&client);
        stop_daemon_cleanly(pid);
        recorder_done(&rec);
        close(sock);
}
END_TEST

static Suite *restart_suite(void) {
        Suite *s = suite_create("client-restart");
        TCase *tc = tcase_create("restart");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_no_daemon);
        tcase_add_test(tc, test_daemon_restart);
        tcase_add_test(tc, test_observation_daemon_gone);
        tcase_add_test(tc, test_tls_restart);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(restart_suite)
