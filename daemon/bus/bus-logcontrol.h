/* SPDX-License-Identifier: MIT */
#pragma once

#include "bus/bus.h"

/* Publishes org.freedesktop.LogControl1 on /org/freedesktop/LogControl1, so that
 * "systemctl service-log-level coapclientd debug" works without a restart. */
int bus_logcontrol_register(BusService *b);
