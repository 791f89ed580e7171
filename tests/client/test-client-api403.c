/* SPDX-License-Identifier: MIT */

/* An application written against the current Zephyr API (COAPCLIENT_ZEPHYR_API 403), run
 * through coapclientd against coap-server-gnutls: strcpy(req.path, ...), options[] (a Proxy-Uri
 * longer than the seed's 12 bytes), an upload from payload_cb read back byte-exact, and every
 * response read through data->packet with Zephyr's packet API. */

#define COAPCLIENT_ZEPHYR_API 403

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

typedef struct Rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned n_calls, n_last, n_errors;
        int16_t code;
        size_t next_offset;
        bool bad_offset;
        bool bad_packet; /* a packet that disagrees with the rest of data */
        bool error_with_packet;
        int content_format; /* of the last response, from data->packet */
        int observe;        /* Observe of the last response, or -ENOENT */
        unsigned n_block2;  /* responses with one Block2 option */
        uint8_t *body;
        size_t body_len;
        struct Upload *upload; /* what payload_cb gives: user_data is one for both callbacks */
} Rec;

static void rec_init(Rec *r) {
        *r = (Rec){.content_format = -1, .observe = -ENOENT};
        ck_assert_int_eq(pthread_mutex_init(&r->lock, NULL), 0);
        cond_init_monotonic(&r->cond);
}

static void rec_done(Rec *r) {
        free(r->body);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
}

static void response_cb(const struct coap_client_response_data *data, void *user_data) {
        Rec *r = user_data;

        pthread_mutex_lock(&r->lock);
        r->n_calls++;
        r->code = data->result_code;
        if (data->result_code < 0) {
                r->n_errors++;
                r->error_with_packet = r->error_with_packet || data->packet;
        } else if (!data->packet) {
                r->bad_packet = true;
        } else {
                struct coap_option block2[2];
                const uint8_t *payload;
                uint16_t len;

                payload = coap_packet_get_payload(data->packet, &len);
                if (coap_header_get_code(data->packet) != (uint8_t) data->result_code ||
                    coap_header_get_version(data->packet) != 1 || payload != data->payload ||
                    len != data->payload_len || data->source)
                        r->bad_packet = true;
                r->content_format = coap_get_option_int(data->packet, COAP_OPTION_CONTENT_FORMAT);
                r->observe = coap_get_option_int(data->packet, COAP_OPTION_OBSERVE);
                if (coap_find_options(data->packet, COAP_OPTION_BLOCK2, block2, 2) == 1)
                        r->n_block2++;
                if (data->offset != r->next_offset)
                        r->bad_offset = true;
                r->body = realloc(r->body, data->offset + data->payload_len + 1);
                ck_assert_ptr_nonnull(r->body);
                if (data->payload_len > 0)
                        memcpy(r->body + data->offset, data->payload, data->payload_len);
                r->body_len = data->offset + data->payload_len;
                r->next_offset = data->last_block ? 0 : r->body_len;
        }
        if (data->last_block)
                r->n_last++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

/* Waits until *counter (a field of r) reaches n; false after a minute. */
static bool rec_wait(Rec *r, const unsigned *counter, unsigned n) {
        return cond_wait_count(&r->lock, &r->cond, counter, n, 60);
}

static bool rec_wait_last(Rec *r, unsigned n) {
        return rec_wait(r, &r->n_last, n);
}

/* payload_cb's source: body, block by block, checking that the library asks in order. */
typedef struct Upload {
        const uint8_t *body;
        size_t size;
        size_t next_offset;
        unsigned n_calls;
        bool bad_request; /* an offset or block size the rules do not allow */
        int fail_with;    /* returned instead of the block at fail_at */
        size_t fail_at;
        bool short_block; /* gives a short block that is not the last, at fail_at */
        size_t hold_at;   /* with hold: posts reached there, then waits for release */
        bool hold;
        sem_t reached, release;
} Upload;

static int payload_cb(size_t offset, const uint8_t **payload, size_t *len, bool *last_block,
                      void *user_data) {
        Upload *u = ((Rec *) user_data)->upload;
        size_t n;

        u->n_calls++;
        if (u->hold && offset == u->hold_at) {
                sem_post(&u->reached);
                while (sem_wait(&u->release) < 0)
                        ;
        }
        if (u->fail_with < 0 && offset >= u->fail_at)
                return u->fail_with;
        if (offset != u->next_offset || *len != 1024)
                u->bad_request = true;
        n = u->size - offset < *len ? u->size - offset : *len;
        if (u->short_block && offset >= u->fail_at && n > 1)
                n--;
        *payload = u->body + offset;
        *len = n;
        *last_block = offset + n == u->size;
        u->next_offset = offset + n;
        return 0;
}

/* A request as a Zephyr 4.3 application writes it. */
static struct coap_client_request request(enum coap_method method, const char *path, Rec *rec) {
        struct coap_client_request req = {0};

        req.method = method;
        req.confirmable = true;
        strcpy(req.path, path);
        req.fmt = COAP_CONTENT_FORMAT_TEXT_PLAIN;
        req.cb = response_cb;
        req.user_data = rec;
        return req;
}

START_TEST(test_payload_cb_upload_read_back) {
        /* Three times MaxPayloadBytes (1 MiB by default, as here). */
        const size_t size = 3 * 1024 * 1024 + 17;
        struct coap_client client = {0};
        struct coap_client_request req;
        uint8_t *body = make_body(size, 403);
        Upload up = {.body = body, .size = size};
        Rec put, get;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        rec_init(&put);
        rec_init(&get);
        put.upload = &up;
        ck_assert_int_eq(coap_client_init(&client, "api403"), 0);

        req = request(COAP_METHOD_PUT, "example_data", &put);
        req.fmt = COAP_CONTENT_FORMAT_APP_OCTET_STREAM;
        req.payload_cb = payload_cb;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&put, 1));
        /* Each block asked for once, in order (the library thread made the calls after the
         * first window; the final callback came after the last of them). */
        ck_assert(!up.bad_request);
        ck_assert_uint_eq(up.n_calls, (size + 1023) / 1024);
        ck_assert_int_eq(COAP_RESPONSE_CODE_CLASS(put.code), 2);
        ck_assert_uint_eq(put.n_errors, 0);
        ck_assert(!put.bad_packet);

        req = request(COAP_METHOD_GET, "example_data", &get);
        req.options[0] = coap_client_option_initial_block2();
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&get, 1));
        ck_assert_int_eq(get.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(get.n_errors, 0);
        ck_assert(!get.bad_packet);
        ck_assert(!get.bad_offset);
        ck_assert_uint_eq(get.body_len, size);
        ck_assert(memcmp(get.body, body, size) == 0);
        /* Every block's packet showed its options. */
        ck_assert_int_eq(get.content_format, COAP_CONTENT_FORMAT_APP_OCTET_STREAM);
        ck_assert_uint_eq(get.n_block2, get.n_calls);
        ck_assert_uint_ge(get.n_calls, size / 1024);

        coap_client_deinit(&client);
        rec_done(&put);
        rec_done(&get);
        free(body);
        close(sock);
}
END_TEST

/* Early negotiation: a Block2 option NUM 0 goes out with the first request, so the server
 * answers even a small resource in blocks of that size, each with its Block2 in data->packet. */
START_TEST(test_early_block2) {
        struct coap_client client = {0};
        struct coap_client_request req;
        Rec rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        rec_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req = request(COAP_METHOD_GET, "/", &rec);
        req.options[0] = coap_client_option_initial_block2();
        req.options[0].value[0] = COAP_BLOCK_32;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&rec, 1));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert(!rec.bad_packet);
        ck_assert(!rec.bad_offset);
        /* coap-server's index is over 32 bytes: several blocks, each with Block2. */
        ck_assert_uint_gt(rec.body_len, 32);
        ck_assert_uint_eq(rec.n_calls, (rec.body_len + 31) / 32);
        ck_assert_uint_eq(rec.n_block2, rec.n_calls);

        coap_client_deinit(&client);
        rec_done(&rec);
        close(sock);
}
END_TEST

/* An option value longer than the seed's 12 bytes reaches the server: coap-server-gnutls
 * answers a Proxy-Uri with 5.05. */
START_TEST(test_long_option) {
        struct coap_client client = {0};
        struct coap_client_request req;
        const char *uri = "coap://example.invalid/a-path-that-is-longer-than-twelve-bytes/"
                          "and-longer-than-a-hundred-too/0123456789012345678901234567890123456789";
        Rec rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        rec_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req = request(COAP_METHOD_GET, "/", &rec);
        req.options[0].code = COAP_OPTION_PROXY_URI;
        req.options[0].len = (uint16_t) strlen(uri);
        memcpy(req.options[0].value, uri, strlen(uri));
        req.num_options = 1;
        ck_assert_uint_gt(strlen(uri), 128);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&rec, 1));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_PROXYING_NOT_SUPPORTED);
        ck_assert(!rec.bad_packet);

        coap_client_deinit(&client);
        rec_done(&rec);
        close(sock);
}
END_TEST

/* An observation's notifications carry Observe in data->packet; it may be refreshed;
 * cancelling ends it with -ECANCELED and no packet. */
START_TEST(test_observe_and_cancel) {
        struct coap_client client = {0};
        struct coap_client_request req;
        Rec rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        rec_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req = request(COAP_METHOD_GET, "time", &rec);
        req.options[0].code = COAP_OPTION_OBSERVE;
        req.options[0].len = 0;
        req.num_options = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&rec, 1));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_int_ge(rec.observe, 0);
        ck_assert(coap_client_has_ongoing_exchange(&client));
        /* Zephyr 4.5's refresh: sent on the registration's token, the observation goes on. */
        ck_assert_int_eq(coap_client_reregister_observe(&client, &req), 0);
        ck_assert(coap_client_has_ongoing_exchange(&client));

        /* As in Zephyr it does not wait: a notification's callback running in the library
         * thread right now finishes first, and -ECANCELED follows there. */
        coap_client_cancel_request(&client, &req);
        ck_assert(rec_wait(&rec, &rec.n_errors, 1));
        pthread_mutex_lock(&rec.lock);
        ck_assert_int_eq(rec.code, -ECANCELED);
        ck_assert_uint_eq(rec.n_errors, 1);
        ck_assert(!rec.error_with_packet);
        ck_assert(!rec.bad_packet);
        pthread_mutex_unlock(&rec.lock);
        ck_assert(!coap_client_has_ongoing_exchange(&client));
        ck_assert_int_eq(coap_client_reregister_observe(&client, &req), -ENOENT);

        coap_client_deinit(&client);
        rec_done(&rec);
        close(sock);
}
END_TEST

/* payload_cb fails, or breaks its rules, after the first window: coap_client_req() returned
 * long ago, so the callback reports it, and the request ends. */
START_TEST(test_stream_fails_later) {
        static const struct {
                int fail_with;
                bool short_block;
                int expected;
        } cases[] = {{-EIO, false, -EIO}, {0, true, -EINVAL}};
        struct coap_client client = {0};
        uint8_t *big = make_body(1024 * 1024, 4);
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        for (size_t i = 0; i < 2; i++) {
                Upload up = {
                        .body = big,
                        .size = 1024 * 1024,
                        .fail_with = cases[i].fail_with,
                        .fail_at = 200 * 1024,
                        .short_block = cases[i].short_block,
                };
                struct coap_client_request req;
                Rec rec;

                rec_init(&rec);
                rec.upload = &up;
                req = request(COAP_METHOD_PUT, "example_data", &rec);
                req.payload_cb = payload_cb;
                ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
                ck_assert(rec_wait(&rec, &rec.n_errors, 1));
                ck_assert(rec_wait_last(&rec, 1));
                pthread_mutex_lock(&rec.lock);
                ck_assert_int_eq(rec.code, cases[i].expected);
                ck_assert(!rec.bad_packet);
                pthread_mutex_unlock(&rec.lock);
                ck_assert(!up.bad_request);
                ck_assert_uint_ge(up.next_offset, 200 * 1024);
                ck_assert(!coap_client_has_ongoing_exchange(&client));
                rec_done(&rec);
        }
        coap_client_deinit(&client);
        free(big);
        close(sock);
}
END_TEST

/* Cancelling a streaming upload while payload_cb runs in the library thread: as for a
 * response callback, -ECANCELED follows there once it returns, what it gave is dropped, and it is
 * not asked for anything more. */
START_TEST(test_stream_cancel) {
        const size_t size = 3 * 1024 * 1024;
        struct coap_client client = {0};
        struct coap_client_request req;
        uint8_t *big = make_body(size, 5);
        Upload up = {.body = big, .size = size, .hold = true, .hold_at = 512 * 1024};
        unsigned n_calls;
        Rec rec, get;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        ck_assert_int_eq(sem_init(&up.reached, 0, 0), 0);
        ck_assert_int_eq(sem_init(&up.release, 0, 0), 0);
        rec_init(&rec);
        rec_init(&get);
        rec.upload = &up;
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        req = request(COAP_METHOD_PUT, "example_data", &rec);
        req.payload_cb = payload_cb;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        while (sem_wait(&up.reached) < 0)
                ;
        /* It does not wait for the running payload_cb, as for a running callback. */
        coap_client_cancel_request(&client, &req);
        pthread_mutex_lock(&rec.lock);
        ck_assert_uint_eq(rec.n_errors, 0);
        pthread_mutex_unlock(&rec.lock);
        sem_post(&up.release);
        ck_assert(rec_wait(&rec, &rec.n_errors, 1));
        ck_assert(rec_wait_last(&rec, 1));
        pthread_mutex_lock(&rec.lock);
        ck_assert_int_eq(rec.code, -ECANCELED);
        pthread_mutex_unlock(&rec.lock);

        /* A round trip later, nothing more was asked for. */
        n_calls = up.n_calls;
        req = request(COAP_METHOD_GET, "time", &get);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(rec_wait_last(&get, 1));
        ck_assert_uint_eq(up.n_calls, n_calls);
        ck_assert_uint_lt(up.next_offset, size);
        ck_assert(!up.bad_request);
        ck_assert(!coap_client_has_ongoing_exchange(&client));

        coap_client_deinit(&client);
        rec_done(&rec);
        rec_done(&get);
        sem_destroy(&up.reached);
        sem_destroy(&up.release);
        free(big);
        close(sock);
}
END_TEST

START_TEST(test_refusals) {
        struct coap_client client = {0};
        struct coap_client_request req;
        uint8_t *big = make_body(3 * 1024 * 1024, 3);
        Upload up = {.body = big, .size = 3 * 1024 * 1024};
        Rec rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        rec_init(&rec);
        rec.upload = &up;
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);

        /* A path that fills its array without a NUL. */
        req = request(COAP_METHOD_GET, "x", &rec);
        memset(req.path, 'a', sizeof(req.path));
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        req = request(COAP_METHOD_GET, "x", &rec);
        req.num_options = MAX_EXTRA_OPTIONS + 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        req = request(COAP_METHOD_GET, "x", &rec);
        /* A multicast window without a group to send to: Zephyr's -EINVAL. */
        req.multicast_timeout_ms = 100;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);

        /* payload_cb: both body sources, its own error, a short block before the last. */
        req = request(COAP_METHOD_PUT, "example_data", &rec);
        req.payload_cb = payload_cb;
        req.payload = big;
        req.len = 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        req.payload = NULL;
        req.len = 0;
        /* A request refused anyway is refused before the body is asked for. */
        req.method = 0;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        ck_assert_uint_eq(up.n_calls, 0);
        req.method = COAP_METHOD_PUT;
        up.fail_with = -EIO;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EIO);
        up.fail_with = 0;
        up.short_block = true;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);
        ck_assert_uint_eq(up.next_offset, 1023);

        ck_assert(!coap_client_has_ongoing_exchange(&client));
        ck_assert_uint_eq(rec.n_calls, 0);

        coap_client_deinit(&client);
        rec_done(&rec);
        free(big);
        close(sock);
}
END_TEST

static Suite *api403_suite(void) {
        Suite *s = suite_create("api403");
        TCase *tc = tcase_create("api403");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_payload_cb_upload_read_back);
        tcase_add_test(tc, test_long_option);
        tcase_add_test(tc, test_early_block2);
        tcase_add_test(tc, test_observe_and_cancel);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_stream_fails_later);
        tcase_add_test(tc, test_stream_cancel);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(api403_suite)
