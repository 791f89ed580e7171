#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one hostile-caller test inside tests/helpers/test-env.sh (a private bus, the real
# coapclientd as root, coap-server-gnutls), after making sure the unprivileged test users exist.
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
exec "$test_env" "$@"
