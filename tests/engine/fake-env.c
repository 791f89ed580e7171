/* SPDX-License-Identifier: MIT */
#include "fake-env.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coap-option.h"

static int fake_send(void *userdata, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        FakeEnv *f = userdata;
        FakeTx *t;

        ck_assert_ptr_nonnull(dest);
        if (f->n_send_errors > 0) {
                int r = f->send_errors[0];

                memmove(f->send_errors, f->send_errors + 1,
                        --f->n_send_errors * sizeof(f->send_errors[0]));
                return r;
        }
        if (f->n_tx == f->cap_tx) {
                f->cap_tx = f->cap_tx ? 2 * f->cap_tx : 64;
                f->tx = realloc(f->tx, f->cap_tx * sizeof(FakeTx));
                ck_assert_ptr_nonnull(f->tx);
        }
        t = &f->tx[f->n_tx++];
        *t = (FakeTx){.dest = *dest, .len = len, .at = f->now, .buf = malloc(len)};
        ck_assert_ptr_nonnull(t->buf);
        memcpy(t->buf, buf, len);
        return 0;
}

static void fake_event(void *userdata, const CoapEvent *ev) {
        FakeEnv *f = userdata;
        FakeEvent *r;

        if (f->n_events == f->cap_events) {
                f->cap_events = f->cap_events ? 2 * f->cap_events : 64;
                f->events = realloc(f->events, f->cap_events * sizeof(FakeEvent));
                ck_assert_ptr_nonnull(f->events);
        }
        r = &f->events[f->n_events++];
        *r = (FakeEvent){.ev = *ev, .has_msg = ev->msg != NULL, .at = f->now};
        r->ev.msg = NULL;
        r->ev.source = NULL;
        if (ev->source)
                r->source = *ev->source;
        if (ev->msg)
                r->type = ev->msg->type;
        if (ev->payload) {
                r->payload = malloc(ev->payload_len + 1);
                ck_assert_ptr_nonnull(r->payload);
                memcpy(r->payload, ev->payload, ev->payload_len);
                r->ev.payload = r->payload;
        }
        if (f->hook)
                f->hook(f, ev);
}

/* splitmix64: distinct values after the script runs out. */
static uint64_t fake_random(void *userdata) {
        FakeEnv *f = userdata;
        uint64_t z;

        f->rng_calls++;
        if (f->rng_pos < f->rng_n)
                return f->rng_script[f->rng_pos++];
        z = (f->rng_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

FakeEnv *fake_env_new(uint64_t mid_seed) {
        FakeEnv *f = calloc(1, sizeof(FakeEnv));

        ck_assert_ptr_nonnull(f);
        f->env = (CoapEngineEnv){
                .send = fake_send,
                .event = fake_event,
                .random_u64 = fake_random,
                .stats = &f->stats,
        };
        f->now = MS(1000);
        fake_rng_push(f, mid_seed);
        ck_assert_int_eq(coap_engine_new(&f->env, f, f->now, &f->engine), 0);
        return f;
}

void fake_clear(FakeEnv *f) {
        for (size_t i = 0; i < f->n_tx; i++)
                free(f->tx[i].buf);
        for (size_t i = 0; i < f->n_events; i++)
                free(f->events[i].payload);
        f->n_tx = f->n_events = 0;
}

void fake_env_free(FakeEnv *f) {
        coap_engine_free(f->engine);
        fake_clear(f);
        free(f->tx);
        free(f->events);
        free(f);
}

void fake_rng_push(FakeEnv *f, uint64_t v) {
        ck_assert_uint_lt(f->rng_n, sizeof(f->rng_script) / sizeof(f->rng_script[0]));
        f->rng_script[f->rng_n++] = v;
}

void fake_send_fail(FakeEnv *f, int error) {
        ck_assert_uint_lt(f->n_send_errors, sizeof(f->send_errors) / sizeof(f->send_errors[0]));
        f->send_errors[f->n_send_errors++] = error;
}

void fake_tx_msg(const FakeEnv *f, size_t i, CoapMsg *ret) {
        ck_assert_uint_lt(i, f->n_tx);
        ck_assert_int_eq(coap_msg_parse(f->tx[i].buf, f->tx[i].len, ret, NULL), 0);
}

const FakeTx *fake_tx_last(const FakeEnv *f) {
        ck_assert_uint_gt(f->n_tx, 0);
        return &f->tx[f->n_tx - 1];
}

void fake_tx_last_msg(const FakeEnv *f, CoapMsg *ret) {
        fake_tx_msg(f, f->n_tx - 1, ret);
}

CoapTxParams fake_params(uint32_t ack_ms, uint8_t max_retransmission) {
        return (CoapTxParams){
                .ack_timeout_ms = ack_ms,
                .ack_random_percent = 100,
                .backoff_percent = 200,
                .max_retransmission = max_retransmission,
        };
}

CoapRequestSpec fake_spec(uint64_t id, const char *path) {
        return (CoapRequestSpec){
                .id = id,
                .owner = 1,
                .method = COAP_CODE_GET,
                .confirmable = true,
                .path = path,
                .content_format = -1,
                .params = fake_params(2000, 4),
                .block_szx = 6,
        };
}

size_t fake_build(uint8_t *buf, CoapType type, uint8_t code, uint16_t mid, const uint8_t *token,
                  uint8_t tkl, const CoapOption *opts, size_t n_opts, const void *payload,
                  size_t payload_len) {
        CoapOption sorted[32];
        CoapBuilder b;
        size_t len;

        ck_assert_uint_le(n_opts, 32);
        if (n_opts > 0)
                memcpy(sorted, opts, n_opts * sizeof(CoapOption));
        coap_options_sort(sorted, n_opts);
        coap_builder_init(&b, buf, 2048, type, code, mid, token, tkl);
        (void) coap_builder_add_options(&b, sorted, n_opts);
        (void) coap_builder_set_payload(&b, payload, payload_len);
        ck_assert_int_eq(coap_builder_finish(&b, &len), 0);
        return len;
}

void fake_feed_from(FakeEnv *f, const CoapAddr *src, CoapType type, uint8_t code, uint16_t mid,
                    const uint8_t *token, const CoapOption *opts, size_t n_opts,
                    const void *payload, size_t payload_len) {
        uint8_t buf[2048];
        size_t len = fake_build(buf, type, code, mid, token, token ? COAP_TOKEN_MAX : 0, opts,
                                n_opts, payload, payload_len);

        coap_engine_feed(f->engine, buf, len, src, false, f->now);
}

void fake_feed(FakeEnv *f, CoapType type, uint8_t code, uint16_t mid, const uint8_t *token,
               const CoapOption *opts, size_t n_opts, const void *payload, size_t payload_len) {
        fake_feed_from(f, NULL, type, code, mid, token, opts, n_opts, payload, payload_len);
}

void fake_reply(FakeEnv *f, uint8_t code, const CoapOption *opts, size_t n_opts,
                const void *payload, size_t payload_len) {
        CoapMsg req;

        fake_tx_last_msg(f, &req);
        fake_feed(f, COAP_TYPE_ACK, code, req.mid, req.token, opts, n_opts, payload, payload_len);
}

void fake_advance_to(FakeEnv *f, uint64_t t) {
        ck_assert_uint_ge(t, f->now);
        f->now = t;
        coap_engine_tick(f->engine, t);
        ck_assert_uint_gt(coap_engine_next_deadline(f->engine), t);
}

void fake_run_until(FakeEnv *f, uint64_t t) {
        uint64_t d;

        while ((d = coap_engine_next_deadline(f->engine)) <= t)
                fake_advance_to(f, d);
        f->now = t;
}

CoapOption fake_uint_option(uint16_t number, uint32_t value, uint8_t storage[4]) {
        return (CoapOption){
                .number = number,
                .len = (uint16_t) coap_uint_encode(value, storage),
                .value = storage,
        };
}

CoapOption fake_block_option(uint16_t number, uint32_t num, bool more, uint8_t szx,
                             uint8_t storage[4]) {
        CoapBlock b = {.num = num, .more = more, .szx = szx};
        int r = coap_block_encode(&b, storage);

        ck_assert_int_ge(r, 0);
        return (CoapOption){.number = number, .len = (uint16_t) r, .value = storage};
}

bool fake_msg_block(const CoapMsg *m, uint16_t number, CoapBlock *ret) {
        CoapOption o;

        if (!coap_msg_find_option(m, number, &o))
                return false;
        ck_assert_int_eq(coap_block_decode(o.value, o.len, ret), 0);
        return true;
}

size_t fake_n_final(const FakeEnv *f, uint64_t id) {
        size_t n = 0;

        for (size_t i = 0; i < f->n_events; i++)
                if (f->events[i].ev.id == id && f->events[i].ev.final)
                        n++;
        return n;
}
