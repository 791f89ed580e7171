#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one hostile-caller test inside tests/helpers/test-env.sh (a private bus, the real
# coapclientd as root, coap-server-gnutls), after making sure the unprivileged test users exist.
# $TEST_BUS_CONF is the bus configuration (system-bus.conf); its sockets are moved into a
# directory of their own.
#
#   hostile-env.sh TEST_ENV_SH PROGRAM [ARGS...]
#
# Needs root (useradd, setpriv). The users are system users without a home: coapt-a .. coapt-e
# (the system bus allows 256 connections per user, 1,000 callers need five of them). The test
# program's caller processes die with it (parent-death signal), test-env.sh stops the bus, the
# daemon and the peer.
set -u
test_env=$1; shift

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! command -v useradd >/dev/null; then
    echo "Bail out! the hostile-caller tests need root, setpriv and useradd"
    exit 1
fi
# Tests of this suite may start at once: one useradd at a time.
lock_dir=/run/lock
[ -d "$lock_dir" ] || lock_dir=/tmp
exec 9>"$lock_dir/coapclientd-test-users.lock"
flock 9
for u in coapt-a coapt-b coapt-c coapt-d coapt-e; do
    getent passwd "$u" >/dev/null ||
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --user-group "$u" ||
        { echo "Bail out! cannot create user $u"; exit 1; }
done
exec 9>&-

# The bus sockets go into a directory of our own (reachable by every user), removed at the end:
# dbus-daemon leaves them behind when killed.
dir=$(mktemp -d /tmp/coapclientd-hostile.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM
chmod 0755 "$dir"
conf_dir=$(cd "$(dirname "$TEST_BUS_CONF")" && pwd)
sed -e "s|<listen>unix:dir=/tmp</listen>|<listen>unix:dir=$dir</listen>|" \
    -e "s|<include>\([^/]\)|<include>$conf_dir/\1|" "$TEST_BUS_CONF" >"$dir/bus.conf"
TEST_BUS_CONF=$dir/bus.conf "$test_env" "$@"
