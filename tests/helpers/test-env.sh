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

: "${COAPCLIENTD_BIN:?}" "${TEST_BUS_CONF:?}"
TEST_TMPDIR=$(mktemp -d /tmp/coapclientd-test.XXXXXX)
export TEST_TMPDIR
bus_pid= daemon_pid= peer_pid=

cleanup() {
    local rc=$?
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
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
trap 'exit 1' INT TERM

read -r COAPCLIENTD_BUS_ADDRESS bus_pid < <(dbus-daemon --config-file="$TEST_BUS_CONF" --fork \
    --print-address=1 --print-pid=1 | paste -sd' ')
[ -n "$COAPCLIENTD_BUS_ADDRESS" ] || { echo "Bail out! dbus-daemon did not start"; exit 1; }
export COAPCLIENTD_BUS_ADDRESS

# A free even port: coap-server takes PORT (UDP, TCP) and PORT+1 (DTLS, TLS). Below the
# ephemeral range (32768 on), so that no test's client socket holds it already.
COAP_PEER_HOST=127.0.0.1
# udp_sockets PORT: how many UDP sockets on this machine are bound to PORT.
udp_sockets() { ss -Huan "sport = :$1" | wc -l; }
for _ in $(seq 1 50); do
    COAP_PEER_PORT=$(( (RANDOM % 3150) * 2 + 20000 ))
    # libcoap binds with SO_REUSEADDR: a peer of a test running alongside could share the port,
    # and either could get the other's datagrams. Only ports nobody holds, and ours alone after.
    [ "$(udp_sockets "$COAP_PEER_PORT")" = 0 ] && [ "$(udp_sockets $((COAP_PEER_PORT + 1)))" = 0 ] ||
        continue
    coap-server-gnutls -A "$COAP_PEER_HOST" -p "$COAP_PEER_PORT" -d 16 -k secretPSK -h CoAP \
        >"$TEST_TMPDIR/peer.log" 2>&1 &
    peer_pid=$!
    # Alive, and holding the DTLS port too: coap-server carries on without it when it is taken.
    for _ in $(seq 1 40); do
        sleep 0.05
        kill -0 "$peer_pid" 2>/dev/null || break
        [ "$(udp_sockets $((COAP_PEER_PORT + 1)))" = 1 ] || continue
        [ "$(udp_sockets "$COAP_PEER_PORT")" = 1 ] && break 2
        break
    done
    kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
    peer_pid=
done
[ -n "$peer_pid" ] || { echo "Bail out! coap-server-gnutls did not start"; exit 1; }
export COAP_PEER_HOST COAP_PEER_PORT COAP_PEER_PID=$peer_pid

if [ "${TEST_NO_DAEMON:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    ${COAPCLIENTD_WRAPPER:-} "$COAPCLIENTD_BIN" --bus-address="$COAPCLIENTD_BUS_ADDRESS" \
        --log-level=debug >"$TEST_TMPDIR/daemon.log" 2>&1 &
    daemon_pid=$!
    export COAPCLIENTD_PID=$daemon_pid
    for _ in $(seq 1 400); do
        busctl --address="$COAPCLIENTD_BUS_ADDRESS" status org.coapclientd.CoapClient1 \
            >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || { echo "Bail out! coapclientd died"; cat "$TEST_TMPDIR/daemon.log"; exit 1; }
        sleep 0.05
    done
fi

"$@"
