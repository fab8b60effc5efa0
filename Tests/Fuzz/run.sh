#!/usr/bin/env bash
# Build the CEventShim fuzzers with libFuzzer + ASan + UBSan and run each for
# SECONDS (default 60) from the committed seed corpus. Exits non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
CC=${FUZZ_CC:-$( [ -x /opt/swift/usr/bin/clang ] && echo /opt/swift/usr/bin/clang || echo clang )}
OUT=.build/fuzz
mkdir -p "$OUT"
SHIM=Sources/CEventShim
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$SHIM/include"
$CC $FLAGS Tests/Fuzz/http_fuzzer.c $SHIM/http_server.c $SHIM/websocket_frame.c $SHIM/utf8.c $SHIM/sha1.c $SHIM/loop.c \
  -levent -lhttp_parser -o "$OUT/http_fuzzer" 2> >(grep -v "Cannot export local symbol" >&2)
$CC $FLAGS Tests/Fuzz/ws_frame_fuzzer.c $SHIM/websocket_frame.c $SHIM/utf8.c $SHIM/sha1.c -o "$OUT/ws_frame_fuzzer" \
  2> >(grep -v "Cannot export local symbol" >&2)
for name in http ws_frame; do
  corpus="$OUT/corpus-$name"
  rm -rf "$corpus" "$OUT/$name-"crash-* && mkdir -p "$corpus"
  cp Tests/Fuzz/corpus/${name%_frame}/* "$corpus"/
  echo "fuzzing $name for ${SECONDS_EACH}s (seeds: $(ls Tests/Fuzz/corpus/${name%_frame} | wc -l))"
  log="$OUT/$name.log"
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$OUT/${name}_fuzzer" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$OUT/$name-" \
    "$corpus" > "$log" 2>&1 || true
  grep -E "^(Done|stat::number_of_executed_units|SUMMARY)" "$log" || true
  if grep -q "SUMMARY: \|ERROR: libFuzzer\|deadly signal" "$log" || ls "$OUT/$name-"crash-* >/dev/null 2>&1; then
    echo "fuzz finding in $name:"; grep -A12 "runtime error\|ERROR:" "$log" | head -40; exit 1
  fi
done
echo "fuzzing found nothing"
