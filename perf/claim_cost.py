#!/usr/bin/env python3
"""Redis CPU per claimed message of the worker's claim script (the Lua in
Sources/FastCore/DeliveryClaim.swift), from INFO commandstats: N pre-queued
noop envelopes are claimed in batches of --batch, each batch acknowledged
(ZREM + HDEL, not counted) as the worker would, so the bookkeeping stays small.
Starts its own redis-server on a free 127.0.0.1 port; prints progress.

  perf/claim_cost.py [--tasks 100000] [--batch 256] [--lua FILE]   (--lua: try a variant)
"""
import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import redis  # noqa: E402
from benchlib import Children, free_port  # noqa: E402
from drain_bench import fill  # noqa: E402


def shipped_script():
    src = open(os.path.join(HERE, "..", "Sources/FastCore/DeliveryClaim.swift")).read()
    body = re.search(r'public static let script = RedisScript\(\n\s*"""\n(.*?)\n\s*"""\)', src, re.S).group(1)
    return "\n".join(line[8:] for line in body.split("\n")).replace("\\\\", "\\")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lua", help="a variant of the script to measure instead")
    a = ap.parse_args()
    script = open(a.lua).read() if a.lua else shipped_script()
    port = free_port()
    with Children() as kids:
        kids.redis(port)
        r = redis.Redis(port=port)
        fill(r, a.tasks)
        sha = r.script_load(script)
        r.config_resetstat()
        claimed, last = 0, time.time()
        while True:
            out = r.evalsha(sha, 3, "unacked", "unacked_index", "celery", a.batch)
            if not out:
                break
            tags = out[0::3]
            claimed += len(tags)
            r.zrem("unacked_index", *tags)
            r.hdel("unacked", *tags)
            if time.time() - last >= 1:
                print(f"  {claimed}/{a.tasks} claimed", flush=True)
                last = time.time()
        usec = r.info("commandstats")["cmdstat_evalsha"]["usec"]
        print(f"claim script: {claimed} messages in batches of {a.batch}: {usec / claimed:.2f} us of Redis per message")


if __name__ == "__main__":
    main()
