"""Celery 5.7 canvas sent from Python; prints what AsyncResult.get() returns.

  canvas_probe.py BROKER chain | chord N | chord_error | wait TASK_ID
"""
import json
import sys

from celery import Celery, chain, chord

broker, mode = sys.argv[1], sys.argv[2]
app = Celery("probe", broker=broker, backend=broker)
sig = app.signature
out = {}
if mode == "chain":
    r = chain(sig("add", (2, 2)), sig("add", (4,)), sig("add", (8,)))()
    out = {"result": r.get(timeout=20), "id": r.id}
elif mode == "chord":
    n = int(sys.argv[3])
    r = chord([sig("add", (i, i)) for i in range(n)])(sig("tsum"))
    out = {"result": r.get(timeout=30), "id": r.id}
elif mode == "chord_error":
    import time

    r = chord([sig("add", (1, 1)), sig("add", ("x", 1))])(sig("tsum"))
    body = app.AsyncResult(r.id)  # the chord body itself, without its parents
    # Wait for the whole chord first: get() checks the parents before it starts waiting and
    # after each wait, so a chord that ends between its first check and its subscription
    # would surface the body's ChordError instead (a race in Celery's client, whatever worker).
    deadline = time.time() + 20
    while not body.ready() and time.time() < deadline:
        time.sleep(0.05)
    try:
        r.get(timeout=20)
        out = {"error": None}
    except Exception as e:  # get() re-raises the failed header (parent) first, as with Celery workers
        out = {"error": type(e).__name__, "message": str(e), "id": r.id}
    out["body_state"] = body.state
    out["body_error"] = type(body.result).__name__
    out["body_message"] = str(body.result)
elif mode == "wait":
    out = {"result": app.AsyncResult(sys.argv[3]).get(timeout=30)}
print("RESULT " + json.dumps(out))
