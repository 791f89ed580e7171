/* SPDX-License-Identifier: MIT */
/* Block-wise combinations against node-coap (npm "coap"), an independent implementation
 * (tests/helpers/node-coap.sh, tests/data/node-coap-peer.js): uploads whose response body comes
 * back block-wise (RFC 7959 §3.3) and downloads, byte-exact. */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

#define CODE_CONTINUE 0x5f
#define CODE_CHANGED  0x44
#define CODE_CONTENT  0x45
#define TIMEOUT_USEC  (10 * USEC_PER_SEC)

typedef struct Peer {
        TestBus *bus;
        char *client;
        int fd;
} Peer;

static void peer_open(Peer *p) {
        const char *port = getenv("NODE_COAP_PORT");

        ck_assert_ptr_nonnull(port);
        p->fd = test_udp_socket(AF_INET, "127.0.0.1", (uint16_t) atoi(port));
        ck_assert_int_ge(p->fd, 0);
        ck_assert_int_eq(test_bus_new(&p->bus), 0);
        ck_assert_int_eq(test_bus_create_client(p->bus, "node-coap", &p->client, NULL), 0);
}

static void peer_close(Peer *p) {
        p->bus = test_bus_free(p->bus);
        free(p->client);
        safe_close(p->fd);
}

/* Sends req and waits for its final response; every event in *ret. */
static size_t run(Peer *p, const TestRequest *req, TestResponse **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t id;
        size_t n;

        ck_assert_msg(test_bus_request(p->bus, p->client, p->fd, "", req, &id, &error) >= 0,
                      "%s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(p->bus, id, TIMEOUT_USEC, ret, &n), 0);
        return n;
}

/* The events of a Block1 upload of len bytes in blocks of block_size (2.31 with the bytes sent so
 * far), then the response body block-wise from offset 0, which must equal expected. */
static void check_upload_echo(const TestResponse *r, size_t n, size_t len, size_t block_size,
                              int code, const uint8_t *expected, size_t expected_len) {
        size_t n_up = (len + block_size - 1) / block_size - 1, offset = 0;

        ck_assert_uint_gt(n, n_up + 1); /* the body came in more than one block */
        for (size_t i = 0; i < n_up; i++) {
                ck_assert_int_eq(r[i].result, CODE_CONTINUE);
                ck_assert_uint_eq(r[i].offset, (i + 1) * block_size);
                ck_assert(!r[i].last_block && !r[i].final);
        }
        for (size_t i = n_up; i < n; i++) {
                bool last = i + 1 == n;

                /* node-coap answers the requests for the later blocks from its cache, with 2.05. */
                if (i == n_up)
                        ck_assert_int_eq(r[i].result, code);
                else
                        ck_assert_int_eq(r[i].result >> 5, 2);
                ck_assert_uint_eq(r[i].offset, offset);
                ck_assert(r[i].last_block == last);
                ck_assert(r[i].final == last);
                ck_assert_uint_le(offset + r[i].payload_len, expected_len);
                ck_assert_msg(memcmp(r[i].payload, expected + offset, r[i].payload_len) == 0,
                              "response block at %zu differs", offset);
                offset += r[i].payload_len;
        }
        ck_assert_uint_eq(offset, expected_len);
}

/* The case of the issue: 1,025 bytes in two Block1 blocks, echoed in two Block2 blocks. */
START_TEST(test_put_1025_echo) {
        uint8_t body[1025];
        TestResponse *r;
        Peer p = {};
        size_t n;

        test_fill_random(body, sizeof(body), 1025);
        peer_open(&p);
        n = run(&p,
                &(TestRequest){.method = TEST_PUT,
                               .path = "echo",
                               .payload = body,
                               .payload_len = sizeof(body)},
                &r);
        check_upload_echo(r, n, sizeof(body), 1024, CODE_CHANGED, body, sizeof(body));
        ck_assert_uint_eq(n, 3);
        test_responses_free(r, n);
        peer_close(&p);
}
END_TEST

/* Small blocks both ways: node-coap sends the first response block at its own size (1,024),
 * then follows ours. */
START_TEST(test_post_echo_small_blocks) {
        const size_t len = 3000;
        _cleanup_free_ uint8_t *body = malloc(len);
        TestResponse *r;
        Peer p = {};
        size_t n;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 3000);
        peer_open(&p);
        n = run(&p,
                &(TestRequest){.method = TEST_POST,
                               .path = "echo",
                               .payload = body,
                               .payload_len = len,
                               .block_size = 256},
                &r);
        check_upload_echo(r, n, len, 256, CODE_CONTENT, body, len);
        test_responses_free(r, n);
        peer_close(&p);
}
END_TEST

/* A download with early negotiation through an application Block2 option (NUM 0, SZX 2): every
 * block, the first too, has 64 bytes. */
START_TEST(test_get_early_block2_option) {
        static const uint8_t b2 = 0x02;
        const TestOption opt = {.number = 23, .value = &b2, .len = 1};
        uint8_t expected[4000];
        TestResponse *r;
        size_t n, offset = 0;
        Peer p = {};

        for (size_t i = 0; i < sizeof(expected); i++)
                expected[i] = (uint8_t) ('A' + i % 26);
        peer_open(&p);
        n = run(&p,
                &(TestRequest){.method = TEST_GET,
                               .path = "big",
                               .options = &opt,
                               .n_options = 1,
                               .block_size = 64},
                &r);
        ck_assert_uint_eq(n, (sizeof(expected) + 63) / 64);
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(r[i].result, CODE_CONTENT);
                ck_assert_uint_eq(r[i].offset, offset);
                ck_assert(memcmp(r[i].payload, expected + offset, r[i].payload_len) == 0);
                offset += r[i].payload_len;
        }
        ck_assert_uint_eq(offset, sizeof(expected));
        test_responses_free(r, n);
        peer_close(&p);
}
END_TEST

static Suite *node_coap_suite(void) {
        Suite *s = suite_create("node-coap");
        TCase *tc = tcase_create("blockwise");

        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, test_put_1025_echo);
        tcase_add_test(tc, test_post_echo_small_blocks);
        tcase_add_test(tc, test_get_early_block2_option);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(node_coap_suite)
