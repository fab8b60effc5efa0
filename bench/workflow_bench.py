#!/usr/bin/env python3
"""Document-workflow bench: Celeris workers against the Python reference
pipeline (Celery prefork -c 2, bench/peers/doc_pipeline.py) on the same
generated corpus, in one run on this machine. Prints a table, writes
perf/results/workflow.json, cross-checks both results on the planted pairs.

  workflow_bench.py --bin .build/release [--docs 2000] [--pairs 20] [--timeout 900]
"""
import argparse

from benchlib import HERE, ROOT, Children, free_port, rss_kb, wait_http
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis
from celery import Celery




def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run_workflow(name, url, corpus, timeout):
    """Send fetch_documents_task(corpus, process=True); follow its id to the result."""
    r = redis.Redis.from_url(url)
    app = Celery("bench", broker=url, backend=url)
    start = time.time()
    res = app.send_task("fetch_documents_task", (corpus,), {"process": True}, queue="fetch_queue")
    last = 0.0
    while True:
        raw = r.get(f"celery-task-meta-{res.id}")
        rec = json.loads(raw) if raw else {"status": "PENDING"}
        if rec["status"] in ("SUCCESS", "FAILURE"):
            break
        now = time.time()
        if now - start > timeout:
            raise SystemExit(f"{name}: no result after {timeout} s")
        if now - last >= 1:
            meta = rec.get("result") if isinstance(rec.get("result"), dict) else {}
            print(f"  {name}: {now - start:6.1f} s  {rec['status']} {json.dumps(meta)[:80]}", flush=True)
            last = now
        time.sleep(0.02)
    elapsed = time.time() - start
    if rec["status"] != "SUCCESS":
        raise SystemExit(f"{name}: workflow failed: {rec.get('result')}")
    return elapsed, rec["result"]


def found_pairs(result):
    return sorted(sorted([os.path.basename(p["a"]), os.path.basename(p["b"])]) for p in result["pairs"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with celeris-worker (release build)")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--concurrency", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="celeris-bench-")
    corpus = os.path.join(work, "corpus")
    print(f"generating {a.docs} documents with {a.pairs} planted pairs ...", flush=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts/make_corpus.py"), corpus, str(a.docs), "--pairs", str(a.pairs)], check=True)
    planted = json.load(open(corpus + ".planted.json"))["pairs"]
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    procs = []
    try:
        rs = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        procs.append(rs)
        wait_for(lambda: _ping(url), 10, "redis-server")
        rows = {}
        # Celeris
        print(f"Celeris: celeris-worker -Q fetch_queue,extract_queue,compare_queue -c {a.concurrency}", flush=True)
        w = subprocess.Popen([os.path.join(a.bin, "celeris-worker"), "-b", url, "-Q", "fetch_queue,extract_queue,compare_queue", "-c", str(a.concurrency), "--loglevel", "warning"])
        procs.append(w)
        time.sleep(0.5)
        rows["celeris"] = run_workflow("celeris", url, corpus, a.timeout)
        w.terminate(); w.wait(10)
        redis.Redis.from_url(url).flushall()
        # Python reference
        print(f"Python: celery worker --pool=prefork -c {a.concurrency} (bench/peers/doc_pipeline.py)", flush=True)
        env = dict(os.environ, CELERY_BROKER_URL=url)
        celery_bin = os.path.join(os.path.dirname(sys.executable), "celery")
        p = subprocess.Popen([celery_bin, "-A", "doc_pipeline", "worker", "--pool=prefork", "-c", str(a.concurrency), "-Q", "fetch_queue,extract_queue,compare_queue", "--loglevel=warning", "--without-mingle", "--without-gossip"], cwd=os.path.join(HERE, "peers"), env=env)
        procs.append(p)
        app = Celery("probe", broker=url, backend=url)
        wait_for(lambda: bool(app.control.inspect(timeout=0.5).ping()), 60, "python worker")
        rows["python"] = run_workflow("python", url, corpus, a.timeout)
        p.terminate(); p.wait(30)
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
        shutil.rmtree(work, ignore_errors=True)
        try:
            os.remove(corpus + ".planted.json")
        except OSError:
            pass
    out = {"machine": platform.node(), "cpus": os.cpu_count(), "documents": a.docs, "planted_pairs": len(planted), "runs": {}}
    print()
    print(f"{'system':10} {'seconds':>9} {'docs/s':>10} {'pairs ok':>9}")
    for name, (secs, result) in rows.items():
        ok = found_pairs(result) == sorted(planted)
        out["runs"][name] = {"seconds": round(secs, 3), "docs_per_s": round(a.docs / secs, 1), "planted_pairs_match": ok, "pairs_found": len(result["pairs"])}
        print(f"{name:10} {secs:9.2f} {a.docs / secs:10.1f} {str(ok):>9}")
    ratio = rows["python"][0] / rows["celeris"][0]
    out["ratio_docs_per_s"] = round(ratio, 2)
    print(f"\nCeleris / Python documents/s: {ratio:.1f}x (target >= 20x)")
    os.makedirs(os.path.join(ROOT, "perf/results"), exist_ok=True)
    with open(os.path.join(ROOT, "perf/results/workflow.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("wrote perf/results/workflow.json")


def _ping(url):
    try:
        return redis.Redis.from_url(url).ping()
    except Exception:
        return False


if __name__ == "__main__":
    main()
