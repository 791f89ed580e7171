/* SPDX-License-Identifier: MIT */
#pragma once

/* The D-Bus front end's state: the daemon's bus connection and the slots of the objects it
 * publishes (Manager, Client). bus-service.c sets it up. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "core/client.h"
#include "core/manager.h"

typedef struct BusService {
        Manager *manager;
        sd_bus *bus;
        sd_bus_slot *manager_slot, *client_slot, *enumerator_slot;
        bool queue_warned;
} BusService;

/* Warns (once per crossing) when our outgoing bus queue grows past the limit. */
void bus_service_check_queue(BusService *b);

/* "/org/coapclientd/CoapClient1/client/" and a uint64 in decimal. */
#define BUS_CLIENT_PATH_MAX 64

/* The object path of a client. */
const char *bus_client_path(const Client *c, char buf[static BUS_CLIENT_PATH_MAX]);
