#!/usr/bin/env python3
"""Frontend POST /tasks throughput with a plain vs a TLS (rediss://) broker link, same
redis-server (one plaintext port, one TLS port), alternating rounds in one run: wrk
against celeris-frontend, one frontend at a time. Prints a table and the TLS/plain ratio;
writes perf/results/tls_http.json.

  tls_http_bench.py --bin .build/release [--seconds 5] [--connections 64] [--rounds 3] [--loops 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, Children, certificates, cpu_seconds, free_port, wait_http  # noqa: E402
from http_bench import wrk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loops", type=int, default=1)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="celeris-tls-bench-")
    certificates(tmp)
    post = os.path.join(tmp, "post.lua")
    open(post, "w").write('wrk.method = "POST"\n')
    port, tls_port = free_port(), free_port()
    brokers = {
        "plain": f"redis://127.0.0.1:{port}/0",
        "tls": f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tmp}/ca.pem",
    }
    runs = {"plain": [], "tls": []}
    kids = Children()
    try:
        rs = kids.tls_redis(port, tls_port, tmp)
        for r in range(a.rounds):
            for name in (("plain", "tls") if r % 2 == 0 else ("tls", "plain")):
                cport = free_port()
                f = kids.start([os.path.join(a.bin, "celeris-frontend"), "-b", brokers[name], "--host", "127.0.0.1",
                                "--port", str(cport), "--loops", str(a.loops), "--loglevel", "error"])
                wait_http(f"http://127.0.0.1:{cport}/health")
                cpu0 = (cpu_seconds(f.pid), cpu_seconds(rs.pid))
                res = wrk(f"http://127.0.0.1:{cport}/tasks", a.seconds, a.connections, post)
                cpu1 = (cpu_seconds(f.pid), cpu_seconds(rs.pid))
                done = max(res["rps"] * a.seconds, 1) / 1e6
                # CPU microseconds per request: the frontend's, redis-server's.
                res["frontend_cpu_us"] = round((cpu1[0] - cpu0[0]) / done, 1)
                res["redis_cpu_us"] = round((cpu1[1] - cpu0[1]) / done, 1)
                print(f"  round {r + 1} {name:5}: {res['rps']:10.0f} req/s  p99 {res['p99_ms']:.2f} ms  non-2xx {res['non_2xx']}"
                      f"  cpu/req frontend {res['frontend_cpu_us']} us, redis {res['redis_cpu_us']} us", flush=True)
                runs[name].append(res)
                kids.stop(f)
                subprocess.run(["redis-cli", "-p", str(port), "flushall"], capture_output=True)
    finally:
        kids.__exit__(None, None, None)
    med = {k: statistics.median(x["rps"] for x in v) for k, v in runs.items()}
    cpu = {k: {c: statistics.median(x[c] for x in v) for c in ("frontend_cpu_us", "redis_cpu_us")} for k, v in runs.items()}
    print(f"median cpu/req (us): {cpu}")
    ratio = round(med["tls"] / med["plain"], 3)
    print(f"\nmedian POST /tasks req/s: plain {med['plain']:.0f}, tls {med['tls']:.0f}; tls/plain = {ratio}")
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    json.dump({"connections": a.connections, "seconds": a.seconds, "rounds": a.rounds, "loops": a.loops,
               "cpus": os.cpu_count(), "bin": a.bin, "runs": runs, "median_rps": med,
               "median_cpu_us_per_request": cpu, "tls_over_plain": ratio},
              open(os.path.join(ROOT, "perf/results/tls_http.json"), "w"), indent=1)
    print("wrote perf/results/tls_http.json")


if __name__ == "__main__":
    main()
