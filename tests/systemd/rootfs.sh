#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Prints the path of a Debian 12 root file system for tests/systemd/run.sh, building it first
# with debootstrap from Debian's registry when the cache has none for the current ROOTFS_KEY.
#
#   tests/systemd/rootfs.sh            (root; needs debootstrap)
#
# The cache lives outside the source tree, in $COAPCLIENTD_TEST_CACHE (default
# /var/cache/coapclientd-test), as rootfs-$ROOTFS_KEY. Change ROOTFS_KEY whenever what goes into
# the root file system changes: the next run builds a new one and drops the old ones. The suite
# never writes to the cached tree; it boots it under an overlay.
set -euo pipefail

ROOTFS_KEY=bookworm-1
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# systemd as PID 1 with a system bus; pkg-config for the libcoapclient-dev check. Everything
# else comes from our packages' dependencies, installed by apt inside the container.
INCLUDE=systemd,systemd-sysv,dbus,procps,pkg-config

cache=${COAPCLIENTD_TEST_CACHE:-/var/cache/coapclientd-test}
root=$cache/rootfs-$ROOTFS_KEY
mkdir -p "$cache"
# One build at a time; a second run waits for it and then uses it.
exec 9>"$cache/.lock"
flock 9
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi

for old in "$cache"/rootfs-*; do
    [ -e "$old" ] && [ "$old" != "$root" ] && rm -rf "$old"
done
tmp=$root.tmp
rm -rf "$tmp"
echo "rootfs: debootstrap $SUITE into $root (once; a few minutes)" >&2
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
}

# The registry as the host uses it: the release, its updates and the security archive, so that
# our packages' versioned dependencies (built against the host's libraries) resolve.
rm -f "$tmp/etc/apt/sources.list"
cat >"$tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
echo coapclientd-test >"$tmp/etc/hostname"
# Booted with nspawn's --console=passive: no getty, and nothing that wants a network.
ln -sf /dev/null "$tmp/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$tmp/etc/systemd/system/getty@.service"
: >"$tmp/etc/machine-id"
touch "$tmp/.complete"
mv "$tmp" "$root"
echo "$root"
