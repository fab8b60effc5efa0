#!/usr/bin/env python3
"""HTTP bench: wrk (64 connections) against the Celeris frontend, the FastAPI
reference app (1 and 2 uvicorn workers) and nginx serving a static 200 (the
box's HTTP ceiling), in one run on this machine. Prints a table and writes
perf/results/http.json.

  http_bench.py --bin .build/release [--seconds 5] [--connections 64]
"""
import argparse

from benchlib import HERE, ROOT, Children, free_port, rss_kb, wait_http
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request





def wrk(url, seconds, conns, script=None):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps, 1), "p99_ms": round(float(p99.group(1)) * scale, 3), "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="celeris-http-bench-")
    post = os.path.join(tmp, "post.lua")
    open(post, "w").write('wrk.method = "POST"\n')
    rport = free_port()
    url = f"redis://127.0.0.1:{rport}/0"
    results = {}
    kids = Children()
    start, stop = kids.start, kids.stop

    def flush():
        subprocess.run(["redis-cli", "-p", str(rport), "flushall"], capture_output=True)

    def run(name, base, status_path):
        print(f"  {name}: POST /tasks ...", flush=True)
        results[f"{name} POST /tasks"] = wrk(base + "/tasks", a.seconds, a.connections, post)
        flush()
        print(f"  {name}: GET /status ...", flush=True)
        results[f"{name} GET /status"] = wrk(base + status_path, a.seconds, a.connections)

    try:
        start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        time.sleep(0.5)
        # nginx: the box's ceiling for a static 200
        nport = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        open(conf, "w").write(f"""worker_processes 2; pid {tmp}/nginx.pid; error_log {tmp}/error.log; daemon off;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{nport}; location / {{ return 200 "ok"; }} }} }}""")
        ng = start(["nginx", "-c", conf, "-p", tmp])
        wait_http(f"http://127.0.0.1:{nport}/")
        print("nginx static 200 ...", flush=True)
        results["nginx static 200"] = wrk(f"http://127.0.0.1:{nport}/", a.seconds, a.connections)
        stop(ng)
        # Celeris
        cport = free_port()
        print("Celeris frontend", flush=True)
        cf = start([os.path.join(a.bin, "celeris-frontend"), "-b", url, "--host", "127.0.0.1", "--port", str(cport), "--loglevel", "error"])
        wait_http(f"http://127.0.0.1:{cport}/health")
        run("celeris", f"http://127.0.0.1:{cport}", "/status/d3b07384-d9a0-4c9b-8f5e-1e2f3a4b5c6d")
        stop(cf)
        flush()
        # FastAPI, 1 and 2 uvicorn workers
        uvicorn = os.path.join(os.path.dirname(sys.executable), "uvicorn")
        for workers in (1, 2):
            fport = free_port()
            print(f"FastAPI + uvicorn --workers {workers}", flush=True)
            fa = start([uvicorn, "fastapi_app:app", "--host", "127.0.0.1", "--port", str(fport), "--workers", str(workers), "--log-level", "warning"],
                       cwd=os.path.join(HERE, "peers"), env=dict(os.environ, CELERY_BROKER_URL=url))
            wait_http(f"http://127.0.0.1:{fport}/status/x")
            run(f"fastapi-{workers}w", f"http://127.0.0.1:{fport}", "/status/d3b07384-d9a0-4c9b-8f5e-1e2f3a4b5c6d")
            stop(fa)
            flush()
    finally:
        kids.__exit__(None, None, None)
    print()
    print(f"{'run':32} {'req/s':>10} {'p99 ms':>8} {'non-2xx':>8}")
    for k, v in results.items():
        print(f"{k:32} {v['rps']:10.0f} {v['p99_ms']:8.2f} {v['non_2xx']:8d}")
    ratios = {
        "celeris_post_vs_fastapi_1w": round(results["celeris POST /tasks"]["rps"] / results["fastapi-1w POST /tasks"]["rps"], 1),
        "celeris_post_vs_nginx": round(results["celeris POST /tasks"]["rps"] / results["nginx static 200"]["rps"], 3),
        "celeris_status_vs_fastapi_1w": round(results["celeris GET /status"]["rps"] / results["fastapi-1w GET /status"]["rps"], 1),
    }
    print("\n" + "\n".join(f"{k}: {v}" for k, v in ratios.items()))
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    json.dump({"connections": a.connections, "seconds": a.seconds, "cpus": os.cpu_count(), "results": results, "ratios": ratios},
              open(os.path.join(ROOT, "perf/results/http.json"), "w"), indent=1)
    print("wrote perf/results/http.json")


if __name__ == "__main__":
    main()
