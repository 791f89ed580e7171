/* SPDX-License-Identifier: MIT */
#pragma once

/* org.coapclientd.CoapClient1.Client: one object per client context, served to its owner
 * alone. */

#include "bus/bus.h"

/* Serves the Client interface below the client prefix: a fallback vtable that finds a client
 * only for its owner, and an enumerator listing the caller's own clients. */
int bus_client_register(BusService *b);
