#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages under a real systemd: boots Debian 12 with systemd as PID 1 in a container
# (systemd-nspawn, sharing the host's network namespace), installs the packages with apt inside
# it, so that a missing dependency shows, and checks what only a real systemd can show: D-Bus
# activation, the sandbox on the running process, the watchdog, LogControl1, the journal,
# `coapclientctl status`, a configuration error, an upgrade under a running observation, purge.
#
#   tests/systemd/run.sh DEB_DIR UPGRADE_DEB_DIR     (root)
#
# DEB_DIR and UPGRADE_DEB_DIR as filled by tools/build-deb.sh, the second with a higher version
# (./dev.sh systemd builds both). The root file system comes from tests/systemd/rootfs.sh (built
# once, cached); each run boots it under an overlay that is thrown away. apt inside the
# container reaches Debian's registry as the host does; the CoAP peer is a coap-server-gnutls on
# the host's 127.0.0.1.
# Prints PASS:/FAIL: lines and ends with "systemd: N passed, N failed"; exits non-zero on failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
deb_dir=$(realpath "${1:?usage: run.sh DEB_DIR UPGRADE_DEB_DIR}")
new_dir=$(realpath "${2:?usage: run.sh DEB_DIR UPGRADE_DEB_DIR}")
[ "$(id -u)" -eq 0 ] || { echo "systemd: needs root" >&2; exit 1; }

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; }
check() { # description command...
    local desc=$1; shift
    if "$@" >"$work/check.log" 2>&1; then pass "$desc"; else
        fail "$desc"; sed 's/^/    /' "$work/check.log" | tail -n 25
    fi
}
finish() {
    echo "systemd: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
# Polls COMMAND every 0.2 s until it succeeds; gives up after SECONDS (a hang, not a timing).
wait_for() { # seconds command...
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.2
    done
}

work=$(mktemp -d /var/tmp/coapclientd-systemd.XXXXXX)
nspawn_pid='' peer_pid='' P1=''
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    if [ -n "$nspawn_pid" ]; then
        # nspawn turns SIGTERM into an orderly shutdown of the container; SIGKILL if it hangs.
        # (Until waited for, an exited nspawn is a zombie, which kill -0 would still find.)
        nspawn_done() { [[ "$(ps -o stat= -p "$nspawn_pid")" != [^Z]* ]]; }
        kill -TERM "$nspawn_pid" 2>/dev/null
        wait_for 30 nspawn_done || kill -KILL "$nspawn_pid" 2>/dev/null
        wait "$nspawn_pid" 2>/dev/null
    fi
    mountpoint -q "$work/root" && umount "$work/root"
    rm -rf "$work"
}
trap cleanup EXIT

# Runs a command in the container: PID 1's mount, UTS, IPC, PID and cgroup namespaces.
c() { nsenter -t "$P1" -m -u -i -p -C -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# Runs a command in the container as a service of its own (systemd-run): the daemon sees a caller
# with a unit, as it would on a real system. Extra systemd-run arguments before "--".
run_in() { c systemd-run --quiet --wait --pipe --collect "$@"; }
unit_prop() { c systemctl show -P "$2" "$1"; }

# --- boot --------------------------------------------------------------------------------------
cache_root=$("$here/rootfs.sh") || { fail "root file system (debootstrap)"; finish; }
start=$SECONDS
# The container writes to an overlay: the cached tree stays as debootstrap left it.
mkdir -p "$work/root" "$work/upper" "$work/overlay-work"
if ! mount -t overlay overlay \
        -o "lowerdir=$cache_root,upperdir=$work/upper,workdir=$work/overlay-work" "$work/root"; then
    fail "overlay on $cache_root"; finish
fi

debs() { # dir: the packages to install, without debug symbols
    local f
    for f in "$1"/*.deb; do case "$f" in *-dbgsym_*) ;; *) echo "$f" ;; esac; done
}
mkdir -p "$work/root/debs" "$work/root/debs-new"
# shellcheck disable=SC2046
cp $(debs "$deb_dir") "$work/root/debs/"
# shellcheck disable=SC2046
cp $(debs "$new_dir") "$work/root/debs-new/"

# --register=no --keep-unit: PID 1 of this host is not systemd (nspawn would ask its bus).
systemd-nspawn -q -D "$work/root" -b --register=no --keep-unit --console=passive \
    >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
find_p1() { P1=$(pgrep -P "$nspawn_pid" -x systemd); [ -n "$P1" ]; }
if ! wait_for 60 find_p1; then
    fail "systemd boots as PID 1 of the container"; cat "$work/nspawn.log"; finish
fi
booted() {
    local state
    # systemctl talks to PID 1 on this socket; --wait then waits for the boot to finish.
    wait_for 60 test -S "/proc/$P1/root/run/systemd/private" || return 1
    state=$(c systemctl is-system-running --wait)
    echo "system state: $state"
    [ "$state" = running ] || [ "$state" = degraded ]
}
check "systemd boots as PID 1 of the container" booted
echo "systemd: booted in $((SECONDS - start)) s"

# --- install with apt --------------------------------------------------------------------------
version=$(dpkg-deb -f "$(debs "$deb_dir" | grep /coapclientd_)" Version)
new_version=$(dpkg-deb -f "$(debs "$new_dir" | grep /coapclientd_)" Version)
install() { # dir in the container
    local pkgs f
    pkgs=()
    for f in "$work/root$1"/*.deb; do pkgs+=("$1/${f##*/}"); done
    c apt-get update -qq &&
        c env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${pkgs[@]}"
}
if ! install /debs >"$work/apt.log" 2>&1; then
    fail "apt-get install of the packages (dependencies from Debian's registry)"
    tail -n 30 "$work/apt.log"; finish
fi
pass "apt-get install of the packages (dependencies from Debian's registry)"
check "libcoapclient-dev pulled in libsystemd-dev" c dpkg-query -W libsystemd-dev
check "pkg-config --cflags --libs libcoapclient (only our -dev package installed)" \
    c pkg-config --cflags --libs libcoapclient
not_started() {
    local state
    state=$(unit_prop coapclientd.service ActiveState)
    echo "ActiveState=$state"
    [ "$state" = inactive ]
}
check "installing does not start the daemon" not_started

# --- D-Bus activation ----------------------------------------------------------------------------
c useradd --create-home tester
c useradd --create-home other
port=
for _ in $(seq 1 50); do
    port=$(( (RANDOM % 15000) * 2 + 20000 ))
    coap-server-gnutls -A 127.0.0.1 -p "$port" >"$work/peer.log" 2>&1 &
    peer_pid=$!
    sleep 0.1
    ss -Hulnp "sport = :$port" | grep -q "pid=$peer_pid," && break
    kill "$peer_pid" 2>/dev/null
    peer_pid=
done
[ -n "$peer_pid" ] || { fail "coap-server-gnutls on 127.0.0.1"; finish; }
uri=coap://127.0.0.1:$port
activation() {
    run_in -p User=tester -- /usr/bin/coapclientctl get "$uri/" >"$work/get.out" || return 1
    grep -q libcoap "$work/get.out" || { cat "$work/get.out"; return 1; }
    [ "$(unit_prop coapclientd.service ActiveState)" = active ]
}
check "D-Bus activation on first use: a user's coapclientctl get starts coapclientd.service" \
    activation

# --- the sandbox on the running process ---------------------------------------------------------
pid=$(unit_prop coapclientd.service MainPID)
c cat "/proc/$pid/status" >"$work/status" 2>&1
status_is() { # field value
    local got
    got=$(awk -v f="$1:" '$1 == f { print $2 }' "$work/status")
    echo "$1: $got (want $2)"
    [ "$got" = "$2" ]
}
uid=$(c id -u coapclientd)
check "daemon runs as user coapclientd (uid $uid)" status_is Uid "$uid"
check "daemon has no effective capabilities" status_is CapEff 0000000000000000
check "daemon has no permitted capabilities" status_is CapPrm 0000000000000000
check "daemon has an empty bounding set" status_is CapBnd 0000000000000000
check "daemon runs with NoNewPrivs" status_is NoNewPrivs 1
check "daemon runs under a seccomp filter" status_is Seccomp 2
batch_policy() { # SCHED_BATCH is 3
    local policy
    policy=$(c cat "/proc/$pid/sched" | awk '$1 == "policy" { print $3 }')
    echo "policy: $policy (want 3, SCHED_BATCH)"
    [ "$policy" = 3 ]
}
check "daemon runs with CPUSchedulingPolicy=batch" batch_policy
only_lo() {
    local links
    links=$(c cat "/proc/$pid/net/dev" | awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }')
    echo "interfaces: $links"
    [ "$links" = lo ]
}
check "daemon's network namespace has only lo" only_lo

# --- the journal -------------------------------------------------------------------------------
journal_fields() {
    c journalctl -u coapclientd.service -o json --no-pager | python3 -c '
import json, sys
pid, uid = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    e = json.loads(line)
    if "running as" not in str(e.get("MESSAGE", "")):
        continue
    want = {"SYSLOG_IDENTIFIER": "coapclientd", "_SYSTEMD_UNIT": "coapclientd.service",
            "PRIORITY": "6", "_PID": pid, "_UID": uid}
    bad = {k: e.get(k) for k, v in want.items() if e.get(k) != v}
    print("line:", e.get("MESSAGE"), "mismatches:", bad)
    sys.exit(1 if bad else 0)
print("no \"running as\" line from coapclientd.service")
sys.exit(1)' "$pid" "$uid"
}
wait_for 10 journal_fields # journald reads the daemon's stream on its own time
check "journal: the daemon's start line has SYSLOG_IDENTIFIER, _SYSTEMD_UNIT, PRIORITY, _PID, _UID" \
    journal_fields

# --- LogControl1 ---------------------------------------------------------------------------------
debug_lines() { c journalctl -u coapclientd.service -p debug..debug -o cat --no-pager | wc -l; }
log_level() {
    c systemctl service-log-level coapclientd.service debug || return 1
    local level before after
    level=$(c systemctl service-log-level coapclientd.service) || return 1
    echo "level now: $level"
    [ "$level" = debug ] && [ "$(unit_prop coapclientd.service MainPID)" = "$pid" ] || return 1
    before=$(debug_lines)
    run_in -p User=tester -- /usr/bin/coapclientctl get "$uri/" >/dev/null || return 1
    # journald reads the daemon's stream on its own time: wait for the lines to arrive.
    wait_for 10 eval '[ "$(debug_lines)" -gt "$before" ]'
    after=$(debug_lines)
    echo "debug lines from the daemon: $before before the request, $after after it"
    [ "$after" -gt "$before" ] && c systemctl service-log-level coapclientd.service info
}
check "systemctl service-log-level coapclientd debug: debug lines appear, no restart" log_level

# --- a configuration error is not restarted ------------------------------------------------------
c mkdir -p /etc/coapclientd/coapclientd.conf.d
printf '[Limits]\nMaxClients=many\n' | c tee /etc/coapclientd/coapclientd.conf.d/bad.conf >/dev/null
config_error() {
    c systemctl restart coapclientd.service && return 1
    wait_for 30 bash -c '[ "$(nsenter -t '"$P1"' -m -p -- systemctl show -P ActiveState coapclientd.service)" = failed ]' ||
        { echo "unit not failed"; return 1; }
    local st n
    st=$(unit_prop coapclientd.service ExecMainStatus)
    n=$(unit_prop coapclientd.service NRestarts)
    echo "ExecMainStatus=$st NRestarts=$n"
    [ "$st" = 78 ] && [ "$n" = 0 ]
}
check "a configuration error fails the unit at once: status 78, no restart" config_error
c rm -r /etc/coapclientd/coapclientd.conf.d
c systemctl reset-failed coapclientd.service

# --- the watchdog ----------------------------------------------------------------------------
# WatchdogSec=3s instead of 30s so that the check takes seconds; the mechanism is the unit's.
c mkdir -p /run/systemd/system/coapclientd.service.d
printf '[Service]\nWatchdogSec=3s\n' | c tee /run/systemd/system/coapclientd.service.d/watchdog.conf >/dev/null
c systemctl daemon-reload
watchdog() {
    c systemctl start coapclientd.service || return 1
    local old new
    old=$(unit_prop coapclientd.service MainPID)
    c kill -STOP "$old"
    new_pid() {
        new=$(unit_prop coapclientd.service MainPID)
        [ "$new" != "$old" ] && [ "$new" != 0 ] &&
            [ "$(unit_prop coapclientd.service ActiveState)" = active ]
    }
    wait_for 60 new_pid || { echo "MainPID still $old"; return 1; }
    echo "stopped $old, now $new, NRestarts=$(unit_prop coapclientd.service NRestarts)"
    watchdog_logged() { c journalctl -u coapclientd.service --no-pager | grep -i 'watchdog timeout'; }
    wait_for 10 watchdog_logged
    watchdog_logged
}
check "watchdog: a stopped daemon (SIGSTOP) is killed and restarted" watchdog
c rm -r /run/systemd/system/coapclientd.service.d
c systemctl daemon-reload
c systemctl restart coapclientd.service

# --- coapclientctl status, while a user observes -----------------------------------------------
# The observer runs through the upgrade below, then is stopped.
c systemd-run --quiet --unit=coap-observer -p User=tester /usr/bin/coapclientctl observe "$uri/time"
observing() { c journalctl -u coap-observer.service -o cat --no-pager | grep -qE '[0-9]+:[0-9]+:[0-9]+'; }
wait_for 30 observing
tester_uid=$(c id -u tester)
callers_as() { # user (root: ""): the callers of `coapclientctl status --json`, as "UID UNIT"
    local out
    if [ -z "$1" ]; then
        out=$(c coapclientctl status --json) || return 1
    else
        out=$(run_in -p User="$1" -- /usr/bin/coapclientctl status --json) || return 1
    fi
    python3 -c 'import json, sys
for c in json.load(sys.stdin)["callers"]:
    print(c["uid"], c["unit"] or "-")' <<<"$out"
}
status_root() {
    c coapclientctl status >"$work/st.out" 2>&1 || { cat "$work/st.out"; return 1; }
    grep -qF "${version%%-*}" "$work/st.out" || { cat "$work/st.out"; return 1; }
    local callers
    callers=$(callers_as "") || return 1
    echo "callers: $callers"
    grep -qx "$tester_uid coap-observer.service" <<<"$callers"
}
check "coapclientctl status as root: the version, a user's observer with its uid and unit" \
    status_root
status_own() {
    local callers
    callers=$(callers_as tester) || return 1
    echo "callers: $callers"
    grep -qx "$tester_uid coap-observer.service" <<<"$callers"
}
check "coapclientctl status as the observing user: its observer" status_own
status_other() {
    local callers
    callers=$(callers_as other) || return 1
    echo "callers: $callers"
    ! grep -q "^$tester_uid " <<<"$callers"
}
check "coapclientctl status as another user: not the observer" status_other

# --- upgrade with an observation running ----------------------------------------------------------
# Documented in README ("Debian packages"): the package's postinst restarts a running daemon
# (try-restart); requests in flight end with an error, observations are registered again with the
# new daemon by libcoapclient and go on; the next request is served by the new daemon.
old_pid=
upgrade() {
    observing || { echo "no notification before the upgrade"; return 1; }
    old_pid=$(unit_prop coapclientd.service MainPID)
    install /debs-new >"$work/upgrade.log" 2>&1 || { tail -n 20 "$work/upgrade.log"; return 1; }
    local got
    got=$(c dpkg-query -W -f='${Version}' coapclientd)
    echo "installed $got (want $new_version)"
    [ "$got" = "$new_version" ]
}
check "upgrade $version -> $new_version with apt while an observation runs" upgrade
restarted() {
    local new
    new=$(unit_prop coapclientd.service MainPID)
    echo "MainPID $old_pid -> $new, $(unit_prop coapclientd.service ActiveState)"
    [ "$new" != "$old_pid" ] && [ "$new" != 0 ]
}
check "upgrade: the running daemon was restarted" restarted
notifications() { c journalctl -u coap-observer.service -o cat --no-pager | grep -cE '[0-9]+:[0-9]+:[0-9]+'; }
more_notifications() { [ "$(notifications)" -ge "$1" ]; }
observer_goes_on() {
    local n
    n=$(notifications)
    wait_for 30 more_notifications $((n + 2)) || { echo "no notification after the upgrade"; return 1; }
    echo "observer $(unit_prop coap-observer.service SubState); its last lines:"
    c journalctl -u coap-observer.service -o cat --no-pager | tail -n 3
    [ "$(unit_prop coap-observer.service SubState)" = running ]
}
check "upgrade: the observation goes on with the new daemon" observer_goes_on
sed 's/^/    /' "$work/check.log" # the outcome README documents, for the record
c systemctl stop coap-observer.service
c systemctl reset-failed coap-observer.service 2>/dev/null
after_upgrade() {
    run_in -p User=tester -- /usr/bin/coapclientctl get "$uri/" | grep -q libcoap
}
check "upgrade: a new request is served by the new daemon" after_upgrade

# --- purge -----------------------------------------------------------------------------------
purge() {
    [ "$(unit_prop coapclientd.service ActiveState)" = active ] || { echo "not running"; return 1; }
    c env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq \
        coapclientd libcoapclient1 libcoapclient-dev coapclientctl >"$work/purge.log" 2>&1 ||
        { tail -n 20 "$work/purge.log"; return 1; }
    local left=0 p
    for p in /etc/coapclientd /lib/systemd/system/coapclientd.service \
            /usr/lib/systemd/system/coapclientd.service \
            /etc/systemd/system/dbus-org.coapclientd.CoapClient1.service \
            /usr/share/dbus-1/system.d/org.coapclientd.CoapClient1.conf \
            /usr/share/dbus-1/system-services/org.coapclientd.CoapClient1.service \
            /usr/sbin/coapclientd /usr/bin/coapclientctl; do
        [ -e "$work/root$p" ] || [ -L "$work/root$p" ] && { echo "left: $p"; left=1; }
    done
    if c pgrep -x coapclientd; then echo "coapclientd still runs"; left=1; fi
    if c busctl --system status org.coapclientd.CoapClient1 >/dev/null 2>&1; then
        echo "bus name still owned or activatable"; left=1
    fi
    return $left
}
check "purge stops the daemon and removes its files, configuration and activation" purge

finish
