/* SPDX-License-Identifier: MIT */
#pragma once

/* A socket handed over by callers: our duplicate of the fd, its io and timer sources and the
 * one CoapEngine running every exchange on it. Shared by all requests that carry the same
 * socket (same inode), whoever sent them. */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "coap-engine.h"
#include "manager.h"

typedef struct SocketKey {
        uint64_t dev;
        uint64_t ino;
} SocketKey;

struct Socket {
        Manager *manager;
        SocketKey key;
        int fd;
        int family;
        sd_event_source *io_source, *timer_source;
        CoapEngine *engine;
        unsigned n_refs; /* requests in flight */
        bool in_gc_queue;
        LIST_FIELDS(Socket, gc_queue);
};

/* Finds the Socket for fd or makes one from a duplicate of it; fd itself is left alone.
 * -ENOTSOCK: not a socket; -ESOCKTNOSUPPORT: not an AF_INET/AF_INET6 datagram socket. The
 * socket has no reference yet: take one or let it be collected. */
int socket_acquire(Manager *m, int fd, Socket **ret);
Socket *socket_free(Socket *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Socket *, socket_free);

/* Whether the socket has a peer (connect()), i.e. can send without a destination. */
bool socket_is_connected(Socket *s);

void socket_ref(Socket *s);
/* The last reference queues the socket for collection. */
void socket_unref(Socket *s);

/* Wrappers around the engine calls that re-arm the timer afterwards. */
int socket_submit(Socket *s, const CoapRequestSpec *spec);
int socket_cancel(Socket *s, uint64_t id);
size_t socket_cancel_owner(Socket *s, uint64_t owner);
void socket_drop_owner(Socket *s, uint64_t owner);
int socket_deregister_observe(Socket *s, uint64_t id);
