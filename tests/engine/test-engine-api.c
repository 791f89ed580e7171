/* SPDX-License-Identifier: MIT */
/* Owners, fail_all, fail_dest, and re-entrant calls from event handlers. */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

static void submit(FakeEnv *f, uint64_t id, uint64_t owner) {
        CoapRequestSpec spec = fake_spec(id, "r");

        spec.owner = owner;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
}

START_TEST(test_cancel_owner) {
        FakeEnv *f = fake_env_new(1);

        submit(f, 1, 7);
        submit(f, 2, 8);
        submit(f, 3, 7);
        submit(f, 4, 7);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 7), 3);
        ck_assert_uint_eq(coap_engine_cancel_owner(f->engine, 7, f->now), 3);
        ck_assert_uint_eq(f->n_events, 3);
        for (size_t i = 0; i < 3; i++) {
                ck_assert_uint_eq(f->events[i].ev.owner, 7);
                ck_assert_int_eq(f->events[i].ev.result, -ECANCELED);
                ck_assert(f->events[i].ev.final);
        }
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 7), 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        ck_assert_uint_eq(coap_engine_cancel_owner(f->engine, 7, f->now), 0);
        ck_assert_uint_eq(coap_engine_cancel_owner(f->engine, 99, f->now), 0);
        fake_env_free(f);
}
END_TEST

static void hook_resubmit(FakeEnv *f, const CoapEvent *ev) {
        /* Every cancelled request comes back under a new id, from inside the handler. */
        if (ev->result == -ECANCELED)
                submit(f, ev->id + 100, ev->owner);
}

START_TEST(test_cancel_owner_reentrant_submit) {
        FakeEnv *f = fake_env_new(1);

        submit(f, 1, 7);
        submit(f, 2, 7);
        f->hook = hook_resubmit;
        ck_assert_uint_eq(coap_engine_cancel_owner(f->engine, 7, f->now), 2);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 7), 2);
        f->hook = NULL;
        ck_assert_int_eq(coap_engine_cancel(f->engine, 101, f->now), 0);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 102, f->now), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_drop_owner) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg m;

        submit(f, 1, 7);
        fake_tx_last_msg(f, &m);
        submit(f, 2, 8);
        coap_engine_drop_owner(f->engine, 7);
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(coap_engine_n_requests_of(f->engine, 7), 0);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), -ENOENT);
        /* Its responses now match nothing. */
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x77, m.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 0);
        coap_engine_drop_owner(f->engine, 99);
        fake_run_until(f, f->now + MS(100000));
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->events[0].ev.id, 2);
        fake_env_free(f);
}
END_TEST

START_TEST(test_fail_all) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg m;

        submit(f, 1, 7);
        submit(f, 2, 8);
        /* 3 completed with a separate response: held, not live. */
        submit(f, 3, 8);
        fake_tx_last_msg(f, &m);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x50, m.token, NULL, 0, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        coap_engine_fail_all(f->engine, -EIO, f->now);
        ck_assert_uint_eq(f->n_events, 3);
        ck_assert_int_eq(f->events[1].ev.result, -EIO);
        ck_assert_int_eq(f->events[2].ev.result, -EIO);
        ck_assert(f->events[1].ev.final && f->events[2].ev.final);
        ck_assert_uint_eq(fake_n_final(f, 3), 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

static CoapAddr addr4(uint16_t port) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in)};
        struct sockaddr_in *sin = (struct sockaddr_in *) &a.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
}

static void submit_to(FakeEnv *f, uint64_t id, const CoapAddr *dest) {
        CoapRequestSpec spec = fake_spec(id, "r");

        spec.owner = 7;
        spec.dest = dest;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
}

static void hook_submit_to_a(FakeEnv *f, const CoapEvent *ev) {
        CoapAddr a = addr4(1000);

        /* A request to the failed peer from inside the handler is new: it is not failed. */
        if (ev->id == 1)
                submit_to(f, 10, &a);
}

START_TEST(test_fail_dest) {
        FakeEnv *f = fake_env_new(1);
        CoapAddr a = addr4(1000), b = addr4(2000);

        submit_to(f, 1, &a);
        submit_to(f, 2, &b);
        submit_to(f, 3, &a);
        submit_to(f, 4, NULL);
        f->hook = hook_submit_to_a;
        coap_engine_fail_dest(f->engine, &a, -EACCES, f->now);
        f->hook = NULL;
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(f->events[0].ev.id, 1);
        ck_assert_uint_eq(f->events[1].ev.id, 3);
        for (size_t i = 0; i < 2; i++) {
                ck_assert_int_eq(f->events[i].ev.result, -EACCES);
                ck_assert(f->events[i].ev.final && f->events[i].ev.last_block);
        }
        /* b, the connected-socket request and the one submitted meanwhile are still live. */
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 3);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 2, f->now), 0);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 4, f->now), 0);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 10, f->now), 0);
        /* A non-negative error becomes -EIO; nothing left to fail is harmless. */
        submit_to(f, 5, &b);
        coap_engine_fail_dest(f->engine, &b, 0, f->now);
        ck_assert_int_eq(f->events[f->n_events - 1].ev.result, -EIO);
        coap_engine_fail_dest(f->engine, &b, -EIO, f->now);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

static void hook_cancel_self(FakeEnv *f, const CoapEvent *ev) {
        if (!ev->final)
                ck_assert_int_eq(coap_engine_cancel(f->engine, ev->id, f->now), 0);
}

START_TEST(test_cancel_from_own_block_event) {
        FakeEnv *f = fake_env_new(1);
        uint8_t st[4], body[64] = {};
        CoapOption o = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 2, st);

        submit(f, 1, 7);
        f->hook = hook_cancel_self;
        fake_reply(f, COAP_CODE_CONTENT, &o, 1, body, 64);
        /* The block, then exactly one final -ECANCELED; no next block requested. */
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert(!f->events[0].ev.final);
        ck_assert_int_eq(f->events[1].ev.result, -ECANCELED);
        ck_assert(f->events[1].ev.final);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

static void hook_drop_self(FakeEnv *f, const CoapEvent *ev) {
        if (!ev->final)
                coap_engine_drop_owner(f->engine, ev->owner);
}

START_TEST(test_drop_owner_from_event) {
        FakeEnv *f = fake_env_new(1);
        uint8_t st[4], body[64] = {};
        CoapOption o = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 2, st);

        submit(f, 1, 7);
        submit(f, 2, 7);
        f->hook = hook_drop_self;
        fake_reply(f, COAP_CODE_CONTENT, &o, 1, body, 64);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

static void hook_cancel_other_and_reuse_id(FakeEnv *f, const CoapEvent *ev) {
        if (ev->id == 1 && ev->final) {
                ck_assert_int_eq(coap_engine_cancel(f->engine, 2, f->now), 0);
                /* The finished id is free again inside its own final event. */
                submit(f, 1, 7);
        }
}

START_TEST(test_reentrant_final_event) {
        FakeEnv *f = fake_env_new(1);

        submit(f, 1, 7);
        submit(f, 2, 7);
        f->hook = hook_cancel_other_and_reuse_id;
        ck_assert_int_eq(coap_engine_cancel(f->engine, 1, f->now), 0);
        f->hook = NULL;
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_uint_eq(f->events[0].ev.id, 1);
        ck_assert_uint_eq(f->events[1].ev.id, 2);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        ck_assert_int_eq(coap_engine_cancel(f->engine, 2, f->now), -ENOENT);
        fake_env_free(f);
}
END_TEST

static void hook_deregister_self(FakeEnv *f, const CoapEvent *ev) {
        if (!ev->final) {
                ck_assert_int_eq(coap_engine_deregister_observe(f->engine, ev->id, f->now), -EBUSY);
                ck_assert_int_eq(coap_engine_reregister_observe(f->engine, ev->id, f->now), -EBUSY);
        }
}

START_TEST(test_deregister_from_own_event) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "o");
        CoapOption obs = {.number = COAP_OPTION_OBSERVE};
        uint8_t st[4];
        CoapOption seq = fake_uint_option(COAP_OPTION_OBSERVE, 3, st);

        spec.options = &obs;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        f->hook = hook_deregister_self;
        fake_reply(f, COAP_CODE_CONTENT, &seq, 1, NULL, 0);
        ck_assert_uint_eq(f->n_events, 1);
        f->hook = NULL;
        ck_assert_int_eq(coap_engine_reregister_observe(f->engine, 1, f->now), 0);
        fake_reply(f, COAP_CODE_CONTENT, &seq, 1, NULL, 0);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(coap_engine_deregister_observe(f->engine, 1, f->now), 0);
        fake_env_free(f);
}
END_TEST

static void hook_timeout_submit(FakeEnv *f, const CoapEvent *ev) {
        if (ev->result == -ETIMEDOUT && ev->id < 5)
                submit(f, ev->id + 1, 7);
}

START_TEST(test_submit_from_timeout) {
        FakeEnv *f = fake_env_new(1);
        CoapRequestSpec spec = fake_spec(1, "r");

        spec.params = fake_params(1000, 0);
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        f->hook = hook_timeout_submit;
        fake_advance_to(f, f->now + MS(1000));
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        fake_run_until(f, f->now + MS(1000000));
        ck_assert_uint_eq(f->n_events, 5);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_free_with_live_and_held) {
        FakeEnv *f = fake_env_new(1);
        CoapMsg m;

        submit(f, 1, 7);
        submit(f, 2, 7);
        fake_tx_last_msg(f, &m);
        fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x50, m.token, NULL, 0, NULL, 0);
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, NULL, 0);
        /* Freed without events (checked for leaks under ASan and valgrind). */
        ck_assert_uint_eq(f->n_events, 1);
        fake_env_free(f);
}
END_TEST

static Suite *engine_api_suite(void) {
        Suite *s = suite_create("engine-api");
        TCase *tc = tcase_create("api");

        tcase_add_test(tc, test_cancel_owner);
        tcase_add_test(tc, test_cancel_owner_reentrant_submit);
        tcase_add_test(tc, test_drop_owner);
        tcase_add_test(tc, test_fail_all);
        tcase_add_test(tc, test_fail_dest);
        tcase_add_test(tc, test_cancel_from_own_block_event);
        tcase_add_test(tc, test_drop_owner_from_event);
        tcase_add_test(tc, test_reentrant_final_event);
        tcase_add_test(tc, test_deregister_from_own_event);
        tcase_add_test(tc, test_submit_from_timeout);
        tcase_add_test(tc, test_free_with_live_and_held);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_api_suite)
