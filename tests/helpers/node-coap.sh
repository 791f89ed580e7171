#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command next to an independent CoAP peer: node-coap (npm "coap" 1.5.0) serving
# tests/data/node-coap-peer.js on 127.0.0.1. Installs node-coap with npm into NODE_COAP_DIR
# when it is not there yet (the registry must be reachable then); without node and npm the test
# is skipped (TAP).
#
#   node-coap.sh COMMAND [ARGS...]
#
# Environment in:  NODE_COAP_DIR   where node_modules/coap is (or is installed)
#                  NODE_COAP_PEER  the server script
# Environment out: NODE_COAP_PORT  the peer's UDP port on 127.0.0.1
set -u
: "${NODE_COAP_DIR:?}" "${NODE_COAP_PEER:?}"
NODE_COAP_VERSION=1.5.0

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "1..0 # SKIP node and npm are needed for the node-coap peer"
    exit 0
fi
if [ ! -f "$NODE_COAP_DIR/node_modules/coap/package.json" ]; then
    mkdir -p "$NODE_COAP_DIR"
    # Tests of one build may start together: one installs, the others wait for it.
    flock "$NODE_COAP_DIR/.lock" sh -c '
        [ -f "$1/node_modules/coap/package.json" ] ||
            npm install --prefix "$1" --no-audit --no-fund --no-save "coap@$2" >&2' \
        sh "$NODE_COAP_DIR" "$NODE_COAP_VERSION" ||
        { echo "Bail out! npm could not install coap@$NODE_COAP_VERSION"; exit 1; }
fi

out=$(mktemp /tmp/node-coap-peer.XXXXXX)
NODE_PATH="$NODE_COAP_DIR/node_modules" node "$NODE_COAP_PEER" >"$out" 2>&1 &
peer_pid=$!
trap 'kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null; rm -f "$out"' EXIT
NODE_COAP_PORT=
for _ in $(seq 1 200); do
    NODE_COAP_PORT=$(head -n 1 "$out" | grep -E '^[0-9]+$')
    [ -n "$NODE_COAP_PORT" ] && break
    kill -0 "$peer_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$NODE_COAP_PORT" ] || { echo "Bail out! node-coap did not start: $(cat "$out")"; exit 1; }
export NODE_COAP_PORT

"$@"
