#!/usr/bin/env python3
"""WebSocket fan-out bench with the native load client (bench/wsload/wsload.c):
100 and 1,000 clients at full speed, 1,000 clients paced at 20 messages/s
(publish→receive latency), against the Celeris frontend and the FastAPI
reference app (1 uvicorn worker); then 10,000 idle Celeris WebSockets and the
frontend's RSS. One run, this machine, all on 127.0.0.1. Writes perf/results/fanout.json.

  fanout_bench.py --bin .build/release [--seconds 5]
"""
import argparse

from benchlib import HERE, ROOT, Children, free_port, native_client, rss_kb, wait_http
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request






def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children inherit it
    idle_clients = min(10000, hard - 200)
    wsload = native_client("wsload")
    rport = free_port()
    url = f"redis://127.0.0.1:{rport}/0"
    results = {}
    kids = Children()
    start, stop = kids.start, kids.stop

    def load(port, clients, rate, seconds):
        r = subprocess.run([wsload, "127.0.0.1", str(port), str(clients), str(seconds), str(rate), str(rport)],
                           capture_output=True, text=True, timeout=seconds + 120)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def scenarios(name, port):
        for clients, rate, label in ((100, 0, "100 clients, full speed"), (1000, 0, "1000 clients, full speed"),
                                     (1000, 20, "1000 clients x 20 msg/s")):
            print(f"  {name}: {label} ...", flush=True)
            results[f"{name}: {label}"] = load(port, clients, rate, a.seconds)

    try:
        start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--client-output-buffer-limit", "pubsub", "0", "0", "0"])
        time.sleep(0.5)
        cport = free_port()
        print("Celeris frontend", flush=True)
        cf = start([os.path.join(a.bin, "celeris-frontend"), "-b", url, "--host", "127.0.0.1", "--port", str(cport),
                    "--loglevel", "error", "--max-connections", "20000"])
        wait_http(f"http://127.0.0.1:{cport}/health")
        scenarios("celeris", cport)
        results["celeris: RSS after the full-speed runs"] = {"rss_kb": rss_kb(cf.pid)}
        stop(cf)
        # Idle connections on a fresh frontend, so the figure is theirs alone.
        cport = free_port()
        cf = start([os.path.join(a.bin, "celeris-frontend"), "-b", url, "--host", "127.0.0.1", "--port", str(cport),
                    "--loglevel", "error", "--max-connections", "20000"])
        wait_http(f"http://127.0.0.1:{cport}/health")
        print(f"  celeris: {idle_clients} idle WebSockets ...", flush=True)
        before = rss_kb(cf.pid)
        idle = subprocess.Popen([wsload, "127.0.0.1", str(cport), str(idle_clients), "8", "-1", str(rport)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(6)
        during = rss_kb(cf.pid)
        idle.wait(60)
        results[f"celeris: {idle_clients} idle WebSockets"] = {"rss_before_kb": before, "rss_with_idle_kb": during, "clients": idle_clients}
        stop(cf)
        print("FastAPI + uvicorn (1 worker)", flush=True)
        fport = free_port()
        uvicorn = os.path.join(os.path.dirname(sys.executable), "uvicorn")
        fa = start([uvicorn, "fastapi_app:app", "--host", "127.0.0.1", "--port", str(fport), "--log-level", "warning"],
                   cwd=os.path.join(HERE, "peers"), env=dict(os.environ, CELERY_BROKER_URL=url))
        wait_http(f"http://127.0.0.1:{fport}/status/x")
        scenarios("fastapi-1w", fport)
        stop(fa)
    finally:
        kids.__exit__(None, None, None)
    print()
    print(f"{'run':42} {'deliveries/s':>13} {'delivered/expected':>19} {'p50 ms':>8} {'p99 ms':>8}")
    for k, v in results.items():
        if "rss_kb" in v:
            print(f"{k:42} RSS {v['rss_kb'] / 1024:.1f} MB")
        elif "deliveries_per_s" in v:
            print(f"{k:42} {v['deliveries_per_s']:13.0f} {v['delivered']:>9}/{v['expected']:<9} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f}")
        else:
            print(f"{k:42} RSS {v['rss_before_kb'] / 1024:.1f} MB -> {v['rss_with_idle_kb'] / 1024:.1f} MB")
    json.dump({"seconds": a.seconds, "cpus": os.cpu_count(), "results": results},
              open(os.path.join(ROOT, "perf/results/fanout.json"), "w"), indent=1)
    print("wrote perf/results/fanout.json")


if __name__ == "__main__":
    main()
