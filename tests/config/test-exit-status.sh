#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon's exit status separates a configuration error (78, EX_CONFIG: the unit's
# RestartPreventExitStatus= stops systemd from restarting into it) from other failures (1).
# Prints TAP.
#
#   test-exit-status.sh COAPCLIENTD
set -u
daemon=$1
tmp=$(mktemp -d /tmp/test-exit-status.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

printf '[Limits]\nMaxClients=many\n' >"$tmp/bad.conf"
printf '[Limits]\nMaxClients=8\n' >"$tmp/good.conf"
# No bus listens here: a run that gets past its configuration fails to connect.
nobus=unix:path=$tmp/no-bus

n=0 failed=0
expect() { # status description args...
    local want=$1 desc=$2 rc=0
    shift 2
    n=$((n + 1))
    "$daemon" "$@" >"$tmp/out" 2>&1 || rc=$?
    if [ "$rc" -eq "$want" ]; then
        echo "ok $n - $desc: status $rc"
    else
        echo "not ok $n - $desc: status $rc, want $want"
        sed 's/^/# /' "$tmp/out"
        failed=$((failed + 1))
    fi
}

echo "1..5"
expect 78 "unknown option" --no-such-option --bus-address="$nobus"
expect 78 "invalid --log-level" --log-level=loud --bus-address="$nobus"
expect 78 "unexpected argument" --bus-address="$nobus" extra
expect 78 "invalid configuration file" --config="$tmp/bad.conf" --bus-address="$nobus"
expect 1 "valid configuration, no bus" --config="$tmp/good.conf" --bus-address="$nobus"
[ "$failed" -eq 0 ]
