#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the system bus policy file on a private dbus-daemon that has the system bus's default
# deny rules and includes only our file: who may own org.coapclientd.CoapClient1, that any
# user may call it, and that only root (or the daemon's user) may send signals on our
# interfaces. Prints TAP.
#
#   test-bus-policy.sh POLICY_CONF OWNER_HELPER
#
# Needs root (the unprivileged checks run as nobody through setpriv).
set -u
policy=$(realpath "$1")
owner_helper=$(realpath "$2")
NAME=org.coapclientd.CoapClient1
# Owned by root in this test only: proves that the default deny is active for other names.
UNLISTED=org.coapclientd.Test.Unlisted

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then
    echo "1..0 # SKIP needs root and setpriv"
    exit 0
fi

tmp=$(mktemp -d /tmp/test-bus-policy.XXXXXX)
bus_pid='' owner_pids=()
cleanup() {
    [ "${#owner_pids[@]}" -gt 0 ] && kill "${owner_pids[@]}" 2>/dev/null
    [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
chmod 0755 "$tmp"

# The <policy context="default"> of Debian's /usr/share/dbus-1/system.conf.
cat >"$tmp/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$tmp/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <policy user="root">
    <allow own="$UNLISTED"/>
  </policy>
  <include>$policy</include>
</busconfig>
CONF

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out"; }
check() { # description expected-regex command...
    local desc=$1 want=$2; shift 2
    "$@" >"$tmp/out" 2>&1
    if grep -qE "$want" "$tmp/out"; then ok "$desc"; else not_ok "$desc"; fi
}
as_root() { "$@"; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_coapclientd() { setpriv --reuid=coapclientd --regid=coapclientd --clear-groups "$@"; }
request_name() { # RUNNER NAME
    "$1" dbus-send --bus="$ADDR" --print-reply --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.RequestName "string:$2" uint32:0
}
ping() { # RUNNER NAME
    "$1" dbus-send --bus="$ADDR" --print-reply --dest="$2" / org.freedesktop.DBus.Peer.Ping
}

if ! dbus-daemon --config-file="$tmp/bus.conf" --fork --print-address=1 --print-pid=1 \
        >"$tmp/bus.out" 2>"$tmp/bus.err"; then
    echo "Bail out! dbus-daemon refused the configuration: $(cat "$tmp/bus.err")"
    exit 1
fi
{ read -r ADDR; read -r bus_pid; } <"$tmp/bus.out"
echo "1..11"
# Without the user (created by the package through sysusers.d) dbus-daemon warns and skips it.
sed 's/^/# dbus-daemon: /' "$tmp/bus.err"
ok "dbus-daemon loads the policy"

# RequestName returns 1 (primary owner); an AccessDenied error otherwise. The name is released
# again when dbus-send exits.
check "root may own $NAME" 'uint32 1' request_name as_root "$NAME"
check "nobody may not own $NAME" 'AccessDenied' request_name as_nobody "$NAME"

if getent passwd coapclientd >/dev/null; then
    check "user coapclientd may own $NAME" 'uint32 1' request_name as_coapclientd "$NAME"
else
    ok "user coapclientd may own $NAME # SKIP no user coapclientd on this machine"
fi

# One connection per name: send_destination rules match any name the receiving connection owns.
# The helper's output (the signals it receives) goes to $tmp/owner.NAME.
start_owner() { # NAME: runs the helper as root, waits for it to hold NAME
    "$owner_helper" "$ADDR" "$1" >"$tmp/owner.$1" &
    owner_pids+=("$!")
    for _ in $(seq 1 100); do
        grep -qx ready "$tmp/owner.$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
emit() { # RUNNER: a Response signal to $NAME's owner, then a Ping that it answers after it
    "$1" "$owner_helper" --emit "$ADDR" "$NAME"
}
if start_owner "$NAME" && start_owner "$UNLISTED"; then
    ok "root holds $NAME and $UNLISTED"
else
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - root holds $NAME and $UNLISTED"
fi
check "nobody may call $NAME" 'method return' ping as_nobody "$NAME"
check "nobody may not call $UNLISTED (the default deny is in force)" 'AccessDenied' \
    ping as_nobody "$UNLISTED"

# A Response forged by another user would reach a caller (sd-bus matches on sender= let any
# unique name through for a unicast signal): the policy keeps it from being sent at all.
response_seen() { grep -q " $NAME.Client.Response\$" "$tmp/owner.$NAME"; }
check "nobody sends a Response signal (and a Ping after it)" '^sent$' emit as_nobody
if response_seen; then not_ok "nobody's Response signal is not delivered"
else ok "nobody's Response signal is not delivered"; fi
check "root sends a Response signal" '^sent$' emit as_root
if response_seen; then ok "root's Response signal is delivered"
else not_ok "root's Response signal is delivered"; fi

[ "$failed" -eq 0 ]
