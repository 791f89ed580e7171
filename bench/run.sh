#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The benchmark harness (./dev.sh bench). In one run, on loopback, against one coap-server-gnutls
# peer, it measures side by side:
#   (1) udp          raw UDP ping-pong (../shared/bench/udp_pingpong.c): the physical floor
#   (2) libcoap      in-process libcoap client (../shared/bench/coap_bench.c; PUT via coap-client)
#   (3) coapclientd  bench/coapclient_bench.c through libcoapclient, a private dbus-daemon and
#                    the built daemon; with callbacks from the library's thread, and again
#                    ("external loop" rows) from the app's thread in external-loop mode
# and, for reference, the D-Bus floor (../shared/bench/dbus_floor: sd-bus call + reply + unicast
# signal through the same dbus-daemon, the ceiling of any design that routes every request
# through dbus-daemon), and what the machine charges for a system call and for a round trip
# between two threads (bench/machine-floor.c: a request through coapclientd makes more of both
# than an in-process client), and the design floor (bench/design-floor.c: coapclientd's path, app
# -> data channel -> a relay process -> the peer and back, with no work done on it: its ratios
# are the ceiling of coapclientd's, printed beside each target; the relay runs under the daemon's
# scheduling policy). Prints a table of medians over REPS runs with the ratios to (2) and (1)
# and the targets met / not met, and writes the figures as JSON (bench/report.py).
#
#   bench/run.sh BUILDDIR [-o OUT.json]
#   bench/run.sh BUILDDIR --scale [-o OUT.json]
#       the scale scenarios alone (below)
#   bench/run.sh BUILDDIR --callgrind [N]
#       profiles instead: the daemon under callgrind over N (5000) sequential GETs, N with 32 in
#       flight, one 1 MiB GET and one PUT; prints the top functions (inclusive and self) and
#       leaves the data in BUILDDIR/callgrind.out.coapclientd
#
# Scale scenarios (placement split, one reading each, a fresh daemon for each):
#   observe  N observations held at once (N in BENCH_OBSERVE, "100 1000 3000 10000"), 100 per
#            caller process (each its own libcoapclient: a D-Bus connection and a data channel),
#            each on its own context and connected socket, against bench/obs-peer, which notifies
#            every observer once a second (NON): time until all are registered, then for the
#            peer's next 10 ticks notifications delivered (by Observe value) / sent, out-of-order
#            ones, daemon CPU (% of one core), RSS and CPU per notification, the peer's own CPU,
#            the daemon's CPU until it has freed the callers once they exited, and its RSS 3 s
#            after that (their sockets collected, the memory given back)
#   dtls     BENCH_DTLS_SESSIONS (10,000; 0: none) DTLS PSK sessions against coap-server-gnutls,
#            100 callers, each session held by an observation of /small (it does not change):
#            handshakes/s, RSS per session
#   idle     a fresh daemon's context switches over 10 s (/proc/PID/status): its wake-ups
#
# Environment: REPS (5; 1 with BENCH_QUICK=1), BENCH_QUICK=1 (smoke run: fewer requests, no
# 10,000-context figure, observe 100 and 1,000, 1,000 DTLS sessions), BENCH_PLACEMENTS ("split
# same free"), BENCH_SHARED (../shared/bench), BENCH_DAEMON_SCHED (batch: coapclientd runs as
# units/coapclientd.service runs it, CPUSchedulingPolicy=batch; other: the default policy).
# Placements: "split" = peer on CPU 0, everything on the client side (bench program, dbus-daemon,
# coapclientd) on CPU 1; "same" = everything on CPU 0; "free" = peer CPU 0, bench program CPU 1,
# dbus-daemon and coapclientd unpinned. Memory figures use "split".
# The daemon runs with --config=WORK/bench.conf, written below: the built-in [Limits] are sized
# for an embedded device and refuse 10,000 contexts (100 per caller), so the four count limits
# get the gateway-sized values the published figures were taken with (per-payload and byte
# limits stay at their defaults).
set -euo pipefail

BUILD=$(realpath "${1:?usage: bench/run.sh BUILDDIR [-o OUT.json]}")
shift
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/results/latest.json
PROFILE=0 SCALE_ONLY=0
while [ $# -gt 0 ]; do
    case $1 in
        -o) OUT=$(realpath -m "$2"); shift 2 ;;
        --scale) SCALE_ONLY=1; shift ;;
        --callgrind)
            PROFILE=5000
            shift
            if [[ ${1:-} =~ ^[0-9]+$ ]]; then PROFILE=$1; shift; fi ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1} N_SEQ=2000 UDP_SECS=1 CTX_COUNTS="10 1000" N_INFLIGHT=200
    OBSERVE_COUNTS=${BENCH_OBSERVE:-100 1000} DTLS_SESSIONS=${BENCH_DTLS_SESSIONS:-1000}
else
    REPS=${REPS:-5} N_SEQ=10000 UDP_SECS=2 CTX_COUNTS="10 1000 10000" N_INFLIGHT=1000
    OBSERVE_COUNTS=${BENCH_OBSERVE:-100 1000 3000 10000}
    DTLS_SESSIONS=${BENCH_DTLS_SESSIONS:-10000}
fi
PLACEMENTS=${BENCH_PLACEMENTS:-split same free}
case ${BENCH_DAEMON_SCHED:-batch} in
    batch) DAEMON_SCHED="chrt --batch 0" ;;
    other) DAEMON_SCHED="" ;;
    *) echo "BENCH_DAEMON_SCHED: batch or other" >&2; exit 2 ;;
esac
SHARED=${BENCH_SHARED:-$TOP/../shared/bench}
BODY=1048576
DAEMON=$BUILD/daemon/coapclientd
WORK=$(mktemp -d /tmp/coapclientd-bench.XXXXXX)
RAW=$WORK/raw.tsv
: >"$RAW"
CONF=$WORK/bench.conf
cat >"$CONF" <<'EOF_CONF'
[Limits]
MaxClientsPerCaller=256
MaxClients=16384
MaxRequestsPerClient=64
MaxRequests=65536
EOF_CONF
PEER_PID='' BUS_PID='' DAEMON_PID='' FLOOR_PID='' OBS_PID=''
# Peer ports: even ones (the DTLS peer also takes the next) below the kernel's ephemeral range,
# where the 10,000 sockets of the scale scenarios cannot be bound already
PORT_SPAN=$((($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 20002) / 2))
TIMEFORMAT='%3U %3S'

log() { printf '==> %s\n' "$*" >&2; }

stop_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
    fi
}

cleanup() {
    local rc=$?
    set +e
    stop_daemon
    for pid in "$PEER_PID" "$FLOOR_PID" "$BUS_PID" "$OBS_PID"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# the daemon holds a duplicate of every socket (the unit says LimitNOFILE=65536)
ulimit -n "$(ulimit -Hn)"

for b in coap-server-gnutls coap-client-gnutls dbus-daemon busctl taskset pkg-config cc python3; do
    command -v "$b" >/dev/null || { echo "missing $b (./dev.sh deps)" >&2; exit 1; }
done

# record PLACEMENT FIGURE IMPL VALUE: one raw reading (ignored when VALUE is empty)
record() {
    if [ -n "${4:-}" ]; then printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; fi
}
# field KEY: the value of "KEY=value" in the line on stdin
field() { sed -n "s|.*\\b$1=\\([-0-9.e+]*\\).*|\\1|p" | head -n 1; }
now() { echo "$EPOCHREALTIME"; }

log "build: baseline tools from $SHARED"
HAVE_SHARED=0
if [ -f "$SHARED/udp_pingpong.c" ] && [ -f "$SHARED/coap_bench.c" ]; then
    cc -O2 -Wall -o "$WORK/udp_pingpong" "$SHARED/udp_pingpong.c"
    # shellcheck disable=SC2046
    cc -O2 -Wall -o "$WORK/coap_bench" "$SHARED/coap_bench.c" \
        $(pkg-config --cflags --libs libcoap-3-gnutls)
    HAVE_SHARED=1
    if [ -f "$SHARED/dbus_floor/cli.c" ]; then
        for t in cli srv; do
            # shellcheck disable=SC2046
            cc -O2 -o "$WORK/floor_$t" "$SHARED/dbus_floor/$t.c" \
                $(pkg-config --cflags --libs libsystemd)
        done
    fi
else
    log "$SHARED is absent: the udp and libcoap columns are skipped"
fi

cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$WORK/obs-peer" "$TOP/bench/obs-peer.c"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -o "$WORK/machine-floor" \
    "$TOP/bench/machine-floor.c"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -o "$WORK/design-floor" \
    "$TOP/bench/design-floor.c"

log "build: coapclient_bench against $BUILD/client-lib"
HAVE_CLIENT=0
LIBDIR=$(dirname "$(find "$BUILD/client-lib" -maxdepth 1 -name 'libcoapclient.so*' 2>/dev/null \
    | head -n 1)")
if [ -x "$DAEMON" ] && [ -n "$LIBDIR" ] && [ "$LIBDIR" != . ] &&
    cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$TOP/include" \
        -o "$WORK/coapclient_bench" "$TOP/bench/coapclient_bench.c" \
        -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lcoapclient -lsystemd -pthread; then
    HAVE_CLIENT=1
else
    log "coapclientd or libcoapclient not built in $BUILD: the coapclientd column is skipped"
fi

# --- the peer, the bus and the daemon --------------------------------------------------------
start_peer() {
    [ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null
    [ -n "$FLOOR_PID" ] && kill "$FLOOR_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
    PEER_PID=
    for _ in $(seq 1 50); do
        PORT=$(((RANDOM % PORT_SPAN) * 2 + 20000))
        taskset -c 0 coap-server-gnutls -A 127.0.0.1 -p "$PORT" -d 10 >"$WORK/peer.log" 2>&1 &
        PEER_PID=$!
        sleep 0.2
        kill -0 "$PEER_PID" 2>/dev/null && break
        PEER_PID=
    done
    [ -n "$PEER_PID" ] || { echo "coap-server-gnutls did not start" >&2; exit 1; }
    URI=coap://127.0.0.1:$PORT
    # /small: 16 bytes; /example_data: the 1 MiB body (coap-server replaces it on PUT)
    coap-client-gnutls -B 5 -m put -e 0123456789abcdef "$URI/small"
    coap-client-gnutls -B 10 -m put -b 1024 -f "$WORK/body.bin" "$URI/example_data"
    [ "$(coap-client-gnutls -B 5 -m get "$URI/small")" = 0123456789abcdef ] ||
        { echo "peer not populated" >&2; exit 1; }
}

start_bus() {
    read -r BUS_ADDR BUS_PID < <(dbus-daemon --config-file="$TOP/tests/data/test-bus.conf" \
        --fork --print-address=1 --print-pid=1 | paste -sd' ')
    export COAPCLIENTD_BUS_ADDRESS=$BUS_ADDR
}

start_daemon() { # CPU
    stop_daemon
    # shellcheck disable=SC2086
    taskset -c "$1" $DAEMON_SCHED ${DAEMON_WRAPPER:-} "$DAEMON" --bus-address="$BUS_ADDR" \
        --config="$CONF" \
        >>"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 400); do
        busctl --address="$BUS_ADDR" status org.coapclientd.CoapClient1 >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "coapclientd did not come up:" >&2
    tail -n 20 "$WORK/daemon.log" >&2
    exit 1
}

place() { # PLACEMENT: pins the running peer, bus and daemon; sets CLIENT_CPU
    local side=1
    CLIENT_CPU=1
    case $1 in
        same) side=0 CLIENT_CPU=0 ;;
        free) side=0,1 ;;
    esac
    taskset -a -p -c 0 "$PEER_PID" >/dev/null
    [ -n "$BUS_PID" ] && taskset -a -p -c "$side" "$BUS_PID" >/dev/null
    [ -n "$DAEMON_PID" ] && taskset -a -p -c "$side" "$DAEMON_PID" >/dev/null
    [ -n "$FLOOR_PID" ] && taskset -a -p -c "$side" "$FLOOR_PID" >/dev/null
    return 0
}

vmrss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

CB=$WORK/coapclient_bench
cb() { # ARGS...: runs the bench client on CLIENT_CPU; prints its result lines
    taskset -c "$CLIENT_CPU" "$CB" --daemon-pid "$DAEMON_PID" --bus-pid "$BUS_PID" "$@" \
        127.0.0.1 "$PORT" 2>>"$WORK/client.log"
}

head -c "$BODY" /dev/zero | tr '\0' 'x' >"$WORK/body.bin"
start_peer

if [ "$PROFILE" != 0 ]; then
    [ "$HAVE_CLIENT" = 1 ] || { echo "--callgrind needs the daemon and libcoapclient" >&2; exit 1; }
    CG_OUT=$BUILD/callgrind.out.coapclientd
    mkdir -p "$(dirname "$CG_OUT")"
    start_bus
    DAEMON_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=$CG_OUT" start_daemon 1
    place split
    log "callgrind: $PROFILE sequential GETs, $PROFILE with 32 in flight, 1 MiB GET and PUT"
    cb seq -n "$PROFILE"
    cb window -n "$PROFILE" -w 32
    cb get -s "$BODY" -b 1024 -p example_data
    cb put -s "$BODY" -b 1024 -p example_data
    stop_daemon
    callgrind_annotate --inclusive=yes "$CG_OUT" 2>/dev/null | head -n 45
    callgrind_annotate "$CG_OUT" 2>/dev/null | head -n 40
    log "callgrind data: $CG_OUT (callgrind_annotate / kcachegrind)"
    exit 0
fi
if [ "$HAVE_CLIENT" = 1 ]; then
    start_bus
    start_daemon 1
    if [ -x "$WORK/floor_srv" ]; then
        "$WORK/floor_srv" "$BUS_ADDR" >/dev/null &
        FLOOR_PID=$!
        for _ in $(seq 1 100); do
            busctl --address="$BUS_ADDR" status t.srv >/dev/null 2>&1 && break
            sleep 0.05
        done
    fi
fi
log "machine: $(nproc) CPUs, $(uname -r), libcoap $(dpkg-query -W -f='${Version}' libcoap3)," \
    "peer port $PORT, REPS=$REPS, placements: $PLACEMENTS"

# --- request rates, latency, block-wise throughput -------------------------------------------
RATE_PLACEMENTS=$PLACEMENTS
[ "$SCALE_ONLY" = 1 ] && RATE_PLACEMENTS=
for P in $RATE_PLACEMENTS; do
    place "$P"
    for rep in $(seq 1 "$REPS"); do
        log "placement $P, run $rep/$REPS"
        line=$(taskset -c "$CLIENT_CPU" "$WORK/machine-floor")
        record "$P" floor_syscall_ns machine "$(field syscall_ns <<<"$line")"
        record "$P" floor_thread_rt_us machine "$(field thread_rt_us <<<"$line")"
        if [ "$HAVE_SHARED" = 1 ]; then
            for w in 1 32; do
                r=$("$WORK/udp_pingpong" "$UDP_SECS" "$w" 0 "$CLIENT_CPU" | field rate)
                record "$P" "rps_w$w" udp "$r"
            done
            for w in 1 32; do
                # bash's time: the CPU of the whole libcoap client process, for the CPU rows
                { time taskset -c "$CLIENT_CPU" "$WORK/coap_bench" -n "$N_SEQ" -w "$w" -e 16 \
                    "$URI/small" >"$WORK/out" 2>/dev/null; } 2>"$WORK/time" || true
                record "$P" "rps_w$w" libcoap "$(field rate <"$WORK/out")"
                record "$P" "app_us_w$w" libcoap "$(awk -v n="$N_SEQ" \
                    'END {if (NF == 2) print ($1 + $2) * 1e6 / n}' "$WORK/time")"
            done
            r=$(taskset -c "$CLIENT_CPU" "$WORK/coap_bench" -n 1 -b 1024 -e "$BODY" \
                "$URI/example_data" | field MB/s) || true
            record "$P" get_mbps libcoap "$r"
            # libcoap has no in-process PUT tool here: coap-client's wall time for the 1 MiB
            # Block1 PUT minus its wall time for a one-shot small GET (process start-up).
            t0=$(now)
            taskset -c "$CLIENT_CPU" coap-client-gnutls -B 5 -m get "$URI/small" >/dev/null
            t1=$(now)
            taskset -c "$CLIENT_CPU" coap-client-gnutls -B 20 -m put -b 1024 -f "$WORK/body.bin" \
                "$URI/example_data"
            t2=$(now)
            record "$P" put_mbps libcoap "$(python3 -c \
                "print(round($BODY / (($t2 - $t1) - ($t1 - $t0)) / 1e6, 2))")"
        fi
        # coapclientd's path with nothing done on it: the ceiling of its ratios
        for x in "" _x; do
            flag=()
            [ -n "$x" ] && flag+=(-x)
            [ "$P" = free ] && flag+=(-f)
            [ -n "$DAEMON_SCHED" ] && flag+=(-b)
            for w in 1 32; do
                line=$(taskset -c "$CLIENT_CPU" "$WORK/design-floor" "${flag[@]}" -n "$N_SEQ" \
                    -w "$w" 127.0.0.1 "$PORT") || true
                record "$P" "rps_w$w$x" floor "$(field rate <<<"$line")"
                record "$P" "app_us_w$w$x" floor "$(field app_cpu_us <<<"$line")"
                record "$P" "cpu_us_w$w$x" floor "$(field relay_cpu_us <<<"$line")"
            done
        done
        if [ -n "$FLOOR_PID" ]; then
            for w in 1 32; do
                r=$(taskset -c "$CLIENT_CPU" "$WORK/floor_cli" "$BUS_ADDR" "$N_SEQ" "$w" 0 |
                    field rate) || true
                record "$P" "rps_w$w" dbus "$r"
            done
        fi
        # the library's own thread makes the callbacks (Zephyr's way), then (figures with _x)
        # the app's thread in external-loop mode (-x), as a single-threaded libcoap client does
        for x in "" _x; do
            [ "$HAVE_CLIENT" = 1 ] || break
            flag=()
            [ -n "$x" ] && flag=(-x)
            for w in 1 32; do
                line=$(cb window "${flag[@]}" -n "$N_SEQ" -w "$w") || true
                record "$P" "rps_w$w$x" coapclientd "$(field rate <<<"$line")"
                record "$P" "cpu_us_w$w$x" coapclientd "$(field daemon_cpu_us <<<"$line")"
                record "$P" "bus_us_w$w$x" coapclientd "$(field bus_cpu_us <<<"$line")"
                record "$P" "app_us_w$w$x" coapclientd "$(field app_cpu_us <<<"$line")"
                if [ "$w" = 1 ]; then
                    record "$P" "lat_p50_us$x" coapclientd "$(field p50_us <<<"$line")"
                    record "$P" "lat_p99_us$x" coapclientd "$(field p99_us <<<"$line")"
                fi
            done
            line=$(cb get "${flag[@]}" -s "$BODY" -b 1024 -p example_data) || true
            record "$P" "get_mbps$x" coapclientd "$(field MB/s <<<"$line")"
            line=$(cb put "${flag[@]}" -s "$BODY" -b 1024 -p example_data) || true
            record "$P" "put_mbps$x" coapclientd "$(field MB/s <<<"$line")"
        done
    done
done

# --- memory and CPU at scale (fresh daemon for each reading, fresh peer first) ----------------
if [ "$HAVE_CLIENT" = 1 ] && [ "$SCALE_ONLY" = 0 ]; then
    start_peer
    place split
    for rep in $(seq 1 "$REPS"); do
        log "memory, run $rep/$REPS"
        start_daemon 1
        sleep 0.2
        record split rss_idle_kib coapclientd "$(vmrss_kib "$DAEMON_PID")"
        for n in $CTX_COUNTS; do
            procs=$((n < 100 ? 1 : 100))
            start_daemon 1
            line=$(cb contexts -c "$n" -P "$procs" -n "$N_SEQ") || true
            record split "rss_ctx_$n" coapclientd "$(field rss_per_item_b <<<"$line")"
            record split "cpu_us_ctx_$n" coapclientd "$(field daemon_cpu_us <<<"$line")"
        done
        start_daemon 1
        limit=$(busctl --address="$BUS_ADDR" get-property org.coapclientd.CoapClient1 \
            /org/coapclientd/CoapClient1 org.coapclientd.CoapClient1.Manager \
            MaxRequestsPerClient | awk '{print $2}')
        line=$(cb inflight -c "$N_INFLIGHT" -L "$limit" -p 'async?5') || true
        record split rss_inflight coapclientd "$(field rss_per_item_b <<<"$line")"
    done
fi

# --- scale: observations, DTLS sessions, idle wake-ups (split, one reading each) --------------
start_obs_peer() {
    [ -n "$OBS_PID" ] && kill "$OBS_PID" 2>/dev/null && wait "$OBS_PID" 2>/dev/null
    OBS_PID=
    for _ in $(seq 1 50); do
        OBS_PORT=$(((RANDOM % PORT_SPAN) * 2 + 20001))
        rm -f "$WORK/obs.stats"
        taskset -c 0 "$WORK/obs-peer" -p "$OBS_PORT" -S "$WORK/obs.stats" 2>>"$WORK/peer.log" &
        OBS_PID=$!
        sleep 0.2
        kill -0 "$OBS_PID" 2>/dev/null && [ -s "$WORK/obs.stats" ] && return 0
        OBS_PID=
    done
    echo "obs-peer did not start" >&2
    exit 1
}

# cpu_ms PID: the CPU time of the process's threads so far, in ms, from the scheduler's ns count
# (/proc/PID/stat's utime + stime are whole 10 ms ticks)
cpu_ms() { cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {print int(ns / 1e6)}'; }

# callers_gone_ms: the daemon's CPU from now until it has freed every caller (the callers
# have exited), at most 60 s
callers_gone_ms() {
    local t0 n
    t0=$(cpu_ms "$DAEMON_PID")
    for _ in $(seq 1 600); do
        n=$(busctl --address="$BUS_ADDR" get-property org.coapclientd.CoapClient1 \
            /org/coapclientd/CoapClient1 org.coapclientd.CoapClient1.Manager Callers 2>/dev/null)
        [ "$n" = "u 0" ] && break
        sleep 0.1
    done
    echo $(($(cpu_ms "$DAEMON_PID") - t0))
}

# ctxt_switches PID: voluntary + involuntary context switches so far
ctxt_switches() { awk '/ctxt_switches/ {n += $2} END {print n}' "/proc/$1/status"; }

if [ "$HAVE_CLIENT" = 1 ]; then
    place split
    for n in $OBSERVE_COUNTS; do
        log "scale: $n observations"
        start_obs_peer
        start_daemon 1
        procs=$(((n + 99) / 100))
        line=$(taskset -c "$CLIENT_CPU" "$CB" --daemon-pid "$DAEMON_PID" --peer-pid "$OBS_PID" \
            observe -c "$n" -P "$procs" -S "$WORK/obs.stats" -t 10 -p obs 127.0.0.1 "$OBS_PORT" \
            2>>"$WORK/client.log") || true
        leave=$(callers_gone_ms)
        # what the daemon keeps once they are gone: its sockets linger, then are collected
        sleep 3
        after=$(vmrss_kib "$DAEMON_PID")
        log "$line leave_cpu_ms=$leave rss_after_kib=$after fds_after=$(find "/proc/$DAEMON_PID/fd" -mindepth 1 | wc -l)"
        record split "obs_leave_cpu_ms_$n" coapclientd "$leave"
        record split "obs_rss_after_kib_$n" coapclientd "$after"
        record split "obs_reg_s_$n" coapclientd "$(field register_s <<<"$line")"
        record split "obs_registered_$n" coapclientd "$(field registered <<<"$line")"
        record split "obs_expected_$n" coapclientd "$(field expected <<<"$line")"
        record split "obs_delivered_$n" coapclientd "$(field delivered <<<"$line")"
        record split "obs_ooo_$n" coapclientd "$(field out_of_order <<<"$line")"
        record split "obs_cpu_pct_$n" coapclientd "$(field daemon_cpu_pct <<<"$line")"
        record split "obs_rss_kib_$n" coapclientd "$(field daemon_rss_kib <<<"$line")"
        record split "obs_us_$n" coapclientd "$(field cpu_per_notification_us <<<"$line")"
        record split "obs_peer_cpu_pct_$n" coapclientd "$(field peer_cpu_pct <<<"$line")"
    done
    [ -n "$OBS_PID" ] && kill "$OBS_PID" && wait "$OBS_PID" 2>/dev/null
    OBS_PID=
fi
if [ "$HAVE_CLIENT" = 1 ] && [ "$DTLS_SESSIONS" != 0 ]; then
    log "scale: $DTLS_SESSIONS DTLS sessions"
    kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
    PEER_PID=
    for _ in $(seq 1 50); do
        PORT=$(((RANDOM % PORT_SPAN) * 2 + 20000))
        taskset -c 0 coap-server-gnutls -A 127.0.0.1 -p "$PORT" -k secretPSK -h CoAP -d 10 \
            >>"$WORK/peer.log" 2>&1 &
        PEER_PID=$!
        sleep 0.2
        # it serves coap:// even when it could not bind coaps:// (PORT + 1): ask there
        kill -0 "$PEER_PID" 2>/dev/null &&
            coap-client-gnutls -B 5 -k secretPSK -u CoAP -m put -e 0123456789abcdef \
                "coaps://127.0.0.1:$((PORT + 1))/small" && break
        kill "$PEER_PID" 2>/dev/null && wait "$PEER_PID" 2>/dev/null
        PEER_PID=
    done
    [ -n "$PEER_PID" ] || { echo "the DTLS peer did not start" >&2; exit 1; }
    start_daemon 1
    line=$(taskset -c "$CLIENT_CPU" "$CB" --daemon-pid "$DAEMON_PID" dtls -c "$DTLS_SESSIONS" \
        -P $((DTLS_SESSIONS < 100 ? DTLS_SESSIONS : 100)) -p small 127.0.0.1 $((PORT + 1)) 2>>"$WORK/client.log") || true
    log "$line"
    record split dtls_up coapclientd "$(field up <<<"$line")"
    record split dtls_hs_per_s coapclientd "$(field handshakes_per_s <<<"$line")"
    record split dtls_rss_b coapclientd "$(field rss_per_session_b <<<"$line")"
    record split dtls_cpu_us coapclientd "$(field daemon_cpu_us <<<"$line")"
    record split dtls_peer_cpu_s coapclientd "$(cpu_ms "$PEER_PID" | awk '{print $1 / 1000}')"
fi
if [ "$HAVE_CLIENT" = 1 ]; then
    log "scale: idle daemon, 10 s"
    start_daemon 1
    sleep 1
    c0=$(ctxt_switches "$DAEMON_PID")
    sleep 10
    record split idle_wakeups coapclientd "$(($(ctxt_switches "$DAEMON_PID") - c0))"
    stop_daemon
fi

mkdir -p "$(dirname "$OUT")"
python3 "$TOP/bench/report.py" "$RAW" "$OUT" "$PLACEMENTS" "$REPS" "$HAVE_SHARED" "$HAVE_CLIENT" \
    "${BENCH_DAEMON_SCHED:-batch}"
if [ -s "$WORK/client.log" ]; then
    log "coapclient_bench reported (last lines):"
    tail -n 5 "$WORK/client.log" >&2
fi
