#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the built systemd unit offline:
#   1. systemd-analyze verify (syntax, known keys, ExecStart= executable, Documentation= pages);
#   2. systemd-analyze security --offline=true: exposure must be at most MAX (default 1.5).
#
#   tools/check-unit.sh BUILD_DIR [MAX]
#
# Honest note: verify insists that the ExecStart= binary exists, and the built unit names the
# installed path (@sbindir@/coapclientd), which usually does not exist on a developer machine.
# So both checks run on a copy of the built unit in a scratch directory whose ExecStart= names
# the freshly built daemon (BUILD_DIR/daemon/coapclientd) or, when that is not built yet, a
# stand-in copy of /bin/true. Every other line is the built unit's, unchanged. The man pages
# named by Documentation= are taken from BUILD_DIR/docs when they have been built (with
# MANPATH pointing there); otherwise verify runs with --man=no and says so.
set -euo pipefail

build=$(realpath "${1:?usage: check-unit.sh BUILD_DIR [MAX]}")
max=${2:-1.5}
unit=$build/units/coapclientd.service
[ -f "$unit" ] || { echo "check-unit: $unit not built" >&2; exit 1; }

tmp=$(mktemp -d /tmp/check-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if [ -x "$build/daemon/coapclientd" ]; then
    exe=$build/daemon/coapclientd
else
    exe=$tmp/coapclientd
    cp /bin/true "$exe"
    echo "check-unit: daemon not built, ExecStart= points at a stand-in executable"
fi
sed "s|^ExecStart=[^ ]*|ExecStart=$exe|" "$unit" >"$tmp/coapclientd.service"

man_args=(--man=no)
if [ -f "$build/docs/coapclientd.8" ] && [ -f "$build/docs/coapclientd.conf.5" ]; then
    mkdir -p "$tmp/man/man8" "$tmp/man/man5"
    cp "$build/docs/coapclientd.8" "$tmp/man/man8/"
    cp "$build/docs/coapclientd.conf.5" "$tmp/man/man5/"
    export MANPATH=$tmp/man
    man_args=(--man=yes)
else
    echo "check-unit: man pages not built, Documentation= not checked"
fi

rc=0
if systemd-analyze verify "${man_args[@]}" "$tmp/coapclientd.service"; then
    echo "check-unit: systemd-analyze verify: OK"
else
    echo "check-unit: systemd-analyze verify: FAILED" >&2
    rc=1
fi

# --threshold takes the exposure times ten.
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')
if out=$(systemd-analyze security --offline=true --threshold="$threshold" \
        "$tmp/coapclientd.service" 2>&1); then
    sec_ok=1
else
    sec_ok=0
fi
score=$(sed -n 's/.*Overall exposure level for coapclientd.service: \([0-9.]*\).*/\1/p' <<<"$out")
if [ "$sec_ok" -eq 1 ] && [ -n "$score" ]; then
    echo "check-unit: systemd-analyze security: exposure $score (max $max): OK"
else
    echo "$out" >&2
    echo "check-unit: systemd-analyze security: exposure ${score:-?} (max $max): FAILED" >&2
    rc=1
fi
exit $rc
