#!/usr/bin/env python3
"""Durable enqueue bench: what `--durable-enqueue 1` (Redis WAIT 1 T after each loop
turn's pushes) costs POST /tasks. A master redis-server and one replica (`--replicaof`) on
loopback; the Celeris frontend off vs on, alternating in one run, wrk at 1 connection
(latency of a lone client: one replication round trip per request) and at 64 connections
(throughput: requests of one loop turn share a WAIT). Also counts the WAITs Redis ran per
request (INFO commandstats). Prints a table and writes perf/results/durable.json.

  durable_bench.py --bin .build/release [--seconds 5] [--rounds 2]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

from benchlib import ROOT, Children, build_running, free_port, wait_http


def wrk(url, seconds, conns, script):
    threads = min(2, conns)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", script, url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout

    def ms(pct):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        return round(float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)], 3)

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": ms(50),
        "p99_ms": ms(99),
        "requests": total,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def calls(port, command):
    m = re.search(rf"cmdstat_{command}:calls=(\d+)", cli(port, "INFO", "commandstats"))
    return int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout-ms", type=int, default=1000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="celeris-durable-bench-")
    post = os.path.join(tmp, "post.lua")
    open(post, "w").write('wrk.method = "POST"\nwrk.path = "/tasks?task_length=0"\n')
    mport, rport = free_port(), free_port()
    results = {"runs": []}
    with Children() as kids:
        kids.redis(mport)
        kids.redis(rport, "--replicaof", "127.0.0.1", str(mport))
        deadline = time.time() + 15
        while "master_link_status:up" not in cli(rport, "INFO", "replication"):
            if time.time() > deadline:
                raise SystemExit("replica did not link")
            time.sleep(0.1)
        for rnd in range(a.rounds):
            for mode in ("off", "on"):
                port = free_port()
                extra = ["--durable-enqueue", "1", "--durable-timeout-ms", str(a.timeout_ms)] if mode == "on" else []
                fe = kids.start([
                    os.path.join(a.bin, "celeris-frontend"), "-b", f"redis://127.0.0.1:{mport}/0", "--host", "127.0.0.1",
                    "--port", str(port), "--loglevel", "warning", *extra])
                wait_http(f"http://127.0.0.1:{port}/health")
                for conns in (1, 64):
                    cli(mport, "FLUSHALL")
                    cli(mport, "CONFIG", "RESETSTAT")
                    busy = build_running()
                    r = wrk(f"http://127.0.0.1:{port}/tasks?task_length=0", a.seconds, conns, post)
                    r["build_running"] = busy or build_running()
                    r["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                    r["waits"] = calls(mport, "wait")
                    r["lpushes"] = calls(mport, "lpush")
                    r["waits_per_request"] = round(r["waits"] / max(1, r["lpushes"]), 4)
                    # Everything answered 200 is on the replica (with durable on, at the answer).
                    time.sleep(0.5)
                    r["replica_llen"] = int(cli(rport, "LLEN", "celery").strip() or 0)
                    r["master_llen"] = int(cli(mport, "LLEN", "celery").strip() or 0)
                    r.update({"round": rnd + 1, "durable": mode, "connections": conns})
                    results["runs"].append(r)
                    print(f"round {rnd + 1} durable {mode:3} c={conns:2}: {r['rps']:>9.1f} req/s  "
                          f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  non-2xx {r['non_2xx']}  "
                          f"WAITs/request {r['waits_per_request']}"
                          + ("  (a build ran)" if r["build_running"] else ""), flush=True)
                kids.stop(fe)
    summary = {}
    for mode in ("off", "on"):
        for conns in (1, 64):
            rs = [r for r in results["runs"] if r["durable"] == mode and r["connections"] == conns]
            summary[f"durable {mode}, {conns} connection(s)"] = {
                "rps_median": statistics.median(r["rps"] for r in rs),
                "p50_ms_median": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in rs),
                "waits_per_request": statistics.median(r["waits_per_request"] for r in rs),
                "runs_with_a_build_running": sum(r["build_running"] for r in rs),
            }
    results["summary"] = summary
    results["setup"] = {
        "cpus": os.cpu_count(),
        "seconds": a.seconds,
        "rounds": a.rounds,
        "durable_timeout_ms": a.timeout_ms,
        "topology": "master + 1 replica redis-server on loopback, same machine; frontend default loops (one per CPU)",
        "load": "wrk POST /tasks?task_length=0",
    }
    out = os.path.join(ROOT, "perf", "results", "durable.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
