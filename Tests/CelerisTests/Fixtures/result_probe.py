"""Read stored results with Python Celery 5.7's AsyncResult.get(): for each task id,
the value, or the exception get() raised (its class name, module, str(), whether it
is the Python builtin of that name). One JSON line."""
import builtins
import json
import sys

from celery import Celery

broker = sys.argv[1]
app = Celery("probe", broker=broker, backend=broker)
out = {}
for task_id in sys.argv[2:]:
    r = app.AsyncResult(task_id)
    try:
        out[task_id] = {"state": r.state, "result": r.get(timeout=20)}
    except Exception as e:  # Celery re-raises the stored exception
        cls = type(e)
        out[task_id] = {
            "state": r.state,
            "type": cls.__name__,
            "module": cls.__module__,
            "message": str(e),
            "builtin": getattr(builtins, cls.__name__, None) is cls,
        }
print("RESULT " + json.dumps(out))
