/* SPDX-License-Identifier: MIT */
#pragma once

/* A caller as the D-Bus front end knows it: its unique name tracked on the bus (it leaving frees
 * the caller), and the flow control of the Response signals sent to it. dbus-daemon charges
 * those to our connection until the caller reads them, so we ping it every so often: the reply,
 * ordered behind everything sent before, acknowledges them. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "bus/bus.h"
#include "core/caller.h"

/* A caller's pending Peer.Ping times out after this: it is then treated as stalled. */
#define BUS_CALLER_PROBE_TIMEOUT_USEC (30 * USEC_PER_SEC)

typedef struct BusCaller {
        CallerSink sink; /* its Response signals */
        BusService *service;
        sd_bus_track *track;

        uint64_t sent_bytes;     /* of the signals sent to it */
        uint64_t acked_bytes;    /* of those it has read */
        uint64_t probe_mark;     /* sent_bytes when the last Ping was sent */
        sd_bus_slot *probe_slot; /* the pending Ping */
        bool unprobed;           /* it cannot be pinged (bus policy): no flow control */
} BusCaller;

/* The caller for a unique name, tracked on the bus from now on. */
int bus_caller_get(BusService *b, const char *name, Caller **ret);
/* The D-Bus side of a caller, or NULL when it has never called us over D-Bus. */
BusCaller *bus_caller_find(Caller *c);
/* Accounts a signal of size bytes sent to the caller: pings it every so often, pauses or stalls
 * it when it falls behind. Safe from an engine event handler. */
void bus_caller_account_signal(BusCaller *bc, size_t size);
