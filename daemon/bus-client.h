/* SPDX-License-Identifier: MIT */
#pragma once

#include "coap-engine.h"
#include "internal/bus-api.h"
#include "manager.h"

/* Limits of one Request() that are part of the D-Bus contract (docs/dbus-api.md). */
#define REQUEST_PATH_MAX         1024
#define REQUEST_OPTIONS_MAX      16
#define REQUEST_OPTION_VALUE_MAX 255

/* Serves org.coapclientd.CoapClient1.Client below the client prefix: a fallback vtable that
 * finds a client only for its owner, and an enumerator listing the caller's own clients. */
int bus_client_register(Manager *m);

/* Sends one Response signal to the client's owner alone. */
int bus_client_send_response(Client *c, const CoapEvent *ev);
