/* SPDX-License-Identifier: MIT */
#include "bus-client.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus-credentials.h"
#include "bus-util.h"
#include "client.h"
#include "coap-option.h"
#include "socket.h"
#include "util/log.h"

int request_args_add_option(RequestArgs *a, uint16_t number, const void *value, size_t len,
                            sd_bus_error *error) {
        if (a->n_options >= REQUEST_OPTIONS_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_OPTION,
                                         "At most %d options per request.", REQUEST_OPTIONS_MAX);
        if (coapclientd_option_is_reserved(number))
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_OPTION,
                                         "Option %" PRIu16 " cannot be set in 'options'.", number);
        if (len > REQUEST_OPTION_VALUE_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_OPTION,
                                         "Option %" PRIu16 " value longer than %d bytes.", number,
                                         REQUEST_OPTION_VALUE_MAX);
        a->options[a->n_options++] = (CoapOption){
                .number = number,
                .len = (uint16_t) len,
                .value = value,
        };
        return 0;
}

static int read_options(sd_bus_message *m, RequestArgs *a, sd_bus_error *error) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(qay)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "qay")) > 0) {
                const void *value;
                uint16_t number;
                size_t len;

                r = sd_bus_message_read(m, "q", &number);
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(m, 'y', &value, &len);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;

                r = request_args_add_option(a, number, value, len, error);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int invalid_parameter(sd_bus_error *error, const char *key, unsigned long v,
                             unsigned long min, unsigned long max) {
        return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_PARAMETERS,
                                 "Request key '%s' is %lu, must be within %lu..%lu.", key, v, min,
                                 max);
}

int request_args_set_payload(RequestArgs *a, const void *payload, size_t len,
                             const ManagerConfig *config, sd_bus_error *error) {
        if (len > config->limits.max_payload_bytes)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_PAYLOAD_TOO_LARGE,
                                         "Payload of %zu bytes exceeds %" PRIu32 ".", len,
                                         config->limits.max_payload_bytes);
        a->payload = payload;
        a->payload_len = len;
        return 0;
}

int request_args_set_block_size(RequestArgs *a, uint16_t size, sd_bus_error *error) {
        int szx = coap_size_to_szx(size);

        if (szx < 0)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_PARAMETERS,
                                         "Request key 'block-size' is %" PRIu16
                                         ", must be a power of two within 16..1024.",
                                         size);
        a->block_szx = (uint8_t) szx;
        return 0;
}

int request_args_set_tx_param(RequestArgs *a, RequestTxParam which, uint32_t v,
                              sd_bus_error *error) {
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
                return invalid_parameter(error, ranges[which].key, v, ranges[which].min,
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

/* Reads the value of one a{sv} entry whose key is known to be valid. */
static int read_request_key(sd_bus_message *m, const ManagerConfig *config, const char *key,
                            RequestArgs *a, sd_bus_error *error) {
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
        int b, r;

        if (strcmp(key, "method") == 0) {
                r = sd_bus_message_read(m, "y", &u8);
                a->method = u8;
        } else if (strcmp(key, "confirmable") == 0) {
                r = sd_bus_message_read(m, "b", &b);
                a->confirmable = b;
        } else if (strcmp(key, "path") == 0)
                r = sd_bus_message_read(m, "s", &a->path);
        else if (strcmp(key, "content-format") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                a->content_format = u16;
        } else if (strcmp(key, "payload") == 0) {
                const void *p;
                size_t len;

                r = sd_bus_message_read_array(m, 'y', &p, &len);
                if (r >= 0)
                        r = request_args_set_payload(a, p, len, config, error);
        } else if (strcmp(key, "options") == 0)
                r = read_options(m, a, error);
        else if (strcmp(key, "observe") == 0) {
                r = sd_bus_message_read(m, "b", &b);
                a->observe = b;
        } else if (strcmp(key, "ack-timeout") == 0) {
                r = sd_bus_message_read(m, "u", &u32);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_ACK_TIMEOUT, u32, error);
        } else if (strcmp(key, "ack-random-percent") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_ACK_RANDOM_PERCENT, u16, error);
        } else if (strcmp(key, "backoff-percent") == 0) {
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_BACKOFF_PERCENT, u16, error);
        } else if (strcmp(key, "max-retransmission") == 0) {
                r = sd_bus_message_read(m, "y", &u8);
                if (r >= 0)
                        r = request_args_set_tx_param(a, REQUEST_MAX_RETRANSMISSION, u8, error);
        } else {
                assert(strcmp(key, "block-size") == 0);
                r = sd_bus_message_read(m, "q", &u16);
                if (r >= 0)
                        r = request_args_set_block_size(a, u16, error);
        }
        return r;
}

static const BusDictKey request_keys[] = {
        {"method", "y"},          {"confirmable", "b"},        {"path", "s"},
        {"content-format", "q"},  {"payload", "ay"},           {"options", "a(qay)"},
        {"observe", "b"},         {"ack-timeout", "u"},        {"ack-random-percent", "q"},
        {"backoff-percent", "q"}, {"max-retransmission", "y"}, {"block-size", "q"},
};

static int check_path(const char *path, sd_bus_error *error) {
        _cleanup_free_ CoapOption *opts = NULL;
        size_t len = strlen(path), n;
        int r;

        if (len > REQUEST_PATH_MAX)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_PATH,
                                         "Path longer than %d bytes.", REQUEST_PATH_MAX);
        /* Every option needs at least one separator, so len + 1 options always suffice. */
        opts = calloc(len + 1, sizeof(CoapOption));
        if (!opts)
                return -ENOMEM;
        r = coap_path_to_options(path, opts, len + 1, &n);
        if (r < 0)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_PATH,
                                         "Path has a segment longer than 255 bytes.");
        return 0;
}

int request_args_parse(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                       sd_bus_error *error) {
        uint32_t seen = 0;
        int r;

        request_args_init(a, config);

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
                int i;

                i = bus_dict_entry_read_key(m, request_keys, ELEMENTSOF(request_keys), &seen,
                                            COAPCLIENTD_ERROR_INVALID_ARGUMENT, "request", error);
                if (i < 0)
                        return i;
                r = read_request_key(m, config, request_keys[i].key, a, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        return request_args_finish(a, error);
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

int request_args_finish(RequestArgs *a, sd_bus_error *error) {
        int r;

        if (a->method < 0)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_INVALID_METHOD,
                                        "Request key 'method' is required.");
        if (a->method < COAP_CODE_GET || a->method > COAP_CODE_IPATCH)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_METHOD,
                                         "Method %d is not a CoAP request method (1..7).",
                                         a->method);
        r = check_path(a->path, error);
        if (r < 0)
                return r;

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
                                sd_bus_error *error) {
        int r;

        if (d->string)
                r = parse_destination(d->string, family, ret);
        else
                r = parse_sockaddr(d->sockaddr, d->sockaddr_len, family, ret);
        if (r >= 0)
                return 0;
        if (d->string)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_ADDRESS,
                                         "Invalid destination '%s' for this %s socket.", d->string,
                                         family == AF_INET6 ? "IPv6" : "IPv4");
        return sd_bus_error_setf(error, COAPCLIENTD_ERROR_INVALID_ADDRESS,
                                 "Invalid destination address for this %s socket.",
                                 family == AF_INET6 ? "IPv6" : "IPv4");
}

static int request_admit(Client *c, size_t payload_len, sd_bus_error *error) {
        Manager *m = c->manager;
        int r;

        if (c->caller->stalled)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                                        "The caller is not reading its responses.");
        r = client_can_submit(c, payload_len);
        if (r == -EAGAIN)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_TOO_MANY_REQUESTS,
                                         "A client may have at most %" PRIu32
                                         " requests in flight.",
                                         m->config.limits.max_requests_per_client);
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
                                         "The daemon serves at most %" PRIu32
                                         " requests and %" PRIu64 " payload bytes in flight.",
                                         m->config.limits.max_requests,
                                         m->config.limits.max_payload_bytes_total);
        return r;
}

static int socket_error(int r, sd_bus_error *error) {
        if (r == -ENOTSOCK)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_NOT_A_SOCKET,
                                        "The file descriptor is not a socket.");
        if (r == -ESOCKTNOSUPPORT)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_UNSUPPORTED_SOCKET,
                                        "Only AF_INET and AF_INET6 datagram sockets are "
                                        "supported.");
        return r;
}

int request_precheck(Client *c, int fd, size_t payload_len, sd_bus_error *error) {
        int r;

        r = request_admit(c, payload_len, error);
        if (r < 0)
                return r;
        r = coapclientd_check_udp_socket(fd);
        return r < 0 ? socket_error(r, error) : 0;
}

int request_submit(Client *c, int fd, const RequestDestination *destination, RequestArgs *a,
                   const RequestOrigin *origin, uint64_t *ret_id, sd_bus_error *error) {
        _cleanup_(socket_peer_unrefp) SocketPeer *peer = NULL;
        Manager *m = c->manager;
        CoapAddr dest;
        Socket *s;
        int r;

        r = request_admit(c, a->payload_len, error);
        if (r < 0)
                return r;
        r = socket_acquire(m, fd, &s);
        if (r < 0)
                return socket_error(r, error);

        r = describe_destination(destination, s->family, &dest, error);
        if (r < 0)
                return r;
        if (dest.len == 0 && !socket_is_connected(s))
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_INVALID_ADDRESS,
                                        "The socket is not connected: a destination is required.");

        r = client_get_peer(c, s, &dest, &peer);
        if (r == -EALREADY)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_SOCKET_IN_USE,
                                         "The socket carries %s to this peer already.",
                                         c->creds ? "plain CoAP or DTLS with other credentials"
                                                  : "DTLS");
        if (r == -ENOBUFS)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_LIMITS_EXCEEDED,
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
                                  .dest = &dest,
                          },
                          origin, ret_id);
        if (r == -EINVAL)
                return sd_bus_error_set(error, COAPCLIENTD_ERROR_INVALID_ARGUMENT,
                                        "The CoAP engine rejected the request.");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Failed to send the request: %m");
        return 0;
}

static int method_request(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        Manager *m = c->manager;
        const char *destination;
        RequestArgs a;
        uint64_t id;
        int fd, r;

        r = sd_bus_message_read(msg, "hs", &fd, &destination);
        if (r < 0)
                return r;
        r = request_args_parse(msg, &m->config, &a, error);
        if (r < 0)
                return r;
        r = request_submit(c, fd, &(RequestDestination){.string = destination}, &a,
                           &(RequestOrigin){}, &id, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "t", id);
}

static int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        r = client_cancel(c, id);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_UNKNOWN_REQUEST,
                                         "No request %" PRIu64 " in flight on this client.", id);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_cancel_all(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        (void) error;
        client_cancel_all(userdata);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_deregister_observe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        uint64_t id;
        int r;

        r = sd_bus_message_read(msg, "t", &id);
        if (r < 0)
                return r;
        r = client_deregister_observe(c, id);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_UNKNOWN_REQUEST,
                                         "No request %" PRIu64 " in flight on this client.", id);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, COAPCLIENTD_ERROR_NOT_OBSERVING,
                                         "Request %" PRIu64 " is not an observation.", id);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Failed to send the deregistration: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_close(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Client *c = userdata;
        Caller *caller = c->caller;
        int r;

        (void) error;
        /* As Zephyr's cancel: every request gets its final -ECANCELED before the reply. */
        client_cancel_all(c);
        r = sd_bus_reply_method_return(msg, NULL);
        client_free(c);
        caller_gc(caller);
        return r;
}

static int method_set_credentials(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        PeerCredentials *creds = NULL;
        int r;

        r = bus_credentials_parse(msg, &creds, error);
        if (r < 0)
                return r;
        client_set_credentials(userdata, creds);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_clear_credentials(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        (void) error;
        client_set_credentials(userdata, NULL);
        return sd_bus_reply_method_return(msg, NULL);
}

static int property_get_secure(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Client *c = userdata;

        (void) bus, (void) path, (void) interface, (void) property, (void) error;
        return sd_bus_message_append(reply, "b", c->creds != NULL);
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface,
                               const char *property, sd_bus_message *reply, void *userdata,
                               sd_bus_error *error) {
        Client *c = userdata;

        (void) bus, (void) path, (void) interface, (void) error;
        return sd_bus_message_append(reply, "s",
                                     strcmp(property, "Name") == 0 ? c->name : c->caller->name);
}

static int property_get_counter(sd_bus *bus, const char *path, const char *interface,
                                const char *property, sd_bus_message *reply, void *userdata,
                                sd_bus_error *error) {
        Client *c = userdata;
        uint64_t v;

        (void) bus, (void) path, (void) interface, (void) error;
        if (strcmp(property, "RequestsInFlight") == 0)
                return sd_bus_message_append(reply, "u", c->n_requests);
        if (strcmp(property, "RequestsCompleted") == 0)
                v = c->requests_completed;
        else if (strcmp(property, "RequestsFailed") == 0)
                v = c->requests_failed;
        else
                v = c->responses_delivered;
        return sd_bus_message_append(reply, "t", v);
}

static const sd_bus_vtable client_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS(
                "Request", SD_BUS_ARGS("h", socket, "s", destination, "a{sv}", request),
                SD_BUS_RESULT("t", request_id), method_request, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS("t", request_id), SD_BUS_NO_RESULT,
                                method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelAll", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel_all,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeregisterObserve", SD_BUS_ARGS("t", request_id), SD_BUS_NO_RESULT,
                                method_deregister_observe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Close", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_close,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetCredentials", SD_BUS_ARGS("a{sv}", credentials, "h", secret),
                                SD_BUS_NO_RESULT, method_set_credentials,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ClearCredentials", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                                method_clear_credentials, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Response",
                                SD_BUS_ARGS("t", request_id, "i", result, "t", offset, "ay",
                                            payload, "b", last_block, "b", final, "a{sv}", details),
                                0),
        SD_BUS_PROPERTY("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RequestsInFlight", "u", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("RequestsCompleted", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("RequestsFailed", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("ResponsesDelivered", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Secure", "b", property_get_secure, 0, 0),
        SD_BUS_VTABLE_END,
};

/* PREFIX/ID with ID in plain decimal, no leading zero. */
static int client_path_parse(const char *path, uint64_t *ret) {
        const char *p;
        uint64_t id = 0;

        if (strncmp(path, COAPCLIENTD_CLIENT_PREFIX "/", strlen(COAPCLIENTD_CLIENT_PREFIX "/")) !=
            0)
                return -EINVAL;
        p = path + strlen(COAPCLIENTD_CLIENT_PREFIX "/");
        if (*p < '1' || *p > '9')
                return -EINVAL;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || id > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                id = id * 10 + (uint64_t) (*p - '0');
        }
        *ret = id;
        return 0;
}

static const char *current_sender(sd_bus *bus) {
        sd_bus_message *m = sd_bus_get_current_message(bus);

        return m ? sd_bus_message_get_sender(m) : NULL;
}

/* Another caller must not even learn that the object exists: it gets UnknownObject. */
static int client_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                              void **found, sd_bus_error *error) {
        Manager *m = userdata;
        const char *sender = current_sender(bus);
        uint64_t id;
        Client *c;

        (void) interface, (void) error;
        if (!sender || client_path_parse(path, &id) < 0)
                return 0;
        c = hashmap_get(m->clients, &id);
        if (!c || strcmp(c->caller->name, sender) != 0)
                return 0;
        *found = c;
        return 1;
}

static int client_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                  sd_bus_error *error) {
        Caller *caller = manager_find_caller(userdata, current_sender(bus));
        char **l;
        size_t i = 0;
        Client *c;

        (void) path, (void) error;
        l = calloc((caller ? caller->n_clients : 0) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (caller)
                LIST_FOREACH(clients, c, caller->clients) {
                        l[i] = strdup(c->path);
                        if (!l[i]) {
                                while (i > 0)
                                        free(l[--i]);
                                free(l);
                                return -ENOMEM;
                        }
                        i++;
                }
        *nodes = l;
        return 0;
}

int bus_client_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, &m->client_slot, COAPCLIENTD_CLIENT_PREFIX,
                                       COAPCLIENTD_CLIENT_IFACE, client_vtable, client_object_find,
                                       m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the Client objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, &m->enumerator_slot, COAPCLIENTD_CLIENT_PREFIX,
                                       client_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the Client enumerator: %m");
        return 0;
}

static int append_detail_uint(sd_bus_message *s, const CoapMsg *msg, uint16_t number,
                              const char *key, char type) {
        uint32_t v;

        if (coap_msg_get_uint_option(msg, number, &v) < 0)
                return 0;
        if (type == 'q') {
                if (v > UINT16_MAX)
                        return 0;
                return sd_bus_message_append(s, "{sv}", key, "q", (uint16_t) v);
        }
        return sd_bus_message_append(s, "{sv}", key, "u", v);
}

static int append_details(sd_bus_message *s, const CoapEvent *ev) {
        const CoapMsg *msg = ev->msg;
        CoapOption etag;
        int r;

        r = sd_bus_message_open_container(s, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        if (ev->silent) {
                /* Zephyr makes no callback here; the library only forgets the request. */
                r = sd_bus_message_append(s, "{sv}", "silent", "b", 1);
                if (r < 0)
                        return r;
        }
        if (msg) {
                r = append_detail_uint(s, msg, COAP_OPTION_CONTENT_FORMAT, "content-format", 'q');
                if (r < 0)
                        return r;
                r = append_detail_uint(s, msg, COAP_OPTION_OBSERVE, "observe", 'u');
                if (r < 0)
                        return r;
                r = append_detail_uint(s, msg, COAP_OPTION_SIZE2, "size2", 'u');
                if (r < 0)
                        return r;
                if (coap_msg_find_option(msg, COAP_OPTION_ETAG, &etag)) {
                        r = sd_bus_message_open_container(s, SD_BUS_TYPE_DICT_ENTRY, "sv");
                        if (r >= 0)
                                r = sd_bus_message_append(s, "s", "etag");
                        if (r >= 0)
                                r = sd_bus_message_open_container(s, SD_BUS_TYPE_VARIANT, "ay");
                        if (r >= 0)
                                r = sd_bus_message_append_array(s, 'y', etag.value, etag.len);
                        if (r >= 0)
                                r = sd_bus_message_close_container(s);
                        if (r >= 0)
                                r = sd_bus_message_close_container(s);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_append(s, "{sv}", "type", "y", msg->type);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(s);
}

#define RESPONSE_SIGNAL_OVERHEAD 200

int bus_client_send_response(Client *c, const CoapEvent *ev) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        Manager *m = c->manager;
        int r;

        r = sd_bus_message_new_signal(m->bus, &s, c->path, COAPCLIENTD_CLIENT_IFACE, "Response");
        if (r < 0)
                goto fail;
        /* Unicast: only the owner receives its responses. */
        r = sd_bus_message_set_destination(s, c->caller->name);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append(s, "tit", ev->id, (int32_t) ev->result, (uint64_t) ev->offset);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append_array(s, 'y', ev->payload, ev->payload ? ev->payload_len : 0);
        if (r < 0)
                goto fail;
        r = sd_bus_message_append(s, "bb", (int) ev->last_block, (int) ev->final);
        if (r < 0)
                goto fail;
        r = append_details(s, ev);
        if (r < 0)
                goto fail;
        r = sd_bus_send(m->bus, s, NULL);
        if (r < 0)
                goto fail;
        /* Roughly its size on the wire: payload, the two names and the fixed fields. */
        caller_account_signal(c->caller, (ev->payload ? ev->payload_len : 0) + strlen(c->path) +
                                                 strlen(c->caller->name) +
                                                 RESPONSE_SIGNAL_OVERHEAD);
        manager_check_bus_queue(m);
        return 0;
fail:
        return log_warning_errno(
                r, "Client %" PRIu64 ": failed to send Response for request %" PRIu64 ": %m", c->id,
                ev->id);
}
