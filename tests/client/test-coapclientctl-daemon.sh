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
# shellcheck source=tests/helpers/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../helpers/test-lib.sh"


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
if [ "$(wc -l <"$LOG")" -eq "$lines" ]; then ok "nothing logged"; else
    not_ok "logged with LogTarget null"; fi
check "set LogTarget console" 0 "${BUS[@]}" set-property "${LC[@]}" LogTarget s console
check "an unprivileged caller cannot set LogLevel" 1 "${NOBODY[@]}" "${BUS[@]}" set-property \
    "${LC[@]}" LogLevel s err
check_grep "refused as access denied" "$T/err" "[Aa]ccess denied|[Pp]ermission denied"
check "LogLevel unchanged" 0 "${BUS[@]}" get-property "${LC[@]}" LogLevel
check_out "LogLevel still debug" 's "debug"'

# --- coapclientctl status ---
# An observation keeps one caller with one client and one request in flight meanwhile.
"$CTL" observe "$URI/time" >"$T/obs.out" 2>&1 &
obs_pid=$!
wait_file "$T/obs.out"
check "status as root" 0 "$CTL" status
check_grep "status: version" "$T/out" "^ +Version: [0-9]"
for key in LogLevel MaxCallers MaxCallersPerUser MaxChannelsPerUser MaxClientsPerUser \
    MaxRequestsPerUser MaxPayloadBytesPerUser Users MaxClientsPerCaller MaxClients MaxRequestsPerClient MaxRequests \
    MaxPayloadBytes MaxPayloadBytesTotal MaxQueuedBytesPerCaller AckTimeoutMSec \
    AckRandomPercent BackoffPercent MaxRetransmit BlockSize Callers Clients Sockets \
    RequestsInFlight PayloadBytesInFlight MessagesSent MessagesReceived Retransmissions Timeouts; do
    check_grep "status: $key" "$T/out" "^ +$key: [0-9a-z]"
done
check_grep "status: the observer among the callers" "$T/out" \
    "^  :1\.[0-9]+  pid $obs_pid  uid 0  unit "
check_grep "status: its client and request" "$T/out" \
    '^      client [0-9]+ "coapclientctl": 1 in flight, 0 completed, 0 failed$'
check "status --json" 0 "$CTL" status --json
check_grep "status --json: the status" "$T/out" '^\{"status":\{"Version":"[^"]+","LogLevel":"debug",'
check_grep "status --json: the observer" "$T/out" \
    "\"callers\":\[\{\"name\":\":1\.[0-9]+\",\"uid\":0,\"pid\":$obs_pid,\"unit\":\"[^\"]*\",\"clients\":\[\{\"id\":[0-9]+,\"name\":\"coapclientctl\",\"requests_in_flight\":1,"
check "status as nobody" 0 "${NOBODY[@]}" "$CTL" status
check_grep "nobody sees the counters" "$T/out" "^ +RequestsInFlight: 1$"
check_nogrep "nobody does not see root's caller" "$T/out" "pid $obs_pid"
check_grep "nobody is told whose callers" "$T/out" "none of this user"
kill "$obs_pid"
wait "$obs_pid"
check "status with coapclientd unreachable exits 3" 3 env \
    COAPCLIENTD_BUS_ADDRESS=unix:path=/nonexistent "$CTL" status
check "usage: status takes no URI" 2 "$CTL" status "$URI"

# --- coapclientctl monitor: the requests of others as they start and end ---
"$CTL" monitor --count 2 >"$T/mon.out" 2>"$T/mon.err" &
mon_pid=$!
"$CTL" monitor --json --count 2 >"$T/monj.out" 2>"$T/monj.err" &
monj_pid=$!
# Subscribed once status counts both.
wait_for sh -c "'$CTL' status 2>/dev/null | grep -q '^ *Monitors: 2\$'"
# Anyone on the bus may broadcast on the daemon's path: what does not come from the daemon that
# answered Monitor() is not shown (nor counted).
MGR=(/org/coapclientd/CoapClient1 org.coapclientd.CoapClient1.Manager)
check "a forged RequestEndedDetails" 0 "${BUS[@]}" emit "${MGR[@]}" RequestEndedDetails \
    'ta{sv}' 999999 1 error-message s forged-reason
check "a forged RequestEnded" 0 "${BUS[@]}" emit "${MGR[@]}" RequestEnded tsuusssit 999999 \
    :1.999 0 1 "" GET coap://forged/ 69 5
check "a request while monitored" 0 "$CTL" get "$URI/time"
check "a 4.04 while monitored" 6 "$CTL" get "$URI/nothing/here"
wait "$mon_pid"
rc=$?
if [ "$rc" -eq 0 ]; then ok "monitor --count 2 ends"; else
    not_ok "monitor exit $rc: $(cat "$T/mon.err")"; fi
check_grep "monitor: the start" "$T/mon.out" \
    "^start +[0-9]+ +:1\.[0-9]+ pid [0-9]+ uid 0  GET coap://$COAP_PEER_HOST:$COAP_PEER_PORT/time$"
check_grep "monitor: the end with result and duration" "$T/mon.out" \
    "^end +[0-9]+ +:1\.[0-9]+ pid [0-9]+ uid 0  GET coap://$COAP_PEER_HOST:$COAP_PEER_PORT/time -> 2\.05 in [0-9.]+ ms$"
check_grep "monitor: the 4.04" "$T/mon.out" \
    "^end .* GET coap://$COAP_PEER_HOST:$COAP_PEER_PORT/nothing/here -> 4\.04 in "
check_nogrep "monitor: nothing forged shown" "$T/mon.out" "forged"
wait "$monj_pid"
check_nogrep "monitor --json: nothing forged shown" "$T/monj.out" "forged"
check_grep "monitor --json" "$T/monj.out" \
    "^\{\"event\":\"end\",\"id\":[0-9]+,\"caller\":\":1\.[0-9]+\",\"uid\":0,\"pid\":[0-9]+,\"unit\":\"[^\"]*\",\"method\":\"GET\",\"uri\":\"coap://$COAP_PEER_HOST:$COAP_PEER_PORT/time\",\"result\":\"2\.05\",\"duration_usec\":[0-9]+\}$"
check "monitor as nobody is refused" 1 "${NOBODY[@]}" "$CTL" monitor
if [ "${TEST_BUS_KIND:-test}" = system ]; then
    # The bus policy refuses it before the daemon sees it.
    check_grep "monitor refused by the bus policy" "$T/err" "Rejected send message"
else
    check_grep "monitor refusal explained" "$T/err" "Only root may monitor"
fi

# --- The journal's view: each request with its caller at debug ---
check_grep "debug: a request's caller, method and URI" "$LOG" \
    "Request [0-9]+ of :1\.[0-9]+ \(pid [0-9]+, uid 0, unit [^)]*\), client [0-9]+: GET coap://$COAP_PEER_HOST:$COAP_PEER_PORT/time$"
check_grep "debug: its result and duration" "$LOG" \
    "Request [0-9]+ of :1\.[0-9]+ \(pid [0-9]+, uid 0\): GET coap://$COAP_PEER_HOST:$COAP_PEER_PORT/nothing/here: 4\.04 after [0-9]+ ms$"
check_grep "notice: a monitor" "$LOG" "monitors the requests"

# --- A limit: a second daemon on a second bus that serves one client in all ---
printf '[Limits]\nMaxClients=1\n' >"$T/one-client.conf"
BUS2='' BUS2_PID='' d2_pid=''
start_bus BUS2 BUS2_PID
kill_on_exit "$BUS2_PID"
start_daemon d2_pid "$BUS2" "$T/daemon2.log" --config="$T/one-client.conf"
kill_on_exit "$d2_pid"
COAPCLIENTD_BUS_ADDRESS=$BUS2 "$CTL" observe "$URI/time" >"$T/obs2.out" 2>&1 &
obs2_pid=$!
wait_file "$T/obs2.out"
check "a limit of coapclientd exits 1" 1 env COAPCLIENTD_BUS_ADDRESS="$BUS2" "$CTL" get "$URI/time"
check_grep "the limit is named" "$T/err" "Cannot make a client in coapclientd: No buffer space available"
check_grep "its setting too" "$T/err" "MaxClients="
check_grep "notice: the refused caller" "$T/daemon2.log" \
    "Caller :1\.[0-9]+ refused a client: the daemon has MaxClients=\."
kill "$obs2_pid"
wait "$obs2_pid"
kill -TERM "$d2_pid"
wait "$d2_pid"
rc=$?
if [ "$rc" -eq 0 ]; then ok "second daemon exits 0"; else
    not_ok "second daemon exit $rc"; sed 's/^/# /' "$T/daemon2.log" | tail -30; fi
kill "$BUS2_PID"

tap_end
