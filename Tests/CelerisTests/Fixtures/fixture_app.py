"""A Python Celery 5.7 app for interop tests: the tutorial's tasks, run by a
real `celery worker` consuming what a Celeris frontend enqueues."""
import base64
import os
import time
from array import array

from celery import Celery
from celery.signals import task_success

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("fixture_app", broker=broker, backend=broker)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
if os.environ.get("FIXTURE_ACKS_LATE"):
    app.conf.task_acks_late = True
if os.environ.get("FIXTURE_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {"visibility_timeout": float(os.environ["FIXTURE_VISIBILITY_TIMEOUT"])}
STEP = float(os.environ.get("FIXTURE_STEP_SECONDS", "0.05"))
# Every task this Python worker ran to success, counted by id in the broker's Redis, so
# tests can assert who ran what (and how often) on state rather than on log text.
SUCCEEDED_KEY = "fixture.python.succeeded"


@task_success.connect
def count_success(sender=None, **_):
    app.backend.client.hincrby(SUCCEEDED_KEY, sender.request.id, 1)


@app.task(name="create_task", bind=True)
def create_task(self, task_length):
    for i in range(task_length):
        self.update_state(state="PROGRESS", meta={"progress": i})
        time.sleep(STEP)
    return {"status": "Task completed"}


@app.task(name="add")
def add(x, y):
    return x + y


@app.task(name="tsum")
def tsum(numbers):
    return sum(numbers)


@app.task(name="noop")
def noop(x):
    return x


@app.task(name="compare_data_task")
def compare_data_task(results, threshold=0.5):
    """Python reference of the compare stage: exact Jaccard on the extracted shingles."""
    docs, errors = [], []
    for r in results:
        if "error" in r:
            errors.append({"document": r.get("document"), "error": r["error"]})
        else:
            docs.append((r["document"], set(array("I", base64.b64decode(r["shingles"])))))
    pairs = []
    for i in range(len(docs)):
        for j in range(i + 1, len(docs)):
            a, b = docs[i][1], docs[j][1]
            s = len(a & b) / len(a | b) if (a or b) else 0.0
            if s >= threshold:
                pairs.append({"a": docs[i][0], "b": docs[j][0], "similarity": round(s, 4)})
    pairs.sort(key=lambda p: -p["similarity"])
    return {"documents": len(results), "compared": len(docs), "method": "python-exact", "pairs": pairs, "errors": errors}
