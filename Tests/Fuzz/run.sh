#!/usr/bin/env bash
# Build the fuzzers and run each from its committed seed corpus; exits non-zero on a finding.
#   run.sh [C_SECONDS [SWIFT_SECONDS]]
# C targets (CEventShim's HTTP and WebSocket readers, libFuzzer + ASan + UBSan) run
# C_SECONDS each (default 60); Swift targets (Tests/Fuzz/Swift/*Fuzzer.swift, libFuzzer +
# ASan: JSON, base64, Celery times, kombu envelopes and task messages, remote-control
# requests, task submissions) run SWIFT_SECONDS each (default 30).
# FUZZ_ONLY=<regex> runs only the targets whose name matches (e.g. FUZZ_ONLY=envelope).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
SWIFT_SECONDS_EACH=${2:-30}
ONLY=${FUZZ_ONLY:-.}
CC=${FUZZ_CC:-$( [ -x /opt/swift/usr/bin/clang ] && echo /opt/swift/usr/bin/clang || echo clang )}
OUT=.build/fuzz
mkdir -p "$OUT"
SHIM=Sources/CEventShim
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$SHIM/include"
$CC $FLAGS Tests/Fuzz/http_fuzzer.c $SHIM/http_server.c $SHIM/websocket_frame.c $SHIM/utf8.c $SHIM/sha1.c $SHIM/loop.c \
  -levent -lhttp_parser -o "$OUT/http_fuzzer" 2> >(grep -v "Cannot export local symbol" >&2)
$CC $FLAGS Tests/Fuzz/ws_frame_fuzzer.c $SHIM/websocket_frame.c $SHIM/utf8.c $SHIM/sha1.c -o "$OUT/ws_frame_fuzzer" \
  2> >(grep -v "Cannot export local symbol" >&2)
echo "building the Swift fuzz targets"
bash Tests/Fuzz/build_swift.sh >/dev/null

# fuzz NAME BINARY CORPUS_DIR SECONDS
fuzz() {
  local name=$1 binary=$2 seeds=$3 seconds=$4
  [[ $name =~ $ONLY ]] || return 0
  local corpus="$OUT/corpus-$name" log="$OUT/$name.log"
  rm -rf "$corpus" "$OUT/$name-"crash-* "$OUT/$name-"timeout-* "$OUT/$name-"oom-* && mkdir -p "$corpus"
  cp "$seeds"/* "$corpus"/
  echo "fuzzing $name for ${seconds}s (seeds: $(ls "$seeds" | wc -l))"
  # SWIFT_BACKTRACE: the Swift runtime's crash handler would read memory ASan then reports
  # (a false finding); libFuzzer prints the stack of a Swift trap itself.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/$name-" "$corpus" > "$log" 2>&1 || true
  grep -E "^(Done|stat::number_of_executed_units|SUMMARY)" "$log" || true
  if grep -q "SUMMARY: \|ERROR: libFuzzer\|deadly signal" "$log" || ls "$OUT/$name-"{crash,timeout,oom}-* >/dev/null 2>&1; then
    echo "fuzz finding in $name (input: $(ls "$OUT/$name-"{crash,timeout,oom}-* 2>/dev/null | head -1)):"
    grep -B2 -A14 "runtime error\|ERROR:\|Fatal error\|runtime failure" "$log" | head -40
    exit 1
  fi
}

fuzz http "$OUT/http_fuzzer" Tests/Fuzz/corpus/http "$SECONDS_EACH"
fuzz ws_frame "$OUT/ws_frame_fuzzer" Tests/Fuzz/corpus/ws "$SECONDS_EACH"
for entry in Tests/Fuzz/Swift/*Fuzzer.swift; do
  target=$(basename "$entry" Fuzzer.swift)
  name=$(sed -E 's/([a-z0-9])([A-Z])/\1_\2/g' <<< "$target" | tr 'A-Z' 'a-z')
  fuzz "$name" "$OUT/swift/${target}Fuzzer" "Tests/Fuzz/corpus/$name" "$SWIFT_SECONDS_EACH"
done
echo "fuzzing found nothing"
