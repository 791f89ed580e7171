#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What operators see of coapclientd (run by test-env.sh, at log level debug): LogControl1,
# coapclientctl status and monitor, and the log lines of requests. TAP output.
set -u
CTL=${COAPCLIENTCTL:?}
URI="coap://$COAP_PEER_HOST:$COAP_PEER_PORT"
T=$TEST_TMPDIR
LOG=$T/daemon.log
BUS=(busctl --address="$COAPCLIENTD_BUS_ADDRESS")
LC=(org.coapclientd.CoapClient1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1)
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
n=0 failed=0

check() { # description expected-exit command...
    local desc=$1 want=$2 rc
    shift 2
    n=$((n + 1))
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        echo "ok $n - $desc"
    else
        echo "not ok $n - $desc (exit $rc, expected $want)"
        sed 's/^/# /' "$T/err"
        failed=$((failed + 1))
    fi
}
check_out() { # description expected-stdout
    n=$((n + 1))
    if [ "$(cat "$T/out")" = "$2" ]; then echo "ok $n - $1"; else
        echo "not ok $n - $1: got '$(head -c 300 "$T/out")'"; failed=$((failed + 1)); fi
}
check_grep() { # description file pattern
    n=$((n + 1))
    if grep -qE -- "$3" "$2"; then echo "ok $n - $1"; else
        echo "not ok $n - $1: $(head -c 400 "$2")"; failed=$((failed + 1)); fi
}
check_nogrep() { # description file pattern
    n=$((n + 1))
    if ! grep -qE -- "$3" "$2"; then echo "ok $n - $1"; else
        echo "not ok $n - $1: $(grep -E -- "$3" "$2" | head -c 400)"; failed=$((failed + 1)); fi
}

# --- org.freedesktop.LogControl1 (systemctl service-log-level) ---
check "LogLevel readable" 0 "${BUS[@]}" get-property "${LC[@]}" LogLevel
check_out "LogLevel is the --log-level" 's "debug"'
check "SyslogIdentifier" 0 "${BUS[@]}" get-property "${LC[@]}" SyslogIdentifier
check_out "SyslogIdentifier is coapclientd" 's "coapclientd"'
check "LogTarget" 0 "${BUS[@]}" get-property "${LC[@]}" LogTarget
check_out "LogTarget is auto" 's "auto"'
check "set LogLevel notice" 0 "${BUS[@]}" set-property "${LC[@]}" LogLevel s notice
check "LogLevel read back" 0 "${BUS[@]}" get-property "${LC[@]}" LogLevel
check_out "LogLevel is notice" 's "notice"'
lines=$(wc -l <"$LOG")
check "a request at notice" 0 "$CTL" get "$URI/time"
tail -n +"$((lines + 1))" "$LOG" >"$T/log-part"
check_nogrep "no debug lines at notice" "$T/log-part" "request"
check "set LogLevel debug" 0 "${BUS[@]}" set-property "${LC[@]}" LogLevel s debug
lines=$(wc -l <"$LOG")
check "a request at debug" 0 "$CTL" get "$URI/time"
tail -n +"$((lines + 1))" "$LOG" >"$T/log-part"
check_grep "debug lines again" "$T/log-part" "request"
check "a bad LogLevel is refused" 1 "${BUS[@]}" set-property "${LC[@]}" LogLevel s loud
check "a LogTarget we lack is refused" 1 "${BUS[@]}" set-property "${LC[@]}" LogTarget s kmsg
check "set LogTarget null" 0 "${BUS[@]}" set-property "${LC[@]}" LogTarget s null
lines=$(wc -l <"$LOG")
check "a request with LogTarget null" 0 "$CTL" get "$URI/time"
n=$((n + 1))
if [ "$(wc -l <"$LOG")" -eq "$lines" ]; then echo "ok $n - nothing logged"; else
    echo "not ok $n - logged with LogTarget null"; failed=$((failed + 1)); fi
check "set LogTarget console" 0 "${BUS[@]}" set-property "${LC[@]}" LogTarget s console
check "an unprivileged caller cannot set LogLevel" 1 "${NOBODY[@]}" "${BUS[@]}" set-property \
    "${LC[@]}" LogLevel s err
check_grep "refused as access denied" "$T/err" "[Aa]ccess denied|[Pp]ermission denied"
check "LogLevel unchanged" 0 "${BUS[@]}" get-property "${LC[@]}" LogLevel
check_out "LogLevel still debug" 's "debug"'

echo "1..$n"
[ "$failed" -eq 0 ]
