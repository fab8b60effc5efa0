#!/usr/bin/env python3
"""Draw PNG charts from perf/results/*.json (whichever exist), beside them."""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchlib import ROOT  # noqa: E402

RESULTS = os.path.join(ROOT, "perf", "results")


def bars(path, title, labels, values, unit, log=False, lines=()):
    """Horizontal bars; `lines`: (x, label) reference lines drawn across them."""
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(labels) + 1.6))
    colors = ["#2b8a3e" if l.lower().startswith(("celeris", "nginx")) else "#868e96" for l in labels]
    ax.barh(labels, values, color=colors)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(unit)
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.2f}" if v < 10 else f" {v:,.0f}", va="center", fontsize=8)
    for x, label in lines:
        ax.axvline(x, color="#c92a2a", linestyle="--", linewidth=1)
        ax.text(x, -0.6, f" {label}", color="#c92a2a", fontsize=8, va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote", os.path.relpath(path, ROOT))


def load(name):
    p = os.path.join(RESULTS, name)
    return json.load(open(p)) if os.path.exists(p) else None


def main():
    http = load("http.json")
    if http:
        r = http["results"]
        bars(os.path.join(RESULTS, "http.png"), f"HTTP req/s, wrk -c{http['connections']} (this 2-core machine, one run)",
             list(r), [v["rps"] for v in r.values()], "requests per second (log)", log=True)
    fan = load("fanout.json")
    if fan:
        r = {k: v for k, v in fan["results"].items() if "deliveries_per_s" in v}
        bars(os.path.join(RESULTS, "fanout.png"), "WebSocket fan-out deliveries/s", list(r),
             [v["deliveries_per_s"] for v in r.values()], "deliveries per second (log)", log=True)
    wf = load("workflow.json")
    if wf:
        r = wf["runs"]
        bars(os.path.join(RESULTS, "workflow.png"), f"Document workflow, {wf['documents']} documents",
             [f"{k}" for k in r], [v["docs_per_s"] for v in r.values()], "documents per second")
    dr = load("drain.json")
    if dr:
        r = dr["runs"]
        bars(os.path.join(RESULTS, "drain.png"), "Worker drain, noop tasks with results stored", list(r),
             [v["tasks_per_s"] for v in r.values()], "tasks per second (log)", log=True)
        lat = dr.get("latency_us")
        if lat:
            labels = [f"{rate}/s {p}" for rate in lat for p in ("p50", "p99", "p999")]
            values = [lat[rate][p] / 1000 for rate in lat for p in ("p50", "p99", "p999")]
            lines = [(2.0, "target p99 at 10k/s: 2 ms")]
            wake = dr.get("wake_late_us")
            if wake:
                floor = max(w["p99"] for w in wake.values()) / 1000
                lines.append((floor, f"idle wake-up late, p99: {floor:.2f} ms"))
            bars(os.path.join(RESULTS, "latency.png"), "Celeris worker, LPUSH -> result published, fixed offered rates",
                 labels, values, "milliseconds (log)", log=True, lines=lines)


if __name__ == "__main__":
    main()
