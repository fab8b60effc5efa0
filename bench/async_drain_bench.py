#!/usr/bin/env python3
"""Async drain bench (issue 18): N pre-queued tasks drained by one Celeris worker, the
sync `noop` (a thread per running task) against `noop_async` (a slot, no thread: a
Swift Task on the global executor), at each concurrency. Reports tasks/s and the
worker's peak thread count (/proc/PID/status Threads, sampled every 20 ms) and peak
RSS. Writes perf/results/async_drain.json.

  async_drain_bench.py --bin .build/release [--tasks 100000] [--concurrency 2,64] [--task-names noop,noop_async]
"""
import argparse
import json
import os
import signal
import subprocess
import time

import redis

from benchlib import ROOT, free_port
from drain_bench import fill, waiting


def status(pid):
    """(threads, VmRSS kB) of `pid`, or None once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
    except OSError:
        return None
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


def run(binary, url, r, task, n, concurrency, prefetch, timeout):
    fill(r, n, task)
    w = subprocess.Popen([os.path.join(binary, "celeris-worker"), "-b", url, "-c", str(concurrency),
                          "--loglevel", "warning", "--prefetch-multiplier", str(prefetch)])
    start, last, threads, rss = time.time(), 0, 0, 0
    try:
        while True:
            s = status(w.pid)
            if s:
                threads, rss = max(threads, s[0]), max(rss, s[1])
            left = waiting(r)
            if left == 0:
                break
            if time.time() - start > timeout:
                raise SystemExit(f"{task} -c {concurrency}: {left} left after {timeout}s")
            if time.time() - last >= 1:
                print(f"  {task} -c {concurrency}: {time.time() - start:6.1f}s {n - left}/{n}", flush=True)
                last = time.time()
            time.sleep(0.02)
        secs = time.time() - start
    finally:
        w.send_signal(signal.SIGTERM)
        w.wait(10)
    stored = r.eval("return #redis.call('KEYS', 'celery-task-meta-*')", 0)
    r.flushall()
    return {"task": task, "concurrency": concurrency, "prefetch_multiplier": prefetch, "tasks": n,
            "results_stored": stored, "seconds": round(secs, 3), "tasks_per_s": round(n / secs),
            "peak_threads": threads, "peak_rss_mb": round(rss / 1024, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--concurrency", default="2,64")
    ap.add_argument("--task-names", default="noop,noop_async")
    ap.add_argument("--prefetch-multiplier", type=int, default=4)
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], stdout=subprocess.DEVNULL)
    runs = []
    try:
        time.sleep(0.5)
        r = redis.Redis(port=port)
        for c in [int(x) for x in a.concurrency.split(",")]:
            for task in a.task_names.split(","):
                runs.append(run(a.bin, url, r, task, a.tasks, c, a.prefetch_multiplier, a.timeout))
    finally:
        rs.kill()
    print(f"\n{'task':12} {'-c':>4} {'tasks':>8} {'seconds':>8} {'tasks/s':>8} {'threads':>8} {'RSS MB':>7}")
    for x in runs:
        print(f"{x['task']:12} {x['concurrency']:4} {x['tasks']:8} {x['seconds']:8.2f} {x['tasks_per_s']:8}"
              f" {x['peak_threads']:8} {x['peak_rss_mb']:7.1f}")
    out = {"cpus": os.cpu_count(), "runs": runs}
    json.dump(out, open(os.path.join(ROOT, "perf/results/async_drain.json"), "w"), indent=1)
    print("wrote perf/results/async_drain.json")


if __name__ == "__main__":
    main()
