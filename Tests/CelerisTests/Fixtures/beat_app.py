"""A Python Celery 5.7 app for `celery -A beat_app beat`: its `beat_schedule` is the
`beat_schedule` object of the Celeris schedule file named by BEAT_SCHEDULE_FILE (each
entry's Celeris-only `catch_up` dropped), so a test can compare what real beat sends
with what Celeris builds from the same file. Broker: CELERY_BROKER_URL."""
import json
import os

from celery import Celery
from celery.schedules import crontab

app = Celery("beat_app", broker=os.environ["CELERY_BROKER_URL"])
with open(os.environ["BEAT_SCHEDULE_FILE"]) as f:
    spec = json.load(f)
if "timezone" in spec:
    app.conf.timezone = spec["timezone"]
schedule = {}
for name, entry in spec["beat_schedule"].items():
    entry = dict(entry)
    entry.pop("catch_up", None)
    when = entry["schedule"]
    if isinstance(when, dict):
        fields = when["crontab"]
        if isinstance(fields, str):
            keys = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]
            fields = dict(zip(keys, fields.split()))
        entry["schedule"] = crontab(**fields)
    schedule[name] = entry
app.conf.beat_schedule = schedule
