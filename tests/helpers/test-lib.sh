# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Sourced by the shell tests and their environments (test-env.sh, tls-env.sh): TAP checks,
# background processes killed on exit, and starting a private bus, coapclientd and
# coap-server-gnutls peers. Functions that start a process store its pid in a variable named by
# the caller, so that the process stays a child of this shell (not of a $(...) subshell); their
# locals start with _ so that they do not hide the caller's variable of that name.

# --- TAP: each check prints one "ok N - ..." or "not ok N - ..."; tap_end prints the plan ---
n=0 failed=0

ok() { # description
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() { # description-and-diagnosis
    n=$((n + 1))
    echo "not ok $n - $1"
    failed=$((failed + 1))
}
# Runs the command with stdout in $T/out and stderr in $T/err; passes if it exits as expected.
check() { # description expected-exit command...
    local desc=$1 want=$2 rc
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$desc"
    else
        not_ok "$desc (exit $rc, expected $want)"
        sed 's/^/# /' "$T/err"
    fi
}
check_out() { # description expected-stdout (of the last check)
    if [ "$(cat "$T/out")" = "$2" ]; then ok "$1"; else
        not_ok "$1: got '$(head -c 300 "$T/out")'"; fi
}
check_grep() { # description file extended-regex
    if grep -qE -- "$3" "$2"; then ok "$1"; else not_ok "$1: $(head -c 400 "$2")"; fi
}
check_nogrep() { # description file extended-regex
    if ! grep -qE -- "$3" "$2"; then ok "$1"; else
        not_ok "$1: $(grep -E -- "$3" "$2" | head -c 400)"; fi
}
tap_end() { # the plan; the script's exit code
    echo "1..$n"
    [ "$failed" -eq 0 ]
}

# --- Background processes ---
killed_on_exit=()
kill_on_exit() { # pid...
    killed_on_exit+=("$@")
}
kill_started() {
    local p
    for p in "${killed_on_exit[@]}"; do kill "$p" 2>/dev/null; done
}
# A script that sets its own EXIT trap calls kill_started from it.
trap kill_started EXIT
trap 'exit 1' INT TERM

wait_for() { # command...: until it succeeds, at most 10 s
    for _ in $(seq 1 200); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}
wait_file() { # file: until it is not empty
    wait_for test -s "$1"
}

# --- A private bus, coapclientd on it, coap-server-gnutls peers ---
start_bus() { # address-var pid-var: a dbus-daemon with $TEST_BUS_CONF
    local _address _pid
    read -r _address _pid < <(dbus-daemon --config-file="${TEST_BUS_CONF:?}" --fork \
        --print-address=1 --print-pid=1 | paste -sd' ')
    [ -n "$_address" ] || return 1
    printf -v "$1" %s "$_address"
    printf -v "$2" %s "$_pid"
}

# coapclientd (behind $COAPCLIENTD_WRAPPER, e.g. valgrind) on bus, its output in log; returns
# once it owns its name, 1 if it died first or took longer than 20 s.
start_daemon() { # pid-var bus log daemon-args...
    local _var=$1 _bus=$2 _log=$3 _pid
    shift 3
    # shellcheck disable=SC2086
    ${COAPCLIENTD_WRAPPER:-} "${COAPCLIENTD_BIN:?}" --bus-address="$_bus" "$@" >"$_log" 2>&1 &
    _pid=$!
    printf -v "$_var" %s "$_pid"
    for _ in $(seq 1 400); do
        busctl --address="$_bus" status org.coapclientd.CoapClient1 >/dev/null 2>&1 && return 0
        kill -0 "$_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# udp_sockets PORT: how many UDP sockets on this machine are bound to PORT.
udp_sockets() { ss -Huan "sport = :$1" | wc -l; }

# coap-server-gnutls with args on a free even port PORT, below the ephemeral range (32768 on) so
# that no test's client socket holds it already. It takes PORT (UDP) and, with "dtls", PORT+1
# (DTLS) too; both must be free (libcoap binds with SO_REUSEADDR: a peer of a test running
# alongside could share a port, and either could get the other's datagrams), and ours alone
# once it runs. Registered with kill_on_exit. Returns 1 when no port worked.
start_coap_peer() { # udp|dtls port-var pid-var log args...
    local _dtls=$1 _port_var=$2 _pid_var=$3 _log=$4 _port _pid _k
    shift 4
    for _ in $(seq 1 50); do
        _port=$(((RANDOM % 6300) * 2 + 20000))
        if [ "$(udp_sockets "$_port")" != 0 ] || [ "$(udp_sockets $((_port + 1)))" != 0 ]; then
            continue
        fi
        coap-server-gnutls -A 127.0.0.1 -p "$_port" "$@" >"$_log" 2>&1 &
        _pid=$!
        for _ in $(seq 1 40); do
            sleep 0.05
            kill -0 "$_pid" 2>/dev/null || break
            # coap-server carries on without its DTLS port when that is taken.
            if [ "$_dtls" = dtls ]; then
                [ "$(udp_sockets $((_port + 1)))" = 1 ] || continue
            fi
            _k=$(udp_sockets "$_port")
            [ "$_k" = 0 ] && continue
            [ "$_k" = 1 ] || break
            kill_on_exit "$_pid"
            printf -v "$_port_var" %s "$_port"
            printf -v "$_pid_var" %s "$_pid"
            return 0
        done
        kill "$_pid" 2>/dev/null
        wait "$_pid" 2>/dev/null
    done
    return 1
}
