/* SPDX-License-Identifier: MIT */
#include "core/request.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap-option.h"
#include "core/destination.h"
#include "core/socket.h"
#include "core/user.h"
#include "internal/error-names.h"
#include "util/log.h"

int request_error_set(RequestError *e, const char *name, int error, const char *format, ...) {
        va_list ap;

        e->name = name;
        va_start(ap, format);
        (void) vsnprintf(e->message, sizeof(e->message), format, ap);
        va_end(ap);
        return error;
}

int request_args_add_option(RequestArgs *a, uint16_t number, const void *value, size_t len,
                            RequestError *e) {
        if (a->n_options >= REQUEST_OPTIONS_MAX)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_OPTION, -EINVAL,
                                         "At most %d options per request.", REQUEST_OPTIONS_MAX);
        if (coapclientd_option_is_reserved(number))
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_OPTION, -EINVAL,
                                         "Option %" PRIu16 " cannot be set in 'options'.", number);
        if (len > REQUEST_OPTION_VALUE_MAX)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_OPTION, -EINVAL,
                                         "Option %" PRIu16 " value longer than %d bytes.", number,
                                         REQUEST_OPTION_VALUE_MAX);
        a->options[a->n_options++] = (CoapOption){
                .number = number,
                .len = (uint16_t) len,
                .value = value,
        };
        return 0;
}

static int invalid_parameter(RequestError *e, const char *key, unsigned long v, unsigned long min,
                             unsigned long max) {
        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_PARAMETERS, -EINVAL,
                                 "Request key '%s' is %lu, must be within %lu..%lu.", key, v, min,
                                 max);
}

int request_args_set_payload(RequestArgs *a, const void *payload, size_t len,
                             const ManagerConfig *config, RequestError *e) {
        if (len > config->limits.max_payload_bytes)
                return request_error_set(e, COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE, -EMSGSIZE,
                                         "Payload of %zu bytes exceeds %" PRIu32 ".", len,
                                         config->limits.max_payload_bytes);
        a->payload = payload;
        a->payload_len = len;
        return 0;
}

int request_args_set_block_size(RequestArgs *a, uint16_t size, RequestError *e) {
        int szx = coap_size_to_szx(size);

        if (szx < 0)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_PARAMETERS, -EINVAL,
                                         "Request key 'block-size' is %" PRIu16
                                         ", must be a power of two within 16..1024.",
                                         size);
        a->block_szx = (uint8_t) szx;
        return 0;
}

int request_args_set_tx_param(RequestArgs *a, RequestTxParam which, uint32_t v, RequestError *e) {
        static const struct {
                const char *key;
                uint32_t min, max;
        } ranges[] = {
                [REQUEST_ACK_TIMEOUT] = {"ack-timeout", COAPCLIENTD_ACK_TIMEOUT_MIN,
                                         COAPCLIENTD_ACK_TIMEOUT_MAX},
                [REQUEST_ACK_RANDOM_PERCENT] = {"ack-random-percent", COAPCLIENTD_PERCENT_MIN,
                                                COAPCLIENTD_PERCENT_MAX},
                [REQUEST_BACKOFF_PERCENT] = {"backoff-percent", COAPCLIENTD_PERCENT_MIN,
                                             COAPCLIENTD_PERCENT_MAX},
                [REQUEST_MAX_RETRANSMISSION] = {"max-retransmission", 0,
                                                COAPCLIENTD_MAX_RETRANSMISSION_MAX},
        };

        if (v < ranges[which].min || v > ranges[which].max)
                return invalid_parameter(e, ranges[which].key, v, ranges[which].min,
                                         ranges[which].max);
        switch (which) {
        case REQUEST_ACK_TIMEOUT:
                a->params.ack_timeout_ms = v;
                break;
        case REQUEST_ACK_RANDOM_PERCENT:
                a->params.ack_random_percent = (uint16_t) v;
                break;
        case REQUEST_BACKOFF_PERCENT:
                a->params.backoff_percent = (uint16_t) v;
                break;
        case REQUEST_MAX_RETRANSMISSION:
                a->params.max_retransmission = (uint8_t) v;
                break;
        }
        return 0;
}

static int check_path(const char *path, RequestError *e) {
        _cleanup_free_ CoapOption *heap = NULL;
        CoapOption stack[32], *opts = stack;
        size_t len = strlen(path), max = 1, n;
        int r;

        if (len > REQUEST_PATH_MAX)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_PATH, -EINVAL,
                                         "Path longer than %d bytes.", REQUEST_PATH_MAX);
        /* An option per separator and one more; on the stack for all but long paths. */
        for (const char *c = path; *c; c++)
                if (*c == '/' || *c == '?' || *c == '&')
                        max++;
        if (max > ELEMENTSOF(stack)) {
                opts = heap = calloc(max, sizeof(CoapOption));
                if (!opts)
                        return -ENOMEM;
        }
        r = coap_path_to_options(path, opts, max, &n);
        if (r < 0)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_PATH, -EINVAL,
                                         "Path has a segment longer than 255 bytes.");
        return 0;
}

void request_args_init(RequestArgs *a, const ManagerConfig *config) {
        *a = (RequestArgs){
                .method = -1,
                .confirmable = true,
                .path = "",
                .content_format = -1,
                .params = config->tx_params,
                .block_szx = config->block_szx,
        };
}

int request_args_finish(RequestArgs *a, RequestError *e) {
        int r;

        if (a->method < 0)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_METHOD, -EINVAL,
                                         "Request key 'method' is required.");
        if (a->method < COAP_CODE_GET || a->method > COAP_CODE_IPATCH)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_METHOD, -EINVAL,
                                         "Method %d is not a CoAP request method (1..7).",
                                         a->method);
        r = check_path(a->path, e);
        if (r < 0)
                return r;

        /* Early negotiation (RFC 7959 §2.4): a Block2 option NUM 0 (Zephyr's
         * coap_client_option_initial_block2()) caps the request's block size, and the engine sends
         * Block2 with that size, fitted to the path, on the first request. Any other Block2 goes
         * out as it is. */
        for (size_t i = 0; i < a->n_options; i++) {
                CoapBlock b;

                if (a->options[i].number != COAP_OPTION_BLOCK2 ||
                    coap_block_decode(a->options[i].value, a->options[i].len, &b) < 0 || b.num != 0)
                        continue;
                a->block_szx = MIN(a->block_szx, b.szx);
                a->block2_early = true;
                memmove(a->options + i, a->options + i + 1,
                        (a->n_options - i - 1) * sizeof(CoapOption));
                a->n_options--;
                break;
        }

        if (a->observe) {
                bool found = false;

                for (size_t i = 0; i < a->n_options; i++)
                        found = found || a->options[i].number == COAP_OPTION_OBSERVE;
                if (!found)
                        a->options[a->n_options++] = (CoapOption){
                                .number = COAP_OPTION_OBSERVE,
                        };
        }
        return 0;
}

uint8_t request_fit_block_szx(const RequestArgs *a, size_t max_message) {
        /* Header, token, payload marker and the options the engine adds (Block1/2, Size1,
         * Content-Format, Request-Tag, Echo, Observe), generously. */
        size_t overhead = 96 + strlen(a->path) + 3;
        uint8_t szx = a->block_szx;

        /* Each path segment and query argument is an option: up to 3 header bytes. */
        for (const char *p = a->path; *p; p++)
                if (*p == '/' || *p == '?' || *p == '&')
                        overhead += 3;
        for (size_t i = 0; i < a->n_options; i++)
                overhead += a->options[i].len + 5;
        while (szx > 0 &&
               (max_message < overhead || coap_szx_to_size(szx) > max_message - overhead))
                szx--;
        return szx;
}

static int describe_destination(const RequestDestination *d, int family, CoapAddr *ret,
                                RequestError *e) {
        int r;

        if (d->string)
                r = parse_destination(d->string, family, ret);
        else
                r = parse_sockaddr(d->sockaddr, d->sockaddr_len, family, ret);
        if (r >= 0)
                return 0;
        if (d->string)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ADDRESS, -EINVAL,
                                         "Invalid destination '%s' for this %s socket.", d->string,
                                         family == AF_INET6 ? "IPv6" : "IPv4");
        return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ADDRESS, -EINVAL,
                                 "Invalid destination address for this %s socket.",
                                 family == AF_INET6 ? "IPv6" : "IPv4");
}

static int request_limit_checks(Client *c, size_t payload_len, RequestError *e) {
        Manager *m = c->manager;
        const Limits *l = &m->config.limits;
        const User *u = c->caller->user;
        int r;

        if (c->caller->stalled)
                return request_error_set(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                                         "The caller is not reading its responses.");
        r = client_can_submit(c, payload_len);
        if (r == -EAGAIN)
                return request_error_set(e, COAPCLIENTD_ERROR_TOO_MANY_REQUESTS, -EAGAIN,
                                         "A client may have at most %" PRIu32
                                         " requests in flight.",
                                         l->max_requests_per_client);
        if (r == -EDQUOT && u->n_requests >= l->max_requests_per_user)
                return request_error_set(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                                         "User %u may have at most %" PRIu32
                                         " requests in flight (MaxRequestsPerUser).",
                                         (unsigned) u->uid, l->max_requests_per_user);
        if (r == -EDQUOT)
                return request_error_set(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                                         "User %u may have at most %" PRIu64
                                         " payload bytes in flight (MaxPayloadBytesPerUser); "
                                         "%" PRIu64 " are taken.",
                                         (unsigned) u->uid, l->max_payload_bytes_per_user,
                                         u->payload_bytes);
        if (r == -ENOBUFS && hashmap_size(m->requests) >= user_share(u, l->max_requests))
                return request_error_set(
                        e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                        "The daemon serves at most %" PRIu64 " requests in flight (MaxRequests%s).",
                        user_share(u, l->max_requests), u->uid == 0 ? "" : ", less root's reserve");
        if (r == -ENOBUFS)
                return request_error_set(
                        e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                        "The daemon holds at most %" PRIu64 " payload bytes of requests in flight "
                        "(MaxPayloadBytesTotal%s); %" PRIu64 " are taken.",
                        user_share(u, l->max_payload_bytes_total),
                        u->uid == 0 ? "" : ", less root's reserve", m->payload_bytes);
        return r;
}

/* A refusal at a limit is logged at notice: the operator sees who runs into it. */
static int request_admit(Client *c, size_t payload_len, RequestError *e) {
        int r = request_limit_checks(c, payload_len, e);

        if (r < 0)
                log_notice("Caller %s, client %" PRIu64 ": request refused: %s", c->caller->name,
                           c->id, e->message);
        return r;
}

static int socket_error(int r, RequestError *e) {
        if (r == -ENOTSOCK)
                return request_error_set(e, COAPCLIENTD_ERROR_NOT_A_SOCKET, -ENOTSOCK,
                                         "The file descriptor is not a socket.");
        if (r == -ESOCKTNOSUPPORT)
                return request_error_set(e, COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET, -ESOCKTNOSUPPORT,
                                         "Only AF_INET and AF_INET6 datagram sockets are "
                                         "supported.");
        return r;
}

int request_precheck(Client *c, int fd, size_t payload_len, RequestError *e) {
        int r;

        r = request_admit(c, payload_len, e);
        if (r < 0 || fd < 0)
                return r;
        r = coapclientd_check_udp_socket(fd);
        return r < 0 ? socket_error(r, e) : 0;
}

int request_register_socket(User *u, int fd, Socket **ret, RequestError *e) {
        const Limits *l = &u->manager->config.limits;
        Socket *s;
        int r;

        r = user_can_add_socket(u);
        if (r == -EDQUOT)
                return request_error_set(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                                         "User %u may have at most %" PRIu32
                                         " sockets registered (MaxRequestsPerUser).",
                                         (unsigned) u->uid, l->max_requests_per_user);
        if (r == -ENOBUFS)
                return request_error_set(
                        e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                        "The daemon holds at most %" PRIu64 " registered sockets (MaxRequests%s).",
                        user_share(u, l->max_requests), u->uid == 0 ? "" : ", less root's reserve");
        if (fd < 0)
                return request_error_set(e, COAPCLIENTD_ERROR_NOT_A_SOCKET, -ENOTSOCK,
                                         "The registration came without its socket fd.");
        r = socket_acquire(u->manager, fd, &s);
        if (r < 0)
                return socket_error(r, e);
        socket_ref(s);
        u->n_sockets++;
        u->manager->n_registered_sockets++;
        *ret = s;
        return 0;
}

void request_release_socket(User *u, Socket *s) {
        assert(u->n_sockets > 0 && u->manager->n_registered_sockets > 0);
        u->n_sockets--;
        u->manager->n_registered_sockets--;
        socket_unref(s);
}

/* RFC 7252 §8.1 and Zephyr's rules for a request with a multicast window: a NON request to a
 * group, no observation, one message; plain CoAP only (no group security here). */
static int check_multicast(Client *c, Socket *s, const RequestArgs *a, const CoapAddr *dest,
                           RequestError *e) {
        if (c->creds)
                return request_error_set(e, COAPCLIENTD_ERROR_MULTICAST_DTLS, -EPROTONOSUPPORT,
                                         "Multicast requests are plain CoAP: this client has "
                                         "DTLS credentials.");
        if (!coap_addr_is_multicast(dest) || socket_is_connected(s))
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ADDRESS, -EINVAL,
                                         "A multicast window needs a multicast destination on an "
                                         "unconnected socket.");
        if (a->confirmable || a->observe || a->stream_window > 0 ||
            a->payload_len > coap_szx_to_size(a->block_szx))
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                         "A multicast request is NON, observes nothing and fits "
                                         "one message.");
        return 0;
}

/* The admitted request on s, from the destination on. */
static int request_submit_on(Client *c, Socket *s, const RequestDestination *destination,
                             RequestArgs *a, CallerSink *sink, uint64_t tag, uint64_t *ret_id,
                             RequestError *e) {
        _cleanup_(socket_peer_unrefp) SocketPeer *peer = NULL;
        CoapAddr dest;
        int r;

        r = describe_destination(destination, s->family, &dest, e);
        if (r < 0)
                return r;
        /* A connected socket takes datagrams from its peer alone: answers from anywhere else would
         * never arrive. */
        if (dest.len > 0 && socket_is_connected(s) && !socket_is_connected_to(s, &dest))
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ADDRESS, -EINVAL,
                                         "The socket is connected to another peer: leave the "
                                         "destination empty or give that peer.");
        if (dest.len == 0 && !socket_is_connected(s))
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ADDRESS, -EINVAL,
                                         "The socket is not connected: a destination is required.");

        if (a->multicast_ms > 0) {
                r = check_multicast(c, s, a, &dest, e);
                if (r < 0)
                        return r;
        }

        r = client_get_peer(c, s, &dest, &peer);
        if (r == -EALREADY)
                return request_error_set(e, COAPCLIENTD_ERROR_SOCKET_IN_USE, -EALREADY,
                                         "The socket carries %s to this peer already.",
                                         c->creds ? "plain CoAP or DTLS with other credentials"
                                                  : "DTLS");
        if (r == -ENOBUFS)
                return request_error_set(e, COAPCLIENTD_ERROR_LIMITS_EXCEEDED, -ENOBUFS,
                                         "A client keeps at most %d DTLS sessions.",
                                         CLIENT_SESSIONS_MAX);
        if (r < 0)
                return r;
        a->block_szx = request_fit_block_szx(a, socket_peer_max_message(peer));

        r = client_submit(c, s, peer,
                          &(CoapRequestSpec){
                                  .method = (uint8_t) a->method,
                                  .confirmable = a->confirmable,
                                  .path = a->path,
                                  .content_format = a->content_format,
                                  .payload = a->payload,
                                  .payload_len = a->payload_len,
                                  .options = a->options,
                                  .n_options = a->n_options,
                                  .params = a->params,
                                  .block_szx = a->block_szx,
                                  .block2_early = a->block2_early,
                                  .dest = &dest,
                                  .stream = a->stream_window > 0,
                                  .stream_window = a->stream_window,
                                  .multicast_ms = a->multicast_ms,
                          },
                          sink, tag, ret_id);
        if (r == -EINVAL)
                return request_error_set(e, COAPCLIENTD_ERROR_INVALID_ARGUMENT, -EINVAL,
                                         "The CoAP engine rejected the request.");
        if (r == -ENOMEM)
                return r;
        if (r == -EALREADY)
                return request_error_set(e, NULL, r,
                                         "The client observes this resource on this socket "
                                         "already.");
        if (r < 0)
                return request_error_set(e, NULL, r, "Failed to send the request: %s",
                                         strerror(-r));
        return 0;
}

static size_t request_admitted_bytes(const RequestArgs *a) {
        return a->stream_window > 0 ? a->stream_window : a->payload_len;
}

int request_submit(Client *c, int fd, const RequestDestination *destination, RequestArgs *a,
                   CallerSink *sink, uint64_t tag, uint64_t *ret_id, RequestError *e) {
        Socket *s;
        int r;

        r = request_admit(c, request_admitted_bytes(a), e);
        if (r < 0)
                return r;
        r = socket_acquire(c->manager, fd, &s);
        if (r < 0)
                return socket_error(r, e);
        return request_submit_on(c, s, destination, a, sink, tag, ret_id, e);
}

int request_submit_socket(Client *c, Socket *s, const RequestDestination *destination,
                          RequestArgs *a, CallerSink *sink, uint64_t tag, uint64_t *ret_id,
                          RequestError *e) {
        int r;

        r = request_admit(c, request_admitted_bytes(a), e);
        if (r < 0)
                return r;
        return request_submit_on(c, s, destination, a, sink, tag, ret_id, e);
}
