#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ./dev.sh demo: a private bus, coapclientd on it, a coap-server-gnutls peer, and three
# exchanges through coapclientctl: a small GET, a block-wise PUT and a block-wise GET (>64 KiB).
set -euo pipefail
BUILD=${1:?usage: demo.sh BUILDDIR}
TOP=$(cd "$(dirname "$0")/.." && pwd)
DAEMON=$BUILD/daemon/coapclientd
CTL=$BUILD/ctl/coapclientctl
WORK=$(mktemp -d /tmp/coapclientd-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "private D-Bus"
read -r ADDR BUS_PID < <(dbus-daemon --config-file="$TOP/tests/data/test-bus.conf" --fork \
    --print-address=1 --print-pid=1 | paste -sd' ')
pids+=("$BUS_PID")
export COAPCLIENTD_BUS_ADDRESS=$ADDR
echo "$ADDR"

step "coapclientd"
"$DAEMON" --bus-address="$ADDR" --log-level=info 2>"$WORK/daemon.log" &
pids+=($!)
for _ in $(seq 100); do
    busctl --address="$ADDR" status org.coapclientd.CoapClient1 >/dev/null 2>&1 && break
    sleep 0.05
done
busctl --address="$ADDR" tree org.coapclientd.CoapClient1

step "coap-server-gnutls peer on 127.0.0.1:$((PORT = 15683 + RANDOM % 1000 * 2))"
coap-server-gnutls -A 127.0.0.1 -p "$PORT" -d 16 >"$WORK/peer.log" 2>&1 &
pids+=($!)
sleep 0.3
URI=coap://127.0.0.1:$PORT

step "1. small GET $URI/"
"$CTL" get --verbose "$URI/"

step "2. block-wise PUT of 100 KiB to $URI/example_data"
head -c 102400 /dev/urandom >"$WORK/body.bin"
"$CTL" put --verbose --block-size 1024 --payload-file "$WORK/body.bin" "$URI/example_data"

step "3. block-wise GET of $URI/example_data"
"$CTL" get --verbose --block-size 1024 --output "$WORK/got.bin" "$URI/example_data"
if cmp -s "$WORK/body.bin" "$WORK/got.bin"; then
    echo "received $(stat -c %s "$WORK/got.bin") bytes, identical to what was PUT"
else
    echo "MISMATCH: received body differs from what was PUT" >&2
    exit 1
fi

step "daemon statistics"
# Sockets without requests linger 100 ms before the daemon closes them.
sleep 0.2
for p in Clients Sockets MessagesSent MessagesReceived Retransmissions Timeouts; do
    printf '%-18s %s\n' "$p" "$(busctl --address="$ADDR" get-property org.coapclientd.CoapClient1 \
        /org/coapclientd/CoapClient1 org.coapclientd.CoapClient1.Manager "$p")"
done
