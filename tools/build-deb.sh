#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian source and binary packages and runs lintian on them.
#
#   tools/build-deb.sh OUT_DIR [--check]
#
# The packaging lives in packaging/debian/ so that the source root stays free of a debian/
# directory; dpkg-buildpackage needs it as ./debian, so this copies the tree (without .git and
# build directories) to a scratch directory, places packaging/debian there as debian/, runs
# `dpkg-buildpackage -us -uc` and copies the .deb, .dsc, source tarball, .changes and .buildinfo
# files to OUT_DIR.
# The test suites are skipped (DEB_BUILD_OPTIONS=nocheck) unless --check is given: ./dev.sh test
# runs them already. While the client library or the CLI is not part of the build yet, their
# packages are left out through the build profiles pkg.coapclientd.nolib / .noctl.
# BUILD_DEB_VERSION=V builds the same tree as version V (a changelog entry on top of the copy):
# tests/systemd/run.sh upgrades to such a build.
# Needs: debhelper dpkg-dev fakeroot lintian and the Build-Depends of packaging/debian/control.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: build-deb.sh OUT_DIR [--check]}
check=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=${BUILD_DEB_VERSION:-$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)}
work=$(mktemp -d /tmp/build-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/coapclientd-$version

mkdir -p "$src"
tar -C "$top" --exclude=./.git --exclude='./build*' --exclude=./debian --exclude=./packaging \
    -cf - . | tar -C "$src" -xf -
cp -r "$top/packaging/debian" "$src/debian"
if [ -n "${BUILD_DEB_VERSION:-}" ]; then
    maintainer=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Maintainer)
    {
        printf 'coapclientd (%s) unstable; urgency=medium\n\n' "$version"
        printf '  * Test build of the same tree under a higher version.\n\n'
        printf ' -- %s  %s\n\n' "$maintainer" "$(date -R)"
        cat "$top/packaging/debian/changelog"
    } >"$src/debian/changelog"
fi

profiles=()
if ! grep -qE "^[^#]*library\(" "$top/client-lib/meson.build"; then
    echo "build-deb: client-lib/ builds no library yet: leaving out libcoapclient1, libcoapclient-dev, coapclientctl"
    profiles+=(pkg.coapclientd.nolib)
elif ! grep -qE "^[^#]*executable\(" "$top/ctl/meson.build"; then
    echo "build-deb: ctl/ builds no executable yet: leaving out coapclientctl"
    profiles+=(pkg.coapclientd.noctl)
fi

opts=${DEB_BUILD_OPTIONS:-}
if [ "$check" != --check ]; then
    opts="$opts nocheck"
fi

(
    cd "$src"
    profile_arg=()
    [ "${#profiles[@]}" -gt 0 ] && profile_arg=(-P"$(IFS=,; echo "${profiles[*]}")")
    DEB_BUILD_OPTIONS="${opts# }" dpkg-buildpackage -us -uc "${profile_arg[@]}"
) >"$work/build.log" 2>&1 || {
    grep -E "error|FAILED|dpkg-gensymbols|missing files" "$work/build.log" | cut -c1-300 | tail -n 30 >&2
    echo "build-deb: dpkg-buildpackage failed (the log above is filtered); if dpkg-gensymbols" \
        "complains, the library's ABI changed: update packaging/debian/libcoapclient1.symbols" >&2
    exit 1
}

shopt -s nullglob
files=("$work"/*.deb "$work"/*.dsc "$work"/*.tar.* "$work"/*.changes "$work"/*.buildinfo)
cp "${files[@]}" "$out/"
echo "build-deb: built into $out:"
(cd "$out" && ls -1 ./*.deb)

changes=("$work"/*.changes)
echo "build-deb: lintian"
lintian --info --display-info --fail-on error,warning "${changes[@]}"
