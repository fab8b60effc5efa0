#!/bin/bash
# System calls by name during a drain, per broker transport: a worker drains
# pre-queued noop tasks from its own redis-server on 127.0.0.1; `perf trace -s`
# watches it for 2 s mid-drain; the tasks done in that window are printed beside.
#   perf/syscall_mix.sh [BIN=.build/release]      (root, for perf trace)
set -euo pipefail
BIN=${1:-.build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${CELERIS_PYTHON:-$ROOT/.venv/bin/python}
PORT=$($PY -c "import sys; sys.path.insert(0, '$ROOT/bench'); from benchlib import free_port; print(free_port())")
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "/tmp/syscall-mix-$PORT.pid" >/dev/null
trap 'kill $(cat /tmp/syscall-mix-$PORT.pid) 2>/dev/null || true' EXIT
sleep 0.3
for io in uring socket; do
  echo "queueing 300000 noop tasks ..."
  $PY -c "import sys, redis; sys.path.insert(0, '$ROOT/bench'); from drain_bench import fill; r = redis.Redis(port=$PORT); r.flushall(); fill(r, 300000)" >/dev/null
  "$BIN/celeris-worker" -b "redis://127.0.0.1:$PORT/0" -c 2 --loglevel warning --prefetch-multiplier 64 --io $io &
  W=$!
  sleep 1
  L0=$(redis-cli -p "$PORT" llen celery)
  echo "== --io $io: perf trace -s for 2 s ..."
  timeout -s INT 2 perf trace -s -p $W 2>&1 | grep -E "^\s+[a-z_0-9]+\s+[0-9]+ " | awk '{c[$1]+=$2} END {for (k in c) print c[k], k}' | sort -rn | head -8 > /tmp/syscall-mix-$io.txt || true
  L1=$(redis-cli -p "$PORT" llen celery)
  awk -v n=$((L0 - L1)) '{printf "  %-16s %7d  %.3f per task\n", $2, $1, $1 / n}' /tmp/syscall-mix-$io.txt
  echo "  ($((L0 - L1)) tasks in the window)"
  kill -INT $W; wait $W 2>/dev/null || true
done
