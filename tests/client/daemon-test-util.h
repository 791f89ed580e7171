/* SPDX-License-Identifier: MIT */
#pragma once

/* For the tests that start and kill coapclientd themselves (TEST_NO_DAEMON=1): the daemon on
 * the test bus, its log in $TEST_TMPDIR. Failures fail the running Check test. */

#include <sys/types.h>

#include "client-test-util.h"

/* Starts COAPCLIENTD_BIN and waits until it owns the bus name; returns its pid. */
pid_t start_daemon(void);
/* Sends sig to the daemon and reaps it; returns its wait status. */
int stop_daemon(pid_t pid, int sig);
/* Stops the daemon with SIGTERM; it must exit with status 0. */
void stop_daemon_cleanly(pid_t pid);
/* Observes /time of the peer on sock with client, its notifications recorded in rec: the
 * observation the restart tests watch going on across daemons. */
void observe_time(struct coap_client *client, int sock, Recorder *rec);
