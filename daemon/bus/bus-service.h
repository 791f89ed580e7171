/* SPDX-License-Identifier: MIT */
#pragma once

/* The D-Bus front end, set up: connected, its objects published, the bus name taken. */

#include "bus/bus.h"

/* Connects to address (NULL: the system bus), publishes the objects and takes the bus name.
 * Losing the bus ends the manager's loop. */
int bus_service_new(Manager *m, const char *address, BusService **ret);
/* Frees every caller (they hold tracking objects on the bus), then the connection. */
BusService *bus_service_free(BusService *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusService *, bus_service_free);
