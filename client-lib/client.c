/* SPDX-License-Identifier: MIT */

/* The public coap_client API: validation as Zephyr does it, then one D-Bus call to the
 * client's object in coapclientd. Every entry point takes lib.lock; callbacks made from here
 * (-ECANCELED) run with it dropped. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client-private.h"
#include "internal/bus-api.h"
#include "internal/macro.h"

/* "[" IPv6 "%" scope "]:" port */
#define DESTINATION_MAX (INET6_ADDRSTRLEN + 32)

static Client *client_find_locked(const struct coap_client *client) {
        if (!client)
                return NULL;
        /* Compare before dereferencing: an uninitialised struct may hold any pointer. */
        for (Client *c = lib.clients; c; c = c->clients_next)
                if (c == client->priv && c->owner == client)
                        return c;
        return NULL;
}

/* Fire and forget: a method of the client's object without a reply. Like every call on the
 * object, addressed to the daemon that made it, never to a successor. */
static void client_call_async_locked(Client *c, const char *method, const char *types,
                                     uint64_t id) {
        if (!lib.bus || !c->path)
                return;
        if (types)
                (void) sd_bus_call_method_async(lib.bus, NULL, c->daemon, c->path,
                                                COAPCLIENTD_CLIENT_IFACE, method, NULL, NULL, types,
                                                id);
        else
                (void) sd_bus_call_method_async(lib.bus, NULL, c->daemon, c->path,
                                                COAPCLIENTD_CLIENT_IFACE, method, NULL, NULL, NULL);
        lib_wake_locked();
}

/* SetCredentials() on c's object, addressed to the daemon that made it, so that a successor
 * cannot take them for an object of its own at the same path. -ESTALE: the object is gone. */
static int client_call_tls_locked(Client *c, const ClientTls *t) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(lib.bus, &m, c->daemon, c->path,
                                           COAPCLIENTD_CLIENT_IFACE, "SetCredentials");
        if (r < 0)
                return r;
        r = client_tls_append_locked(m, t);
        if (r < 0)
                return r;
        r = sd_bus_call(lib.bus, m, 0, &error, NULL);
        lib_wake_locked();
        if (r >= 0)
                return 0;
        if (sd_bus_is_open(lib.bus) <= 0) {
                lib_bus_broken_locked();
                return -ESTALE;
        }
        if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                   SD_BUS_ERROR_UNKNOWN_INTERFACE, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return -ESTALE;
        if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                return -EOPNOTSUPP;
        return lib_bus_error_to_errno(&error, r);
}

static void client_forget_remote_locked(Client *c) {
        c->path = (free(c->path), NULL);
        c->daemon = (free(c->daemon), NULL);
}

static int client_create_remote_locked(Client *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path, *sender;
        char *p, *d;
        int r;

        r = sd_bus_call_method(lib.bus, COAPCLIENTD_BUS_NAME, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "CreateClient", &error, &reply, "s",
                               c->name);
        /* The call may have queued signals for the loop. */
        lib_wake_locked();
        if (r < 0)
                return lib_bus_error_to_errno(&error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        sender = sd_bus_message_get_sender(reply);
        if (!sender)
                return -EPROTO;
        p = strdup(path);
        d = strdup(sender);
        if (!p || !d) {
                free(p);
                free(d);
                return -ENOMEM;
        }
        free(c->path);
        free(c->daemon);
        c->path = p;
        c->daemon = d;

        if (c->tls) {
                r = client_call_tls_locked(c, c->tls);
                if (r < 0) {
                        /* Never keep an object without the credentials: its requests would go
                         * out in clear. */
                        client_call_async_locked(c, "Close", NULL, 0);
                        client_forget_remote_locked(c);
                        return r == -ESTALE ? -ECONNABORTED : r;
                }
        }
        return 0;
}

static int client_init_locked(struct coap_client *client, const char *info) {
        Client *c;
        int r;

        if (client_find_locked(client))
                return -EALREADY;

        r = lib.external ? lib_setup_fds_locked() : lib_start_thread_locked();
        if (r < 0)
                return r;
        r = lib_open_bus_locked();
        if (r < 0)
                return r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->owner = client;
        c->name = strdup(info ?: "");
        r = c->name ? client_create_remote_locked(c) : -ENOMEM;
        if (r < 0) {
                client_unref(c);
                return r;
        }

        c->clients_next = lib.clients;
        if (lib.clients)
                lib.clients->clients_prev = c;
        lib.clients = c;
        lib.n_clients++;
        client->priv = c;
        return 0;
}

_public_ int coap_client_init(struct coap_client *client, const char *info) {
        int r;

        if (!client)
                return -EINVAL;
        LIB_LOCK();
        r = client_init_locked(client, info);
        /* Do not keep a connection for nobody. */
        if (r < 0 && lib.n_clients == 0)
                lib_close_bus_locked();
        LIB_UNLOCK();
        return r;
}

static bool request_matches(const Request *r, const struct coap_client_request *q) {
        /* Zephyr's rule: a field that is zero or NULL on either side matches anything. */
        if (r->method != 0 && q->method != 0 && r->method != q->method)
                return false;
        if (r->path && r->path[0] != '\0' && q->path && q->path[0] != '\0' &&
            strcmp(r->path, q->path) != 0)
                return false;
        if (r->cb && q->cb && r->cb != q->cb)
                return false;
        if (r->user_data && q->user_data && r->user_data != q->user_data)
                return false;
        return true;
}

/* Cancels c's pending requests that match filter (NULL: all). The -ECANCELED callbacks are
 * made before returning, except for a request whose callback runs in another thread (its
 * -ECANCELED follows there) or in this one (nothing more is reported, as in Zephyr). Tells
 * the daemon per request when tell_daemon is set. */
static void client_cancel_locked(Client *c, const struct coap_client_request *filter,
                                 bool tell_daemon) {
        Request *report = NULL, *next;

        for (Request *r = c->requests; r; r = next) {
                next = r->requests_next;
                if (filter && !request_matches(r, filter))
                        continue;

                request_ref(r);
                r->cancelled = true;
                request_unlink(r);
                if (tell_daemon && !r->final_queued && c->daemon &&
                    strcmp(r->daemon, c->daemon) == 0)
                        client_call_async_locked(c, "Cancel", "t", r->id);

                if (r->in_callback && pthread_equal(r->cb_thread, pthread_self()))
                        request_unref(r);
                else if (r->in_callback) {
                        r->deferred_cancel = true;
                        request_unref(r);
                } else {
                        r->report_next = report;
                        report = r;
                }
        }

        /* Oldest first; the list holds the newest first and the chain reversed it again. */
        for (Request *r = report; r; r = next) {
                next = r->report_next;
                lib_report_cancel_locked(r);
                request_unref(r);
        }
}

/* Waits for c's callbacks running in other threads (and the -ECANCELED each may still owe).
 * Not from inside a callback: the one waited for could be below us on this stack, or could
 * wait for us. */
static void client_wait_callbacks_locked(Client *c) {
        if (lib_current_client)
                return;
        while (c->n_running > 0)
                assert_se_zero(pthread_cond_wait(&lib.callbacks_done, &lib.lock));
}

_public_ void coap_client_deinit(struct coap_client *client) {
        Client *c;

        LIB_LOCK();
        c = client_find_locked(client);
        if (!c) {
                LIB_UNLOCK();
                return;
        }

        /* Close() drops every request of the object in the daemon at once. */
        client_call_async_locked(c, "Close", NULL, 0);
        if (c->clients_prev)
                c->clients_prev->clients_next = c->clients_next;
        else
                lib.clients = c->clients_next;
        if (c->clients_next)
                c->clients_next->clients_prev = c->clients_prev;
        c->clients_prev = c->clients_next = NULL;
        c->owner = NULL;
        client->priv = NULL;
        lib.n_clients--;

        client_cancel_locked(c, NULL, /* tell_daemon= */ false);
        client_wait_callbacks_locked(c);

        if (lib.n_clients == 0)
                lib_close_bus_locked();
        client_unref(c);
        LIB_UNLOCK();
}

static int format_destination(const struct sockaddr *sa, char *buf, size_t size) {
        char a[INET6_ADDRSTRLEN];

        if (!sa) {
                buf[0] = '\0';
                return 0;
        }
        switch (sa->sa_family) {
        case AF_INET: {
                struct sockaddr_in in;

                memcpy(&in, sa, sizeof(in));
                if (!inet_ntop(AF_INET, &in.sin_addr, a, sizeof(a)))
                        return -errno;
                (void) snprintf(buf, size, "%s:%u", a, ntohs(in.sin_port));
                return 0;
        }
        case AF_INET6: {
                struct sockaddr_in6 in6;

                memcpy(&in6, sa, sizeof(in6));
                if (!inet_ntop(AF_INET6, &in6.sin6_addr, a, sizeof(a)))
                        return -errno;
                if (in6.sin6_scope_id != 0)
                        (void) snprintf(buf, size, "[%s%%%u]:%u", a, in6.sin6_scope_id,
                                        ntohs(in6.sin6_port));
                else
                        (void) snprintf(buf, size, "[%s]:%u", a, ntohs(in6.sin6_port));
                return 0;
        }
        default:
                return -ENOTSUP;
        }
}

/* An Observe option with value 0 registers an observation (RFC 7641). */
static bool request_is_observe(const struct coap_client_request *req) {
        for (size_t i = 0; i < req->num_options; i++) {
                const struct coap_client_option *o = &req->options[i];
                bool zero = true;

                if (o->code != COAP_OPTION_OBSERVE)
                        continue;
                for (size_t j = 0; j < o->len; j++)
                        zero = zero && o->value[j] == 0;
                return zero;
        }
        return false;
}

static int append_entry_begin(sd_bus_message *m, const char *key, const char *type) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", key);
        if (r < 0)
                return r;
        return sd_bus_message_open_container(m, 'v', type);
}

static int append_entry_end(sd_bus_message *m) {
        int r;

        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int append_options(sd_bus_message *m, const struct coap_client_request *req) {
        int r;

        r = append_entry_begin(m, "options", "a(qay)");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "(qay)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < req->num_options; i++) {
                if (req->options[i].code == COAP_OPTION_BLOCK2)
                        continue;
                r = sd_bus_message_open_container(m, 'r', "qay");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(m, "q", req->options[i].code);
                if (r < 0)
                        return r;
                r = sd_bus_message_append_array(m, 'y', req->options[i].value, req->options[i].len);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return append_entry_end(m);
}

/* The block size the request asks for: an application's Block2 option (from
 * coap_client_option_initial_block2(), Zephyr's early negotiation) becomes coapclientd's
 * "block-size", since the daemon owns the Block2 option. 0: the daemon's default. */
static int request_block_size(const Client *c, const struct coap_client_request *req,
                              uint16_t *ret) {
        *ret = c->block_size;
        for (size_t i = 0; i < req->num_options; i++) {
                const struct coap_client_option *o = &req->options[i];
                unsigned szx;

                if (o->code != COAP_OPTION_BLOCK2)
                        continue;
                szx = o->len > 0 ? o->value[o->len - 1] & 0x7 : 0;
                if (szx > COAP_BLOCK_1024)
                        return -EINVAL;
                *ret = (uint16_t) (16u << szx);
        }
        return 0;
}

static size_t request_n_options(const struct coap_client_request *req) {
        size_t n = 0;

        for (size_t i = 0; i < req->num_options; i++)
                if (req->options[i].code != COAP_OPTION_BLOCK2)
                        n++;
        return n;
}

static int append_request(sd_bus_message *m, const Client *c, const struct coap_client_request *req,
                          const struct coap_transmission_parameters *p) {
        uint16_t block_size;
        int r;

        r = request_block_size(c, req, &block_size);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}{sv}{sv}", "method", "y", (uint8_t) req->method,
                                  "confirmable", "b", (int) req->confirmable, "path", "s",
                                  req->path);
        if (r < 0)
                return r;
        if (req->payload) {
                r = sd_bus_message_append(m, "{sv}", "content-format", "q", (uint16_t) req->fmt);
                if (r < 0)
                        return r;
        }
        if (req->payload && req->len > 0) {
                r = append_entry_begin(m, "payload", "ay");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_array(m, 'y', req->payload, req->len);
                if (r < 0)
                        return r;
                r = append_entry_end(m);
                if (r < 0)
                        return r;
        }
        if (request_n_options(req) > 0) {
                r = append_options(m, req);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append(m, "{sv}{sv}{sv}", "ack-timeout", "u", p->ack_timeout,
                                  "backoff-percent", "q", p->coap_backoff_percent,
                                  "max-retransmission", "y", p->max_retransmission);
        if (r < 0)
                return r;
        if (p->ack_random_percent != 0) {
                r = sd_bus_message_append(m, "{sv}", "ack-random-percent", "q",
                                          p->ack_random_percent);
                if (r < 0)
                        return r;
        }
        if (block_size != 0) {
                r = sd_bus_message_append(m, "{sv}", "block-size", "q", block_size);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

/* One Request() call. Returns the id and the daemon that took it, or the bus error. */
static int client_call_request_locked(Client *c, int sock, const char *destination,
                                      const struct coap_client_request *req,
                                      const struct coap_transmission_parameters *p,
                                      sd_bus_error *error, uint64_t *ret_id) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        /* To the daemon that made the object: a successor must not run it on an object of its
         * own at the same path (maybe another client's, without its credentials). */
        r = sd_bus_message_new_method_call(lib.bus, &m, c->daemon, c->path,
                                           COAPCLIENTD_CLIENT_IFACE, "Request");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "hs", sock, destination);
        if (r < 0)
                return r;
        r = append_request(m, c, req, p);
        if (r < 0)
                return r;
        r = sd_bus_call(lib.bus, m, 0, error, &reply);
        lib_wake_locked();
        if (r < 0)
                return r;
        return sd_bus_message_read(reply, "t", ret_id);
}

static int request_new(Client *c, const struct coap_client_request *req, Request **ret) {
        Request *r;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->n_ref = 1;
        r->path = strdup(req->path);
        r->spare = calloc(1, sizeof(Delivery));
        if (!r->path || !r->spare) {
                free(r->path);
                free(r->spare);
                free(r);
                return -ENOMEM;
        }
        r->client = client_ref(c);
        r->method = req->method;
        r->cb = req->cb;
        r->user_data = req->user_data;
        r->observe = request_is_observe(req);
        *ret = r;
        return 0;
}

static int client_req_locked(Client *c, int sock, const char *destination,
                             const struct coap_client_request *req,
                             const struct coap_transmission_parameters *p) {
        uint64_t id = 0;
        Request *r;
        int k;

        k = request_new(c, req, &r);
        if (k < 0)
                return k;

        /* A second attempt after finding the connection or the client object stale (the
         * daemon restarted and its NameOwnerChanged is still unread). */
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                k = lib_open_bus_locked();
                if (k >= 0 && !c->path)
                        k = client_create_remote_locked(c);
                if (k < 0)
                        break;

                k = client_call_request_locked(c, sock, destination, req, p, &error, &id);
                if (k >= 0)
                        break;
                if (sd_bus_is_open(lib.bus) <= 0)
                        lib_bus_broken_locked();
                else if (sd_bus_error_has_names(
                                 &error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                 SD_BUS_ERROR_UNKNOWN_INTERFACE, SD_BUS_ERROR_UNKNOWN_METHOD,
                                 SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        client_forget_remote_locked(c);
                } else {
                        k = lib_bus_error_to_errno(&error, k);
                        break;
                }
                if (attempt > 0) {
                        k = lib_bus_error_to_errno(&error, k);
                        break;
                }
        }
        if (k < 0) {
                request_unref(r);
                return k;
        }

        r->id = id;
        r->daemon = strdup(c->daemon);
        if (!r->daemon) {
                client_call_async_locked(c, "Cancel", "t", id);
                request_unref(r);
                return -ENOMEM;
        }
        r->linked = true;
        r->requests_next = c->requests;
        if (c->requests)
                c->requests->requests_prev = r;
        c->requests = r;
        return 0;
}

_public_ int coap_client_req_params(struct coap_client *client, int sock,
                                    const struct sockaddr *addr,
                                    const struct coap_client_request *req,
                                    const struct coap_transmission_parameters *params) {
        struct coap_transmission_parameters p;
        char destination[DESTINATION_MAX];
        Client *c;
        int r;

        if (!client || sock < 0 || !req || !req->path || req->path[0] == '\0' ||
            req->num_options > COAP_CLIENT_MAX_EXTRA_OPTIONS ||
            (req->num_options > 0 && !req->options) || (req->len > 0 && !req->payload))
                return -EINVAL;
        for (size_t i = 0; i < req->num_options; i++)
                if (req->options[i].len > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EINVAL;
        r = format_destination(addr, destination, sizeof(destination));
        if (r < 0)
                return r;

        LIB_LOCK();
        c = client_find_locked(client);
        if (c) {
                p = params ? *params : lib.defaults;
                r = client_req_locked(c, sock, destination, req, &p);
        } else
                r = -EINVAL;
        LIB_UNLOCK();
        return r;
}

_public_ int coap_client_req_retries(struct coap_client *client, int sock,
                                     const struct sockaddr *addr,
                                     const struct coap_client_request *req, int retries) {
        struct coap_transmission_parameters p = coap_get_transmission_parameters();

        /* Zephyr 3.4's retries: how often to retransmit; -1 the default. */
        if (retries >= 0)
                p.max_retransmission = (uint8_t) MIN(retries, UINT8_MAX);
        return coap_client_req_params(client, sock, addr, req, &p);
}

_public_ void coap_client_cancel_requests(struct coap_client *client) {
        Client *c;

        LIB_LOCK();
        c = client_find_locked(client);
        if (c) {
                if (c->requests)
                        client_call_async_locked(c, "CancelAll", NULL, 0);
                client_cancel_locked(c, NULL, /* tell_daemon= */ false);
                client_wait_callbacks_locked(c);
        }
        LIB_UNLOCK();
}

_public_ void coap_client_cancel_request(struct coap_client *client,
                                         const struct coap_client_request *req) {
        Client *c;

        if (!req)
                return;
        LIB_LOCK();
        c = client_find_locked(client);
        if (c)
                client_cancel_locked(c, req, /* tell_daemon= */ true);
        LIB_UNLOCK();
}

_public_ int coap_client_deregister_observe(struct coap_client *client,
                                            const struct coap_client_request *req) {
        Client *c;
        int r = 0;

        if (!client || !req)
                return -EINVAL;
        LIB_LOCK();
        c = client_find_locked(client);
        if (!c)
                r = -EINVAL;
        for (Request *q = c ? c->requests : NULL; q && lib.bus; q = q->requests_next) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int k;

                if (!q->observe || q->final_queued || !request_matches(q, req) || !c->daemon ||
                    strcmp(q->daemon, c->daemon) != 0)
                        continue;
                k = sd_bus_call_method(lib.bus, c->daemon, c->path, COAPCLIENTD_CLIENT_IFACE,
                                       "DeregisterObserve", &error, NULL, "t", q->id);
                if (k < 0 && r == 0)
                        r = lib_bus_error_to_errno(&error, k);
        }
        lib_wake_locked();
        LIB_UNLOCK();
        return r;
}

_public_ bool coap_client_has_ongoing_exchange(struct coap_client *client) {
        Client *c;
        bool b;

        LIB_LOCK();
        c = client_find_locked(client);
        b = c && c->requests;
        LIB_UNLOCK();
        return b;
}

_public_ struct coap_client_option coap_client_option_initial_block2(void) {
        /* NUM 0, M 0, SZX of the default block size. */
        return (struct coap_client_option){
                .code = COAP_OPTION_BLOCK2,
                .len = 1,
                .value = {COAP_BLOCK_1024},
        };
}

_public_ int coap_client_set_block_size(struct coap_client *client,
                                        enum coap_block_size block_size) {
        Client *c;
        int r = 0;

        if ((unsigned) block_size > COAP_BLOCK_1024)
                return -EINVAL;
        LIB_LOCK();
        c = client_find_locked(client);
        if (c)
                c->block_size = (uint16_t) (16u << block_size);
        else
                r = -EINVAL;
        LIB_UNLOCK();
        return r;
}

static int client_set_tls_locked(Client *c, ClientTls *t) {
        int r;

        r = client_tls_check_locked(t);
        if (r < 0)
                return r;
        /* A second attempt after finding the object stale (the daemon restarted). */
        for (unsigned attempt = 0;; attempt++) {
                r = lib_open_bus_locked();
                if (r < 0)
                        return r;
                if (!c->path) {
                        /* Creating the object sends c->tls. */
                        ClientTls *old = c->tls;

                        c->tls = t;
                        r = client_create_remote_locked(c);
                        c->tls = old;
                } else
                        r = client_call_tls_locked(c, t);
                if (r == -ESTALE && attempt == 0) {
                        client_forget_remote_locked(c);
                        continue;
                }
                return r == -ESTALE ? -ECONNABORTED : r;
        }
}

/* Back to plain CoAP. */
static int client_clear_tls_locked(Client *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (c->tls && c->path && lib.bus) {
                r = sd_bus_call_method(lib.bus, c->daemon, c->path, COAPCLIENTD_CLIENT_IFACE,
                                       "ClearCredentials", &error, NULL, NULL);
                lib_wake_locked();
                /* A stale object goes away anyway; the next one gets no credentials. */
                if (r < 0 && !sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                                     SD_BUS_ERROR_SERVICE_UNKNOWN,
                                                     SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return lib_bus_error_to_errno(&error, r);
        }
        c->tls = client_tls_free(c->tls);
        return 0;
}

_public_ int coap_client_set_tls(struct coap_client *client, const int *sec_tags, size_t n,
                                 const char *hostname, int flags) {
        ClientTls *t = NULL;
        Client *c;
        int r;

        if (!client || (n > 0 && !sec_tags) || n > 16 || (flags & ~COAP_CLIENT_TLS_INSECURE) ||
            (hostname && hostname[0] == '\0'))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (sec_tags[i] < 0)
                        return -EINVAL;
        if (n > 0 || flags != 0) {
                r = client_tls_new(sec_tags, n, hostname, flags, &t);
                if (r < 0)
                        return r;
        }

        LIB_LOCK();
        c = client_find_locked(client);
        if (!c)
                r = -EINVAL;
        else if (!t)
                r = client_clear_tls_locked(c);
        else {
                t->handshake_timeout_ms = c->handshake_timeout_ms;
                r = client_set_tls_locked(c, t);
                if (r >= 0) {
                        client_tls_free(c->tls);
                        c->tls = TAKE_PTR(t);
                }
        }
        LIB_UNLOCK();
        client_tls_free(t);
        return r;
}

_public_ int coap_client_set_tls_handshake_timeout(struct coap_client *client,
                                                   uint32_t timeout_ms) {
        ClientTls *t = NULL;
        Client *c;
        int r = 0;

        if (timeout_ms != 0 && (timeout_ms < 100 || timeout_ms > 600000))
                return -EINVAL;
        LIB_LOCK();
        c = client_find_locked(client);
        if (!c)
                r = -EINVAL;
        else if (c->tls) {
                /* In force at once: the credentials again, with the new timeout. */
                r = client_tls_new(c->tls->sec_tags, c->tls->n_sec_tags, c->tls->hostname,
                                   c->tls->flags, &t);
                if (r >= 0) {
                        t->handshake_timeout_ms = timeout_ms;
                        r = client_set_tls_locked(c, t);
                }
                if (r >= 0) {
                        client_tls_free(c->tls);
                        c->tls = TAKE_PTR(t);
                }
        }
        if (r >= 0)
                c->handshake_timeout_ms = timeout_ms;
        LIB_UNLOCK();
        client_tls_free(t);
        return r;
}

_public_ struct coap_transmission_parameters coap_get_transmission_parameters(void) {
        struct coap_transmission_parameters p;

        LIB_LOCK();
        p = lib.defaults;
        LIB_UNLOCK();
        return p;
}

_public_ void coap_set_transmission_parameters(const struct coap_transmission_parameters *params) {
        if (!params)
                return;
        LIB_LOCK();
        lib.defaults = *params;
        LIB_UNLOCK();
}

_public_ int coap_client_get_response_info(struct coap_client_response_info *info) {
        if (!info)
                return -EINVAL;
        if (!lib_current_delivery)
                return -ENODATA;
        *info = lib_current_delivery->info;
        return 0;
}

_public_ int coap_client_loop_external(void) {
        int r = 0;

        LIB_LOCK();
        if (!lib.external && (lib.thread_started || lib.n_clients > 0))
                r = -EBUSY;
        else
                lib.external = true;
        LIB_UNLOCK();
        return r;
}

_public_ int coap_client_get_fd(void) {
        int r;

        LIB_LOCK();
        if (!lib.external)
                r = -ENXIO;
        else {
                r = lib_setup_fds_locked();
                if (r >= 0)
                        r = lib.epoll_fd;
        }
        LIB_UNLOCK();
        return r;
}

_public_ uint64_t coap_client_get_timeout_usec(void) {
        uint64_t t;

        LIB_LOCK();
        t = lib.external ? lib_timeout_locked() : UINT64_MAX;
        LIB_UNLOCK();
        return t;
}

_public_ int coap_client_process(void) {
        int r = 0;

        LIB_LOCK();
        if (lib.external)
                lib_process_locked();
        else
                r = -ENXIO;
        LIB_UNLOCK();
        return r;
}
