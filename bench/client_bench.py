"""The Swift client (CelerisClient, bench/clientbench) against the Python Celery 5.7 client,
same run, same Redis, same Celeris worker (-c 2):
  sends/s: `--sends` `add` messages sent (ignore_result), each awaited before the next
           (Swift also with 100 in flight: how an async app sends);
  round trip: `--trips` `add(i, 1)` one after another, send → result (Swift: get() through the
           result channel; Python: apply_async().get(), Celery's pub/sub result consumer), p50/p99.
The queue is drained by the worker meanwhile (it runs the sends too).

  .venv/bin/python bench/client_bench.py --bin "$(swift build -c release --show-bin-path)" \
      --client-bin "$(cd bench/clientbench && swift build -c release --show-bin-path)"
Writes perf/results/client.json.
"""
import argparse
import json
import os
import sys
import time

from benchlib import ROOT, Children, free_port


def python_client(url, sends, trips):
    from celery import Celery

    app = Celery("client_bench", broker=url, backend=url)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    add = app.signature("add")
    add.apply_async((0, 0), ignore_result=True)  # connect, declare
    start = time.perf_counter()
    for _ in range(sends):
        app.send_task("add", (1, 1), ignore_result=True)
    rate = sends / (time.perf_counter() - start)
    lat = []
    for i in range(trips):
        t = time.perf_counter()
        assert app.send_task("add", (i, 1)).get(timeout=30) == i + 1
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"sends_per_s": rate, "p50_ms": lat[len(lat) // 2], "p99_ms": lat[max(0, int(len(lat) * 0.99) - 1)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="release bin dir with celeris-worker")
    ap.add_argument("--client-bin", required=True, help="release bin dir of bench/clientbench (client-bench)")
    ap.add_argument("--sends", type=int, default=10000)
    ap.add_argument("--trips", type=int, default=1000)
    a = ap.parse_args()
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    out = {"cpus": os.cpu_count(), "sends": a.sends, "round_trips": a.trips}
    with Children() as kids:
        kids.redis(port)
        kids.start([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", "2", "--loglevel", "warning"])
        time.sleep(1)
        print("Swift client ...", flush=True)
        import subprocess

        line = subprocess.run([os.path.join(a.client_bin, "client-bench"), url, str(a.sends), str(a.trips)],
                              capture_output=True, text=True, check=True, timeout=600).stdout.strip().splitlines()[-1]
        out["swift"] = json.loads(line)
        print("  ", out["swift"], flush=True)
        print("Python Celery client ...", flush=True)
        out["python"] = python_client(url, a.sends, a.trips)
        print("  ", out["python"], flush=True)
    for k in ("swift", "python"):
        out[k] = {key: round(v, 3) if isinstance(v, float) else v for key, v in out[k].items()}
    path = os.path.join(ROOT, "perf", "results", "client.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    sys.exit(main())
