"""Python Celery 5.7 on Redis Sentinel, as its users configure it: a sentinel:// broker and result
backend list with master_name (and the sentinel password) in the transport options. Sends `add`
to whatever worker consumes the broker and prints its id and result as one JSON line.

    python sentinel_probe.py 'sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380' mymaster [sentinel_password]
"""
import json
import sys

from celery import Celery

urls, master = sys.argv[1], sys.argv[2]
password = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
options = {"master_name": master}
if password:
    options["sentinel_kwargs"] = {"password": password}
app = Celery("sentinel_probe", broker=urls, backend=urls)
app.conf.broker_transport_options = options
app.conf.result_backend_transport_options = options

first = app.send_task("add", args=[2, 3])
print(json.dumps({"id": first.id, "result": first.get(timeout=30)}), flush=True)
