#!/usr/bin/env bash
# Start Celeris: an embedded redis-server (unless CELERIS_BROKER_URL is set),
# one worker and the frontend on :8000. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(swift build -c release --show-bin-path)
PORT=${PORT:-8000}
QUEUES=${QUEUES:-celery}
# The only directory document tasks may read (--documents-root): the walkthrough's corpus.
DOCS=${DOCUMENTS_ROOT:-/tmp/sample-docs}
mkdir -p "$DOCS"
BROKER=${CELERIS_BROKER_URL:-}
RUN_DIR=$(mktemp -d /tmp/celeris-run.XXXXXX)
pids=()

# Children run in their own sessions, so Ctrl-C reaches only this script,
# which stops them in order: frontend, worker (warm: running tasks finish,
# up to GRACE seconds), then redis.
GRACE=${GRACE:-10}
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping (frontend, then worker with up to ${GRACE}s for running tasks, then redis)..."
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq $((GRACE * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null  # second TERM: cold shutdown
    wait "$pid" 2>/dev/null || true
  done
  echo "stopped"
}
trap stop_all INT TERM EXIT

if [ -z "$BROKER" ]; then
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  setsid redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$RUN_DIR/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  BROKER="redis://127.0.0.1:$RPORT/0"
  echo "embedded redis-server on 127.0.0.1:$RPORT"
fi

setsid "$BIN/celeris-worker" -b "$BROKER" -Q "$QUEUES" -n "celeris@%h" &
pids+=($!)
# The document workflow's stages on their own queues (POST /process).
setsid "$BIN/celeris-worker" -b "$BROKER" -Q fetch_queue,extract_queue,compare_queue -n "documents@%h" \
  --documents-root "$DOCS" &
pids+=($!)
setsid "$BIN/celeris-frontend" -b "$BROKER" --port "$PORT" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.05; done

cat <<MSG

Celeris is up: frontend http://localhost:$PORT, broker $BROKER, documents root $DOCS
Open http://localhost:$PORT/ in a browser (the dashboard), or try, in another terminal:
  curl -X POST http://localhost:$PORT/tasks
  curl -X POST 'http://localhost:$PORT/tasks?task_length=3'
  curl -X POST http://localhost:$PORT/tasks -H 'Content-Type: application/json' -d '{"task": "add", "args": [2, 3]}'
  curl http://localhost:$PORT/status/<task_id>
  curl 'http://localhost:$PORT/status/<task_id>?wait=30'    # answers when the task is done
  python3 scripts/make_corpus.py $DOCS 50 --pairs 3 --broken
  curl -X POST 'http://localhost:$PORT/process?blob_path=$DOCS'
  wscat -c ws://localhost:$PORT/ws                     # npm install -g wscat
  .venv/bin/python -m websockets ws://localhost:$PORT/ws   # same, without node
Ctrl-C stops everything.

MSG
wait
