/* SPDX-License-Identifier: MIT */
#pragma once

/* For the tests that start and kill coapclientd themselves (TEST_NO_DAEMON=1): the daemon on
 * the test bus, its log in $TEST_TMPDIR. Failures fail the running Check test. */

#include <sys/types.h>

/* Starts COAPCLIENTD_BIN and waits until it owns the bus name; returns its pid. */
pid_t start_daemon(void);
/* Sends sig to the daemon and reaps it; returns its wait status. */
int stop_daemon(pid_t pid, int sig);
