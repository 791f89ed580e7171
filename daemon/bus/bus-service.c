/* SPDX-License-Identifier: MIT */
#include "bus/bus-service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "bus/bus-client.h"
#include "bus/bus-manager.h"
#include "core/caller.h"
#include "internal/bus-api.h"
#include "util/log.h"

static int bus_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system_with_description(ret, "coapclientd");

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_description(bus, "coapclientd");
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_service_new(Manager *m, const char *address, BusService **ret) {
        _cleanup_(bus_service_freep) BusService *b = NULL;
        int r;

        r = bus_api_register_errors();
        if (r < 0)
                return log_error_errno(r, "Failed to register D-Bus error names: %m");

        b = calloc(1, sizeof(BusService));
        if (!b)
                return log_error_errno(ENOMEM, "Out of memory.");
        b->manager = m;
        r = bus_open(address, &b->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to %s: %m",
                                       address ?: "the system bus");
        r = sd_bus_attach_event(b->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        /* Losing the bus ends the loop (with a failure exit code). */
        r = sd_bus_set_exit_on_disconnect(b->bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit on disconnect: %m");

        r = bus_manager_register(b);
        if (r < 0)
                return r;
        r = bus_client_register(b);
        if (r < 0)
                return r;

        r = sd_bus_request_name(b->bus, COAPCLIENTD_BUS_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Bus name %s is already taken by another process.",
                                       COAPCLIENTD_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to request bus name %s: %m",
                                       COAPCLIENTD_BUS_NAME);
        *ret = TAKE_PTR(b);
        return 0;
}

BusService *bus_service_free(BusService *b) {
        Caller *c;

        if (!b)
                return NULL;
        /* Callers hold bus tracking objects: they go first. */
        while ((c = hashmap_first(b->manager->callers)))
                caller_free(c);
        sd_bus_slot_unref(b->manager_slot);
        sd_bus_slot_unref(b->client_slot);
        sd_bus_slot_unref(b->enumerator_slot);
        sd_bus_flush_close_unref(b->bus);
        free(b);
        return NULL;
}
