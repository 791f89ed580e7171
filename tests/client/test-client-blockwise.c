/* SPDX-License-Identifier: MIT */

/* Block-wise transfers through the library: a 1 MiB Block1 upload to coap-server-gnutls's
 * /example_data (PUT replaces it), then a Block2 download that must come back byte-exact,
 * one callback per block with Zephyr's offset and last_block. */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-main.h"
#include "client-test-util.h"
#include "coapclient/coap_client.h"

static void upload_and_download(size_t size, enum coap_block_size szx) {
        const size_t block = 16u << szx;
        struct coap_client client = {};
        struct coap_client_request req;
        Recorder put_rec, get_rec;
        uint8_t *body = make_body(size, (uint32_t) size);
        int sock = peer_socket(/* connected= */ true);

        ck_assert_int_ge(sock, 0);
        recorder_init(&put_rec);
        recorder_init(&get_rec);
        ck_assert_int_eq(coap_client_init(&client, "blockwise"), 0);
        ck_assert_int_eq(coap_client_set_block_size(&client, szx), 0);

        req = make_request(COAP_METHOD_PUT, "example_data", &put_rec);
        req.fmt = COAP_CONTENT_FORMAT_APP_OCTET_STREAM;
        req.payload = body;
        req.len = size;
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        /* The payload was copied: scribbling on the request does not matter. */
        memset(&req, 0xAA, sizeof(req));
        ck_assert(recorder_wait_last(&put_rec, 1, 60));
        ck_assert_int_eq(COAP_RESPONSE_CODE_CLASS(put_rec.code), 2);
        ck_assert_uint_eq(put_rec.n_errors, 0);

        req = make_request(COAP_METHOD_GET, "example_data", &get_rec);
        ck_assert_int_eq(coap_client_req(&client, sock, NULL, &req, NULL), 0);
        ck_assert(recorder_wait_last(&get_rec, 1, 60));
        ck_assert_int_eq(get_rec.code, COAP_RESPONSE_CODE_CONTENT);
        ck_assert_uint_eq(get_rec.n_errors, 0);
        ck_assert(!get_rec.bad_offset);
        /* One callback per block of the client's size: coap_client_set_block_size() asks for it
         * from the first response on (early negotiation). */
        ck_assert_uint_eq(get_rec.n_calls, (size + block - 1) / block);
        ck_assert_uint_eq(get_rec.body_len, size);
        ck_assert(memcmp(get_rec.body, body, size) == 0);
        ck_assert(get_rec.has_info);
        ck_assert(get_rec.info.has_content_format);
        ck_assert_uint_eq(get_rec.info.content_format, COAP_CONTENT_FORMAT_APP_OCTET_STREAM);
        ck_assert(!coap_client_has_ongoing_exchange(&client));

        coap_client_deinit(&client);
        recorder_done(&put_rec);
        recorder_done(&get_rec);
        free(body);
        close(sock);
}

START_TEST(test_one_mib) {
        upload_and_download(1024 * 1024, COAP_BLOCK_1024);
}
END_TEST

START_TEST(test_small_blocks) {
        /* Not a multiple of the block size: the last block is short. */
        upload_and_download(40 * 1024 + 100, COAP_BLOCK_256);
}
END_TEST

static Suite *blockwise_suite(void) {
        Suite *s = suite_create("client-blockwise");
        TCase *tc = tcase_create("blockwise");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_one_mib);
        tcase_add_test(tc, test_small_blocks);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(blockwise_suite)
