/* SPDX-License-Identifier: MIT */
#include "coap-engine.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "coap-engine-heap.h"
#include "coap-engine-map.h"
#include "coap-option.h"

#define USEC_PER_MSEC       UINT64_C(1000)
#define EAGAIN_RETRY_USEC   (10 * USEC_PER_MSEC) /* a send that hit a full socket buffer */
/* Tries of one message that all hit a full socket buffer (2 s) before its request ends with
 * -EAGAIN: a path that never drains (a queue its caller plugged) would otherwise cost a send
 * every 10 ms for ever. */
#define EAGAIN_RETRY_MAX    200
#define ECHO_RETRIES_MAX    4u /* 4.01+Echo resends per request */
#define ECHO_LEN_MAX        40 /* RFC 9175 §2.2.1 */
#define ETAG_LEN_MAX        8
#define OPTION_LEN_MAX      1034
#define TOKEN_TRIES         16
#define CONTENT_FORMAT_MAX  0xFFFF
#define BLOCK_NUM_LIMIT     (UINT32_C(1) << 20)
#define BODY_MAX            ((size_t) BLOCK_NUM_LIMIT * 1024) /* in blocks of the largest size */
#define N_EXTRA_OPTIONS     7 /* Observe, Block1, Block2, Size1, Request-Tag, Content-Format, Echo */
#define BUILD_STACK_OPTIONS 24   /* options a message is built with before they go to the heap */
#define MCAST_SOURCES_MAX   1024 /* responders remembered per multicast request */

#define container_of(ptr, type, member) ((type *) (void *) ((char *) (ptr) -offsetof(type, member)))

typedef struct ListNode {
        struct ListNode *prev, *next;
} ListNode;

typedef struct List {
        ListNode *head, *tail;
} List;

static void list_append(List *l, ListNode *n) {
        n->prev = l->tail;
        n->next = NULL;
        if (l->tail)
                l->tail->next = n;
        else
                l->head = n;
        l->tail = n;
}

static void list_remove(List *l, ListNode *n) {
        if (n->prev)
                n->prev->next = n->next;
        else
                l->head = n->next;
        if (n->next)
                n->next->prev = n->prev;
        else
                l->tail = n->prev;
        n->prev = n->next = NULL;
}

/* A client context's share of the engine: its live requests, the Echo value to add to its
 * next request, and whether its downloads are paused (while it has live requests only). */
typedef struct Owner {
        uint64_t key;
        List live;
        uint8_t *echo;
        uint32_t n_live;
        uint8_t echo_len; /* <= ECHO_LEN_MAX */
        bool paused;
} Owner;

/* Packed: an exchange keeps its state in bytes (below). */
typedef enum __attribute__((packed))
Wait { WAIT_NONE,     /* observing: nothing outstanding, no timer */
       WAIT_ACK,      /* CON sent: retransmitting */
       WAIT_RESPONSE, /* NON sent: the first timeout bounds the wait */
       WAIT_SEPARATE, /* empty ACK received: waiting for the separate response */
       WAIT_HOLD,     /* finished: kept for the exchange lifetime to re-ACK duplicates */
       WAIT_MCAST,    /* multicast NON sent: collecting responses until the window closes */
} Wait;

typedef enum __attribute__((packed))
Resend { RESEND_NONE,
         RESEND_FIRST,      /* the first send of this message hit -EAGAIN */
         RESEND_RETRANSMIT, /* a retransmission hit -EAGAIN */
} Resend;

enum {
        OBSERVE_APP = -1,  /* the application's Observe option, if any */
        OBSERVE_NONE = -2, /* no Observe option */
};

/* How to build the current message from the request. */
typedef struct Plan {
        bool cont_token; /* the observe continuation token instead of the request token */
        bool first;      /* the first message: keeps an application Block2 (early negotiation) */
        bool block2;
        int32_t observe; /* OBSERVE_APP, OBSERVE_NONE or a value */
        CoapBlock b2;
} Plan;

/* One per request, and one per observation for as long as it lasts: at 10,000 observations each
 * 16 bytes are 160 KiB (malloc rounds to 16; 344 bytes take 352). Body sizes and offsets take 32
 * bits: spec_validate() and the block numbers' bound (BLOCK_NUM_LIMIT blocks of at most 1 KiB) keep
 * them below 1 GiB. */
typedef struct Exchange {
        uint64_t id;
        uint64_t owner;
        uint64_t seq; /* submission order: *_owner() and fail_all() skip newer ones */
        Owner *owner_ref;
        ListNode all_node, live_node, owner_node;
        CoapTimer timer;
        CoapTimer latest; /* in the engine's latest heap while the timer has a bound */
        CoapAddr dest;
        CoapTxParams params;
        uint8_t method;
        uint8_t block_szx;
        uint8_t b1_szx;
        uint8_t b2_szx;
        int32_t content_format;
        uint32_t mcast_ms; /* the multicast window (below) */

        /* The request: options (the array and their values in blob) and payload (in blob). */
        uint8_t *blob;
        CoapOption *opts;
        const uint8_t *payload;
        uint32_t n_opts;
        uint32_t payload_len;

        /* The current message, reused byte for byte on retransmission. */
        uint8_t *msg;
        uint32_t msg_len;
        int32_t last_response_mid;
        uint64_t token;
        uint64_t cont_token;
        uint16_t mid;
        uint8_t etag_len; /* 0: none */
        uint8_t retries;
        uint32_t obs_seq;
        Plan plan;
        uint64_t timeout; /* the next wait; exchange_timeout_max() bounds it */

        /* Block1 upload and Block2 download */
        uint32_t b1_offset, b1_len;
        uint32_t b2_offset;

        Wait wait;
        Resend resend;
        uint8_t echo_retries;
        uint8_t eagain_retries; /* tries of the current message that hit -EAGAIN in a row */
        uint16_t busy;          /* events being emitted for it */

        /* The flags, one bit each. */
        bool confirmable : 1;
        bool block2_early : 1;
        bool has_cont : 1;
        bool has_mid : 1; /* mid is in the engine's MID table */
        bool dead : 1;    /* detached from the engine: free when not busy */
        bool live : 1;    /* not final yet */
        bool observe : 1; /* registered and not ended */
        bool was_observe : 1;
        bool have_seq : 1;
        bool b1 : 1;      /* Block1 upload */
        bool b1_done : 1; /* upload complete, the response body follows with Block2 (RFC 7959 §3.3)
                           */
        /* A streamed body: payload (in stream_buf, stream_window bytes) holds its bytes from
         * stream_base on; stream_wait: the next block has not come yet (no message, no timer). */
        bool stream : 1, stream_end : 1, stream_wait : 1;
        bool b2 : 1;   /* Block2 download in progress */
        bool held : 1; /* paused before asking for the next block, no message outstanding */

        uint64_t obs_usec;
        uint64_t request_tag;
        uint8_t etag[ETAG_LEN_MAX];
        Plan held_plan;

        /* A multicast request (RFC 7252 §8, mcast_ms above > 0) is never streamed: a streamed
         * body's window and the sources of a multicast request's answers share their room. */
        union {
                struct {
                        uint32_t stream_base, stream_window;
                        uint8_t *stream_buf;
                };
                /* Responses come from group members, each delivered once. */
                struct {
                        uint32_t n_sources;
                        CoapAddr *sources;
                };
        };
} Exchange;

struct CoapEngine {
        const CoapEngineEnv *env;
        void *userdata;
        uint64_t next_seq;
        CoapHeap timers; /* by deadline */
        CoapHeap latest; /* by the time the timer must have run by (bounded ones only) */
        CoapMap by_id, by_token, by_mid, owners;
        List all, live;
        uint32_t n_all, n_live; /* as Owner.n_live: each exchange takes hundreds of bytes */
        uint16_t next_mid;
};

static uint64_t sat_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Arms x's timer: due at deadline, and to run no later than latest (UINT64_MAX: no bound). */
static void exchange_timer_set(CoapEngine *e, Exchange *x, uint64_t deadline, uint64_t latest) {
        coap_timer_set(&e->timers, &x->timer, deadline);
        if (latest == UINT64_MAX)
                coap_timer_stop(&e->latest, &x->latest);
        else
                coap_timer_set(&e->latest, &x->latest, latest);
}

static void exchange_timer_stop(CoapEngine *e, Exchange *x) {
        coap_timer_stop(&e->timers, &x->timer);
        coap_timer_stop(&e->latest, &x->latest);
}

static uint64_t backoff(uint64_t timeout, uint16_t percent) {
        return timeout > UINT64_MAX / UINT16_MAX ? UINT64_MAX : timeout * percent / 100;
}

/* The longest the current timeout may be (RFC 7252 §4.2): ACK_TIMEOUT × ACK_RANDOM_FACTOR, backed
 * off once per retransmission so far, as x->timeout is. Worked out, not kept in the exchange. */
static uint64_t exchange_timeout_max(const Exchange *x) {
        uint64_t t = (uint64_t) x->params.ack_timeout_ms * USEC_PER_MSEC *
                     x->params.ack_random_percent / 100;
        unsigned sent = x->confirmable ? x->params.max_retransmission - x->retries : 0;

        for (unsigned i = 0; i < sent; i++)
                t = backoff(t, x->params.backoff_percent);
        return t;
}

/* Waits the current timeout after a transmission, and at most the longest timeout RFC 7252
 * §4.2 allows for it: a retransmission stays inside the window whenever the tick comes. */
static void exchange_timer_wait(CoapEngine *e, Exchange *x, uint64_t now) {
        exchange_timer_set(e, x, sat_add(now, x->timeout), sat_add(now, exchange_timeout_max(x)));
}

/* A send that hit a full socket buffer is tried again soon, on time. */
static void exchange_timer_eagain(CoapEngine *e, Exchange *x, uint64_t now) {
        exchange_timer_set(e, x, now + EAGAIN_RETRY_USEC, now + EAGAIN_RETRY_USEC);
}

/* The first send of x's current message met a full socket buffer: it goes in 10 ms, not counted
 * as a retransmission, and until then nothing can answer it. */
static void exchange_first_send_eagain(CoapEngine *e, Exchange *x, uint64_t now) {
        x->resend = RESEND_FIRST;
        exchange_timer_eagain(e, x, now);
}

static uint64_t engine_random(CoapEngine *e) {
        return e->env->random_u64(e->userdata);
}

static int engine_send(CoapEngine *e, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        int r = e->env->send(e->userdata, dest, buf, len);

        if (r < 0)
                return r;
        e->env->stats->messages_sent++;
        return 0;
}

static int engine_send_empty(CoapEngine *e, CoapType type, uint16_t mid, const CoapAddr *dest) {
        uint8_t buf[COAP_HEADER_SIZE];
        CoapBuilder b;
        size_t len;
        int r;

        coap_builder_init(&b, buf, sizeof(buf), type, COAP_CODE_EMPTY, mid, NULL, 0);
        r = coap_builder_finish(&b, &len);
        if (r < 0)
                return r;
        return engine_send(e, dest, buf, len);
}

static bool addr_equal(const CoapAddr *a, const CoapAddr *b) {
        if (a->ss.ss_family != b->ss.ss_family)
                return false;
        if (a->ss.ss_family == AF_INET) {
                const struct sockaddr_in *x = (const void *) &a->ss, *y = (const void *) &b->ss;

                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const void *) &a->ss, *y = (const void *) &b->ss;

                return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
                       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
        }
        return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* RFC 7252 §5.3.2: a response comes from where the request went (when both are known); to a
 * multicast request, from any member of the group (§8.2). */
static bool exchange_source_ok(const Exchange *x, const CoapAddr *src) {
        if (x->mcast_ms > 0)
                return src->len > 0 && !coap_addr_is_multicast(src);
        return x->dest.len == 0 || src->len == 0 || addr_equal(&x->dest, src);
}

bool coap_addr_is_multicast(const CoapAddr *a) {
        if (a->len == 0)
                return false;
        if (a->ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const void *) &a->ss;

                return IN_MULTICAST(ntohl(in->sin_addr.s_addr));
        }
        if (a->ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const void *) &a->ss;

                return IN6_IS_ADDR_MULTICAST(&in6->sin6_addr);
        }
        return false;
}

static uint64_t token_key(const CoapMsg *m) {
        uint64_t k;

        memcpy(&k, m->token, sizeof(k));
        return k;
}

static int engine_new_token(CoapEngine *e, uint64_t *ret) {
        for (unsigned i = 0; i < TOKEN_TRIES; i++) {
                uint64_t t = engine_random(e);

                if (!coap_map_get(&e->by_token, t)) {
                        *ret = t;
                        return 0;
                }
        }
        return -EBUSY;
}

static uint64_t engine_first_timeout(CoapEngine *e, const CoapTxParams *p) {
        uint64_t ack = p->ack_timeout_ms * USEC_PER_MSEC;
        uint64_t range = ack * p->ack_random_percent / 100 - ack;

        return range > 0 ? ack + engine_random(e) % range : ack;
}

static void owner_maybe_free(CoapEngine *e, Owner *o) {
        if (o->n_live > 0)
                return;
        o->paused = false;
        if (o->echo)
                return;
        coap_map_remove(&e->owners, o->key, o);
        free(o);
}

static void owner_set_echo(Owner *o, const uint8_t *value, size_t len) {
        uint8_t *copy = malloc(len);

        /* Without memory the next request goes without Echo; the server asks again. */
        if (!copy)
                return;
        memcpy(copy, value, len);
        free(o->echo);
        o->echo = copy;
        o->echo_len = (uint8_t) len; /* checked against ECHO_LEN_MAX */
}

/* Where the body's bytes the engine has begin: 0 unless streamed. */
static size_t body_base(const Exchange *x) {
        return x->stream ? x->stream_base : 0;
}

/* Frees the streamed body's window or the multicast sources, whichever x has. */
static void exchange_free_side(Exchange *x) {
        if (x->stream) {
                free(x->stream_buf);
                x->stream_buf = NULL;
        } else {
                free(x->sources);
                x->sources = NULL;
                x->n_sources = 0;
        }
}

static void exchange_free(Exchange *x) {
        exchange_free_side(x);
        free(x->msg);
        free(x->blob); /* x->opts too */
        free(x);
}

/* The end of the body's bytes the engine has (all of them unless streamed). */
static size_t body_end(const Exchange *x) {
        return body_base(x) + x->payload_len;
}

static bool body_complete(const Exchange *x) {
        return !x->stream || x->stream_end;
}

/* The next Block1 block can be sent: a streamed body has it and a byte after it (or has ended),
 * so that its M bit is known. */
static bool block1_ready(const Exchange *x) {
        return body_complete(x) || x->b1_offset + coap_szx_to_size(x->b1_szx) < body_end(x);
}

/* The request is final: no more lookups by id, owner or MID. */
static void exchange_unlink_live(CoapEngine *e, Exchange *x) {
        Owner *o = x->owner_ref;

        if (!x->live)
                return;
        x->live = false;
        coap_map_remove(&e->by_id, x->id, x);
        list_remove(&e->live, &x->live_node);
        e->n_live--;
        list_remove(&o->live, &x->owner_node);
        o->n_live--;
        x->owner_ref = NULL;
        owner_maybe_free(e, o);
        if (x->has_mid) {
                coap_map_remove(&e->by_mid, x->mid, x);
                x->has_mid = false;
        }
}

static void exchange_drop_cont(CoapEngine *e, Exchange *x) {
        if (!x->has_cont)
                return;
        coap_map_remove(&e->by_token, x->cont_token, x);
        x->has_cont = false;
}

/* Takes x out of the engine entirely; the caller frees it unless it is busy. */
static void exchange_detach(CoapEngine *e, Exchange *x) {
        exchange_unlink_live(e, x);
        if (x->dead)
                return;
        x->dead = true;
        exchange_timer_stop(e, x);
        coap_map_remove(&e->by_token, x->token, x);
        exchange_drop_cont(e, x);
        list_remove(&e->all, &x->all_node);
        e->n_all--;
}

static void exchange_destroy(CoapEngine *e, Exchange *x) {
        exchange_detach(e, x);
        if (x->busy == 0)
                exchange_free(x);
}

/* Final, but kept for the exchange lifetime so that duplicates of a separate response are
 * ACKed again instead of being RST or re-delivered. Only the tokens and the address stay. */
static void exchange_hold(CoapEngine *e, Exchange *x, uint64_t now) {
        exchange_unlink_live(e, x);
        x->wait = WAIT_HOLD;
        x->resend = RESEND_NONE;
        free(x->msg);
        free(x->blob); /* x->opts too */
        exchange_free_side(x);
        x->msg = x->blob = NULL;
        x->opts = NULL;
        x->payload = NULL;
        /* Only the socket's lifetime depends on when this ends: no bound. */
        exchange_timer_set(e, x,
                           sat_add(now, (uint64_t) COAP_EXCHANGE_LIFETIME_FACTOR *
                                                x->params.ack_timeout_ms * USEC_PER_MSEC),
                           UINT64_MAX);
}

/* Emits ev for x. Returns whether x is still alive (the handler may have cancelled it). */
static bool exchange_emit(CoapEngine *e, Exchange *x, const CoapEvent *ev) {
        x->busy++;
        e->env->event(e->userdata, ev);
        x->busy--;
        if (!x->dead)
                return true;
        if (x->busy == 0)
                exchange_free(x);
        return false;
}

/* The state change is complete before the handler runs, so it may submit or cancel freely. */
static void exchange_final(CoapEngine *e, Exchange *x, CoapEvent *ev, bool hold, uint64_t now) {
        ev->final = true;
        if (hold)
                exchange_hold(e, x, now);
        else
                exchange_detach(e, x);
        (void) exchange_emit(e, x, ev);
}

static CoapEvent exchange_event(const Exchange *x, int result) {
        return (CoapEvent){
                .id = x->id,
                .owner = x->owner,
                .result = result,
                .last_block = true,
        };
}

static CoapEvent response_event(const Exchange *x, const CoapMsg *m, size_t offset,
                                bool last_block) {
        return (CoapEvent){
                .id = x->id,
                .owner = x->owner,
                .result = m->code,
                .offset = offset,
                .payload = m->payload,
                .payload_len = m->payload_len,
                .last_block = last_block,
                .msg = m,
        };
}

static void exchange_fail(CoapEngine *e, Exchange *x, int error, uint64_t now) {
        CoapEvent ev = exchange_event(x, error);

        exchange_final(e, x, &ev, false, now);
}

/* A separate (CON/NON) final response to a CON request, or a CON response to a NON one, may be
 * retransmitted by the server (our ACK lost): held to be ACKed again (RFC 7252 §4.5). */
static void exchange_respond_final(CoapEngine *e, Exchange *x, const CoapMsg *m, size_t offset,
                                   uint64_t now) {
        CoapEvent ev = response_event(x, m, offset, true);

        exchange_final(e, x, &ev,
                       m->type == COAP_TYPE_CON || (x->confirmable && m->type == COAP_TYPE_NON),
                       now);
}

/* Ends x with -ECANCELED. An established observation (one notification seen) is held: the
 * notifications still on their way get an RST (RFC 7641 §3.6) from an engine that is not idle, so
 * its socket is still read. */
static void exchange_cancel(CoapEngine *e, Exchange *x, uint64_t now) {
        CoapEvent ev = exchange_event(x, -ECANCELED);
        /* Group members still answering a cancelled multicast request get no RST either. */
        bool hold = x->have_seq || x->mcast_ms > 0;

        x->observe = false;
        x->was_observe = x->have_seq;
        exchange_final(e, x, &ev, hold, now);
}

/* Encodes the message that plan describes, with a new MID and echo (an Echo option, or NULL),
 * into x->msg. */
static int exchange_build(CoapEngine *e, Exchange *x, const Plan *plan, const CoapOption *echo) {
        uint8_t obs[4], cf[4], size1[4], b1[3], b2[3], token[COAP_TOKEN_MAX], tag[8];
        /* After an upload, the requests for the response's blocks carry no body (RFC 7959 §3.3). */
        const uint8_t *payload = x->b1_done ? NULL : x->payload;
        size_t payload_len = x->b1_done ? 0 : x->payload_len, n = 0, len, size;
        bool app_block2 = false, last_b1 = false;
        /* The list is sorted and encoded, then dropped: on the stack unless it is long. */
        CoapOption stack_opts[BUILD_STACK_OPTIONS], *heap_opts = NULL, *opts = stack_opts;
        CoapBuilder b;
        uint8_t *buf;
        uint16_t mid;
        int r;

        if (x->n_opts > BUILD_STACK_OPTIONS - N_EXTRA_OPTIONS) {
                opts = heap_opts = calloc(x->n_opts + N_EXTRA_OPTIONS, sizeof(CoapOption));
                if (!opts)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < x->n_opts; i++) {
                uint16_t num = x->opts[i].number;

                if (num == COAP_OPTION_OBSERVE && plan->observe != OBSERVE_APP)
                        continue;
                if (num == COAP_OPTION_BLOCK2 && (!plan->first || plan->block2))
                        continue;
                if (num == COAP_OPTION_BLOCK1 && (x->b1 || x->b1_done))
                        continue;
                app_block2 = app_block2 || num == COAP_OPTION_BLOCK2;
                opts[n++] = x->opts[i];
        }
        if (plan->observe >= 0)
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_OBSERVE,
                        .len = (uint16_t) coap_uint_encode((uint32_t) plan->observe, obs),
                        .value = obs,
                };
        if (x->b1) {
                size_t bsize = coap_szx_to_size(x->b1_szx);
                CoapBlock blk = {
                        .num = (uint32_t) (x->b1_offset / bsize),
                        .more = x->b1_offset + bsize < body_end(x),
                        .szx = x->b1_szx,
                };

                if (x->b1_offset / bsize >= BLOCK_NUM_LIMIT) {
                        free(heap_opts);
                        return -EFBIG;
                }
                r = coap_block_encode(&blk, b1);
                if (r < 0) {
                        free(heap_opts);
                        return r;
                }
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK1, .len = (uint16_t) r, .value = b1};
                memcpy(tag, &x->request_tag, sizeof(tag));
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_REQUEST_TAG, .len = sizeof(tag), .value = tag};
                /* Size1 when the size is known: not for a stream still coming. */
                if (blk.num == 0 && body_complete(x))
                        opts[n++] = (CoapOption){
                                .number = COAP_OPTION_SIZE1,
                                .len = (uint16_t) coap_uint_encode((uint32_t) body_end(x), size1),
                                .value = size1,
                        };
                payload = x->payload + (x->b1_offset - body_base(x));
                payload_len = blk.more ? bsize : body_end(x) - x->b1_offset;
                last_b1 = !blk.more;
        }
        /* Early negotiation (RFC 7959 §2.4): Block2 NUM 0 with our size on the first request, or
         * for an upload on its last block, whose response starts the body (§3.3, figure 9). */
        if (x->block2_early && !app_block2 && !plan->block2 && (x->b1 ? last_b1 : plan->first)) {
                r = coap_block_encode(&(CoapBlock){.szx = x->block_szx}, b2);
                if (r < 0) {
                        free(heap_opts);
                        return r;
                }
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK2, .len = (uint16_t) r, .value = b2};
        } else if (plan->block2) {
                r = coap_block_encode(&plan->b2, b2);
                if (r < 0) {
                        free(heap_opts);
                        return r;
                }
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_BLOCK2, .len = (uint16_t) r, .value = b2};
        }
        if (payload_len > 0 && x->content_format >= 0)
                opts[n++] = (CoapOption){
                        .number = COAP_OPTION_CONTENT_FORMAT,
                        .len = (uint16_t) coap_uint_encode((uint32_t) x->content_format, cf),
                        .value = cf,
                };
        if (echo)
                opts[n++] = *echo;
        coap_options_sort(opts, n);

        size = coap_msg_encoded_size(COAP_TOKEN_MAX, opts, n, payload_len);
        buf = size <= UINT32_MAX ? malloc(size) : NULL;
        if (!buf) {
                free(heap_opts);
                return size <= UINT32_MAX ? -ENOMEM : -EMSGSIZE;
        }
        memcpy(token, plan->cont_token ? &x->cont_token : &x->token, sizeof(token));
        mid = e->next_mid++;
        coap_builder_init(&b, buf, size, x->confirmable ? COAP_TYPE_CON : COAP_TYPE_NON, x->method,
                          mid, token, COAP_TOKEN_MAX);
        (void) coap_builder_add_options(&b, opts, n);
        (void) coap_builder_set_payload(&b, payload, payload_len);
        r = coap_builder_finish(&b, &len);
        free(heap_opts);
        if (r < 0) {
                free(buf);
                return r;
        }

        free(x->msg);
        x->msg = buf;
        x->msg_len = (uint32_t) len; /* <= size */
        if (x->has_mid)
                coap_map_remove(&e->by_mid, x->mid, x);
        x->mid = mid;
        if (x->live) {
                coap_map_put(&e->by_mid, mid, x);
                x->has_mid = true;
        }
        x->b1_len = (uint32_t) payload_len; /* <= x->payload_len */
        x->plan = *plan;
        return 0;
}

/* Starts the retransmission state of a freshly built message (RFC 7252 §4.2, §4.3). */
static void exchange_arm(CoapEngine *e, Exchange *x) {
        x->timeout = engine_first_timeout(e, &x->params);
        x->retries = x->confirmable ? x->params.max_retransmission : 0;
        x->wait = x->confirmable ? WAIT_ACK : WAIT_RESPONSE;
        x->resend = RESEND_NONE;
        x->eagain_retries = 0;
}

/* Sends a freshly built follow-up message. A full socket buffer is retried soon. */
static int exchange_transmit(CoapEngine *e, Exchange *x, uint64_t now) {
        int r;

        exchange_arm(e, x);
        r = engine_send(e, &x->dest, x->msg, x->msg_len);
        if (r == -EAGAIN) {
                exchange_first_send_eagain(e, x, now);
                return 0;
        }
        if (r < 0)
                return r;
        exchange_timer_wait(e, x, now);
        return 0;
}

/* Builds and sends the next message of x; on failure x gets its final event. */
static void exchange_continue(CoapEngine *e, Exchange *x, const Plan *plan, const CoapOption *echo,
                              uint64_t now) {
        int r = exchange_build(e, x, plan, echo);

        if (r >= 0)
                r = exchange_transmit(e, x, now);
        if (r < 0)
                exchange_fail(e, x, r, now);
}

static void exchange_expire(CoapEngine *e, Exchange *x, uint64_t now) {
        CoapEvent ev;
        int r;

        if (x->wait == WAIT_HOLD) {
                exchange_destroy(e, x);
                return;
        }
        if (x->wait == WAIT_MCAST) {
                /* Zephyr's end of the collection: result 0, no packet, last_block false. Held,
                 * so that late answers are dropped quietly instead of being RST. */
                ev = exchange_event(x, 0);
                ev.last_block = false;
                exchange_final(e, x, &ev, true, now);
                return;
        }
        if (x->resend != RESEND_NONE || (x->wait == WAIT_ACK && x->retries > 0)) {
                r = engine_send(e, &x->dest, x->msg, x->msg_len);
                if (r == -EAGAIN && ++x->eagain_retries < EAGAIN_RETRY_MAX) {
                        if (x->resend == RESEND_NONE)
                                x->resend = RESEND_RETRANSMIT;
                        exchange_timer_eagain(e, x, now);
                        return;
                }
                if (r < 0) {
                        exchange_fail(e, x, r, now);
                        return;
                }
                x->eagain_retries = 0;
                if (x->resend != RESEND_FIRST) {
                        e->env->stats->retransmissions++;
                        x->retries--;
                        x->timeout = backoff(x->timeout, x->params.backoff_percent);
                }
                x->resend = RESEND_NONE;
                exchange_timer_wait(e, x, now);
                return;
        }

        e->env->stats->timeouts++;
        ev = exchange_event(x, -ETIMEDOUT);
        /* Zephyr forgets a NON request silently when its first timeout expires. */
        ev.silent = x->wait == WAIT_RESPONSE;
        ev.acked = x->wait == WAIT_SEPARATE;
        exchange_final(e, x, &ev, false, now);
}

int coap_engine_new(const CoapEngineEnv *env, void *userdata, uint64_t now, CoapEngine **ret) {
        CoapEngine *e;

        (void) now;
        if (!env || !env->send || !env->event || !env->random_u64 || !env->stats || !ret)
                return -EINVAL;
        e = calloc(1, sizeof(CoapEngine));
        if (!e)
                return -ENOMEM;
        e->env = env;
        e->userdata = userdata;
        e->next_mid = (uint16_t) engine_random(e);
        *ret = e;
        return 0;
}

CoapEngine *coap_engine_free(CoapEngine *e) {
        Owner *o;

        if (!e)
                return NULL;
        while (e->all.head)
                exchange_destroy(e, container_of(e->all.head, Exchange, all_node));
        for (size_t pos = 0; (o = coap_map_iterate(&e->owners, &pos));) {
                free(o->echo);
                free(o);
        }
        coap_map_done(&e->by_id);
        coap_map_done(&e->by_token);
        coap_map_done(&e->by_mid);
        coap_map_done(&e->owners);
        coap_heap_done(&e->timers);
        coap_heap_done(&e->latest);
        free(e);
        return NULL;
}

static bool spec_is_observe(const CoapRequestSpec *spec);

static int spec_validate(const CoapRequestSpec *spec) {
        if (spec->method < COAP_CODE_GET || spec->method > COAP_CODE_IPATCH)
                return -EINVAL;
        if (spec->block_szx > COAP_BLOCK_SZX_MAX)
                return -EINVAL;
        if (spec->params.ack_timeout_ms == 0 || spec->params.ack_random_percent < 100 ||
            spec->params.backoff_percent < 100)
                return -EINVAL;
        if (spec->content_format > CONTENT_FORMAT_MAX)
                return -EINVAL;
        if (spec->payload_len > 0 && !spec->payload)
                return -EINVAL;
        if (spec->n_options > 0 && !spec->options)
                return -EINVAL;
        for (size_t i = 0; i < spec->n_options; i++)
                if (spec->options[i].len > OPTION_LEN_MAX ||
                    (spec->options[i].len > 0 && !spec->options[i].value))
                        return -EINVAL;
        if (spec->dest && spec->dest->len > sizeof(spec->dest->ss))
                return -EINVAL;
        if (spec->payload_len / coap_szx_to_size(spec->block_szx) >= BLOCK_NUM_LIMIT)
                return -EINVAL;
        /* A stream starts with more than one block, so that the first one is known not to be
         * the last. */
        if (spec->stream &&
            (spec->payload_len <= coap_szx_to_size(spec->block_szx) ||
             spec->payload_len > spec->stream_window || spec->stream_window > BODY_MAX))
                return -EINVAL;
        /* RFC 7252 §8.1: multicast requests are NON; Zephyr refuses Observe too. A body has to
         * fit one message: Block1 needs one server. */
        if (spec->multicast_ms > 0 && (!spec->dest || !coap_addr_is_multicast(spec->dest) ||
                                       spec->confirmable || spec_is_observe(spec) || spec->stream ||
                                       spec->payload_len > coap_szx_to_size(spec->block_szx)))
                return -EINVAL;
        return 0;
}

/* Copies path, options and payload into one allocation, x->blob: the option array, their values,
 * then the payload (a streamed payload goes into its window instead). */
static int exchange_set_request(Exchange *x, const CoapRequestSpec *spec) {
        const char *path = spec->path ? spec->path : "";
        size_t max = 1, n_path, total = spec->stream ? 0 : spec->payload_len, array;
        CoapOption stack_path[BUILD_STACK_OPTIONS], *heap_path = NULL, *path_opts = stack_path;
        CoapOption *opts;
        uint8_t *p;
        int r;

        for (const char *c = path; *c; c++)
                if (*c == '/' || *c == '?' || *c == '&')
                        max++;
        if (max > SIZE_MAX / sizeof(CoapOption) - spec->n_options)
                return -EINVAL;
        if (max > BUILD_STACK_OPTIONS) {
                path_opts = heap_path = calloc(max, sizeof(CoapOption));
                if (!path_opts)
                        return -ENOMEM;
        }
        r = coap_path_to_options(path, path_opts, max, &n_path);
        if (r < 0) {
                free(heap_path);
                return r == -E2BIG ? -EINVAL : r;
        }
        if (n_path + spec->n_options > UINT32_MAX) {
                free(heap_path);
                return -EINVAL;
        }
        x->n_opts = (uint32_t) (n_path + spec->n_options);
        array = x->n_opts * sizeof(CoapOption);
        for (size_t i = 0; i < n_path; i++)
                total += path_opts[i].len;
        for (size_t i = 0; i < spec->n_options; i++)
                total += spec->options[i].len;
        if (total > SIZE_MAX - array) {
                free(heap_path);
                return -EINVAL;
        }

        x->blob = malloc(array + total > 0 ? array + total : 1);
        if (!x->blob) {
                free(heap_path);
                return -ENOMEM;
        }
        opts = (CoapOption *) (void *) x->blob;
        if (n_path > 0)
                memcpy(opts, path_opts, n_path * sizeof(CoapOption));
        free(heap_path);
        if (spec->n_options > 0)
                memcpy(opts + n_path, spec->options, spec->n_options * sizeof(CoapOption));
        x->opts = opts;
        p = x->blob + array;
        for (size_t i = 0; i < x->n_opts; i++) {
                if (opts[i].len > 0)
                        memcpy(p, opts[i].value, opts[i].len);
                opts[i].value = p;
                p += opts[i].len;
        }
        if (spec->stream) {
                x->stream_buf = malloc(spec->stream_window);
                if (!x->stream_buf)
                        return -ENOMEM;
                p = x->stream_buf;
                x->stream = true;
                x->stream_window = (uint32_t) spec->stream_window; /* spec_validate() */
        }
        if (spec->payload_len > 0)
                memcpy(p, spec->payload, spec->payload_len);
        x->payload = p;
        x->payload_len = (uint32_t) spec->payload_len; /* spec_validate() */
        return 0;
}

/* RFC 7641 §3.1: a GET (or FETCH, RFC 8132) with Observe = 0 registers. */
static bool spec_is_observe(const CoapRequestSpec *spec) {
        if (spec->method != COAP_CODE_GET && spec->method != COAP_CODE_FETCH)
                return false;
        for (size_t i = 0; i < spec->n_options; i++) {
                uint32_t v;

                if (spec->options[i].number == COAP_OPTION_OBSERVE &&
                    coap_uint_decode(spec->options[i].value, spec->options[i].len, &v) >= 0 &&
                    v == COAP_OBSERVE_REGISTER)
                        return true;
        }
        return false;
}

/* The options that name the target resource (RFC 7252 §5.10.1, §5.10.2). */
static bool option_is_target(uint16_t number) {
        return number == COAP_OPTION_URI_HOST || number == COAP_OPTION_URI_PORT ||
               number == COAP_OPTION_URI_PATH || number == COAP_OPTION_URI_QUERY ||
               number == COAP_OPTION_PROXY_URI || number == COAP_OPTION_PROXY_SCHEME;
}

static size_t next_target(const Exchange *x, size_t i) {
        while (i < x->n_opts && !option_is_target(x->opts[i].number))
                i++;
        return i;
}

/* A connected socket's "no address" equals only itself. */
static bool dest_equal(const CoapAddr *a, const CoapAddr *b) {
        return a->len == 0 || b->len == 0 ? a->len == b->len : addr_equal(a, b);
}

/* Whether x and y ask the same server for the same resource the same way. */
static bool exchange_same_target(const Exchange *x, const Exchange *y) {
        size_t i = next_target(x, 0), j = next_target(y, 0);

        if (x->method != y->method || !dest_equal(&x->dest, &y->dest))
                return false;
        /* FETCH names what it observes in its body (RFC 8132). */
        if (x->method == COAP_CODE_FETCH &&
            (x->payload_len != y->payload_len ||
             (x->payload_len > 0 && memcmp(x->payload, y->payload, x->payload_len) != 0)))
                return false;
        for (; i < x->n_opts && j < y->n_opts; i = next_target(x, i + 1), j = next_target(y, j + 1))
                if (x->opts[i].number != y->opts[j].number || x->opts[i].len != y->opts[j].len ||
                    (x->opts[i].len > 0 &&
                     memcmp(x->opts[i].value, y->opts[j].value, x->opts[i].len) != 0))
                        return false;
        return i == x->n_opts && j == y->n_opts;
}

/* Zephyr refuses a second registration for the same resource on one client. */
static bool owner_observes(const Owner *o, const Exchange *x) {
        for (ListNode *n = o ? o->live.head : NULL; n; n = n->next) {
                const Exchange *y = container_of(n, Exchange, owner_node);

                if (y->observe && exchange_same_target(x, y))
                        return true;
        }
        return false;
}

static int engine_reserve(CoapEngine *e) {
        int r;

        r = coap_map_reserve(&e->by_id, e->n_live + 1);
        if (r < 0)
                return r;
        /* A continuation token (block-wise notifications) reserves its own room. */
        r = coap_map_reserve(&e->by_token, e->by_token.n + 1);
        if (r < 0)
                return r;
        r = coap_map_reserve(&e->by_mid, e->n_all + 1);
        if (r < 0)
                return r;
        r = coap_map_reserve(&e->owners, e->owners.n + 1);
        if (r < 0)
                return r;
        r = coap_heap_reserve(&e->timers, e->n_all + 1);
        if (r < 0)
                return r;
        return coap_heap_reserve(&e->latest, e->n_all + 1);
}

static int engine_get_owner(CoapEngine *e, uint64_t key, Owner **ret) {
        Owner *o = coap_map_get(&e->owners, key);

        if (!o) {
                o = calloc(1, sizeof(Owner));
                if (!o)
                        return -ENOMEM;
                o->key = key;
                coap_map_put(&e->owners, key, o);
        }
        *ret = o;
        return 0;
}

int coap_engine_submit(CoapEngine *e, const CoapRequestSpec *spec, uint64_t now) {
        Exchange *x;
        Owner *o;
        Plan plan = {.first = true, .observe = OBSERVE_APP};
        int r;

        if (!e || !spec)
                return -EINVAL;
        r = spec_validate(spec);
        if (r < 0)
                return r;
        if (coap_map_get(&e->by_id, spec->id))
                return -EEXIST;
        r = engine_reserve(e);
        if (r < 0)
                return r;

        x = calloc(1, sizeof(Exchange));
        if (!x)
                return -ENOMEM;
        x->id = spec->id;
        x->owner = spec->owner;
        x->timer.idx = x->latest.idx = COAP_TIMER_IDLE;
        if (spec->dest)
                x->dest = *spec->dest;
        x->params = spec->params;
        x->method = spec->method;
        x->confirmable = spec->confirmable;
        x->content_format = spec->content_format;
        x->block_szx = spec->block_szx;
        x->block2_early = spec->block2_early;
        x->last_response_mid = -1;
        x->observe = spec_is_observe(spec);
        x->mcast_ms = spec->multicast_ms;

        r = exchange_set_request(x, spec);
        if (r < 0)
                goto fail;
        if (x->observe && owner_observes(coap_map_get(&e->owners, spec->owner), x)) {
                r = -EALREADY;
                goto fail;
        }
        r = engine_new_token(e, &x->token);
        if (r < 0)
                goto fail;
        if (x->stream || x->payload_len > coap_szx_to_size(x->block_szx)) {
                x->b1 = true;
                x->b1_szx = x->block_szx;
                x->request_tag = engine_random(e);
        }
        r = engine_get_owner(e, spec->owner, &o);
        if (r < 0)
                goto fail;
        r = exchange_build(e, x, &plan,
                           o->echo ? &(const CoapOption){.number = COAP_OPTION_ECHO,
                                                         .len = o->echo_len,
                                                         .value = o->echo}
                                   : NULL);
        if (r >= 0) {
                exchange_arm(e, x);
                r = engine_send(e, &x->dest, x->msg, x->msg_len);
        }
        if (r < 0) {
                owner_maybe_free(e, o);
                goto fail;
        }

        /* An Echo value goes out once (RFC 9175 §2.4). */
        free(o->echo);
        o->echo = NULL;
        o->echo_len = 0;

        x->live = true;
        x->seq = e->next_seq++;
        x->owner_ref = o;
        coap_map_put(&e->by_id, x->id, x);
        coap_map_put(&e->by_token, x->token, x);
        coap_map_put(&e->by_mid, x->mid, x);
        x->has_mid = true;
        list_append(&e->all, &x->all_node);
        list_append(&e->live, &x->live_node);
        list_append(&o->live, &x->owner_node);
        e->n_all++;
        e->n_live++;
        o->n_live++;
        if (x->mcast_ms > 0) {
                uint64_t end = sat_add(now, (uint64_t) x->mcast_ms * USEC_PER_MSEC);

                x->wait = WAIT_MCAST;
                exchange_timer_set(e, x, end, end);
        } else
                exchange_timer_wait(e, x, now);
        return 0;

fail:
        exchange_free(x);
        return r;
}

int coap_engine_cancel(CoapEngine *e, uint64_t id, uint64_t now) {
        Exchange *x = coap_map_get(&e->by_id, id);

        if (!x)
                return -ENOENT;
        exchange_cancel(e, x, now);
        return 0;
}

size_t coap_engine_cancel_owner(CoapEngine *e, uint64_t owner, uint64_t now) {
        uint64_t start = e->next_seq;
        size_t n = 0;

        /* Handlers may cancel or submit: look the owner up again each round and stop at requests
         * submitted meanwhile (they are appended behind the older ones). */
        for (;;) {
                Owner *o = coap_map_get(&e->owners, owner);
                Exchange *x;

                if (!o || !o->live.head)
                        break;
                x = container_of(o->live.head, Exchange, owner_node);
                if (x->seq >= start)
                        break;
                exchange_cancel(e, x, now);
                n++;
        }
        return n;
}

void coap_engine_drop_owner(CoapEngine *e, uint64_t owner) {
        Owner *o;

        /* Its ended exchanges too: nobody is left to keep the socket for. */
        for (ListNode *n = e->n_all > e->n_live ? e->all.head : NULL, *next; n; n = next) {
                Exchange *x = container_of(n, Exchange, all_node);

                next = n->next;
                if (x->wait == WAIT_HOLD && x->owner == owner)
                        exchange_destroy(e, x);
        }
        while ((o = coap_map_get(&e->owners, owner)) && o->live.head)
                exchange_destroy(e, container_of(o->live.head, Exchange, owner_node));
        if (o) {
                free(o->echo);
                o->echo = NULL;
                owner_maybe_free(e, o);
        }
}

size_t coap_engine_pause_owner(CoapEngine *e, uint64_t owner) {
        Owner *o = coap_map_get(&e->owners, owner);

        if (!o || o->n_live == 0)
                return 0;
        o->paused = true;
        return o->n_live;
}

void coap_engine_resume_owner(CoapEngine *e, uint64_t owner, uint64_t now) {
        uint64_t start = e->next_seq;

        /* Each round looks the owner up again: a failed send ends its request with an event
         * whose handler may cancel, submit or pause again. */
        for (;;) {
                Owner *o = coap_map_get(&e->owners, owner);
                Exchange *x = NULL;

                if (!o)
                        return;
                o->paused = false;
                for (ListNode *n = o->live.head; n; n = n->next) {
                        Exchange *y = container_of(n, Exchange, owner_node);

                        if (y->held && y->seq < start) {
                                x = y;
                                break;
                        }
                }
                if (!x)
                        return;
                x->held = false;
                exchange_continue(e, x, &x->held_plan, NULL, now);
                o = coap_map_get(&e->owners, owner);
                if (o && o->paused)
                        return;
        }
}

void coap_engine_fail_all(CoapEngine *e, int error, uint64_t now) {
        uint64_t start = e->next_seq;

        if (error >= 0)
                error = -EIO;
        /* The socket is gone: held exchanges have nothing left to answer. */
        for (ListNode *n = e->all.head, *next; n; n = next) {
                Exchange *x = container_of(n, Exchange, all_node);

                next = n->next;
                if (x->wait == WAIT_HOLD)
                        exchange_destroy(e, x);
        }
        while (e->live.head) {
                Exchange *x = container_of(e->live.head, Exchange, live_node);

                if (x->seq >= start)
                        break;
                exchange_fail(e, x, error, now);
        }
}

void coap_engine_send_failed(CoapEngine *e, const uint8_t *buf, size_t len, const CoapAddr *dest,
                             int error, uint64_t now) {
        size_t pos = 0;
        Exchange *x;

        e->env->stats->messages_sent--; /* counted when it was taken */
        if (len < COAP_HEADER_SIZE)
                return;
        while ((x = coap_map_next(&e->by_mid, (uint16_t) (buf[2] << 8 | buf[3]), &pos)))
                if (x->live && !x->dead && x->msg_len == len && memcmp(x->msg, buf, len) == 0 &&
                    x->dest.len == dest->len && (dest->len == 0 || addr_equal(&x->dest, dest)))
                        break;
        if (!x || (x->wait != WAIT_ACK && x->wait != WAIT_RESPONSE && x->wait != WAIT_MCAST))
                return;
        if (error == -EAGAIN) {
                /* Batched datagrams are a message's first send. */
                exchange_first_send_eagain(e, x, now);
                return;
        }
        exchange_fail(e, x, error < 0 ? error : -EIO, now);
}

void coap_engine_fail_dest(CoapEngine *e, const CoapAddr *dest, int error, uint64_t now) {
        uint64_t start = e->next_seq;

        if (error >= 0)
                error = -EIO;
        /* Handlers may cancel or submit: rescan from the head after every event and stop at
         * requests submitted meanwhile (they are appended behind the older ones). */
        for (;;) {
                Exchange *x = NULL;

                for (ListNode *n = e->live.head; n; n = n->next) {
                        Exchange *y = container_of(n, Exchange, live_node);

                        if (y->seq >= start)
                                break;
                        if (y->dest.len > 0 && addr_equal(&y->dest, dest)) {
                                x = y;
                                break;
                        }
                }
                if (!x)
                        break;
                exchange_fail(e, x, error, now);
        }
}

int coap_engine_deregister_observe(CoapEngine *e, uint64_t id, uint64_t now) {
        Exchange *x = coap_map_get(&e->by_id, id);
        Plan plan = {.observe = COAP_OBSERVE_DEREGISTER};
        int r;

        if (!x)
                return -ENOENT;
        if (!x->observe)
                return -EINVAL;
        if (x->busy > 0)
                return -EBUSY;

        exchange_drop_cont(e, x);
        x->b2 = false;
        x->held = false;
        x->observe = false;
        x->was_observe = true;
        r = exchange_build(e, x, &plan, NULL);
        if (r >= 0) {
                exchange_arm(e, x);
                r = engine_send(e, &x->dest, x->msg, x->msg_len);
        }
        if (r < 0) {
                exchange_fail(e, x, r, now);
                return r;
        }
        if (!x->confirmable) {
                exchange_cancel(e, x, now);
                return 0;
        }
        exchange_timer_wait(e, x, now);
        return 0;
}

int coap_engine_reregister_observe(CoapEngine *e, uint64_t id, uint64_t now) {
        Exchange *x = coap_map_get(&e->by_id, id);
        /* The registration again: the application's options, Observe 0 and early Block2. */
        Plan plan = {.first = true, .observe = OBSERVE_APP};
        int r;

        if (!x)
                return -ENOENT;
        if (!x->observe)
                return -EINVAL;
        /* From its own event handler, or the registration or a refresh is still unanswered. */
        if (x->busy > 0 || x->wait != WAIT_NONE || x->stream_wait)
                return -EBUSY;
        /* A body uploaded block-wise is not sent again. */
        if (x->b1)
                return -EOPNOTSUPP;

        r = exchange_build(e, x, &plan, NULL);
        if (r < 0)
                return r;
        /* The refresh supersedes the retrieval of a notification's blocks. */
        exchange_drop_cont(e, x);
        x->b2 = false;
        x->held = false;
        if (!x->confirmable)
                /* Sent once, as the registration; notifications need no timer. */
                return engine_send(e, &x->dest, x->msg, x->msg_len);
        r = exchange_transmit(e, x, now);
        if (r < 0) {
                /* Not sent: the observation goes on as it was (Zephyr). */
                exchange_timer_stop(e, x);
                x->wait = WAIT_NONE;
                x->resend = RESEND_NONE;
        }
        return r;
}

static int msg_get_block(const CoapMsg *m, uint16_t number, CoapBlock *ret) {
        CoapOption o;

        if (!coap_msg_find_option(m, number, &o))
                return -ENOENT;
        return coap_block_decode(o.value, o.len, ret);
}

/* An ETag of invalid length counts as absent (RFC 7252 §5.10.6: 1..8 bytes). */
static uint8_t msg_get_etag(const CoapMsg *m, const uint8_t **ret) {
        CoapOption o;

        if (!coap_msg_find_option(m, COAP_OPTION_ETAG, &o) || o.len == 0 || o.len > ETAG_LEN_MAX)
                return 0;
        *ret = o.value;
        return (uint8_t) o.len;
}

/* Block2 (RFC 7959 §2.4): one token for the whole body, a new MID per block. */
static void exchange_on_block2(CoapEngine *e, Exchange *x, const CoapMsg *m, const CoapBlock *blk,
                               uint64_t now) {
        size_t bsize = coap_szx_to_size(blk->szx), offset;
        const uint8_t *etag = NULL;
        uint8_t etag_len = msg_get_etag(m, &etag);
        bool stream = x->observe;
        CoapEvent ev;
        Plan plan;
        int r;

        if (x->b1 && blk->more) {
                /* The upload is complete and its response is a body of several blocks: fetch
                 * them like any download (RFC 7959 §3.3), with body offsets from 0. */
                x->b1 = false;
                x->b1_done = true;
        }
        if (!x->b2) {
                if (blk->num != 0) {
                        exchange_fail(e, x, -EBADMSG, now);
                        return;
                }
                x->b2 = true;
                x->b2_offset = 0;
                x->b2_szx = blk->szx < x->block_szx ? blk->szx : x->block_szx;
                x->etag_len = etag_len;
                if (etag_len > 0)
                        memcpy(x->etag, etag, etag_len);
        } else {
                if ((uint64_t) blk->num * bsize != x->b2_offset || etag_len != x->etag_len ||
                    (etag_len > 0 && memcmp(etag, x->etag, etag_len) != 0)) {
                        exchange_fail(e, x, -EBADMSG, now);
                        return;
                }
                if (blk->szx < x->b2_szx)
                        x->b2_szx = blk->szx;
        }
        if ((blk->more && m->payload_len != bsize) || m->payload_len > bsize) {
                exchange_fail(e, x, -EBADMSG, now);
                return;
        }

        offset = x->b2_offset;
        if (!blk->more) {
                x->b2 = false;
                if (!stream) {
                        exchange_respond_final(e, x, m, x->b1 ? body_end(x) : offset, now);
                        return;
                }
                exchange_drop_cont(e, x);
                ev = response_event(x, m, offset, true);
                (void) exchange_emit(e, x, &ev);
                return;
        }

        x->b2_offset += (uint32_t) m->payload_len; /* <= bsize */
        ev = response_event(x, m, offset, false);
        if (!exchange_emit(e, x, &ev))
                return;

        /* A notification's remaining blocks go on their own token, so that a new notification
         * on the registration token can be told apart from them (RFC 7641 §3.4 + RFC 7959). */
        if (stream && !x->has_cont) {
                r = engine_new_token(e, &x->cont_token);
                if (r >= 0)
                        r = coap_map_reserve(&e->by_token, e->by_token.n + 1);
                if (r < 0) {
                        exchange_fail(e, x, r, now);
                        return;
                }
                coap_map_put(&e->by_token, x->cont_token, x);
                x->has_cont = true;
        }
        plan = (Plan){
                .cont_token = stream,
                .observe = OBSERVE_NONE,
                .block2 = true,
                .b2 = {.num = (uint32_t) (x->b2_offset / coap_szx_to_size(x->b2_szx)),
                       .szx = x->b2_szx},
        };
        if (x->b2_offset / coap_szx_to_size(x->b2_szx) >= BLOCK_NUM_LIMIT) {
                exchange_fail(e, x, -EFBIG, now);
                return;
        }
        if (x->owner_ref->paused) {
                /* No timer: coap_engine_resume_owner() sends the request for the next block. */
                x->held = true;
                x->held_plan = plan;
                return;
        }
        exchange_continue(e, x, &plan, NULL, now);
}

/* Block1 (RFC 7959 §2.5): answers to the blocks before the last one. Returns true when handled. */
static bool exchange_on_block1(CoapEngine *e, Exchange *x, const CoapMsg *m, uint64_t now) {
        CoapBlock blk;
        bool has_blk = msg_get_block(m, COAP_OPTION_BLOCK1, &blk) >= 0;
        uint32_t sent;
        CoapEvent ev;
        Plan plan;

        if (x->b1_done)
                return false;
        /* RFC 7959 §2.9.3: 4.13 with a smaller Block1 size: start over at that size (a stream
         * only while it still has its beginning). */
        if (m->code == COAP_CODE_REQUEST_ENTITY_TOO_LARGE && has_blk && x->payload_len > 0 &&
            body_base(x) == 0 &&
            (x->b1 ? blk.szx < x->b1_szx : x->payload_len > coap_szx_to_size(blk.szx))) {
                if (!x->b1) {
                        x->b1 = true;
                        x->request_tag = engine_random(e);
                }
                x->b1_szx = blk.szx;
                x->b1_offset = 0;
                plan = x->plan;
                exchange_continue(e, x, &plan, NULL, now);
                return true;
        }
        if (!x->b1 || (body_complete(x) && x->b1_offset + x->b1_len >= body_end(x)))
                return false;

        sent = x->b1_offset + x->b1_len;
        if (COAP_CODE_CLASS(m->code) != 2) {
                exchange_respond_final(e, x, m, sent, now);
                return true;
        }
        if (has_blk && blk.szx < x->b1_szx)
                x->b1_szx = blk.szx;
        ev = response_event(x, m, sent, false);
        if (!exchange_emit(e, x, &ev))
                return true;
        x->b1_offset = sent;
        if (x->stream) {
                /* What the server has is not needed again: room for what comes next. */
                uint32_t done = sent - x->stream_base;

                memmove(x->stream_buf, x->stream_buf + done, x->payload_len - done);
                x->payload_len -= done;
                x->stream_base = sent;
                if (!block1_ready(x)) {
                        /* No timer: coap_engine_append() sends the next block. */
                        x->stream_wait = true;
                        return true;
                }
        }
        plan = x->plan;
        exchange_continue(e, x, &plan, NULL, now);
        return true;
}

int coap_engine_append(CoapEngine *e, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                       bool end, uint64_t now) {
        Exchange *x = coap_map_get(&e->by_id, id);
        Plan plan;
        int r = 0;

        if (!x)
                return -ENOENT;
        if (!x->stream || x->stream_end || offset != body_end(x) || (len > 0 && !data))
                r = -EINVAL;
        else if (len > x->stream_window - x->payload_len)
                r = -ENOBUFS;
        if (r < 0) {
                exchange_fail(e, x, r, now);
                return r;
        }
        if (len > 0)
                memcpy(x->stream_buf + x->payload_len, data, len);
        x->payload_len += (uint32_t) len; /* <= stream_window */
        x->stream_end = end;
        if (x->stream_wait && block1_ready(x)) {
                x->stream_wait = false;
                plan = x->plan;
                exchange_continue(e, x, &plan, NULL, now);
        }
        return 0;
}

/* A matched response to the outstanding message of a live exchange. */
static void exchange_on_response(CoapEngine *e, Exchange *x, const CoapMsg *m, bool truncated,
                                 uint64_t now) {
        CoapBlock blk;
        CoapEvent ev;
        Plan plan;
        int r;

        exchange_timer_stop(e, x);
        x->wait = WAIT_NONE;
        x->resend = RESEND_NONE;
        if (x->observe && COAP_CODE_CLASS(m->code) != 2) {
                x->observe = false;
                x->was_observe = true;
        }

        if (exchange_on_block1(e, x, m, now))
                return;

        r = msg_get_block(m, COAP_OPTION_BLOCK2, &blk);
        if (truncated) {
                /* Too big for the receive buffer: ask for it block-wise, once. */
                if (r == -ENOENT && COAP_CODE_CLASS(m->code) == 2 && !x->plan.block2 && !x->b1 &&
                    !x->observe) {
                        plan = x->plan;
                        plan.first = false;
                        plan.block2 = true;
                        plan.b2 = (CoapBlock){.szx = x->block_szx};
                        exchange_continue(e, x, &plan, NULL, now);
                        return;
                }
                exchange_fail(e, x, -EMSGSIZE, now);
                return;
        }
        if (r != -ENOENT) {
                if (r < 0)
                        exchange_fail(e, x, r, now);
                else
                        exchange_on_block2(e, x, m, &blk, now);
                return;
        }
        if (x->b2 && COAP_CODE_CLASS(m->code) == 2) {
                /* A success without Block2 in the middle of a body. */
                exchange_fail(e, x, -EBADMSG, now);
                return;
        }
        if (x->observe) {
                exchange_drop_cont(e, x);
                ev = response_event(x, m, 0, true);
                (void) exchange_emit(e, x, &ev);
                return;
        }
        exchange_respond_final(e, x, m, x->b1 ? body_end(x) : 0, now);
}

/* A response on the registration token of a live observation (RFC 7641 §3.2-§3.4). */
static void exchange_on_notification(CoapEngine *e, Exchange *x, const CoapMsg *m, bool truncated,
                                     uint64_t now) {
        uint32_t seq;

        if (COAP_CODE_CLASS(m->code) != 2 ||
            coap_msg_get_uint_option(m, COAP_OPTION_OBSERVE, &seq) < 0) {
                /* The server ended the observation: this response is the last. */
                exchange_drop_cont(e, x);
                x->b2 = false;
                x->observe = false;
                x->was_observe = true;
                exchange_on_response(e, x, m, truncated, now);
                return;
        }
        if (x->have_seq && seq != x->obs_seq &&
            !coap_observe_is_fresher(x->obs_seq, x->obs_usec, seq, now)) {
                /* Dropped, but as the answer to a refresh it still acknowledges it. */
                if (m->type == COAP_TYPE_ACK) {
                        exchange_timer_stop(e, x);
                        x->wait = WAIT_NONE;
                        x->resend = RESEND_NONE;
                }
                return;
        }
        x->have_seq = true;
        x->obs_seq = seq;
        x->obs_usec = now;
        /* A new notification supersedes the retrieval of the previous one's blocks. */
        exchange_drop_cont(e, x);
        x->b2 = false;
        x->held = false;
        exchange_on_response(e, x, m, truncated, now);
}

/* RFC 9175 §2.4 item 3: 4.01 + Echo: send the request again at once, with the Echo value. */
static bool exchange_on_echo(CoapEngine *e, Exchange *x, const CoapMsg *m, uint64_t now) {
        CoapOption echo;
        Plan plan;

        if (!coap_msg_find_option(m, COAP_OPTION_ECHO, &echo) || echo.len == 0 ||
            echo.len > ECHO_LEN_MAX)
                return false;
        if (m->code != COAP_CODE_UNAUTHORIZED || x->echo_retries >= ECHO_RETRIES_MAX) {
                owner_set_echo(x->owner_ref, echo.value, echo.len);
                return false;
        }
        x->echo_retries++;
        exchange_timer_stop(e, x);
        plan = x->plan;
        exchange_continue(e, x, &plan, &echo, now);
        return true;
}

static bool exchange_heard(const Exchange *x, const CoapAddr *src) {
        for (size_t i = 0; i < x->n_sources; i++)
                if (addr_equal(&x->sources[i], src))
                        return true;
        return false;
}

/* One answer to a multicast request, from a group member: delivered once per source (a
 * retransmission or a second answer is dropped); a CON one is ACKed, as a unicast response would
 * be. Block-wise and cut-off answers are dropped, as Zephyr does: a body in blocks needs a
 * unicast exchange with that member. */
static void exchange_on_mcast_response(CoapEngine *e, Exchange *x, const CoapMsg *m,
                                       const CoapAddr *src, bool truncated) {
        CoapAddr *sources;
        CoapEvent ev;

        if (m->type == COAP_TYPE_CON)
                (void) engine_send_empty(e, COAP_TYPE_ACK, m->mid, src);
        if (src->len == 0 || exchange_heard(x, src) || x->n_sources >= MCAST_SOURCES_MAX ||
            truncated || coap_msg_find_option(m, COAP_OPTION_BLOCK2, NULL))
                return;
        sources = realloc(x->sources, (x->n_sources + 1) * sizeof(CoapAddr));
        if (!sources)
                return;
        x->sources = sources;
        x->sources[x->n_sources++] = *src;
        ev = response_event(x, m, 0, true);
        ev.source = src;
        (void) exchange_emit(e, x, &ev);
}

static Exchange *engine_find_by_mid(CoapEngine *e, uint16_t mid, const CoapAddr *src) {
        size_t pos = 0;
        Exchange *x;

        while ((x = coap_map_next(&e->by_mid, mid, &pos)))
                if (exchange_source_ok(x, src))
                        return x;
        return NULL;
}

static void engine_unmatched(CoapEngine *e, const CoapMsg *m, const CoapAddr *src) {
        e->env->stats->unmatched++;
        /* RFC 7252 §4.2/§4.3: reject what we cannot process; never RST an ACK (§4.2), nor a
         * group (a forged source). */
        if ((m->type == COAP_TYPE_CON || m->type == COAP_TYPE_NON) && !coap_addr_is_multicast(src))
                (void) engine_send_empty(e, COAP_TYPE_RST, m->mid, src);
}

static void engine_on_response(CoapEngine *e, const CoapMsg *m, const CoapAddr *src, bool truncated,
                               uint64_t now) {
        Exchange *x = NULL;
        bool is_cont = false;
        int r;

        if (m->token_len == COAP_TOKEN_MAX) {
                uint64_t key = token_key(m);

                x = coap_map_get(&e->by_token, key);
                is_cont = x && x->has_cont && x->cont_token == key;
        }
        if (x && !exchange_source_ok(x, src))
                x = NULL;
        /* A piggybacked response answers exactly the outstanding message (RFC 7252 §5.3.2). */
        if (x && m->type == COAP_TYPE_ACK &&
            (x->wait != WAIT_ACK || x->resend == RESEND_FIRST || !x->has_mid || x->mid != m->mid ||
             x->plan.cont_token != is_cont))
                x = NULL;
        if (!x) {
                engine_unmatched(e, m, src);
                return;
        }

        if (x->wait == WAIT_HOLD) {
                /* Nothing is delivered any more. A former observation rejects new notifications
                 * (RFC 7641 §3.6); anything else that is confirmable is ACKed, duplicates too. */
                if (x->was_observe && m->type != COAP_TYPE_ACK && x->last_response_mid != m->mid)
                        (void) engine_send_empty(e, COAP_TYPE_RST, m->mid,
                                                 src->len > 0 ? src : &x->dest);
                else if (m->type == COAP_TYPE_CON)
                        (void) engine_send_empty(e, COAP_TYPE_ACK, m->mid,
                                                 src->len > 0 ? src : &x->dest);
                return;
        }

        if (x->wait == WAIT_MCAST) {
                exchange_on_mcast_response(e, x, m, src, truncated);
                return;
        }
        if (m->type == COAP_TYPE_CON) {
                r = engine_send_empty(e, COAP_TYPE_ACK, m->mid, src->len > 0 ? src : &x->dest);
                if (r < 0 && r != -EAGAIN) {
                        exchange_fail(e, x, r, now);
                        return;
                }
        }
        /* Duplicates are dropped after they were ACKed again (RFC 7252 §4.5). */
        if (m->type != COAP_TYPE_ACK) {
                if (x->last_response_mid == m->mid)
                        return;
                x->last_response_mid = m->mid;
        }
        /* A held download asked for nothing: only a new notification may come. Nor did an
         * upload waiting for its next block. */
        if ((x->held && (!x->observe || is_cont)) || x->stream_wait)
                return;
        if (exchange_on_echo(e, x, m, now))
                return;
        if (x->observe && !is_cont)
                exchange_on_notification(e, x, m, truncated, now);
        else
                exchange_on_response(e, x, m, truncated, now);
}

void coap_engine_feed(CoapEngine *e, const uint8_t *buf, size_t len, const CoapAddr *src,
                      bool truncated, uint64_t now) {
        static const CoapAddr no_addr = {};
        Exchange *x;
        CoapMsg m;

        if (!src)
                src = &no_addr;
        e->env->stats->messages_received++;
        if (len == 0)
                return;
        if (coap_msg_parse(buf, len, &m, NULL) < 0) {
                e->env->stats->malformed++;
                /* A CON whose header parses gets an RST; a cut-off datagram was not the peer's
                 * fault. */
                if (!truncated && len >= COAP_HEADER_SIZE && (buf[0] >> 6) == COAP_VERSION &&
                    ((buf[0] >> 4) & 3) == COAP_TYPE_CON)
                        (void) engine_send_empty(e, COAP_TYPE_RST,
                                                 (uint16_t) (buf[2] << 8 | buf[3]), src);
                return;
        }

        if (m.type == COAP_TYPE_RST) {
                x = engine_find_by_mid(e, m.mid, src);
                if (!x) {
                        e->env->stats->unmatched++;
                        return;
                }
                /* One member rejecting a multicast request does not end it for the others. */
                if (x->mcast_ms > 0)
                        return;
                exchange_fail(e, x, -ECONNRESET, now);
                return;
        }
        if (m.code == COAP_CODE_EMPTY && m.type == COAP_TYPE_ACK) {
                x = engine_find_by_mid(e, m.mid, src);
                if (!x) {
                        e->env->stats->unmatched++;
                        return;
                }
                if (x->wait != WAIT_ACK || x->resend == RESEND_FIRST)
                        return;
                /* RFC 7252 §5.2.2: the response will come separately. */
                x->wait = WAIT_SEPARATE;
                x->resend = RESEND_NONE;
                x->retries = 0;
                exchange_timer_set(e, x, sat_add(now, COAP_SEPARATE_TIMEOUT_USEC), UINT64_MAX);
                return;
        }
        if (COAP_CODE_CLASS(m.code) == 0) {
                /* A ping (empty CON) or a request: we serve nothing. */
                engine_unmatched(e, &m, src);
                return;
        }
        engine_on_response(e, &m, src, truncated, now);
}

void coap_engine_tick(CoapEngine *e, uint64_t now) {
        CoapTimer *t;

        /* Everything re-armed here or submitted by handlers lies after now, so this ends. */
        while ((t = coap_heap_peek(&e->timers)) && t->deadline <= now)
                exchange_expire(e, container_of(t, Exchange, timer), now);
}

uint64_t coap_engine_next_deadline(const CoapEngine *e) {
        CoapTimer *t = coap_heap_peek(&e->timers);

        return t ? t->deadline : UINT64_MAX;
}

uint64_t coap_engine_next_latest(const CoapEngine *e) {
        CoapTimer *t = coap_heap_peek(&e->latest);

        return t ? t->deadline : UINT64_MAX;
}

bool coap_engine_is_idle(const CoapEngine *e) {
        return e->n_all == 0;
}

bool coap_engine_holds_dest(const CoapEngine *e, const CoapAddr *dest) {
        for (const ListNode *n = e->all.head; n; n = n->next)
                if (dest_equal(&container_of(n, Exchange, all_node)->dest, dest))
                        return true;
        return false;
}

size_t coap_engine_n_requests(const CoapEngine *e) {
        return e->n_live;
}

size_t coap_engine_n_requests_of(const CoapEngine *e, uint64_t owner) {
        const Owner *o = coap_map_get(&e->owners, owner);

        return o ? o->n_live : 0;
}

const CoapEngineStats *coap_engine_get_stats(const CoapEngine *e) {
        return e->env->stats;
}
