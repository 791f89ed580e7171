/* SPDX-License-Identifier: MIT */
/* Block-wise transfers end to end: Block1 uploads and Block2 downloads through the daemon to
 * coap-server-gnutls, byte-exact with the right offsets, also through a lossy relay. */

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bus-helper.h"
#include "check-main.h"
#include "internal/bus-api.h"
#include "net-helper.h"

/* Short transmission parameters for the lossy runs: a lost datagram costs ~100 ms. */
#define FAST_ACK_MS 100

typedef struct Transfer {
        TestBus *bus;
        char *client;
        int fd;
} Transfer;

static void transfer_open(Transfer *t, int fd) {
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(test_bus_new(&t->bus), 0);
        ck_assert_int_eq(test_bus_create_client(t->bus, "blockwise", &t->client, NULL), 0);
        t->fd = fd;
}

static void transfer_close(Transfer *t) {
        t->bus = test_bus_free(t->bus);
        free(t->client);
        safe_close(t->fd);
}

/* PUTs body to path with block_size and checks the Block1 event sequence. */
static void put_body(Transfer *t, const char *path, const uint8_t *body, size_t len,
                     uint16_t block_size, uint32_t ack_ms, uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *resp = NULL;
        uint64_t id;
        size_t n;

        ck_assert_msg(test_bus_request(t->bus, t->client, t->fd, "",
                                       &(TestRequest){.method = TEST_PUT,
                                                      .path = path,
                                                      .payload = body,
                                                      .payload_len = len,
                                                      .block_size = block_size,
                                                      .ack_timeout = ack_ms,
                                                      .ack_random_percent = ack_ms ? 100 : 0},
                                       &id, &error) >= 0,
                      "PUT: %s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(t->bus, id, timeout_usec, &resp, &n), 0);
        /* As in Zephyr, the response to every block is reported: 2.31 Continue with
         * last_block false and the bytes sent so far as offset, then the final code. */
        ck_assert_uint_eq(n, (len + block_size - 1) / block_size);
        for (size_t i = 0; i + 1 < n; i++) {
                ck_assert_msg(!resp[i].last_block, "event %zu of %zu has last_block", i, n);
                ck_assert(!resp[i].final);
                ck_assert_int_eq(resp[i].result, 0x5f);
                ck_assert_uint_eq(resp[i].offset, (i + 1) * block_size);
        }
        ck_assert(resp[n - 1].final);
        ck_assert(resp[n - 1].last_block);
        ck_assert_msg(resp[n - 1].result == 0x44 || resp[n - 1].result == 0x41, "PUT ended with %d",
                      resp[n - 1].result);
        test_responses_free(resp, n);
}

/* GETs path and checks that the Block2 events rebuild expected exactly. */
static void get_body(Transfer *t, const char *path, const uint8_t *expected, size_t len,
                     uint16_t block_size, uint32_t ack_ms, uint64_t timeout_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        TestResponse *resp = NULL;
        uint64_t id, offset = 0;
        size_t n;

        ck_assert_msg(test_bus_request(t->bus, t->client, t->fd, "",
                                       &(TestRequest){.method = TEST_GET,
                                                      .path = path,
                                                      .block_size = block_size,
                                                      .ack_timeout = ack_ms,
                                                      .ack_random_percent = ack_ms ? 100 : 0},
                                       &id, &error) >= 0,
                      "GET: %s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(t->bus, id, timeout_usec, &resp, &n), 0);
        ck_assert_uint_ge(n, 1);
        /* The first request carries no Block2 (as in Zephyr), so the server may answer it with a
         * bigger block (RFC 7959 2.4); every later block has the preferred size. */
        if (block_size && n > 1) {
                ck_assert_uint_eq(resp[0].payload_len % block_size, 0);
                ck_assert_uint_eq(n, 1 + (len - resp[0].payload_len + block_size - 1) / block_size);
        }
        for (size_t i = 0; i < n; i++) {
                bool last = i + 1 == n;

                ck_assert_int_eq(resp[i].result, 0x45);
                ck_assert_uint_eq(resp[i].offset, offset);
                ck_assert(resp[i].last_block == last);
                ck_assert(resp[i].final == last);
                if (block_size && !last && i > 0)
                        ck_assert_uint_eq(resp[i].payload_len, block_size);
                ck_assert_uint_le(offset + resp[i].payload_len, len);
                ck_assert_msg(memcmp(resp[i].payload, expected + offset, resp[i].payload_len) == 0,
                              "block %zu at offset %llu differs", i, (unsigned long long) offset);
                offset += resp[i].payload_len;
        }
        ck_assert_uint_eq(offset, len);
        test_responses_free(resp, n);
}

START_TEST(test_put_get_1mib) {
        const size_t len = 1024 * 1024;
        _cleanup_free_ uint8_t *body = malloc(len);
        Transfer t = {};
        uint32_t max_payload;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 0x1234567);
        transfer_open(&t, test_udp_socket(AF_INET, test_peer_host(), test_peer_port()));
        ck_assert_int_ge(test_bus_get_manager_u32(t.bus, "MaxPayloadBytes", &max_payload), 0);
        ck_assert_uint_ge(max_payload, len);
        put_body(&t, "example_data", body, len, 1024, 0, 30 * USEC_PER_SEC);
        get_body(&t, "example_data", body, len, 1024, 0, 30 * USEC_PER_SEC);
        transfer_close(&t);
}
END_TEST

START_TEST(test_block_size_64) {
        const size_t len = 5000;
        _cleanup_free_ uint8_t *body = malloc(len);
        Transfer t = {};

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 64);
        transfer_open(&t, test_udp_socket(AF_INET, test_peer_host(), test_peer_port()));
        put_body(&t, "blk64", body, len, 64, 0, 10 * USEC_PER_SEC);
        get_body(&t, "blk64", body, len, 64, 0, 10 * USEC_PER_SEC);
        /* The server's own block size (no preference) gives the same bytes. */
        get_body(&t, "blk64", body, len, 0, 0, 10 * USEC_PER_SEC);
        transfer_close(&t);
}
END_TEST

START_TEST(test_lossy) {
        const size_t len = 48 * 1024;
        _cleanup_free_ uint8_t *body = malloc(len);
        Transfer t = {};
        uint64_t retrans0, retrans1;
        uint16_t relay_port;
        pid_t relay;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 7);
        /* Every 7th datagram each way is lost. */
        ck_assert_int_eq(test_lossy_relay_spawn(test_peer_port(), 7, &relay_port, &relay), 0);
        transfer_open(&t, test_udp_socket(AF_INET, "127.0.0.1", relay_port));
        ck_assert_int_ge(test_bus_get_manager_u64(t.bus, "Retransmissions", &retrans0), 0);
        put_body(&t, "lossy", body, len, 512, FAST_ACK_MS, 20 * USEC_PER_SEC);
        get_body(&t, "lossy", body, len, 512, FAST_ACK_MS, 20 * USEC_PER_SEC);
        ck_assert_int_ge(test_bus_get_manager_u64(t.bus, "Retransmissions", &retrans1), 0);
        /* ~2 x 96 exchanges: about 50 datagrams were dropped, each one retransmitted. */
        ck_assert_uint_ge(retrans1 - retrans0, 20);
        transfer_close(&t);
        test_child_stop(relay);
}
END_TEST

/* RFC 7959 §3.3 against libcoap: an upload whose last Block1 request asks for the response
 * block-wise (early negotiation, a Block2 option NUM 0) gets the echoed body from coap-server's
 * -e in Block2, fetched on requests without body, byte-exact. */
START_TEST(test_put_echo_block2) {
        static const char *const echo[] = {"-e", NULL};
        static const uint8_t b2_256 = 0x04;
        const TestOption early = {.number = 23, .value = &b2_256, .len = 1};
        const size_t len = 3000, block = 256;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ uint8_t *body = malloc(len);
        TestResponse *resp = NULL;
        size_t n, n_up = (len + block - 1) / block - 1, offset = 0;
        Transfer t = {};
        uint16_t port;
        uint64_t id;
        pid_t pid;

        ck_assert_ptr_nonnull(body);
        test_fill_random(body, len, 3003);
        ck_assert_int_eq(test_coap_server_spawn_args("127.0.0.1", echo, &port, &pid), 0);
        transfer_open(&t, test_udp_socket(AF_INET, "127.0.0.1", port));
        ck_assert_msg(test_bus_request(t.bus, t.client, t.fd, "",
                                       &(TestRequest){.method = TEST_PUT,
                                                      .path = "echo",
                                                      .payload = body,
                                                      .payload_len = len,
                                                      .options = &early,
                                                      .n_options = 1},
                                       &id, &error) >= 0,
                      "PUT: %s: %s", error.name, error.message);
        ck_assert_int_eq(test_bus_collect(t.bus, id, 10 * USEC_PER_SEC, &resp, &n), 0);
        ck_assert_uint_eq(n, n_up + (len + block - 1) / block);
        for (size_t i = 0; i < n_up; i++) {
                ck_assert_int_eq(resp[i].result, 0x5f);
                ck_assert_uint_eq(resp[i].offset, (i + 1) * block);
        }
        for (size_t i = n_up; i < n; i++) {
                ck_assert_msg(resp[i].result == 0x41 || resp[i].result == 0x44, "result %d",
                              resp[i].result);
                ck_assert_uint_eq(resp[i].offset, offset);
                ck_assert(resp[i].last_block == (i + 1 == n));
                ck_assert_uint_le(offset + resp[i].payload_len, len);
                ck_assert(memcmp(resp[i].payload, body + offset, resp[i].payload_len) == 0);
                offset += resp[i].payload_len;
        }
        ck_assert_uint_eq(offset, len);
        test_responses_free(resp, n);
        transfer_close(&t);
        test_child_stop(pid);
}
END_TEST

static Suite *blockwise_suite(void) {
        Suite *s = suite_create("blockwise");
        TCase *tc = tcase_create("blockwise");

        tcase_set_timeout(tc, 40);
        tcase_add_test(tc, test_put_get_1mib);
        tcase_add_test(tc, test_block_size_64);
        tcase_add_test(tc, test_lossy);
        tcase_add_test(tc, test_put_echo_block2);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(blockwise_suite)
