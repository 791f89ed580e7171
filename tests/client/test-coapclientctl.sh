#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coapclientctl against coap-server-gnutls through coapclientd (run by test-env.sh):
# get/put/post/delete/observe, output files, and the documented exit codes. TAP output.
set -u
CTL=${COAPCLIENTCTL:?}
URI="coap://$COAP_PEER_HOST:$COAP_PEER_PORT"
T=$TEST_TMPDIR
n=0 failed=0

check() { # description expected-exit command...
    local desc=$1 want=$2 rc
    shift 2
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        echo "ok $n - $desc"
    else
        echo "not ok $n - $desc (exit $rc, expected $want)"
        sed 's/^/# /' "$T/err"
        failed=$((failed + 1))
    fi
}

check_out() { # description expected-stdout
    n=$((n + 1))
    if [ "$(cat "$T/out")" = "$2" ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1: got '$(head -c 200 "$T/out")'"
        failed=$((failed + 1))
    fi
}

check "get /time" 0 "$CTL" get "$URI/time"
n=$((n + 1))
if grep -qE '^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}$' "$T/out"; then
    echo "ok $n - /time body"
else
    echo "not ok $n - /time body: $(cat "$T/out")"; failed=$((failed + 1))
fi

check "put a text resource" 0 "$CTL" put "$URI/ctl-test" --payload "hello ctl" -c text
check "get it back" 0 "$CTL" get "$URI/ctl-test"
check_out "body of the put resource" "hello ctl"
check "get --verbose shows the code" 0 "$CTL" -v get "$URI/ctl-test"
n=$((n + 1))
if grep -q '^2.05 Content$' "$T/err"; then
    echo "ok $n - verbose code"
else
    echo "not ok $n - verbose output: $(cat "$T/err")"; failed=$((failed + 1))
fi
check "non-confirmable get" 0 "$CTL" get --non "$URI/ctl-test"
check_out "non-confirmable body" "hello ctl"
check "query and separate response" 0 "$CTL" get "$URI/async?1"
check_out "separate response body" "done"
check "delete" 0 "$CTL" delete "$URI/ctl-test"
check "4.04 exits 2" 2 "$CTL" get "$URI/nonexistent"
n=$((n + 1))
if grep -q '^4.04 Not Found$' "$T/err"; then echo "ok $n - 4.04 reported"; else
    echo "not ok $n - 4.04 reported: $(cat "$T/err")"; failed=$((failed + 1)); fi

# Block-wise both ways, byte-exact, through files.
head -c 200000 /dev/urandom >"$T/big.in"
check "block-wise put from a file" 0 "$CTL" put "$URI/example_data" -f "$T/big.in" -c octet -b 512
check "block-wise get to a file" 0 "$CTL" -v get "$URI/example_data" -o "$T/big.out"
n=$((n + 1))
if grep -q '^Content-Format: 42 (application/octet-stream)$' "$T/err"; then
    echo "ok $n - verbose Content-Format"
else
    echo "not ok $n - verbose output: $(cat "$T/err")"; failed=$((failed + 1))
fi
n=$((n + 1))
if cmp -s "$T/big.in" "$T/big.out"; then echo "ok $n - block-wise body identical"; else
    echo "not ok $n - block-wise body differs"; failed=$((failed + 1)); fi
check "payload from stdin" 0 sh -c "printf 'from stdin' | '$CTL' put '$URI/ctl-stdin' -f -"
check "get the stdin resource" 0 "$CTL" get "$URI/ctl-stdin"
check_out "stdin body" "from stdin"

check "observe 3 notifications" 0 "$CTL" observe "$URI/time" --count 3
n=$((n + 1))
if [ "$(wc -l <"$T/out")" -eq 3 ]; then echo "ok $n - three lines"; else
    echo "not ok $n - $(wc -l <"$T/out") lines"; failed=$((failed + 1)); fi
check "observe ended by --timeout" 0 "$CTL" observe "$URI/time" --timeout 1.5

check "host name and option" 0 "$CTL" get -4 "coap://localhost:$COAP_PEER_PORT/time" -O "17:#0"
check "IPv6 literal, nobody listening" 4 "$CTL" get "coap://[::1]:$COAP_PEER_PORT/time" \
    --timeout 10
check "dead port exits 4" 4 "$CTL" get "coap://127.0.0.1:9/time" --timeout 10
check "coapclientd unreachable exits 4" 4 env COAPCLIENTD_BUS_ADDRESS=unix:path=/nonexistent \
    "$CTL" get "$URI/time"
check "usage: no URI" 1 "$CTL" get
check "usage: unknown command" 1 "$CTL" fetch "$URI/time"
check "usage: coaps without credentials" 1 "$CTL" get "coaps://127.0.0.1/time"
check "usage: bad block size" 1 "$CTL" get "$URI/time" -b 100
check "usage: bad option" 1 "$CTL" get "$URI/time" -O "x:1"
check "--help" 0 "$CTL" --help
n=$((n + 1))
if grep -q 'Exit status' "$T/out"; then echo "ok $n - help documents exit codes"; else
    echo "not ok $n - help text"; failed=$((failed + 1)); fi
check "--version" 0 "$CTL" --version

echo "1..$n"
[ "$failed" -eq 0 ]
