/* SPDX-License-Identifier: MIT */
#include "bus/bus.h"

#include <inttypes.h>
#include <stdio.h>

#include "internal/bus-api.h"
#include "util/log.h"

const char *bus_client_path(const Client *c, char buf[static BUS_CLIENT_PATH_MAX]) {
        (void) snprintf(buf, BUS_CLIENT_PATH_MAX, COAPCLIENTD_CLIENT_PREFIX "/%" PRIu64, c->id);
        return buf;
}

void bus_service_check_queue(BusService *b) {
        uint64_t n;

        if (sd_bus_get_n_queued_write(b->bus, &n) < 0)
                return;
        if (!b->queue_warned && n > b->manager->config.limits.bus_queue_warn) {
                log_warning("%" PRIu64 " messages queued for the bus: a receiver is not reading "
                            "its signals",
                            n);
                b->queue_warned = true;
        } else if (b->queue_warned && n <= b->manager->config.limits.bus_queue_warn / 2)
                b->queue_warned = false;
}
