/* SPDX-License-Identifier: MIT */

/* Several requests in flight per client, several clients, several application threads;
 * cancelling one request or all of them (-ECANCELED, exactly once, nothing after); calling
 * the API from inside a callback. */

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

#define N_THREADS      4
#define N_PER_THREAD   20
#define N_SHARED_ASYNC 8

static struct coap_client shared;

typedef struct Worker {
        pthread_t thread;
        struct coap_client own;
        Recorder rec;
        int ok;
} Worker;

static void *worker_run(void *userdata) {
        Worker *w = userdata;
        int sock = peer_socket(/* connected= */ true);

        if (sock < 0 || coap_client_init(&w->own, "worker") < 0)
                return NULL;
        for (unsigned i = 0; i < N_PER_THREAD; i++) {
                struct coap_client_request req = make_request(COAP_METHOD_GET, "time", &w->rec);
                /* Alternate between the thread's own client and the shared one. */
                struct coap_client *c = i % 2 ? &shared : &w->own;

                if (do_request(c, sock, &req, &w->rec) == COAP_RESPONSE_CODE_CONTENT)
                        w->ok++;
        }
        coap_client_deinit(&w->own);
        close(sock);
        return NULL;
}

START_TEST(test_threads_and_clients) {
        Worker workers[N_THREADS] = {};

        ck_assert_int_eq(coap_client_init(&shared, "shared"), 0);
        for (unsigned i = 0; i < N_THREADS; i++) {
                recorder_init(&workers[i].rec);
                ck_assert_int_eq(pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]),
                                 0);
        }
        for (unsigned i = 0; i < N_THREADS; i++) {
                ck_assert_int_eq(pthread_join(workers[i].thread, NULL), 0);
                ck_assert_int_eq(workers[i].ok, N_PER_THREAD);
                ck_assert_uint_eq(workers[i].rec.n_calls, N_PER_THREAD);
                recorder_done(&workers[i].rec);
        }
        coap_client_deinit(&shared);
}
END_TEST

START_TEST(test_many_in_flight) {
        struct coap_client_request req;
        Recorder rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        recorder_init(&rec);
        ck_assert_int_eq(coap_client_init(&shared, NULL), 0);
        /* Separate responses after a second: all of them are pending at once. */
        req = make_request(COAP_METHOD_GET, "async?1", &rec);
        for (unsigned i = 0; i < N_SHARED_ASYNC; i++)
                ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &req, NULL), 0);
        ck_assert(coap_client_has_ongoing_exchange(&shared));
        ck_assert(recorder_wait_last(&rec, N_SHARED_ASYNC, 30));
        ck_assert_uint_eq(rec.n_calls, N_SHARED_ASYNC);
        ck_assert_uint_eq(rec.n_errors, 0);
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert(!coap_client_has_ongoing_exchange(&shared));
        coap_client_deinit(&shared);
        recorder_done(&rec);
        close(sock);
}
END_TEST

START_TEST(test_cancel_one) {
        struct coap_client_request a, b, match = {};
        Recorder rec_a, rec_b;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        recorder_init(&rec_a);
        recorder_init(&rec_b);
        ck_assert_int_eq(coap_client_init(&shared, NULL), 0);
        a = make_request(COAP_METHOD_GET, "async?2", &rec_a);
        b = make_request(COAP_METHOD_GET, "async?2", &rec_b);
        ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &a, NULL), 0);
        ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &b, NULL), 0);

        /* Zephyr's matching: only user_data set, the rest are wildcards. */
        match.user_data = &rec_a;
        coap_client_cancel_request(&shared, &match);
        /* Reported before the call returned. */
        ck_assert_uint_eq(rec_a.n_calls, 1);
        ck_assert_int_eq(rec_a.code, -ECANCELED);
        ck_assert(!rec_a.error_not_last);

        ck_assert(recorder_wait_last(&rec_b, 1, 30));
        ck_assert_int_eq(rec_b.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(rec_b.n_calls, 1);
        /* a's response came at the same time as b's and was dropped. */
        ck_assert_uint_eq(rec_a.n_calls, 1);
        coap_client_deinit(&shared);
        recorder_done(&rec_a);
        recorder_done(&rec_b);
        close(sock);
}
END_TEST

START_TEST(test_cancel_all) {
        struct coap_client_request req, later;
        Recorder rec, rec_later;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        recorder_init(&rec);
        recorder_init(&rec_later);
        ck_assert_int_eq(coap_client_init(&shared, NULL), 0);
        req = make_request(COAP_METHOD_GET, "async?1", &rec);
        for (unsigned i = 0; i < 3; i++)
                ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &req, NULL), 0);
        coap_client_cancel_requests(&shared);
        ck_assert_uint_eq(rec.n_calls, 3);
        ck_assert_uint_eq(rec.n_errors, 3);
        ck_assert_int_eq(rec.code, -ECANCELED);
        ck_assert(!coap_client_has_ongoing_exchange(&shared));

        /* A request sent after the cancelled ones completes after their responses would
         * have come: none of them shows up. */
        later = make_request(COAP_METHOD_GET, "async?2", &rec_later);
        ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &later, NULL), 0);
        ck_assert(recorder_wait_last(&rec_later, 1, 30));
        ck_assert_int_eq(rec_later.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(rec.n_calls, 3);
        coap_client_deinit(&shared);
        recorder_done(&rec);
        recorder_done(&rec_later);
        close(sock);
}
END_TEST

typedef struct Chain {
        Recorder rec;
        int sock;
        unsigned remaining;
        pthread_t cb_thread;
} Chain;

static void chain_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                     bool last_block, void *user_data) {
        Chain *ch = user_data;

        ch->cb_thread = pthread_self();
        /* Sending the next request from the callback must not deadlock. */
        if (code >= 0 && last_block && --ch->remaining > 0) {
                struct coap_client_request req = make_request(COAP_METHOD_GET, "time", NULL);

                req.cb = chain_cb;
                req.user_data = ch;
                if (coap_client_req(&shared, ch->sock, NULL, &req, NULL) < 0)
                        ch->remaining = 0;
        }
        recorder_cb(code, offset, payload, len, last_block, &ch->rec);
}

START_TEST(test_request_from_callback) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "time", NULL);
        Chain ch = {.remaining = 5};

        recorder_init(&ch.rec);
        ch.sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(ch.sock, 0);
        ck_assert_int_eq(coap_client_init(&shared, NULL), 0);
        req.cb = chain_cb;
        req.user_data = &ch;
        ck_assert_int_eq(coap_client_req(&shared, ch.sock, NULL, &req, NULL), 0);
        ck_assert(recorder_wait_last(&ch.rec, 5, 30));
        ck_assert_uint_eq(ch.rec.n_errors, 0);
        /* Zephyr: callbacks come from the library's thread, not the application's. */
        ck_assert(!pthread_equal(ch.cb_thread, pthread_self()));
        coap_client_deinit(&shared);
        recorder_done(&ch.rec);
        close(ch.sock);
}
END_TEST

/* A final callback that runs until the test releases it. */
typedef struct Held {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool entered, released, returned;
        bool returned_before_deinit; /* what coap_client_deinit() found once it returned */
} Held;

static void held_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                    bool last_block, void *user_data) {
        Held *h = user_data;

        (void) code, (void) offset, (void) payload, (void) len, (void) last_block;
        pthread_mutex_lock(&h->lock);
        h->entered = true;
        pthread_cond_broadcast(&h->cond);
        while (!h->released)
                pthread_cond_wait(&h->cond, &h->lock);
        h->returned = true;
        pthread_mutex_unlock(&h->lock);
}

static void *deinit_run(void *userdata) {
        Held *h = userdata;

        coap_client_deinit(&shared);
        pthread_mutex_lock(&h->lock);
        h->returned_before_deinit = h->returned;
        pthread_mutex_unlock(&h->lock);
        return NULL;
}

/* The library's thread makes a request's final callback without taking the lock afterwards;
 * coap_client_deinit() from another thread still waits for it to return (and is woken when it
 * does: a lost wake-up hangs the test). */
START_TEST(test_deinit_waits_for_final_callback) {
        struct coap_client_request req = make_request(COAP_METHOD_GET, "time", NULL);
        Held h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
        int sock = peer_socket(/* connected= */ true);
        pthread_t deiniter;

        ck_assert_int_ge(sock, 0);
        ck_assert_int_eq(coap_client_init(&shared, NULL), 0);
        req.cb = held_cb;
        req.user_data = &h;
        ck_assert_int_eq(coap_client_req(&shared, sock, NULL, &req, NULL), 0);
        pthread_mutex_lock(&h.lock);
        while (!h.entered)
                pthread_cond_wait(&h.cond, &h.lock);
        pthread_mutex_unlock(&h.lock);

        ck_assert_int_eq(pthread_create(&deiniter, NULL, deinit_run, &h), 0);
        /* Most likely waiting inside coap_client_deinit() by then; either way it must not
         * return before the callback did. */
        usleep(50 * 1000);
        pthread_mutex_lock(&h.lock);
        h.released = true;
        pthread_cond_broadcast(&h.cond);
        pthread_mutex_unlock(&h.lock);
        ck_assert_int_eq(pthread_join(deiniter, NULL), 0);
        ck_assert(h.returned_before_deinit);
        close(sock);
}
END_TEST

static Suite *threads_suite(void) {
        Suite *s = suite_create("client-threads");
        TCase *tc = tcase_create("threads");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_threads_and_clients);
        tcase_add_test(tc, test_many_in_flight);
        tcase_add_test(tc, test_cancel_one);
        tcase_add_test(tc, test_cancel_all);
        tcase_add_test(tc, test_request_from_callback);
        tcase_add_test(tc, test_deinit_waits_for_final_callback);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(threads_suite)
