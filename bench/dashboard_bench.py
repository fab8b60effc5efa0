#!/usr/bin/env python3
"""Dashboard under load: what the page at GET / costs the browser while tasks stream in.

Release celeris-frontend + celeris-worker on an embedded redis-server, headless Chromium on the
dashboard (Tests/Browser/cdp.py). A load generator POSTs create_task (task_length 1 by default:
a PROGRESS and a SUCCESS on task_status per task) to /tasks at --rate tasks/s for --seconds;
the page lists the firehose (task_status) and, with --page-tasks N, also submits N tasks of
its own through #task-form (subscribed over /ws). Measured over the load window:
  - page CPU: Performance.getMetrics TaskDuration / ScriptDuration deltas per wall second,
    and the renderer processes' CPU from /proc (user + system) per wall second;
  - frame time p50/p99/max: intervals between requestAnimationFrame callbacks in the page;
  - WebSocket messages the page received vs render flushes (window.celerisDashboard);
  - long tasks (PerformanceObserver 'longtask', over 50 ms each) and the longest one.
One run, this machine, everything on 127.0.0.1. Prints progress each second; ends by itself.

  dashboard_bench.py --bin .build/release [--seconds 30] [--rate 1000] [--out perf/results/dashboard.json]
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

from benchlib import ROOT, Children, cpu_seconds, free_port, wait_http

sys.path.insert(0, os.path.join(ROOT, "Tests", "Browser"))
from cdp import Browser, CDPError  # noqa: E402

FRAME_PROBE = r"""
(() => {
  if (window.__bench) return true;
  const b = window.__bench = {frames: [], longTasks: 0, longTaskMs: 0, longestTaskMs: 0, recording: false};
  let last = performance.now();
  const tick = (t) => { if (b.recording) b.frames.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      if (!b.recording) return;
      for (const e of list.getEntries()) { b.longTasks++; b.longTaskMs += e.duration; b.longestTaskMs = Math.max(b.longestTaskMs, e.duration); }
    }).observe({entryTypes: ['longtask']});
  } catch (e) {}
  return true;
})()
"""

COUNTERS = ("window.celerisDashboard ? {messages: window.celerisDashboard.messages, "
            "flushes: window.celerisDashboard.flushes, rows: window.celerisDashboard.rows} : null")


class Load:
    """Paced POST /tasks from a few keep-alive connections; counts answers by status."""

    def __init__(self, port, rate, body, threads=4):
        self.port, self.rate, self.body, self.threads = port, rate, body, threads
        self.sent = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.stop_at = 0.0
        self.workers = []

    def run(self, seconds):
        self.stop_at = time.monotonic() + seconds
        per = self.rate / self.threads
        for _ in range(self.threads):
            t = threading.Thread(target=self._loop, args=(per,), daemon=True)
            t.start()
            self.workers.append(t)

    def _loop(self, rate):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        start = time.monotonic()
        n = 0
        headers = {"Content-Type": "application/json"}
        while True:
            now = time.monotonic()
            if now >= self.stop_at:
                break
            due = start + n / rate
            if due > now:
                time.sleep(min(due - now, self.stop_at - now))
                continue
            try:
                conn.request("POST", "/tasks", self.body, headers)
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            with self.lock:
                if ok:
                    self.sent += 1
                else:
                    self.errors += 1
            n += 1
        conn.close()

    def join(self):
        for t in self.workers:
            t.join()


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with release celeris-frontend and celeris-worker")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=1000, help="tasks/s POSTed to /tasks")
    ap.add_argument("--task-length", type=int, default=1, help="create_task steps (0: only its SUCCESS update)")
    ap.add_argument("--page-tasks", type=int, default=0, help="tasks the page itself submits (subscribed) before the load")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(ROOT, "perf", "results", "dashboard.json"))
    a = ap.parse_args()

    with Children() as kids:
        rport, fport = free_port(), free_port()
        url = f"redis://127.0.0.1:{rport}/0"
        kids.redis(rport, "--client-output-buffer-limit", "pubsub", "0", "0", "0")
        kids.start([os.path.join(a.bin, "celeris-worker"), "-b", url, "-c", str(a.concurrency), "-n", "bench@dashboard",
                    "--loglevel", "error"], env={**os.environ, "CELERIS_STEP_SECONDS": "0"})
        kids.start([os.path.join(a.bin, "celeris-frontend"), "-b", url, "--host", "127.0.0.1", "--port", str(fport),
                    "--loglevel", "error"])
        wait_http(f"http://127.0.0.1:{fport}/health")
        print(f"redis :{rport}, frontend :{fport}; launching chromium", flush=True)
        with Browser.launch() as browser:
            page = browser.page()
            page.navigate(f"http://127.0.0.1:{fport}/")
            page.wait_for("document.querySelector('#connection')?.dataset.state === 'live'", timeout=30,
                          what="#connection live")
            if page.evaluate(COUNTERS) is None:
                raise SystemExit("the page has no window.celerisDashboard counters")
            for _ in range(a.page_tasks):
                page.evaluate("document.querySelector('#task-name').value = 'create_task';"
                              "document.querySelector('#task-args').value = '[3]';"
                              "document.querySelector('#task-submit').click(); true")
            page.evaluate(FRAME_PROBE)
            time.sleep(1)  # the page settles; the probe's first frames are not measured

            renderers = browser.renderer_pids()
            m0, c0 = page.metrics(), page.evaluate(COUNTERS)
            r0 = sum(cpu_seconds(p) for p in renderers)
            g0 = sum(cpu_seconds(p) for p in browser.group_pids())
            page.evaluate("window.__bench.recording = true")
            t0 = time.monotonic()
            body = json.dumps({"task": "create_task", "args": [a.task_length]})
            load = Load(fport, a.rate, body)
            load.run(a.seconds)
            last = (t0, 0, c0)
            while time.monotonic() < t0 + a.seconds:
                time.sleep(1)
                now, c = time.monotonic(), page.evaluate(COUNTERS)
                dt = now - last[0]
                print(f"  {now - t0:5.1f}s sent {(load.sent - last[1]) / dt:7.0f}/s  page messages "
                      f"{(c['messages'] - last[2]['messages']) / dt:7.0f}/s  flushes "
                      f"{(c['flushes'] - last[2]['flushes']) / dt:5.1f}/s  rows {c['rows']}", flush=True)
                last = (now, load.sent, c)
            load.join()
            wall = time.monotonic() - t0
            page.evaluate("window.__bench.recording = false")
            m1, c1 = page.metrics(), page.evaluate(COUNTERS)
            r1 = sum(cpu_seconds(p) for p in renderers)
            g1 = sum(cpu_seconds(p) for p in browser.group_pids())
            probe = page.evaluate("({frames: window.__bench.frames, longTasks: window.__bench.longTasks, "
                                  "longTaskMs: window.__bench.longTaskMs, longestTaskMs: window.__bench.longestTaskMs})")
            frames = probe["frames"]
            shot = page.screenshot(os.path.join(ROOT, ".build", "bench", "dashboard-bench.png"))
            exceptions = page.exceptions
            page.close()

    messages = c1["messages"] - c0["messages"]
    flushes = c1["flushes"] - c0["flushes"]
    result = {
        "seconds": round(wall, 2),
        "cpus": os.cpu_count(),
        "rate_asked": a.rate,
        "tasks_sent": load.sent,
        "send_errors": load.errors,
        "tasks_per_second": round(load.sent / wall, 1),
        "task": {"name": "create_task", "task_length": a.task_length, "page_tasks": a.page_tasks},
        "page_task_duration_per_second": round((m1["TaskDuration"] - m0["TaskDuration"]) / wall, 4),
        "page_script_duration_per_second": round((m1["ScriptDuration"] - m0["ScriptDuration"]) / wall, 4),
        "page_layout_duration_per_second": round((m1.get("LayoutDuration", 0) - m0.get("LayoutDuration", 0)) / wall, 4),
        "page_recalc_style_duration_per_second": round(
            (m1.get("RecalcStyleDuration", 0) - m0.get("RecalcStyleDuration", 0)) / wall, 4),
        "page_other_task_duration_per_second": round(  # paint, compositing, GC, event dispatch
            (m1.get("TaskOtherDuration", 0) - m0.get("TaskOtherDuration", 0)) / wall, 4),
        "renderer_cpu_per_second": round((r1 - r0) / wall, 4),
        "browser_cpu_per_second": round((g1 - g0) / wall, 4),
        "page_js_heap_used_mb": round(m1.get("JSHeapUsedSize", 0) / 1e6, 1),
        "page_dom_nodes": m1.get("Nodes"),
        "frames": len(frames),
        "frame_ms": {"p50": percentile(frames, 50), "p99": percentile(frames, 99), "max": max(frames) if frames else None},
        "long_tasks": probe["longTasks"],
        "long_task_ms": round(probe["longTaskMs"], 1),
        "longest_task_ms": round(probe["longestTaskMs"], 1),
        "messages_received": messages,
        "messages_per_second": round(messages / wall, 1),
        "flushes": flushes,
        "messages_per_flush": round(messages / flushes, 1) if flushes else None,
        "rows_at_end": c1["rows"],
        "page_exceptions": exceptions,
        "screenshot": os.path.relpath(shot, ROOT),
    }
    for k in ("frame_ms",):
        result[k] = {q: (round(v, 2) if v is not None else None) for q, v in result[k].items()}
    print(json.dumps(result, indent=1))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {a.out}")
    return 1 if exceptions else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CDPError as e:
        raise SystemExit(f"dashboard_bench: {e}")
