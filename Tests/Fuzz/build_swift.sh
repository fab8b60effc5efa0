#!/usr/bin/env bash
# Build the Swift fuzz targets (Tests/Fuzz/Swift/*Fuzzer.swift) with libFuzzer + ASan:
# the FastCore sources they reach are compiled once into a static library with
# coverage, and each target links it. swiftc has no UBSan, but Swift traps on
# overflow, out-of-range indexing and force-unwrapped nil, which libFuzzer reports
# as a deadly signal. Prints the built fuzzers' paths.
set -euo pipefail
cd "$(dirname "$0")/../.."
SWIFTC=${FUZZ_SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
OUT=.build/fuzz/swift
mkdir -p "$OUT/modules"
S=Sources/FastCore
# What the targets reach: the JSON reader and writer, base64, times, the kombu envelope,
# the task message (decode and encode), canvases (a message's follow-ups, as the worker
# decodes and sends them), rate limits, remote-control requests and task submissions;
# and what those sources name (a new dependency of theirs is added here).
SOURCES=(
  $S/Support/{JSON,JSONParseError,JSONParser,JSONReader,Base64,ByteAppending,FastUUID,StringReuse}.swift
  $S/Celery/{CeleryTime,ControlRequest,EnvelopeDecoder,KombuEnvelope,PoisonMessage,PythonRepr}.swift
  $S/Celery/{TaskMessage,TaskMessage+Decode,TaskMessage+Encode,TaskRoutes}.swift
  $S/Celery/{Canvas,Signature,TaskFailure,TaskFailureText,RateLimit,TaskProducer,ResultRecord,TaskState}.swift
  $S/Broker/QueueKeys.swift $S/Redis/{RESP,RedisReply,RedisValue,RedisError}.swift
  $S/Frontend/TaskSubmission.swift $S/HTTP/HTTPRequest.swift $S/Client/{SendOptions,CelerisClientError}.swift
)
# The CEventShim functions those call (hiredis' reply reader), with ASan and coverage.
C_SOURCES=(Sources/CEventShim/{resp,redis_reply}.c)
CC=${FUZZ_CC:-$( [ -x /opt/swift/usr/bin/clang ] && echo /opt/swift/usr/bin/clang || echo clang )}
FLAGS=(-O -g -parse-as-library -sanitize=fuzzer,address -I "$OUT/modules"
  -Xcc -fmodule-map-file="$OUT/modules/CEventShim.modulemap")
quiet() { grep -v -E "^$|warning:|^ *\||^ *[0-9]+ \|" >&2 || true; }

# CEventShim's header, as a module.
cat > "$OUT/modules/CEventShim.modulemap" <<MAP
module CEventShim {
  header "$PWD/Sources/CEventShim/include/CEventShim.h"
  export *
}
MAP

# swift-log (ControlRequest imports it), from the package's checkout, without coverage.
LOG=.build/checkouts/swift-log/Sources/Logging
[ -d "$LOG" ] || swift package resolve >&2
if [ ! -f "$OUT/libLogging.a" ] || [ -n "$(find "$LOG" -name '*.swift' -newer "$OUT/libLogging.a")" ]; then
  "$SWIFTC" -O -parse-as-library -module-name Logging -package-name swift_log -emit-library -static \
    -emit-module -emit-module-path "$OUT/modules/Logging.swiftmodule" -o "$OUT/libLogging.a" \
    $(find "$LOG" -name '*.swift') 2> >(quiet)
fi

C_OBJECTS=()
for c in "${C_SOURCES[@]}"; do
  obj="$OUT/$(basename "$c" .c).o"
  "$CC" -g -O1 -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -ISources/CEventShim/include -c "$c" -o "$obj"
  C_OBJECTS+=("$obj")
done

"$SWIFTC" "${FLAGS[@]}" -module-name FastCore -enable-testing -emit-library -static -emit-module \
  -emit-module-path "$OUT/modules/FastCore.swiftmodule" -o "$OUT/libFastCore.a" "${SOURCES[@]}" 2> >(quiet)

for entry in Tests/Fuzz/Swift/*Fuzzer.swift; do
  name=$(basename "$entry" .swift)
  "$SWIFTC" "${FLAGS[@]}" -module-name "$name" "$entry" "${C_OBJECTS[@]}" -L "$OUT" -lFastCore -lLogging -lhiredis -o "$OUT/$name" 2> >(quiet)
  echo "$OUT/$name"
done
