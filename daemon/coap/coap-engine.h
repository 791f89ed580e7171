/* SPDX-License-Identifier: MIT */
#pragma once

/* The CoAP request engine for one UDP socket: every exchange sent over that socket, by any
 * client context, lives here. Bytes and a `now` go in; datagrams to send and events come out
 * through CoapEngineEnv. Pure: libc only, no clock, no socket, no logging, no globals.
 *
 * Times are microseconds on a monotonic clock chosen by the caller.
 *
 * Re-entrancy: an event handler may call coap_engine_cancel(), coap_engine_cancel_owner() and
 * coap_engine_submit() on the same engine; the engine finishes its own state change before it
 * emits an event. It must not free the engine. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "coap-msg.h"

/* A peer address: IPv4 or IPv6, the only families of the daemon's sockets (28 bytes where a
 * sockaddr_storage took 128, in every exchange, peer and socket). len 0 means "none": the socket
 * is connected (send without address). */
typedef struct CoapAddr {
        socklen_t len;
        union {
                sa_family_t ss_family;
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } ss;
} CoapAddr;

/* Zephyr's struct coap_transmission_parameters. */
typedef struct CoapTxParams {
        uint32_t ack_timeout_ms;     /* base ACK timeout, > 0 */
        uint16_t ack_random_percent; /* >= 100; first timeout drawn from [ack, ack*pct/100) */
        uint16_t backoff_percent;    /* >= 100; 200 doubles the timeout per retransmission */
        uint8_t max_retransmission;  /* retransmissions after the first send */
} CoapTxParams;

#define COAP_TX_PARAMS_DEFAULT             \
        ((CoapTxParams){                   \
                .ack_timeout_ms = 2000,    \
                .ack_random_percent = 150, \
                .backoff_percent = 200,    \
                .max_retransmission = 4,   \
        })

#define COAP_SEPARATE_TIMEOUT_USEC    (UINT64_C(6000) * 1000) /* wait for a separate response */
#define COAP_EXCHANGE_LIFETIME_FACTOR 3                       /* hold = 3 x ack_timeout */

typedef struct CoapRequestSpec {
        uint64_t id;    /* chosen by the caller; unique within the engine */
        uint64_t owner; /* grouping key (a client context) for *_owner() calls and Echo */
        uint8_t method; /* COAP_CODE_GET .. COAP_CODE_IPATCH */
        bool confirmable;
        const char *path;          /* "a/b?q=1"; NULL or "" for the root */
        int32_t content_format;    /* < 0: none; only sent with a payload */
        const uint8_t *payload;    /* copied */
        size_t payload_len;        /* > block size: Block1 upload */
        const CoapOption *options; /* extra options, copied, any order; Observe=0 registers */
        size_t n_options;
        CoapTxParams params;
        uint8_t block_szx; /* preferred block size for Block1 and Block2, 0..6 */
        bool block2_early; /* early negotiation (RFC 7959 §2.4): the first request carries Block2
                            * NUM 0 with block_szx; an upload carries it on its last Block1
                            * request (§3.3). An application Block2 in options wins. */
        const CoapAddr *dest; /* NULL or len 0: connected socket */
        /* A streamed Block1 body: payload is its beginning (more than one block), the rest
         * comes through coap_engine_append(); the engine holds at most stream_window bytes of
         * it (from the last block the server acknowledged on), so the body has no size limit.
         * Each acknowledged block is an event (offset: the bytes acknowledged), after which
         * that many more bytes fit. */
        bool stream;
        size_t stream_window;
        /* > 0: dest is a multicast group (RFC 7252 §8) and the request collects responses for
         * this long: NON only, no Observe, no body larger than one block. Every response from a
         * source not heard yet in the window is an event with that source; block-wise (Block2)
         * and cut-off responses are dropped, as Zephyr does. The window's end is the final event:
         * result 0, no message, last_block false. Nothing the group sends back gets an RST. */
        uint32_t multicast_ms;
} CoapRequestSpec;

/* One callback of Zephyr's coap_client_response_cb_t, plus what the proxy needs. */
typedef struct CoapEvent {
        uint64_t id;
        uint64_t owner;
        int result; /* CoAP code byte (>= 0) or negative errno */
        size_t offset;
        const uint8_t *payload; /* NULL when none; valid during the callback only */
        size_t payload_len;
        bool last_block;    /* Zephyr's last_block: always true on errors */
        bool final;         /* the engine has forgotten the request: no more events for id */
        const CoapMsg *msg; /* the response (options, type); NULL on errors */
        bool silent;        /* final only: Zephyr makes no callback here (a NON request that got no
                             * response by its first timeout, result -ETIMEDOUT): forget the request,
                             * tell the application nothing */
        bool acked; /* final -ETIMEDOUT only: the peer acknowledged the request (an empty ACK),
                     * its separate response never came: the peer is there */
        const CoapAddr *source; /* a multicast request's responder; NULL otherwise */
} CoapEvent;

typedef struct CoapEngineStats CoapEngineStats;

/* What an engine calls and where it counts. The engine keeps a pointer to it, not a copy: it
 * outlives the engine, and may serve many engines (their userdata tells them apart), which then
 * count into the same stats. */
typedef struct CoapEngineEnv {
        /* Sends one datagram. Returns 0, -EAGAIN (try again later) or another negative errno. */
        int (*send)(void *userdata, const CoapAddr *dest, const uint8_t *buf, size_t len);
        void (*event)(void *userdata, const CoapEvent *ev);
        uint64_t (*random_u64)(void *userdata); /* tokens, Request-Tags, first MID, jitter */
        CoapEngineStats *stats;
} CoapEngineEnv;

struct CoapEngineStats {
        uint64_t messages_sent; /* every datagram handed to send(), retransmissions included */
        uint64_t messages_received;
        uint64_t retransmissions;
        uint64_t timeouts;
        uint64_t malformed; /* datagrams that did not parse */
        uint64_t unmatched; /* parsed but matched no exchange */
};

typedef struct CoapEngine CoapEngine;

int coap_engine_new(const CoapEngineEnv *env, void *userdata, uint64_t now, CoapEngine **ret);
/* Frees every exchange without emitting events. NULL-safe; returns NULL. */
CoapEngine *coap_engine_free(CoapEngine *e);

/* Copies the request and sends its first datagram. Returns 0; -EINVAL for a bad spec (method,
 * path segment > 255, option > 1034 bytes, block_szx > 6, params out of range, multicast_ms with
 * a unicast destination, CON, Observe or a Block1 body); -EEXIST when id
 * is in use; -EALREADY for an observation (Observe=0) when the owner observes the same resource
 * on this engine already (same method, destination, Uri-Host/-Port/-Path/-Query, Proxy-Uri/
 * -Scheme, and for FETCH the same payload), as Zephyr refuses it; -ENOMEM; or the send error of
 * the first datagram (the request is then forgotten and no event is emitted, as in Zephyr). */
int coap_engine_submit(CoapEngine *e, const CoapRequestSpec *spec, uint64_t now);
/* Whether a is an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address. */
bool coap_addr_is_multicast(const CoapAddr *a);
/* The next bytes of a streamed body (CoapRequestSpec.stream) at offset, the end of what came
 * before; end: the body is complete. A Block1 transfer that waits for them goes on. -ENOENT
 * unknown id (e.g. the request ended); a broken stream (not one, ended, offset not the end,
 * over stream_window) ends the request with a final -EINVAL or -ENOBUFS event and returns it. */
int coap_engine_append(CoapEngine *e, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                       bool end, uint64_t now);
/* Emits one final -ECANCELED event. -ENOENT when id is unknown. A cancelled observation is held
 * (see coap_engine_is_idle()): its later notifications get an RST. */
int coap_engine_cancel(CoapEngine *e, uint64_t id, uint64_t now);
/* Cancels every request of owner (one -ECANCELED event each); returns how many. */
size_t coap_engine_cancel_owner(CoapEngine *e, uint64_t owner, uint64_t now);
/* Forgets every request of owner without events, and its held exchanges (the owner is gone). */
void coap_engine_drop_owner(CoapEngine *e, uint64_t owner);
/* Flow control for an owner whose events are not consumed fast enough: while paused, each of
 * its Block2 downloads (notifications' blocks too) stops after emitting a block instead of asking
 * for the next one, with no message outstanding and no timer. Only the owner's live requests are
 * affected (a request submitted while it has some is paused too); the state ends with its last
 * live request. Returns the number of live requests, 0 when there is none (nothing to pause).
 * Safe from an event handler: the download of the event being emitted holds. */
size_t coap_engine_pause_owner(CoapEngine *e, uint64_t owner);
/* Ends the pause: every held download asks for its next block now. A send error ends that
 * request with a final event (whose handler may pause again, which stops the resumption). */
void coap_engine_resume_owner(CoapEngine *e, uint64_t owner, uint64_t now);
/* Sends a GET with Observe=1 on the registration token (RFC 7641 §3.6). For CON the reply is
 * the final event; for NON a final -ECANCELED follows the send. -ENOENT unknown id, -EINVAL not
 * an observation, -EBUSY from inside this request's own event handler. A send error ends the
 * request with a final event carrying it and is returned. */
int coap_engine_deregister_observe(CoapEngine *e, uint64_t id, uint64_t now);
/* Sends the registration again on its token, with a new MID (RFC 7641 §3.3.1): the answer comes
 * as a notification, the observation goes on. CON is retransmitted until answered (running out
 * of retransmissions ends the observation with -ETIMEDOUT), NON is sent once. -ENOENT unknown id,
 * -EINVAL not an observation, -EBUSY from its own event handler or while the registration or a
 * refresh waits for its answer, -EOPNOTSUPP for a body uploaded block-wise; a send error is
 * returned and the observation goes on. */
int coap_engine_reregister_observe(CoapEngine *e, uint64_t id, uint64_t now);

/* One received datagram from src (len 0: connected socket). truncated: it was longer than buf
 * (MSG_TRUNC). Malformed input is counted and dropped; a malformed CON gets an RST. */
void coap_engine_feed(CoapEngine *e, const uint8_t *buf, size_t len, const CoapAddr *src,
                      bool truncated, uint64_t now);
/* The socket failed (e.g. -ECONNREFUSED from ICMP, -EIO): every request gets a final error. */
void coap_engine_fail_all(CoapEngine *e, int error, uint64_t now);
/* The path to one peer failed (e.g. its DTLS handshake): every request sent to dest (len > 0)
 * gets a final error; requests to other peers and held exchanges are untouched. On a connected
 * socket, whose only peer is its own, use coap_engine_fail_all(). */
void coap_engine_fail_dest(CoapEngine *e, const CoapAddr *dest, int error, uint64_t now);
/* A datagram env->send() took (returned 0) for later failed to leave with error: a socket that
 * batches its sends learns it only when it sends the batch. If the datagram is still the current
 * message of a request sent to dest, the request goes on as if the send had failed then: -EAGAIN
 * (a full socket buffer) sends it again in 10 ms without counting a retransmission (200 tries in
 * a row that all meet a full buffer end the request with -EAGAIN), another error ends it with a
 * final event carrying the error (where a first send's error would have refused it). Anything
 * else (an ACK, an RST, an older message) is forgotten: UDP loses datagrams. */
void coap_engine_send_failed(CoapEngine *e, const uint8_t *buf, size_t len, const CoapAddr *dest,
                             int error, uint64_t now);

/* Runs retransmissions and timeouts due at now. */
void coap_engine_tick(CoapEngine *e, uint64_t now);
/* Earliest time coap_engine_tick() has work; UINT64_MAX when none. */
uint64_t coap_engine_next_deadline(const CoapEngine *e);
/* The time by which coap_engine_tick() must have run so that no transmission leaves the window
 * of RFC 7252 §4.2: a retransmission at most ACK_TIMEOUT * ACK_RANDOM_FACTOR * backoff^n after
 * the previous transmission; a send retried after -EAGAIN on time. Never earlier than
 * coap_engine_next_deadline(); UINT64_MAX when no pending timer is bounded (holds and separate
 * response waits may run late). A caller that coarsens its timer keeps deadline + slack within
 * this. */
uint64_t coap_engine_next_latest(const CoapEngine *e);

/* No request and no held exchange. A held exchange (for 3 x its ACK timeout after it ended) still
 * answers its peer: a retransmitted separate response is ACKed again (RFC 7252 §4.5), a
 * notification after a cancelled observation gets an RST (RFC 7641 §3.6). Keep the socket read
 * and ticked until the engine is idle; coap_engine_next_deadline() says when that may change. */
bool coap_engine_is_idle(const CoapEngine *e);
/* Whether a request or a held exchange goes to dest (len 0: the connected peer), e.g. so that the
 * DTLS session to it is kept. Linear in the exchanges. */
bool coap_engine_holds_dest(const CoapEngine *e, const CoapAddr *dest);
/* Requests not yet final. */
size_t coap_engine_n_requests(const CoapEngine *e);
size_t coap_engine_n_requests_of(const CoapEngine *e, uint64_t owner);
/* The env's stats: shared by every engine of that env. */
const CoapEngineStats *coap_engine_get_stats(const CoapEngine *e);
