/* SPDX-License-Identifier: MIT */
/* Receive path: separate responses, RST, duplicates, unmatched and malformed datagrams, source
 * and MID checks. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

static CoapAddr addr4(uint32_t ip, uint16_t port) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in)};
        struct sockaddr_in *sin = (struct sockaddr_in *) &a.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(ip);
        return a;
}

/* Submits a CON GET and returns its datagram. */
static void submit(FakeEnv *f, uint64_t id, bool confirmable, const CoapAddr *dest, CoapMsg *ret) {
        CoapRequestSpec spec = fake_spec(id, "r");

        spec.confirmable = confirmable;
        spec.dest = dest;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, ret);
}

static void assert_empty(const FakeEnv *f, size_t i, CoapType type, uint16_t mid) {
        CoapMsg m;

        fake_tx_msg(f, i, &m);
        ck_assert_uint_eq(f->tx[i].len, 4);
        ck_assert_uint_eq(m.type, type);
        ck_assert_uint_eq(m.code, COAP_CODE_EMPTY);
        ck_assert_uint_eq(m.mid, mid);
        ck_assert_uint_eq(m.token_len, 0);
}

START_TEST(test_separate_response) {
        FakeEnv *f = fake_env_new(1);
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);
        uint64_t t = f->now;
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 0);
        /* No more retransmissions: only the separate-response window. */
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + COAP_SEPARATE_TIMEOUT_USEC);
        /* A second empty ACK changes nothing. */
        f->now += MS(1000);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + COAP_SEPARATE_TIMEOUT_USEC);

        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x7000, req.token, NULL, 0, "sep", 3);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_empty(f, 1, COAP_TYPE_ACK, 0x7000);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, COAP_CODE_CONTENT);
        ck_assert(f->events[0].ev.final);
        ck_assert(f->events[0].ev.last_block);
        ck_assert_uint_eq(f->events[0].type, COAP_TYPE_CON);
        ck_assert(memcmp(f->events[0].payload, "sep", 3) == 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);

        /* The server did not get our ACK: the duplicate is ACKed again, not delivered again. */
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x7000, req.token, NULL, 0, "sep", 3);
        ck_assert_uint_eq(f->n_tx, 3);
        assert_empty(f, 2, COAP_TYPE_ACK, 0x7000);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(st->unmatched, 0);

        /* The hold lasts 3 x ack_timeout; afterwards the same datagram is unknown: RST. */
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), f->now + MS(6000));
        fake_advance_to(f, f->now + MS(6000));
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x7000, req.token, NULL, 0, "sep", 3);
        ck_assert_uint_eq(f->n_tx, 4);
        assert_empty(f, 3, COAP_TYPE_RST, 0x7000);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(st->unmatched, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_separate_timeout) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;
        uint64_t t;

        submit(f, 1, true, NULL, &req);
        f->now += MS(500);
        t = f->now;
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        fake_run_until(f, t + COAP_SEPARATE_TIMEOUT_USEC - 1);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(f->n_tx, 1);
        fake_advance_to(f, t + COAP_SEPARATE_TIMEOUT_USEC);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert(f->events[0].ev.final);
        /* The peer answered with an ACK: it is there (a DTLS session to it stays). */
        ck_assert(f->events[0].ev.acked);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->timeouts, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_non_separate_response) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        /* A NON answer to a CON request without an empty ACK first. */
        submit(f, 1, true, NULL, &req);
        fake_feed(f, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x10, req.token, NULL, 0, "n", 1);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].type, COAP_TYPE_NON);
        fake_feed(f, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x10, req.token, NULL, 0, "n", 1);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(f->n_events, 1);

        /* A NON request: empty ACKs do not apply; its NON answer is final, nothing held. */
        submit(f, 2, false, NULL, &req);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        fake_feed(f, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x11, req.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(f->events[1].ev.id, 2);
        ck_assert(f->events[1].ev.final);
        ck_assert_ptr_null(f->events[1].ev.payload);
        fake_feed(f, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x11, req.token, NULL, 0, NULL, 0);
        assert_empty(f, f->n_tx - 1, COAP_TYPE_RST, 0x11);
        fake_env_free(f);
}
END_TEST

/* The engine stays busy while it holds an exchange that may still need an answer; a piggybacked
 * response leaves nothing behind. */
START_TEST(test_idle) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        ck_assert(coap_engine_is_idle(f->engine));
        submit(f, 1, true, NULL, &req);
        ck_assert(!coap_engine_is_idle(f->engine));
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, "p", 1);
        ck_assert(coap_engine_is_idle(f->engine));

        /* Separate CON response: held 3 x ack_timeout to ACK its retransmissions. */
        submit(f, 2, true, NULL, &req);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x7001, req.token, NULL, 0, "s", 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert(!coap_engine_is_idle(f->engine));
        fake_advance_to(f, f->now + MS(6000) - 1);
        ck_assert(!coap_engine_is_idle(f->engine));
        fake_advance_to(f, f->now + 1);
        ck_assert(coap_engine_is_idle(f->engine));
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

/* Held exchanges name their peer, and go with their owner. */
START_TEST(test_held_dest_and_owner) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr a = {.len = sizeof(struct sockaddr_in)}, b = a;
        CoapRequestSpec spec = fake_spec(1, "x");
        CoapMsg req;

        ((struct sockaddr_in *) &a.ss)->sin_family = AF_INET;
        ((struct sockaddr_in *) &a.ss)->sin_port = htons(5683);
        ((struct sockaddr_in *) &b.ss)->sin_family = AF_INET;
        ((struct sockaddr_in *) &b.ss)->sin_port = htons(5684);
        spec.dest = &a;
        ck_assert(!coap_engine_holds_dest(f->engine, &a));
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &req);
        ck_assert(coap_engine_holds_dest(f->engine, &a));
        ck_assert(!coap_engine_holds_dest(f->engine, &b));
        fake_feed_from(f, &a, COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        fake_feed_from(f, &a, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x30, req.token, NULL, 0, "s", 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert(coap_engine_holds_dest(f->engine, &a));
        /* Another owner's departure leaves it; its own takes it. */
        coap_engine_drop_owner(f->engine, spec.owner + 1);
        ck_assert(!coap_engine_is_idle(f->engine));
        coap_engine_drop_owner(f->engine, spec.owner);
        ck_assert(coap_engine_is_idle(f->engine));
        ck_assert(!coap_engine_holds_dest(f->engine, &a));
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

/* A CON response to a NON request (RFC 7252 §5.2.3 allows it) is ACKed, and so is its
 * retransmission when our ACK was lost (§4.5), without a second event. */
START_TEST(test_non_request_con_response) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        submit(f, 1, false, NULL, &req);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x20, req.token, NULL, 0, "c", 1);
        assert_empty(f, f->n_tx - 1, COAP_TYPE_ACK, 0x20);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert(f->events[0].ev.final);
        ck_assert(!coap_engine_is_idle(f->engine));
        f->now += MS(2000);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x20, req.token, NULL, 0, "c", 1);
        assert_empty(f, f->n_tx - 1, COAP_TYPE_ACK, 0x20);
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->unmatched, 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_rst) {
        FakeEnv *f = fake_env_new(1);
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_feed(f, COAP_TYPE_RST, COAP_CODE_EMPTY, (uint16_t) (req.mid + 1), NULL, NULL, 0, NULL,
                  0);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(st->unmatched, 1);
        fake_feed(f, COAP_TYPE_RST, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ECONNRESET);
        ck_assert(f->events[0].ev.final);
        ck_assert(f->events[0].ev.last_block);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        /* RSTs are never answered. */
        ck_assert_uint_eq(f->n_tx, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_unmatched) {
        FakeEnv *f = fake_env_new(1);
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);
        const uint8_t other[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        CoapAddr src = addr4(0x0a000001, 5683);
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_feed_from(f, &src, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x99, other, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_empty(f, 1, COAP_TYPE_RST, 0x99);
        ck_assert(memcmp(&f->tx[1].dest, &src, sizeof(src)) == 0);
        fake_feed(f, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x9a, other, NULL, 0, NULL, 0);
        assert_empty(f, 2, COAP_TYPE_RST, 0x9a);
        ck_assert_uint_eq(f->tx[2].dest.len, 0);
        /* An unmatched ACK is dropped silently (RFC 7252 §4.2). */
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, other, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 3);
        /* A short token never matches ours. */
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 3);
        /* A CoAP ping and a request from the server get an RST. */
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_EMPTY, 0x9b, NULL, NULL, 0, NULL, 0);
        assert_empty(f, 3, COAP_TYPE_RST, 0x9b);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_GET, 0x9c, req.token, NULL, 0, NULL, 0);
        assert_empty(f, 4, COAP_TYPE_RST, 0x9c);
        ck_assert_uint_eq(st->unmatched, 6);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_malformed) {
        FakeEnv *f = fake_env_new(1);
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);
        const uint8_t con_bad[] = {0x40, 0x45, 0x12, 0x34, 0xff};     /* marker, no payload */
        const uint8_t non_bad[] = {0x50, 0x45, 0x12, 0x35, 0xff};     /* the same, NON */
        const uint8_t bad_tkl[] = {0x49, 0x45, 0x12, 0x36};           /* TKL 9 */
        const uint8_t bad_version[] = {0x80, 0x45, 0x12, 0x37, 0xff}; /* version 2 */
        const uint8_t runt[] = {0x40, 0x45};
        const uint8_t empty_with_token[] = {0x61, 0x00, 0x12, 0x38, 0x01}; /* ACK 0.00, TKL 1 */
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        coap_engine_feed(f->engine, con_bad, sizeof(con_bad), NULL, false, f->now);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_empty(f, 1, COAP_TYPE_RST, 0x1234);
        coap_engine_feed(f->engine, bad_tkl, sizeof(bad_tkl), NULL, false, f->now);
        assert_empty(f, 2, COAP_TYPE_RST, 0x1236);
        /* No RST: not CON, not CoAP, too short, or cut off by the receive buffer. */
        coap_engine_feed(f->engine, non_bad, sizeof(non_bad), NULL, false, f->now);
        coap_engine_feed(f->engine, bad_version, sizeof(bad_version), NULL, false, f->now);
        coap_engine_feed(f->engine, runt, sizeof(runt), NULL, false, f->now);
        coap_engine_feed(f->engine, con_bad, sizeof(con_bad), NULL, true, f->now);
        coap_engine_feed(f->engine, empty_with_token, sizeof(empty_with_token), NULL, false,
                         f->now);
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(st->malformed, 7);
        ck_assert_uint_eq(st->messages_received, 7);
        ck_assert_uint_eq(st->unmatched, 0);
        /* Nothing was cancelled. */
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 0);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_source_check) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr server = addr4(0x7f000001, 5683), other_port = addr4(0x7f000001, 5684),
                 other_ip = addr4(0x7f000002, 5683), none = {};
        CoapMsg req;

        submit(f, 1, true, &server, &req);
        fake_feed_from(f, &other_port, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL,
                       0, NULL, 0);
        fake_feed_from(f, &other_ip, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0,
                       NULL, 0);
        fake_feed_from(f, &other_ip, COAP_TYPE_RST, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL,
                       0);
        fake_feed_from(f, &other_ip, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x55, req.token, NULL, 0,
                       NULL, 0);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_empty(f, 1, COAP_TYPE_RST, 0x55);
        ck_assert(memcmp(&f->tx[1].dest, &other_ip, sizeof(other_ip)) == 0);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->unmatched, 4);
        fake_feed_from(f, &server, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0,
                       NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);

        /* The transport may report no source: then the request's address is used. */
        submit(f, 2, true, &server, &req);
        fake_feed_from(f, &none, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x56, req.token, NULL, 0, NULL,
                       0);
        ck_assert_uint_eq(f->n_events, 2);
        assert_empty(f, f->n_tx - 1, COAP_TYPE_ACK, 0x56);
        ck_assert(memcmp(&f->tx[f->n_tx - 1].dest, &server, sizeof(server)) == 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_source_check_ipv6) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr server = {.len = sizeof(struct sockaddr_in6)}, other;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &server.ss;
        CoapMsg req;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(5683);
        sin6->sin6_addr.s6_addr[15] = 1;
        sin6->sin6_flowinfo = 5; /* not part of the endpoint */
        submit(f, 1, true, &server, &req);
        other = server;
        ((struct sockaddr_in6 *) &other.ss)->sin6_scope_id = 2;
        fake_feed_from(f, &other, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0,
                       NULL, 0);
        other = addr4(0x7f000001, 5683);
        fake_feed_from(f, &other, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0,
                       NULL, 0);
        ck_assert_uint_eq(f->n_events, 0);
        other = server;
        ((struct sockaddr_in6 *) &other.ss)->sin6_flowinfo = 0;
        fake_feed_from(f, &other, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0,
                       NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_unmatched_empty_ack) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, (uint16_t) (req.mid - 1), NULL, NULL, 0, NULL,
                  0);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->unmatched, 1);
        ck_assert_uint_eq(f->n_tx, 1);
        /* Still retransmitting. */
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), f->now + MS(2000));
        fake_env_free(f);
}
END_TEST

START_TEST(test_piggybacked_mid_check) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, (uint16_t) (req.mid + 1), req.token, NULL, 0,
                  NULL, 0);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_ack_send_failure) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg req;

        submit(f, 1, true, NULL, &req);
        fake_send_fail(f, -ENETDOWN);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x10, req.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ENETDOWN);
        ck_assert(f->events[0].ev.final);
        fake_env_free(f);
}
END_TEST

static Suite *engine_match_suite(void) {
        Suite *s = suite_create("engine-match");
        TCase *tc = tcase_create("match");

        tcase_add_test(tc, test_separate_response);
        tcase_add_test(tc, test_separate_timeout);
        tcase_add_test(tc, test_non_separate_response);
        tcase_add_test(tc, test_idle);
        tcase_add_test(tc, test_held_dest_and_owner);
        tcase_add_test(tc, test_non_request_con_response);
        tcase_add_test(tc, test_rst);
        tcase_add_test(tc, test_unmatched);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_source_check);
        tcase_add_test(tc, test_piggybacked_mid_check);
        tcase_add_test(tc, test_source_check_ipv6);
        tcase_add_test(tc, test_unmatched_empty_ack);
        tcase_add_test(tc, test_ack_send_failure);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_match_suite)
