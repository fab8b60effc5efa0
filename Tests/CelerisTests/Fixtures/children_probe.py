"""Workflows whose first task sends follow-ups, sent from Python Celery 5.7; prints each
first task's stored record once it and every task it lists are done (ResultChildrenTests).

  children_probe.py BROKER [ERRBACK_QUEUE]
"""
import json
import sys
import time

from celery import Celery, chain, group

broker = sys.argv[1]
errback_queue = sys.argv[2] if len(sys.argv) > 2 else None
app = Celery("probe", broker=broker, backend=broker)
s = app.signature
FINAL = ("SUCCESS", "FAILURE")


def record(task_id, deadline):
    while time.time() < deadline:
        raw = app.backend.client.get("celery-task-meta-" + task_id)
        if raw and json.loads(raw)["status"] in FINAL:
            return json.loads(raw)
        time.sleep(0.02)
    raise SystemExit("no final record for %s" % task_id)


def ids(children):
    for (cid, _), members in children:
        if members is None:
            yield cid
        else:
            yield from ids(members)


def settled(task_id):
    deadline = time.time() + 30
    r = record(task_id, deadline)
    for cid in ids(r["children"]):
        record(cid, deadline)
    return r


out = {}
r = chain(s("ch.echo", (1,)), s("ch.echo"))()
out["chain"] = {"id": r.parent.id, "next": r.id, "record": settled(r.parent.id)}
r = s("ch.echo", (2,)).apply_async(link=s("ch.echo"))
out["link"] = {"id": r.id, "record": settled(r.id)}
r = s("ch.echo", (3,)).apply_async(link=[s("ch.echo"), s("ch.echo")])
out["links"] = {"id": r.id, "record": settled(r.id)}
r = s("ch.send_one", (4,)).apply_async()
out["send_one"] = {"id": r.id, "record": settled(r.id)}
r = chain(s("ch.echo", (5,)), group(s("ch.echo"), s("ch.echo")))()
out["chain_group"] = {"id": r.parent.id if r.parent else None, "record": settled(r.parent.id)}
note = (lambda sig: sig.set(queue=errback_queue)) if errback_queue else (lambda sig: sig)
r = s("ch.fail", (6,)).apply_async(link_error=[note(s("ch.note", ("extra",))), note(s("ch.note"))])
out["fail"] = {"id": r.id, "record": settled(r.id)}
print("RESULT " + json.dumps(out))
