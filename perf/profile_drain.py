#!/usr/bin/env python3
"""Profile the worker's drain: N pre-queued `noop` tasks (results stored) drained
by one celeris-worker, measured twice:

  1. `perf stat` (task-clock, context switches, and cycles/instructions where
     the machine exposes them) over the whole drain: CPU per task.
  2. `valgrind --tool=callgrind` on a smaller drain: instructions per task
     (repeatable whatever else the machine does) and the top functions, via
     callgrind_annotate.

Writes perf/results/profile.json and perf/results/callgrind-top.txt.

  perf/profile_drain.py --bin .build/release [--tasks 100000] [--callgrind-tasks 5000]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import free_port  # noqa: E402
from drain_bench import drain, fill  # noqa: E402

import redis  # noqa: E402


def worker_cmd(a, url, binary=None):
    return [binary or os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
            "--prefetch-multiplier", "64"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--callgrind-tasks", type=int, default=5000)
    a = ap.parse_args()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    out = {"tasks": a.tasks}
    rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                          stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="celeris-profile-")
    try:
        time.sleep(0.5)
        r = redis.Redis(port=port)
        # 1. perf stat over the whole drain
        fill(r, a.tasks)
        stat_file = os.path.join(tmp, "perf-stat.txt")
        print(f"perf stat: draining {a.tasks} tasks ...", flush=True)
        w = subprocess.Popen(worker_cmd(a, url))
        ps = subprocess.Popen(["perf", "stat", "-x", ",", "-o", stat_file, "-e",
                               "task-clock,context-switches,cycles,instructions", "-p", str(w.pid)])
        secs, _ = drain("perf stat", r, a.tasks, w, 600)
        ps.send_signal(signal.SIGINT)  # perf attached with -p stops counting and writes its file
        ps.wait(30)
        w.send_signal(signal.SIGINT)
        w.wait(30)
        counters = {}
        for line in open(stat_file):
            f = line.strip().split(",")
            if len(f) >= 3 and f[2] and not line.startswith("#"):
                try:
                    counters[f[2]] = float(f[0])
                except ValueError:
                    counters[f[2]] = f[0]  # "<not supported>"
        out["perf_stat"] = {"seconds": round(secs, 3), "tasks_per_s": round(a.tasks / secs), "counters": counters}
        if isinstance(counters.get("task-clock"), float):
            out["perf_stat"]["cpu_us_per_task"] = round(counters["task-clock"] * 1000 / a.tasks, 2)  # task-clock is ms
        if isinstance(counters.get("instructions"), float):
            out["perf_stat"]["instructions_per_task"] = round(counters["instructions"] / a.tasks)
        r.flushall()
        # 2. callgrind on a smaller drain
        fill(r, a.callgrind_tasks)
        cg = os.path.join(tmp, "callgrind.out")
        print(f"callgrind: draining {a.callgrind_tasks} tasks (slow) ...", flush=True)
        # Debian 12's valgrind cannot read the DWARF 5 Swift 6 writes: profile a copy
        # without debug info (function names still come from the symbol table).
        stripped = os.path.join(tmp, "celeris-worker")
        subprocess.run(["objcopy", "--strip-debug", os.path.join(a.bin, "celeris-worker"), stripped], check=True)
        w = subprocess.Popen(["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={cg}"]
                             + worker_cmd(a, url, stripped))
        drain("callgrind", r, a.callgrind_tasks, w, 1200)
        w.send_signal(signal.SIGINT)
        w.wait(120)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", cg], capture_output=True, text=True).stdout
        total = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann)
        ir = int(total.group(1).replace(",", "")) if total else 0
        out["callgrind"] = {"tasks": a.callgrind_tasks, "instructions": ir,
                            "instructions_per_task": round(ir / a.callgrind_tasks)}
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "callgrind-top.txt"), "w") as f:
            f.write("\n".join(ann.splitlines()[:60]) + "\n")
    finally:
        rs.kill()
    json.dump(out, open(os.path.join(HERE, "results", "profile.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))
    print("wrote perf/results/profile.json and perf/results/callgrind-top.txt")


if __name__ == "__main__":
    main()
