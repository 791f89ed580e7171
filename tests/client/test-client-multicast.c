/* SPDX-License-Identifier: MIT */

/* Multicast requests (RFC 7252 §8) with the current Zephyr API (COAPCLIENT_ZEPHYR_API 403),
 * through coapclientd on the loopback: two members of a group answer, one of them twice; each
 * answer reaches the callback once with its member's address in data->source, then the window
 * closes with Zephyr's last callback (source NULL, result 0); nobody gets an RST. */

#define COAPCLIENT_ZEPHYR_API 403

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

/* Long enough for both members' answers on a loaded machine (sanitizers, valgrind): the window
 * is how long the request waits for them. */
#define WINDOW_MS 1500
#define N_MAX     8

typedef struct Answer {
        int16_t code;
        struct sockaddr_in source;
        socklen_t source_len;
        char payload[16];
        bool has_packet;
} Answer;

typedef struct Rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Answer answers[N_MAX];
        unsigned n_answers;
        bool done;
        int16_t final_code;
        bool final_last_block, final_packet;
        unsigned n_after_final;
} Rec;

static void response_cb(const struct coap_client_response_data *data, void *user_data) {
        Rec *r = user_data;

        pthread_mutex_lock(&r->lock);
        if (r->done)
                r->n_after_final++;
        else if (!data->source) {
                r->done = true;
                r->final_code = data->result_code;
                r->final_last_block = data->last_block;
                r->final_packet = data->packet != NULL;
        } else if (r->n_answers < N_MAX) {
                Answer *a = &r->answers[r->n_answers++];

                a->code = data->result_code;
                a->source_len = data->source_len;
                memcpy(&a->source, data->source,
                       data->source_len < sizeof(a->source) ? data->source_len : sizeof(a->source));
                memcpy(a->payload, data->payload,
                       data->payload_len < sizeof(a->payload) - 1 ? data->payload_len
                                                                  : sizeof(a->payload) - 1);
                a->has_packet = data->packet != NULL;
        }
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

static struct coap_client_request mcast_request(Rec *rec) {
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .confirmable = false,
                .fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN,
                .cb = response_cb,
                .user_data = rec,
                .multicast_timeout_ms = WINDOW_MS,
        };

        strcpy(req.path, "who");
        return req;
}

static const Answer *find_answer(const Rec *r, const struct sockaddr_in *source) {
        for (unsigned i = 0; i < r->n_answers; i++)
                if (r->answers[i].source.sin_addr.s_addr == source->sin_addr.s_addr &&
                    r->answers[i].source.sin_port == source->sin_port)
                        return &r->answers[i];
        return NULL;
}

START_TEST(test_two_members) {
        uint16_t port = mcast_test_port();
        struct sockaddr_in group = mcast_test_group(port);
        McastResponder a, b;
        struct coap_client client;
        struct coap_client_request req;
        const Answer *x;
        Rec rec = {};
        int sock;

        pthread_mutex_init(&rec.lock, NULL);
        pthread_cond_init(&rec.cond, NULL);
        mcast_responder_start(&a, "127.0.0.2", port, "A", 2);
        mcast_responder_start(&b, "127.0.0.3", port, "B", 1);
        sock = mcast_test_client_socket();
        ck_assert_int_eq(coap_client_init(&client, "multicast"), 0);

        req = mcast_request(&rec);
        ck_assert_int_eq(coap_client_req(&client, sock, (struct net_sockaddr *) &group, &req, NULL),
                         0);
        ck_assert(rec_wait_done(&rec, 30));

        pthread_mutex_lock(&rec.lock);
        ck_assert_uint_eq(rec.n_answers, 2);
        x = find_answer(&rec, &a.source);
        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(x->code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_str_eq(x->payload, "A");
        ck_assert_uint_eq(x->source_len, sizeof(struct sockaddr_in));
        ck_assert(x->has_packet);
        x = find_answer(&rec, &b.source);
        ck_assert_ptr_nonnull(x);
        ck_assert_str_eq(x->payload, "B");
        ck_assert_int_eq(rec.final_code, 0);
        ck_assert(!rec.final_last_block);
        ck_assert(!rec.final_packet);
        pthread_mutex_unlock(&rec.lock);

        /* The request is over: no more callbacks, no exchange left. */
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        coap_client_deinit(&client);
        ck_assert_uint_eq(rec.n_after_final, 0);
        /* Each member got one NON request, and nothing back (no RST for the repeated answer). */
        ck_assert_uint_eq(mcast_responder_stop(&a), 0);
        ck_assert_uint_eq(mcast_responder_stop(&b), 0);
        ck_assert_uint_eq(a.n_requests, 1);
        ck_assert_uint_eq(a.n_not_non, 0);
        ck_assert_uint_eq(b.n_requests, 1);
        close(sock);
        pthread_mutex_destroy(&rec.lock);
        pthread_cond_destroy(&rec.cond);
}
END_TEST

/* Zephyr's -EINVAL: a window with a unicast destination, a CON or an observation. */
START_TEST(test_refused) {
        struct sockaddr_in group = mcast_test_group(mcast_test_port());
        struct sockaddr_in unicast = {.sin_family = AF_INET,
                                      .sin_port = htons(5683),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct coap_client client;
        struct coap_client_request req;
        Rec rec = {};
        int sock = mcast_test_client_socket();

        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req = mcast_request(&rec);
        ck_assert_int_eq(
                coap_client_req(&client, sock, (struct net_sockaddr *) &unicast, &req, NULL),
                -EINVAL);
        req.confirmable = true;
        ck_assert_int_eq(coap_client_req(&client, sock, (struct net_sockaddr *) &group, &req, NULL),
                         -EINVAL);
        req = mcast_request(&rec);
        req.options[0] = (struct coap_client_option){.code = COAP_OPTION_OBSERVE, .len = 0};
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, (struct net_sockaddr *) &group, &req, NULL),
                         -EINVAL);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        coap_client_deinit(&client);
        close(sock);
}
END_TEST

static Suite *multicast_suite(void) {
        Suite *s = suite_create("client-multicast");
        TCase *tc = tcase_create("multicast");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_two_members);
        tcase_add_test(tc, test_refused);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multicast_suite)
