/* SPDX-License-Identifier: MIT */

/* The public coap_client API: validation as Zephyr does it, then one frame down the data channel
 * to coapclientd (client objects and credentials go over D-Bus). Every entry point takes
 * lib.lock; callbacks made from here (-ECANCELED) run with it dropped. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel-wire.h"
#include "client-private.h"
#include "internal/bus-api.h"
#include "internal/macro.h"
#include "internal/request-rules.h"

/* Payloads above this travel in a memfd rather than inside the request's message. */
#define INLINE_PAYLOAD_MAX (64 * 1024)

/* coapclientd's block size for a request that sets none: what payload_cb is asked for then. */
#define COAPCLIENT_DEFAULT_BLOCK_SIZE 1024

typedef struct coapclient_request_ref RequestRef;
typedef struct coapclient_option_ref OptionRef;

/* A request's body: inline (data), or none (!present); with stream_block, the beginning of a
 * body that payload_cb streams in blocks of that size. */
typedef struct RequestBody {
        bool present;
        const uint8_t *data;
        size_t len;
        size_t stream_block;
} RequestBody;

static Client *client_find_locked(const struct coap_client *client) {
        if (!client)
                return NULL;
        /* Compare before dereferencing: an uninitialised struct may hold any pointer. */
        for (Client *c = lib.clients; c; c = c->clients_next)
                if (c == client->priv && c->owner == client)
                        return c;
        return NULL;
}

/* Close() of the client's object, without waiting: addressed to the daemon that made it, never
 * to a successor. */
void client_call_close_locked(Client *c) {
        if (!lib.bus || !c->path)
                return;
        (void) sd_bus_call_method_async(lib.bus, NULL, c->daemon, c->path, COAPCLIENTD_CLIENT_IFACE,
                                        "Close", NULL, NULL, NULL);
        lib_wake_locked();
}

/* A CANCEL, CANCEL_ALL or DEREGISTER_OBSERVE frame for a request of c (tag; ignored for
 * CANCEL_ALL), if the channel leads to the daemon that holds c. */
static int client_send_ids_locked(Client *c, ChannelFrameType type, uint64_t tag) {
        uint8_t buf[CHANNEL_HEADER_SIZE + 16];
        long n;

        if (lib.channel_fd < 0 || !c->daemon || strcmp(c->daemon, lib.channel_daemon) != 0)
                return 0;
        n = channel_encode_ids(type, c->id, tag, buf, sizeof(buf));
        if (n < 0)
                return (int) n;
        return lib_channel_send_locked(buf, (size_t) n, NULL, 0);
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

/* The id in PREFIX/ID. */
static int client_path_to_id(const char *path, uint64_t *ret) {
        const char *p = path + strlen(COAPCLIENTD_CLIENT_PREFIX "/");
        uint64_t id = 0;

        if (strncmp(path, COAPCLIENTD_CLIENT_PREFIX "/", strlen(COAPCLIENTD_CLIENT_PREFIX "/")) !=
                    0 ||
            *p == '\0')
                return -EPROTO;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || id > (UINT64_MAX - 9) / 10)
                        return -EPROTO;
                id = id * 10 + (uint64_t) (*p - '0');
        }
        *ret = id;
        return 0;
}

/* Makes c's object in the daemon at the other end of the channel (opening the channel first),
 * so that the channel's frames and the object always meet in the same daemon. */
static int client_create_remote_locked(Client *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path, *sender;
        uint64_t id;
        char *p, *d;
        int r;

        r = lib_open_channel_locked();
        if (r < 0)
                return r;
        r = sd_bus_call_method(lib.bus, lib.channel_daemon, COAPCLIENTD_ROOT_PATH,
                               COAPCLIENTD_MANAGER_IFACE, "CreateClient", &error, &reply, "s",
                               c->name);
        /* The call may have queued signals for the loop. */
        lib_wake_locked();
        if (r < 0)
                return lib_bus_error_to_errno(&error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        r = client_path_to_id(path, &id);
        if (r < 0)
                return r;
        sender = sd_bus_message_get_sender(reply);
        if (!sender || strlen(sender) > LIB_BUS_NAME_MAX)
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
        c->id = id;

        if (c->tls) {
                r = client_call_tls_locked(c, c->tls);
                if (r < 0) {
                        /* Never keep an object without the credentials: its requests would go
                         * out in clear. */
                        client_call_close_locked(c);
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

static bool request_matches(const Request *r, const RequestRef *q) {
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
static void client_cancel_locked(Client *c, const RequestRef *filter, bool tell_daemon) {
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
                        (void) client_send_ids_locked(c, CHANNEL_FRAME_CANCEL, r->id);

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
        /* Counted before looking: a thread that ends a callback without the lock looks at
         * the count after its n_running, and takes the lock to signal us if it is not zero. */
        lib.n_callback_waiters++;
        while (c->n_running > 0)
                assert_se_zero(pthread_cond_wait(&lib.callbacks_done, &lib.lock));
        lib.n_callback_waiters--;
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
        client_call_close_locked(c);
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

/* An Observe option with value 0 registers an observation (RFC 7641). */
static bool request_is_observe(const RequestRef *req) {
        for (size_t i = 0; i < req->num_options; i++) {
                const OptionRef *o = &req->options[i];
                bool zero = true;

                if (o->code != COAP_OPTION_OBSERVE)
                        continue;
                for (size_t j = 0; j < o->len; j++)
                        zero = zero && o->value[j] == 0;
                return zero;
        }
        return false;
}

/* The block size the request asks for: an application's Block2 option (from
 * coap_client_option_initial_block2(), Zephyr's early negotiation) sets it (and goes along:
 * coapclientd sends it on the first request). 0: the daemon's default. */
static int request_block_size(const Client *c, const RequestRef *req, uint16_t *ret) {
        *ret = c->block_size;
        for (size_t i = 0; i < req->num_options; i++) {
                const OptionRef *o = &req->options[i];
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

/* What the daemon would refuse anyway, refused here so that coap_client_req() fails at once with
 * Zephyr's errno instead of in the callback. */
/* Every Uri-Path segment ('/' before the '?') and Uri-Query argument ('&' after it) fits in
 * one CoAP option (255 bytes), as the daemon splits the path. */
static bool path_segments_fit(const char *path) {
        const char *query = strchr(path, '?');
        size_t run = 0;

        for (const char *q = path; *q; q++) {
                bool separator = query && q >= query ? q == query || *q == '&' : *q == '/';

                run = separator ? 0 : run + 1;
                if (run > UINT8_MAX)
                        return false;
        }
        return true;
}

static int check_request(const RequestRef *req, const struct coap_transmission_parameters *p) {
        if (req->method < COAP_METHOD_GET || req->method > COAP_METHOD_IPATCH ||
            strlen(req->path) > COAPCLIENTD_PATH_MAX || !path_segments_fit(req->path))
                return -EINVAL;
        for (size_t i = 0; i < req->num_options; i++)
                if (coapclientd_option_is_reserved(req->options[i].code))
                        return -EINVAL;
        if (p->ack_timeout < COAPCLIENTD_ACK_TIMEOUT_MIN ||
            p->ack_timeout > COAPCLIENTD_ACK_TIMEOUT_MAX ||
            p->coap_backoff_percent < COAPCLIENTD_PERCENT_MIN ||
            p->coap_backoff_percent > COAPCLIENTD_PERCENT_MAX ||
            p->max_retransmission > COAPCLIENTD_MAX_RETRANSMISSION_MAX ||
            (p->ack_random_percent != 0 && (p->ack_random_percent < COAPCLIENTD_PERCENT_MIN ||
                                            p->ack_random_percent > COAPCLIENTD_PERCENT_MAX)))
                return -EINVAL;
        return 0;
}

/* Only AF_INET/AF_INET6 UDP sockets, as the daemon takes them. A socket registered on the
 * channel was checked then: apps send request after request on one socket. *st: its inode. */
static int check_socket_locked(int sock, struct stat *st) {
        if (fstat(sock, st) < 0)
                return -errno;
        if (lib_socket_find_locked(sock, st))
                return 0;
        if (!S_ISSOCK(st->st_mode))
                return -ENOTSOCK;
        return coapclientd_check_udp_socket(sock);
}

static size_t sockaddr_size(const struct sockaddr *sa) {
        if (!sa)
                return 0;
        switch (sa->sa_family) {
        case AF_INET:
                return sizeof(struct sockaddr_in);
        case AF_INET6:
                return sizeof(struct sockaddr_in6);
        default:
                return SIZE_MAX;
        }
}

/* Zephyr's rules for a multicast window (RFC 7252 §8.1): a NON request to a group, no
 * observation, no streamed body; and coapclientd's: plain CoAP only. */
static int check_multicast(const Client *c, const struct sockaddr *addr, const RequestRef *req) {
        if (req->multicast_timeout_ms == 0)
                return 0;
        if (!coapclientd_sockaddr_is_multicast(addr, sockaddr_size(addr)) || req->confirmable ||
            request_is_observe(req) || req->payload_cb)
                return -EINVAL;
        return c->tls ? -EPROTONOSUPPORT : 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = write(fd, buf + done, len - done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t) n;
        }
        return 0;
}

/* A memfd holding the payload, for a request too large for one message. */
static int payload_memfd(const uint8_t *payload, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = memfd_create("coapclient-payload", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = write_all(fd, payload, len);
        return r < 0 ? r : TAKE_FD(fd);
}

/* The beginning of the body that req->payload_cb gives block by block (Zephyr's rules: *len is
 * the block size in and the length out, every block but the last full), up to max bytes, into
 * buf. *ret_last: the body ended within them. Runs without the lock: the callback is the
 * application's. */
static int payload_cb_collect(const RequestRef *req, size_t block, uint8_t *buf, size_t max,
                              size_t *ret_len, bool *ret_last) {
        size_t offset = 0;
        bool last = false;

        while (!last && offset + block <= max) {
                const uint8_t *p = NULL;
                size_t len = block;
                int r;

                r = req->payload_cb(offset, &p, &len, &last, req->user_data);
                if (r < 0)
                        return r;
                if (len > block || (len > 0 && !p) || (!last && len != block))
                        return -EINVAL;
                if (len > 0)
                        memcpy(buf + offset, p, len);
                offset += len;
        }
        *ret_len = offset;
        *ret_last = last;
        return 0;
}

/* The request's frame down the channel, naming its socket (st: its inode) by the id of its
 * registration, made by the same message if needed, or with the socket attached (st NULL, or no
 * room for a registration); a payload memfd is attached. *ret_socket_id: the registration's id,
 * 0: none. */
static int client_send_request_locked(Client *c, uint64_t tag, int sock, const struct stat *st,
                                      const struct sockaddr *addr, const RequestRef *req,
                                      const RequestBody *body,
                                      const struct coap_transmission_parameters *p,
                                      uint64_t *ret_socket_id) {
        _cleanup_close_ int payload_fd = -EBADF;
        ChannelRequest f = {
                .client = c->id,
                .tag = tag,
                .method = (uint8_t) req->method,
                .flags = CHANNEL_REQUEST_PARAMS | CHANNEL_REQUEST_ERROR_MESSAGE |
                         (req->confirmable ? CHANNEL_REQUEST_CONFIRMABLE : 0) |
                         /* data->packet of API 403 needs the whole response. */
                         (req->api == 403 ? CHANNEL_REQUEST_MESSAGE : 0) |
                         (req->multicast_timeout_ms > 0 ? CHANNEL_REQUEST_MULTICAST : 0),
                .multicast_ms = req->multicast_timeout_ms,
                .ack_timeout_ms = p->ack_timeout,
                .ack_random_percent = p->ack_random_percent,
                .backoff_percent = p->coap_backoff_percent,
                .max_retransmission = p->max_retransmission,
                .dest = (const uint8_t *) addr,
                .dest_len = sockaddr_size(addr),
                .path = req->path,
        };
        int fds[2] = {sock, -EBADF};
        uint16_t block_size;
        long n;
        int r;

        r = request_block_size(c, req, &block_size);
        if (r < 0)
                return r;
        /* The blocks payload_cb was asked for are the blocks that go out. */
        f.block_size =
                block_size == 0 && req->payload_cb ? COAPCLIENT_DEFAULT_BLOCK_SIZE : block_size;
        if (body->present && req->fmt != COAP_CONTENT_FORMAT_NONE) {
                f.flags |= CHANNEL_REQUEST_CONTENT_FORMAT;
                f.content_format = (uint16_t) req->fmt;
        }
        for (size_t i = 0; i < req->num_options; i++) {
                f.options[f.n_options++] = (ChannelOption){
                        .number = req->options[i].code,
                        .len = (uint8_t) req->options[i].len,
                        .value = req->options[i].value,
                };
        }
        f.payload_len = (uint32_t) (body->present ? body->len : 0);
        if (body->stream_block > 0)
                f.flags |= CHANNEL_REQUEST_STREAM;
        if (f.payload_len > INLINE_PAYLOAD_MAX) {
                payload_fd = payload_memfd(body->data, body->len);
                if (payload_fd < 0)
                        return payload_fd;
                f.flags |= CHANNEL_REQUEST_PAYLOAD_FD;
                fds[1] = payload_fd;
        } else
                f.payload = body->data;

        for (;;) {
                LibSocketPlan plan;
                size_t pre;

                /* Encoded again after each wait: other threads used the buffer and the
                 * registrations meanwhile. */
                pre = lib_socket_prepare_locked(sock, st, lib.channel_buf_tx, CHANNEL_MESSAGE_MAX,
                                                &plan);
                f.flags = plan.id != 0 ? f.flags | CHANNEL_REQUEST_SOCKET_ID
                                       : f.flags & ~CHANNEL_REQUEST_SOCKET_ID;
                f.socket_id = plan.id;
                n = channel_encode_request(&f, lib.channel_buf_tx + pre, CHANNEL_MESSAGE_MAX - pre);
                if (n < 0)
                        return (int) n;
                /* The socket goes with its registration or with the request, unless registered
                 * already. */
                r = plan.id != 0 && !plan.registering
                            ? lib_channel_send_locked(lib.channel_buf_tx, pre + (size_t) n, fds + 1,
                                                      fds[1] >= 0 ? 1 : 0)
                            : lib_channel_send_locked(lib.channel_buf_tx, pre + (size_t) n, fds,
                                                      fds[1] >= 0 ? 2 : 1);
                if (r >= 0) {
                        lib_socket_commit_locked(&plan);
                        *ret_socket_id = plan.id;
                }
                if (r != -EAGAIN)
                        return r;
                r = lib_channel_wait_writable_locked(c);
                if (r < 0)
                        return r;
        }
}

/* Zephyr's "no free slot": the daemon runs at most this many requests per client. */
static bool client_is_full_locked(const Client *c) {
        uint32_t n = 0;

        for (const Request *r = c->requests; r; r = r->requests_next)
                if (!r->final_queued)
                        n++;
        return n >= lib.max_requests_per_client;
}

/* One allocation: the request, its spare delivery and its path. The thread that frees it is
 * the library's, not the one that made it, which costs glibc's allocator most. */
static_assert(sizeof(Request) % alignof(Delivery) == 0, "the spare delivery follows the request");

static int request_new(Client *c, const RequestRef *req, Request **ret) {
        size_t path_size = strlen(req->path) + 1;
        Request *r;

        r = calloc(1, sizeof(Request) + sizeof(Delivery) + path_size);
        if (!r)
                return -ENOMEM;
        r->n_ref = 1;
        r->spare = (Delivery *) (r + 1);
        r->path = memcpy((char *) (r->spare + 1), req->path, path_size);
        r->client = client_ref(c);
        r->method = req->method;
        r->api = req->api;
        r->cb = req->cb;
        r->payload_cb = req->payload_cb;
        r->user_data = req->user_data;
        r->observe = request_is_observe(req);
        *ret = r;
        return 0;
}

Replay *replay_free(Replay *rp) {
        if (!rp)
                return NULL;
        safe_close(rp->sock);
        free(rp->data);
        free(rp);
        return NULL;
}

/* Copies of everything an observation's registration is made of. */
static int replay_new(int sock, const struct sockaddr *addr, const RequestRef *req,
                      const RequestBody *body, const struct coap_transmission_parameters *p,
                      Replay **ret) {
        size_t size = strlen(req->path) + 1 + (body->present ? body->len : 0);
        Replay *rp;
        uint8_t *q;

        for (size_t i = 0; i < req->num_options; i++)
                size += req->options[i].len;
        rp = calloc(1, sizeof(Replay) + req->num_options * sizeof(OptionRef));
        if (!rp)
                return -ENOMEM;
        rp->sock = fcntl(sock, F_DUPFD_CLOEXEC, 3);
        rp->data = malloc(size);
        if (rp->sock < 0 || !rp->data) {
                int r = rp->sock < 0 ? -errno : -ENOMEM;

                replay_free(rp);
                return r;
        }
        rp->has_addr = addr != NULL;
        if (addr)
                memcpy(&rp->addr, addr, sockaddr_size(addr));
        rp->params = *p;
        rp->req = *req;
        rp->req.payload_cb = NULL;
        q = rp->data;
        rp->req.path = memcpy(q, req->path, strlen(req->path) + 1);
        q += strlen(req->path) + 1;
        for (size_t i = 0; i < req->num_options; i++) {
                rp->options[i] = req->options[i];
                rp->options[i].value = req->options[i].len > 0 ? memcpy(q, req->options[i].value,
                                                                        req->options[i].len)
                                                               : NULL;
                q += req->options[i].len;
        }
        rp->req.options = req->num_options > 0 ? rp->options : NULL;
        rp->has_payload = body->present;
        rp->req.payload = body->present && body->len > 0 ? memcpy(q, body->data, body->len) : NULL;
        rp->req.len = body->present ? body->len : 0;
        *ret = rp;
        return 0;
}

/* Hands r to the daemon at the other end of the channel, making c's object there first, as a
 * new request (fresh: counted against the daemon's limit) or registered again; sets r->id and
 * r->daemon. */
static int client_submit_locked(Client *c, Request *r, int sock, const struct stat *st,
                                const struct sockaddr *addr, const RequestRef *req,
                                const RequestBody *body,
                                const struct coap_transmission_parameters *p, bool fresh) {
        int k;

        /* A second attempt after finding the channel or the client object stale (the daemon
         * restarted and its NameOwnerChanged is still unread). */
        for (unsigned attempt = 0;; attempt++) {
                k = lib_open_bus_locked();
                if (k >= 0)
                        k = lib_open_channel_locked();
                /* An object of an earlier daemon: the channel's daemon must hold it. */
                if (k >= 0 && c->path && strcmp(c->daemon, lib.channel_daemon) != 0)
                        client_forget_remote_locked(c);
                if (k >= 0 && !c->path)
                        k = client_create_remote_locked(c);
                if (k >= 0 && body->present && body->len > lib.max_payload_bytes)
                        k = -EMSGSIZE;
                else if (k >= 0 && fresh && client_is_full_locked(c))
                        k = -EAGAIN;
                if (k < 0)
                        break;

                r->id = ++lib.last_tag;
                k = client_send_request_locked(c, r->id, sock, st, addr, req, body, p,
                                               &r->socket_id);
                if ((k != -ECONNABORTED && k != -ESTALE) || attempt > 0)
                        break;
                /* The daemon closed the channel: what it still sent counts, then start over. (For
                 * -ESTALE another thread replaced it while we waited: just start over.) */
                if (k == -ECONNABORTED) {
                        lib_channel_read_locked(/* drain= */ true);
                        lib_close_channel_locked();
                }
        }
        if (k == -ESTALE)
                k = -ECONNABORTED;
        if (k < 0)
                return k;
        /* No allocation: client_create_remote_locked() checked its length. */
        strcpy(r->daemon, c->daemon);
        return 0;
}

static int client_req_locked(Client *c, int sock, const struct stat *st,
                             const struct sockaddr *addr, const RequestRef *req,
                             const RequestBody *body,
                             const struct coap_transmission_parameters *p) {
        Request *r;
        int k;

        k = request_new(c, req, &r);
        if (k < 0)
                return k;
        if (body->stream_block > 0) {
                r->streaming = true;
                r->stream_block = body->stream_block;
                r->stream_sent = body->len;
        } else if (r->observe) {
                k = replay_new(sock, addr, req, body, p, &r->replay);
                if (k < 0) {
                        request_unref(r);
                        return k;
                }
        }
        k = client_submit_locked(c, r, sock, st, addr, req, body, p, /* fresh= */ true);
        if (k < 0) {
                request_unref(r);
                return k;
        }
        r->linked = true;
        r->requests_next = c->requests;
        if (c->requests)
                c->requests->requests_prev = r;
        c->requests = r;
        /* The library thread waits in epoll on the channel, which is all it needs. */
        return 0;
}

static Request *replay_next_locked(void) {
        for (Client *c = lib.clients; c; c = c->clients_next)
                for (Request *r = c->requests; r; r = r->requests_next)
                        if (r->replay_pending && !r->final_queued)
                                return r;
        return NULL;
}

void lib_replay_locked(uint64_t now) {
        bool last = now >= lib.replay_deadline;
        Request *r;

        lib.replay_now = false;
        while ((r = replay_next_locked())) {
                Replay *rp = r->replay;
                RequestBody body = {
                        .present = rp->has_payload,
                        .data = rp->req.payload,
                        .len = rp->req.len,
                };
                int k;

                /* Sending may drop the lock while the channel is full: r stays ours. */
                request_ref(r);
                /* Rare: the replay's copy of the socket goes with the request. */
                k = client_submit_locked(r->client, r, rp->sock, NULL,
                                         rp->has_addr ? (const struct sockaddr *) &rp->addr : NULL,
                                         &rp->req, &body, &rp->params, /* fresh= */ false);
                if (k >= 0 || r->cancelled || !r->linked)
                        r->replay_pending = false;
                else if ((k == -ECONNREFUSED || k == -ECONNABORTED) && !last) {
                        /* Not there yet: wait for its NameOwnerChanged, or the deadline. */
                        request_unref(r);
                        return;
                } else {
                        r->replay_pending = false;
                        lib_queue_error_locked(r, k == -ECONNREFUSED ? -ECONNABORTED : k);
                }
                request_unref(r);
        }
        lib.replay_deadline = 0;
}

/* The block size payload_cb is asked for, and the largest body it may give, for c. */
static int payload_cb_limits_locked(const Client *c, const RequestRef *req, size_t *ret_block,
                                    size_t *ret_limit) {
        uint16_t block;
        int r;

        r = request_block_size(c, req, &block);
        if (r < 0)
                return r;
        *ret_block = block ?: COAPCLIENT_DEFAULT_BLOCK_SIZE;
        *ret_limit = lib.max_payload_bytes;
        return 0;
}

_public_ int coapclient_req(struct coap_client *client, int sock, const struct sockaddr *addr,
                            const RequestRef *req,
                            const struct coap_transmission_parameters *params) {
        _cleanup_free_ uint8_t *first = NULL;
        struct coap_transmission_parameters p;
        struct stat st;
        RequestRef mreq;
        RequestBody body = {};
        size_t block = 0, limit = 0;
        Client *c;
        int r;

        if (!client || sock < 0 || !req || (req->api != 304 && req->api != 403) || !req->path ||
            req->path[0] == '\0' || req->num_options > COAP_CLIENT_MAX_EXTRA_OPTIONS ||
            (req->num_options > 0 && !req->options) || (req->len > 0 && !req->payload) ||
            (req->payload && req->payload_cb))
                return -EINVAL;
        for (size_t i = 0; i < req->num_options; i++)
                if (req->options[i].len > UINT8_MAX ||
                    (req->options[i].len > 0 && !req->options[i].value))
                        return -EINVAL;
        if (sockaddr_size(addr) == SIZE_MAX)
                return -ENOTSUP;
        if (req->payload) {
                body.present = true;
                body.data = req->payload;
                body.len = req->len;
        }

        LIB_LOCK();
        p = params ? *params : lib.defaults;
        c = client_find_locked(client);
        r = c ? check_request(req, &p) : -EINVAL;
        if (r >= 0) {
                /* API 304 has no window of its own: the client's applies to its groups. */
                mreq = *req;
                if (req->api == 304 && coapclientd_sockaddr_is_multicast(addr, sockaddr_size(addr)))
                        mreq.multicast_timeout_ms = c->multicast_timeout_ms;
                req = &mreq;
                r = check_multicast(c, addr, req);
        }
        if (r >= 0)
                r = check_socket_locked(sock, &st);
        if (r >= 0 && req->payload_cb) {
                size_t max;
                bool last;

                r = payload_cb_limits_locked(c, req, &block, &limit);
                /* The beginning goes with the request, whole blocks of it, within the window
                 * and what coapclientd takes in one request; payload_cb streams the rest. */
                max = r >= 0 ? MIN((size_t) CHANNEL_UPLOAD_WINDOW, limit) / block * block : 0;
                first = malloc(max > 0 ? max : 1);
                if (r >= 0 && !first)
                        r = -ENOMEM;
                /* The application's callback runs without the lock. */
                LIB_UNLOCK();
                if (r >= 0)
                        r = payload_cb_collect(req, block, first, max, &body.len, &last);
                /* A stream must begin with more than one block. */
                if (r >= 0 && !last && body.len <= block)
                        r = -EMSGSIZE;
                body.present = true;
                body.data = first;
                body.stream_block = r >= 0 && !last ? block : 0;
                LIB_LOCK();
                /* Deinitialised meanwhile? */
                c = client_find_locked(client);
                if (r >= 0 && !c)
                        r = -EINVAL;
        }
        if (r >= 0)
                r = client_req_locked(c, sock, &st, addr, req, &body, &p);
        LIB_UNLOCK();
        return r;
}

/* The seed's request by reference; opts has room for its options (at most
 * COAP_CLIENT_MAX_EXTRA_OPTIONS, checked by the caller). */
static void request_ref_304(const struct coap_client_request *req, OptionRef *opts,
                            RequestRef *ret) {
        *ret = (RequestRef){
                .api = 304,
                .method = req->method,
                .confirmable = req->confirmable,
                .path = req->path,
                .fmt = req->fmt,
                .payload = req->payload,
                .len = req->len,
                .cb = (void (*)(void)) req->cb,
                .options = req->options ? opts : NULL,
                .num_options = req->num_options,
                .user_data = req->user_data,
        };
        for (size_t i = 0; req->options && i < req->num_options; i++)
                opts[i] = (OptionRef){
                        .code = req->options[i].code,
                        .len = req->options[i].len,
                        .value = req->options[i].value,
                };
}

/* What finds the seed's request among those in flight (request_matches()): neither its options
 * nor its payload. */
static void request_ref_304_match(const struct coap_client_request *req, RequestRef *ret) {
        request_ref_304(&(struct coap_client_request){.method = req->method,
                                                      .path = req->path,
                                                      .cb = req->cb,
                                                      .user_data = req->user_data},
                        NULL, ret);
}

_public_ int coap_client_req_params(struct coap_client *client, int sock,
                                    const struct sockaddr *addr,
                                    const struct coap_client_request *req,
                                    const struct coap_transmission_parameters *params) {
        OptionRef opts[COAP_CLIENT_MAX_EXTRA_OPTIONS];
        RequestRef ref;

        if (!req || req->num_options > COAP_CLIENT_MAX_EXTRA_OPTIONS)
                return -EINVAL;
        for (size_t i = 0; req->options && i < req->num_options; i++)
                if (req->options[i].len > MAX_COAP_CLIENT_OPTION_LEN)
                        return -EINVAL;
        request_ref_304(req, opts, &ref);
        return coapclient_req(client, sock, addr, &ref, params);
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
                        (void) client_send_ids_locked(c, CHANNEL_FRAME_CANCEL_ALL, 0);
                client_cancel_locked(c, NULL, /* tell_daemon= */ false);
                client_wait_callbacks_locked(c);
        }
        LIB_UNLOCK();
}

_public_ void coapclient_cancel_request(struct coap_client *client, const RequestRef *req) {
        Client *c;

        if (!req)
                return;
        LIB_LOCK();
        c = client_find_locked(client);
        if (c)
                client_cancel_locked(c, req, /* tell_daemon= */ true);
        LIB_UNLOCK();
}

_public_ void coap_client_cancel_request(struct coap_client *client,
                                         const struct coap_client_request *req) {
        RequestRef ref;

        if (!req)
                return;
        request_ref_304_match(req, &ref);
        coapclient_cancel_request(client, &ref);
}

_public_ int coapclient_deregister_observe(struct coap_client *client, const RequestRef *req) {
        Client *c;
        int r = 0;

        if (!client || !req)
                return -EINVAL;
        LIB_LOCK();
        c = client_find_locked(client);
        if (!c)
                r = -EINVAL;
        for (Request *q = c ? c->requests : NULL; q; q = q->requests_next) {
                int k;

                if (!q->observe || q->final_queued || !request_matches(q, req) || !c->daemon ||
                    strcmp(q->daemon, c->daemon) != 0)
                        continue;
                k = client_send_ids_locked(c, CHANNEL_FRAME_DEREGISTER_OBSERVE, q->id);
                if (k < 0 && r == 0)
                        r = k;
        }
        LIB_UNLOCK();
        return r;
}

_public_ int coap_client_deregister_observe(struct coap_client *client,
                                            const struct coap_client_request *req) {
        RequestRef ref;

        if (!req)
                return -EINVAL;
        request_ref_304_match(req, &ref);
        return coapclient_deregister_observe(client, &ref);
}

_public_ int coapclient_reregister_observe(struct coap_client *client, const RequestRef *req) {
        Client *c;
        int r = -ENOENT;

        if (!client || !req)
                return -EINVAL;
        LIB_LOCK();
        c = client_find_locked(client);
        if (!c)
                r = -EINVAL;
        for (Request *q = c ? c->requests : NULL; q; q = q->requests_next) {
                int k = 0;

                if (!q->observe || q->final_queued || !request_matches(q, req))
                        continue;
                /* One waiting for a new coapclientd is registered anew there anyway. */
                if (!q->replay_pending)
                        k = c->daemon && strcmp(q->daemon, c->daemon) == 0
                                    ? client_send_ids_locked(c, CHANNEL_FRAME_REREGISTER_OBSERVE,
                                                             q->id)
                                    : -ECONNABORTED;
                if (r == -ENOENT || (r == 0 && k < 0))
                        r = k;
        }
        LIB_UNLOCK();
        return r;
}

_public_ int coap_client_reregister_observe(struct coap_client *client,
                                            const struct coap_client_request *req) {
        RequestRef ref;

        if (!req)
                return -EINVAL;
        request_ref_304_match(req, &ref);
        return coapclient_reregister_observe(client, &ref);
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

_public_ int coap_client_get_response_source(struct sockaddr *addr, socklen_t *addrlen) {
        if (!addr || !addrlen)
                return -EINVAL;
        if (!lib_current_delivery || lib_current_delivery->source_len == 0)
                return -ENODATA;
        memcpy(addr, &lib_current_delivery->source,
               MIN((size_t) *addrlen, (size_t) lib_current_delivery->source_len));
        *addrlen = lib_current_delivery->source_len;
        return 0;
}

_public_ int coap_client_set_multicast_timeout(struct coap_client *client, uint32_t timeout_ms) {
        Client *c;
        int r = 0;

        LIB_LOCK();
        c = client_find_locked(client);
        if (c)
                c->multicast_timeout_ms = timeout_ms;
        else
                r = -EINVAL;
        LIB_UNLOCK();
        return r;
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
        struct epoll_event events[LIB_EPOLL_EVENTS];
        int n;

        LIB_LOCK();
        if (!lib.external) {
                LIB_UNLOCK();
                return -ENXIO;
        }
        /* As the library's thread does: what the fd found ready, not a read of every source
         * (two needless system calls per call, each coming back with EAGAIN). */
        n = lib.epoll_fd >= 0 ? epoll_wait(lib.epoll_fd, events, ELEMENTSOF(events), 0) : -1;
        lib_process_locked(lib_ready_from_events(events, n), NULL);
        LIB_UNLOCK();
        return 0;
}
