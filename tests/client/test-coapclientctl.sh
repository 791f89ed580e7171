#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coapclientctl against coap-server-gnutls through coapclientd (run by test-env.sh):
# get/put/post/delete/observe, output files, and the documented exit codes. TAP output.
set -u
CTL=${COAPCLIENTCTL:?}
URI="coap://$COAP_PEER_HOST:$COAP_PEER_PORT"
T=$TEST_TMPDIR
# shellcheck source=tests/helpers/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../helpers/test-lib.sh"

check "get /time" 0 "$CTL" get "$URI/time"
check_grep "/time body" "$T/out" '^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}$'

check "put a text resource" 0 "$CTL" put "$URI/ctl-test" --payload "hello ctl" -c text
check "get it back" 0 "$CTL" get "$URI/ctl-test"
check_out "body of the put resource" "hello ctl"
check "get --verbose shows the code" 0 "$CTL" -v get "$URI/ctl-test"
check_grep "verbose code" "$T/err" '^2\.05 Content$'
check "non-confirmable get" 0 "$CTL" get --non "$URI/ctl-test"
check_out "non-confirmable body" "hello ctl"
check "query and separate response" 0 "$CTL" get "$URI/async?1"
check_out "separate response body" "done"
check "delete" 0 "$CTL" delete "$URI/ctl-test"
check "4.04 exits 6" 6 "$CTL" get "$URI/nonexistent"
check_grep "4.04 reported" "$T/err" '^4\.04 Not Found$'
check_out "an error body stays off stdout" ""

# Block-wise both ways, byte-exact, through files.
head -c 200000 /dev/urandom >"$T/big.in"
check "block-wise put from a file" 0 "$CTL" put "$URI/example_data" -f "$T/big.in" -c octet -b 512
check "block-wise get to a file" 0 "$CTL" -v get "$URI/example_data" -o "$T/big.out"
check_grep "verbose Content-Format" "$T/err" '^Content-Format: 42 \(application/octet-stream\)$'
if cmp -s "$T/big.in" "$T/big.out"; then ok "block-wise body identical"; else
    not_ok "block-wise body differs"; fi
check "payload from stdin" 0 sh -c "printf 'from stdin' | '$CTL' put '$URI/ctl-stdin' -f -"
check "get the stdin resource" 0 "$CTL" get "$URI/ctl-stdin"
check_out "stdin body" "from stdin"

check "observe 3 notifications" 0 "$CTL" observe "$URI/time" --count 3
if [ "$(wc -l <"$T/out")" -eq 3 ]; then ok "three lines"; else
    not_ok "$(wc -l <"$T/out") lines"; fi
check "observe ended by --timeout" 0 "$CTL" observe "$URI/time" --timeout 1.5

check "host name and option" 0 "$CTL" get -4 "coap://localhost:$COAP_PEER_PORT/time" -O "17:#0"

# --- Exit codes, one by one (coapclientctl(1), EXIT STATUS) ---
check "IPv6 literal, nobody listening, exits 5" 5 "$CTL" get "coap://[::1]:$COAP_PEER_PORT/time" \
    --timeout 10
check "dead port exits 5" 5 "$CTL" get "coap://127.0.0.1:9/time" --timeout 10
# A peer that never answers.
"${BAD_PEER:?}" silent --lifetime=60 >"$T/silent.port" &
silent_pid=$!
kill_on_exit "$silent_pid"
wait_file "$T/silent.port"
check "no response exits 4" 4 "$CTL" get "coap://127.0.0.1:$(cat "$T/silent.port")/time" \
    --ack-timeout 100 --retransmit 1
kill "$silent_pid"
check_grep "no response is named" "$T/err" "timed out"
check "our --timeout exits 4" 4 "$CTL" get "$URI/async?5" --timeout 0.2
check "5.xx exits 7" 7 "$CTL" get "$URI/time" -O "39:coap"
check_grep "5.05 reported" "$T/err" "^5.05 Proxying Not Supported$"
check "coapclientd unreachable (no bus) exits 3" 3 env \
    COAPCLIENTD_BUS_ADDRESS=unix:path=/nonexistent "$CTL" get "$URI/time"
check_grep "no bus: the daemon's errno and the library's reason" "$T/err" \
    "Connection refused"
check_grep "no bus: the address is named" "$T/err" "unix:path=/nonexistent"
# A bus without coapclientd: the library documents -ECONNREFUSED.
EMPTY_BUS='' EMPTY_BUS_PID=''
start_bus EMPTY_BUS EMPTY_BUS_PID
kill_on_exit "$EMPTY_BUS_PID"
check "coapclientd not on the bus exits 3" 3 env COAPCLIENTD_BUS_ADDRESS="$EMPTY_BUS" \
    "$CTL" get "$URI/time"
kill "$EMPTY_BUS_PID"
check_grep "not on the bus: Connection refused" "$T/err" "Cannot reach coapclientd: Connection refused"
check_grep "not on the bus: the bus's message" "$T/err" "ServiceUnknown"
check "get to a group is a usage error (IPv4)" 2 "$CTL" get "coap://224.0.1.187/time"
check "usage: no URI" 2 "$CTL" get
check "usage: unknown command" 2 "$CTL" frobnicate "$URI/time"
check "usage: unknown flag" 2 "$CTL" get "$URI/time" --frobnicate
check_grep "unknown flag: points to --help" "$T/err" "^Try 'coapclientctl --help'.$"
check "usage: coaps without credentials" 2 "$CTL" get "coaps://127.0.0.1/time"
check "usage: bad block size" 2 "$CTL" get "$URI/time" -b 100
check "usage: bad option" 2 "$CTL" get "$URI/time" -O "x:1"
check "missing payload file exits 8" 8 "$CTL" put "$URI/x" -f "$T/nonexistent"
check_grep "payload file named" "$T/err" "$T/nonexistent"
check "-o /dev/full exits 8" 8 "$CTL" get "$URI/time" -o /dev/full
check_grep "-o /dev/full reported" "$T/err" "Cannot write '/dev/full': No space left on device"
check "stdout on /dev/full exits 8" 8 sh -c "'$CTL' get '$URI/time' >/dev/full"
check_grep "stdout on /dev/full reported" "$T/err" "standard output: No space left on device"
check "-o in a missing directory exits 8" 8 "$CTL" get "$URI/time" -o "$T/no/such/file"

# Interrupted: SIGINT once the signals are blocked (then handled by the loop), not before.
wait_sigblk() { # pid: until coapclientctl blocks SIGINT (signalfd set up), at most ~10 s
    local _ blk
    for _ in $(seq 1 200); do
        # The forked shell blocks SIGINT for a moment too: only after the exec() counts.
        if [ "$(cat "/proc/$1/comm" 2>/dev/null)" = coapclientctl ]; then
            blk=$(awk '/^SigBlk:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
            [ -n "$blk" ] && (( 0x$blk & 2 )) && return 0
        fi
        sleep 0.05
    done
    return 1
}
"$CTL" get "$URI/async?5" >"$T/out" 2>"$T/err" &
pid=$!
wait_sigblk "$pid"
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ]; then ok "SIGINT exits 130"; else
    not_ok "SIGINT exit $rc"; fi
check_nogrep "SIGINT: no 'Operation canceled'" "$T/err" "canceled"
# Ctrl-C ends an observation normally.
"$CTL" observe "$URI/time" >"$T/out" 2>"$T/err" &
pid=$!
wait_file "$T/out"
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 0 ]; then ok "SIGINT ends observe with 0"; else
    not_ok "observe after SIGINT: exit $rc"; fi
check_nogrep "observe SIGINT: no 'Operation canceled'" "$T/err" "canceled"
check "observe ended by --timeout" 0 "$CTL" observe "$URI/time" --timeout 1.5
check_nogrep "observe --timeout: no 'Operation canceled'" "$T/err" "canceled"

# --- -o FILE: only a 2.xx body, through a temporary file ---
echo old >"$T/keep"
check "4.04 with -o exits 6" 6 "$CTL" get "$URI/nonexistent" -o "$T/keep"
if [ "$(cat "$T/keep")" = old ]; then ok "-o FILE untouched by a 4.04"; else
    not_ok "-o FILE holds '$(cat "$T/keep")'"; fi
check "4.04 with -o to a new file" 6 "$CTL" get "$URI/nonexistent" -o "$T/new"
if [ ! -e "$T/new" ]; then ok "no file after a 4.04"; else
    not_ok "a file after 4.04: '$(cat "$T/new")'"; fi
check "timeout with -o" 4 "$CTL" get "$URI/async?5" --timeout 0.2 -o "$T/keep"
check_grep "-o FILE untouched by a timeout" "$T/keep" "^old$"
ln -s keep "$T/link"
check "2.05 through a symbolic link" 0 "$CTL" get "$URI/async?1" -o "$T/link"
if [ -L "$T/link" ] && [ "$(cat "$T/keep")" = "done" ]; then ok "link kept, target written"
else not_ok "link or target wrong"; fi
if [ -z "$(find "$T" -name '.coapclientctl.*')" ]; then ok "no temporary files left"
else not_ok "temporary files left"; fi

# --- What goes on the wire: a peer of our own that logs every PDU ---
VPORT='' vpid=''
start_coap_peer udp VPORT vpid "$T/wire.log" -v 8 || { echo "Bail out! the logging peer did not start"; exit 1; }
V="coap://127.0.0.1:$VPORT"
check "Uri-Host for a host name" 0 "$CTL" get -4 "coap://localhost:$VPORT/time"
check_grep "Uri-Host sent" "$T/wire.log" "c:GET .*\[ Uri-Host:localhost, Uri-Path:time \]"
check "no Uri-Host for an IP literal" 0 "$CTL" get "$V/time?literal"
check_grep "no Uri-Host for 127.0.0.1" "$T/wire.log" "c:GET .*\[ Uri-Path:time, Uri-Query:literal \]"
check "put without -c" 6 "$CTL" put "$V/no-format" -p abc
check_grep "no Content-Format unless given" "$T/wire.log" "c:PUT .*\[ Uri-Path:no-format \] :: 'abc'"
check "put with -c json" 6 "$CTL" put "$V/json" -p '{}' -c json
check_grep "Content-Format when given" "$T/wire.log" \
    "c:PUT .*\[ Uri-Path:json, Content-Format:application/json \]"
check "fetch" 0 "$CTL" fetch "$V/time" -p q
check_grep "FETCH on the wire" "$T/wire.log" "c:FETCH .*Uri-Path:time"
check "patch" 6 "$CTL" patch "$V/example_data" -p q
check_grep "PATCH on the wire" "$T/wire.log" "c:PATCH .*Uri-Path:example_data"
check "ipatch" 6 "$CTL" ipatch "$V/example_data" -p q
check_grep "iPATCH on the wire" "$T/wire.log" "c:iPATCH .*Uri-Path:example_data"
check "-b 64 download" 0 "$CTL" get "$V/example_data" -b 64
check_grep "-b 64 asks for 64-byte blocks" "$T/wire.log" "c:GET .*Uri-Path:example_data, Block2:[0-9]*/_/64"
check "a fragment is refused" 2 "$CTL" get "$V/time#now"
check_grep "the fragment is named" "$T/err" "fragment"
check "a bad port is named" 2 "$CTL" get "coap://127.0.0.1:99999/time"
check_grep "the port is named" "$T/err" "the port"
kill "$vpid"

# --- discover ---
check "discover" 0 "$CTL" discover "$URI"
check_grep "discover lists /time with its attributes" "$T/out" \
    '^/time  *if=clock  rt=ticks  title="Internal Clock"  ct=0  obs$'
check "discover with a query" 0 "$CTL" discover "$URI?rt=ticks"
check_out "the query filters" '/time  if=clock  rt=ticks  title="Internal Clock"  ct=0  obs'
check "discover --json" 0 "$CTL" discover --json "$URI?rt=ticks"
check_out "discover --json output" \
    '[{"href":"/time","attributes":{"if":"clock","rt":"ticks","title":"Internal Clock","ct":"0","obs":true}}]'
check "discover a resource that is not link format" 5 "$CTL" discover "$URI/time"
check_grep "not link format is said" "$T/err" "not in link format"
check "get to a group is a usage error" 2 "$CTL" get "coap://[ff02::fd]/x"
check_grep "only discover asks a group" "$T/err" "Only discover can ask the group 'ff02::fd'"
# Two members of 239.255.0.1 on lo (ctl-mcast-peer prints the port once both have joined).
"$MCAST_PEER" '</a>;rt=one' '</b>' >"$T/mcast-port" &
mcast_pid=$!
kill_on_exit "$mcast_pid"
wait_file "$T/mcast-port"
GROUP="coap://239.255.0.1:$(cat "$T/mcast-port")"
check "discover to a group" 0 "$CTL" discover --interface lo -t 1 "$GROUP/"
check_grep "the first member's address" "$T/out" '^127\.0\.0\.4:[0-9]*$'
check_grep "its links" "$T/out" '^/a  rt=one$'
check_grep "the second member's address" "$T/out" '^127\.0\.0\.5:[0-9]*$'
check_grep "its links" "$T/out" '^/b$'
check "discover --json to a group" 0 "$CTL" discover --json --interface lo -t 1 "$GROUP/"
check_grep "--json: one object per member" "$T/out" \
    '^\{"source":"127\.0\.0\.4:[0-9]*","links":\[\{"href":"/a","attributes":\{"rt":"one"\}\}\]\}$'
check_grep "--json: the other member" "$T/out" \
    '^\{"source":"127\.0\.0\.5:[0-9]*","links":\[\{"href":"/b","attributes":\{\}\}\]\}$'
kill "$mcast_pid"
wait "$mcast_pid"
check "discover to a group nobody answers exits 4" 4 "$CTL" discover --interface lo -t 0.3 "$GROUP/"
check_grep "no member answered" "$T/err" "No member of the group answered"
check "--interface needs a group" 2 "$CTL" discover --interface lo "$URI"

# --- --json on a request ---
check "get --json" 0 "$CTL" get --json "$URI/async?1"
check_out "get --json output" '{"code":"2.05","status":"Content","payload":"done"}'
check "4.04 --json exits 6" 6 "$CTL" get --json "$URI/nonexistent"
check_out "4.04 --json output" '{"code":"4.04","status":"Not Found","payload":"Not Found"}'
check "binary body --json" 0 "$CTL" get --json "$URI/example_data"
if sed -n 's/.*"payload_base64":"\([^"]*\)".*/\1/p' "$T/out" | base64 -d | cmp -s - "$T/big.in"
then ok "binary body as base64, byte for byte"; else
    not_ok "payload_base64 differs"; fi
check_grep "binary body --json: its options" "$T/out" '"content_format":42,"size2":200000,"etag":"[0-9a-f]*",'
check "observe --json" 0 "$CTL" observe --json --count 2 "$URI/time"
if [ "$(grep -cE '^\{"code":"2\.05","status":"Content","observe":[0-9]+,"payload":"[^"]+"\}$' "$T/out")" -eq 2 ]
then ok "observe --json: one line per notification"; else
    not_ok "observe --json: $(cat "$T/out")"; fi
check "usage: --json with --output" 2 "$CTL" get --json -o "$T/x" "$URI/time"

check "--help" 0 "$CTL" --help
check_grep "help documents exit codes" "$T/out" 'Exit status'
check "--version" 0 "$CTL" --version

tap_end
