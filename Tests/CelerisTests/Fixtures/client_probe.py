"""The Python Celery 5.7 client beside the Swift client (ClientTests):
  await <broker> <task_id> <timeout>   AsyncResult(id).get(timeout) → RESULT {"result"} or {"error": [type, str]}
  send <broker> <json options>         add.apply_async((2, 3), **options) (link: add.s(10)) → RESULT {"id"}
  bench <broker> <sends> <round_trips> sends/s and sequential round trips of add → RESULT {...}
"""
import json
import sys
import time
from datetime import datetime, timezone

from celery import Celery

mode, broker = sys.argv[1], sys.argv[2]
app = Celery("client_probe", broker=broker, backend=broker)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


@app.task(name="add")
def add(x, y):
    return x + y


if mode == "await":
    r = app.AsyncResult(sys.argv[3])
    try:
        print("RESULT " + json.dumps({"result": r.get(timeout=float(sys.argv[4]))}))
    except Exception as e:  # Celery re-raises the stored exception
        print("RESULT " + json.dumps({"error": [type(e).__name__, str(e)]}))
elif mode == "send":
    options = json.loads(sys.argv[3])
    if options.pop("link", None):
        options["link"] = add.s(10)
    if "eta" in options:
        options["eta"] = datetime.fromtimestamp(options["eta"], tz=timezone.utc)
    r = add.apply_async((2, 3), **options)
    print("RESULT " + json.dumps({"id": r.id}))
elif mode == "bench":
    sends, trips = int(sys.argv[3]), int(sys.argv[4])
    start = time.perf_counter()
    for _ in range(sends):
        add.apply_async((1, 1), ignore_result=True)
    send_rate = sends / (time.perf_counter() - start)
    lat = []
    for i in range(trips):
        t = time.perf_counter()
        assert add.apply_async((i, 1)).get(timeout=30) == i + 1
        lat.append(time.perf_counter() - t)
    lat.sort()
    print("RESULT " + json.dumps({"sends_per_s": send_rate, "p50_ms": lat[len(lat) // 2] * 1000,
                                  "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}))
