/* SPDX-License-Identifier: MIT */
/* The input is a little program that drives one engine on a fake clock and network: submit,
 * raw and structured server datagrams, time, cancel, drop, deregister, fail_all, send errors and
 * calls from inside event handlers. Invariants (abort on violation): every event names a live
 * request of its owner; each request that was submitted gets exactly one final event unless its
 * owner was dropped; error events carry no message; the engine's counts match ours; no deadline
 * lies in the past. */

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "coap-engine.h"
#include "coap-option.h"
#include "fuzz.h"

#define check(expr)              \
        do {                     \
                if (!(expr))     \
                        abort(); \
        } while (0)

#define N_IDS    16
#define N_OWNERS 4
#define N_RING   8

typedef struct Fuzz {
        const uint8_t *data;
        size_t size, pos;
        CoapEngine *engine;
        uint64_t now;
        uint64_t rng;
        bool live[N_IDS];
        uint64_t owner[N_IDS];
        uint8_t *ring[N_RING]; /* the last datagrams sent */
        size_t ring_len[N_RING];
        size_t n_sent;
        int send_error;
        unsigned n_send_errors;
        unsigned reentry;
        unsigned depth;
} Fuzz;

static const char *const paths[] = {"", "a", "a/b?q=1&r", "/sensors/temp", "x?y"};
static const uint8_t codes[] = {
        COAP_CODE_CONTENT,
        COAP_CODE_CONTINUE,
        COAP_CODE_CHANGED,
        COAP_CODE_UNAUTHORIZED,
        COAP_CODE_REQUEST_ENTITY_TOO_LARGE,
        COAP_CODE_NOT_FOUND,
        COAP_CODE_INTERNAL_SERVER_ERROR,
        COAP_CODE_EMPTY,
        COAP_CODE_GET,
};
static uint8_t zeros[2048];

static uint8_t next(Fuzz *f) {
        return f->pos < f->size ? f->data[f->pos++] : 0;
}

static CoapAddr server_addr(void) {
        CoapAddr a = {.len = sizeof(struct sockaddr_in)};
        struct sockaddr_in *sin = (struct sockaddr_in *) &a.ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(5683);
        sin->sin_addr.s_addr = htonl(0x7f000001);
        return a;
}

/* 224.0.1.187:5683, All CoAP Nodes: the servers' answers come from server_addr(). */
static CoapAddr group_addr(void) {
        CoapAddr a = server_addr();

        ((struct sockaddr_in *) &a.ss)->sin_addr.s_addr = htonl(0xe00001bb);
        return a;
}

static size_t n_live(const Fuzz *f, bool any_owner, uint64_t owner) {
        size_t n = 0;

        for (size_t i = 0; i < N_IDS; i++)
                n += f->live[i] && (any_owner || f->owner[i] == owner);
        return n;
}

static int fake_send(void *userdata, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        Fuzz *f = userdata;
        size_t slot = f->n_sent % N_RING;

        CoapMsg m;

        check(dest);
        /* Whatever the engine sends must parse. */
        check(coap_msg_parse(buf, len, &m, NULL) == 0);
        if (f->n_send_errors > 0) {
                f->n_send_errors--;
                return f->send_error;
        }
        free(f->ring[slot]);
        f->ring[slot] = malloc(len);
        check(f->ring[slot]);
        memcpy(f->ring[slot], buf, len);
        f->ring_len[slot] = len;
        f->n_sent++;
        return 0;
}

static uint64_t fake_random(void *userdata) {
        Fuzz *f = userdata;
        uint64_t z = (f->rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static void do_submit(Fuzz *f, uint64_t id, uint64_t owner, uint8_t flags, uint8_t szx,
                      const CoapTxParams *params, uint8_t path);

static void fake_event(void *userdata, const CoapEvent *ev) {
        Fuzz *f = userdata;

        check(ev->id < N_IDS);
        check(f->live[ev->id]);
        check(ev->owner == f->owner[ev->id]);
        if (ev->result < 0) {
                check(!ev->msg && !ev->payload && ev->last_block && ev->final);
        } else if (!ev->msg) {
                /* The end of a multicast request's window. */
                check(ev->result == 0 && ev->final && !ev->last_block && !ev->payload &&
                      !ev->source && !ev->silent);
        } else {
                check(ev->msg->code == ev->result);
                check(!ev->silent);
                check((ev->payload == NULL) == (ev->payload_len == 0));
                /* A multicast answer: one of many, from its member. */
                check(!ev->source || (!ev->final && ev->last_block && ev->source->len > 0));
        }
        if (ev->silent)
                check(ev->final && ev->result == -ETIMEDOUT);
        if (ev->final)
                f->live[ev->id] = false;

        if (f->depth > 4)
                return;
        f->depth++;
        switch (f->reentry) {
        case 1:
                if (!ev->final)
                        check(coap_engine_cancel(f->engine, ev->id, f->now) == 0);
                break;
        case 2:
                if (ev->final)
                        (void) coap_engine_cancel_owner(f->engine, ev->owner, f->now);
                break;
        case 3:
                if (ev->final) {
                        CoapTxParams p = COAP_TX_PARAMS_DEFAULT;

                        do_submit(f, (ev->id + 7) % N_IDS, ev->owner, 1, 6, &p, 1);
                }
                break;
        default:
                break;
        }
        f->depth--;
}

static void do_submit(Fuzz *f, uint64_t id, uint64_t owner, uint8_t flags, uint8_t szx,
                      const CoapTxParams *params, uint8_t path) {
        static const size_t payload_sizes[] = {0, 10, 300, 2000};
        const uint8_t observe0 = 0, early_block2 = 2;
        CoapOption opts[2];
        CoapAddr dest = server_addr(), group = group_addr();
        CoapRequestSpec spec = {
                .id = id,
                .owner = owner,
                .method = COAP_CODE_GET,
                .confirmable = flags & 1,
                .path = paths[path % (sizeof(paths) / sizeof(paths[0]))],
                .content_format = (flags & 0x80) ? COAP_CONTENT_FORMAT_CBOR : -1,
                .params = *params,
                .block_szx = szx,
                .dest = (flags & 4) ? &dest : NULL,
                .options = opts,
        };
        bool was_live = f->live[id];
        int r;

        /* The path's high bit: a multicast request (refused when CON, observing or uploading). */
        if (path & 0x80) {
                spec.dest = &group;
                spec.multicast_ms = 100u + (path & 0x3fu) * 10u;
        }
        spec.payload_len = payload_sizes[(flags >> 3) & 3];
        spec.payload = spec.payload_len > 0 ? zeros : NULL;
        if (spec.payload_len > 0)
                spec.method = (flags & 0x20) ? COAP_CODE_PUT : COAP_CODE_POST;
        if (flags & 2)
                opts[spec.n_options++] =
                        (CoapOption){.number = COAP_OPTION_OBSERVE, .len = 1, .value = &observe0};
        if (flags & 0x40)
                opts[spec.n_options++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK2, .len = 1, .value = &early_block2};

        r = coap_engine_submit(f->engine, &spec, f->now);
        /* A bad spec is refused before the id is looked at. */
        check(was_live ? r == -EEXIST || r == -EINVAL : r != -EEXIST);
        if (r == 0) {
                f->live[id] = true;
                f->owner[id] = owner;
        }
}

static void op_submit(Fuzz *f) {
        uint64_t id = next(f) % N_IDS, owner = next(f) % N_OWNERS;
        uint8_t flags = next(f), szx = next(f) % 8, path = next(f);
        CoapTxParams p;

        /* One statement per byte: initializer lists have no evaluation order. */
        p.ack_timeout_ms = 1u + next(f);
        p.ack_random_percent = (uint16_t) (100 + next(f) % 80);
        p.backoff_percent = (uint16_t) (99 + next(f));
        p.max_retransmission = (uint8_t) (next(f) % 5);
        do_submit(f, id, owner, flags, szx, &p, path);
}

/* The n-th last datagram sent, parsed. */
static bool last_sent(Fuzz *f, unsigned back, CoapMsg *ret) {
        size_t slot;

        if (f->n_sent == 0)
                return false;
        back %= (unsigned) (f->n_sent < N_RING ? f->n_sent : N_RING);
        slot = (f->n_sent - 1 - back) % N_RING;
        return coap_msg_parse(f->ring[slot], f->ring_len[slot], ret, NULL) == 0;
}

static void feed(Fuzz *f, const uint8_t *buf, size_t len, bool from_server, bool truncated) {
        CoapAddr src = server_addr();

        coap_engine_feed(f->engine, buf, len, from_server ? &src : NULL, truncated, f->now);
}

static void op_feed_raw(Fuzz *f) {
        uint8_t buf[256];
        size_t len = next(f);
        uint8_t flags;
        CoapMsg req;

        for (size_t i = 0; i < len; i++)
                buf[i] = next(f);
        flags = next(f);
        /* Aim at a live exchange so the parser's output reaches the protocol logic. */
        if ((flags & 1) && len >= 12 && last_sent(f, flags >> 4, &req) && req.token_len == 8) {
                buf[2] = (uint8_t) (req.mid >> 8);
                buf[3] = (uint8_t) req.mid;
                buf[0] = (uint8_t) ((buf[0] & 0xF0) | 8);
                memcpy(buf + 4, req.token, 8);
        }
        feed(f, buf, len, flags & 4, flags & 2);
}

static void op_reply(Fuzz *f) {
        static const uint8_t types[] = {COAP_TYPE_ACK, COAP_TYPE_CON, COAP_TYPE_NON, COAP_TYPE_RST,
                                        COAP_TYPE_ACK};
        uint8_t buf[2200], obs[4], b1[3], b2[3], etag = next(f), echo[2];
        unsigned back = next(f), kind = next(f) % 5;
        uint8_t code = codes[next(f) % sizeof(codes)], flags = next(f), flags2 = next(f);
        CoapOption opts[6];
        size_t n = 0, payload_len = 0, len;
        CoapBuilder b;
        CoapMsg req;
        uint16_t mid;

        if (!last_sent(f, back, &req))
                return;
        mid = (flags2 & 1) ? (uint16_t) (0x4000 + next(f)) : req.mid;
        if (kind >= 3)
                code = COAP_CODE_EMPTY; /* RST or empty ACK */
        if (flags & 2)
                opts[n++] = (CoapOption){.number = COAP_OPTION_ETAG, .len = 1, .value = &etag};
        if (flags & 1)
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_OBSERVE,
                        .len = (uint16_t) coap_uint_encode(next(f), obs),
                        .value = obs,
                };
        if (flags & 4) {
                CoapBlock blk = {.more = flags & 0x20};

                blk.num = next(f) % 8u;
                blk.szx = next(f) % 7;
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK2,
                        .len = (uint16_t) coap_block_encode(&blk, b2),
                        .value = b2,
                };
                payload_len = (flags & 0x40) ? coap_szx_to_size(blk.szx) : next(f);
        } else if (flags & 0x40)
                payload_len = next(f);
        if (flags & 8) {
                CoapBlock blk1 = {.more = flags2 & 2};

                blk1.num = next(f) % 8u;
                blk1.szx = next(f) % 7;
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK1,
                        .len = (uint16_t) coap_block_encode(&blk1, b1),
                        .value = b1,
                };
        }
        if (flags & 0x10) {
                echo[0] = next(f);
                echo[1] = next(f);
                opts[n++] = (CoapOption){.number = COAP_OPTION_ECHO, .len = 2, .value = echo};
        }
        if (code == COAP_CODE_EMPTY) {
                n = 0;
                payload_len = 0;
        }
        coap_builder_init(&b, buf, sizeof(buf), types[kind], code, mid, req.token,
                          code == COAP_CODE_EMPTY ? 0 : req.token_len);
        for (size_t i = 0; i < n; i++) /* ascending by construction */
                (void) coap_builder_add_option(&b, opts[i].number, opts[i].value, opts[i].len);
        (void) coap_builder_set_payload(&b, zeros, payload_len);
        if (coap_builder_finish(&b, &len) < 0)
                return;
        feed(f, buf, len, flags2 & 4, flags2 & 8);
}

static void op_advance(Fuzz *f) {
        uint8_t b = next(f);
        uint64_t d = coap_engine_next_deadline(f->engine);

        if ((b & 1) && d != UINT64_MAX)
                f->now = d;
        else
                f->now += (uint64_t) (b >> 1) * (b >> 1) * 1000 + 1;
        coap_engine_tick(f->engine, f->now);
}

/* A batching socket reports a datagram of the ring, or a corrupted copy of one, as failed. */
static void op_send_failed(Fuzz *f) {
        uint8_t b = next(f), copy[64];
        size_t slot = next(f) % N_RING, len = f->ring_len[slot];
        const CoapAddr dest = (b & 1) ? group_addr() : server_addr();

        if (!f->ring[slot])
                return;
        if (b & 2) {
                len = len < sizeof copy ? len : sizeof copy;
                memcpy(copy, f->ring[slot], len);
                copy[next(f) % len] ^= next(f);
        }
        coap_engine_send_failed(f->engine, (b & 2) ? copy : f->ring[slot], len, &dest,
                                (b & 4) ? -EAGAIN : -ENETUNREACH, f->now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Fuzz f = {.data = data, .size = size, .now = 1000000, .rng = size};
        CoapEngineStats stats = {};
        const CoapEngineEnv env = {
                .send = fake_send,
                .event = fake_event,
                .random_u64 = fake_random,
                .stats = &stats,
        };

        check(coap_engine_new(&env, &f, f.now, &f.engine) == 0);
        while (f.pos < f.size) {
                uint64_t id, owner;
                size_t before;
                bool was_live;
                int r;

                switch (next(&f) % 12) {
                case 0:
                        op_submit(&f);
                        break;
                case 1:
                        op_feed_raw(&f);
                        break;
                case 2:
                        op_reply(&f);
                        break;
                case 3:
                        op_advance(&f);
                        break;
                case 4:
                        id = next(&f) % N_IDS;
                        was_live = f.live[id];
                        r = coap_engine_cancel(f.engine, id, f.now);
                        check(was_live ? r == 0 : r == -ENOENT);
                        check(!f.live[id]);
                        break;
                case 5:
                        owner = next(&f) % N_OWNERS;
                        before = n_live(&f, false, owner);
                        check(coap_engine_cancel_owner(f.engine, owner, f.now) <= before);
                        if (f.reentry != 3)
                                check(n_live(&f, false, owner) == 0);
                        break;
                case 6:
                        owner = next(&f) % N_OWNERS;
                        coap_engine_drop_owner(f.engine, owner);
                        for (size_t i = 0; i < N_IDS; i++)
                                if (f.owner[i] == owner)
                                        f.live[i] = false;
                        break;
                case 7:
                        id = next(&f) % N_IDS;
                        was_live = f.live[id];
                        r = coap_engine_deregister_observe(f.engine, id, f.now);
                        if (!was_live)
                                check(r == -ENOENT);
                        break;
                case 8:
                        coap_engine_fail_all(f.engine, -ECONNREFUSED, f.now);
                        if (f.reentry != 3)
                                check(n_live(&f, true, 0) == 0);
                        break;
                case 9:
                        r = next(&f);
                        f.send_error = (r & 1) ? -EAGAIN : -ENETDOWN;
                        f.n_send_errors = (unsigned) (r >> 1) % 3 + 1;
                        break;
                case 10:
                        op_send_failed(&f);
                        break;
                default:
                        f.reentry = next(&f) % 4;
                        break;
                }
                check(coap_engine_n_requests(f.engine) == n_live(&f, true, 0));
                for (uint64_t o = 0; o < N_OWNERS; o++)
                        check(coap_engine_n_requests_of(f.engine, o) == n_live(&f, false, o));
                check(coap_engine_next_deadline(f.engine) > f.now);
        }

        /* Everything still live ends now, exactly once. */
        f.reentry = 0;
        coap_engine_fail_all(f.engine, -EIO, f.now);
        check(n_live(&f, true, 0) == 0);
        check(coap_engine_n_requests(f.engine) == 0);
        coap_engine_free(f.engine);
        for (size_t i = 0; i < N_RING; i++)
                free(f.ring[i]);
        return 0;
}
