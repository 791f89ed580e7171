#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/fuzz.sh [SECONDS] [TARGET...]
# Builds the libFuzzer targets with clang (ASan/UBSan, every object coverage-instrumented) in
# build-fuzz/ and runs each TARGET (default: all of them) for SECONDS (default 60) on a copy of
# tests/fuzz/corpus/TARGET/. New inputs stay in build-fuzz/fuzz-work/TARGET/corpus (copy the
# useful ones into the corpus by hand); crashes go to tests/fuzz/crashes/ and must become
# regression inputs in the corpus once fixed. Exits non-zero when a target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
BUILD=$TOP/build-fuzz
WORK=$BUILD/fuzz-work
CRASHES=$TOP/tests/fuzz/crashes

duration=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    duration=$1
    shift
fi

log() { printf '==> %s\n' "$*" >&2; }

args=(-Dfuzz=true -Ddocs=false "-Db_sanitize=address,undefined" -Db_lundef=false
      "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all")
if [ -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup --reconfigure "$BUILD" "${args[@]}" >/dev/null
else
    CC=clang meson setup "$BUILD" "${args[@]}" >/dev/null
fi

# name -> path of every libFuzzer binary meson knows (fuzz-NAME, not the replay drivers).
declare -A binaries
while read -r name path; do
    binaries[$name]=$path
done < <(meson introspect --targets "$BUILD" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    n = t["name"]
    if t["type"] == "executable" and n.startswith("fuzz-") and not n.endswith("-replay"):
        print(n[len("fuzz-"):], t["filename"][0])
')

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(printf '%s\n' "${!binaries[@]}" | sort)
fi
[ ${#targets[@]} -gt 0 ] || { log "no fuzz targets"; exit 1; }

paths=()
for t in "${targets[@]}"; do
    [ -n "${binaries[$t]:-}" ] || { log "unknown fuzz target: $t"; exit 2; }
    paths+=("$(realpath --relative-to="$BUILD" "${binaries[$t]}")")
done
log "building: ${targets[*]}"
ninja -C "$BUILD" "${paths[@]}" >/dev/null

mkdir -p "$CRASHES"
failed=0
summary=()
for t in "${targets[@]}"; do
    work=$WORK/$t
    rm -rf "$work"
    mkdir -p "$work/corpus"
    if [ -d "$TOP/tests/fuzz/corpus/$t" ]; then
        cp -a "$TOP/tests/fuzz/corpus/$t/." "$work/corpus/"
    fi
    seeds=$(find "$work/corpus" -type f | wc -l)
    log "fuzzing $t for ${duration}s ($seeds seed inputs)"
    rc=0
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "${binaries[$t]}" -max_total_time="$duration" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$CRASHES/$t-" "$work/corpus" >"$work/log" 2>&1 || rc=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
    # the last status line, e.g. "#123456 DONE cov: 412 ft: 1290 corp: 87/2011b ..."
    status=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$status")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$status")
    total=$(find "$work/corpus" -type f | wc -l)
    line="$t: ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, corpus $seeds -> $total"
    if [ "$rc" -ne 0 ]; then
        failed=1
        line+=", FAILED (exit $rc; see $work/log and $CRASHES/)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$work/log" >&2 || true
    fi
    summary+=("$line")
done

printf '%s\n' "${summary[@]}"
exit $failed
