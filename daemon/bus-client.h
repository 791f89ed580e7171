/* SPDX-License-Identifier: MIT */
#pragma once

#include "coap-engine.h"
#include "internal/bus-api.h"
#include "manager.h"

/* Limits of one Request() that are part of the D-Bus contract (docs/dbus-api.md). */
#define REQUEST_PATH_MAX         1024
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

/* Decodes the a{sv} request dictionary at the read position of m (method "Request"), with the
 * limits and defaults of config; pointers in a point into m. Bad input: sets error to the named
 * error of docs/dbus-api.md and returns < 0. Without error set, < 0 is an sd-bus read failure
 * (m does not hold an a{sv} there) or -ENOMEM. */
int request_args_parse(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                       sd_bus_error *error);

/* The largest block size (as SZX, at most a->block_szx) whose messages, with the request's path
 * and options, fit in max_message bytes (one DTLS record); 0 (16 bytes) when nothing fits. */
uint8_t request_fit_block_szx(const RequestArgs *a, size_t max_message);

/* Serves org.coapclientd.CoapClient1.Client below the client prefix: a fallback vtable that
 * finds a client only for its owner, and an enumerator listing the caller's own clients. */
int bus_client_register(Manager *m);

/* Sends one Response signal to the client's owner alone. */
int bus_client_send_response(Client *c, const CoapEvent *ev);
