"""Celery's own remote-control and event tooling pointed at a Celeris worker.

  control_probe.py BROKER inspect            ping, active_queues, registered, stats
  control_probe.py BROKER revoke ID [terminate]
  control_probe.py BROKER stats              stats only
  control_probe.py BROKER events SECONDS ID  capture events; feed them to Flower's State model
  control_probe.py BROKER broadcast JSON     send each [command, arguments] of a JSON list; print the replies
"""
import json
import sys
import time

from celery import Celery

broker, mode = sys.argv[1], sys.argv[2]
app = Celery("probe", broker=broker, backend=broker)
out = {}
if mode == "inspect":
    i = app.control.inspect(timeout=5, limit=1)
    out = {"ping": i.ping(), "active_queues": i.active_queues(), "registered": i.registered(), "stats": i.stats(), "conf": i.conf()}
elif mode == "stats":
    out = app.control.inspect(timeout=2, limit=1).stats() or {}
elif mode == "queues":
    i = app.control.inspect(timeout=5, limit=1)
    out = {"active": i.active(), "reserved": i.reserved(), "scheduled": i.scheduled()}
elif mode == "rate_limit":
    out = app.control.rate_limit(sys.argv[3], sys.argv[4], reply=True, timeout=5, limit=1)
elif mode == "shutdown":
    app.control.shutdown()
elif mode == "time_limit":
    out = app.control.time_limit(sys.argv[3], soft=float(sys.argv[4]), hard=float(sys.argv[5]), reply=True, timeout=5, limit=1)
elif mode == "broadcast":
    # argv[3]: a JSON list of [command, arguments]; the replies, one list per command, in order.
    out = [app.control.broadcast(c, arguments=a, reply=True, timeout=5, limit=1) for c, a in json.loads(sys.argv[3])]
elif mode == "revoke":
    out = app.control.revoke(sys.argv[3], terminate=len(sys.argv) > 4, reply=True, timeout=5, limit=1)
elif mode == "events":
    from celery.events.state import State

    seconds, task_id = float(sys.argv[3]), sys.argv[4]
    events, state = [], State()

    def on_event(event):
        events.append(event)
        state.event(event)

    with app.connection() as conn:
        recv = app.events.Receiver(conn, handlers={"*": on_event})
        deadline = time.time() + seconds
        try:
            for _ in recv.itercapture(limit=None, timeout=seconds, wakeup=True):
                if time.time() > deadline:
                    break
        except Exception:  # socket timeout ends the capture
            pass
    task = state.tasks.get(task_id)
    out = {
        "types": sorted({e["type"] for e in events}),
        "workers": {name: {"alive": w.alive, "freq": w.freq, "sw_ident": w.sw_ident} for name, w in state.workers.items()},
        "task": None if task is None else {"state": task.state, "name": task.name, "result": task.result, "worker": task.worker.hostname if task.worker else None},
        "received": [e for e in events if e["type"] == "task-received"][:1],
    }
print("RESULT " + json.dumps(out, default=str))
