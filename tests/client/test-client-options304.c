/* SPDX-License-Identifier: MIT */

/* The seed's API (304) with Zephyr's CONFIG_COAP_EXTENDED_OPTIONS_LEN: option values longer than
 * the seed's 12 bytes, here a Proxy-Uri that coap-server-gnutls answers with 5.05, sent through
 * coapclientd with the same coap_client_req() as ever. */

#define CONFIG_COAP_EXTENDED_OPTIONS_LEN       1
#define CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE 200

#include <check.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

START_TEST(test_long_proxy_uri) {
        struct coap_client client = {};
        struct coap_client_option opts[2] = {};
        struct coap_client_request req;
        const char *uri = "coap://example.invalid/a-path-that-is-far-longer-than-twelve-bytes";
        Recorder rec;
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        recorder_init(&rec);
        ck_assert_int_eq(coap_client_init(&client, NULL), 0);
        opts[0] = coap_client_option_initial_block2();
        ck_assert_uint_eq(opts[0].len, 1);
        opts[1].code = COAP_OPTION_PROXY_URI;
        opts[1].len = (uint16_t) strlen(uri);
        memcpy(opts[1].value, uri, strlen(uri));
        req = (struct coap_client_request){
                .method = COAP_METHOD_GET,
                .confirmable = true,
                .path = "/",
                .cb = recorder_cb,
                .options = opts,
                .num_options = 2,
                .user_data = &rec,
        };
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_wait_last(&rec, 1, 30));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_PROXYING_NOT_SUPPORTED);
        /* The retry-count form takes the same path. */
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, -1), 0);
        ck_assert(recorder_wait_last(&rec, 2, 30));
        ck_assert_int_eq(rec.code, COAP_RESPONSE_CODE_PROXYING_NOT_SUPPORTED);

        /* Longer than the value array: refused at once. */
        opts[1].len = CONFIG_COAP_EXTENDED_OPTIONS_LEN_VALUE + 1;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), -EINVAL);

        coap_client_deinit(&client);
        recorder_done(&rec);
        close(sock);
}
END_TEST

static Suite *options_suite(void) {
        Suite *s = suite_create("options304");
        TCase *tc = tcase_create("options304");

        tcase_add_test(tc, test_long_proxy_uri);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(options_suite)
