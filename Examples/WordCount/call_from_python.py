"""Python Celery calls the Swift worker's typed task, as it would a Python task.

    CELERIS_BROKER_URL=redis://127.0.0.1:6379/0 python call_from_python.py
"""
import json
import os

from celery import Celery

url = os.environ.get("CELERIS_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery(broker=url, backend=url)
count = app.signature("wordcount.count")  # the task by name: its body is Swift
text = "To be, or not to be, that is the question"

# By position or by name, as a Python function's parameters: count(text, top).
print("positional", json.dumps(count.delay(text, 2).get(timeout=30)))
print("keywords", json.dumps(count.delay(text=text, top=2).get(timeout=30)))

# Arguments that do not fit fail the task; Python raises the TypeError.
for args, kwargs in [((text,), {}), ((), {"text": text, "top": "two"}), ((text, 2), {"top": 2})]:
    try:
        count.delay(*args, **kwargs).get(timeout=30)
    except TypeError as e:
        print("TypeError", e)
