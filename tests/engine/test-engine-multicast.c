/* SPDX-License-Identifier: MIT */
/* Multicast requests (RFC 7252 §8): NON to a group, one event per responder with its source,
 * the window's end as the final event, no RST to the group. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

#define WINDOW_MS 500

static CoapAddr addr4(uint32_t ip, uint16_t port) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in)};
        struct sockaddr_in *sin = (struct sockaddr_in *) &a.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(ip);
        return a;
}

static CoapAddr addr6(const char *ip, uint16_t port) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in6)};
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &a.ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
        return a;
}

static const CoapAddr *group(void) {
        static CoapAddr g;

        g = addr4(0xE0000000u | 187u << 8 | 1u, 5683); /* 224.0.1.187, All CoAP Nodes */
        return &g;
}

static CoapRequestSpec mcast_spec(uint64_t id, const CoapAddr *dest) {
        CoapRequestSpec spec = fake_spec(id, "r");

        spec.confirmable = false;
        spec.dest = dest;
        spec.multicast_ms = WINDOW_MS;
        return spec;
}

static void submit(FakeEnv *f, uint64_t id, CoapMsg *ret) {
        CoapRequestSpec spec = mcast_spec(id, group());

        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, ret);
}

static bool has_rst(const FakeEnv *f) {
        for (size_t i = 0; i < f->n_tx; i++) {
                CoapMsg m;

                fake_tx_msg(f, i, &m);
                if (m.type == COAP_TYPE_RST)
                        return true;
        }
        return false;
}

START_TEST(test_is_multicast) {
        CoapAddr a;

        a = addr4(0xE0000001u, 1);
        ck_assert(coap_addr_is_multicast(&a));
        a = addr4(0xEFFFFFFFu, 1);
        ck_assert(coap_addr_is_multicast(&a));
        a = addr4(0xDFFFFFFFu, 1);
        ck_assert(!coap_addr_is_multicast(&a));
        a = addr4(0xF0000000u, 1);
        ck_assert(!coap_addr_is_multicast(&a));
        a = addr6("ff02::fd", 1);
        ck_assert(coap_addr_is_multicast(&a));
        a = addr6("fe80::1", 1);
        ck_assert(!coap_addr_is_multicast(&a));
        a = (CoapAddr){};
        ck_assert(!coap_addr_is_multicast(&a));
}
END_TEST

START_TEST(test_refused) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr unicast = addr4(0x7F000001u, 5683);
        CoapRequestSpec spec;
        CoapOption obs = {.number = COAP_OPTION_OBSERVE};
        uint8_t body[2048] = {};

        spec = mcast_spec(1, &unicast);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        spec = mcast_spec(1, NULL);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        spec = mcast_spec(1, group());
        spec.confirmable = true;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        spec = mcast_spec(1, group());
        spec.options = &obs;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        spec = mcast_spec(1, group());
        spec.payload = body;
        spec.payload_len = sizeof(body);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        ck_assert_uint_eq(f->n_tx, 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_two_responders) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr a = addr4(0x7F000002u, 5683), b = addr4(0x7F000003u, 5683);
        uint64_t t0 = f->now;
        CoapMsg req;

        submit(f, 1, &req);
        ck_assert_uint_eq(req.type, COAP_TYPE_NON);
        ck_assert(coap_addr_is_multicast(&f->tx[0].dest));
        /* No retransmission, no NON timeout: only the window. */
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t0 + MS(WINDOW_MS));
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), t0 + MS(WINDOW_MS));

        f->now += MS(10);
        fake_feed_from(f, &a, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        f->now += MS(10);
        fake_feed_from(f, &b, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x200, req.token, NULL, 0, "B", 1);
        /* A's retransmission (same MID) and a second answer (new MID) are not delivered again. */
        fake_feed_from(f, &a, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        fake_feed_from(f, &a, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x101, req.token, NULL, 0, "A", 1);
        /* Same address, other port: another responder. */
        CoapAddr a2 = addr4(0x7F000002u, 5684);
        fake_feed_from(f, &a2, COAP_TYPE_NON, COAP_CODE_NOT_FOUND, 0x300, req.token, NULL, 0, NULL,
                       0);

        ck_assert_uint_eq(f->n_events, 3);
        for (size_t i = 0; i < 3; i++) {
                ck_assert(!f->events[i].ev.final);
                ck_assert(f->events[i].ev.last_block);
                ck_assert(f->events[i].has_msg);
                ck_assert_uint_eq(f->events[i].source.len, sizeof(struct sockaddr_in));
        }
        ck_assert(memcmp(&f->events[0].source.ss, &a.ss, a.len) == 0);
        ck_assert(memcmp(f->events[0].payload, "A", 1) == 0);
        ck_assert(memcmp(&f->events[1].source.ss, &b.ss, b.len) == 0);
        ck_assert(memcmp(f->events[1].payload, "B", 1) == 0);
        ck_assert(memcmp(&f->events[2].source.ss, &a2.ss, a2.len) == 0);
        ck_assert_int_eq(f->events[2].ev.result, COAP_CODE_NOT_FOUND);
        ck_assert(!has_rst(f));

        /* The window closes exactly on time: Zephyr's final callback. */
        fake_advance_to(f, t0 + MS(WINDOW_MS) - 1);
        ck_assert_uint_eq(f->n_events, 3);
        fake_advance_to(f, t0 + MS(WINDOW_MS));
        ck_assert_uint_eq(f->n_events, 4);
        ck_assert(f->events[3].ev.final);
        ck_assert_int_eq(f->events[3].ev.result, 0);
        ck_assert(!f->events[3].ev.last_block);
        ck_assert(!f->events[3].has_msg);
        ck_assert_uint_eq(f->events[3].source.len, 0);
        ck_assert_uint_eq(f->events[3].at, t0 + MS(WINDOW_MS));
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);

        /* A late answer is dropped, not RST, while the request is held; a CON one is ACKed. */
        CoapAddr c = addr4(0x7F000004u, 5683);
        fake_feed_from(f, &c, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x400, req.token, NULL, 0, "C", 1);
        ck_assert_uint_eq(f->n_events, 4);
        ck_assert(!has_rst(f));
        ck_assert(!coap_engine_is_idle(f->engine));
        fake_run_until(f, f->now + MS(60000));
        ck_assert(coap_engine_is_idle(f->engine));
        fake_env_free(f);
}
END_TEST

START_TEST(test_con_blockwise_rst_and_group_source) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr a = addr4(0x7F000002u, 5683), b = addr4(0x7F000003u, 5683);
        uint8_t st[4];
        CoapOption b2 = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 6, st);
        CoapMsg req, m;

        submit(f, 1, &req);
        fake_clear(f);
        /* A CON answer is ACKed and delivered; its retransmission is ACKed again only. */
        fake_feed_from(f, &a, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        fake_feed_from(f, &a, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 2);
        for (size_t i = 0; i < 2; i++) {
                fake_tx_msg(f, i, &m);
                ck_assert_uint_eq(m.type, COAP_TYPE_ACK);
                ck_assert_uint_eq(m.mid, 0x100);
                ck_assert(memcmp(&f->tx[i].dest.ss, &a.ss, a.len) == 0);
        }
        /* Block-wise answers are dropped, as Zephyr does; so is one "from" the group itself. */
        fake_feed_from(f, &b, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x200, req.token, &b2, 1, "B", 1);
        fake_feed_from(f, group(), COAP_TYPE_NON, COAP_CODE_CONTENT, 0x201, req.token, NULL, 0, "G",
                       1);
        ck_assert_uint_eq(f->n_events, 1);
        /* One member's RST does not end the request for the others. */
        fake_feed_from(f, &b, COAP_TYPE_RST, COAP_CODE_EMPTY, req.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        /* B answers properly afterwards. */
        fake_feed_from(f, &b, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x202, req.token, NULL, 0, "B", 1);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert(memcmp(&f->events[1].source.ss, &b.ss, b.len) == 0);
        ck_assert(!has_rst(f));
        fake_env_free(f);
}
END_TEST

START_TEST(test_cancel_holds) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr a = addr4(0x7F000002u, 5683);
        CoapMsg req;

        submit(f, 1, &req);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ECANCELED);
        ck_assert(f->events[0].ev.final);
        /* An answer on its way is neither delivered nor RST. */
        fake_feed_from(f, &a, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert(!has_rst(f));
        fake_env_free(f);
}
END_TEST

START_TEST(test_ipv6_and_empty_window) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr g = addr6("ff02::fd", 5683), a = addr6("fe80::2", 5683);
        CoapRequestSpec spec = mcast_spec(7, &g);
        uint64_t t0 = f->now;
        CoapMsg req;

        ((struct sockaddr_in6 *) &a.ss)->sin6_scope_id = 3;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &req);
        fake_feed_from(f, &a, COAP_TYPE_NON, COAP_CODE_CONTENT, 0x100, req.token, NULL, 0, "A", 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].source.len, sizeof(struct sockaddr_in6));
        ck_assert_uint_eq(((struct sockaddr_in6 *) &f->events[0].source.ss)->sin6_scope_id, 3);
        fake_run_until(f, t0 + MS(WINDOW_MS));
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, 0);
        ck_assert(f->events[1].ev.final);

        /* Nobody answers: only the final event, never a silent NON timeout. */
        fake_clear(f);
        t0 = f->now;
        spec = mcast_spec(8, &g);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_run_until(f, t0 + MS(WINDOW_MS));
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, 0);
        ck_assert(!f->events[0].ev.silent);
        ck_assert(f->events[0].ev.final);
        fake_env_free(f);
}
END_TEST

static Suite *engine_multicast_suite(void) {
        Suite *s = suite_create("engine-multicast");
        TCase *tc = tcase_create("multicast");

        tcase_add_test(tc, test_is_multicast);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_two_responders);
        tcase_add_test(tc, test_con_blockwise_rst_and_group_source);
        tcase_add_test(tc, test_cancel_holds);
        tcase_add_test(tc, test_ipv6_and_empty_window);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_multicast_suite)
