#!/usr/bin/env python3
"""WebSocket fan-out bench with the native load client (bench/wsload/wsload.c):
100 and 1,000 clients at full speed, 1,000 clients paced at 20 messages/s
(publish→receive latency), against the Celeris frontend and the FastAPI
reference app (1 uvicorn worker); then 10,000 idle Celeris WebSockets and the
frontend's RSS. One run, this machine, all on 127.0.0.1. Writes perf/results/fanout.json.

Per-task subscriptions (issue 20), against the same Celeris frontend in the same run:
1,000 clients each subscribed to --tasks-per-client tasks of its own, the publisher
writing result records as workers do (SETEX + PUBLISH celery-task-meta-<id>, rounds of
PROGRESS then one SUCCESS per task), at full speed and paced at 20,000 updates/s (the
deliveries/s of the paced firehose run), and at full speed with each update also
published on task_status as a Celeris worker does (nobody takes it: every client
subscribes); deliveries/s, publish→receive latency, the frontend's CPU per delivery,
and the check that each client got each of its tasks' updates exactly once; then the
ratio to the firehose run with 1,000 clients.

  fanout_bench.py --bin .build/release [--seconds 5]
  fanout_bench.py --bin .build/release --only per-task [--seconds 5] [--out FILE]

--only per-task runs the per-task scenarios and the 1,000-client firehose ones beside
them, and merges its results into --out (other keys kept). --task-status-too also
publishes each update on task_status as a Celeris worker does (a frontend without
per-task result-channel subscriptions delivers subscriptions from task_status only).
"""
import argparse

from benchlib import HERE, ROOT, Children, cpu_seconds, free_port, native_client, rss_kb, wait_http
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
    ap.add_argument("--only", choices=["all", "per-task"], default="all")
    ap.add_argument("--tasks-per-client", type=int, default=10)
    ap.add_argument("--task-status-too", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "perf/results/fanout.json"))
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

    def load(port, clients, rate, seconds, tasks=0, pid=None, status_too=False):
        """One wsload run; with `pid`, that process' CPU and Redis' between wsload's
        "publishing" and "published" marks, per delivery (µs)."""
        cmd = [wsload, "127.0.0.1", str(port), str(clients), str(seconds), str(rate), str(rport)]
        if tasks:
            cmd += ["/ws", "2", str(tasks), "1" if status_too or a.task_status_too else "0"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cpu = {}
        for line in p.stderr:
            print(f"    {line.rstrip()}", flush=True)
            if pid and line.strip() in ("publishing", "published"):
                cpu[line.strip()] = (cpu_seconds(pid), cpu_seconds(redis.pid))
        out = p.stdout.read()
        p.wait(30)
        r = json.loads(out.strip().splitlines()[-1])
        if pid and len(cpu) == 2 and r["delivered"]:
            r["frontend_cpu_s"] = round(cpu["published"][0] - cpu["publishing"][0], 3)
            r["frontend_cpu_us_per_delivery"] = round(r["frontend_cpu_s"] / r["delivered"] * 1e6, 3)
            r["redis_cpu_us_per_delivery"] = round((cpu["published"][1] - cpu["publishing"][1]) / r["delivered"] * 1e6, 3)
        return r

    def scenarios(name, port, pid=None):
        runs = ((100, 0, "100 clients, full speed"), (1000, 0, "1000 clients, full speed"),
                (1000, 20, "1000 clients x 20 msg/s"))
        for clients, rate, label in runs if a.only == "all" else runs[1:]:
            print(f"  {name}: {label} ...", flush=True)
            results[f"{name}: {label}"] = load(port, clients, rate, a.seconds, pid=pid)

    def per_task(port, pid):
        k = a.tasks_per_client
        for rate, label, status_too in ((0, "full speed", False), (20000, "20000 updates/s", False),
                                        (0, "full speed, task_status too", True)):
            key = f"celeris per-task: 1000 clients x {k} tasks, {label}"
            print(f"  {key} ...", flush=True)
            results[key] = r = load(port, 1000, rate, a.seconds, tasks=k, pid=pid, status_too=status_too)
            c = r["check"]
            print(f"    exactly once: {c['exactly_once']}" + ("" if c["exactly_once"] else f" {c}"), flush=True)
        fh, pt = results["celeris: 1000 clients, full speed"], results[f"celeris per-task: 1000 clients x {k} tasks, full speed"]
        ratio = {"deliveries_per_s_ratio": round(pt["deliveries_per_s"] / max(fh["deliveries_per_s"], 1), 4)}
        if "frontend_cpu_us_per_delivery" in fh and "frontend_cpu_us_per_delivery" in pt:
            ratio["frontend_cpu_per_delivery_ratio"] = round(
                pt["frontend_cpu_us_per_delivery"] / max(fh["frontend_cpu_us_per_delivery"], 1e-9), 2)
        results["celeris: per-task / firehose, 1000 clients, full speed"] = ratio
        fh, pt = results["celeris: 1000 clients x 20 msg/s"], results[f"celeris per-task: 1000 clients x {k} tasks, 20000 updates/s"]
        if "frontend_cpu_us_per_delivery" in fh and "frontend_cpu_us_per_delivery" in pt:
            results["celeris: per-task / firehose, 1000 clients, 20000 deliveries/s"] = {
                "frontend_cpu_per_delivery_ratio": round(
                    pt["frontend_cpu_us_per_delivery"] / max(fh["frontend_cpu_us_per_delivery"], 1e-9), 2),
                "p99_ratio": round(pt["p99_ms"] / max(fh["p99_ms"], 1e-9), 2)}

    try:
        redis = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--client-output-buffer-limit", "pubsub", "0", "0", "0"])
        time.sleep(0.5)
        cport = free_port()
        print("Celeris frontend", flush=True)
        cf = start([os.path.join(a.bin, "celeris-frontend"), "-b", url, "--host", "127.0.0.1", "--port", str(cport),
                    "--loglevel", "error", "--max-connections", "20000"])
        wait_http(f"http://127.0.0.1:{cport}/health")
        scenarios("celeris", cport, cf.pid)
        if a.only == "all":
            results["celeris: RSS after the full-speed runs"] = {"rss_kb": rss_kb(cf.pid)}
        per_task(cport, cf.pid)
        stop(cf)
        if a.only == "per-task":
            return finish(a, results)
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
    finish(a, results)


def finish(a, results):
    """Print the table and write --out (a partial run keeps the file's other results)."""
    print()
    print(f"{'run':60} {'deliveries/s':>13} {'delivered/expected':>19} {'p50 ms':>8} {'p99 ms':>8}")
    for k, v in results.items():
        if "rss_kb" in v:
            print(f"{k:60} RSS {v['rss_kb'] / 1024:.1f} MB")
        elif "check" in v:
            print(f"{k:60} {v['deliveries_per_s']:13.0f} {v['delivered']:>9}/{v['expected']:<9} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f}"
                  f"  {v.get('frontend_cpu_us_per_delivery', 0):.2f} µs CPU/delivery (Redis {v.get('redis_cpu_us_per_delivery', 0):.2f}),"
                  f" exactly once: {v['check']['exactly_once']}")
        elif "deliveries_per_s_ratio" in v:
            print(f"{k:60} ratio: deliveries/s x{v['deliveries_per_s_ratio']}, CPU/delivery x{v.get('frontend_cpu_per_delivery_ratio')}")
        elif "p99_ratio" in v:
            print(f"{k:60} ratio: CPU/delivery x{v['frontend_cpu_per_delivery_ratio']}, p99 x{v['p99_ratio']}")
        elif "deliveries_per_s" in v:
            print(f"{k:60} {v['deliveries_per_s']:13.0f} {v['delivered']:>9}/{v['expected']:<9} {v['p50_ms']:8.2f} {v['p99_ms']:8.2f}"
                  + (f"  {v['frontend_cpu_us_per_delivery']:.2f} µs CPU/delivery" if "frontend_cpu_us_per_delivery" in v else ""))
        else:
            print(f"{k:60} RSS {v['rss_before_kb'] / 1024:.1f} MB -> {v['rss_with_idle_kb'] / 1024:.1f} MB")
    doc = {"seconds": a.seconds, "cpus": os.cpu_count(), "results": {}}
    if a.only != "all" and os.path.exists(a.out):
        doc = json.load(open(a.out))
        doc.setdefault("results", {})
        doc["per_task_seconds"] = a.seconds
    else:
        doc["seconds"] = a.seconds
    doc["results"].update(results)
    doc["per_task"] = {"tasks_per_client": a.tasks_per_client, "task_status_too": a.task_status_too}
    json.dump(doc, open(a.out, "w"), indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
