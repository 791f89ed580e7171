/* SPDX-License-Identifier: MIT */
/* Pausing an owner's Block2 downloads (coap_engine_pause_owner/resume_owner): the daemon's flow
 * control for callers that do not read their Response signals. */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

#define OWNER 7

static uint8_t body[1024];

/* Answers the last request with block num (size 256, szx 4) of body. */
static void reply_block(FakeEnv *f, uint32_t num, bool more) {
        uint8_t st[4];
        CoapOption opt = fake_block_option(COAP_OPTION_BLOCK2, num, more, 4, st);

        fake_reply(f, COAP_CODE_CONTENT, &opt, 1, body + num * 256, 256);
}

static FakeEnv *start_get(uint64_t id) {
        FakeEnv *f = fake_env_new(0x100);
        CoapRequestSpec spec = fake_spec(id, "big");

        for (size_t i = 0; i < sizeof(body); i++)
                body[i] = (uint8_t) (i * 13);
        spec.owner = OWNER;
        spec.block_szx = 4;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        return f;
}

static void assert_asks_block(const FakeEnv *f, uint32_t num) {
        CoapMsg m;
        CoapBlock b;

        fake_tx_last_msg(f, &m);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, num);
}

static void pause_hook(FakeEnv *f, const CoapEvent *ev) {
        ck_assert_uint_ge(coap_engine_pause_owner(f->engine, ev->owner), 1);
}

START_TEST(test_pause_in_handler_holds) {
        FakeEnv *f = start_get(1);

        f->hook = pause_hook;
        reply_block(f, 0, true);
        f->hook = NULL;
        /* The block was delivered, the next one not asked for, and nothing is pending. */
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        /* A duplicate of the answer is not taken for the next block. */
        reply_block(f, 0, true);
        ck_assert_uint_eq(f->n_events, 1);

        f->now = MS(5000);
        coap_engine_resume_owner(f->engine, OWNER, f->now);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_asks_block(f, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), MS(5000) + MS(2000));
        reply_block(f, 1, true);
        assert_asks_block(f, 2);
        reply_block(f, 2, true);
        reply_block(f, 3, false);
        ck_assert_uint_eq(f->n_events, 4);
        ck_assert(f->events[3].ev.final);
        ck_assert_uint_eq(f->events[3].ev.offset, 768);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_pause_only_live_owners) {
        FakeEnv *f = fake_env_new(0x100);
        CoapRequestSpec spec = fake_spec(1, "big");

        /* Nothing to pause: a later request starts unpaused. */
        ck_assert_uint_eq(coap_engine_pause_owner(f->engine, OWNER), 0);
        spec.owner = OWNER;
        spec.block_szx = 4;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        reply_block(f, 0, true);
        assert_asks_block(f, 1);

        /* Paused while live; the state ends with the last live request. */
        ck_assert_uint_eq(coap_engine_pause_owner(f->engine, OWNER), 1);
        ck_assert_uint_eq(coap_engine_pause_owner(f->engine, OWNER + 1), 0);
        reply_block(f, 1, true);
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        ck_assert_uint_eq(f->n_events, 3);
        ck_assert_int_eq(f->events[2].ev.result, -ECANCELED);
        ck_assert(f->events[2].ev.final);
        coap_engine_resume_owner(f->engine, OWNER, f->now);
        ck_assert_uint_eq(f->n_tx, 2);

        spec.id = 2;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        reply_block(f, 0, true);
        assert_asks_block(f, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_resume_send_error) {
        FakeEnv *f = start_get(1);
        CoapRequestSpec spec = fake_spec(2, "other");

        spec.owner = OWNER;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        /* Request 1's answer: the first request sent, found by its token. */
        f->hook = pause_hook;
        {
                uint8_t st[4];
                CoapOption opt = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 4, st);
                CoapMsg req;

                fake_tx_msg(f, 0, &req);
                fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, &opt, 1, body,
                          256);
        }
        f->hook = NULL;
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 2);

        fake_send_fail(f, -EIO);
        coap_engine_resume_owner(f->engine, OWNER, f->now);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(f->events[1].ev.id, 1);
        ck_assert_int_eq(f->events[1].ev.result, -EIO);
        ck_assert(f->events[1].ev.final);
        /* The other request is untouched. */
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, OWNER), 1);
        fake_env_free(f);
}
END_TEST

static Suite *pause_suite(void) {
        Suite *s = suite_create("engine-pause");
        TCase *tc = tcase_create("pause");

        tcase_add_test(tc, test_pause_in_handler_holds);
        tcase_add_test(tc, test_pause_only_live_owners);
        tcase_add_test(tc, test_resume_send_error);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(pause_suite)
