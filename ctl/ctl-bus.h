/* SPDX-License-Identifier: MIT */
#pragma once

/* coapclientctl's verbs that talk to coapclientd itself over D-Bus rather than to a CoAP
 * server: status and monitor. Each returns an exit code (ctl-util.h). */

#include <stdbool.h>

/* GetStatus and ListCallers: the configuration, the counters, the callers (all of them for
 * root, one's own for others). */
int ctl_status(bool json);

/* Monitor: every request as it starts and ends, until a signal, timeout_sec (0: none) or count
 * ended requests (0: no limit). Root only. */
int ctl_monitor(bool json, double timeout_sec, unsigned count, int sig_fd);
