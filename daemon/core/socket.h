/* SPDX-License-Identifier: MIT */
#pragma once

/* A socket handed over by callers: our duplicate of the fd, its io and timer sources and the
 * one CoapEngine running every exchange on it. Shared by all requests that carry the same
 * socket (same inode), whoever sent them.
 *
 * Each peer the socket talks to has a SocketPeer: plain CoAP, or a DTLS session that every
 * request to that peer with the same credentials shares. The engine never knows: its datagrams
 * to a secure peer go through the session (queued while it handshakes), and what the session
 * decrypts is fed to the engine as if it came from the socket. */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "coap-engine-heap.h"
#include "coap-engine.h"
#include "core/manager.h"
#include "dtls/dtls.h"

typedef struct SocketKey {
        uint64_t dev;
        uint64_t ino;
} SocketKey;

/* A peer of one socket: its address, or all zero on a connected socket (whose only peer is the
 * one it is connected to). No padding: hashed and compared bytewise. */
typedef struct PeerKey {
        uint16_t family;
        uint16_t port; /* network byte order */
        uint32_t scope;
        uint8_t addr[16];
} PeerKey;

#define PEER_FINGERPRINT_SIZE 32

/* What a client brings for DTLS (SetCredentials). Two objects with the same fingerprint were
 * made from the same inputs, so their sessions are interchangeable. */
struct PeerCredentials {
        DtlsCredentials *dtls;
        uint8_t fingerprint[PEER_FINGERPRINT_SIZE]; /* SHA-256 over every input, secrets included */
        uint64_t handshake_timeout_usec;
        const char *type; /* "psk", "x509", "rpk": static */
};

PeerCredentials *peer_credentials_free(PeerCredentials *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(PeerCredentials *, peer_credentials_free);

typedef struct SocketDatagram SocketDatagram;

/* What only a DTLS peer has: its own allocation, so that a plain peer (one per socket with
 * plain CoAP) carries none of it. */
typedef struct PeerSession {
        uint8_t fingerprint[PEER_FINGERPRINT_SIZE];
        SocketDatagram *queue; /* LIST, oldest first: CoAP datagrams waiting for the handshake */
        SocketDatagram *queue_tail;
        size_t n_queued, queued_bytes;
        int pending_error;    /* a session failure not yet reported to the requests */
        char *pending_reason; /* what the requests' final events say about it, or NULL */
} PeerSession;

/* Where a peer is: every peer has one but a connected socket's (all-zero key, engine destination
 * of len 0). */
typedef struct PeerAddress {
        PeerKey key;
        CoapAddr addr; /* the engine's destination */
} PeerAddress;

struct SocketPeer {
        Socket *socket;
        PeerAddress *where; /* NULL: the connected peer, embedded in its socket (Socket.peer0) */
        unsigned n_refs;    /* requests in flight and clients keeping the session */

        /* DTLS only (dtls != NULL). */
        Dtls *dtls;
        PeerSession *session;
        LIST_FIELDS(SocketPeer, secure);
};

#define SOCKET_TIMER_ACCURACY_MAX_USEC (250 * USEC_PER_MSEC)

struct Socket {
        Manager *manager;
        SocketKey key;
        int fd;
        int family;
        CoapAddr connected_to;      /* its peer, when connected */
        uint64_t connected_checked; /* loop time of the last getpeername() */
        CoapTimer timer;  /* in Manager.socket_timers while the engine or a session has one */
        CoapTimer latest; /* then in Manager.socket_latest: by when it must have run */
        CoapEngine *engine;
        unsigned n_refs;        /* requests in flight, and peers with references */
        bool connected;         /* fixed while the socket has peers: see socket_is_connected() */
        bool reading;           /* in the manager's epoll set */
        bool has_pending_error; /* some secure peer has pending_error set */
        bool in_gc_queue;
        uint64_t idle_since; /* when it last lost its last reference */
        LIST_FIELDS(Socket, gc_queue);

        SocketPeer *peer; /* &peer0 while the connected peer (all-zero key) is in use */
        SocketPeer peer0;
        Hashmap *peers;             /* the others, PeerKey -> SocketPeer; NULL until the first */
        SocketPeer *secure;         /* LIST of the peers with DTLS */
        const char *failing_reason; /* while failing requests: what went wrong, for their events */
};

/* The epoll set every socket is read through, its io source, and the batch plain datagrams are
 * sent through (from manager_new()). */
int socket_reader_new(Manager *m);
/* The one timer source of all sockets (from manager_new()). */
int socket_timers_new(Manager *m);

extern const HashOps socket_hash_ops; /* Manager.sockets, key: the SocketKey */

/* Finds the Socket for fd or makes one from a duplicate of it; fd itself is left alone.
 * -ENOTSOCK: not a socket; -ESOCKTNOSUPPORT: not an AF_INET/AF_INET6 datagram socket. The
 * socket has no reference yet: take one or let it be collected. */
int socket_acquire(Manager *m, int fd, Socket **ret);
Socket *socket_free(Socket *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Socket *, socket_free);

/* Whether the socket has a peer (connect()), i.e. can send without a destination. */
bool socket_is_connected(Socket *s);

/* Whether the socket is connected to dest (address and port). */
bool socket_is_connected_to(Socket *s, const CoapAddr *dest);

void socket_ref(Socket *s);
/* The last reference queues the socket for collection. */
void socket_unref(Socket *s);
/* From the collection: frees the peers without references (closing their sessions) to which the
 * engine holds no ended exchange, then the socket if it has no reference left and its engine is
 * idle (coap_engine_is_idle(): a held exchange still answers its peer). Returns whether the socket
 * was freed. A socket kept for its engine comes back to the collection when the engine's timer
 * makes it idle. */
bool socket_collect(Socket *s);

/* The peer of s for requests to dest (len 0: the connected peer) with creds (NULL: plain CoAP),
 * made if needed, with a reference for the caller. A (socket, peer) pair carries either plain
 * CoAP or DTLS with one set of credentials: -EALREADY when it is in use otherwise. On a
 * connected socket every destination is the connected peer, and DTLS runs to it. */
int socket_get_peer(Socket *s, const CoapAddr *dest, const PeerCredentials *creds,
                    SocketPeer **ret);
/* The largest CoAP message a secure peer takes in one record (SIZE_MAX for plain peers). */
size_t socket_peer_max_message(SocketPeer *p);
void socket_peer_ref(SocketPeer *p);
/* The last reference queues the peer for collection: its session is closed then. */
void socket_peer_unref(SocketPeer *p);
static inline void socket_peer_unrefp(SocketPeer **p) {
        if (*p)
                socket_peer_unref(*p);
}

/* Wrappers around the engine calls that re-arm the timer afterwards. */
int socket_submit(Socket *s, const CoapRequestSpec *spec);
int socket_cancel(Socket *s, uint64_t id);
/* coap_engine_append() on the socket's engine. */
int socket_append(Socket *s, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                  bool end);
size_t socket_cancel_owner(Socket *s, uint64_t owner);
void socket_drop_owner(Socket *s, uint64_t owner);
/* Flow control of the owner's downloads (coap_engine_pause_owner/resume_owner). */
void socket_pause_owner(Socket *s, uint64_t owner);
void socket_resume_owner(Socket *s, uint64_t owner);
int socket_deregister_observe(Socket *s, uint64_t id);
int socket_reregister_observe(Socket *s, uint64_t id);
