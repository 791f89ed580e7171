/* SPDX-License-Identifier: MIT */
#pragma once

/* The D-Bus front end's state: the daemon's bus connection and the slots of the objects it
 * publishes (Manager, Client). bus-service.c sets it up. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "core/client.h"
#include "core/manager.h"

typedef struct BusCaller BusCaller;

/* Our calls waiting for a reply at once, at most (Pings, credential queries): dbus-daemon
 * refuses a connection's 129th by default (max_replies_per_connection). Pings may hold at most
 * BUS_PROBES_MAX of them, since a caller that never reads holds one for 30 s: the rest stays
 * for the credential queries new callers wait for. */
#define BUS_CALLS_MAX  96
#define BUS_PROBES_MAX 64
typedef struct BusStatus BusStatus;

typedef struct BusService {
        Manager *manager;
        sd_bus *bus;
        BusStatus *status; /* GetStatus, ListCallers, Monitor (bus-status.c) */
        sd_bus_slot *manager_slot, *client_slot, *enumerator_slot, *filter_slot,
                *logcontrol_filter_slot, *name_owner_slot;
        bool queue_warned;

        Hashmap *callers;  /* unique name -> BusCaller: every peer that called us */
        unsigned n_calls;  /* ours, waiting for replies */
        unsigned n_probes; /* of them, Pings */
        BusCaller *probe_queue, *creds_queue; /* LISTs: waiting for a free call slot */
} BusService;

/* Warns (once per crossing) when our outgoing bus queue grows past the limit. */
void bus_service_check_queue(BusService *b);

/* "/org/coapclientd/CoapClient1/client/" and a uint64 in decimal. */
#define BUS_CLIENT_PATH_MAX 64

/* The object path of a client. */
const char *bus_client_path(const Client *c, char buf[static BUS_CLIENT_PATH_MAX]);
