/* SPDX-License-Identifier: MIT */

/* API 403 in external-loop mode: a body streamed from payload_cb beyond its first window is
 * asked for inside coap_client_process(), in the application's thread, and reads back
 * byte-exact. */

#define COAPCLIENT_ZEPHYR_API 403

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

typedef struct Ctx {
        const uint8_t *body;
        size_t size, next_offset;
        bool wrong_thread, bad_request;
        unsigned n_last;
        int16_t code;
        uint8_t *got;
        size_t got_len;
} Ctx;

static pthread_t main_thread;

static int payload_cb(size_t offset, const uint8_t **payload, size_t *len, bool *last_block,
                      void *user_data) {
        Ctx *c = user_data;
        size_t n = c->size - offset < *len ? c->size - offset : *len;

        c->wrong_thread = c->wrong_thread || !pthread_equal(pthread_self(), main_thread);
        c->bad_request = c->bad_request || offset != c->next_offset;
        *payload = c->body + offset;
        *len = n;
        *last_block = offset + n == c->size;
        c->next_offset = offset + n;
        return 0;
}

static void response_cb(const struct coap_client_response_data *data, void *user_data) {
        Ctx *c = user_data;

        c->wrong_thread = c->wrong_thread || !pthread_equal(pthread_self(), main_thread);
        c->code = data->result_code;
        if (data->result_code >= 0 && data->payload_len > 0 &&
            data->offset + data->payload_len <= c->size) {
                memcpy(c->got + data->offset, data->payload, data->payload_len);
                c->got_len = data->offset + data->payload_len;
        }
        if (data->last_block)
                c->n_last++;
}

START_TEST(test_stream_external) {
        const size_t size = 1024 * 1024 + 100;
        struct coap_client client = {0};
        struct coap_client_request req = {0};
        uint8_t *body = make_body(size, 403);
        Ctx put = {0}, get = {0};
        int sock;

        main_thread = pthread_self();
        ck_assert_int_eq(coap_client_loop_external(), 0);
        ck_assert_int_eq(coap_client_init(&client, "external403"), 0);
        sock = peer_socket(/* connected= */ true);
        ck_assert_int_ge(sock, 0);

        put = (Ctx){.body = body, .size = size};
        req.method = COAP_METHOD_PUT;
        req.confirmable = true;
        strcpy(req.path, "example_data");
        req.fmt = COAP_CONTENT_FORMAT_APP_OCTET_STREAM;
        req.payload_cb = payload_cb;
        req.cb = response_cb;
        req.user_data = &put;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        /* Only the first window so far: the rest comes from the loop. */
        ck_assert_uint_eq(put.next_offset, 64 * 1024);
        ck_assert(pump_until(&put.n_last, 1, 60));
        ck_assert_int_eq(COAP_RESPONSE_CODE_CLASS(put.code), 2);
        ck_assert_uint_eq(put.next_offset, size);
        ck_assert(!put.bad_request);

        get = (Ctx){.size = size, .got = malloc(size)};
        ck_assert_ptr_nonnull(get.got);
        req.method = COAP_METHOD_GET;
        req.payload_cb = NULL;
        req.user_data = &get;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(pump_until(&get.n_last, 1, 60));
        ck_assert_int_eq(get.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(get.got_len, size);
        ck_assert(memcmp(get.got, body, size) == 0);
        ck_assert(!put.wrong_thread && !get.wrong_thread);

        coap_client_deinit(&client);
        close(sock);
        free(get.got);
        free(body);
}
END_TEST

static Suite *external_suite(void) {
        Suite *s = suite_create("api403-external");
        TCase *tc = tcase_create("api403-external");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_stream_external);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(external_suite)
