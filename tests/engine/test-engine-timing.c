/* SPDX-License-Identifier: MIT */
/* Retransmission, backoff and timeouts on the fake clock, to the microsecond. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

/* Expects a retransmission (identical bytes) at each of deadlines[], then -ETIMEDOUT at last. */
static void expect_schedule(FakeEnv *f, const uint64_t *deadlines, size_t n, uint64_t final_at) {
        for (size_t i = 0; i < n; i++) {
                ck_assert_uint_eq(coap_engine_next_deadline(f->engine), deadlines[i]);
                fake_advance_to(f, deadlines[i] - 1);
                ck_assert_uint_eq(f->n_tx, i + 1);
                fake_advance_to(f, deadlines[i]);
                ck_assert_uint_eq(f->n_tx, i + 2);
                ck_assert_uint_eq(f->tx[i + 1].len, f->tx[0].len);
                ck_assert(memcmp(f->tx[i + 1].buf, f->tx[0].buf, f->tx[0].len) == 0);
                ck_assert_uint_eq(f->n_events, 0);
        }
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), final_at);
        fake_advance_to(f, final_at - 1);
        ck_assert_uint_eq(f->n_events, 0);
        fake_advance_to(f, final_at);
        ck_assert_uint_eq(f->n_tx, n + 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert(f->events[0].ev.final);
        ck_assert(f->events[0].ev.last_block);
        ck_assert(!f->events[0].ev.silent);
        ck_assert(!f->events[0].ev.acked);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
}

START_TEST(test_retransmit_no_jitter) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;
        const uint64_t d[] = {t + MS(2000), t + MS(6000), t + MS(14000), t + MS(30000)};
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);

        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        /* random_percent 100: no random draw for the timeout (seed + token only). */
        ck_assert_uint_eq(f->rng_calls, 2);
        expect_schedule(f, d, 4, t + MS(62000));
        ck_assert_uint_eq(st->retransmissions, 4);
        ck_assert_uint_eq(st->timeouts, 1);
        ck_assert_uint_eq(st->messages_sent, 5);
        fake_env_free(f);
}
END_TEST

START_TEST(test_retransmit_pinned_jitter) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now, t0 = MS(2000) + 123456;
        const uint64_t d[] = {t + t0, t + 3 * t0, t + 7 * t0, t + 15 * t0};

        spec.params.ack_random_percent = 150;
        fake_rng_push(f, 77);                    /* token */
        fake_rng_push(f, MS(1000) * 5 + 123456); /* jitter: mod 1 s range */
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        expect_schedule(f, d, 4, t + 31 * t0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_jitter_range) {
        /* T0 stays in [ack, ack * 1.5) whatever the random value. */
        const uint64_t values[] = {0, UINT64_MAX, MS(1000) - 1, MS(1000)};
        const uint64_t expect[] = {MS(2000), MS(2000) + (UINT64_MAX % MS(1000)), MS(3000) - 1,
                                   MS(2000)};

        for (size_t i = 0; i < 4; i++) {
                FakeEnv *f = fake_env_new(1);
                CoapRequestSpec spec = fake_spec(1, "a");

                spec.params.ack_random_percent = 150;
                fake_rng_push(f, 5);
                fake_rng_push(f, values[i]);
                ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
                ck_assert_uint_eq(coap_engine_next_deadline(f->engine), f->now + expect[i]);
                fake_env_free(f);
        }
}
END_TEST

START_TEST(test_backoff_and_count) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;
        const uint64_t d[] = {t + MS(1000), t + MS(2500)};

        spec.params = fake_params(1000, 2);
        spec.params.backoff_percent = 150;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        expect_schedule(f, d, 2, t + MS(2500) + MS(2250));
        fake_env_free(f);
}
END_TEST

START_TEST(test_no_retransmission) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");

        spec.params = fake_params(500, 0);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        expect_schedule(f, NULL, 0, f->now + MS(500));
        fake_env_free(f);
}
END_TEST

START_TEST(test_non_silent_timeout) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;

        spec.confirmable = false;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(2000));
        fake_run_until(f, t + MS(100000));
        /* Never retransmitted; forgotten at T0 with a final event the app must not see. */
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].at, t + MS(2000));
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert(f->events[0].ev.final);
        ck_assert(f->events[0].ev.silent);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->timeouts, 1);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->retransmissions, 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_eagain_retransmission) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);

        spec.params = fake_params(1000, 2);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_send_fail(f, -EAGAIN);
        fake_send_fail(f, -EAGAIN);
        fake_advance_to(f, t + MS(1000));
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(1010));
        fake_advance_to(f, t + MS(1010));
        ck_assert_uint_eq(f->n_tx, 1);
        fake_advance_to(f, t + MS(1020));
        /* Sent late but counted once; the next interval starts at the actual send. */
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_uint_eq(st->retransmissions, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(1020) + MS(2000));
        fake_advance_to(f, t + MS(3020));
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(3020) + MS(4000));
        fake_advance_to(f, t + MS(7020));
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert_uint_eq(st->retransmissions, 2);
        fake_env_free(f);
}
END_TEST

/* A batching socket reports a failed send later: EAGAIN sends the same message again in 10 ms,
 * counted as the transmission it already was; the timeouts then run from that send. */
START_TEST(test_send_failed_eagain) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;
        const CoapEngineStats *st = coap_engine_get_stats(f->engine);
        FakeTx sent;

        spec.params = fake_params(1000, 2);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        ck_assert_uint_eq(st->messages_sent, 1);
        sent = f->tx[0];
        coap_engine_send_failed(f->engine, sent.buf, sent.len, &sent.dest, -EAGAIN, f->now);
        ck_assert_uint_eq(st->messages_sent, 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(10));
        fake_advance_to(f, t + MS(10));
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_mem_eq(f->tx[1].buf, sent.buf, sent.len);
        ck_assert_uint_eq(st->retransmissions, 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(10) + MS(1000));
        fake_advance_to(f, t + MS(1010));
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(st->retransmissions, 1);
        ck_assert_uint_eq(f->n_events, 0);
        fake_env_free(f);
}
END_TEST

/* Another error ends the request with it; an ACK, an older message or another destination's
 * datagram that fails is none of a request's business. */
START_TEST(test_send_failed_error) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        CoapAddr other = {.len = sizeof(struct sockaddr_in)};
        uint8_t ack[4] = {0x60, 0x00, 0x00, 0x00};
        FakeTx sent;

        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        sent = f->tx[0];
        memcpy(ack + 2, sent.buf + 2, 2); /* an empty ACK with the request's MID */
        coap_engine_send_failed(f->engine, ack, sizeof ack, &sent.dest, -ENETUNREACH, f->now);
        other.ss.in.sin_family = AF_INET;
        other.ss.in.sin_port = htons(9);
        coap_engine_send_failed(f->engine, sent.buf, sent.len, &other, -ENETUNREACH, f->now);
        sent.buf[sent.len - 1] ^= 1; /* not the message any more */
        coap_engine_send_failed(f->engine, sent.buf, sent.len, &sent.dest, -ENETUNREACH, f->now);
        sent.buf[sent.len - 1] ^= 1;
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);

        coap_engine_send_failed(f->engine, sent.buf, sent.len, &sent.dest, -ENETUNREACH, f->now);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert(f->events[0].ev.final);
        ck_assert_int_eq(f->events[0].ev.result, -ENETUNREACH);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        /* Reported twice (it cannot be, but): the request is gone. */
        coap_engine_send_failed(f->engine, sent.buf, sent.len, &sent.dest, -ENETUNREACH, f->now);
        ck_assert_uint_eq(f->n_events, 1);
        fake_env_free(f);
}
END_TEST

/* A socket buffer that stays full: the message is tried every 10 ms, 200 times in a row at most
 * (2 s), then the request ends with -EAGAIN; a send that goes through starts the count again. */
START_TEST(test_eagain_gives_up) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        uint64_t t = f->now;
        unsigned tries = 0;

        spec.params = fake_params(1000, 4);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        for (unsigned i = 0; i < 150; i++) {
                fake_send_fail(f, -EAGAIN);
                fake_advance_to(f, coap_engine_next_deadline(f->engine));
        }
        fake_advance_to(f, coap_engine_next_deadline(f->engine)); /* goes through */
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_uint_eq(f->now, t + MS(1000) + 150 * MS(10));
        t = f->now;
        while (f->n_events == 0 && tries < 1000) {
                fake_send_fail(f, -EAGAIN);
                fake_advance_to(f, coap_engine_next_deadline(f->engine));
                tries++;
        }
        ck_assert_uint_eq(tries, 200);
        ck_assert_uint_eq(f->now, t + MS(2000) + 199 * MS(10));
        ck_assert_int_eq(f->events[0].ev.result, -EAGAIN);
        ck_assert(f->events[0].ev.final);
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_send_error_retransmission) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");

        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_send_fail(f, -ENETDOWN);
        fake_advance_to(f, coap_engine_next_deadline(f->engine));
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ENETDOWN);
        ck_assert(f->events[0].ev.final);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

START_TEST(test_many_timeouts) {
        FakeEnv *f = fake_env_new(1);
        const size_t n = 10000;
        uint64_t start = f->now;
        size_t n_owner3 = 0;

        for (size_t i = 0; i < n; i++) {
                CoapRequestSpec spec = fake_spec(i + 1, "many/requests");

                spec.owner = i % 7;
                n_owner3 += spec.owner == 3;
                spec.params = fake_params(1000 + (uint32_t) (i % 13), 2);
                spec.confirmable = i % 3 != 0;
                f->now = start + i;
                ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        }
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), n);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 3), n_owner3);
        fake_run_until(f, start + MS(3600000));
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 3), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(f->n_events, n);
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(f->events[i].ev.result, -ETIMEDOUT);
                ck_assert(f->events[i].ev.final);
        }
        for (size_t i = 0; i < n; i += 997)
                ck_assert_uint_eq(fake_n_final(f, i + 1), 1);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->timeouts, n);
        fake_env_free(f);
}
END_TEST

/* RFC 7252 §4.2: retransmission n goes out between ACK_TIMEOUT * (2^n - 1) and
 * ACK_TIMEOUT * ACK_RANDOM_FACTOR * (2^n - 1) after the first transmission, and the final
 * timeout comes by ACK_TIMEOUT * ACK_RANDOM_FACTOR * (2^(MAX_RETRANSMIT + 1) - 1). A caller that
 * ticks as late as coap_engine_next_latest() allows stays inside that window; one that ticks on
 * the deadline sends at the drawn times. */
static void check_window(uint16_t random_percent, uint64_t jitter, bool late) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        const uint64_t ack = MS(400), hi = ack * random_percent / 100;
        uint64_t t = f->now;

        spec.params = fake_params(400, 4);
        spec.params.ack_random_percent = random_percent;
        fake_rng_push(f, 77); /* token */
        fake_rng_push(f, jitter);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        for (unsigned n = 1; n <= 5; n++) {
                uint64_t deadline = coap_engine_next_deadline(f->engine);
                uint64_t latest = coap_engine_next_latest(f->engine);

                ck_assert_uint_ge(latest, deadline);
                if (random_percent == 100)
                        ck_assert_uint_eq(latest, deadline);
                fake_advance_to(f, late ? latest : deadline);
                ck_assert_uint_ge(f->now - t, ack * ((UINT64_C(1) << n) - 1));
                ck_assert_uint_le(f->now - t, hi * ((UINT64_C(1) << n) - 1));
                if (n < 5) {
                        ck_assert_uint_eq(f->n_tx, n + 1);
                        ck_assert_uint_eq(f->tx[n].at, f->now);
                }
        }
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ETIMEDOUT);
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), UINT64_MAX);
        fake_env_free(f);
}

START_TEST(test_retransmission_window) {
        /* No randomisation: no slack at all. */
        check_window(100, 0, false);
        check_window(100, 0, true);
        /* Factor 2: the drawn T0 near either end of [400 ms, 800 ms). */
        check_window(200, 0, false);
        check_window(200, 0, true);
        check_window(200, MS(400) - 1, false);
        check_window(200, MS(400) - 1, true);
        check_window(150, MS(123), true);
}
END_TEST

/* Waits that send nothing (a separate response, a held exchange) have no bound; a send retried
 * after -EAGAIN has none to spare. */
START_TEST(test_latest_unbounded_waits) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "a");
        CoapMsg m;

        spec.params = fake_params(1000, 2);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_send_fail(f, -EAGAIN);
        fake_advance_to(f, f->now + MS(1000));
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), f->now + MS(10));
        fake_advance_to(f, f->now + MS(10));
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), f->now + MS(2000));
        fake_tx_last_msg(f, &m);
        fake_feed(f, COAP_TYPE_ACK, COAP_CODE_EMPTY, m.mid, NULL, NULL, 0, NULL, 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), f->now + MS(6000));
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), UINT64_MAX);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x4242, m.token, NULL, 0, "x", 1);
        ck_assert_uint_eq(f->n_events, 1);
        /* Held for duplicates: a deadline, no bound. */
        ck_assert_uint_lt(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(coap_engine_next_latest(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

static Suite *engine_timing_suite(void) {
        Suite *s = suite_create("engine-timing");
        TCase *tc = tcase_create("timing");

        tcase_add_test(tc, test_retransmit_no_jitter);
        tcase_add_test(tc, test_retransmit_pinned_jitter);
        tcase_add_test(tc, test_jitter_range);
        tcase_add_test(tc, test_backoff_and_count);
        tcase_add_test(tc, test_no_retransmission);
        tcase_add_test(tc, test_non_silent_timeout);
        tcase_add_test(tc, test_eagain_retransmission);
        tcase_add_test(tc, test_send_error_retransmission);
        tcase_add_test(tc, test_send_failed_eagain);
        tcase_add_test(tc, test_eagain_gives_up);
        tcase_add_test(tc, test_send_failed_error);
        tcase_add_test(tc, test_many_timeouts);
        tcase_add_test(tc, test_retransmission_window);
        tcase_add_test(tc, test_latest_unbounded_waits);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_timing_suite)
