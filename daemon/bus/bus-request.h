/* SPDX-License-Identifier: MIT */
#pragma once

/* Request(): the a{sv} request dictionary as the core's RequestArgs, and the core's refusals as
 * D-Bus errors. */

#include <systemd/sd-bus.h>

#include "core/request.h"

/* Decodes the a{sv} request dictionary at the read position of m (method "Request"), with the
 * limits and defaults of config; pointers in a point into m. Bad input: sets error to the named
 * error of docs/dbus-api.md and returns < 0. Without error set, < 0 is an sd-bus read failure
 * (m does not hold an a{sv} there) or -ENOMEM. */
int bus_request_parse(sd_bus_message *m, const ManagerConfig *config, RequestArgs *a,
                      sd_bus_error *error);

/* A refusal of the core (r and e) as the D-Bus error of the same name; r when it names none. */
int bus_error_from_request(sd_bus_error *error, const RequestError *e, int r);
