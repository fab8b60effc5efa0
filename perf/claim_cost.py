#!/usr/bin/env python3
"""Redis CPU per claimed message of the worker's claim script (the Lua in
Sources/FastCore/DeliveryClaim.swift), from INFO commandstats: N pre-queued
noop envelopes are claimed in batches of --batch, each batch acknowledged
(ZREM + HDEL, not counted) as the worker would, so the bookkeeping stays small.
Starts its own redis-server on a free 127.0.0.1 port; prints progress.

  perf/claim_cost.py [--tasks 100000] [--batch 256] [--lua FILE]   (--lua: try a variant)
  perf/claim_cost.py --breakdown    (the shipped script, then variants of it each doing less)

--breakdown measures where the script's time goes by taking its steps away one at a
time (the variants are made from the shipped text; each only measures, none is
correct): kombu's record `[message, exchange, routing_key]` no longer built (the
message stored as it is); no HSET/ZADD at all; then no field search either; then a
bare RPOP whose messages are returned. Redis 7's Lua hashes every byte of every
string it makes (a 1 KB message costs a full pass), so each 1 KB Lua string a claim
makes per message shows up here.
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


def variants(script):
    """The shipped script, then copies doing less (`--breakdown`)."""
    def cut(text, old, new):
        assert old in text, f"the claim script no longer contains {old!r}: update claim_cost.py"
        return text.replace(old, new)
    record = cut(script, "record = '[' .. m .. ', \"' .. ex .. '\", \"' .. rk .. '\"]'", "record = m")
    no_writes = cut(cut(record, "redis.call('HSET', KEYS[1], unpack(hash, 1, nh))", ""),
                    "redis.call('ZADD', KEYS[2], unpack(index, 1, ni))", "")
    start, end = no_writes.index("local props = #m > 4096"), no_writes.index("hash[nh + 1], hash[nh + 2]")
    no_search = no_writes[:start] + "local tag, record = 'tag' .. n, m\n" + no_writes[end:]
    pop_only = ("local popped = redis.call('RPOP', KEYS[3], tonumber(ARGV[1])) or {}\n"
                "local out = {}\nfor i, m in ipairs(popped) do out[3 * i - 2], out[3 * i - 1], out[3 * i] = 't' .. i, KEYS[3], m end\n"
                "return out")
    return [("shipped claim script", script), ("without building kombu's record", record),
            ("... and without its HSET + ZADD", no_writes), ("... and without the field search", no_search),
            ("RPOP, messages returned (no bookkeeping)", pop_only)]


def measure(r, script, tasks, batch):
    """Redis microseconds per message of `script` claiming `tasks` messages."""
    r.flushall()
    fill(r, tasks)
    sha = r.script_load(script)
    r.config_resetstat()
    claimed, last = 0, time.time()
    while True:
        out = r.evalsha(sha, 3, "unacked", "unacked_index", "celery", batch)
        if not out:
            break
        tags = out[0::3]
        claimed += len(tags)
        r.zrem("unacked_index", *tags)
        r.hdel("unacked", *tags)
        if time.time() - last >= 1:
            print(f"  {claimed}/{tasks} claimed", flush=True)
            last = time.time()
    return claimed, r.info("commandstats")["cmdstat_evalsha"]["usec"] / claimed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lua", help="a variant of the script to measure instead")
    ap.add_argument("--breakdown", action="store_true", help="measure variants doing less (see above)")
    a = ap.parse_args()
    script = open(a.lua).read() if a.lua else shipped_script()
    port = free_port()
    with Children() as kids:
        kids.redis(port)
        r = redis.Redis(port=port)
        if not a.breakdown:
            claimed, us = measure(r, script, a.tasks, a.batch)
            print(f"claim script: {claimed} messages in batches of {a.batch}: {us:.2f} us of Redis per message")
            return
        rows = []
        for name, text in variants(script):
            print(f"{name} ...", flush=True)
            rows.append((name, measure(r, text, a.tasks, a.batch)[1]))
        print("RPOP called directly (no Lua) ...", flush=True)
        r.flushall()
        fill(r, a.tasks)
        r.config_resetstat()
        while r.rpop("celery", a.batch):
            pass
        rows.append(("RPOP called directly, no Lua", r.info("commandstats")["cmdstat_rpop"]["usec"] / a.tasks))
        print(f"\nRedis us per message, {a.tasks} messages in batches of {a.batch}:")
        for (name, us), prev in zip(rows, [None] + rows[:-1]):
            step = f"  ({us - prev[1]:+.2f})" if prev else ""
            print(f"  {name:45} {us:6.2f}{step}")


if __name__ == "__main__":
    main()
