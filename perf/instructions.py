#!/usr/bin/env python3
"""Instructions per task, the worker's and Redis', counted by callgrind: a figure the
machine's noise does not move (this 2-core VM's speed drifts by a third within an
hour, which hides a 10% change in tasks/s). For each worker build and each claim:

- worker: the build (debug info stripped: Debian 12's valgrind cannot read Swift 6's
  DWARF 5) drains N/3 and then N pre-queued noop tasks under callgrind; the
  difference divided by the extra tasks, so start-up and shutdown cancel out;
- Redis: a redis-server under callgrind serves a native worker's drain of N tasks;
  its counters are zeroed after the fill and dumped after the drain.
Both over the plain socket (`--io socket`: valgrind does not run io_uring).

Each build's row is measured on the same Redis, in turn. Starts its own servers on
free 127.0.0.1 ports; prints progress; writes perf/results/instructions.json.

  perf/instructions.py --bin .build/release [--bin /tmp/old-build ...] [--tasks 9000]
      [--runs "script 64,move 64,move 256"]
"""
import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import redis  # noqa: E402
from benchlib import Children, free_port  # noqa: E402
from drain_bench import fill, wait_drained  # noqa: E402


def total_instructions(path):
    """PROGRAM TOTALS of a callgrind output file."""
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", path], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann)
    return int(m.group(1).replace(",", "")) if m else 0


def drain(cmd, r, n, label):
    """Run the worker `cmd` until the `n` queued tasks are done, then stop it (SIGINT)."""
    w = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_drained(r, n, w, label, 1200, every=5, poll=0.1)
    w.send_signal(signal.SIGINT)
    w.wait(120)


def worker_cmd(binary, port, claim, multiplier):
    return [binary, "-b", f"redis://127.0.0.1:{port}/0", "-c", "2", "--loglevel", "warning", "--io", "socket",
            "--prefetch-multiplier", str(multiplier), "--claim", claim]


def worker_per_task(stripped, port, r, n, claim, multiplier, tmp):
    """The worker's instructions per task: drains of n/3 and n, differenced."""
    counts = []
    for size in (n // 3, n):
        fill(r, size)
        out = os.path.join(tmp, f"worker-{size}.cg")
        drain(["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}"]
              + worker_cmd(stripped, port, claim, multiplier), r, size, f"worker under callgrind, {size} tasks")
        counts.append(total_instructions(out))
        r.flushall()
    return (counts[1] - counts[0]) / (n - n // 3)


def redis_per_task(binary, port, r, n, claim, multiplier, redis_pid, tmp):
    """Redis' instructions per task while a native worker drains n."""
    fill(r, n)
    for old in glob.glob(os.path.join(tmp, "redis.cg.*")):
        os.remove(old)
    subprocess.run(["callgrind_control", "-z", str(redis_pid)], check=True, capture_output=True)
    drain(worker_cmd(binary, port, claim, multiplier), r, n, "Redis under callgrind")
    subprocess.run(["callgrind_control", "-d", str(redis_pid)], check=True, capture_output=True)
    time.sleep(1)
    dumps = sorted(glob.glob(os.path.join(tmp, "redis.cg.*")), key=os.path.getmtime)
    r.flushall()
    return total_instructions(dumps[-1]) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="a build directory holding celeris-worker")
    ap.add_argument("--tasks", type=int, default=9000)
    ap.add_argument("--runs", default="script 64,move 64,move 256", help="claim and prefetch multiplier pairs")
    a = ap.parse_args()
    runs = [(c, int(m)) for c, m in (x.split() for x in a.runs.split(","))]
    out = {"tasks": a.tasks, "builds": {}}
    with Children() as kids, tempfile.TemporaryDirectory() as tmp:
        worker_port, redis_port = free_port(), free_port()
        kids.redis(worker_port)
        rw = redis.Redis(port=worker_port)
        vr = kids.start(["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={tmp}/redis.cg",
                         "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no"])
        rr = redis.Redis(port=redis_port)
        for _ in range(120):
            try:
                rr.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.5)
        for build in a.bin:
            stripped = os.path.join(tmp, "celeris-worker")
            subprocess.run(["objcopy", "--strip-debug", os.path.join(build, "celeris-worker"), stripped], check=True)
            rows = {}
            for claim, multiplier in runs:
                label = f"{build}: --claim {claim} --prefetch-multiplier {multiplier}"
                print(label, flush=True)
                w = worker_per_task(stripped, worker_port, rw, a.tasks, claim, multiplier, tmp)
                rd = redis_per_task(os.path.join(build, "celeris-worker"), redis_port, rr, a.tasks, claim, multiplier,
                                    vr.pid, tmp)
                rows[f"{claim} x{multiplier}"] = {"worker": round(w), "redis": round(rd)}
                print(f"  worker {w:,.0f} and Redis {rd:,.0f} instructions per task", flush=True)
            out["builds"][build] = rows
        vr.send_signal(signal.SIGTERM)
    print(f"\ninstructions per task ({a.tasks} tasks; worker: drains of {a.tasks // 3} and {a.tasks} differenced)")
    print(f"{'build':<28} {'run':<12} {'worker':>10} {'Redis':>10}")
    for build, rows in out["builds"].items():
        for run, v in rows.items():
            print(f"{build:<28} {run:<12} {v['worker']:>10,} {v['redis']:>10,}")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    json.dump(out, open(os.path.join(HERE, "results", "instructions.json"), "w"), indent=1)
    print("wrote perf/results/instructions.json")


if __name__ == "__main__":
    main()
