/* SPDX-License-Identifier: MIT */
#pragma once

#include "bus/bus.h"

/* Publishes org.coapclientd.CoapClient1.Manager on the root object. */
int bus_manager_register(BusService *b);
