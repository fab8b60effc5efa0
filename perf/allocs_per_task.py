#!/usr/bin/env python3
"""Heap allocations per task in the worker, steady state: the worker drains N1
and then N2 pre-queued noop tasks (results stored) under the malloc_count.c
LD_PRELOAD shim, and the difference in allocations is divided by N2 - N1, so
start-up and shutdown cancel out. Counts everything the process allocates per
task: claim, decode, run, result encoding, the write. Then the same at paced
load (`--rates`): the worker serves `tasklat` offering each rate for a short and
a long run, differenced the same way (a turn then carries a task or two, so what
a turn allocates shows). Starts its own redis-server on a free 127.0.0.1 port;
prints progress; writes perf/results/allocs.json.

  perf/allocs_per_task.py --bin .build/release [--tasks 20000,100000] [--prefetch-multiplier 64] [--claim script,move]
                          [--rates 1000,10000] [--seconds 3,9]
(each claim measured in turn; the JSON keeps both)
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import redis  # noqa: E402
from benchlib import BUILD, Children, free_port, native_client  # noqa: E402
from drain_bench import fill, wait_drained  # noqa: E402


def shim():
    out = os.path.join(BUILD, "malloc_count.so")
    src = os.path.join(HERE, "malloc_count.c")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(BUILD, exist_ok=True)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", out, src, "-ldl"], check=True)
    return out


def drain_counting(binary, url, r, n, multiplier, so, claim):
    fill(r, n)
    counts = os.path.join(BUILD, "malloc_count.txt")
    env = dict(os.environ, LD_PRELOAD=so, MALLOC_COUNT_OUT=counts)
    w = subprocess.Popen([os.path.join(binary, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                          "--prefetch-multiplier", str(multiplier), "--claim", claim], env=env)
    wait_drained(r, n, w, f"{claim}, {n} tasks", 300)
    w.send_signal(signal.SIGTERM)
    w.wait(30)
    r.flushall()
    return int(open(counts).read())


def paced_counting(binary, url, port, r, rate, seconds, so, tasklat):
    """Allocations of a fresh worker while tasklat offers `rate` tasks/s for `seconds`; (allocations, tasks)."""
    r.flushall()
    counts = os.path.join(BUILD, "malloc_count.txt")
    env = dict(os.environ, LD_PRELOAD=so, MALLOC_COUNT_OUT=counts)
    w = subprocess.Popen([os.path.join(binary, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                          "--prefetch-multiplier", "64"], env=env)
    time.sleep(1)
    path = os.path.join(BUILD, "allocs-latency.txt")
    print(f"  {rate} tasks/s offered for {seconds} s ...", flush=True)
    subprocess.run([tasklat, str(port), str(rate), str(seconds), path], check=True, stdout=subprocess.DEVNULL,
                   timeout=seconds + 120)
    w.send_signal(signal.SIGTERM)
    w.wait(30)
    return int(open(counts).read()), sum(1 for _ in open(path))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", default="20000,100000")
    ap.add_argument("--prefetch-multiplier", type=int, default=64)
    ap.add_argument("--claim", default="script,move", help="the worker's --claim values to measure")
    ap.add_argument("--rates", default="1000,10000", help="paced loads to measure (tasks/s offered); '' for none")
    ap.add_argument("--seconds", default="3,9", help="the short and long paced runs")
    a = ap.parse_args()
    n1, n2 = (int(x) for x in a.tasks.split(","))
    so = shim()
    port = free_port()
    with Children() as kids:
        kids.redis(port)
        r = redis.Redis(port=port)
        url = f"redis://127.0.0.1:{port}/0"
        out = {"tasks": [n1, n2], "prefetch_multiplier": a.prefetch_multiplier}
        for claim in a.claim.split(","):
            c1 = drain_counting(a.bin, url, r, n1, a.prefetch_multiplier, so, claim)
            c2 = drain_counting(a.bin, url, r, n2, a.prefetch_multiplier, so, claim)
            per_task = (c2 - c1) / (n2 - n1)
            print(f"worker heap allocations, --claim {claim}: {c1} for {n1} tasks, {c2} for {n2}: {per_task:.3f} per task")
            out[claim] = {"allocations": [c1, c2], "per_task": round(per_task, 3)}
        s1, s2 = (int(x) for x in a.seconds.split(","))
        tasklat = native_client("tasklat") if a.rates else None
        out["paced"] = {}
        for rate in [int(x) for x in a.rates.split(",") if x]:
            c1, t1 = paced_counting(a.bin, url, port, r, rate, s1, so, tasklat)
            c2, t2 = paced_counting(a.bin, url, port, r, rate, s2, so, tasklat)
            per_task = (c2 - c1) / max(1, t2 - t1)
            print(f"worker heap allocations at {rate} tasks/s offered: {c1} for {t1} tasks, {c2} for {t2}: "
                  f"{per_task:.3f} per task")
            out["paced"][str(rate)] = {"allocations": [c1, c2], "tasks": [t1, t2], "per_task": round(per_task, 3)}
    json.dump(out, open(os.path.join(HERE, "results", "allocs.json"), "w"), indent=1)
    print("wrote perf/results/allocs.json")


if __name__ == "__main__":
    main()
