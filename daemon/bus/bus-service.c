/* SPDX-License-Identifier: MIT */
#include "bus/bus-service.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus-caller.h"
#include "bus/bus-client.h"
#include "bus/bus-logcontrol.h"
#include "bus/bus-manager.h"
#include "bus/bus-status.h"
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

/* One subscription for every peer, filtered here: a match rule per caller would run into the
 * bus's limit on match rules (512 per connection on the system bus). Only the bus driver may
 * say who left: the match names it as sender, and the signal is checked again here. */
static int bus_service_on_name_owner_changed(sd_bus_message *m, void *userdata,
                                             sd_bus_error *ret_error) {
        BusService *b = userdata;
        const char *name, *old_owner, *new_owner, *sender = sd_bus_message_get_sender(m);
        int r;

        (void) ret_error;
        if (!sender || strcmp(sender, "org.freedesktop.DBus") != 0)
                return 0;
        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0)
                return 0;
        if (name[0] == ':' && new_owner[0] == '\0')
                bus_caller_vanished(b, name);
        return 0;
}

static int bus_service_on_match_installed(sd_bus_message *m, void *userdata,
                                          sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);

        (void) userdata, (void) ret_error;
        /* Without it, callers that leave are never freed: nothing to serve then. */
        if (e) {
                log_error("Cannot watch callers leave (%s: %s), exiting", e->name,
                          e->message ?: "");
                return -ENOTCONN;
        }
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
        r = hashmap_new(&bus_caller_hash_ops, &b->callers);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the caller table: %m");
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

        /* sd-bus runs the filter added last first: the caller's accounting, then LogControl1. */
        r = sd_bus_add_filter(b->bus, &b->logcontrol_filter_slot, bus_logcontrol_filter, b);
        if (r < 0)
                return log_error_errno(r, "Failed to install the LogControl1 filter: %m");
        r = sd_bus_add_filter(b->bus, &b->filter_slot, bus_caller_filter, b);
        if (r < 0)
                return log_error_errno(r, "Failed to install the caller filter: %m");
        r = sd_bus_match_signal_async(b->bus, &b->name_owner_slot, "org.freedesktop.DBus",
                                      "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                      "NameOwnerChanged", bus_service_on_name_owner_changed,
                                      bus_service_on_match_installed, b);
        if (r < 0)
                return log_error_errno(r, "Failed to watch callers leave: %m");

        r = bus_manager_register(b);
        if (r < 0)
                return r;
        r = bus_client_register(b);
        if (r < 0)
                return r;
        r = bus_logcontrol_register(b);
        if (r < 0)
                return r;
        r = bus_status_new(b, &b->status);
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
        BusCaller *bc;

        /* The callers' flow control and their Response signals need the bus: they go first. */
        while ((bc = hashmap_first(b->callers)))
                bus_caller_free(bc);
        while ((c = hashmap_first(b->manager->callers)))
                caller_free(c);
        hashmap_free(b->callers);
        sd_bus_slot_unref(b->filter_slot);
        sd_bus_slot_unref(b->logcontrol_filter_slot);
        sd_bus_slot_unref(b->name_owner_slot);
        bus_status_free(b->status);
        sd_bus_slot_unref(b->manager_slot);
        sd_bus_slot_unref(b->client_slot);
        sd_bus_slot_unref(b->enumerator_slot);
        sd_bus_flush_close_unref(b->bus);
        free(b);
        return NULL;
}
