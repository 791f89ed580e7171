#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one integration test program inside a fresh world: a private dbus-daemon, the real
# coapclientd on it, and a real coap-server-gnutls peer on a free loopback port.
#
#   test-env.sh PROGRAM [ARGS...]
#
# Environment in:  COAPCLIENTD_BIN      the daemon to run (required)
#                  TEST_BUS_CONF        bus configuration (required)
#                  COAPCLIENTD_WRAPPER  optional command prefix for the daemon (e.g. valgrind)
#                  TEST_NO_DAEMON=1     start bus and peer only (tests that start daemons)
# Environment out: COAPCLIENTD_BUS_ADDRESS, COAPCLIENTD_PID, COAP_PEER_HOST, COAP_PEER_PORT
#                  (UDP; DTLS PSK on COAP_PEER_PORT+1 with identity "CoAP", key "secretPSK"),
#                  COAP_PEER_PID, TEST_TMPDIR
# The daemon must exit 0 on SIGTERM (sanitizer builds report leaks through its exit code).
set -u

# shellcheck source=tests/helpers/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/test-lib.sh"

: "${COAPCLIENTD_BIN:?}" "${TEST_BUS_CONF:?}"
TEST_TMPDIR=$(mktemp -d /tmp/coapclientd-test.XXXXXX)
export TEST_TMPDIR
bus_pid='' daemon_pid=''

cleanup() {
    local rc=$?
    kill_started
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"
        local drc=0
        wait "$daemon_pid" || drc=$?
        if [ "$drc" -ne 0 ]; then
            echo "# coapclientd exited with $drc (see $TEST_TMPDIR/daemon.log)" >&2
            sed 's/^/# daemon: /' "$TEST_TMPDIR/daemon.log" | tail -n 60 >&2
            [ "$rc" -eq 0 ] && rc=1
        fi
    fi
    [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null
    [ "$rc" -eq 0 ] && rm -rf "$TEST_TMPDIR"
    exit "$rc"
}
trap cleanup EXIT

start_bus COAPCLIENTD_BUS_ADDRESS bus_pid || { echo "Bail out! dbus-daemon did not start"; exit 1; }
export COAPCLIENTD_BUS_ADDRESS

COAP_PEER_HOST=127.0.0.1
start_coap_peer dtls COAP_PEER_PORT COAP_PEER_PID "$TEST_TMPDIR/peer.log" -d 16 -k secretPSK \
    -h CoAP || { echo "Bail out! coap-server-gnutls did not start"; exit 1; }
export COAP_PEER_HOST COAP_PEER_PORT COAP_PEER_PID

if [ "${TEST_NO_DAEMON:-0}" != 1 ]; then
    if ! start_daemon daemon_pid "$COAPCLIENTD_BUS_ADDRESS" "$TEST_TMPDIR/daemon.log" \
        --log-level=debug; then
        echo "Bail out! coapclientd is not on the bus"
        cat "$TEST_TMPDIR/daemon.log"
        exit 1
    fi
    export COAPCLIENTD_PID=$daemon_pid
fi

"$@"
