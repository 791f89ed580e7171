/* SPDX-License-Identifier: MIT */
/* Block2 downloads and Block1 uploads (RFC 7959): one token per body, offsets, size negotiation,
 * Request-Tag, 2.31, 4.13, ETag and short-block checks. */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "check-main.h"
#include "fake-env.h"

static uint8_t body[4096];

static void body_init(void) {
        for (size_t i = 0; i < sizeof(body); i++)
                body[i] = (uint8_t) (i * 7 + i / 256);
}

/* Replies to the last request with Block2 (num, more, szx) carrying body[offset...]. */
static void reply_block2(FakeEnv *f, CoapType type, uint16_t mid, uint32_t num, bool more,
                         uint8_t szx, size_t offset, size_t len, const char *etag) {
        uint8_t st[4];
        CoapOption opts[2] = {fake_block_option(COAP_OPTION_BLOCK2, num, more, szx, st)};
        size_t n = 1;
        CoapMsg req;

        if (etag)
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_ETAG,
                        .len = (uint16_t) strlen(etag),
                        .value = (const uint8_t *) etag,
                };
        fake_tx_last_msg(f, &req);
        fake_feed(f, type, COAP_CODE_CONTENT, type == COAP_TYPE_ACK ? req.mid : mid, req.token,
                  opts, n, body + offset, len);
}

static void assert_block_event(const FakeEnv *f, size_t i, size_t offset, size_t len, bool last) {
        const FakeEvent *ev = &f->events[i];

        ck_assert_int_eq(ev->ev.result, COAP_CODE_CONTENT);
        ck_assert_uint_eq(ev->ev.offset, offset);
        ck_assert_uint_eq(ev->ev.payload_len, len);
        ck_assert(memcmp(ev->payload, body + offset, len) == 0);
        ck_assert(ev->ev.last_block == last);
        ck_assert(ev->ev.final == last);
}

/* The last request is a continuation GET for (num, szx) on the first request's token. */
static void assert_continuation(const FakeEnv *f, uint32_t num, uint8_t szx) {
        CoapMsg first, m;
        CoapBlock b;

        fake_tx_msg(f, 0, &first);
        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.code, COAP_CODE_GET);
        ck_assert(memcmp(m.token, first.token, 8) == 0);
        ck_assert_uint_ne(m.mid, first.mid);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, num);
        ck_assert(!b.more);
        ck_assert_uint_eq(b.szx, szx);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_OBSERVE, NULL));
        ck_assert_ptr_null(m.payload);
}

static FakeEnv *start_get(uint8_t szx) {
        FakeEnv *f = fake_env_new(0x100);
        CoapRequestSpec spec = fake_spec(1, "big");
        CoapMsg m;

        body_init();
        spec.block_szx = szx;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, NULL));
        return f;
}

START_TEST(test_block2_download) {
        FakeEnv *f = start_get(4);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, "e1");
        ck_assert_uint_eq(f->n_events, 1);
        assert_block_event(f, 0, 0, 256, false);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_continuation(f, 1, 4);
        reply_block2(f, COAP_TYPE_ACK, 0, 1, true, 4, 256, 256, "e1");
        assert_block_event(f, 1, 256, 256, false);
        assert_continuation(f, 2, 4);
        reply_block2(f, COAP_TYPE_ACK, 0, 2, false, 4, 512, 100, "e1");
        ck_assert_uint_eq(f->n_events, 3);
        assert_block_event(f, 2, 512, 100, true);
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_server_smaller) {
        FakeEnv *f = start_get(6);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 2, 0, 64, NULL);
        assert_block_event(f, 0, 0, 64, false);
        assert_continuation(f, 1, 2);
        reply_block2(f, COAP_TYPE_ACK, 0, 1, false, 2, 64, 64, NULL);
        assert_block_event(f, 1, 64, 64, true);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_first_block_bigger) {
        FakeEnv *f = start_get(4);

        /* RFC 7959 §2.4: a first block bigger than ours is delivered whole. */
        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 5, 0, 512, NULL);
        assert_block_event(f, 0, 0, 512, false);
        assert_continuation(f, 2, 4);
        reply_block2(f, COAP_TYPE_ACK, 0, 2, true, 4, 512, 256, NULL);
        assert_block_event(f, 1, 512, 256, false);
        assert_continuation(f, 3, 4);
        reply_block2(f, COAP_TYPE_ACK, 0, 3, false, 4, 768, 0, NULL);
        ck_assert_uint_eq(f->events[2].ev.offset, 768);
        ck_assert(f->events[2].ev.final);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_short_block) {
        FakeEnv *f = start_get(4);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 255, NULL);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -EBADMSG);
        ck_assert(f->events[0].ev.final);
        ck_assert_uint_eq(f->n_tx, 1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_etag_change) {
        const char *first[] = {"e1", "e1", NULL};
        const char *second[] = {"e2", NULL, "e1"};

        for (size_t i = 0; i < 3; i++) {
                FakeEnv *f = start_get(4);

                reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, first[i]);
                reply_block2(f, COAP_TYPE_ACK, 0, 1, true, 4, 256, 256, second[i]);
                ck_assert_uint_eq(f->n_events, 2);
                ck_assert_int_eq(f->events[1].ev.result, -EBADMSG);
                ck_assert(f->events[1].ev.final);
                /* No further block is requested. */
                ck_assert_uint_eq(f->n_tx, 2);
                fake_env_free(f);
        }
}
END_TEST

START_TEST(test_block2_wrong_num) {
        FakeEnv *f = start_get(4);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, NULL);
        reply_block2(f, COAP_TYPE_ACK, 0, 2, true, 4, 512, 256, NULL);
        ck_assert_int_eq(f->events[1].ev.result, -EBADMSG);
        fake_env_free(f);

        f = start_get(4);
        reply_block2(f, COAP_TYPE_ACK, 0, 1, true, 4, 256, 256, NULL);
        ck_assert_int_eq(f->events[0].ev.result, -EBADMSG);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_bert_rejected) {
        FakeEnv *f = start_get(4);
        const uint8_t bert = 0x0f; /* NUM 0, M 1, SZX 7 */
        CoapOption o = {.number = COAP_OPTION_BLOCK2, .len = 1, .value = &bert};

        fake_reply(f, COAP_CODE_CONTENT, &o, 1, body, 256);
        ck_assert_int_eq(f->events[0].ev.result, -EINVAL);
        ck_assert(f->events[0].ev.final);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_separate_duplicates) {
        FakeEnv *f = start_get(4);
        CoapMsg m;

        /* Separate CON blocks: each ACKed; a duplicate is ACKed again and not re-delivered. */
        reply_block2(f, COAP_TYPE_CON, 0x500, 0, true, 4, 0, 256, NULL);
        ck_assert_uint_eq(f->n_tx, 3); /* ACK + next request */
        fake_tx_msg(f, 1, &m);
        ck_assert_uint_eq(m.type, COAP_TYPE_ACK);
        ck_assert_uint_eq(m.mid, 0x500);
        assert_continuation(f, 1, 4);
        ck_assert_uint_eq(f->n_events, 1);

        {
                CoapMsg first;
                uint8_t st[4];
                CoapOption o = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 4, st);

                fake_tx_msg(f, 0, &first);
                fake_feed(f, COAP_TYPE_CON, COAP_CODE_CONTENT, 0x500, first.token, &o, 1, body,
                          256);
        }
        ck_assert_uint_eq(f->n_tx, 4);
        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.type, COAP_TYPE_ACK);
        ck_assert_uint_eq(m.mid, 0x500);
        ck_assert_uint_eq(f->n_events, 1);

        /* The continuation is still outstanding and is answered normally. */
        fake_tx_msg(f, 2, &m);
        {
                uint8_t st[4];
                CoapOption o = fake_block_option(COAP_OPTION_BLOCK2, 1, false, 4, st);

                fake_feed(f, COAP_TYPE_ACK, COAP_CODE_CONTENT, m.mid, m.token, &o, 1, body + 256,
                          10);
        }
        ck_assert_uint_eq(f->n_events, 2);
        assert_block_event(f, 1, 256, 10, true);
        fake_env_free(f);
}
END_TEST

START_TEST(test_truncated_response) {
        FakeEnv *f = start_get(4);
        uint8_t buf[2048];
        CoapMsg req, m;
        CoapBlock b;
        size_t len;

        fake_tx_last_msg(f, &req);
        len = fake_build(buf, COAP_TYPE_ACK, COAP_CODE_CONTENT, req.mid, req.token, 8, NULL, 0,
                         body, 300);
        coap_engine_feed(f->engine, buf, len, NULL, true, f->now);
        /* Not delivered: asked again block-wise, at our size, same token. */
        ck_assert_uint_eq(f->n_events, 0);
        ck_assert_uint_eq(f->n_tx, 2);
        fake_tx_last_msg(f, &m);
        ck_assert(memcmp(m.token, req.token, 8) == 0);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, 0);
        ck_assert_uint_eq(b.szx, 4);
        /* Truncated again: give up. */
        len = fake_build(buf, COAP_TYPE_ACK, COAP_CODE_CONTENT, m.mid, m.token, 8, NULL, 0, body,
                         300);
        coap_engine_feed(f->engine, buf, len, NULL, true, f->now);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -EMSGSIZE);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_early_negotiation) {
        FakeEnv *f = fake_env_new(0x100);
        CoapRequestSpec spec = fake_spec(1, "big");
        uint8_t st[4];
        CoapOption early = fake_block_option(COAP_OPTION_BLOCK2, 0, false, 2, st);
        CoapOption o;
        CoapMsg m;
        CoapBlock b;

        body_init();
        spec.options = &early;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        /* The application's Block2 goes out on the first request only. */
        fake_tx_last_msg(f, &m);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.szx, 2);
        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 2, 0, 64, NULL);
        assert_continuation(f, 1, 2);
        fake_tx_last_msg(f, &m);
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_BLOCK2, &o));
        ck_assert_uint_eq(m.n_options, 2); /* Uri-Path + our Block2 */
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_size_shrinks_later) {
        FakeEnv *f = start_get(4);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, NULL);
        assert_continuation(f, 1, 4);
        /* Answered with a smaller block at the same offset: adopted. */
        reply_block2(f, COAP_TYPE_ACK, 0, 2, true, 3, 256, 128, NULL);
        assert_block_event(f, 1, 256, 128, false);
        assert_continuation(f, 3, 3);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_missing_mid_body) {
        FakeEnv *f = start_get(4);

        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, NULL);
        fake_reply(f, COAP_CODE_CONTENT, NULL, 0, "x", 1);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, -EBADMSG);
        fake_env_free(f);

        /* An error code in the middle of a body is delivered as the final answer. */
        f = start_get(4);
        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, NULL);
        fake_reply(f, COAP_CODE_NOT_FOUND, NULL, 0, NULL, 0);
        ck_assert_int_eq(f->events[1].ev.result, COAP_CODE_NOT_FOUND);
        ck_assert(f->events[1].ev.final);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block2_continuation_send_errors) {
        FakeEnv *f = start_get(4);
        uint64_t t = f->now;

        /* A full socket buffer delays the next block by 10 ms; it is not a retransmission. */
        fake_send_fail(f, -EAGAIN);
        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 4, 0, 256, NULL);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(10));
        fake_advance_to(f, t + MS(10));
        ck_assert_uint_eq(f->n_tx, 2);
        assert_continuation(f, 1, 4);
        ck_assert_uint_eq(coap_engine_get_stats(f->engine)->retransmissions, 0);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), t + MS(10) + MS(2000));
        /* A reply to it is matched: the MID is the one sent. */
        fake_send_fail(f, -ENETDOWN);
        reply_block2(f, COAP_TYPE_ACK, 0, 1, true, 4, 256, 256, NULL);
        ck_assert_uint_eq(f->n_events, 3);
        assert_block_event(f, 1, 256, 256, false);
        ck_assert_int_eq(f->events[2].ev.result, -ENETDOWN);
        ck_assert(f->events[2].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

/* Block1 */

/* A PUT of body[0, len) in blocks of szx. */
static CoapRequestSpec upload_spec(size_t len, uint8_t szx) {
        CoapRequestSpec spec = fake_spec(1, "up");

        body_init();
        spec.method = COAP_CODE_PUT;
        spec.payload = body;
        spec.payload_len = len;
        spec.content_format = COAP_CONTENT_FORMAT_JSON;
        spec.block_szx = szx;
        return spec;
}

/* Submits spec with the Request-Tag tag. */
static FakeEnv *start_upload(const CoapRequestSpec *spec, uint64_t tag) {
        FakeEnv *f = fake_env_new(0x200);

        fake_rng_push(f, 0xaaaa); /* token */
        fake_rng_push(f, tag);
        ck_assert_int_eq(coap_engine_submit(f->engine, spec, f->now), 0);
        return f;
}

static FakeEnv *start_put(size_t len, uint8_t szx, uint64_t tag) {
        CoapRequestSpec spec = upload_spec(len, szx);

        return start_upload(&spec, tag);
}

/* Datagram i is block (num, more, szx) of the upload with tag, carrying body[offset, +len). */
static void assert_block1(const FakeEnv *f, size_t i, uint32_t num, bool more, uint8_t szx,
                          size_t offset, size_t len, uint64_t tag, int64_t size1) {
        CoapMsg first, m;
        CoapOption o;
        CoapBlock b;
        uint32_t v;

        fake_tx_msg(f, 0, &first);
        fake_tx_msg(f, i, &m);
        ck_assert_uint_eq(m.code, COAP_CODE_PUT);
        ck_assert(memcmp(m.token, first.token, 8) == 0);
        ck_assert(i == 0 || m.mid != first.mid);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK1, &b));
        ck_assert_uint_eq(b.num, num);
        ck_assert(b.more == more);
        ck_assert_uint_eq(b.szx, szx);
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_REQUEST_TAG, &o));
        ck_assert_uint_eq(o.len, 8);
        ck_assert(memcmp(o.value, &tag, 8) == 0);
        ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_CONTENT_FORMAT, &v), 0);
        ck_assert_uint_eq(v, COAP_CONTENT_FORMAT_JSON);
        if (size1 < 0)
                ck_assert(!coap_msg_find_option(&m, COAP_OPTION_SIZE1, NULL));
        else {
                ck_assert_int_eq(coap_msg_get_uint_option(&m, COAP_OPTION_SIZE1, &v), 0);
                ck_assert_uint_eq(v, size1);
        }
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, NULL));
        ck_assert_uint_eq(m.payload_len, len);
        ck_assert(memcmp(m.payload, body + offset, len) == 0);
}

static void reply_block1(FakeEnv *f, uint8_t code, uint32_t num, bool more, uint8_t szx) {
        uint8_t st[4];
        CoapOption o = fake_block_option(COAP_OPTION_BLOCK1, num, more, szx, st);

        fake_reply(f, code, &o, 1, NULL, 0);
}

static void assert_upload_event(const FakeEnv *f, size_t i, int code, size_t offset, bool last) {
        ck_assert_uint_gt(f->n_events, i);
        ck_assert_int_eq(f->events[i].ev.result, code);
        ck_assert_uint_eq(f->events[i].ev.offset, offset);
        ck_assert(f->events[i].ev.last_block == last);
        ck_assert(f->events[i].ev.final == last);
}

START_TEST(test_block1_upload) {
        FakeEnv *f = start_put(600, 4, 0x1122334455667788);

        assert_block1(f, 0, 0, true, 4, 0, 256, 0x1122334455667788, 600);
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        assert_upload_event(f, 0, COAP_CODE_CONTINUE, 256, false);
        ck_assert_uint_eq(f->n_tx, 2);
        assert_block1(f, 1, 1, true, 4, 256, 256, 0x1122334455667788, -1);
        reply_block1(f, COAP_CODE_CONTINUE, 1, true, 4);
        assert_upload_event(f, 1, COAP_CODE_CONTINUE, 512, false);
        assert_block1(f, 2, 2, false, 4, 512, 88, 0x1122334455667788, -1);
        reply_block1(f, COAP_CODE_CHANGED, 2, false, 4);
        ck_assert_uint_eq(f->n_events, 3);
        assert_upload_event(f, 2, COAP_CODE_CHANGED, 600, true);
        ck_assert_uint_eq(f->n_tx, 3);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_single_message) {
        /* Exactly one block's worth: no Block1 at all. */
        FakeEnv *f = start_put(256, 4, 1);
        CoapMsg m;

        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK1, NULL));
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_REQUEST_TAG, NULL));
        ck_assert_uint_eq(m.payload_len, 256);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_server_smaller) {
        FakeEnv *f = start_put(600, 4, 5);

        /* The server took 256 bytes but wants 128-byte blocks from now on. */
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 3);
        assert_upload_event(f, 0, COAP_CODE_CONTINUE, 256, false);
        assert_block1(f, 1, 2, true, 3, 256, 128, 5, -1);
        reply_block1(f, COAP_CODE_CONTINUE, 2, true, 3);
        assert_upload_event(f, 1, COAP_CODE_CONTINUE, 384, false);
        assert_block1(f, 2, 3, true, 3, 384, 128, 5, -1);
        /* A bigger size later is ignored. */
        reply_block1(f, COAP_CODE_CONTINUE, 3, true, 6);
        assert_block1(f, 3, 4, false, 3, 512, 88, 5, -1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_error_mid_upload) {
        FakeEnv *f = start_put(600, 4, 5);

        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        fake_reply(f, COAP_CODE_BAD_REQUEST, NULL, 0, "no", 2);
        ck_assert_uint_eq(f->n_events, 2);
        assert_upload_event(f, 1, COAP_CODE_BAD_REQUEST, 512, true);
        ck_assert_uint_eq(f->n_tx, 2);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_too_large_renegotiation) {
        FakeEnv *f = start_put(600, 4, 9);

        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        /* 4.13 with a smaller size: start over at 64 bytes, not reported. */
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 0, false, 2);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_uint_eq(f->n_tx, 3);
        assert_block1(f, 2, 0, true, 2, 0, 64, 9, 600);
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 2);
        assert_upload_event(f, 1, COAP_CODE_CONTINUE, 64, false);
        assert_block1(f, 3, 1, true, 2, 64, 64, 9, -1);
        /* 4.13 without a smaller size ends the request. */
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 1, false, 2);
        assert_upload_event(f, 2, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 128, true);
        ck_assert_uint_eq(f->n_tx, 4);
        fake_env_free(f);
}
END_TEST

START_TEST(test_too_large_starts_block1) {
        FakeEnv *f = start_put(200, 6, 0); /* one message */
        CoapMsg m;

        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK1, NULL));
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 0, false, 3);
        ck_assert_uint_eq(f->n_events, 0);
        fake_tx_last_msg(f, &m);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK1, &(CoapBlock){}));
        ck_assert_uint_eq(m.payload_len, 128);
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_REQUEST_TAG, NULL));
        fake_env_free(f);
}
END_TEST

/* A streamed body: body[0, first) submitted, a window of window bytes. */
static FakeEnv *start_stream(size_t first, size_t window, uint8_t szx, uint64_t tag) {
        CoapRequestSpec spec = upload_spec(first, szx);

        spec.stream = true;
        spec.stream_window = window;
        return start_upload(&spec, tag);
}

START_TEST(test_block1_stream) {
        FakeEnv *f = start_stream(300, 600, 4, 7);

        /* No Size1: the size is not known yet. */
        assert_block1(f, 0, 0, true, 4, 0, 256, 7, -1);
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        assert_upload_event(f, 0, COAP_CODE_CONTINUE, 256, false);
        /* 44 bytes are not a block yet, and nothing says whether more come: wait, without a
         * message or a timer. */
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_uint_eq(coap_engine_next_deadline(f->engine), UINT64_MAX);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 1);
        /* A stray response meanwhile asked for nothing. */
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        ck_assert_uint_eq(f->n_events, 1);

        /* 300 + 212 = 512: a full block, but not a byte after it yet. */
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 300, body + 300, 212, false, f->now), 0);
        ck_assert_uint_eq(f->n_tx, 1);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 512, body + 512, 10, false, f->now), 0);
        assert_block1(f, 1, 1, true, 4, 256, 256, 7, -1);
        ck_assert_uint_ne(coap_engine_next_deadline(f->engine), UINT64_MAX);
        /* The window holds the unacknowledged bytes only: 256..522 now, 600 at most. */
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 522, body + 522, 334, false, f->now), 0);
        reply_block1(f, COAP_CODE_CONTINUE, 1, true, 4);
        assert_upload_event(f, 1, COAP_CODE_CONTINUE, 512, false);
        assert_block1(f, 2, 2, true, 4, 512, 256, 7, -1);
        /* The end: the last block goes out as such. */
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 856, body + 856, 44, true, f->now), 0);
        reply_block1(f, COAP_CODE_CONTINUE, 2, true, 4);
        assert_block1(f, 3, 3, false, 4, 768, 132, 7, -1);
        reply_block1(f, COAP_CODE_CHANGED, 3, false, 4);
        assert_upload_event(f, 3, COAP_CODE_CHANGED, 900, true);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 900, NULL, 0, true, f->now), -ENOENT);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_stream_ends_on_a_block) {
        FakeEnv *f = start_stream(512, 1024, 4, 7);

        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        ck_assert_uint_eq(f->n_tx, 1);
        /* An empty end: block 1 turns out to be the last. */
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 512, NULL, 0, true, f->now), 0);
        assert_block1(f, 1, 1, false, 4, 256, 256, 7, -1);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_stream_broken) {
        FakeEnv *f;

        /* More than the window. */
        f = start_stream(300, 600, 4, 7);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 300, body + 300, 301, false, f->now),
                         -ENOBUFS);
        ck_assert_uint_eq(f->n_events, 1);
        ck_assert_int_eq(f->events[0].ev.result, -ENOBUFS);
        ck_assert(f->events[0].ev.final);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);

        /* A gap, and bytes after the end. */
        f = start_stream(300, 600, 4, 7);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 301, body + 301, 1, false, f->now),
                         -EINVAL);
        ck_assert_int_eq(f->events[0].ev.result, -EINVAL);
        fake_env_free(f);
        f = start_stream(300, 600, 4, 7);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 300, body + 300, 1, true, f->now), 0);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 301, body + 301, 1, true, f->now),
                         -EINVAL);
        fake_env_free(f);

        /* Not a stream. */
        f = start_put(600, 4, 5);
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 600, body, 1, true, f->now), -EINVAL);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_stream_too_large) {
        FakeEnv *f = start_stream(300, 600, 4, 7);

        /* 4.13 on the first block: the beginning is still there, start over smaller. */
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 0, false, 3);
        assert_block1(f, 1, 0, true, 3, 0, 128, 7, -1);
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 3);
        assert_block1(f, 2, 1, true, 3, 128, 128, 7, -1);
        reply_block1(f, COAP_CODE_CONTINUE, 1, true, 3);
        /* Later the beginning is gone: the 4.13 is the answer. */
        ck_assert_int_eq(coap_engine_append(f->engine, 1, 300, body + 300, 100, false, f->now), 0);
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 2, false, 2);
        assert_upload_event(f, 2, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 384, true);
        fake_env_free(f);
}
END_TEST

START_TEST(test_block1_stream_invalid_spec) {
        FakeEnv *f = fake_env_new(0x200);
        CoapRequestSpec spec = upload_spec(0, 4);

        spec.stream = true;
        spec.stream_window = 1024;
        /* One block is not enough to know it is not the last. */
        spec.payload_len = 256;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        spec.payload_len = 1025;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), -EINVAL);
        fake_env_free(f);
}
END_TEST

/* A 2.04 to the last block that starts a body of several blocks: the rest is fetched with
 * Block2 on requests like the last upload request, without its body (RFC 7959 §3.3). */
START_TEST(test_block1_response_with_more_body) {
        FakeEnv *f = start_put(300, 4, 5);
        uint8_t st1[4], st2[4];
        CoapOption o[2];
        CoapMsg first, m;
        CoapBlock b;

        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        assert_block1(f, 1, 1, false, 4, 256, 44, 5, -1);
        o[0] = fake_block_option(COAP_OPTION_BLOCK1, 1, false, 4, st1);
        o[1] = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 3, st2);
        fake_reply(f, COAP_CODE_CHANGED, o, 2, body, 128);
        ck_assert_uint_eq(f->n_events, 2);
        ck_assert_int_eq(f->events[1].ev.result, COAP_CODE_CHANGED);
        ck_assert_uint_eq(f->events[1].ev.offset, 0);
        ck_assert_uint_eq(f->events[1].ev.payload_len, 128);
        ck_assert(!f->events[1].ev.last_block && !f->events[1].ev.final);

        /* The same method, token and Uri-Path; no payload, Block1, Size1, Request-Tag or
         * Content-Format. */
        ck_assert_uint_eq(f->n_tx, 3);
        fake_tx_msg(f, 0, &first);
        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.code, COAP_CODE_PUT);
        ck_assert(memcmp(m.token, first.token, 8) == 0);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, 1);
        ck_assert_uint_eq(b.szx, 3);
        ck_assert(coap_msg_find_option(&m, COAP_OPTION_URI_PATH, NULL));
        ck_assert_uint_eq(m.n_options, 2);
        ck_assert_uint_eq(m.payload_len, 0);

        o[0] = fake_block_option(COAP_OPTION_BLOCK2, 1, true, 3, st2);
        fake_reply(f, COAP_CODE_CHANGED, o, 1, body + 128, 128);
        o[0] = fake_block_option(COAP_OPTION_BLOCK2, 2, false, 3, st2);
        fake_reply(f, COAP_CODE_CHANGED, o, 1, body + 256, 7);
        ck_assert_uint_eq(f->n_events, 4);
        ck_assert_uint_eq(f->events[2].ev.offset, 128);
        ck_assert(memcmp(f->events[2].payload, body + 128, 128) == 0);
        ck_assert_uint_eq(f->events[3].ev.offset, 256);
        ck_assert_uint_eq(f->events[3].ev.payload_len, 7);
        ck_assert(f->events[3].ev.last_block && f->events[3].ev.final);
        ck_assert_uint_eq(f->n_tx, 4);
        ck_assert_uint_eq(coap_engine_n_requests(f->engine), 0);
        fake_env_free(f);
}
END_TEST

/* A 4.13 while the response body is fetched does not restart the finished upload. */
START_TEST(test_block1_then_block2_too_large) {
        FakeEnv *f = start_put(300, 4, 5);
        uint8_t st1[4], st2[4];
        CoapOption o[2];

        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        o[0] = fake_block_option(COAP_OPTION_BLOCK1, 1, false, 4, st1);
        o[1] = fake_block_option(COAP_OPTION_BLOCK2, 0, true, 4, st2);
        fake_reply(f, COAP_CODE_CHANGED, o, 2, body, 256);
        reply_block1(f, COAP_CODE_REQUEST_ENTITY_TOO_LARGE, 0, false, 2);
        ck_assert_uint_eq(f->n_events, 3);
        ck_assert_int_eq(f->events[2].ev.result, COAP_CODE_REQUEST_ENTITY_TOO_LARGE);
        ck_assert(f->events[2].ev.final);
        ck_assert_uint_eq(f->n_tx, 3);
        fake_env_free(f);
}
END_TEST

/* Early negotiation asked by the request: Block2 NUM 0 with its size on the first request
 * only; an application's own Block2 wins. */
START_TEST(test_block2_early_flag) {
        FakeEnv *f = fake_env_new(0x100);
        CoapRequestSpec spec = fake_spec(1, "big");
        uint8_t st[4];
        CoapOption app = fake_block_option(COAP_OPTION_BLOCK2, 0, false, 1, st);
        CoapMsg m;
        CoapBlock b;

        body_init();
        spec.block_szx = 2;
        spec.block2_early = true;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, 0);
        ck_assert(!b.more);
        ck_assert_uint_eq(b.szx, 2);
        reply_block2(f, COAP_TYPE_ACK, 0, 0, true, 2, 0, 64, NULL);
        assert_block_event(f, 0, 0, 64, false);
        assert_continuation(f, 1, 2);
        reply_block2(f, COAP_TYPE_ACK, 0, 1, false, 2, 64, 10, NULL);
        assert_block_event(f, 1, 64, 10, true);

        /* The same with an application Block2: sent as it is, once. */
        spec.id = 2;
        spec.options = &app;
        spec.n_options = 1;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert_uint_eq(m.n_options, 2);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.szx, 1);

        /* Off: no Block2 on the first request. */
        spec.id = 3;
        spec.options = NULL;
        spec.n_options = 0;
        spec.block2_early = false;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, NULL));
        fake_env_free(f);
}
END_TEST

/* With an upload, the early Block2 goes on the last Block1 request (RFC 7959 §3.3, figure 9). */
START_TEST(test_block2_early_flag_upload) {
        FakeEnv *f = fake_env_new(0x200);
        CoapRequestSpec spec = upload_spec(600, 4);
        CoapMsg m;
        CoapBlock b;

        spec.method = COAP_CODE_POST;
        spec.block2_early = true;
        ck_assert_int_eq(coap_engine_submit(f->engine, &spec, f->now), 0);
        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, NULL));
        reply_block1(f, COAP_CODE_CONTINUE, 0, true, 4);
        fake_tx_last_msg(f, &m);
        ck_assert(!coap_msg_find_option(&m, COAP_OPTION_BLOCK2, NULL));
        reply_block1(f, COAP_CODE_CONTINUE, 1, true, 4);
        fake_tx_last_msg(f, &m);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK1, &b));
        ck_assert(!b.more);
        ck_assert(fake_msg_block(&m, COAP_OPTION_BLOCK2, &b));
        ck_assert_uint_eq(b.num, 0);
        ck_assert_uint_eq(b.szx, 4);
        fake_env_free(f);
}
END_TEST

static Suite *engine_block_suite(void) {
        Suite *s = suite_create("engine-block");
        TCase *tc = tcase_create("block2");

        tcase_add_test(tc, test_block2_download);
        tcase_add_test(tc, test_block2_server_smaller);
        tcase_add_test(tc, test_block2_first_block_bigger);
        tcase_add_test(tc, test_block2_short_block);
        tcase_add_test(tc, test_block2_etag_change);
        tcase_add_test(tc, test_block2_wrong_num);
        tcase_add_test(tc, test_block2_bert_rejected);
        tcase_add_test(tc, test_block2_separate_duplicates);
        tcase_add_test(tc, test_truncated_response);
        tcase_add_test(tc, test_block2_early_negotiation);
        tcase_add_test(tc, test_block2_early_flag);
        tcase_add_test(tc, test_block2_size_shrinks_later);
        tcase_add_test(tc, test_block2_missing_mid_body);
        tcase_add_test(tc, test_block2_continuation_send_errors);
        suite_add_tcase(s, tc);

        tc = tcase_create("block1");
        tcase_add_test(tc, test_block1_upload);
        tcase_add_test(tc, test_block1_single_message);
        tcase_add_test(tc, test_block1_server_smaller);
        tcase_add_test(tc, test_block1_error_mid_upload);
        tcase_add_test(tc, test_block1_too_large_renegotiation);
        tcase_add_test(tc, test_too_large_starts_block1);
        tcase_add_test(tc, test_block1_response_with_more_body);
        tcase_add_test(tc, test_block1_then_block2_too_large);
        tcase_add_test(tc, test_block2_early_flag_upload);
        tcase_add_test(tc, test_block1_stream);
        tcase_add_test(tc, test_block1_stream_ends_on_a_block);
        tcase_add_test(tc, test_block1_stream_broken);
        tcase_add_test(tc, test_block1_stream_too_large);
        tcase_add_test(tc, test_block1_stream_invalid_spec);
        suite_add_tcase(s, tc);
        return s;
}

DEFINE_CHECK_MAIN(engine_block_suite)
