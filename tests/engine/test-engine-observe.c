/* SPDX-License-Identifier: MIT */
/* Observe (RFC 7641) and Echo (RFC 9175). */

#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

static const uint8_t observe0[1] = {0};
static uint8_t body[1024];

static FakeEnv *start_observe(bool confirmable, uint8_t szx, CoapMsg *ret) {
        FakeEnv *f = fake_env_new(0x300);
        CoapRequestSpec spec = fake_spec(1, "obs?q=1");
        static CoapOption opt;

        for (size_t i = 0; i < sizeof(body); i++)
                body[i] = (uint8_t) (i * 13);
        /* Observe = 0 as the empty (minimal) encoding. */
        opt = (CoapOption){.number = COAP_OPTION_OBSERVE, .len = 0, .value = observe0};
        spec.options = &opt;
        spec.n_options = 1;
        spec.confirmable = confirmable;
        spec.block_szx = szx;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, ret);
        return f;
}

static void notify(FakeEnv *f, const CoapMsg *reg, CoapType type, uint16_t mid, uint8_t code,
                   int64_t seq, const char *payload) {
        uint8_t st[4];
        CoapOption o;

        if (seq >= 0)
                o = fake_uint_option(COAP_OPTION_OBSERVE, (uint32_t) seq, st);
        fake_feed(f, type, code, type == COAP_TYPE_ACK ? reg->mid : mid, reg->token, &o,
                  seq >= 0 ? 1 : 0, payload, payload ? strlen(payload) : 0);
}

static void assert_notification(const FakeEnv *f, size_t i, const char *payload) {
        ck_assert_uint_gt(f->n_events, i);
        ck_assert_int_eq(f->events[i].ev.result, COAP_CODE_CONTENT);
        ck_assert_uint_eq(f->events[i].ev.payload_len, strlen(payload));
        ck_assert(memcmp(f->events[i].payload, payload, strlen(payload)) == 0);
        ck_assert(f->events[i].ev.last_block);
        ck_assert(!f->events[i].ev.final);
}

static void assert_last_tx_empty(const FakeEnv *f, CoapType type, uint16_t mid) {
        CoapMsg m;

        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.type, type);
        ck_assert_uint_eq(m.code, COAP_CODE_EMPTY);
        ck_assert_uint_eq(m.mid, mid);
}

/* The last datagram sent is the registration's request again (type, its token, a new MID, its
 * Uri-Path and Uri-Query) with Observe = observe; it is returned in ret. */
static void assert_registration_again(const FakeEnv *f, const CoapMsg *reg, CoapType type,
                                      uint32_t observe, CoapMsg *ret) {
        CoapOption o;
        uint32_t v;

        fake_tx_last_msg(f, ret);
        ck_assert_uint_eq(ret->type, type);
        ck_assert_uint_eq(ret->code, COAP_CODE_GET);
        ck_assert(memcmp(ret->token, reg->token, 8) == 0);
        ck_assert_uint_ne(ret->mid, reg->mid);
        ck_assert_int_eq(coap_msg_get_uint_option(ret, COAP_OPTION_OBSERVE, &v), 0);
        ck_assert_uint_eq(v, observe);
        ck_assert(coap_msg_find_option(ret, COAP_OPTION_URI_PATH, &o));
        ck_assert(coap_msg_find_option(ret, COAP_OPTION_URI_QUERY, &o));
}

/* At the next deadline, the last datagram is sent again byte for byte. */
static void assert_retransmitted(FakeEnv *f) {
        ck_assert_uint_lt(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_advance_to(f, coap_engine_next_deadline(f->engine));
        ck_assert_uint_eq(f->tx[f->n_tx - 1].len, f->tx[f->n_tx - 2].len);
        ck_assert(memcmp(f->tx[f->n_tx - 1].buf, f->tx[f->n_tx - 2].buf, f->tx[f->n_tx - 1].len) ==
                  0);
}

typedef int (*ObserveOp)(CoapEngine *e, uint64_t id, uint64_t now);

/* op (deregister, reregister) of an unknown id, and of a request that is not an observation. */
static void assert_refused_unless_observing(FakeEnv *f, ObserveOp op) {
        CoapRequestSpec plain = fake_spec(2, "x");

        ck_assert_int_eq(op(f->engine, 9, f->now), -ENOENT);
        ck_assert_int_eq(coap_engine_submit(f->engine, &plain, f->now), 0);
        ck_assert_int_eq(op(f->engine, 2, f->now), -EINVAL);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 2, f->now), 0);
}

START_TEST(test_observe_notifications) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);
        uint32_t v;

        ck_assert_int_eq(coap_msg_get_uint_option(&reg, COAP_OPTION_OBSERVE, &v), 0);
        ck_assert_uint_eq(v, 0);
        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 5, "a");
        assert_notification(f, 0, "a");
        /* Alive with nothing to time. */
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);

        notify(f, &reg, COAP_TYPE_CON, 0x400, COAP_CODE_CONTENT, 6, "b");
        assert_last_tx_empty(f, COAP_TYPE_ACK, 0x400);
        assert_notification(f, 1, "b");
        /* Duplicate: ACKed again, not delivered. */
        notify(f, &reg, COAP_TYPE_CON, 0x400, COAP_CODE_CONTENT, 6, "b");
        ck_assert_uint_eq(f->n_tx, 3);
        assert_last_tx_empty(f, COAP_TYPE_ACK, 0x400);
        ck_assert_uint_eq(f->n_events, 2);
        /* Stale (older sequence): ACKed, dropped. */
        notify(f, &reg, COAP_TYPE_CON, 0x401, COAP_CODE_CONTENT, 4, "old");
        ck_assert_uint_eq(f->n_tx, 4);
        ck_assert_uint_eq(f->n_events, 2);
        /* The same sequence again (new MID) is tolerated. */
        notify(f, &reg, COAP_TYPE_NON, 0x402, COAP_CODE_CONTENT, 6, "c");
        ck_assert_uint_eq(f->n_tx, 4);
        assert_notification(f, 2, "c");
        /* After 128 s an older number is accepted again (RFC 7641 §3.4). */
        f->now += MS(129000);
        notify(f, &reg, COAP_TYPE_NON, 0x403, COAP_CODE_CONTENT, 2, "d");
        assert_notification(f, 3, "d");
        /* 24-bit wrap: 0xFFFFFF -> 1 is newer... */
        notify(f, &reg, COAP_TYPE_NON, 0x404, COAP_CODE_CONTENT, 0xFFFFFF, "e");
        ck_assert_uint_eq(f->n_events, 4);
        notify(f, &reg, COAP_TYPE_NON, 0x405, COAP_CODE_CONTENT, 3, "f");
        assert_notification(f, 4, "f");
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_ended_by_server) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        /* A 2.xx without Observe ends it. */
        notify(f, &reg, COAP_TYPE_CON, 0x500, COAP_CODE_CONTENT, -1, "bye");
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert(f->events[1].ev.final);
        ck_assert(f->events[1].ev.last_block);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), -ENOENT);
        /* Its duplicate is ACKed; a new notification is rejected. */
        notify(f, &reg, COAP_TYPE_CON, 0x500, COAP_CODE_CONTENT, -1, "bye");
        assert_last_tx_empty(f, COAP_TYPE_ACK, 0x500);
        notify(f, &reg, COAP_TYPE_CON, 0x501, COAP_CODE_CONTENT, 2, "x");
        assert_last_tx_empty(f, COAP_TYPE_RST, 0x501);
        ck_assert_uint_eq(f->n_events, 2);
        fake_env_free(f);

        /* Any non-2.xx ends it too, even with Observe. */
        f = start_observe(true, 6, &reg);
        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        notify(f, &reg, COAP_TYPE_NON, 0x600, COAP_CODE_NOT_FOUND, 2, "gone");
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, COAP_CODE_NOT_FOUND);
        ck_assert(f->events[1].ev.final);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_not_supported) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        /* The server answers without Observe: a plain response. */
        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, -1, "plain");
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert(f->events[0].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_cancel) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, -ECANCELED);
        ck_assert(f->events[1].ev.final);
        /* Later notifications are answered with RST (RFC 7641 §3.6). */
        notify(f, &reg, COAP_TYPE_CON, 0x700, COAP_CODE_CONTENT, 2, "b");
        assert_last_tx_empty(f, COAP_TYPE_RST, 0x700);
        notify(f, &reg, COAP_TYPE_NON, 0x701, COAP_CODE_CONTENT, 3, "c");
        assert_last_tx_empty(f, COAP_TYPE_RST, 0x701);
        ck_assert_uint_eq(f->n_events, 2);
        /* Held, so that whoever runs the engine keeps reading its socket for these RSTs. */
        ck_assert(!coap_engine_is_idle(f->engine));
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), f->now + MS(6000));
        fake_advance_to(f, f->now + MS(6000));
        ck_assert(coap_engine_is_idle(f->engine));
        /* Unknown now: still an RST. */
        notify(f, &reg, COAP_TYPE_CON, 0x702, COAP_CODE_CONTENT, 4, "d");
        assert_last_tx_empty(f, COAP_TYPE_RST, 0x702);
        ck_assert_uint_eq(f->n_events, 2);
        fake_env_free(f);
}
END_TEST

/* A registration cancelled before any notification came leaves nothing to answer for. */
START_TEST(test_observe_cancel_unanswered) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        ck_assert_int_eq(f->events[0].ev.result, -ECANCELED);
        ck_assert(coap_engine_is_idle(f->engine));
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

/* Zephyr: a second registration for the same resource on one client is -EALREADY. */
START_TEST(test_observe_twice) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);
        CoapOption opt = {.number = COAP_OPTION_OBSERVE, .len = 0, .value = observe0};
        CoapRequestSpec spec = fake_spec(2, "obs?q=1");
        CoapAddr other = {.len = sizeof(struct sockaddr_in)};
        size_t n_tx = f->n_tx;

        spec.options = &opt;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EALREADY);
        ck_assert_uint_eq(f->n_tx, n_tx);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        /* Another client, query, path or destination, or a plain GET: allowed. */
        spec.owner = 9;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        spec.owner = 1;
        spec.id = 3;
        spec.path = "obs?q=2";
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        spec.id = 4;
        spec.path = "obs";
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        spec.id = 5;
        spec.path = "obs?q=1";
        other.ss.ss_family = AF_INET;
        spec.dest = &other;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        spec.id = 6;
        spec.dest = NULL;
        spec.n_options = 0;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        /* Once the first has ended, the resource may be observed again. */
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        spec.id = 7;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_deregister_con) {
        CoapMsg reg, m;
        FakeEnv *f = start_observe(true, 6, &reg);

        assert_refused_unless_observing(f, coap_engine_deregister_observe);
        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), 0);
        assert_registration_again(f, &reg, COAP_TYPE_CON, COAP_OBSERVE_DEREGISTER, &m);
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), -EINVAL);
        /* It is retransmitted like any CON. */
        assert_retransmitted(f);
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, "last", 4);
        ck_assert_uint_eq(f->n_events, 3);
        ck_assert_uint_eq(f->events[2].ev.id, 1);
        ck_assert_int_eq(f->events[2].ev.result, COAP_CODE_CONTENT);
        ck_assert(f->events[2].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_deregister_non) {
        CoapMsg reg, m;
        FakeEnv *f = start_observe(false, 6, &reg);

        ck_assert_uint_eq(reg.type, COAP_TYPE_NON);
        notify(f, &reg, COAP_TYPE_NON, 0x800, COAP_CODE_CONTENT, 1, "a");
        assert_notification(f, 0, "a");
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), 0);
        assert_registration_again(f, &reg, COAP_TYPE_NON, COAP_OBSERVE_DEREGISTER, &m);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, -ECANCELED);
        ck_assert(f->events[1].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_deregister_send_error) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        fake_send_fail(f, -ENETDOWN);
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), -ENETDOWN);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, -ENETDOWN);
        ck_assert(f->events[1].ev.final);
        fake_env_free(f);
}
END_TEST

/* The registration again on its token, with a new MID; the answer is one more notification. */
START_TEST(test_observe_reregister_con) {
        CoapMsg reg, m;
        FakeEnv *f = start_observe(true, 6, &reg);

        assert_refused_unless_observing(f, coap_engine_reregister_observe);
        /* The registration waits for its answer. */
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), -EBUSY);

        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 5, "a");
        assert_notification(f, 1, "a");
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        assert_registration_again(f, &reg, COAP_TYPE_CON, 0, &m);
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), -EBUSY);
        /* Retransmitted byte for byte until answered. */
        assert_retransmitted(f);
        notify(f, &m, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 6, "b");
        assert_notification(f, 2, "b");
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);

        /* An answer older than what was delivered is dropped, but acknowledges the refresh. */
        notify(f, &reg, COAP_TYPE_NON, 0x600, COAP_CODE_CONTENT, 8, "c");
        assert_notification(f, 3, "c");
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        fake_tx_last_msg(f, &m);
        notify(f, &m, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 7, "stale");
        ck_assert_uint_eq(f->n_events, 4);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_reregister_non) {
        CoapMsg reg, m;
        FakeEnv *f = start_observe(false, 6, &reg);

        notify(f, &reg, COAP_TYPE_NON, 0x800, COAP_CODE_CONTENT, 1, "a");
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        assert_registration_again(f, &reg, COAP_TYPE_NON, 0, &m);
        /* Nothing to time: the observation outlives any timeout. */
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        notify(f, &reg, COAP_TYPE_NON, 0x801, COAP_CODE_CONTENT, 2, "b");
        assert_notification(f, 1, "b");
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_env_free(f);
}
END_TEST

/* Unlike deregistering, a refresh that cannot be sent leaves the observation as it was. */
START_TEST(test_observe_reregister_send_error) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        notify(f, &reg, COAP_TYPE_ACK, 0, COAP_CODE_CONTENT, 1, "a");
        fake_send_fail(f, -ENETDOWN);
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), -ENETDOWN);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        notify(f, &reg, COAP_TYPE_NON, 0x900, COAP_CODE_CONTENT, 2, "b");
        assert_notification(f, 1, "b");
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        fake_env_free(f);
}
END_TEST

static void notify_block(FakeEnv *f, const uint8_t *token, CoapType type, uint16_t mid, int64_t seq,
                         uint32_t num, bool more, size_t len) {
        uint8_t st1[4], st2[4];
        CoapOption o[2];
        size_t n = 0;

        if (seq >= 0)
                o[n++] = fake_uint_option(COAP_OPTION_OBSERVE, (uint32_t) seq, st1);
        o[n++] = fake_block_option(COAP_OPTION_BLOCK2, num, more, 4, st2);
        fake_feed(f, type, COAP_CODE_CONTENT, mid, token, o, n, body + num * 256, len);
}

START_TEST(test_observe_blockwise) {
        CoapMsg reg, c1, c2, c3;
        FakeEnv *f = start_observe(true, 4, &reg);
        CoapBlock b;

        notify_block(f, reg.token, COAP_TYPE_ACK, reg.mid, 7, 0, true, 256);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].ev.offset, 0);
        ck_assert(!f->events[0].ev.last_block);
        ck_assert(!f->events[0].ev.final);
        /* The rest comes on its own token, without Observe. */
        fake_tx_last_msg(f, &c1);
        ck_assert(memcmp(c1.token, reg.token, 8) != 0);
        ck_assert(!coap_msg_find_option(&c1, COAP_OPTION_OBSERVE, NULL));
        ck_assert(fake_msg_block(&c1, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, 1);
        notify_block(f, c1.token, COAP_TYPE_ACK, c1.mid, -1, 1, false, 100);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(f->events[1].ev.offset, 256);
        ck_assert_uint_eq(f->events[1].ev.payload_len, 100);
        ck_assert(memcmp(f->events[1].payload, body + 256, 100) == 0);
        ck_assert(f->events[1].ev.last_block);
        ck_assert(!f->events[1].ev.final);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);

        /* The next notification (CON) starts a new retrieval on a new token. */
        notify_block(f, reg.token, COAP_TYPE_CON, 0x900, 8, 0, true, 256);
        ck_assert_uint_eq(f->n_events, 3);
        ck_assert_uint_eq(f->events[2].ev.offset, 0);
        fake_tx_last_msg(f, &c2);
        ck_assert_uint_eq(c2.code, COAP_CODE_GET);
        ck_assert(memcmp(c2.token, c1.token, 8) != 0);
        ck_assert(memcmp(c2.token, reg.token, 8) != 0);

        /* A newer notification arrives meanwhile: it supersedes that retrieval. */
        notify_block(f, reg.token, COAP_TYPE_NON, 0x901, 9, 0, true, 256);
        ck_assert_uint_eq(f->n_events, 4);
        fake_tx_last_msg(f, &c3);
        ck_assert(memcmp(c3.token, c2.token, 8) != 0);
        /* The late answer to the abandoned continuation matches nothing. */
        notify_block(f, c2.token, COAP_TYPE_CON, 0x902, -1, 1, false, 10);
        assert_last_tx_empty(f, COAP_TYPE_RST, 0x902);
        ck_assert_uint_eq(f->n_events, 4);
        notify_block(f, c3.token, COAP_TYPE_ACK, c3.mid, -1, 1, false, 20);
        ck_assert_uint_eq(f->n_events, 5);
        ck_assert_uint_eq(f->events[4].ev.offset, 256);
        ck_assert(f->events[4].ev.last_block);
        ck_assert(!f->events[4].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_continuation_error) {
        CoapMsg reg, c;
        FakeEnv *f = start_observe(true, 4, &reg);

        notify_block(f, reg.token, COAP_TYPE_ACK, reg.mid, 7, 0, true, 256);
        fake_tx_last_msg(f, &c);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_NOT_FOUND, c.mid, c.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, COAP_CODE_NOT_FOUND);
        ck_assert(f->events[1].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        /* The observation is over: a notification gets an RST. */
        notify(f, &reg, COAP_TYPE_NON, 0xa00, COAP_CODE_CONTENT, 8, "x");
        assert_last_tx_empty(f, COAP_TYPE_RST, 0xa00);
        fake_env_free(f);
}
END_TEST

START_TEST(test_observe_registration_timeout) {
        CoapMsg reg;
        FakeEnv *f = start_observe(true, 6, &reg);

        fake_run_until(f, f->now + MS(100000));
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert_uint_eq(f->n_tx, 5);
        fake_env_free(f);
}
END_TEST

/* Echo */

static const CoapOption *echo_option(const char *value) {
        static CoapOption o;

        o = (CoapOption){
                .number = COAP_OPTION_ECHO,
                .len = (uint16_t) strlen(value),
                .value = (const uint8_t *) value,
        };
        return &o;
}

static void assert_echo(const FakeEnv *f, size_t i, const char *value) {
        CoapOption o;
        CoapMsg m;

        fake_tx_msg(f, i, &m);
        if (!value) {
                ck_assert(!coap_msg_find_option(&m, COAP_OPTION_ECHO, NULL));
                return;
        }
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_ECHO, &o));
        ck_assert_uint_eq(o.len, strlen(value));
        ck_assert(memcmp(o.value, value, o.len) == 0);
}

START_TEST(test_echo_retry) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "e");
        CoapMsg first, again;

        spec.method = COAP_CODE_POST;
        spec.payload = (const uint8_t *) "pl";
        spec.payload_len = 2;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &first);
        fake_reply(f, COAP_CODE_UNAUTHORIZED, echo_option("abc"), 1, NULL, 0);
        /* Not delivered: the same request again at once, with Echo and a new MID. */
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(f->n_tx, 2);
        fake_tx_last_msg(f, &again);
        ck_assert_uint_eq(again.code, COAP_CODE_POST);
        ck_assert_uint_ne(again.mid, first.mid);
        ck_assert_uint_eq(again.payload_len, 2);
        assert_echo(f, 1, "abc");
        /* Its retransmissions are byte for byte. */
        fake_advance_to(f, coap_engine_next_deadline(f->engine));
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert(memcmp(f->tx[2].buf, f->tx[1].buf, f->tx[1].len) == 0);
        fake_reply(f, COAP_CODE_CHANGED, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, COAP_CODE_CHANGED);
        ck_assert(f->events[0].ev.final);
        /* The Echo is not carried over to the owner's next request. */
        spec.id = 2;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, f->n_tx - 1, NULL);
        fake_env_free(f);
}
END_TEST

START_TEST(test_echo_retry_limit) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "e");

        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        for (size_t i = 0; i < 4; i++)
                fake_reply(f, COAP_CODE_UNAUTHORIZED, echo_option("x"), 1, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 5);
        ck_assert_uint_eq(f->n_events, 0);
        fake_reply(f, COAP_CODE_UNAUTHORIZED, echo_option("x"), 1, NULL, 0);
        ck_assert_uint_eq(f->n_tx, 5);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, COAP_CODE_UNAUTHORIZED);
        ck_assert(f->events[0].ev.final);
        fake_env_free(f);
}
END_TEST

START_TEST(test_echo_stored_for_owner) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "e");

        spec.owner = 10;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_reply(f, COAP_CODE_CONTENT, echo_option("fresh"), 1, "ok", 2);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, COAP_CODE_CONTENT);

        /* Another owner does not get it. */
        spec.id = 2;
        spec.owner = 11;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, 1, NULL);
        /* The owner's next request carries it, once. */
        spec.id = 3;
        spec.owner = 10;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, 2, "fresh");
        spec.id = 4;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, 3, NULL);

        /* A failed submit does not use it up; drop_owner forgets it. */
        fake_reply(f, COAP_CODE_CONTENT, echo_option("v2"), 1, NULL, 0);
        spec.id = 5;
        fake_send_fail(f, -ENETDOWN);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -ENETDOWN);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, f->n_tx - 1, "v2");
        fake_reply(f, COAP_CODE_CONTENT, echo_option("v3"), 1, NULL, 0);
        coap_engine_drop_owner(f->engine, 10);
        spec.id = 6;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        assert_echo(f, f->n_tx - 1, NULL);
        fake_env_free(f);
}
END_TEST

static Suite *engine_observe_suite(void) {
        Suite *s = suite_create("engine-observe");
        TCase *tc = tcase_create("observe");

        tcase_add_test(tc, test_observe_notifications);
        tcase_add_test(tc, test_observe_ended_by_server);
        tcase_add_test(tc, test_observe_not_supported);
        tcase_add_test(tc, test_observe_cancel);
        tcase_add_test(tc, test_observe_twice);
        tcase_add_test(tc, test_observe_cancel_unanswered);
        tcase_add_test(tc, test_observe_deregister_con);
        tcase_add_test(tc, test_observe_deregister_non);
        tcase_add_test(tc, test_observe_deregister_send_error);
        tcase_add_test(tc, test_observe_reregister_con);
        tcase_add_test(tc, test_observe_reregister_non);
        tcase_add_test(tc, test_observe_reregister_send_error);
        tcase_add_test(tc, test_observe_blockwise);
        tcase_add_test(tc, test_observe_registration_timeout);
        tcase_add_test(tc, test_observe_continuation_error);
        suite_add_tcase(s, tc);

        tc = tcase_create("echo");
        tcase_add_test(tc, test_echo_retry);
        tcase_add_test(tc, test_echo_retry_limit);
        tcase_add_test(tc, test_echo_stored_for_owner);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_observe_suite)
