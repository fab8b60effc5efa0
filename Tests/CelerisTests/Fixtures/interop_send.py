"""Python Celery client → Celeris worker: send add and create_task, wait for
results with AsyncResult.get, and report what was seen as one JSON line."""
import json
import sys

from celery import Celery

broker = sys.argv[1]
app = Celery("interop", broker=broker, backend=broker)
out = {}
r = app.send_task("add", (2, 3))
out["add"] = r.get(timeout=20)
out["add_state"] = r.state

states = []
r = app.send_task("create_task", (3,))
out["create_task"] = r.get(timeout=20, on_message=lambda m: states.append([m["status"], m["result"]]))
out["create_task_states"] = states

r = app.send_task("no_such_task", (1,))
try:
    r.get(timeout=20)
    out["unknown"] = "no error"
except Exception as e:  # Celery re-raises the stored exception
    out["unknown"] = [type(e).__name__, str(e)]
print("RESULT " + json.dumps(out))
