/* SPDX-License-Identifier: MIT */
#include "core/socket.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caller.h"
#include "core/client.h"
#include "core/socket-tx.h"
#include "internal/request-rules.h"
#include "util/log.h"
#include "util/random-util.h"

/* Datagrams read from one socket per turn of the loop before the others get theirs; the rest
 * is read in the next turn. */
#define SOCKET_READ_BURST      256
/* Datagrams per recvmmsg(), each into its own MANAGER_RX_BUFFER_SIZE buffer. */
#define SOCKET_RX_BATCH        16
/* Ready sockets taken from the epoll set per turn; the others stay ready for the next. */
#define SOCKET_EVENTS_PER_TURN 256

/* CoAP datagrams held per secure peer while its handshake runs (retransmissions of a queued
 * datagram are not queued again). */
#define PEER_QUEUE_MAX_DATAGRAMS 128
#define PEER_QUEUE_MAX_BYTES     (256 * 1024)

struct SocketDatagram {
        SocketDatagram *next;
        size_t len;
        uint8_t data[];
};

/* Where every socket is read into, one reader at a time: set up once, so that a read costs no
 * more than resetting the address lengths. Its pages are touched as far as datagrams reach,
 * mostly one per buffer. */
struct SocketRx {
        struct mmsghdr msgs[SOCKET_RX_BATCH];
        struct iovec iovs[SOCKET_RX_BATCH];
        CoapAddr srcs[SOCKET_RX_BATCH];
        uint8_t bufs[SOCKET_RX_BATCH][MANAGER_RX_BUFFER_SIZE];
};

static int socket_rx_new(SocketRx **ret) {
        /* Not calloc(): from recycled heap memory it would clear, and so touch, every buffer. */
        SocketRx *rx = malloc(sizeof(SocketRx));

        if (!rx)
                return -ENOMEM;
        memset(rx, 0, offsetof(SocketRx, bufs));
        for (unsigned i = 0; i < SOCKET_RX_BATCH; i++) {
                rx->iovs[i] =
                        (struct iovec){.iov_base = rx->bufs[i], .iov_len = sizeof rx->bufs[i]};
                rx->msgs[i].msg_hdr.msg_name = &rx->srcs[i].ss;
                rx->msgs[i].msg_hdr.msg_iov = &rx->iovs[i];
                rx->msgs[i].msg_hdr.msg_iovlen = 1;
        }
        *ret = rx;
        return 0;
}

PeerCredentials *peer_credentials_free(PeerCredentials *c) {
        if (!c)
                return NULL;
        dtls_credentials_unref(c->dtls);
        /* The fingerprint hashes the secret too: no trace of it stays in freed memory. */
        explicit_bzero(c, sizeof *c);
        free(c);
        return NULL;
}

static uint64_t peer_key_hash(const void *key) {
        return hash_bytes(key, sizeof(PeerKey));
}

static bool peer_key_equal(const void *a, const void *b) {
        return memcmp(a, b, sizeof(PeerKey)) == 0;
}

static const void *peer_key(const void *v) {
        return &((const SocketPeer *) v)->where->key;
}

static const HashOps peer_hash_ops = {
        .key = peer_key, .hash = peer_key_hash, .equal = peer_key_equal};

/* All zero on a connected socket: every datagram goes to, and comes from, its one peer. */
static PeerKey socket_peer_key(const Socket *s, const CoapAddr *a) {
        PeerKey k = {};

        if (s->connected || !a || a->len == 0)
                return k;
        k.family = a->ss.ss_family;
        if (a->ss.ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) &a->ss;

                k.port = sin->sin_port;
                memcpy(k.addr, &sin->sin_addr, sizeof sin->sin_addr);
        } else if (a->ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &a->ss;

                k.port = sin6->sin6_port;
                k.scope = sin6->sin6_scope_id;
                memcpy(k.addr, &sin6->sin6_addr, sizeof sin6->sin6_addr);
        }
        return k;
}

/* The all-zero key (family 0) is the connected peer's: no map for the one peer of a
 * connected socket, the common case (~240 bytes each with its entry). */
static SocketPeer *socket_lookup_peer(const Socket *s, const PeerKey *k) {
        return k->family == 0 ? s->peer : hashmap_get(s->peers, k);
}

static SocketPeer *socket_find_peer(const Socket *s, const CoapAddr *a) {
        PeerKey k = socket_peer_key(s, a);

        return socket_lookup_peer(s, &k);
}

static void peer_drop_queue(SocketPeer *p) {
        if (!p->session)
                return;
        while (p->session->queue) {
                SocketDatagram *d = p->session->queue;

                p->session->queue = d->next;
                free(d);
        }
        p->session->queue_tail = NULL;
        p->session->n_queued = p->session->queued_bytes = 0;
}

/* A peer with an address: every one but a connected socket's, which is embedded in it. */
typedef struct SocketPeerAt {
        SocketPeer peer; /* first: freeing the peer frees this */
        PeerAddress where;
} SocketPeerAt;

static const CoapAddr peer_no_addr = {};

/* The engine's destination for p: len 0 for the connected peer. */
static const CoapAddr *peer_addr(const SocketPeer *p) {
        return p->where ? &p->where->addr : &peer_no_addr;
}

/* Frees what peer_new() made of p: its session, and p unless it is embedded in its socket. */
static void peer_discard(SocketPeer *p) {
        dtls_free(p->dtls);
        if (p->session) {
                free(p->session->pending_reason);
                explicit_bzero(p->session->fingerprint, sizeof p->session->fingerprint);
                free(p->session);
        }
        if (p == &p->socket->peer0)
                *p = (SocketPeer){};
        else
                free(p);
}

static void peer_free(SocketPeer *p) {
        Socket *s = p->socket;

        if (s->peer == p)
                s->peer = NULL;
        else if (hashmap_get(s->peers, &p->where->key) == p)
                hashmap_remove(s->peers, &p->where->key);
        if (p->dtls) {
                LIST_REMOVE(secure, s->secure, p);
                /* close_notify for an established session; the callbacks only touch p. */
                (void) dtls_close(p->dtls);
                log_debug("Socket fd %d: DTLS session closed", s->fd);
        }
        peer_drop_queue(p);
        peer_discard(p);
}

static ssize_t socket_raw_send(Socket *s, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        if (dest && dest->len > 0)
                return sendto(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                              (const struct sockaddr *) &dest->ss, dest->len);
        return send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int peer_push(void *userdata, const uint8_t *buf, size_t len) {
        SocketPeer *p = userdata;

        if (socket_raw_send(p->socket, peer_addr(p), buf, len) < 0)
                return log_debug_errno(errno, "Failed to send %zu byte DTLS datagram on fd %d: %m",
                                       len, p->socket->fd);
        return 0;
}

static void peer_deliver(void *userdata, const uint8_t *buf, size_t len) {
        SocketPeer *p = userdata;
        Socket *s = p->socket;

        log_debug("Received %zu byte DTLS record on fd %d", len, s->fd);
        coap_engine_feed(s->engine, buf, len, peer_addr(p), false, manager_now(s->manager));
}

static void peer_flush(SocketPeer *p) {
        while (p->session->queue) {
                SocketDatagram *d = p->session->queue;
                int r;

                p->session->queue = d->next;
                r = dtls_send(p->dtls, d->data, d->len);
                if (r < 0)
                        /* Lost like any datagram: the engine retransmits or times out. */
                        log_debug_errno(r, "Failed to send a queued datagram on fd %d: %m",
                                        p->socket->fd);
                free(d);
        }
        p->session->queue_tail = NULL;
        p->session->n_queued = p->session->queued_bytes = 0;
}

static void peer_state_changed(void *userdata, DtlsState state, int error) {
        SocketPeer *p = userdata;
        Socket *s = p->socket;

        switch (state) {
        case DTLS_STATE_ESTABLISHED: {
                _cleanup_free_ char *desc = NULL;

                if (log_get_max_level() >= LOG_DEBUG)
                        (void) dtls_describe(p->dtls, &desc);
                log_debug("Socket fd %d: DTLS session %s %s, flushing %zu datagrams", s->fd,
                          dtls_is_resumed(p->dtls) ? "resumed" : "established",
                          desc ?: "(unknown parameters)", p->session->n_queued);
                peer_flush(p);
                break;
        }
        case DTLS_STATE_FAILED:
        case DTLS_STATE_CLOSED:
                peer_drop_queue(p);
                if (error < 0) {
                        const char *reason = dtls_get_error_reason(p->dtls);

                        /* The operator's first clue to a misconfigured peer or credentials. */
                        log_full_errno(state == DTLS_STATE_FAILED ? LOG_NOTICE : LOG_DEBUG, error,
                                       "Socket fd %d: DTLS session %s: %m%s%s", s->fd,
                                       dtls_state_to_string(state), reason ? ": " : "",
                                       reason ?: "");
                        /* Reported to the requests from the loop, never from inside a send;
                         * GnuTLS' words go with it, for the application. */
                        p->session->pending_error = error;
                        free(p->session->pending_reason);
                        p->session->pending_reason = NULL;
                        if (reason && asprintf(&p->session->pending_reason, "DTLS session %s: %s",
                                               dtls_state_to_string(state), reason) < 0)
                                p->session->pending_reason = NULL; /* the errno alone then */
                        s->has_pending_error = true;
                }
                break;
        default:
                break;
        }
}

static int peer_enqueue(SocketPeer *p, const uint8_t *buf, size_t len) {
        SocketDatagram *d;

        /* The engine retransmits byte for byte: one copy is enough. */
        for (d = p->session->queue; d; d = d->next)
                if (d->len == len && memcmp(d->data, buf, len) == 0)
                        return 0;
        if (p->session->n_queued >= PEER_QUEUE_MAX_DATAGRAMS ||
            p->session->queued_bytes + len > PEER_QUEUE_MAX_BYTES)
                return -ENOBUFS;
        d = malloc(sizeof(SocketDatagram) + len);
        if (!d)
                return -ENOMEM;
        d->next = NULL;
        d->len = len;
        memcpy(d->data, buf, len);
        if (p->session->queue_tail)
                p->session->queue_tail->next = d;
        else
                p->session->queue = d;
        p->session->queue_tail = d;
        p->session->n_queued++;
        p->session->queued_bytes += len;
        return 0;
}

static int peer_send(SocketPeer *p, const uint8_t *buf, size_t len) {
        int r;

        switch (dtls_get_state(p->dtls)) {
        case DTLS_STATE_ESTABLISHED:
                return dtls_send(p->dtls, buf, len);
        case DTLS_STATE_HANDSHAKING:
                return peer_enqueue(p, buf, len);
        default:
                r = peer_enqueue(p, buf, len);
                if (r < 0)
                        return r;
                log_debug("Socket fd %d: starting a DTLS handshake", p->socket->fd);
                r = dtls_start(p->dtls, manager_now(p->socket->manager));
                if (r < 0)
                        peer_drop_queue(p);
                return r;
        }
}

/* Reports session failures to the requests of their peers: every one ends with the error. */
static void socket_settle(Socket *s) {
        SocketPeer *p;

        if (!s->has_pending_error)
                return;
        s->has_pending_error = false;
        /* Event handlers free requests but never peers (peers are collected from a defer source),
         * so the list stays intact. */
        LIST_FOREACH(secure, p, s->secure) {
                int error = p->session->pending_error;

                if (error == 0)
                        continue;
                p->session->pending_error = 0;
                s->failing_reason = p->session->pending_reason;
                if (!p->where)
                        coap_engine_fail_all(s->engine, error, manager_now(s->manager));
                else
                        coap_engine_fail_dest(s->engine, peer_addr(p), error,
                                              manager_now(s->manager));
                s->failing_reason = NULL;
                free(p->session->pending_reason);
                p->session->pending_reason = NULL;
        }
}

/* An eighth of the time left, at most 250 ms, and never past the engine's latest time. sd-event
 * then wakes us on a 250 ms grid where it can, so the retransmission timer that moves with every
 * block of a transfer does not cost a timerfd_settime() each time, while every transmission stays
 * inside its RFC 7252 §4.2 window (none at all without randomisation). At least 1: 0 would be
 * sd-event's default of 250 ms. */
static uint64_t socket_timer_accuracy(Socket *s, uint64_t deadline) {
        uint64_t now = manager_now(s->manager), latest = coap_engine_next_latest(s->engine);
        uint64_t accuracy =
                deadline > now + 8 ? MIN((deadline - now) / 8, SOCKET_TIMER_ACCURACY_MAX_USEC) : 1;

        if (latest < UINT64_MAX)
                accuracy = MIN(accuracy, latest > deadline ? latest - deadline : 1);
        return MAX(accuracy, UINT64_C(1));
}

/* A socket no request uses is collected once its engine holds nothing more (socket_collect()):
 * whatever made the engine idle (its timer, a departed owner, a socket error) brings it back to
 * the collection. */
static void socket_queue_if_unused(Socket *s) {
        if (s->n_refs == 0 && !s->in_gc_queue && coap_engine_is_idle(s->engine))
                manager_queue_socket_gc(s->manager, s);
}

/* Every socket's timer is an entry of two heaps in the manager, behind one sd-event timer source:
 * by deadline, and by the time it must have run by (deadline plus its accuracy). As sd-event does
 * for its own sources, the source is armed for the earliest deadline with the accuracy that keeps
 * it before the earliest of those times, so that it serves every socket on time. An sd-event
 * source per socket cost ~300 bytes each, most of what 10,000 sockets with an observation each
 * held. */
static void socket_timers_sync(Manager *m) {
        CoapTimer *t = coap_heap_peek(&m->socket_timers), *l = coap_heap_peek(&m->socket_latest);
        int r;

        if (!t) {
                r = sd_event_source_set_enabled(m->socket_timer_source, SD_EVENT_OFF);
                if (r < 0)
                        log_warning_errno(r, "Failed to disable the socket timer, ignoring: %m");
                return;
        }
        /* Every socket's latest time is past its deadline, so past the earliest deadline. */
        r = sd_event_source_set_time(m->socket_timer_source, t->deadline);
        if (r >= 0)
                r = sd_event_source_set_time_accuracy(m->socket_timer_source,
                                                      MAX(l->deadline - t->deadline, UINT64_C(1)));
        if (r >= 0)
                r = sd_event_source_set_enabled(m->socket_timer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to arm the socket timer: %m");
}

/* Queues the socket's timer at deadline (UINT64_MAX: stops it); the source follows when the
 * first of either heap changes, which it can only through this socket. */
static void socket_timer_set(Socket *s, uint64_t deadline) {
        Manager *m = s->manager;
        bool was_first = coap_heap_peek(&m->socket_timers) == &s->timer ||
                         coap_heap_peek(&m->socket_latest) == &s->latest;

        if (deadline == UINT64_MAX) {
                if (s->timer.idx == COAP_TIMER_IDLE)
                        return;
                coap_timer_stop(&m->socket_timers, &s->timer);
                coap_timer_stop(&m->socket_latest, &s->latest);
        } else {
                uint64_t accuracy = socket_timer_accuracy(s, deadline);

                if (s->timer.idx == COAP_TIMER_IDLE &&
                    (coap_heap_reserve(&m->socket_timers, m->socket_timers.n + 1) < 0 ||
                     coap_heap_reserve(&m->socket_latest, m->socket_latest.n + 1) < 0)) {
                        log_error_errno(-ENOMEM, "Failed to arm socket timer: %m");
                        return;
                }
                coap_timer_set(&m->socket_timers, &s->timer, deadline);
                coap_timer_set(&m->socket_latest, &s->latest,
                               deadline > UINT64_MAX - accuracy ? UINT64_MAX : deadline + accuracy);
        }
        if (was_first || coap_heap_peek(&m->socket_timers) == &s->timer ||
            coap_heap_peek(&m->socket_latest) == &s->latest)
                socket_timers_sync(m);
}

static void socket_rearm(Socket *s) {
        uint64_t deadline = coap_engine_next_deadline(s->engine);
        SocketPeer *p;

        LIST_FOREACH(secure, p, s->secure)
                deadline = MIN(deadline, dtls_next_timeout(p->dtls));
        if (s->has_pending_error)
                deadline = manager_now(s->manager);

        /* Nothing due: the timer stays as it is, and its expiry, if it comes, finds nothing to do.
         * Taking it out would re-arm the shared source now and again at the next request's
         * arming, on a socket that outlives its requests (registered on a data channel). */
        if (deadline == UINT64_MAX)
                return;
        /* Nor is a timer moved that expires no later than deadline may: if it comes early, it is
         * queued for deadline then. Moving it for each request of a sequence would re-arm the
         * source (a timerfd_settime()) for most of them: their deadlines are spread over more
         * than the timer's accuracy. */
        if (s->timer.idx != COAP_TIMER_IDLE &&
            s->latest.deadline <= deadline + socket_timer_accuracy(s, deadline))
                return;
        socket_timer_set(s, deadline);
}

/* After every engine call: its timers, and its socket's collection. */
static void socket_engine_changed(Socket *s) {
        socket_rearm(s);
        socket_queue_if_unused(s);
}

static int socket_send(void *userdata, const CoapAddr *dest, const uint8_t *buf, size_t len) {
        Socket *s = userdata;
        SocketPeer *p = s->secure ? socket_find_peer(s, dest) : NULL;
        int r;

        if (p && p->dtls)
                return peer_send(p, buf, len);
        if (socket_tx_add(s->manager->socket_tx, s->fd, s, dest, buf, len) >= 0)
                return 0;
        if (socket_raw_send(s, dest, buf, len) < 0) {
                r = -errno; /* EWOULDBLOCK is EAGAIN on Linux */
                return log_debug_errno(r, "Failed to send %zu byte datagram on fd %d: %m", len,
                                       s->fd);
        }
        return 0;
}

/* A datagram socket_send() handed to the batch did not leave: its request learns it now. */
static void socket_tx_failed(void *owner, const uint8_t *buf, size_t len, const CoapAddr *dest,
                             int error) {
        Socket *s = owner;
        char reason[128];

        log_debug_errno(error, "Failed to send %zu byte datagram on fd %d: %m", len, s->fd);
        /* What a refusal of the request would have said, had its first send failed at once. */
        errno = -error;
        (void) snprintf(reason, sizeof reason, "Failed to send the request: %m");
        s->failing_reason = reason;
        coap_engine_send_failed(s->engine, buf, len, dest, error, manager_now(s->manager));
        s->failing_reason = NULL;
        socket_engine_changed(s);
}

static void socket_event(void *userdata, const CoapEvent *ev) {
        Socket *s = userdata;
        Request *r = hashmap_get(s->manager->requests, &ev->id);
        SocketPeer *p;

        if (!r || r->socket != s || r->client->id != ev->owner) {
                log_debug("Dropping event for unknown request %" PRIu64, ev->id);
                return;
        }
        p = r->peer;
        if (ev->final && ev->result == -ETIMEDOUT && !ev->silent && !ev->acked && p->dtls &&
            dtls_get_state(p->dtls) == DTLS_STATE_ESTABLISHED) {
                /* Not even an ACK after every retransmission: the peer may have lost the session
                 * (a restart) and drops records it cannot decrypt silently. The next datagram to
                 * it starts a new handshake. A separate response that never came after an ACK
                 * says nothing against the session. */
                log_debug("Socket fd %d: request %" PRIu64 " timed out, resetting its DTLS session",
                          s->fd, ev->id);
                (void) dtls_close(p->dtls);
        }
        client_dispatch_event(r->client, r, ev,
                              ev->final && ev->result < 0 ? s->failing_reason : NULL);
}

/* An ICMP error on a connected socket: its peer did not take the datagram. A handshake with it
 * would retransmit until its timeout for nothing (its requests have failed already); a session
 * with a port nothing listens on (ECONNREFUSED) is one a restarted server will not know. The
 * next request starts a new handshake. */
static void socket_peer_down(Socket *s, int error) {
        SocketPeer *p = s->peer;
        DtlsState state;

        if (!p || !p->dtls)
                return;
        state = dtls_get_state(p->dtls);
        if (state == DTLS_STATE_HANDSHAKING ||
            (state == DTLS_STATE_ESTABLISHED && error == -ECONNREFUSED)) {
                log_debug_errno(error, "Socket fd %d: closing its DTLS session: %m", s->fd);
                (void) dtls_close(p->dtls);
        }
}

static uint64_t socket_random(void *userdata) {
        (void) userdata;
        return random_u64();
}

/* One datagram from src: through the DTLS session of a secure peer, else to the engine. */
static void socket_dispatch(Socket *s, const uint8_t *buf, size_t n, const CoapAddr *src,
                            uint64_t now) {
        size_t len = MIN(n, MANAGER_RX_BUFFER_SIZE);
        SocketPeer *p = s->secure ? socket_find_peer(s, src) : NULL;

        if (p && p->dtls) {
                /* A truncated record cannot be authenticated; DTLS drops bad records quietly. */
                if (n <= len)
                        (void) dtls_feed(p->dtls, buf, len, now);
                return;
        }
        coap_engine_feed(s->engine, buf, len, src, n > len, now);
}

/* An application may have set IP_RECVERR on its socket: then ICMP errors wait in the error
 * queue, and epoll reports EPOLLERR until it is empty. They are dropped here (requests to an
 * unreachable peer time out), so that the socket does not wake the loop forever. */
static void socket_drain_error_queue(Socket *s) {
        for (unsigned i = 0; i < SOCKET_READ_BURST; i++) {
                uint8_t data[64], control[256];
                struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control,
                        .msg_controllen = sizeof control,
                };

                if (recvmsg(s->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
                        return;
                log_debug("Socket fd %d: dropped a queued socket error", s->fd);
        }
}

/* Reading on or off: in the manager's epoll set or not. A socket that was taken out is added
 * again with its data already queued, and then reported at once. */
static int socket_set_reading(Socket *s, bool on) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = s};

        if (s->reading == on)
                return 0;
        if (epoll_ctl(s->manager->socket_epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->fd, &ev) <
            0)
                return log_warning_errno(errno, "Failed to %s reading on fd %d: %m",
                                         on ? "start" : "stop", s->fd);
        s->reading = on;
        return 0;
}

/* Reads what the edge announced: batches of datagrams until one comes back short, which means
 * the queue was empty (a datagram arriving after that is a new edge), so no empty read ends it.
 * After SOCKET_READ_BURST datagrams the socket is re-armed instead, and its turn ends. */
static void socket_read(Socket *s, uint32_t revents) {
        Manager *m = s->manager;
        uint64_t now = manager_now(m);
        unsigned total = 0;

        if (revents & (EPOLLHUP | EPOLLRDHUP)) {
                /* shutdown() by the caller: reads would return 0 bytes forever. */
                log_warning("Socket fd %d was shut down, stopping it", s->fd);
                coap_engine_fail_all(s->engine, -EIO, now);
                (void) socket_set_reading(s, false);
                socket_engine_changed(s);
                return;
        }
        for (;;) {
                SocketRx *rx = m->socket_rx;
                int n;

                if (total >= SOCKET_READ_BURST) {
                        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                                                 .data.ptr = s};

                        /* MOD queues the socket again if it is still readable: the next turn. */
                        if (epoll_ctl(m->socket_epoll_fd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                                log_warning_errno(errno, "Failed to re-arm fd %d: %m", s->fd);
                        break;
                }
                for (unsigned i = 0; i < SOCKET_RX_BATCH; i++)
                        rx->msgs[i].msg_hdr.msg_namelen = sizeof rx->srcs[i].ss;
                n = recvmmsg(s->fd, rx->msgs, SOCKET_RX_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        if (errno == ECONNREFUSED || errno == EHOSTUNREACH ||
                            errno == ENETUNREACH) {
                                /* A connected socket reports ICMP errors here: the peer is down.
                                 * Reading the error clears it; datagrams may follow. */
                                int error = -errno;

                                log_debug_errno(error, "Socket fd %d failed: %m", s->fd);
                                coap_engine_fail_all(s->engine, error, now);
                                socket_peer_down(s, error);
                                total++;
                                continue;
                        }
                        log_warning_errno(errno, "Failed to receive on fd %d, stopping it: %m",
                                          s->fd);
                        coap_engine_fail_all(s->engine, -EIO, now);
                        /* A persistent error would wake us forever; a new request re-enables. */
                        (void) socket_set_reading(s, false);
                        break;
                }
                for (int i = 0; i < n; i++) {
                        /* Only len bytes of the address count: no need to clear the rest. */
                        rx->srcs[i].len = rx->msgs[i].msg_hdr.msg_namelen;
                        log_debug("Received %u byte datagram on fd %d", rx->msgs[i].msg_len, s->fd);
                        socket_dispatch(s, rx->bufs[i], rx->msgs[i].msg_len, &rx->srcs[i], now);
                }
                total += (unsigned) n;
                if (n < SOCKET_RX_BATCH)
                        break;
        }
        if (revents & EPOLLERR)
                socket_drain_error_queue(s);
        socket_settle(s);
        socket_engine_changed(s);
}

/* The one io source of all sockets: every socket that became readable since the last turn is
 * read in this one, and the events they made go out together. */
static int socket_reader_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct epoll_event events[SOCKET_EVENTS_PER_TURN];
        Manager *m = userdata;
        int n;

        (void) source, (void) revents;
        n = epoll_wait(fd, events, SOCKET_EVENTS_PER_TURN, 0);
        if (n < 0) {
                if (errno != EINTR)
                        log_warning_errno(errno, "Failed to wait for sockets, ignoring: %m");
                return 0;
        }
        /* No socket is freed while the loop dispatches this source: each pointer stays valid. What
         * the engines send (the next blocks) goes out before the events (manager_flush()). */
        socket_tx_begin(m->socket_tx);
        for (int i = 0; i < n; i++)
                socket_read(events[i].data.ptr, events[i].events);
        socket_tx_end(m->socket_tx);
        manager_flush(m);
        return 0;
}

int socket_reader_new(Manager *m) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sd_event_add_io(m->event, &m->socket_epoll_source, fd, EPOLLIN, socket_reader_on_io, m);
        if (r < 0)
                return r;
        r = sd_event_source_set_io_fd_own(m->socket_epoll_source, true);
        if (r < 0)
                return r;
        m->socket_epoll_fd = TAKE_FD(fd);
        return socket_tx_new(socket_tx_failed, &m->socket_tx);
}

static void socket_on_timer(Socket *s, uint64_t now) {
        SocketPeer *p;

        LIST_FOREACH(secure, p, s->secure)
                if (dtls_next_timeout(p->dtls) <= now)
                        (void) dtls_on_timeout(p->dtls, now);
        socket_settle(s);
        coap_engine_tick(s->engine, now);
        socket_engine_changed(s);
}

/* Runs every socket due. The loop's time, not the scheduled one: every engine call of an
 * iteration sees the same clock, which never goes backwards. A socket due again at once (a
 * session failure to report) runs in the next turn: at most as many runs as sockets queued. */
static int socket_timers_on_time(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = manager_now(m);
        CoapTimer *t;

        (void) source, (void) usec;
        for (size_t n = m->socket_timers.n;
             n > 0 && (t = coap_heap_peek(&m->socket_timers)) && t->deadline <= now; n--) {
                Socket *s = container_of(t, Socket, timer);

                coap_timer_stop(&m->socket_timers, &s->timer);
                coap_timer_stop(&m->socket_latest, &s->latest);
                socket_on_timer(s, now);
        }
        socket_timers_sync(m);
        manager_flush(m);
        return 0;
}

int socket_timers_new(Manager *m) {
        int r;

        r = sd_event_add_time(m->event, &m->socket_timer_source, CLOCK_MONOTONIC, 0, USEC_PER_MSEC,
                              socket_timers_on_time, m);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->socket_timer_source, SD_EVENT_OFF);
}

/* The socket's identity: its inode. */
static int socket_key(int fd, SocketKey *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        *ret = (SocketKey){.dev = (uint64_t) st.st_dev, .ino = (uint64_t) st.st_ino};
        return 0;
}

static uint64_t socket_key_hash(const void *key) {
        return hash_bytes(key, sizeof(SocketKey));
}

static bool socket_key_equal(const void *a, const void *b) {
        return memcmp(a, b, sizeof(SocketKey)) == 0;
}

static const void *socket_key_of(const void *v) {
        return &((const Socket *) v)->key;
}

const HashOps socket_hash_ops = {
        .key = socket_key_of, .hash = socket_key_hash, .equal = socket_key_equal};

int socket_acquire(Manager *m, int fd, Socket **ret) {
        _cleanup_(socket_freep) Socket *s = NULL;
        SocketKey key;
        int r, family = AF_UNSPEC;

        r = coapclientd_socket_family(fd, &family);
        if (r >= 0)
                r = socket_key(fd, &key);
        if (r < 0)
                return r;
        /* Known: its type was checked when it came first, and a socket keeps its type. */
        s = hashmap_get(m->sockets, &key);
        if (s) {
                *ret = TAKE_PTR(s);
                return 0;
        }
        r = coapclientd_check_udp_socket(fd);
        if (r < 0)
                return r;

        s = calloc(1, sizeof(Socket));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->key = key;
        s->timer.idx = s->latest.idx = COAP_TIMER_IDLE;
        s->family = family;
        /* The message owns fd; ours must outlive it. Flags stay untouched: they are shared with
         * the caller's copy, so every send and receive passes MSG_DONTWAIT. */
        s->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (s->fd < 0)
                return -errno;

        /* One table for every engine: they count into the manager's stats. */
        if (!m->engine_env.send)
                m->engine_env = (CoapEngineEnv){
                        .send = socket_send,
                        .event = socket_event,
                        .random_u64 = socket_random,
                        .stats = &m->stats,
                };
        r = coap_engine_new(&m->engine_env, s, manager_now(m), &s->engine);
        if (r < 0)
                return r;

        if (!m->socket_rx) {
                r = socket_rx_new(&m->socket_rx);
                if (r < 0)
                        return r;
        }
        r = socket_set_reading(s, true);
        if (r < 0)
                return r;

        r = hashmap_put(m->sockets, s);
        if (r < 0)
                return r;

        log_debug("New socket fd %d (%s)", s->fd, family == AF_INET6 ? "IPv6" : "IPv4");
        /* Collected unless a request takes a reference before the loop runs again. */
        manager_queue_socket_gc(m, s);
        *ret = TAKE_PTR(s);
        return 0;
}

Socket *socket_free(Socket *s) {
        SocketPeer *p;
        Manager *m;

        if (!s)
                return NULL;
        m = s->manager;
        if (hashmap_get(m->sockets, &s->key) == s)
                hashmap_remove(m->sockets, &s->key);
        if (s->in_gc_queue)
                LIST_REMOVE(gc_queue, m->gc_queue, s);
        /* Sessions say close_notify while the fd is still open. */
        while ((p = s->peer ?: hashmap_first(s->peers)))
                peer_free(p);
        hashmap_free(s->peers);
        socket_tx_forget(m->socket_tx, s);
        /* The caller's copy keeps the file, and with it the epoll item, alive after our close. */
        if (s->fd >= 0)
                (void) socket_set_reading(s, false);
        socket_timer_set(s, UINT64_MAX);
        coap_engine_free(s->engine);
        if (s->fd >= 0)
                log_debug("Freeing socket fd %d", s->fd);
        safe_close(s->fd);
        free(s);
        return NULL;
}

bool socket_is_connected(Socket *s) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        uint64_t now = manager_now(s->manager);

        /* Peer keys depend on it, so it is only looked at again once no peer is left, and once
         * per loop iteration (a request asks twice). */
        if (s->peer || hashmap_size(s->peers) > 0 || s->connected_checked == now)
                return s->connected;
        s->connected = getpeername(s->fd, (struct sockaddr *) &ss, &len) >= 0;
        s->connected_to = (CoapAddr){};
        if (s->connected) {
                s->connected_to.len = len;
                memcpy(&s->connected_to.ss, &ss, MIN((size_t) len, sizeof(s->connected_to.ss)));
        }
        s->connected_checked = now;
        return s->connected;
}

bool socket_is_connected_to(Socket *s, const CoapAddr *dest) {
        const struct sockaddr *a = &dest->ss.sa, *b = &s->connected_to.ss.sa;

        if (!socket_is_connected(s) || a->sa_family != b->sa_family)
                return false;
        if (a->sa_family == AF_INET) {
                const struct sockaddr_in *x = (const void *) a, *y = (const void *) b;

                return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->sa_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const void *) a, *y = (const void *) b;

                return x->sin6_port == y->sin6_port &&
                       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
        }
        return false;
}

void socket_ref(Socket *s) {
        s->n_refs++;
}

void socket_unref(Socket *s) {
        assert(s->n_refs > 0);
        if (--s->n_refs == 0)
                manager_queue_socket_gc(s->manager, s);
}

bool socket_collect(Socket *s) {
        SocketPeer *p, *n;

        /* A session stays while the engine may still answer its peer for an ended exchange. */
        LIST_FOREACH_SAFE(secure, p, n, s->secure)
                if (p->n_refs == 0 && !coap_engine_holds_dest(s->engine, peer_addr(p)))
                        peer_free(p);
        /* Held exchanges still answer their peers (an ACK for a retransmitted response, an RST
         * for a notification after Cancel): keep reading until the engine is idle. */
        if (s->n_refs > 0 || !coap_engine_is_idle(s->engine))
                return false;
        socket_free(s);
        return true;
}

static bool peer_matches(const SocketPeer *p, const PeerCredentials *creds) {
        if (!creds)
                return !p->dtls;
        return p->dtls &&
               memcmp(p->session->fingerprint, creds->fingerprint, PEER_FINGERPRINT_SIZE) == 0;
}

static int peer_new(Socket *s, const PeerKey *key, const CoapAddr *dest,
                    const PeerCredentials *creds, SocketPeer **ret) {
        SocketPeer *p;
        int r = 0;

        if (key->family == 0) {
                /* The connected peer (on a connected socket DTLS runs to it, whatever the
                 * destination): no address, and no allocation of its own. */
                assert(!s->peer);
                p = &s->peer0;
        } else {
                SocketPeerAt *at = calloc(1, sizeof(SocketPeerAt));

                if (!at)
                        return -ENOMEM;
                at->where = (PeerAddress){.key = *key, .addr = *dest};
                p = &at->peer;
                p->where = &at->where;
        }
        p->socket = s;
        if (creds) {
                p->session = calloc(1, sizeof(PeerSession));
                r = p->session ? dtls_new(creds->dtls,
                                          &(const DtlsIo){.userdata = p,
                                                          .push = peer_push,
                                                          .deliver = peer_deliver,
                                                          .state_changed = peer_state_changed},
                                          &p->dtls)
                               : -ENOMEM;
                if (r >= 0)
                        r = dtls_set_timeouts(
                                p->dtls,
                                MIN(DTLS_DEFAULT_RETRANSMIT_USEC, creds->handshake_timeout_usec),
                                creds->handshake_timeout_usec);
                if (r >= 0)
                        memcpy(p->session->fingerprint, creds->fingerprint, PEER_FINGERPRINT_SIZE);
        }
        if (r >= 0 && p->where) {
                r = s->peers ? 0 : hashmap_new(&peer_hash_ops, &s->peers);
                if (r >= 0)
                        r = hashmap_put(s->peers, p);
        }
        if (r < 0) {
                peer_discard(p);
                return r;
        }
        if (!p->where)
                s->peer = p;
        if (p->dtls) {
                LIST_PREPEND(secure, s->secure, p);
                log_debug("Socket fd %d: new DTLS peer (%s)", s->fd, creds->type);
        }
        *ret = p;
        return 0;
}

int socket_get_peer(Socket *s, const CoapAddr *dest, const PeerCredentials *creds,
                    SocketPeer **ret) {
        SocketPeer *p;
        PeerKey key;
        int r;

        (void) socket_is_connected(s);
        key = socket_peer_key(s, dest);
        p = socket_lookup_peer(s, &key);
        if (p && !peer_matches(p, creds)) {
                if (p->n_refs > 0)
                        return -EALREADY;
                /* Unused and not inside any of its callbacks (we serve a method call). */
                peer_free(p);
                p = NULL;
        }
        if (!p) {
                r = peer_new(s, &key, dest, creds, &p);
                if (r < 0)
                        return r;
        }
        socket_peer_ref(p);
        *ret = p;
        return 0;
}

size_t socket_peer_max_message(SocketPeer *p) {
        return p->dtls ? dtls_get_max_payload(p->dtls) : SIZE_MAX;
}

void socket_peer_ref(SocketPeer *p) {
        if (p->n_refs++ == 0)
                socket_ref(p->socket);
}

void socket_peer_unref(SocketPeer *p) {
        Socket *s = p->socket;

        assert(p->n_refs > 0);
        if (--p->n_refs > 0)
                return;
        if (!p->dtls)
                peer_free(p);
        else
                /* Not from here: this may run inside one of the session's own callbacks. */
                manager_queue_socket_gc(s->manager, s);
        socket_unref(s);
}

int socket_submit(Socket *s, const CoapRequestSpec *spec) {
        int r;

        /* A receive error may have stopped reading; a new request gives the socket a new chance. */
        (void) socket_set_reading(s, true);
        r = coap_engine_submit(s->engine, spec, manager_now(s->manager));
        socket_engine_changed(s);
        return r;
}

int socket_cancel(Socket *s, uint64_t id) {
        int r = coap_engine_cancel(s->engine, id, manager_now(s->manager));

        socket_engine_changed(s);
        return r;
}

int socket_append(Socket *s, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                  bool end) {
        int r = coap_engine_append(s->engine, id, offset, data, len, end, manager_now(s->manager));

        socket_rearm(s);
        return r;
}

size_t socket_cancel_owner(Socket *s, uint64_t owner) {
        size_t n = coap_engine_cancel_owner(s->engine, owner, manager_now(s->manager));

        socket_engine_changed(s);
        return n;
}

void socket_drop_owner(Socket *s, uint64_t owner) {
        uint64_t deadline = coap_engine_next_deadline(s->engine),
                 latest = coap_engine_next_latest(s->engine);
        bool idle = coap_engine_is_idle(s->engine);

        coap_engine_drop_owner(s->engine, owner);
        /* A departing client is dropped from every socket (client_free()): the timer and the
         * collection of those where it had nothing stay as they are, without a re-arm each. */
        if (coap_engine_next_deadline(s->engine) != deadline ||
            coap_engine_next_latest(s->engine) != latest || coap_engine_is_idle(s->engine) != idle)
                socket_engine_changed(s);
}

void socket_pause_owner(Socket *s, uint64_t owner) {
        /* Held downloads have no timer: nothing to re-arm. */
        (void) coap_engine_pause_owner(s->engine, owner);
}

void socket_resume_owner(Socket *s, uint64_t owner) {
        coap_engine_resume_owner(s->engine, owner, manager_now(s->manager));
        socket_engine_changed(s);
}

int socket_reregister_observe(Socket *s, uint64_t id) {
        int r = coap_engine_reregister_observe(s->engine, id, manager_now(s->manager));

        socket_engine_changed(s);
        return r;
}

int socket_deregister_observe(Socket *s, uint64_t id) {
        int r = coap_engine_deregister_observe(s->engine, id, manager_now(s->manager));

        socket_engine_changed(s);
        return r;
}
