/* SPDX-License-Identifier: MIT */
#include "core/client.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/socket.h"
#include "util/log.h"

static const void *client_key(const void *v) {
        return &((const Client *) v)->id;
}

static const void *request_key(const void *v) {
        return &((const Request *) v)->id;
}

const HashOps client_hash_ops = {.key = client_key, .hash = uint64_hash, .equal = uint64_equal};
const HashOps request_hash_ops = {.key = request_key, .hash = uint64_hash, .equal = uint64_equal};

int client_new(Manager *m, Caller *caller, const char *name, Client **ret) {
        _cleanup_(client_freep) Client *c = NULL;
        int r;

        if (caller->n_clients >= m->config.limits.max_clients_per_caller)
                return log_notice_errno(ENOSPC,
                                        "Caller %s refused a client: it has %" PRIu32
                                        " (MaxClientsPerCaller=).",
                                        caller->name, caller->n_clients);
        r = user_can_add_client(caller->user);
        if (r < 0)
                return log_notice_errno(r, "Caller %s refused a client: %s.", caller->name,
                                        r == -EDQUOT ? "its user has MaxClientsPerUser="
                                                     : "the daemon has MaxClients=");

        c = calloc(1, sizeof(Client) + strlen(name) + 1);
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->id = ++m->last_client_id;
        strcpy(c->name, name);
        r = hashmap_put(m->clients, c);
        if (r < 0)
                return r;
        c->caller = caller;
        LIST_PREPEND(clients, caller->clients, c);
        caller->n_clients++;
        caller->user->n_clients++;

        log_debug("Client %" PRIu64 " (%s) created for %s", c->id, c->name, caller->name);
        *ret = TAKE_PTR(c);
        return 0;
}

static Request *request_free(Request *r) {
        Client *c;

        if (!r)
                return NULL;
        c = r->client;
        hashmap_remove(c->manager->requests, &r->id);
        LIST_REMOVE(requests, c->requests, r);
        c->n_requests--;
        c->manager->payload_bytes -= r->payload_len;
        c->caller->user->n_requests--;
        c->caller->user->payload_bytes -= r->payload_len;
        socket_peer_unref(r->peer);
        socket_unref(r->socket);
        free(r);
        return NULL;
}

/* Makes the engine of s forget the client's requests there, without events, and frees them. */
static void client_forget_socket(Client *c, Socket *s) {
        Request *r, *n;

        socket_drop_owner(s, c->id);
        LIST_FOREACH_SAFE(requests, r, n, c->requests)
                if (r->socket == s)
                        request_free(r);
}

static SocketKey *client_used(Client *c) {
        return c->size_used > 1 ? c->used : &c->used0;
}

Client *client_free(Client *c) {
        Manager *m;

        if (!c)
                return NULL;
        m = c->manager;
        while (c->requests)
                client_forget_socket(c, c->requests->socket);
        /* Sockets keep ended exchanges to answer their peers (coap_engine_is_idle()); with the
         * client gone, there is nobody left to keep them for. Only those it used: visiting every
         * socket made each client's end O(sockets). */
        for (size_t i = 0; i < c->n_used; i++) {
                Socket *s = hashmap_get(m->sockets, &client_used(c)[i]);

                if (s)
                        socket_drop_owner(s, c->id);
        }
        if (c->size_used > 1)
                free(c->used);
        if (c->caller) {
                LIST_REMOVE(clients, c->caller->clients, c);
                c->caller->n_clients--;
                c->caller->user->n_clients--;
        }
        client_set_credentials(c, NULL);
        if (hashmap_get(m->clients, &c->id) == c) {
                hashmap_remove(m->clients, &c->id);
                log_debug("Client %" PRIu64 " freed", c->id);
        }
        free(c);
        return NULL;
}

int client_can_submit(Client *c, size_t payload_len) {
        Manager *m = c->manager;

        if (c->n_requests >= m->config.limits.max_requests_per_client)
                return -EAGAIN;
        return user_can_add_request(c->caller->user, payload_len);
}

void client_set_credentials(Client *c, PeerCredentials *creds) {
        while (c->n_sessions > 0)
                socket_peer_unref(c->sessions[--c->n_sessions]);
        /* Most clients never have one: the slots go with the last. */
        free(c->sessions);
        c->sessions = NULL;
        peer_credentials_free(c->creds);
        c->creds = creds;
        if (creds)
                log_debug("Client %" PRIu64 ": %s credentials set", c->id, creds->type);
}

int client_get_peer(Client *c, Socket *s, const CoapAddr *dest, SocketPeer **ret) {
        SocketPeer *p;
        size_t i;
        int r;

        r = socket_get_peer(s, dest, c->creds, &p);
        if (r < 0)
                return r;
        if (p->dtls) {
                for (i = 0; i < c->n_sessions; i++)
                        if (c->sessions[i] == p)
                                break;
                if (i == c->n_sessions) {
                        if (c->n_sessions >= CLIENT_SESSIONS_MAX) {
                                socket_peer_unref(p);
                                return -ENOBUFS;
                        }
                        if (!c->sessions) {
                                c->sessions = reallocarray(NULL, CLIENT_SESSIONS_MAX,
                                                           sizeof(SocketPeer *));
                                if (!c->sessions) {
                                        socket_peer_unref(p);
                                        return -ENOMEM;
                                }
                        }
                        socket_peer_ref(p);
                        c->sessions[c->n_sessions++] = p;
                }
        }
        *ret = p;
        return 0;
}

/* Remembers that the client used s (by its key: a socket may go before the client does). Keys
 * of sockets already gone are dropped when the list would grow, so it stays as long as the
 * sockets the client uses at once. */
static int client_remember_socket(Client *c, const Socket *s) {
        SocketKey *used = client_used(c), *p;
        uint32_t n = 0;

        for (size_t i = 0; i < c->n_used; i++)
                if (memcmp(&used[i], &s->key, sizeof(SocketKey)) == 0)
                        return 0;
        if (c->n_used == c->size_used) {
                for (size_t i = 0; i < c->n_used; i++)
                        if (hashmap_get(c->manager->sockets, &used[i]))
                                used[n++] = used[i];
                c->n_used = n;
        }
        if (c->n_used == c->size_used) {
                if (c->size_used == 0)
                        c->size_used = 1; /* used0 */
                else if (c->size_used > UINT32_MAX / 2)
                        return -ENOMEM;
                else {
                        p = reallocarray(c->size_used > 1 ? c->used : NULL, c->size_used * 2,
                                         sizeof(SocketKey));
                        if (!p)
                                return -ENOMEM;
                        if (c->size_used == 1)
                                p[0] = c->used0;
                        c->used = p;
                        c->size_used *= 2;
                }
                used = client_used(c);
        }
        used[c->n_used++] = s->key;
        return 0;
}

int client_submit(Client *c, Socket *s, SocketPeer *p, CoapRequestSpec *spec, CallerSink *sink,
                  uint64_t tag, uint64_t *ret_id) {
        /* A streamed body takes its window in the engine, whatever its size. */
        size_t held = spec->stream ? spec->stream_window : spec->payload_len;
        Manager *m = c->manager;
        Request *r;
        int k;

        assert(client_can_submit(c, held) == 0);
        k = client_remember_socket(c, s);
        if (k < 0)
                return k;
        r = calloc(1, sizeof(Request));
        if (!r)
                return -ENOMEM;
        r->id = ++m->last_request_id;
        r->sink = sink;
        r->tag = tag;
        r->client = c;
        r->socket = s;
        r->peer = p;
        r->payload_len = (uint32_t) held; /* admitted: request_admit() */
        k = hashmap_put(m->requests, r);
        if (k < 0) {
                free(r);
                return k;
        }
        LIST_PREPEND(requests, c->requests, r);
        c->n_requests++;
        m->payload_bytes += r->payload_len;
        c->caller->user->n_requests++;
        c->caller->user->payload_bytes += r->payload_len;
        socket_ref(s);
        socket_peer_ref(p);

        /* Registered first, so that any event the engine emits finds it. */
        spec->id = r->id;
        spec->owner = c->id;
        k = socket_submit(s, spec);
        if (k < 0) {
                /* The engine forgot the request and emitted nothing. */
                request_free(hashmap_get(m->requests, &spec->id));
                return k;
        }
        if (c->caller && c->caller->paused)
                socket_pause_owner(s, c->id);
        if (m->request_watch.started)
                m->request_watch.started(m->request_watch.userdata, r, spec);
        log_debug("Client %" PRIu64 ": request %" PRIu64 " submitted (method %u, %zu bytes)", c->id,
                  spec->id, spec->method, spec->payload_len);
        *ret_id = spec->id;
        return 0;
}

Request *client_find_by_tag(Client *c, const CallerSink *sink, uint64_t tag) {
        Request *r;

        /* At most max_requests_per_client long. */
        LIST_FOREACH(requests, r, c->requests)
                if (r->sink == sink && r->tag == tag)
                        return r;
        return NULL;
}

static Request *client_find_request(Client *c, uint64_t id) {
        Request *r = hashmap_get(c->manager->requests, &id);

        return r && r->client == c ? r : NULL;
}

int client_cancel(Client *c, uint64_t id) {
        Request *r = client_find_request(c, id);

        if (!r)
                return -ENOENT;
        return socket_cancel(r->socket, id);
}

int client_append(Client *c, uint64_t id, uint64_t offset, const uint8_t *data, size_t len,
                  bool end) {
        Request *r = client_find_request(c, id);

        if (!r)
                return -ENOENT;
        return socket_append(r->socket, id, offset, data, len, end);
}

void client_cancel_all(Client *c) {
        while (c->requests) {
                Socket *s = c->requests->socket;

                /* One final -ECANCELED event per request frees it; whatever the engine still
                 * holds afterwards is dropped, so that this loop always ends. Sockets are only
                 * collected from a defer source, so s outlives its last request here. */
                socket_cancel_owner(s, c->id);
                client_forget_socket(c, s);
        }
}

int client_reregister_observe(Client *c, uint64_t id) {
        Request *r = client_find_request(c, id);

        if (!r)
                return -ENOENT;
        return socket_reregister_observe(r->socket, id);
}

int client_deregister_observe(Client *c, uint64_t id) {
        Request *r = client_find_request(c, id);

        if (!r)
                return -ENOENT;
        return socket_deregister_observe(r->socket, id);
}

void client_pause(Client *c) {
        Request *r;

        LIST_FOREACH(requests, r, c->requests)
                socket_pause_owner(r->socket, c->id);
}

void client_resume(Client *c) {
        Request *r, *q;
        bool again = true;

        /* Once per socket. A resumed download that fails is freed by its final event, maybe
         * with the next element of the list: start over after each socket. */
        c->resume_pass++;
        while (again) {
                again = false;
                LIST_FOREACH(requests, r, c->requests) {
                        Socket *s = r->socket;

                        if (r->resume_pass == c->resume_pass)
                                continue;
                        LIST_FOREACH(requests, q, c->requests)
                                if (q->socket == s)
                                        q->resume_pass = c->resume_pass;
                        socket_resume_owner(s, c->id);
                        if (c->caller && c->caller->paused)
                                return;
                        again = true;
                        break;
                }
        }
}

/* One event of r to its owner, through the front end r came from. */
static void client_emit(Client *c, const Request *r, const CoapEvent *ev,
                        const char *error_message) {
        const ManagerRequestWatch *w = &c->manager->request_watch;
        int k;

        if (ev->final && w->ended)
                w->ended(w->userdata, r, ev->result, error_message);
        k = r->sink ? r->sink->ops->send_event(r->sink, c, r, ev, error_message) : -ENOTCONN;
        if (k >= 0)
                c->responses_delivered++;
}

static void client_send_error(Client *c, const Request *r, int error) {
        client_emit(c, r,
                    &(CoapEvent){
                            .id = r->id,
                            .owner = c->id,
                            .result = error,
                            .last_block = true,
                            .final = true,
                    },
                    NULL);
}

void client_fail_all(Client *c, int error) {
        while (c->requests) {
                Socket *s = c->requests->socket;
                Request *r;

                LIST_FOREACH(requests, r, c->requests)
                        if (r->socket == s) {
                                client_send_error(c, r, error);
                                c->requests_failed++;
                        }
                client_forget_socket(c, s);
        }
}

void client_drop_sink_requests(Client *c, const CallerSink *sink) {
        for (;;) {
                Request *r;

                LIST_FOREACH(requests, r, c->requests)
                        if (r->sink == sink)
                                break;
                if (!r)
                        return;
                /* Its final -ECANCELED has nowhere to go and frees it; the engine knows every
                 * request, but make sure the loop ends. */
                r->sink = NULL;
                if (socket_cancel(r->socket, r->id) < 0)
                        request_free(r);
        }
}

void client_dispatch_event(Client *c, Request *r, const CoapEvent *ev, const char *error_message) {
        assert(r->client == c);

        log_debug("Client %" PRIu64 ": request %" PRIu64 " result %d offset %zu, %zu bytes%s%s",
                  c->id, ev->id, ev->result, ev->offset, ev->payload_len,
                  ev->last_block ? ", last block" : "", ev->final ? ", final" : "");
        if (c->caller && c->caller->stalled) {
                /* Its signals are dropped until it catches up; the end of a request is not. */
                if (ev->final) {
                        client_send_error(c, r, -ENOBUFS);
                        c->requests_failed++;
                        request_free(r);
                }
                return;
        }
        client_emit(c, r, ev, error_message);
        if (ev->final) {
                if (ev->result >= 0)
                        c->requests_completed++;
                else
                        c->requests_failed++;
                request_free(r);
        }
}
