/* SPDX-License-Identifier: MIT */

/* Multicast requests with the seed's API (COAPCLIENT_ZEPHYR_API 304) through its extension:
 * coap_client_set_multicast_timeout() turns a request to a group into a multicast request, and
 * coap_client_get_response_source() names each answer's member inside the callback. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check-main.h"
#include "coapclient/coap_client.h"
#include "mcast-responder.h"

#define N_MAX     8
/* Long enough for both members' answers on a loaded machine (sanitizers, valgrind): the window
 * is how long the request waits for them. */
#define WINDOW_MS 1500

typedef struct Rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct sockaddr_in sources[N_MAX];
        unsigned n_answers;
        bool done;
        int16_t final_code;
        bool final_last_block;
        int final_source_error; /* coap_client_get_response_source() in the last callback */
        bool bad_source;        /* an answer without a source, or of another size */
} Rec;

static void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
        Rec *r = user_data;
        int k;

        (void) offset;
        (void) payload;
        k = coap_client_get_response_source((struct sockaddr *) &ss, &ss_len);
        pthread_mutex_lock(&r->lock);
        if (code == 0 && len == 0) {
                r->done = true;
                r->final_code = code;
                r->final_last_block = last_block;
                r->final_source_error = k;
        } else if (k < 0 || ss_len != sizeof(struct sockaddr_in))
                r->bad_source = true;
        else if (r->n_answers < N_MAX)
                memcpy(&r->sources[r->n_answers++], &ss, sizeof(struct sockaddr_in));
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

static bool rec_wait_done(Rec *r, unsigned timeout_sec) {
        struct timespec deadline;
        bool done;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += timeout_sec;
        pthread_mutex_lock(&r->lock);
        while (!r->done && pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == 0)
                ;
        done = r->done;
        pthread_mutex_unlock(&r->lock);
        return done;
}

static bool has_source(const Rec *r, const struct sockaddr_in *s) {
        for (unsigned i = 0; i < r->n_answers; i++)
                if (r->sources[i].sin_addr.s_addr == s->sin_addr.s_addr &&
                    r->sources[i].sin_port == s->sin_port)
                        return true;
        return false;
}

START_TEST(test_two_members_304) {
        uint16_t port = mcast_test_port();
        struct sockaddr_in group = mcast_test_group(port);
        struct coap_client client;
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .confirmable = false,
                .path = "who",
                .fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN,
                .cb = response_cb,
        };
        McastResponder a, b;
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
        Rec rec = {};
        int sock;

        pthread_mutex_init(&rec.lock, NULL);
        pthread_cond_init(&rec.cond, NULL);
        req.user_data = &rec;
        /* Outside a callback there is no source. */
        ck_assert_int_eq(coap_client_get_response_source((struct sockaddr *) &ss, &ss_len),
                         -ENODATA);
        ck_assert_int_eq(coap_client_set_multicast_timeout(NULL, 300), -EINVAL);

        mcast_responder_start(&a, "127.0.0.4", port, "A", 1);
        mcast_responder_start(&b, "127.0.0.5", port, "B", 3);
        sock = mcast_test_client_socket();
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        ck_assert_int_eq(coap_client_set_multicast_timeout(&client, WINDOW_MS), 0);
        ck_assert_int_eq(coap_client_req(&client, sock, (struct sockaddr *) &group, &req, NULL), 0);
        ck_assert(rec_wait_done(&rec, 30));

        pthread_mutex_lock(&rec.lock);
        ck_assert(!rec.bad_source);
        ck_assert_uint_eq(rec.n_answers, 2);
        ck_assert(has_source(&rec, &a.source));
        ck_assert(has_source(&rec, &b.source));
        ck_assert_int_eq(rec.final_code, 0);
        ck_assert(!rec.final_last_block);
        ck_assert_int_eq(rec.final_source_error, -ENODATA);
        pthread_mutex_unlock(&rec.lock);

        /* A CON to a group with the window set: Zephyr's -EINVAL. */
        req.confirmable = true;
        ck_assert_int_eq(coap_client_req(&client, sock, (struct sockaddr *) &group, &req, NULL),
                         -EINVAL);

        coap_client_deinit(&client);
        ck_assert_uint_eq(mcast_responder_stop(&a), 0);
        ck_assert_uint_eq(mcast_responder_stop(&b), 0);
        ck_assert_uint_eq(a.n_requests, 1);
        ck_assert_uint_eq(b.n_not_non, 0);
        close(sock);
        pthread_mutex_destroy(&rec.lock);
        pthread_cond_destroy(&rec.cond);
}
END_TEST

static Suite *multicast304_suite(void) {
        Suite *s = suite_create("client-multicast304");
        TCase *tc = tcase_create("multicast304");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_two_members_304);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multicast304_suite)
