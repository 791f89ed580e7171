/* SPDX-License-Identifier: MIT */

/* Multicast requests (RFC 7252 §8) through coapclientd on the loopback, compiled once for each
 * API: the current Zephyr API (COAPCLIENT_ZEPHYR_API 403: the request's multicast_timeout_ms,
 * each answer's member in data->source) and the seed's (304, test-client-multicast304: through
 * its extension, coap_client_set_multicast_timeout() and coap_client_get_response_source()
 * inside the callback). Two members of a group answer, one of them more than once; each answer
 * reaches the callback once with its member's address, then the window closes with Zephyr's last
 * callback (no source, result 0); nobody gets an RST. */

#ifndef COAPCLIENT_ZEPHYR_API
#define COAPCLIENT_ZEPHYR_API 403
#endif

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"
#include "mcast-responder.h"

/* Long enough for both members' answers on a loaded machine (sanitizers, valgrind): the window
 * is how long the request waits for them. */
#define WINDOW_MS 1500
#define N_MAX     8

typedef struct Answer {
        int16_t code;
        struct sockaddr_in source;
        char payload[16];
        bool has_packet; /* 403: data->packet */
} Answer;

typedef struct Rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Answer answers[N_MAX];
        unsigned n_answers;
        bool bad_source; /* an answer's source of another size, or none (304) */
        unsigned n_final;
        int16_t final_code;
        bool final_last_block, final_packet;
        int final_source_error; /* 304: coap_client_get_response_source() in the last callback */
        unsigned n_after_final;
} Rec;

static void rec_init(Rec *r) {
        *r = (Rec){};
        pthread_mutex_init(&r->lock, NULL);
        cond_init_monotonic(&r->cond);
}

static void rec_done(Rec *r) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
}

/* Under r->lock: one answer, or the last callback (source NULL). */
static void rec_add(Rec *r, int16_t code, const void *source, size_t source_len,
                    const uint8_t *payload, size_t len, bool has_packet) {
        Answer *a;

        if (r->n_final > 0)
                r->n_after_final++;
        else if (!source) {
                r->n_final++;
                r->final_code = code;
        } else if (source_len != sizeof(struct sockaddr_in))
                r->bad_source = true;
        else if (r->n_answers < N_MAX) {
                a = &r->answers[r->n_answers++];
                a->code = code;
                memcpy(&a->source, source, sizeof(a->source));
                memcpy(a->payload, payload,
                       len < sizeof(a->payload) - 1 ? len : sizeof(a->payload) - 1);
                a->has_packet = has_packet;
        }
        pthread_cond_broadcast(&r->cond);
}

#if COAPCLIENT_ZEPHYR_API == 403
static void response_cb(const struct coap_client_response_data *data, void *user_data) {
        Rec *r = user_data;

        pthread_mutex_lock(&r->lock);
        if (!data->source && r->n_final == 0) {
                r->final_last_block = data->last_block;
                r->final_packet = data->packet != NULL;
        }
        rec_add(r, data->result_code, data->source, data->source_len, data->payload,
                data->payload_len, data->packet != NULL);
        pthread_mutex_unlock(&r->lock);
}
#else
static void response_cb(int16_t code, size_t offset, const uint8_t *payload, size_t len,
                        bool last_block, void *user_data) {
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
        Rec *r = user_data;
        int k;

        (void) offset;
        k = coap_client_get_response_source((struct sockaddr *) &ss, &ss_len);
        pthread_mutex_lock(&r->lock);
        /* The last callback: code 0 and no payload. */
        if (code == 0 && len == 0) {
                if (r->n_final == 0) {
                        r->final_last_block = last_block;
                        r->final_source_error = k;
                }
                rec_add(r, code, NULL, 0, payload, len, false);
        } else
                rec_add(r, code, &ss, k < 0 ? 0 : ss_len, payload, len, false);
        pthread_mutex_unlock(&r->lock);
}
#endif

/* A NON GET of "who" recorded in rec, with the multicast window. */
static struct coap_client_request mcast_request(Rec *rec) {
        struct coap_client_request req = {
                .method = COAP_METHOD_GET,
                .confirmable = false,
                .fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN,
                .cb = response_cb,
                .user_data = rec,
#if COAPCLIENT_ZEPHYR_API == 403
                .multicast_timeout_ms = WINDOW_MS,
#else
                .path = "who",
#endif
        };

#if COAPCLIENT_ZEPHYR_API == 403
        strcpy(req.path, "who");
#endif
        return req;
}

/* A client with the multicast window: the request's in 403, the client's in 304. */
static void mcast_client_init(struct coap_client *client) {
        ck_assert_int_eq(coap_client_init(client, "multicast"), 0);
#if COAPCLIENT_ZEPHYR_API == 304
        ck_assert_int_eq(coap_client_set_multicast_timeout(client, WINDOW_MS), 0);
#endif
}

static const Answer *find_answer(const Rec *r, const struct sockaddr_in *source) {
        for (unsigned i = 0; i < r->n_answers; i++)
                if (r->answers[i].source.sin_addr.s_addr == source->sin_addr.s_addr &&
                    r->answers[i].source.sin_port == source->sin_port)
                        return &r->answers[i];
        return NULL;
}

static void assert_answer(const Rec *r, const McastResponder *member, const char *payload) {
        const Answer *x = find_answer(r, &member->source);

        ck_assert_ptr_nonnull(x);
        ck_assert_int_eq(x->code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_str_eq(x->payload, payload);
        ck_assert(x->has_packet == (COAPCLIENT_ZEPHYR_API == 403));
}

START_TEST(test_two_members) {
        uint16_t port = mcast_test_port();
        struct sockaddr_in group = mcast_test_group(port);
        McastResponder a, b;
        struct coap_client client;
        struct coap_client_request req;
#if COAPCLIENT_ZEPHYR_API == 304
        struct sockaddr_storage ss;
        socklen_t ss_len = sizeof(ss);
#endif
        Rec rec;
        int sock;

        rec_init(&rec);
#if COAPCLIENT_ZEPHYR_API == 304
        /* Outside a callback there is no source. */
        ck_assert_int_eq(coap_client_get_response_source((struct sockaddr *) &ss, &ss_len),
                         -ENODATA);
        ck_assert_int_eq(coap_client_set_multicast_timeout(NULL, 300), -EINVAL);
        /* Other members than the 403 test's: the two may run at once. */
        mcast_responder_start(&a, "127.0.0.4", port, "A", 1);
        mcast_responder_start(&b, "127.0.0.5", port, "B", 3);
#else
        mcast_responder_start(&a, "127.0.0.2", port, "A", 2);
        mcast_responder_start(&b, "127.0.0.3", port, "B", 1);
#endif
        sock = mcast_test_client_socket();
        mcast_client_init(&client);

        req = mcast_request(&rec);
        ck_assert_int_eq(coap_client_req(&client, sock, (void *) &group, &req, NULL), 0);
        ck_assert(cond_wait_count(&rec.lock, &rec.cond, &rec.n_final, 1, 30));

        pthread_mutex_lock(&rec.lock);
        ck_assert(!rec.bad_source);
        ck_assert_uint_eq(rec.n_answers, 2);
        assert_answer(&rec, &a, "A");
        assert_answer(&rec, &b, "B");
        ck_assert_int_eq(rec.final_code, 0);
        ck_assert(!rec.final_last_block);
        ck_assert(!rec.final_packet);
#if COAPCLIENT_ZEPHYR_API == 304
        ck_assert_int_eq(rec.final_source_error, -ENODATA);
#endif
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
        ck_assert_uint_eq(b.n_not_non, 0);
        close(sock);
        rec_done(&rec);
}
END_TEST

/* Zephyr's -EINVAL: a window with a CON, a unicast destination or an observation. */
START_TEST(test_refused) {
        struct sockaddr_in group = mcast_test_group(mcast_test_port());
        struct coap_client client;
        struct coap_client_request req;
#if COAPCLIENT_ZEPHYR_API == 403
        struct sockaddr_in unicast = {.sin_family = AF_INET,
                                      .sin_port = htons(5683),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
#endif
        Rec rec;
        int sock = mcast_test_client_socket();

        rec_init(&rec);
        mcast_client_init(&client);
        req = mcast_request(&rec);
        req.confirmable = true;
        ck_assert_int_eq(coap_client_req(&client, sock, (void *) &group, &req, NULL), -EINVAL);
#if COAPCLIENT_ZEPHYR_API == 403
        req = mcast_request(&rec);
        ck_assert_int_eq(coap_client_req(&client, sock, (void *) &unicast, &req, NULL), -EINVAL);
        req.options[0] = (struct coap_client_option){.code = COAP_OPTION_OBSERVE, .len = 0};
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, (void *) &group, &req, NULL), -EINVAL);
#endif
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        coap_client_deinit(&client);
        close(sock);
        rec_done(&rec);
}
END_TEST

static Suite *multicast_suite(void) {
        Suite *s = suite_create(COAPCLIENT_ZEPHYR_API == 403 ? "client-multicast"
                                                             : "client-multicast304");
        TCase *tc = tcase_create("multicast");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_two_members);
        tcase_add_test(tc, test_refused);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(multicast_suite)
