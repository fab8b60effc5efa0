#!/usr/bin/env python3
"""Write the Swift fuzz targets' seed corpora (Tests/Fuzz/corpus/<target>/) from the
Celery 5.7 wire captures (../shared/celery-wire, when present) and the test fixtures.
Run once by hand when a capture changes; the seeds are committed. Each target's input
shape is described in its Tests/Fuzz/Swift/*Fuzzer.swift."""
import base64, hashlib, json, os, struct, sys

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))
WIRE = os.path.join(REPO, "..", "shared", "celery-wire")
FIXTURES = os.path.join(REPO, "Tests", "CelerisTests", "Fixtures")
corpora = {}


def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    corpora.setdefault(target, set()).add(bytes(data))


def dumps(v):
    return json.dumps(v)  # kombu's and Celery's separators


envelopes, pidbox = [], []
for name in ("02_monitor_client_send.decoded.jsonl", "05_monitor_worker_session.decoded.jsonl"):
    path = os.path.join(WIRE, name)
    if not os.path.exists(path):
        continue
    for line in open(path):
        entry = json.loads(line)
        payload = entry.get("payload_decoded")
        if isinstance(payload, dict) and "body" in payload:
            (pidbox if "pidbox" in str(entry["args"][0]) else envelopes).append(payload)
        elif payload is not None:
            seed("json", dumps(payload))
path = os.path.join(WIRE, "04_queued_messages_decoded.json")
if os.path.exists(path):
    for entry in json.load(open(path)):
        if isinstance(entry.get("message"), dict):
            envelopes.append({k: v for k, v in entry["message"].items() if k != "body_decoded"})
for name in sorted(os.listdir(FIXTURES)):
    if name.endswith("_envelope.json"):
        envelopes.append(json.load(open(os.path.join(FIXTURES, name))))
path = os.path.join(WIRE, "07b_result_keys_decoded.json")
if os.path.exists(path):
    for entry in json.load(open(path)):
        seed("json", dumps(entry.get("value")))

for env in envelopes:
    text = dumps(env)
    body = base64.b64decode(env["body"])
    seed("json", text)
    seed("json", body)
    seed("base64", env["body"])
    seed("envelope", b"\x00" + text.encode())
    seed("envelope", b"\x01" + body)
    seed("envelope", b"\x02" + body)
    for key in ("eta", "expires"):
        if env["headers"].get(key):
            seed("celery_time", env["headers"][key])
for env in pidbox:
    text = dumps(env)
    body = base64.b64decode(env["body"])
    seed("json", body)
    seed("control_request", b"\x00" + text.encode())
    seed("control_request", b"\x01" + body)
    seed("envelope", b"\x00" + text.encode())

# Hand-written shapes the captures lack.
for body in ('{"method": "pool_grow", "arguments": {"n": 9223372036854775807}, "destination": ["celery@host"]}',
             '{"method": "rate_limit", "arguments": {"task_name": "add", "rate_limit": "1/h"}, "ticket": "t"}',
             '{"method": "time_limit", "arguments": {"task_name": "add", "soft": -1, "hard": 1e308}}',
             '{"method": "ping", "reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "r"}}'):
    seed("control_request", b"\x01" + body.encode())
# Task bodies with canvases in the embed (chain steps, links, chord callbacks, nested parts).
sig = lambda task, **kw: dict({"task": task, "args": [], "kwargs": {}, "options": {"task_id": "i-" + task},
                               "subtask_type": None, "immutable": False}, **kw)
embeds = [
    {"callbacks": None, "errbacks": None, "chain": [sig("c"), sig("b", options=None)], "chord": None},
    {"callbacks": [sig("link")], "errbacks": [sig("err")], "chain": None, "chord": sig("tsum")},
    {"callbacks": None, "errbacks": None, "chord": None, "chain": [
        sig("chord", subtask_type="chord", kwargs={"header": sig("group", subtask_type="group", kwargs={
            "tasks": [sig("x"), sig("y")]}), "body": sig("tsum")}),
        sig("chain", subtask_type="chain", kwargs={"tasks": [sig("p"), sig("q", immutable=True)]})]},
]
for embed in embeds:
    seed("envelope", b"\x01" + dumps([[1, 2], {"k": "v"}, embed]).encode())
for text in ("2026-11-21T07:31:05.219234+00:00", "2026-11-21T07:31:05Z", "2026-11-21T07:31:05",
             "2026-11-21T07:31:05.5-05:30", "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+00:00"):
    seed("celery_time", text)
for epoch in (0.0, 1795246217.699307, -62135596800.0, 253402300799.5, 1e300, float("inf"), float("nan")):
    seed("celery_time", struct.pack("<d", epoch))
for q, body in (("", ""), ("task_length=3", ""), ("task_length=100001", ""),
                ("", '{"task": "add", "args": [2, 3], "kwargs": {"z": 1}, "queue": "q", "priority": 9}'),
                ("", '{"task": "create_task", "kwargs": {"task_length": 2}}'),
                ("blob_path=docs%2Fa.pdf&threshold=0.7", '{"blob_path": "docs", "threshold": 0.5}'),
                ("", '{"task": "report_daily", "args": [[1, {"a": null}], "\\u00e9\\ud83d\\ude00"]}'),
                ("", "[1, 2]"), ("", '{"priority": 1.0e2}')):
    seed("task_submission", (q + "\n" + body) if body else q)
for text in ("", "AA==", "AAA=", "QUJD", "YW55IGNhcm5hbCBwbGVhcw", "=", "A===", "////"):
    seed("base64", text)
for text in ('{"a": [1, 2.5e-3, -0, "x\\n\\u0041\\ud800"], "b": {"c": null}}', "NaN", "-Infinity",
             "123456789012345678901234567890", "1e400", "[" * 600 + "]" * 600, '"\\ud83d\\ude00"'):
    seed("json", text)

for text in ("+OK\r\n", "-ERR wrong\r\n", ":42\r\n", "$-1\r\n", "*-1\r\n", "$3\r\nabc\r\n",
             "*2\r\n$1\r\na\r\n:1\r\n", "*3\r\n*1\r\n*0\r\n$0\r\n\r\n+QUEUED\r\n",
             "*2\r\n*2\r\n$5\r\ncount\r\n:3\r\n*1\r\n$-1\r\n", "LPUSH\0celery\0{}"):
    seed("resp", text)
for target, items in sorted(corpora.items()):
    out = os.path.join(ROOT, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for data in sorted(items):
        with open(os.path.join(out, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)
    print(f"{target}: {len(items)} seeds", file=sys.stderr)
