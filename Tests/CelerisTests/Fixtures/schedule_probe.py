"""How Celery 5.7 reads the `beat_schedule` of the Celeris schedule file argv[1]: for each
entry (file order) its name, task, interval seconds or crontab fields as Celery keeps them
(`_orig_*`, in crontab order) and time zone, args, kwargs and options, printed as one
`RESULT <json>` line."""
import json
import sys

from celery import Celery
from celery.beat import ScheduleEntry
from celery.schedules import crontab, schedule
from zoneinfo import ZoneInfo

spec = json.load(open(sys.argv[1]))
app = Celery("probe")
if "timezone" in spec:
    app.conf.timezone = spec["timezone"]
out = []
for name, e in spec["beat_schedule"].items():
    when = e["schedule"]
    if isinstance(when, dict):
        fields = when["crontab"]
        if isinstance(fields, str):
            keys = ["minute", "hour", "day_of_month", "month_of_year", "day_of_week"]
            fields = dict(zip(keys, fields.split()))
        zone = when.get("timezone") or spec.get("timezone")
        when = crontab(**fields, app=app)
        if zone:
            when.tz = ZoneInfo(zone)
    given = {k: e[k] for k in ("args", "kwargs", "options") if e.get(k) is not None}
    entry = ScheduleEntry(name=name, task=e["task"], schedule=when, app=app, **given)
    s = entry.schedule
    if isinstance(s, crontab):
        cron = " ".join(str(x) for x in (s._orig_minute, s._orig_hour, s._orig_day_of_month,
                                         s._orig_month_of_year, s._orig_day_of_week))
        when_out = {"crontab": cron, "timezone": str(s.tz) if zone else None}
    else:
        when_out = {"interval": s.run_every.total_seconds()}
    out.append({"name": entry.name, "task": entry.task, "schedule": when_out, "args": list(entry.args),
                "kwargs": entry.kwargs, "options": entry.options})
print("RESULT " + json.dumps(out))
