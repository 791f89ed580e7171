/* SPDX-License-Identifier: MIT */
#pragma once

/* A client context (one coap_client_init() of a caller) and its requests in flight. */

#include <stdbool.h>
#include <stdint.h>

#include "coap-engine.h"
#include "core/caller.h"
#include "core/manager.h"
#include "core/socket.h"

struct Request {
        uint64_t id;      /* daemon-wide, also the engine's request id */
        CallerSink *sink; /* the front end it came through: its events go back there */
        uint64_t tag;     /* what that front end knows it by */
        Client *client;
        Socket *socket;       /* holds one reference */
        SocketPeer *peer;     /* holds one reference */
        unsigned resume_pass; /* the last client_resume() that resumed its socket */
        uint32_t payload_len; /* counted in Manager.payload_bytes: the engine holds a copy; at
                               * most MaxPayloadBytes= (32 bits) or the channel's window */
        LIST_FIELDS(Request, requests);
};

/* DTLS sessions a client keeps for its later requests (one per socket and peer). */
#define CLIENT_SESSIONS_MAX 16

struct Client {
        Manager *manager;
        uint64_t id; /* the engine's owner key */
        Caller *caller;
        LIST_FIELDS(Client, clients);

        Request *requests; /* LIST */
        uint32_t n_requests;
        unsigned resume_pass;

        /* SetCredentials: requests run DTLS with these, over sessions kept in sessions[] (one
         * reference each) until the credentials change or the client goes. */
        PeerCredentials *creds;
        SocketPeer **sessions; /* CLIENT_SESSIONS_MAX slots from the first session on */
        size_t n_sessions;

        /* The sockets it has used (client_free() drops what they hold of it): the first one in
         * used0, without an allocation (one socket per client is common: 10,000 observations,
         * one socket each); from the second one on all of them in used[] (size_used > 1). */
        union {
                SocketKey *used;
                SocketKey used0;
        };
        uint32_t n_used, size_used;

        uint64_t requests_completed; /* final event with a CoAP code */
        uint64_t requests_failed;    /* final event with an errno */
        uint64_t responses_delivered;

        char name[]; /* in the same allocation: one less per client */
};

#define CLIENT_NAME_MAX 255

/* -ENOSPC: caller has too many clients; -EDQUOT: its user has; -ENOBUFS: daemon-wide limit
 * (less root's reserve, for everyone else). */
extern const HashOps client_hash_ops;  /* Manager.clients, key: the id */
extern const HashOps request_hash_ops; /* Manager.requests, key: the id */

int client_new(Manager *m, Caller *caller, const char *name, Client **ret);
/* Drops the client's requests without events and frees it; does not free its caller. */
Client *client_free(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_free);

/* 0, or -EAGAIN when the client has its maximum of requests in flight (Zephyr's "no free
 * slot"), -EDQUOT at its user's quota, -ENOBUFS at a daemon-wide limit (requests, or payload
 * bytes held for them). */
int client_can_submit(Client *c, size_t payload_len);
/* Replaces the client's credentials (NULL: plain CoAP from now on) and releases the sessions
 * it kept; requests in flight finish on theirs. Takes creds. */
void client_set_credentials(Client *c, PeerCredentials *creds);
/* The peer of s for the client's next request to dest: plain, or a DTLS session with its
 * credentials (kept by the client from then on). -EALREADY: the pair is in use by plain CoAP or
 * other credentials; -ENOBUFS: the client keeps CLIENT_SESSIONS_MAX sessions already. The peer
 * comes with a reference for the caller. */
int client_get_peer(Client *c, Socket *s, const CoapAddr *dest, SocketPeer **ret);
/* Submits spec to peer p of socket s (after client_can_submit() said yes); fills in id and
 * owner. Returns coap_engine_submit()'s errors. */
int client_submit(Client *c, Socket *s, SocketPeer *p, CoapRequestSpec *spec, CallerSink *sink,
                  uint64_t tag, uint64_t *ret_id);
/* The request of the client that sink knows by tag, or NULL. */
Request *client_find_by_tag(Client *c, const CallerSink *sink, uint64_t tag);
/* -ENOENT when id is not one of this client's requests in flight. */
int client_cancel(Client *c, uint64_t id);
/* The next bytes of request id's streamed body (CoapRequestSpec.stream); a broken stream ends
 * the request with a final error event. -ENOENT: no such request (it may have ended). */
int client_append(Client *c, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                  bool end);
void client_cancel_all(Client *c);
/* -ENOENT unknown, -EINVAL not an observation. */
int client_deregister_observe(Client *c, uint64_t id);
/* The registration again (coap_engine_reregister_observe()): -ENOENT unknown, -EINVAL not an
 * observation, -EBUSY, -EOPNOTSUPP or a send error. */
int client_reregister_observe(Client *c, uint64_t id);

/* Flow control (Caller): holds or resumes the client's downloads on every socket. */
void client_pause(Client *c);
void client_resume(Client *c);
/* Ends every request with a final event carrying error (a negative errno). */
void client_fail_all(Client *c, int error);
/* Drops, without events, every request whose events went to sink (its front end let go). */
void client_drop_sink_requests(Client *c, const CallerSink *sink);

/* An engine event for one of this client's requests (called by the socket); error_message
 * (NULL: none) says more about a final error, for the caller. */
void client_dispatch_event(Client *c, Request *r, const CoapEvent *ev, const char *error_message);
