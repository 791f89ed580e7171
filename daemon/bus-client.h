/* SPDX-License-Identifier: MIT */
#pragma once

#include "client.h"
#include "coap-engine.h"
#include "internal/bus-api.h"
#include "internal/request-rules.h"
#include "manager.h"

/* Limits of one Request() that are part of the D-Bus contract (docs/dbus-api.md). */
#define REQUEST_PATH_MAX         COAPCLIENTD_PATH_MAX
#define REQUEST_OPTIONS_MAX      16
#define REQUEST_OPTION_VALUE_MAX 255

typedef struct RequestArgs {
        int method; /* -1: not given */
        bool confirmable;
        const char *path;
        int32_t content_format;
        const uint8_t *payload;
        size_t payload_len;
        CoapOption options[REQUEST_OPTIONS_MAX + 1]; /* + Observe from "observe" */
        size_t n_options;
        bool observe;
        CoapTxParams params;
        uint8_t block_szx;
} RequestArgs;

/* Transmission parameters a request may set, with their ranges in the D-Bus contract. */
typedef enum RequestTxParam {
        REQUEST_ACK_TIMEOUT, /* ranges: COAPCLIENTD_* in internal/bus-api.h */
        REQUEST_ACK_RANDOM_PERCENT,
        REQUEST_BACKOFF_PERCENT,
        REQUEST_MAX_RETRANSMISSION,
} RequestTxParam;

/* Building RequestArgs from either front end (D-Bus or the data channel): defaults from config,
 * then the setters, each checking its value and naming the error, then finish (method, path,
 * Observe). */
void request_args_init(RequestArgs *a, const ManagerConfig *config);
int request_args_add_option(RequestArgs *a, uint16_t number, const void *value, size_t len,
                            sd_bus_error *error);
int request_args_set_payload(RequestArgs *a, const void *payload, size_t len,
                             const ManagerConfig *config, sd_bus_error *error);
int request_args_set_block_size(RequestArgs *a, uint16_t size, sd_bus_error *error);
int request_args_set_tx_param(RequestArgs *a, RequestTxParam which, uint32_t v,
                              sd_bus_error *error);
int request_args_finish(RequestArgs *a, sd_bus_error *error);

/* Decodes the a{sv} request dictionary at the read position of m (method "Request"), with the
 * limits and defaults of config; pointers in a point into m. Bad input: sets error to the named
 * error of docs/dbus-api.md and returns < 0. Without error set, < 0 is an sd-bus read failure
 * (m does not hold an a{sv} there) or -ENOMEM. */
int request_args_parse(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                       sd_bus_error *error);

/* The largest block size (as SZX, at most a->block_szx) whose messages, with the request's path
 * and options, fit in max_message bytes (one DTLS record); 0 (16 bytes) when nothing fits. */
uint8_t request_fit_block_szx(const RequestArgs *a, size_t max_message);

/* Where a request goes: the D-Bus destination string, or the data channel's raw sockaddr (none:
 * the socket's connected peer). */
typedef struct RequestDestination {
        const char *string;
        const void *sockaddr;
        size_t sockaddr_len;
} RequestDestination;

/* The limits and the socket of a request before anything costly is done for it (the data
 * channel reads a memfd payload only after this): a named error, or 0. */
int request_precheck(Client *c, int fd, size_t payload_len, sd_bus_error *error);

/* The limits, the socket fd (duplicated if new, never kept), the destination, the peer and the
 * submission of one request, for both front ends: every refusal is a named error in error. */
int request_submit(Client *c, int fd, const RequestDestination *destination, RequestArgs *a,
                   const RequestOrigin *origin, uint64_t *ret_id, sd_bus_error *error);

/* Serves org.coapclientd.CoapClient1.Client below the client prefix: a fallback vtable that
 * finds a client only for its owner, and an enumerator listing the caller's own clients. */
int bus_client_register(Manager *m);

/* Sends one Response signal to the client's owner alone. */
int bus_client_send_response(Client *c, const CoapEvent *ev);
