/* SPDX-License-Identifier: MIT */
#pragma once

#include "bus/bus.h"

/* Publishes org.freedesktop.LogControl1 on /org/freedesktop/LogControl1, so that
 * "systemctl service-log-level coapclientd debug" works without a restart. */
int bus_logcontrol_register(BusService *b);
/* sd-bus filter: answers Properties.Set on the LogControl1 object itself (root only). */
int bus_logcontrol_filter(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
