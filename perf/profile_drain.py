#!/usr/bin/env python3
"""Profile the worker's drain: N pre-queued `noop` tasks (results stored) drained
by one celeris-worker, measured twice:

  1. `perf stat` (task-clock, context switches, and cycles/instructions where
     the machine exposes them) over the whole drain: CPU per task.
  2. `valgrind --tool=callgrind` on a smaller drain: instructions per task
     (repeatable whatever else the machine does) and the top functions, via
     callgrind_annotate.
  3. The two broker transports (`--io uring`, `--io socket`) on the same drain:
     system calls per task (`perf stat -e raw_syscalls:sys_enter`) and the
     worker's user and kernel CPU per task (/proc/<pid>/stat), i.e. the most
     any transport could save.

Writes perf/results/profile.json and perf/results/callgrind-top.txt.

  perf/profile_drain.py --bin .build/release [--tasks 100000] [--callgrind-tasks 5000] [--skip-callgrind]
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


def user_sys_seconds(pid):
    """User and kernel CPU seconds of a process so far."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(f[11]) / tick, int(f[12]) / tick


def perf_stat(pid, events, path):
    """`perf stat -p pid` counting `events` into `path` until SIGINT."""
    return subprocess.Popen(["perf", "stat", "-x", ",", "-o", path, "-e", events, "-p", str(pid)])


def read_counters(path):
    """perf stat -x , output: event name -> count (or the "<not supported>" text)."""
    counters = {}
    for line in open(path):
        f = line.strip().split(",")
        if len(f) >= 3 and f[2] and not line.startswith("#"):
            try:
                counters[f[2]] = float(f[0])
            except ValueError:
                counters[f[2]] = f[0]  # "<not supported>"
    return counters


def transports(a, url, r, tmp):
    """System calls and user/kernel CPU per task on each broker transport."""
    out = {}
    for io in ("uring", "socket"):
        fill(r, a.tasks)
        path = os.path.join(tmp, f"syscalls-{io}.txt")
        print(f"transport {io}: draining {a.tasks} tasks ...", flush=True)
        # perf runs the worker, so every system call from its start is counted
        ps = subprocess.Popen(["perf", "stat", "-x", ",", "-o", path, "-e", "raw_syscalls:sys_enter", "--"]
                              + worker_cmd(a, url) + ["--io", io])
        w = None
        while w is None:
            kids = subprocess.run(["pgrep", "-P", str(ps.pid)], capture_output=True, text=True).stdout.split()
            w = int(kids[0]) if kids else time.sleep(0.01)
        secs, _ = drain(f"transport {io}", r, a.tasks, ps, 600)
        user, kernel = user_sys_seconds(w)
        os.kill(w, signal.SIGINT)
        ps.wait(30)
        calls = read_counters(path).get("raw_syscalls:sys_enter")
        out[io] = {"tasks_per_s": round(a.tasks / secs),
                   "syscalls_per_task": round(calls / a.tasks, 3) if isinstance(calls, float) else calls,
                   "user_us_per_task": round(user * 1e6 / a.tasks, 2),
                   "kernel_us_per_task": round(kernel * 1e6 / a.tasks, 2)}
        r.flushall()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--callgrind-tasks", type=int, default=5000)
    ap.add_argument("--skip-callgrind", action="store_true", help="only the perf stat and transport runs")
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
        ps = perf_stat(w.pid, "task-clock,context-switches,cycles,instructions", stat_file)
        secs, _ = drain("perf stat", r, a.tasks, w, 600)
        ps.send_signal(signal.SIGINT)  # perf attached with -p stops counting and writes its file
        ps.wait(30)
        w.send_signal(signal.SIGINT)
        w.wait(30)
        counters = read_counters(stat_file)
        out["perf_stat"] = {"seconds": round(secs, 3), "tasks_per_s": round(a.tasks / secs), "counters": counters}
        if isinstance(counters.get("task-clock"), float):
            out["perf_stat"]["cpu_us_per_task"] = round(counters["task-clock"] * 1000 / a.tasks, 2)  # task-clock is ms
        if isinstance(counters.get("instructions"), float):
            out["perf_stat"]["instructions_per_task"] = round(counters["instructions"] / a.tasks)
        r.flushall()
        # 3. the broker transports side by side (before callgrind, which is slow)
        out["transports"] = transports(a, url, r, tmp)
        # 2. callgrind on a smaller drain
        if not a.skip_callgrind:
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
    if a.skip_callgrind:  # a partial run keeps the recorded callgrind figures
        old = os.path.join(HERE, "results", "profile.json")
        if os.path.exists(old) and "callgrind" in json.load(open(old)):
            out["callgrind"] = json.load(open(old))["callgrind"]
    json.dump(out, open(os.path.join(HERE, "results", "profile.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))
    print("wrote perf/results/profile.json and perf/results/callgrind-top.txt")


if __name__ == "__main__":
    main()
