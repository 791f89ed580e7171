/* SPDX-License-Identifier: MIT */
#pragma once

/* A fake world for the engine: a clock variable, captured datagrams, a scripted random source
 * and recorded events. Server datagrams are built with the codec's builder. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap-engine.h"
#include "coap-option.h"

#define MS(x) ((uint64_t) (x) *UINT64_C(1000))

typedef struct FakeTx {
        CoapAddr dest;
        uint8_t *buf;
        size_t len;
        uint64_t at;
} FakeTx;

typedef struct FakeEvent {
        CoapEvent ev; /* payload and msg point into the copies below, msg may be NULL */
        uint8_t *payload;
        bool has_msg;
        uint8_t type; /* of the response */
        uint64_t at;
        CoapAddr source; /* ev.source copied (ev.source points here), len 0: none */
} FakeEvent;

typedef struct FakeEnv FakeEnv;
typedef void (*FakeEventHook)(FakeEnv *f, const CoapEvent *ev);

struct FakeEnv {
        CoapEngine *engine;
        CoapEngineEnv env;
        CoapEngineStats stats;
        uint64_t now;

        FakeTx *tx;
        size_t n_tx, cap_tx;

        FakeEvent *events;
        size_t n_events, cap_events;

        uint64_t rng_script[64];
        size_t rng_n, rng_pos;
        uint64_t rng_state;
        size_t rng_calls;

        int send_errors[16]; /* returned by the next sends, in order */
        size_t n_send_errors;

        FakeEventHook hook; /* runs inside the event callback */
        void *hook_data;
};

/* Engine plus env; the first random value (the MID seed) is seed. */
FakeEnv *fake_env_new(uint64_t mid_seed);
void fake_env_free(FakeEnv *f);

/* The next random values, in order; afterwards a deterministic stream of distinct values. */
void fake_rng_push(FakeEnv *f, uint64_t v);
/* The next sends fail with these errors, in order. */
void fake_send_fail(FakeEnv *f, int error);

/* Parses captured datagram i (aborts the test if it does not parse). */
void fake_tx_msg(const FakeEnv *f, size_t i, CoapMsg *ret);
const FakeTx *fake_tx_last(const FakeEnv *f);
void fake_tx_last_msg(const FakeEnv *f, CoapMsg *ret);
void fake_clear(FakeEnv *f);

/* A spec for a CON GET of path with default parameters and no randomisation. */
CoapRequestSpec fake_spec(uint64_t id, const char *path);
/* Tx params without randomisation: T0 = ack_ms. */
CoapTxParams fake_params(uint32_t ack_ms, uint8_t max_retransmission);

/* Builds a server datagram into buf (cap 2048) and returns its length. */
size_t fake_build(uint8_t *buf, CoapType type, uint8_t code, uint16_t mid, const uint8_t *token,
                  uint8_t tkl, const CoapOption *opts, size_t n_opts, const void *payload,
                  size_t payload_len);
/* Builds and feeds a response; token NULL: none. */
void fake_feed(FakeEnv *f, CoapType type, uint8_t code, uint16_t mid, const uint8_t *token,
               const CoapOption *opts, size_t n_opts, const void *payload, size_t payload_len);
void fake_feed_from(FakeEnv *f, const CoapAddr *src, CoapType type, uint8_t code, uint16_t mid,
                    const uint8_t *token, const CoapOption *opts, size_t n_opts,
                    const void *payload, size_t payload_len);
/* A piggybacked ACK answering the last datagram sent. */
void fake_reply(FakeEnv *f, uint8_t code, const CoapOption *opts, size_t n_opts,
                const void *payload, size_t payload_len);

/* Advances the clock to t and ticks. */
void fake_advance_to(FakeEnv *f, uint64_t t);
/* Ticks at every deadline up to t. */
void fake_run_until(FakeEnv *f, uint64_t t);

/* Option helpers (values in caller storage of at least 4 bytes). */
CoapOption fake_uint_option(uint16_t number, uint32_t value, uint8_t storage[4]);
CoapOption fake_block_option(uint16_t number, uint32_t num, bool more, uint8_t szx,
                             uint8_t storage[4]);
/* The decoded Block option of a message, or false. */
bool fake_msg_block(const CoapMsg *m, uint16_t number, CoapBlock *ret);
/* Number of events with final=true for id. */
size_t fake_n_final(const FakeEnv *f, uint64_t id);
