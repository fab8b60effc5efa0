#!/usr/bin/env python3
"""Drive the Celeris dashboard (GET /) in headless Chromium, as a user would.

    dashboard_check.py --port 8000 --blob-path /docs/corpus --screenshot out.png [--token T] [--worker HOST]

Loads the page, (types the token into #token and saves it), waits for #connection to be live,
submits create_task with args [3] through #task-form and waits for its row to reach SUCCESS
having shown PROGRESS steps 0,1,2; submits the /process workflow through #process-form and
waits for its row to reach SUCCESS; waits for the worker's row in #workers; sends a task from
outside the page and waits for its row (task_status firehose) to reach SUCCESS; writes a PNG
screenshot and prints a JSON summary on the last line. Exits 1 with the reason on any failure
(a missed state, a page exception, a timeout), always after the screenshot is written.
"""
import argparse
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CDPError  # noqa: E402

# Records every POST /tasks and /process answer the page gets, so the check knows its task ids
# without guessing which new row is which (firehose rows may appear too).
RECORD_SUBMISSIONS = r"""
(() => {
  if (window.__check) return true;
  window.__check = {submitted: []};
  const orig = window.fetch;
  window.fetch = async function (input, init) {
    const resp = await orig.apply(this, arguments);
    try {
      const url = typeof input === 'string' ? input : input.url;
      const method = ((init && init.method) || (input && input.method) || 'GET').toUpperCase();
      if (method === 'POST' && /\/(tasks|process)(\?|$)/.test(url)) {
        const body = await resp.clone().json().catch(() => null);
        window.__check.submitted.push({url, status: resp.status, body});
      }
    } catch (e) {}
    return resp;
  };
  return true;
})()
"""


def js(s):
    return json.dumps(s)


def set_value(page, selector, value):
    """Type `value` into an input as a user would (value set, input + change events)."""
    page.evaluate(f"""(() => {{
      const el = document.querySelector({js(selector)});
      if (!el) throw new Error('no element ' + {js(selector)});
      el.focus(); el.value = {js(value)};
      el.dispatchEvent(new Event('input', {{bubbles: true}}));
      el.dispatchEvent(new Event('change', {{bubbles: true}}));
      return true;
    }})()""")


def click(page, selector):
    page.evaluate(f"""(() => {{
      const el = document.querySelector({js(selector)});
      if (!el) throw new Error('no element ' + {js(selector)});
      el.click(); return true;
    }})()""")


def row(page, task_id):
    """The task row's attributes and cells, or null."""
    return page.evaluate(f"""(() => {{
      const tr = document.querySelector('#tasks tr.task[data-task-id="' + CSS.escape({js(task_id)}) + '"]');
      if (!tr) return null;
      const text = (sel) => {{ const c = tr.querySelector(sel); return c ? c.textContent.trim() : null; }};
      const bar = tr.querySelector('progress.progress');
      return {{state: tr.dataset.state, steps: tr.dataset.progressSteps, name: text('.name'),
               stateText: text('.state'), result: text('.result'),
               progress: bar ? {{value: bar.value, max: bar.max}} : null}};
    }})()""")


def submission(page, kind, after):
    """The task id of the page's next POST /<kind> answer after the first `after` ones."""
    got = page.wait_for(f"""(() => {{
      const s = window.__check.submitted.filter(x => x.url.includes('/{kind}'));
      return s.length > {after} ? s[{after}] : null;
    }})()""", timeout=15, what=f"the page's POST /{kind}")
    if got.get("status") != 200 or not isinstance(got.get("body"), dict) or "task_id" not in got["body"]:
        raise CDPError(f"POST /{kind} answered {got.get('status')}: {got.get('body')}")
    return got["body"]["task_id"]


def send_task(host, port, token, body):
    """POST /tasks from outside the page; the task id."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://{host}:{port}/tasks", data=json.dumps(body).encode(), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["task_id"]
    except (OSError, ValueError, KeyError) as e:
        raise CDPError(f"POST /tasks from outside the page failed: {e}") from None


def wait_final(page, task_id, timeout):
    """Wait until the task's row shows a final state; the row."""
    page.wait_for(f"""(() => {{
      const tr = document.querySelector('#tasks tr.task[data-task-id="' + CSS.escape({js(task_id)}) + '"]');
      return tr && ['SUCCESS', 'FAILURE', 'REVOKED'].includes(tr.dataset.state);
    }})()""", timeout=timeout, what=f"row {task_id} in a final state")
    return row(page, task_id)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", help="typed into #token and saved (auth on)")
    ap.add_argument("--blob-path", required=True, help="a directory of documents under the worker's --documents-root")
    ap.add_argument("--worker", help="hostname the #workers table must list (default: any row)")
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    summary = {"url": f"http://{a.host}:{a.port}/", "ok": False}
    failure = None
    with Browser.launch() as browser:
        page = browser.page()
        try:
            page.navigate(summary["url"])
            page.evaluate(RECORD_SUBMISSIONS)
            if a.token:
                set_value(page, "#token", a.token)
                click(page, "#token-save")
                stored = page.evaluate("localStorage.getItem('celeris.token')")
                if stored != a.token:
                    raise CDPError(f"#token-save stored {stored!r} in localStorage celeris.token")
            page.wait_for("document.querySelector('#connection')?.dataset.state === 'live'", timeout=a.timeout,
                          what="#connection[data-state=live]")

            # create_task [3]: PROGRESS 0, 1, 2 then SUCCESS, each seen by the page.
            set_value(page, "#task-name", "create_task")
            set_value(page, "#task-args", "[3]")
            set_value(page, "#task-kwargs", "{}")
            click(page, "#task-submit")
            task_id = submission(page, "tasks", 0)
            summary["task_id"] = task_id
            task = wait_final(page, task_id, a.timeout)
            summary["task"] = task
            if task["state"] != "SUCCESS":
                raise CDPError(f"create_task row ended {task['state']}: {task}")
            steps = [s for s in (task.get("steps") or "").split(",") if s != ""]
            if not _in_order(steps, ["0", "1", "2"]):
                raise CDPError(f"create_task row's data-progress-steps {task.get('steps')!r} lack 0,1,2 in order")
            if task.get("name") != "create_task":
                raise CDPError(f"create_task row's .name cell reads {task.get('name')!r}")
            if "Task completed" not in (task.get("result") or ""):
                raise CDPError(f"create_task row's .result cell reads {task.get('result')!r}")

            # The document workflow.
            set_value(page, "#blob-path", a.blob_path)
            click(page, "#process-submit")
            process_id = submission(page, "process", 0)
            summary["process_id"] = process_id
            process = wait_final(page, process_id, a.timeout)
            summary["process"] = process
            if process["state"] != "SUCCESS":
                raise CDPError(f"/process row ended {process['state']}: {process}")
            if '"documents"' not in (process.get("result") or ""):
                raise CDPError(f"/process row's .result cell lacks the workflow's result: {process.get('result')!r}")

            # The workers table lists the worker (from /stats).
            sel = (f'#workers tr.worker[data-hostname="{a.worker}"]' if a.worker else "#workers tr.worker")
            page.wait_for(f"!!document.querySelector({js(sel)})", timeout=a.timeout, what=sel)
            summary["workers"] = page.evaluate("""[...document.querySelectorAll('#workers tr.worker')].map(tr => ({
                hostname: tr.dataset.hostname,
                queues: tr.querySelector('.queues')?.textContent.trim() ?? null,
                concurrency: tr.querySelector('.concurrency')?.textContent.trim() ?? null}))""")
            summary["queues"] = page.evaluate("""[...document.querySelectorAll('#queues tr.queue')].map(tr => ({
                queue: tr.dataset.queue, depth: tr.querySelector('.depth')?.textContent.trim() ?? null}))""")
            # A task sent by someone else (not through the page) reaches it over the task_status firehose:
            # the page's own tasks are final, so it holds no subscriptions now.
            other = send_task(a.host, a.port, a.token, {"task": "create_task", "args": [2]})
            summary["firehose_task_id"] = other
            firehose = wait_final(page, other, a.timeout)
            summary["firehose_task"] = firehose
            if firehose["state"] != "SUCCESS":
                raise CDPError(f"firehose row ended {firehose['state']}: {firehose}")
            if page.exceptions:
                raise CDPError(f"the page threw: {page.exceptions}")
            summary["ok"] = True
        except CDPError as e:
            failure = str(e)
        finally:
            try:
                summary["connection"] = page.evaluate("document.querySelector('#connection')?.dataset.state ?? null")
                summary["error_text"] = page.evaluate("document.querySelector('#error')?.textContent.trim() ?? null")
                summary["counters"] = page.evaluate("window.celerisDashboard ? {messages: window.celerisDashboard.messages, "
                                                    "flushes: window.celerisDashboard.flushes, rows: window.celerisDashboard.rows} : null")
                summary["screenshot"] = page.screenshot(a.screenshot)
            except CDPError as e:
                failure = failure or f"after the checks: {e}"
            summary["page_exceptions"] = page.exceptions
            summary["console_errors"] = [t for k, t in page.console if k in ("error", "assert")]
            page.close()
    if failure:
        summary["failure"] = failure
        summary["ok"] = False
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


def _in_order(seen, wanted):
    it = iter(seen)
    return all(w in it for w in wanted)


if __name__ == "__main__":
    sys.exit(main())
