/* SPDX-License-Identifier: MIT */
/* Request formatting, piggybacked responses, validation, submit errors, cancel, stats. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check-main.h"
#include "coap-option.h"
#include "fake-env.h"

static void assert_option(const CoapOption *o, uint16_t number, const char *value) {
        ck_assert_uint_eq(o->number, number);
        ck_assert_uint_eq(o->len, strlen(value));
        ck_assert(memcmp(o->value, value, o->len) == 0);
}

START_TEST(test_request_format) {
        FakeEnv *f = fake_env_new(0x1234);
        const CoapOption extra[] = {
                {.number = COAP_OPTION_ACCEPT, .len = 1, .value = (const uint8_t *) "\x32"},
                {.number = COAP_OPTION_IF_MATCH, .len = 2, .value = (const uint8_t *) "ab"},
                {.number = COAP_OPTION_URI_HOST, .len = 1, .value = (const uint8_t *) "h"},
        };
        CoapRequestSpec spec = fake_spec(1, "/a/b?x=1&y");
        uint64_t token = UINT64_C(0x0102030405060708);
        CoapOptionIter it;
        CoapOption o[16];
        size_t n = 0;
        CoapMsg m;

        spec.options = extra;
        spec.n_options = 3;
        fake_rng_push(f, token);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(f->tx[0].dest.len, 0);
        fake_tx_msg(f, 0, &m);
        ck_assert_uint_eq(m.type, COAP_TYPE_CON);
        ck_assert_uint_eq(m.code, COAP_CODE_GET);
        ck_assert_uint_eq(m.mid, 0x1234);
        ck_assert_uint_eq(m.token_len, 8);
        ck_assert(memcmp(m.token, &token, 8) == 0);
        ck_assert_ptr_null(m.payload);
        coap_option_iter_init(&it, &m);
        while (n < 16 && coap_option_iter_next(&it, &o[n]))
                n++;
        ck_assert_uint_eq(n, 7);
        assert_option(&o[0], COAP_OPTION_IF_MATCH, "ab");
        assert_option(&o[1], COAP_OPTION_URI_HOST, "h");
        assert_option(&o[2], COAP_OPTION_URI_PATH, "a");
        assert_option(&o[3], COAP_OPTION_URI_PATH, "b");
        assert_option(&o[4], COAP_OPTION_URI_QUERY, "x=1");
        assert_option(&o[5], COAP_OPTION_URI_QUERY, "y");
        assert_option(&o[6], COAP_OPTION_ACCEPT, "\x32");

        /* The MID counter moves on; the spec's strings were copied. */
        spec = fake_spec(2, "c");
        spec.confirmable = false;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_msg(f, 1, &m);
        ck_assert_uint_eq(m.type, COAP_TYPE_NON);
        ck_assert_uint_eq(m.mid, 0x1235);
        ck_assert(memcmp(m.token, f->tx[0].buf + 4, 8) != 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 2);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 1), 2);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 2), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_request_many_options) {
        /* Path segments on both sides of the options exchange_build() keeps on its stack: every
         * segment goes out, in order. */
        static const size_t counts[] = {1, 16, 17, 18, 40};

        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
                FakeEnv *f = fake_env_new(1);
                char path[2 * 40 + 1] = "";
                CoapRequestSpec spec;
                CoapOptionIter it;
                CoapOption o;
                size_t n = 0;
                CoapMsg m;

                for (size_t i = 0; i < counts[c]; i++) {
                        path[2 * i] = '/';
                        path[2 * i + 1] = (char) ('A' + i % 26);
                }
                spec = fake_spec(1, path);
                ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
                fake_tx_msg(f, 0, &m);
                coap_option_iter_init(&it, &m);
                while (coap_option_iter_next(&it, &o)) {
                        char segment[2] = {(char) ('A' + n % 26), 0};

                        ck_assert_uint_lt(n, counts[c]);
                        assert_option(&o, COAP_OPTION_URI_PATH, segment);
                        n++;
                }
                ck_assert_uint_eq(n, counts[c]);
                fake_env_free(f);
        }
}
END_TEST

START_TEST(test_content_format_only_with_payload) {
        FakeEnv *f = fake_env_new(7);
        CoapRequestSpec spec = fake_spec(1, "p");
        uint32_t cf;
        CoapMsg m;

        spec.method = COAP_CODE_POST;
        spec.content_format = COAP_CONTENT_FORMAT_CBOR;
        spec.payload = (const uint8_t *) "data";
        spec.payload_len = 4;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.code, COAP_CODE_POST);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_CONTENT_FORMAT, &cf), 0);
        ck_assert_uint_eq(cf, COAP_CONTENT_FORMAT_CBOR);
        ck_assert_uint_eq(m.payload_len, 4);
        ck_assert(memcmp(m.payload, "data", 4) == 0);

        spec = fake_spec(2, "p");
        spec.content_format = COAP_CONTENT_FORMAT_JSON;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_CONTENT_FORMAT, NULL));
        fake_env_free(f);
}
END_TEST

START_TEST(test_piggybacked) {
        FakeEnv *f = fake_env_new(100);
        CoapRequestSpec spec = fake_spec(42, "x");
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);

        spec.owner = 9;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_lt(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, "hello", 5);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].ev.id, 42);
        ck_assert_uint_eq(f->events[0].ev.owner, 9);
        ck_assert_int_eq(f->events[0].ev.result, COAP_CODE_CONTENT);
        ck_assert_uint_eq(f->events[0].ev.offset, 0);
        ck_assert_uint_eq(f->events[0].ev.payload_len, 5);
        ck_assert(memcmp(f->events[0].payload, "hello", 5) == 0);
        ck_assert(f->events[0].ev.last_block);
        ck_assert(f->events[0].ev.final);
        ck_assert(!f->events[0].ev.silent);
        ck_assert(f->events[0].has_msg);
        ck_assert_uint_eq(f->events[0].type, COAP_TYPE_ACK);
        /* Piggybacked: nothing held, nothing left to time. */
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 9), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 42, f->now), -ENOENT);

        /* The id is free again; a second reply to the old MID is an unmatched ACK: dropped. */
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, 100, f->tx[0].buf + 4, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(st->unmatched, 1);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);

        ck_assert_uint_eq(st->messages_sent, 2);
        ck_assert_uint_eq(st->messages_received, 2);
        ck_assert_uint_eq(st->retransmissions, 0);
        ck_assert_uint_eq(st->timeouts, 0);
        ck_assert_uint_eq(st->malformed, 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_invalid_spec) {
        FakeEnv *f = fake_env_new(1);
        char long_path[300];
        uint8_t big[1100] = {};
        CoapOption opt = {.number = 2000, .len = sizeof(big), .value = big};
        CoapRequestSpec spec;
        CoapAddr bad = {.len = sizeof(struct sockaddr_storage) + 1};

#define EXPECT_EINVAL(stmt)                                                              \
        do {                                                                             \
                spec = fake_spec(1, "a");                                                \
                stmt;                                                                    \
                ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL); \
        } while (0)

        EXPECT_EINVAL(spec.method = 0);
        EXPECT_EINVAL(spec.method = COAP_CODE_IPATCH + 1);
        EXPECT_EINVAL(spec.method = COAP_CODE_CONTENT);
        EXPECT_EINVAL(spec.block_szx = 7);
        EXPECT_EINVAL(spec.params.ack_timeout_ms = 0);
        EXPECT_EINVAL(spec.params.ack_random_percent = 99);
        EXPECT_EINVAL(spec.params.backoff_percent = 99);
        EXPECT_EINVAL(spec.payload_len = 3);
        EXPECT_EINVAL(spec.content_format = 70000);
        EXPECT_EINVAL(spec.dest = &bad);
        EXPECT_EINVAL((spec.options = &opt, spec.n_options = 1));
        EXPECT_EINVAL(spec.n_options = 1);
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[sizeof(long_path) - 1] = 0;
        EXPECT_EINVAL(spec.path = long_path);
#undef EXPECT_EINVAL
        ck_assert_uint_eq(f->n_tx, 0);
        ck_assert_int_eq(coap_engine_submit(f->engine, NULL, f->now), -EINVAL);

        /* 1034 bytes is the largest option; an empty path gives no Uri-Path. */
        spec = fake_spec(1, "");
        opt.len = 1034;
        spec.options = &opt;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        spec.path = NULL;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EEXIST);
        spec.id = 2;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(f->n_tx, 2);
        fake_env_free(f);
}
END_TEST

START_TEST(test_first_send_error) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");

        fake_send_fail(f, -ENETDOWN);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -ENETDOWN);
        /* A failed first send is never retried, not even for EAGAIN. */
        fake_send_fail(f, -EAGAIN);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EAGAIN);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->messages_sent, 0);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_cancel) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(5, "a");

        ck_assert_int_eq(coap_engine_cancel(f->engine, 5, f->now), -ENOENT);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 5, f->now), 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ECANCELED);
        ck_assert(f->events[0].ev.final);
        ck_assert(f->events[0].ev.last_block);
        ck_assert(!f->events[0].has_msg);
        ck_assert_ptr_null(f->events[0].ev.payload);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 5, f->now), -ENOENT);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);

        /* A late reply is an unmatched ACK: dropped, no event. */
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_dest_address) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        CoapAddr dest = {.len = sizeof(struct sockaddr_in)};
        struct sockaddr_in *sin = (struct sockaddr_in *) &dest.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(5683);
        sin->sin_addr.s_addr = htonl(0x7f000001);
        spec.dest = &dest;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(f->tx[0].dest.len, sizeof(struct sockaddr_in));
        ck_assert(memcmp(&f->tx[0].dest.ss, &dest.ss, sizeof(struct sockaddr_in)) == 0);
        fake_env_free(f);
}
END_TEST

static Suite *engine_basic_suite(void) {
        Suite *s = suite_create("engine-basic");
        TCase *tc = tcase_create("basic");

        tcase_add_test(tc, test_request_format);
        tcase_add_test(tc, test_request_many_options);
        tcase_add_test(tc, test_content_format_only_with_payload);
        tcase_add_test(tc, test_piggybacked);
        tcase_add_test(tc, test_invalid_spec);
        tcase_add_test(tc, test_first_send_error);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_dest_address);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_basic_suite)
