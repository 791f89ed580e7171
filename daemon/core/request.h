/* SPDX-License-Identifier: MIT */
#pragma once

/* The rules of one request and its submission, shared by both front ends (D-Bus Request() and
 * the data channel's REQUEST frame): each builds RequestArgs with the setters below, then
 * request_submit() checks the limits and the socket and hands it to the client. Refusals are
 * neutral: a negative errno plus a RequestError naming the refusal, which each front end turns
 * into its own reply (a D-Bus error, a final EVENT frame). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap-engine.h"
#include "core/client.h"
#include "internal/macro.h"
#include "internal/request-rules.h"

/* Limits of one request that are part of the contract (docs/dbus-api.md). */
#define REQUEST_PATH_MAX         COAPCLIENTD_PATH_MAX
#define REQUEST_OPTIONS_MAX      16
#define REQUEST_OPTION_VALUE_MAX 255

#define REQUEST_ERROR_MESSAGE_MAX 256

/* Why a request was refused. name: COAPCLIENTD_ERROR_* (internal/error-names.h), or NULL for a
 * plain system error (the errno returned with it; message may still say more, or be empty). */
typedef struct RequestError {
        const char *name;
        char message[REQUEST_ERROR_MESSAGE_MAX];
} RequestError;

/* Fills e and returns error (a negative errno), so that refusals read "return
 * request_error_set(e, NAME, -EINVAL, "...")". */
int request_error_set(RequestError *e, const char *name, int error, const char *format, ...)
        _printf_(4, 5);

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
        bool block2_early;     /* from a Block2 option NUM 0: see request_args_finish() */
        size_t stream_window;  /* > 0: payload begins a streamed body, held in this many bytes */
        uint32_t multicast_ms; /* > 0: a multicast request collecting answers this long */
} RequestArgs;

/* Transmission parameters a request may set, with their ranges in the contract. */
typedef enum RequestTxParam {
        REQUEST_ACK_TIMEOUT, /* ranges: COAPCLIENTD_* in internal/request-rules.h */
        REQUEST_ACK_RANDOM_PERCENT,
        REQUEST_BACKOFF_PERCENT,
        REQUEST_MAX_RETRANSMISSION,
} RequestTxParam;

/* Defaults from config, then the setters, each checking its value and naming the error, then
 * finish (method, path, Observe, early negotiation). */
void request_args_init(RequestArgs *a, const ManagerConfig *config);
int request_args_add_option(RequestArgs *a, uint16_t number, const void *value, size_t len,
                            RequestError *e);
int request_args_set_payload(RequestArgs *a, const void *payload, size_t len,
                             const ManagerConfig *config, RequestError *e);
int request_args_set_block_size(RequestArgs *a, uint16_t size, RequestError *e);
int request_args_set_tx_param(RequestArgs *a, RequestTxParam which, uint32_t v, RequestError *e);
int request_args_finish(RequestArgs *a, RequestError *e);

/* The largest block size (as SZX, at most a->block_szx) whose messages, with the request's path
 * and options, fit in max_message bytes (one DTLS record); 0 (16 bytes) when nothing fits. */
uint8_t request_fit_block_szx(const RequestArgs *a, size_t max_message);

/* Where a request goes: a destination string, or a raw sockaddr (none: the socket's connected
 * peer). */
typedef struct RequestDestination {
        const char *string;
        const void *sockaddr;
        size_t sockaddr_len;
} RequestDestination;

/* The limits and the socket of a request before anything costly is done for it (the data
 * channel reads a memfd payload only after this). fd < 0: a registered socket, checked then. */
int request_precheck(Client *c, int fd, size_t payload_len, RequestError *e);

/* The limits, the socket fd (duplicated if new, never kept), the destination, the peer and the
 * submission of one request; its events go to sink, which knows it by tag. */
int request_submit(Client *c, int fd, const RequestDestination *destination, RequestArgs *a,
                   CallerSink *sink, uint64_t tag, uint64_t *ret_id, RequestError *e);
/* The same on a socket registered with request_register_socket(). */
int request_submit_socket(Client *c, Socket *s, const RequestDestination *destination,
                          RequestArgs *a, CallerSink *sink, uint64_t tag, uint64_t *ret_id,
                          RequestError *e);

/* A socket registered on a data channel: the checks of a request's socket fd, done once, and a
 * reference that keeps it until request_release_socket(). Counted as u's (MaxRequestsPerUser
 * bounds them for a uid other than root, MaxRequests less root's reserve for all: a registered
 * socket pins a daemon fd as a request in flight does). */
int request_register_socket(User *u, int fd, Socket **ret, RequestError *e);
void request_release_socket(User *u, Socket *s);
