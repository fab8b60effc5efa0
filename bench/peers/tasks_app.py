"""Python Celery 5.7 peer for the drain bench: the tutorial's tasks with results stored."""
import os

from celery import Celery

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("tasks_app", broker=broker, backend=broker)


@app.task(name="noop")
def noop(x):
    return x


@app.task(name="add")
def add(x, y):
    return x + y
