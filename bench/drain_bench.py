#!/usr/bin/env python3
"""Drain bench (issue 4's macro table): N pre-queued `noop` tasks, results
stored in Celery's format, drained by a Celeris worker and by Python Celery
(prefork -c 2) in one run; worker peak RSS; Redis commands per task from
INFO commandstats; redis-benchmark -P 32 as the box's limit; then end-to-end
latency (scheduled LPUSH -> result published) at fixed offered rates with the
native client tasklat/tasklat.c, percentiles from an HdrHistogram, bracketed by
wakeprobe/wakeprobe.c (how late this machine wakes a thread sleeping 100 us at a
time, the worker and Redis idle: a floor under any p99 here). Writes perf/results/drain.json.

Scaling runs on the same workload: the io_uring worker with larger prefetch
windows (--wide-prefetch) and K worker processes sharing the broker
(--processes), as "many workers, one broker" deploys.

  drain_bench.py --bin .build/release [--tasks 200000] [--celery-tasks 20000] [--rates 1000,10000,50000]
                 [--wide-prefetch 256] [--processes 2]
  drain_bench.py --bin .build/release --defaults-only [--tuned 64,256] [--repeats 3]

The "celeris-defaults" row runs the worker with default flags (no --prefetch-multiplier:
the claim budget sizes its window from the tasks' run times); `defaults_vs_best_tuned`
compares it with the best one-process run with a set multiplier in the same run.
"""
import argparse

from benchlib import BUILD, HERE, ROOT, Children, cpu_seconds, free_port, native_client, rss_kb, wait_http
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import redis




def envelope(i, task="noop"):
    tid = str(uuid.uuid4())
    body = base64.b64encode(json.dumps([[i], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()).decode()
    return json.dumps({"body": body, "content-encoding": "utf-8", "content-type": "application/json",
                       "headers": {"lang": "py", "task": task, "id": tid, "shadow": None, "eta": None, "expires": None,
                                   "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
                                   "root_id": tid, "parent_id": None, "argsrepr": f"({i},)", "kwargsrepr": "{}",
                                   "origin": "bench", "ignore_result": False, "replaced_task_nesting": 0,
                                   "stamped_headers": None, "stamps": {}},
                       "properties": {"correlation_id": tid, "reply_to": "bench", "delivery_mode": 2,
                                      "delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0,
                                      "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}})


def fill(r, n, task="noop"):
    print(f"  queueing {n} {task} tasks ...", flush=True)
    for start in range(0, n, 10000):
        p = r.pipeline(transaction=False)
        for i in range(start, min(n, start + 10000)):
            p.lpush("celery", envelope(i, task))
        p.execute()


def drain(name, r, n, proc, timeout):
    start, last, peak = time.time(), 0, 0
    while True:
        done = r.eval("return #redis.call('KEYS', 'celery-task-meta-*')", 0) if n <= 50000 else n - waiting(r)
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmRSS:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        if done >= n:
            break
        if time.time() - start > timeout:
            raise SystemExit(f"{name}: only {done}/{n} after {timeout}s")
        if time.time() - last >= 1:
            print(f"  {name}: {time.time() - start:6.1f}s {done}/{n}", flush=True)
            last = time.time()
        time.sleep(0.02)
    secs = time.time() - start
    while waiting(r):
        time.sleep(0.01)
    return secs, peak


# Messages not done: queued, claimed and recorded in `unacked`, or (claiming by move) in a claiming list.
WAITING = """local n = redis.call('LLEN', 'celery') + redis.call('HLEN', 'unacked')
for _, k in ipairs(redis.call('ZRANGE', 'celeris.claiming', 0, -1)) do n = n + redis.call('LLEN', k) end
return n"""


def waiting(r):
    return r.eval(WAITING, 0)


def wait_drained(r, n, proc, label, timeout, every=1.0, poll=0.02):
    """Wait until none of the `n` queued tasks waits, printing progress every `every`
    seconds; kill `proc` and stop the run after `timeout` seconds."""
    start, last = time.time(), 0
    while waiting(r):
        if time.time() - last >= every:
            print(f"  {label}: {n - r.llen('celery')}/{n} claimed", flush=True)
            last = time.time()
        if time.time() - start > timeout:
            proc.kill()
            raise SystemExit(f"{label}: drain did not finish in {timeout} s")
        time.sleep(poll)


def commandstats(r):
    """Calls and microseconds per command since the last CONFIG RESETSTAT."""
    return {k.replace("cmdstat_", ""): (v["calls"], v["usec"]) for k, v in r.info("commandstats").items()}


def redis_cost(stats, redis_cpu, worker_cpu, n):
    """Where Redis' CPU goes per task: the claim script (with the RPOP, HSET and ZADD it
    runs), the completion transactions (with their SETEX, PUBLISH, ZREM, HDEL), and the
    rest (reading and parsing commands, writing replies: what commandstats does not time);
    the ceiling one Redis core sets at that cost, whatever the worker does."""
    us = lambda name: stats.get(name, (0, 0))[1] / n
    total = redis_cpu * 1e6 / n
    cost = {"redis_cpu_us_per_task": round(total, 2), "worker_cpu_us_per_task": round(worker_cpu * 1e6 / n, 2),
            "claim_script_us": round(us("evalsha"), 2), "completion_transactions_us": round(us("exec"), 2),
            "by_command_us": {k: round(v[1] / n, 2) for k, v in stats.items() if v[0] >= 100}}
    # commandstats times a script's or a transaction's commands twice: alone and within it
    inner = ("rpop", "hset", "zadd", "time", "setex", "publish", "zrem", "hdel", "del")
    cost["io_and_parsing_us"] = round(total - sum(us(k) for k in stats if k not in inner), 2)
    cost["redis_bound_ceiling_tasks_per_s"] = round(1e6 / total) if total else None
    return cost


def wake_lateness(probe, seconds=3):
    """How late the machine wakes a thread sleeping 100 us at a time (us percentiles)."""
    print(f"wake-up probe, {seconds} s ...", flush=True)
    done = subprocess.run([probe, str(seconds), "100"], timeout=seconds + 60, stdout=subprocess.PIPE, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["late_us"]


def worst_lateness(runs):
    """The load generator's lateness over several runs: each percentile's worst run."""
    lags = [x["sender_lateness"] for x in runs if x.get("sender_lateness")]
    return {p: max(x[p] for x in lags) for p in ("p50", "p99")} if lags else None


def defaults_ratio(runs):
    """The default-flags drain against the best one-process drain with a set --prefetch-multiplier."""
    tuned = {k: v for k, v in runs.items() if v.get("processes") == 1 and v.get("prefetch_multiplier")}
    best = max(tuned, key=lambda k: tuned[k]["tasks_per_s"])
    d = runs["celeris-defaults"]["tasks_per_s"]
    return {"defaults_tasks_per_s": d, "best": best, "best_tasks_per_s": tuned[best]["tasks_per_s"],
            "ratio": round(d / tuned[best]["tasks_per_s"], 3)}


def defaults_only(a):
    """--defaults-only: the default-flags worker next to tuned windows (script and move claims),
    interleaved over --repeats rounds in one run; writes perf/results/drain_defaults.json."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    configs = [("celeris-defaults", None, "script"), ("celeris-defaults-claim-move", None, "move")]
    configs += [(f"celeris-prefetch-{m}", int(m), "script") for m in a.tuned.split(",")]
    configs += [(f"celeris-claim-move-prefetch-{m}", int(m), "move") for m in a.tuned.split(",")]
    rounds = {name: [] for name, _, _ in configs}
    rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                          stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = redis.Redis(port=port)
        for k in range(a.repeats):
            for name, multiplier, claim in configs:
                r.flushall()
                fill(r, a.tasks)
                window = [] if multiplier is None else ["--prefetch-multiplier", str(multiplier)]
                w = subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                                      "-n", "w@bench", *window, "--claim", claim])
                try:
                    secs, peak = drain(f"{name} round {k + 1}", r, a.tasks, w, a.timeout)
                finally:
                    w.send_signal(signal.SIGTERM)
                    w.wait(10)
                rounds[name].append({"tasks_per_s": round(a.tasks / secs), "peak_rss_mb": round(peak / 1024, 1)})
    finally:
        rs.kill()
    runs = {}
    for name, multiplier, claim in configs:
        rates = sorted(x["tasks_per_s"] for x in rounds[name])
        runs[name] = {"tasks": a.tasks, "processes": 1, "prefetch_multiplier": multiplier, "claim": claim,
                      "tasks_per_s": rates[len(rates) // 2], "rounds": rounds[name]}
    out = {"cpus": os.cpu_count(), "tasks": a.tasks, "repeats": a.repeats, "runs": runs,
           "note": "median of interleaved rounds; -c 2, io_uring where allowed (auto), one worker process"}
    out["defaults_vs_best_tuned"] = defaults_ratio({k: v for k, v in runs.items() if v["claim"] == "script"})
    out["defaults_vs_best_tuned_claim_move"] = defaults_ratio(
        {("celeris-defaults" if k == "celeris-defaults-claim-move" else k): v for k, v in runs.items() if v["claim"] == "move"})
    for name, run in runs.items():
        print(f"{name:36} {run['tasks_per_s']:>9} tasks/s  rounds {[x['tasks_per_s'] for x in run['rounds']]}")
    for key in ("defaults_vs_best_tuned", "defaults_vs_best_tuned_claim_move"):
        d = out[key]
        print(f"{key}: {d['defaults_tasks_per_s']} / {d['best_tasks_per_s']} ({d['best']}) = {d['ratio']:.0%}")
    json.dump(out, open(os.path.join(ROOT, "perf/results/drain_defaults.json"), "w"), indent=1)
    print("wrote perf/results/drain_defaults.json")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", type=int, default=200000)
    ap.add_argument("--celery-tasks", type=int, default=20000, help="Celery is ~100x slower: a smaller run, same rate")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--prefetch-multiplier", type=int, default=4)
    ap.add_argument("--rates", default="1000,10000,50000", help="offered tasks/s for the latency runs")
    ap.add_argument("--latency-seconds", type=float, default=5)
    ap.add_argument("--latency-repeats", type=int, default=3, help="runs per unsaturated rate (up to 10k/s)")
    ap.add_argument("--wide-prefetch", default="256", help="extra io_uring drains with these prefetch multipliers")
    ap.add_argument("--processes", type=int, default=2, help="a drain by this many worker processes (0: none)")
    ap.add_argument("--defaults-only", action="store_true",
                    help="only the default-flags worker next to --tuned windows (drain_defaults.json)")
    ap.add_argument("--tuned", default="64,256", help="--defaults-only: the tuned prefetch multipliers")
    ap.add_argument("--repeats", type=int, default=3, help="--defaults-only: interleaved rounds")
    a = ap.parse_args()
    if a.defaults_only:
        return defaults_only(a)
    from hdrh.histogram import HdrHistogram  # the latency runs only
    tasklat = native_client("tasklat")
    wakeprobe = native_client("wakeprobe")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    procs = []
    out = {"cpus": os.cpu_count(), "runs": {}}
    try:
        rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        procs.append(rs)
        time.sleep(0.5)
        r = redis.Redis(port=port)
        print("redis-benchmark -P 32 (the box's limit) ...", flush=True)
        rb = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "32", "-q", "-n", "300000", "-t", "lpush,rpop,set,hset,zadd"],
                            capture_output=True, text=True, timeout=120).stdout
        out["redis_benchmark_P32"] = {
            m.group(1): float(m.group(2)) for m in re.finditer(r"^\s*([A-Z][A-Z_ ()0-9]*?):\s+([\d.]+) requests per second", rb, re.M)}
        r.flushall()
        # Celeris over the plain-socket broker transport (the io_uring run is the main one, below)
        fill(r, a.tasks)
        w = subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                              "--prefetch-multiplier", str(a.prefetch_multiplier), "--io", "socket"])
        procs.append(w)
        secs, peak = drain("celeris-socket", r, a.tasks, w, a.timeout)
        w.send_signal(signal.SIGTERM); w.wait(10)
        out["runs"]["celeris-socket"] = {"tasks": a.tasks, "seconds": round(secs, 3), "tasks_per_s": round(a.tasks / secs),
                                         "peak_rss_mb": round(peak / 1024, 1)}
        r.flushall()
        # Celeris, io_uring broker transport (--io uring: fails loudly where io_uring is refused)
        fill(r, a.tasks)
        r.config_resetstat()
        redis_cpu0 = cpu_seconds(rs.pid)
        w = subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                              "--prefetch-multiplier", str(a.prefetch_multiplier), "--io", "uring"])
        procs.append(w)
        secs, peak = drain("celeris", r, a.tasks, w, a.timeout)
        stats = commandstats(r)
        cost = redis_cost(stats, cpu_seconds(rs.pid) - redis_cpu0, cpu_seconds(w.pid), a.tasks)
        w.send_signal(signal.SIGTERM); w.wait(10)
        out["runs"]["celeris"] = {"tasks": a.tasks, "seconds": round(secs, 3), "tasks_per_s": round(a.tasks / secs),
                                  "peak_rss_mb": round(peak / 1024, 1),
                                  "redis_commands_per_task": {k: round(v[0] / a.tasks, 3) for k, v in stats.items() if v[0] >= 100},
                                  "redis_commands_per_task_total": round(sum(v[0] for v in stats.values()) / a.tasks, 2),
                                  "cpu": cost}
        r.flushall()
        # Scaling: a wider prefetch window; several worker processes on the one broker
        # The worker with default flags (no --prefetch-multiplier: the claim budget sizes the window)
        scaling = [("celeris-defaults", 1, None, "script")]
        scaling += [(f"celeris-prefetch-{m}", 1, int(m), "script") for m in a.wide_prefetch.split(",") if m]
        if a.processes > 1:
            scaling.append((f"celeris-{a.processes}-processes", a.processes, a.prefetch_multiplier, "script"))
        # The same runs claiming by move (`--claim move`: each batch moved in one transaction, records written by the worker)
        scaling += [(f"celeris-claim-move-prefetch-{m}", 1, m, "move")
                    for m in [a.prefetch_multiplier] + [int(m) for m in a.wide_prefetch.split(",") if m]]
        if a.processes > 1:
            scaling.append((f"celeris-claim-move-{a.processes}-processes", a.processes, a.prefetch_multiplier, "move"))
        for name, k, multiplier, claim in scaling:
            fill(r, a.tasks)
            if name == f"celeris-claim-move-prefetch-{a.prefetch_multiplier}":
                r.config_resetstat()
                redis_cpu0 = cpu_seconds(rs.pid)
            window = [] if multiplier is None else ["--prefetch-multiplier", str(multiplier)]
            ws = [subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                                    "-n", f"w{i}@bench", *window, "--claim", claim])
                  for i in range(k)]
            procs.extend(ws)
            secs, peak = drain(name, r, a.tasks, ws[0], a.timeout)
            out["runs"][name] = {"tasks": a.tasks, "seconds": round(secs, 3), "tasks_per_s": round(a.tasks / secs),
                                 "processes": k, "prefetch_multiplier": multiplier, "claim": claim}
            if name == f"celeris-claim-move-prefetch-{a.prefetch_multiplier}":
                out["runs"][name]["cpu"] = redis_cost(commandstats(r), cpu_seconds(rs.pid) - redis_cpu0,
                                                      cpu_seconds(ws[0].pid), a.tasks)
            for w in ws:
                w.send_signal(signal.SIGTERM)
            for w in ws:
                w.wait(10)
            r.flushall()
        # End-to-end latency at fixed offered rates (a fresh worker, an empty queue)
        w = subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning",
                              "--prefetch-multiplier", str(a.prefetch_multiplier)])
        procs.append(w)
        time.sleep(1)
        out["latency_us"] = {}
        out["wake_late_us"] = {"before": wake_lateness(wakeprobe)}
        for rate in [int(x) for x in a.rates.split(",")]:
            # Unsaturated rates run several times: the percentiles pool every run's tasks, and each
            # run's p99 is kept too, since this machine's stalls move it from run to run.
            repeats = a.latency_repeats if rate <= 10_000 else 1
            pooled = HdrHistogram(1, 600_000_000, 3)
            n, runs = 0, []
            for k in range(repeats):
                print(f"latency at {rate} tasks/s offered, run {k + 1}/{repeats} ...", flush=True)
                path = os.path.join(BUILD, f"latency-{rate}.txt")
                done = subprocess.run([tasklat, str(port), str(rate), str(a.latency_seconds), path],
                                      timeout=a.latency_seconds + 600, stdout=subprocess.PIPE, text=True)
                summary = json.loads(done.stdout.strip().splitlines()[-1])  # the sender's own lateness
                h = HdrHistogram(1, 600_000_000, 3)
                for line in open(path):
                    v = max(1, int(float(line)))
                    h.record_value(v)
                    pooled.record_value(v)
                    n += 1
                runs.append({"p50": h.get_value_at_percentile(50), "p99": h.get_value_at_percentile(99),
                             "sender_lateness": summary.get("send_lag_us")})
                r.flushall()
            out["latency_us"][str(rate)] = {"tasks": n, **{p: pooled.get_value_at_percentile(q) for p, q in
                                                            (("p50", 50), ("p99", 99), ("p999", 99.9), ("max", 100))},
                                            "sender_lateness": worst_lateness(runs), "runs": runs}
        out["wake_late_us"]["after"] = wake_lateness(wakeprobe)
        w.send_signal(signal.SIGTERM); w.wait(10)
        # Python Celery prefork
        fill(r, a.celery_tasks)
        env = dict(os.environ, CELERY_BROKER_URL=url)
        celery = os.path.join(os.path.dirname(sys.executable), "celery")
        p = subprocess.Popen([celery, "-A", "tasks_app", "worker", "--pool=prefork", "-c", "2", "--loglevel=warning",
                              "--without-mingle", "--without-gossip"], cwd=os.path.join(HERE, "peers"), env=env)
        procs.append(p)
        secs, peak = drain("celery", r, a.celery_tasks, p, a.timeout)
        p.send_signal(signal.SIGTERM); p.wait(30)
        out["runs"]["celery-prefork-c2"] = {"tasks": a.celery_tasks, "seconds": round(secs, 3), "tasks_per_s": round(a.celery_tasks / secs)}
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
    c, py, cs = out["runs"]["celeris"], out["runs"]["celery-prefork-c2"], out["runs"]["celeris-socket"]
    out["defaults_vs_best_tuned"] = defaults_ratio(out["runs"])
    out["ratio"] = round(c["tasks_per_s"] / py["tasks_per_s"], 1)
    out["uring_vs_socket"] = round(c["tasks_per_s"] / cs["tasks_per_s"], 2)
    print(f"\nredis-benchmark -P 32: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in out["redis_benchmark_P32"].items()))
    print(f"{'worker':20} {'tasks':>8} {'seconds':>9} {'tasks/s':>9} {'peak RSS':>9}")
    print(f"{'celeris io_uring':20} {c['tasks']:8} {c['seconds']:9.2f} {c['tasks_per_s']:9} {c['peak_rss_mb']:8.1f}M")
    print(f"{'celeris socket':20} {cs['tasks']:8} {cs['seconds']:9.2f} {cs['tasks_per_s']:9} {cs['peak_rss_mb']:8.1f}M")
    print(f"{'celery prefork -c 2':20} {py['tasks']:8} {py['seconds']:9.2f} {py['tasks_per_s']:9}")
    for name, run in out["runs"].items():
        if "processes" in run:
            label = (f"{run['processes']} x celeris, prefetch x{run['prefetch_multiplier'] or 'default'},"
                     f" --claim {run['claim']}")
            print(f"{label:42} {run['tasks']:8} {run['seconds']:9.2f} {run['tasks_per_s']:9}"
                  f"  ({run['tasks_per_s'] / py['tasks_per_s']:.1f}x Celery)")
    print(f"(celeris: -c 2, prefetch x{a.prefetch_multiplier}) io_uring / socket: {out['uring_vs_socket']}")
    print(f"Celeris / Celery: {out['ratio']}x; Redis commands per task (Celeris): "
          f"{c['redis_commands_per_task_total']} {c['redis_commands_per_task']}")
    k = c["cpu"]
    print(f"CPU per task (io_uring drain): Redis {k['redis_cpu_us_per_task']} us = claim script {k['claim_script_us']}"
          f" + completion transactions {k['completion_transactions_us']} + reading/parsing/replying {k['io_and_parsing_us']};"
          f" worker {k['worker_cpu_us_per_task']} us. One Redis core at that cost: at most"
          f" {k['redis_bound_ceiling_tasks_per_s']:,} tasks/s, whatever the worker does.")
    for name, run in out["runs"].items():
        if "cpu" in run and name != "celeris":
            k = run["cpu"]
            print(f"  {name}: Redis {k['redis_cpu_us_per_task']} us per task (the claim by move's transactions and records:"
                  f" see by_command_us in the JSON), worker {k['worker_cpu_us_per_task']} us;"
                  f" ceiling {k['redis_bound_ceiling_tasks_per_s']:,} tasks/s")
    print(f"\n{'offered tasks/s':>16} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9} {'max ms':>9}"
          f" {'sender late p50/p99 ms':>24}")
    for rate, l in out["latency_us"].items():
        late = l.get("sender_lateness") or {}
        print(f"{rate:>16} {l['p50'] / 1000:9.2f} {l['p99'] / 1000:9.2f} {l['p999'] / 1000:9.2f} {l['max'] / 1000:9.2f}"
              f" {late.get('p50', 0) / 1000:>15.2f} / {late.get('p99', 0) / 1000:.2f}"
              + ("   p99 by run: " + ", ".join(f"{x['p99'] / 1000:.2f}" for x in l["runs"]) + " ms"
                 if len(l.get("runs", [])) > 1 else ""))
    for when, late in out["wake_late_us"].items():
        print(f"{'idle wake-up late':>16} p50 {late['p50'] / 1000:.2f} ms, p99 {late['p99'] / 1000:.2f} ms,"
              f" p99.9 {late['p999'] / 1000:.2f} ms, max {late['max'] / 1000:.2f} ms ({when} the latency runs:"
              f" a thread sleeping 100 us at a time, the worker and Redis idle)")
    d = out["defaults_vs_best_tuned"]
    print(f"defaults: {d['defaults_tasks_per_s']} tasks/s = {d['ratio']:.0%} of the best tuned one-process drain"
          f" ({d['best']}: {d['best_tasks_per_s']} tasks/s)")
    json.dump(out, open(os.path.join(ROOT, "perf/results/drain.json"), "w"), indent=1)
    print("wrote perf/results/drain.json")


if __name__ == "__main__":
    main()
