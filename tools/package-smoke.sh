#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the built Debian packages on this machine and checks them as a user would meet them:
# every file in place, the unit verified and scored, the man pages readable, then the installed
# daemon started the way its unit would start it (user coapclientd, own network namespace, no
# capabilities, sd_notify readiness and watchdog) on a private bus that uses the installed bus
# policy, and a block-wise resource fetched from a coap-server-gnutls peer with the installed
# coapclientctl and with a program built against the installed libcoapclient-dev.
#
#   tools/package-smoke.sh DEB_DIR        (root; DEB_DIR as filled by tools/build-deb.sh)
#
# The packages are purged again at the end (KEEP_PACKAGES=1 keeps them). The system user
# coapclientd that the package creates stays, as it would after a purge on any system.
# Parts for libcoapclient-dev and coapclientctl are skipped, with a message, when DEB_DIR has
# no such package. Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
deb_dir=$(realpath "${1:?usage: package-smoke.sh DEB_DIR}")
[ "$(id -u)" -eq 0 ] || { echo "package-smoke: needs root" >&2; exit 1; }

passed=0 failed=0 skipped=0
pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }
skip() { skipped=$((skipped + 1)); echo "SKIP: $1"; }
check() { # description command...
    local desc=$1; shift
    if "$@" >"$tmp/check.log" 2>&1; then pass "$desc"; else
        fail "$desc"; sed 's/^/    /' "$tmp/check.log" | tail -n 20
    fi
}

tmp=$(mktemp -d /tmp/package-smoke.XXXXXX)
chmod 0755 "$tmp"
bus_pid='' daemon_pid='' peer_pid='' installed=()
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
    [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null
    if [ "${#installed[@]}" -gt 0 ] && [ "${KEEP_PACKAGES:-0}" != 1 ]; then
        dpkg --purge "${installed[@]}" >"$tmp/purge.log" 2>&1 ||
            { echo "package-smoke: purge failed:"; cat "$tmp/purge.log"; }
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- install -------------------------------------------------------------------------------
debs=()
for f in "$deb_dir"/*.deb; do
    case "$f" in *-dbgsym_*) ;; *) [ -e "$f" ] && debs+=("$f") ;; esac
done
for f in "${debs[@]}"; do installed+=("$(dpkg-deb -f "$f" Package)"); done
has() { printf '%s\n' "${installed[@]}" | grep -qx "$1"; }
if ! has coapclientd; then
    echo "package-smoke: no coapclientd_*.deb in $deb_dir" >&2
    installed=()
    exit 1
fi
if ! dpkg -i "${debs[@]}" >"$tmp/install.log" 2>&1; then
    fail "dpkg -i ${installed[*]}"; cat "$tmp/install.log"
    echo "package-smoke: $passed passed, $failed failed, $skipped skipped"
    exit 1
fi
pass "dpkg -i ${installed[*]}"

# --- files ---------------------------------------------------------------------------------
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
files_present() { # path...
    local missing=0
    for p in "$@"; do [ -e "$p" ] || { echo "missing: $p"; missing=1; }; done
    return $missing
}
check "coapclientd files in place" files_present \
    /usr/sbin/coapclientd \
    "/usr/lib/$multiarch/coapclientd/coapclientd-dtls.so" \
    "$unitdir/coapclientd.service" \
    /usr/lib/sysusers.d/coapclientd.conf \
    /etc/coapclientd/coapclientd.conf \
    /usr/share/dbus-1/system.d/org.coapclientd.CoapClient1.conf \
    /usr/share/dbus-1/system-services/org.coapclientd.CoapClient1.service \
    /usr/share/dbus-1/interfaces/org.coapclientd.CoapClient1.Manager.xml \
    /usr/share/dbus-1/interfaces/org.coapclientd.CoapClient1.Client.xml \
    /usr/share/man/man8/coapclientd.8.gz \
    /usr/share/man/man5/coapclientd.conf.5.gz
check "postinst created the system user coapclientd" getent passwd coapclientd
gnutls_dep_ok() { dpkg-query -W -f='${Depends}' coapclientd | grep -q libgnutls30; }
check "coapclientd depends on libgnutls30 (dpkg-shlibdeps saw the DTLS module)" gnutls_dep_ok
alias_ok() {
    [ "$(readlink /etc/systemd/system/dbus-org.coapclientd.CoapClient1.service)" = \
        "$unitdir/coapclientd.service" ]
}
check "postinst enabled the unit (D-Bus activation alias)" alias_ok
version_ok() {
    local want got
    want=$(dpkg-query -W -f='${Version}' coapclientd)
    got=$(/usr/sbin/coapclientd --version)
    echo "package $want, binary: $got"
    [ "$got" = "coapclientd ${want%%-*}" ]
}
check "coapclientd --version matches the package" version_ok
man_ok() { # section page text
    MANPAGER=cat MANWIDTH=100 man "$1" "$2" 2>&1 | grep -q "$3"
}
check "man coapclientd(8) opens" man_ok 8 coapclientd "CoAP client service"
check "man coapclientd.conf(5) opens" man_ok 5 coapclientd.conf "MaxClientsPerCaller"

# The installed unit with the installed binary and man pages: nothing stands in here.
check "systemd-analyze verify on the installed unit" \
    systemd-analyze verify "$unitdir/coapclientd.service"
security_ok() {
    systemd-analyze security --offline=true --threshold=15 \
        "$unitdir/coapclientd.service" | grep Overall
}
check "systemd-analyze security: exposure at most 1.5" security_ok

if has libcoapclient1; then
    check "libcoapclient.so.1 installed" files_present \
        "/usr/lib/$multiarch/libcoapclient.so.1"
else
    skip "libcoapclient1: no package in $deb_dir (library not packaged yet)"
fi
if has libcoapclient-dev; then
    check "libcoapclient-dev files in place" files_present \
        /usr/include/coapclient/coap_client.h \
        "/usr/lib/$multiarch/libcoapclient.so" \
        "/usr/lib/$multiarch/pkgconfig/libcoapclient.pc"
    dev_deps_ok() { dpkg-query -W -f='${Depends}' libcoapclient-dev | grep -q libsystemd-dev; }
    check "libcoapclient-dev depends on libsystemd-dev (libcoapclient.pc requires libsystemd)" \
        dev_deps_ok
    check "pkg-config --cflags --libs libcoapclient" pkg-config --cflags --libs libcoapclient
    if [ -e /usr/share/man/man3/coap_client.3.gz ]; then
        check "man coap_client(3) opens" man_ok 3 coap_client coap_client
        # Every function (and function-like macro) the installed header declares.
        man_names_ok() {
            local names name missing=0
            names=$(sed -nE 's/^(#define |[a-z][^(]*[ *])(coap_[a-z0-9_]+)\(.*/\2/p' \
                /usr/include/coapclient/coap_client.h | sort -u)
            echo "$names" | grep -qx coap_client_req || { echo "header not parsed"; return 1; }
            for name in $names; do
                man_ok 3 "$name" coap_client_init || { echo "man 3 $name: no page"; missing=1; }
            done
            return $missing
        }
        check "man NAME opens coap_client(3) for each public function of coap_client.h" \
            man_names_ok
    else
        skip "coap_client(3): not in the package (docs/man/coap_client.3.rst not written yet)"
    fi
    # shellcheck disable=SC2046
    check "a program builds against the installed library" \
        cc -Wall -Wextra -Werror -o "$tmp/smoke-get" "$top/tools/package-smoke.c" \
        $(pkg-config --cflags --libs libcoapclient) -pthread
else
    skip "libcoapclient-dev: no package in $deb_dir (library not packaged yet)"
fi
if has coapclientctl; then
    check "coapclientctl installed" files_present /usr/bin/coapclientctl
    if [ -e /usr/share/man/man1/coapclientctl.1.gz ]; then
        check "man coapclientctl(1) opens" man_ok 1 coapclientctl coapclientctl
    else
        skip "coapclientctl(1): not in the package (docs/man/coapclientctl.1.rst not written yet)"
    fi
else
    skip "coapclientctl: no package in $deb_dir (CLI not packaged yet)"
fi

# --- run the installed daemon as its unit would ----------------------------------------------
# The system bus's default policy (Debian's system.conf) plus the installed policy file only.
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
  <include>/usr/share/dbus-1/system.d/org.coapclientd.CoapClient1.conf</include>
</busconfig>
CONF
if ! dbus-daemon --config-file="$tmp/bus.conf" --fork --print-address=1 --print-pid=1 \
        >"$tmp/bus.out" 2>"$tmp/bus.err"; then
    fail "private bus with the installed policy"; cat "$tmp/bus.err"
    echo "package-smoke: $passed passed, $failed failed, $skipped skipped"
    exit 1
fi
{ read -r ADDR; read -r bus_pid; } <"$tmp/bus.out"
export COAPCLIENTD_BUS_ADDRESS=$ADDR
pass "private bus with the installed policy"

# systemd's side of Type=notify and WatchdogSec=: collect what the daemon sends to
# NOTIFY_SOCKET until it has said READY=1 and pinged the watchdog once.
python3 - "$tmp/notify" >"$tmp/notify.log" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.settimeout(15)
seen = set()
print("listening", flush=True)
while not {"READY=1", "WATCHDOG=1"} <= seen:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        print("timeout; seen:", sorted(seen))
        sys.exit(1)
    print(msg.replace("\n", " "), flush=True)
    seen.update(msg.split("\n"))
PY
notify_pid=$!
for _ in $(seq 1 100); do [ -S "$tmp/notify" ] && break; sleep 0.05; done

# As the unit runs it: User=coapclientd, CapabilityBoundingSet=, NoNewPrivileges=yes, and a user
# namespace that maps only that user (PrivateUsers=yes: the bus's own user shows as nobody)
# holding a network namespace with nothing but loopback (PrivateNetwork=yes). The pid stays the
# daemon's through the exec chain, as WATCHDOG_PID requires. (The seccomp filter and the file
# system protections need systemd itself: systemd-analyze above checks what it can of those.)
NOTIFY_SOCKET=$tmp/notify WATCHDOG_USEC=1000000 sh -c 'export WATCHDOG_PID=$$;
    exec setpriv --reuid=coapclientd --regid=coapclientd --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs \
        unshare --user --map-current-user --net \
        /usr/sbin/coapclientd --bus-address="$0"' "$ADDR" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
sandbox="daemon as user coapclientd in private user and network namespaces"
if wait "$notify_pid"; then
    pass "$sandbox: READY=1 and watchdog pings"
else
    fail "$sandbox: READY=1 and watchdog pings"
    sed 's/^/    notify: /' "$tmp/notify.log"; sed 's/^/    daemon: /' "$tmp/daemon.log"
fi
owner_ok() {
    local uid
    uid=$(dbus-send --bus="$ADDR" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixUser string:org.coapclientd.CoapClient1 |
        awk '/uint32/ { print $2 }')
    echo "owner uid: $uid"
    [ "$uid" = "$(id -u coapclientd)" ]
}
check "org.coapclientd.CoapClient1 is owned by user coapclientd" owner_ok

# --- fetch a resource through the installed daemon --------------------------------------------
if has coapclientctl || has libcoapclient-dev; then
    port=
    for _ in $(seq 1 50); do
        port=$(( (RANDOM % 6300) * 2 + 20000 ))
        coap-server-gnutls -A 127.0.0.1 -p "$port" -d 4 -k secretPSK -h CoAP >"$tmp/peer.log" 2>&1 &
        peer_pid=$!
        sleep 0.1
        # libcoap keeps running when only its DTLS port (PORT+1) was taken: check both.
        [ "$(ss -Hulnp "( sport = :$port or sport = :$((port + 1)) )" | grep -c "pid=$peer_pid,")" \
            -eq 2 ] && break
        kill "$peer_pid" 2>/dev/null
        peer_pid=
    done
    # 3000 bytes: a block-wise (Block2) download at the default block size of 1024.
    head -c 3000 /dev/urandom >"$tmp/body"
    chmod 0644 "$tmp/body"
    coap-client-gnutls -B 5 -m put -b 1024 -f "$tmp/body" \
        "coap://127.0.0.1:$port/smoke" >"$tmp/put.log" 2>&1
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    if has coapclientctl; then
        ctl_ok() {
            as_nobody /usr/bin/coapclientctl get "coap://127.0.0.1:$port/smoke" >"$tmp/ctl.out" &&
                cmp "$tmp/body" "$tmp/ctl.out"
        }
        check "coapclientctl (as nobody) fetches 3000 bytes block-wise, byte-exact" ctl_ok
        dtls_ok() {
            as_nobody /usr/bin/coapclientctl get "coaps://127.0.0.1:$((port + 1))/smoke" \
                --psk-identity CoAP --psk-key secretPSK >"$tmp/dtls.out" &&
                cmp "$tmp/body" "$tmp/dtls.out"
        }
        check "coapclientctl (as nobody) fetches over DTLS (PSK): the module loads" dtls_ok
    else
        skip "coapclientctl fetch: no coapclientctl package"
    fi
    if [ -x "$tmp/smoke-get" ]; then
        lib_ok() {
            as_nobody "$tmp/smoke-get" 127.0.0.1 "$port" smoke >"$tmp/lib.out" &&
                cmp "$tmp/body" "$tmp/lib.out"
        }
        check "libcoapclient program (as nobody) fetches 3000 bytes block-wise, byte-exact" lib_ok
    else
        skip "libcoapclient fetch: no program built against libcoapclient-dev"
    fi
else
    skip "fetch through the daemon: neither coapclientctl nor libcoapclient-dev packaged yet"
fi

stop_ok() {
    kill -TERM "$daemon_pid"
    local rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    echo "exit status $rc"; cat "$tmp/daemon.log"
    [ "$rc" -eq 0 ]
}
check "daemon exits 0 on SIGTERM" stop_ok

echo "package-smoke: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
