#!/bin/sh
# ns per beat envelope, release build: BeatMessage.message + BeatMessage.envelope (what celeris-beat
# builds per send) against BeatEnvelope.bytes / .write (the per-entry template), 3 runs per entry.
# Builds celeris-beat in release (FastCore with it), then links perf/beat_envelope_main.swift against
# the same objects. Usage: perf/beat_envelope.sh [ROUNDS]   (default 20000 envelopes per figure)
set -eu
cd "$(dirname "$0")/.."
swift build -c release --product celeris-beat | tail -1
BIN=$(swift build -c release --show-bin-path)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
grep -v '/Beat.build/' "$BIN/celeris-beat.product/Objects.LinkFileList" >"$OUT/objects"
maps=""
for m in "$BIN"/*.build/module.modulemap; do maps="$maps -Xcc -fmodule-map-file=$m"; done
# shellcheck disable=SC2086
swiftc -O -module-name BeatEnvelopeBench -I "$BIN/Modules" $maps -c perf/beat_envelope_main.swift -o "$OUT/main.o"
echo "$OUT/main.o" >>"$OUT/objects"
swiftc -lstdc++ -L "$BIN" -o "$OUT/beat_envelope" -emit-executable -Xlinker --gc-sections "@$OUT/objects" \
    -levent -lhiredis -lhttp_parser -luring
"$OUT/beat_envelope" "${1:-20000}"
