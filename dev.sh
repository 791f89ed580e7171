#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Developer entry point.
#   ./dev.sh deps    install the build and test dependencies (apt-get; root)
#   ./dev.sh build   configure and build into build/
#   ./dev.sh test    deps + every suite: gcc build, ASan/UBSan build, valgrind, unit checks,
#                    the packages under a real systemd; ends with "N passed, N failed"
#   ./dev.sh demo    private bus + coapclientd + coap-server-gnutls; GET, block-wise GET, PUT
#   ./dev.sh bench   the benchmark harness (bench/)
#   ./dev.sh fuzz [SECONDS]  run every libFuzzer target (clang)
#   ./dev.sh systemd the Debian packages under a real systemd: boots Debian 12 in a container
#                    (root fs cached in /var/cache/coapclientd-test), installs them with apt;
#                    ends with "N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")"
TOP=$PWD

DEPS=(meson ninja-build pkg-config gcc clang lld llvm libclang-rt-14-dev libsystemd-dev
      libgnutls28-dev check dbus dbus-daemon libcoap3-bin libcoap3-dev gnutls-bin openssl
      valgrind clang-format python3-docutils systemd iproute2 util-linux man-db
      debhelper dpkg-dev fakeroot lintian systemd-container debootstrap)

log() { printf '==> %s\n' "$*" >&2; }

cmd_deps() {
    if [ "$(id -u)" -ne 0 ]; then
        log "not root: skipping apt-get (need: ${DEPS[*]})"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${DEPS[@]}" >/dev/null
}

setup() { # DIR [meson args...]
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

cmd_build() {
    setup build
    ninja -C build
}

# Adds the counts of one meson test log to the totals; prints failures.
PASSED=0 FAILED=0 SKIPPED=0
count_log() { # testlog.json label
    local out
    out=$(python3 - "$1" "$2" <<'PY'
import json, re, sys
# Counts TAP subtests ("ok"/"not ok" lines) where a test prints them, else the test itself;
# a test that failed without a failing subtest (crash, leak, timeout) counts as one failure.
p = f = s = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    res = t.get("result")
    out = t.get("stdout") or ""
    oks = len(re.findall(r"^ok\b(?!.*# *SKIP)", out, re.M))
    skips = len(re.findall(r"^ok\b.*# *SKIP", out, re.M))
    bad = len(re.findall(r"^not ok\b", out, re.M))
    if res == "SKIP":
        s += 1
        continue
    if oks + bad + skips == 0:
        oks = 1 if res in ("OK", "EXPECTEDFAIL") else 0
    if res not in ("OK", "EXPECTEDFAIL") and bad == 0:
        bad = 1
    p += oks
    f += bad
    s += skips
    if bad:
        print(f"FAILED [{sys.argv[2]}] {t.get('name')}: {res}", file=sys.stderr)
print(p, f, s)
PY
)
    read -r p f s <<<"$out"
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
}

run_suite() { # label builddir [meson test args...]
    local label=$1 dir=$2; shift 2
    log "tests: $label"
    meson test -C "$dir" --print-errorlogs "$@" || true
    if [ -f "$dir/meson-logs/testlog${SETUP_SUFFIX:-}.json" ]; then
        count_log "$dir/meson-logs/testlog${SETUP_SUFFIX:-}.json" "$label"
    else
        FAILED=$((FAILED + 1)); echo "FAILED [$label] no test log" >&2
    fi
}

CHECK_OK=0
check_step() { # label command...: one pass/fail for a whole check (CHECK_OK: this one's)
    local label=$1; shift
    log "check: $label"
    if "$@"; then
        PASSED=$((PASSED + 1)); CHECK_OK=1
    else
        FAILED=$((FAILED + 1)); CHECK_OK=0; echo "FAILED [check] $label" >&2
    fi
}

check_format() {
    local files
    files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files
}

cmd_test() {
    cmd_deps
    export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}

    check_step "clang-format" check_format
    check_step "layering" tools/check-layers.sh

    log "build: gcc"
    if setup build -Dwerror=true && ninja -C build >/dev/null; then
        SETUP_SUFFIX='' run_suite gcc build
        check_step "unit: systemd-analyze verify + security <= 1.5" tools/check-unit.sh build
        check_step "debian packages: build, lintian, install smoke" \
            bash -c 'rm -rf build-deb && tools/build-deb.sh build-deb && tools/package-smoke.sh build-deb'
        # The same packages under a real systemd, in a container.
        [ "$CHECK_OK" = 1 ] && systemd_suite
    else
        FAILED=$((FAILED + 1)); echo "FAILED [build] gcc" >&2
    fi

    log "build: clang ASan/UBSan"
    if CC=clang setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
            -Dc_args=-fno-sanitize-recover=all && ninja -C build-asan >/dev/null; then
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
            SETUP_SUFFIX='' run_suite asan build-asan
    else
        FAILED=$((FAILED + 1)); echo "FAILED [build] asan" >&2
    fi

    if [ -f build/build.ninja ]; then
        # The real daemon under valgrind behind the bus suites: any error or leak fails the test.
        COAPCLIENTD_WRAPPER="valgrind --error-exitcode=99 --leak-check=full -q
            --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect" \
            SETUP_SUFFIX='' run_suite "daemon under valgrind" build --suite integration \
            --suite client --suite faults --suite hostile
        SETUP_SUFFIX=-valgrind run_suite valgrind build --setup valgrind --suite coap \
            --suite engine --suite fuzz --suite dtls --suite config --suite daemon --suite wire
    fi

    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
}

cmd_demo() {
    cmd_deps
    cmd_build >/dev/null
    exec tools/demo.sh "$TOP/build"
}

# The packages in build-deb under a real systemd (tests/systemd/run.sh), with the same tree
# built again under a higher version for the upgrade check.
systemd_suite() {
    local version out p f
    version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
    rm -rf build-deb-upgrade
    check_step "debian packages $version+systemdtest1 (upgrade)" \
        env BUILD_DEB_VERSION="$version+systemdtest1" tools/build-deb.sh build-deb-upgrade
    [ "$CHECK_OK" = 1 ] || return 0
    log "tests: systemd"
    out=$(mktemp)
    tests/systemd/run.sh build-deb build-deb-upgrade | tee "$out" || true
    read -r p f < <(sed -n 's/^systemd: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out") || true
    rm -f "$out"
    if [ -n "${p:-}" ]; then
        PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    else
        FAILED=$((FAILED + 1)); echo "FAILED [systemd] no summary" >&2
    fi
}

cmd_systemd() {
    cmd_deps
    rm -rf build-deb
    check_step "debian packages" tools/build-deb.sh build-deb
    [ "$CHECK_OK" = 1 ] && systemd_suite
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
}

case "${1:-}" in
    deps) cmd_deps ;;
    build) cmd_build ;;
    test) cmd_test ;;
    demo) cmd_demo ;;
    bench) shift; cmd_deps; cmd_build >/dev/null; exec bench/run.sh "$TOP/build" "$@" ;;
    fuzz) shift; exec tools/fuzz.sh "$@" ;;
    systemd) cmd_systemd ;;
    *) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
