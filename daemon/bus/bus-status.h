/* SPDX-License-Identifier: MIT */
#pragma once

#include "bus/bus.h"

typedef struct BusStatus BusStatus;

/* Publishes Manager.GetStatus(), ListCallers() and Monitor() with the RequestStarted,
 * RequestEndedDetails and RequestEnded signals, and logs each request with its caller at debug
 * level. */
int bus_status_new(BusService *b, BusStatus **ret);
BusStatus *bus_status_free(BusStatus *s);
