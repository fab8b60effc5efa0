#!/usr/bin/env python3
"""Instructions per HTTP request in the frontend, counted by callgrind: a figure this VM's
drifting speed does not move, for A/B of a frontend change (the HTTP bench's req/s swings
by a third from run to run here).

For each build: a redis-server on a free loopback port, `celeris-frontend --loops 1` under
callgrind, then N1 and N2 keep-alive requests of each kind (`GET /status/<id>`,
`POST /tasks`) from one client; the difference of the two totals over N2 - N1 is the
frontend's instructions per request (start-up and shutdown cancel out).

    .venv/bin/python perf/frontend_instructions.py --bin <old build> --bin .build/release
"""
import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from instructions import total_instructions  # noqa: E402  (puts bench/ on the path)
from benchlib import free_port, wait_http  # noqa: E402


def requests(port, kind, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(n):
        if kind == "status":
            c.request("GET", "/status/de3b9946-c878-444e-9249-dca9947f83d5")
        else:
            c.request("POST", "/tasks", body=b'{"task": "add", "args": [2, 3]}',
                      headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"{kind}: HTTP {r.status}")
        if (i + 1) % 2000 == 0:
            print(f"    {kind}: {i + 1}/{n}", flush=True)
    c.close()


def run(stripped, redis_port, kind, n, tmp):
    port = free_port()
    out = os.path.join(tmp, f"frontend-{kind}-{n}.cg")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}", stripped,
                          "-b", f"redis://127.0.0.1:{redis_port}/0", "--port", str(port), "--host", "127.0.0.1",
                          "--loops", "1", "--loglevel", "warning"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
    requests(port, kind, n)
    p.send_signal(signal.SIGINT)
    p.wait(120)
    return total_instructions(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="a build directory holding celeris-frontend")
    ap.add_argument("--requests", default="2000,8000", help="N1,N2 requests of each kind")
    a = ap.parse_args()
    n1, n2 = (int(x) for x in a.requests.split(","))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    rows = []
    try:
        deadline = time.time() + 10
        while subprocess.run(["redis-cli", "-p", str(redis_port), "PING"], capture_output=True).stdout != b"PONG\n":
            if time.time() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            for b in a.bin:
                stripped = os.path.join(tmp, "celeris-frontend")
                subprocess.run(["objcopy", "--strip-debug", os.path.join(b, "celeris-frontend"), stripped], check=True)
                for kind in ("status", "tasks"):
                    print(f"{b}: {kind}", flush=True)
                    small, large = run(stripped, redis_port, kind, n1, tmp), run(stripped, redis_port, kind, n2, tmp)
                    rows.append((b, kind, (large - small) / (n2 - n1)))
    finally:
        redis.terminate()
        redis.wait()
    print(f"\ninstructions per request (frontend, --loops 1; {n1} and {n2} requests differenced)")
    print(f"{'build':28} {'request':8} {'instructions':>12}")
    for b, kind, v in rows:
        print(f"{b:28} {kind:8} {v:12,.0f}")


if __name__ == "__main__":
    main()
