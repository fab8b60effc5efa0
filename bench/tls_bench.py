#!/usr/bin/env python3
"""What TLS costs the worker's broker link: drain_bench's workload (N pre-queued `noop`
tasks, results stored) drained by one celeris-worker (-c 2, default flags) over redis://
and over rediss:// to one redis-server (a plaintext port and a TLS port), through sockets
(--io socket) and through io_uring (--io uring), interleaved over --rounds rounds in one run.
Per run: tasks/s, worker and Redis CPU per task; medians and TLS/plain ratios per transport.
Writes perf/results/tls.json.

  tls_bench.py --bin .build/release [--tasks 200000] [--rounds 3]
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, Children, build_running, certificates, cpu_seconds, free_port  # noqa: E402
from drain_bench import drain, fill  # noqa: E402

import redis  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tasks", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=600)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="celeris-tls-bench-")
    certificates(tmp)
    port, tls_port = free_port(), free_port()
    brokers = {
        "plain": f"redis://127.0.0.1:{port}/0",
        "tls": f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=required&ssl_ca_certs={tmp}/ca.pem",
    }
    configs = [(link, io) for io in ("socket", "uring") for link in ("plain", "tls")]
    rounds = {f"{link}-{io}": [] for link, io in configs}
    with Children() as kids:
        rs = kids.tls_redis(port, tls_port, tmp)
        r = redis.Redis(port=port)
        for k in range(a.rounds):
            # alternate the order each round: neither link always runs first
            for link, io in (configs if k % 2 == 0 else list(reversed(configs))):
                name = f"{link}-{io}"
                r.flushall()
                fill(r, a.tasks)
                redis_cpu0 = cpu_seconds(rs.pid)
                w = kids.start([os.path.join(a.bin, "celeris-worker"), "-b", brokers[link], "-c", "2", "--loglevel",
                                "warning", "-n", "w@tlsbench", "--io", io], quiet=False)
                try:
                    secs, peak = drain(f"{name} round {k + 1}", r, a.tasks, w, a.timeout)
                    worker_cpu = cpu_seconds(w.pid)
                finally:
                    w.send_signal(signal.SIGTERM)
                    w.wait(10)
                run = {"tasks_per_s": round(a.tasks / secs), "seconds": round(secs, 3),
                       "loadavg_1m_after": os.getloadavg()[0], "build_running_after": build_running(),
                       "worker_cpu_us_per_task": round(worker_cpu * 1e6 / a.tasks, 2),
                       "redis_cpu_us_per_task": round((cpu_seconds(rs.pid) - redis_cpu0) * 1e6 / a.tasks, 2),
                       "peak_rss_mb": round(peak / 1024, 1)}
                print(f"  {name:13} round {k + 1}: {run['tasks_per_s']:>7} tasks/s  worker {run['worker_cpu_us_per_task']} us/task"
                      f"  redis {run['redis_cpu_us_per_task']} us/task  load {run['loadavg_1m_after']:.1f}"
                      f"{'  (a build ran)' if run['build_running_after'] else ''}", flush=True)
                rounds[name].append(run)
    keys = ("tasks_per_s", "worker_cpu_us_per_task", "redis_cpu_us_per_task", "peak_rss_mb")
    med = {name: {key: statistics.median(x[key] for x in runs) for key in keys} for name, runs in rounds.items()}
    ratios = {io: {"tasks_per_s_tls_over_plain": round(med[f"tls-{io}"]["tasks_per_s"] / med[f"plain-{io}"]["tasks_per_s"], 3),
                   "worker_cpu_tls_over_plain": round(med[f"tls-{io}"]["worker_cpu_us_per_task"]
                                                      / med[f"plain-{io}"]["worker_cpu_us_per_task"], 3),
                   "redis_cpu_tls_over_plain": round(med[f"tls-{io}"]["redis_cpu_us_per_task"]
                                                     / med[f"plain-{io}"]["redis_cpu_us_per_task"], 3)}
              for io in ("socket", "uring")}
    print()
    for name, m in med.items():
        print(f"{name:13} median {m['tasks_per_s']:>9.0f} tasks/s  worker {m['worker_cpu_us_per_task']:.2f} us/task"
              f"  redis {m['redis_cpu_us_per_task']:.2f} us/task")
    for io, x in ratios.items():
        print(f"{io:7} TLS/plain: throughput {x['tasks_per_s_tls_over_plain']}, worker CPU {x['worker_cpu_tls_over_plain']},"
              f" redis CPU {x['redis_cpu_tls_over_plain']}")
    out = {"cpus": os.cpu_count(), "tasks": a.tasks, "rounds": a.rounds, "bin": a.bin,
           "workload": "noop tasks pre-queued, drained by one celeris-worker -c 2 (default flags), results stored",
           "tls": "TLS 1.3, EC P-256 server certificate, ssl_cert_reqs=required (redis-server 7.0 --tls-port)",
           "runs": rounds, "median": med, "tls_over_plain": ratios}
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    json.dump(out, open(os.path.join(ROOT, "perf/results/tls.json"), "w"), indent=1)
    print("wrote perf/results/tls.json")


if __name__ == "__main__":
    main()
