"""Python Celery 5.7 tasks that send follow-ups while they run (ResultChildrenTests):
what a Python worker stores in a record's `children`, and errbacks that note how they ran."""
import json
import os

from celery import Celery, chord, group

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("children_app", broker=broker, backend=broker)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
# The errbacks' notes: one list entry per run, {"task", "args", "id", "parent_id", "root_id", "group"}.
NOTES_KEY = "children.notes"


@app.task(name="ch.echo")
def echo(x):
    return x


@app.task(name="ch.send_one", bind=True)
def send_one(self, x):
    """Sends add(x, 1) through the app (Celery's send_task from inside a task)."""
    r = app.send_task("add", (x, 1))
    return r.id


@app.task(name="ch.send_group", bind=True)
def send_group(self, n):
    """Sends group(add(i, i) for i < n) from inside the task."""
    r = group(app.signature("add", (i, i)) for i in range(n)).apply_async()
    return r.id


@app.task(name="ch.replace_chord", bind=True)
def replace_chord(self, n):
    """Replaces itself with chord(add(i, i) for i < n, tsum)."""
    raise self.replace(chord([app.signature("add", (i, i)) for i in range(n)], app.signature("tsum")))


@app.task(name="ch.fail")
def fail(x):
    raise ValueError("failing on purpose: %r" % (x,))


@app.task(name="ch.note", bind=True)
def note(self, *args):
    """An old-style errback (it takes the failed task's id): notes its call."""
    r = self.request
    app.backend.client.rpush(
        NOTES_KEY,
        json.dumps({"task": r.task, "args": list(args), "id": r.id, "parent_id": r.parent_id,
                    "root_id": r.root_id, "group": r.group}),
    )
    return list(args)


@app.task(name="add")
def add(x, y):
    return x + y


@app.task(name="tsum")
def tsum(numbers):
    return sum(numbers)
