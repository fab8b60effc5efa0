/// The dashboard served at `GET /`: one self-contained page (HTML, inline CSS and JS; no CDN,
/// no build step) over the public API only: `POST /tasks` and `/process` to send work, `/ws`
/// (`{"subscribe": [id]}` per task sent, the `task_status` firehose when the token allows it)
/// for live states, `GET /stats` every 2 s for queue depths, throughput and workers online.
/// The token (saved in `localStorage["celeris.token"]`) goes as `Authorization: Bearer` on
/// requests and `?token=` on `/ws`. Messages are coalesced: they update a map and one
/// `requestAnimationFrame` flush renders; at most 500 task rows are kept.
///
///     connection.respond(status: 200, body: DashboardPage.html, contentType: "text/html; charset=utf-8",
///                        headers: DashboardPage.headers)
public enum DashboardPage {
    /// Response headers besides the content type: no caching, and a policy that lets the
    /// page load nothing but itself and talk only to its own origin.
    public static let headers: [String: String] = [
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy":
            "default-src 'none'; script-src 'unsafe-inline'; worker-src blob:; style-src 'unsafe-inline'; connect-src 'self'; "
            + "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ]

    /// The page.
    public static let html = ##"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Celeris dashboard</title>
        <style>
        :root { --bg: #f6f7f9; --card: #fff; --ink: #1d2430; --muted: #667085; --line: #e3e6eb;
                --ok: #1a7f37; --bad: #c0362c; --run: #2f6fdf; --warn: #b26b00; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
        header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2430; color: #fff; flex-wrap: wrap; }
        header h1 { font-size: 17px; margin: 0; font-weight: 600; }
        header .spacer { flex: 1; }
        header input { width: 260px; }
        #connection { padding: 2px 10px; border-radius: 10px; font-size: 12px; background: #7a2020; }
        #connection[data-state="live"] { background: #1a7f37; }
        main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(420px, 2fr); gap: 16px; padding: 16px 20px; }
        section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; margin-bottom: 16px; overflow-x: auto; }
        section h2 { font-size: 14px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
        form { display: grid; grid-template-columns: 90px 1fr; gap: 6px 8px; align-items: center; margin-bottom: 12px; }
        form button { grid-column: 2; justify-self: start; }
        input { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; min-width: 0; }
        button { font: inherit; padding: 4px 12px; border: 1px solid #2f6fdf; background: #2f6fdf; color: #fff; border-radius: 4px; cursor: pointer; }
        table { width: 100%; border-collapse: collapse; }
        th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); font-size: 12px; }
        /* Fixed layouts: column widths come from the <col>s, not from measuring every cell. */
        table.workers { table-layout: fixed; }
        table.workers td, table.workers th { overflow-wrap: anywhere; }
        table.tasks { table-layout: fixed; }
        table.tasks thead th { position: sticky; top: 0; background: var(--card); z-index: 1; }
        /* One line per task row: a row's height never depends on its text, so a new state relayouts nothing else.
           (No overflow clip per cell: 2,500 clips cost more per frame than the rest of the table.) */
        table.tasks td { white-space: nowrap; height: 27px; }
        table.tasks td.result { overflow: hidden; }
        td.result { font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
        td.id { font-family: ui-monospace, Menlo, monospace; font-size: 11px; color: var(--muted); }
        tr.task[data-state="SUCCESS"] .state { color: var(--ok); }
        tr.task[data-state="FAILURE"] .state, tr.task[data-state="REVOKED"] .state { color: var(--bad); }
        tr.task[data-state="PROGRESS"] .state, tr.task[data-state="STARTED"] .state { color: var(--run); }
        progress { width: 100%; height: 12px; vertical-align: middle; }
        #error { color: var(--bad); min-height: 1.4em; margin: 0 20px; padding-top: 8px; white-space: pre-wrap; }
        canvas { width: 100%; height: 180px; display: block; }
        .legend { font-size: 12px; color: var(--muted); }
        .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 10px; vertical-align: middle; }
        /* The task list is its own layout and paint island of fixed size: rows coming and going inside it
           never relayout or repaint the rest of the page. */
        .tasks-wrap { height: 60vh; min-height: 240px; overflow: auto; contain: strict; }
        @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
        </style>
        </head>
        <body>
        <header>
          <h1>Celeris</h1>
          <span id="connection" data-state="offline">offline</span>
          <span class="spacer"></span>
          <label for="token">Token</label>
          <input id="token" type="password" autocomplete="off" placeholder="bearer token (if auth is on)">
          <button id="token-save" type="button">Save</button>
        </header>
        <div id="error" role="alert"></div>
        <main>
          <div>
            <section>
              <h2>Send a task</h2>
              <form id="task-form">
                <label for="task-name">Task</label><input id="task-name" value="create_task">
                <label for="task-args">Args</label><input id="task-args" value="[3]">
                <label for="task-kwargs">Kwargs</label><input id="task-kwargs" value="{}">
                <button id="task-submit" type="submit">Send</button>
              </form>
              <h2>Process documents</h2>
              <form id="process-form">
                <label for="blob-path">Blob path</label><input id="blob-path" placeholder="/data/docs">
                <label for="threshold">Threshold</label><input id="threshold" value="0.5">
                <button id="process-submit" type="submit">Process</button>
              </form>
            </section>
            <section>
              <h2>Queues</h2>
              <table><thead><tr><th>Queue</th><th>Depth</th></tr></thead><tbody id="queues"></tbody></table>
            </section>
          </div>
          <div>
            <section>
              <h2>Throughput</h2>
              <canvas id="throughput-chart" width="800" height="180"></canvas>
              <div class="legend"><span style="background:#1a7f37"></span>processed/s<span style="background:#2f6fdf"></span>submitted/s<span style="background:#b26b00"></span>queued</div>
            </section>
            <section>
              <h2>Workers</h2>
              <table class="workers"><colgroup><col style="width:24%"><col style="width:20%"><col style="width:13%"><col style="width:10%"><col style="width:13%"><col style="width:20%"></colgroup>
              <thead><tr><th>Hostname</th><th>Queues</th><th>Concurrency</th><th>Active</th><th>Processed</th><th>Software</th></tr></thead>
              <tbody id="workers"></tbody></table>
            </section>
            <section>
              <h2>Tasks</h2>
              <div class="tasks-wrap">
              <table class="tasks"><colgroup><col style="width:16%"><col style="width:252px"><col style="width:96px"><col style="width:110px"><col></colgroup>
              <thead><tr><th>Task</th><th>Id</th><th>State</th><th>Progress</th><th>Result</th></tr></thead>
              <tbody id="tasks"></tbody></table>
              </div>
            </section>
          </div>
        </main>
        <script>
        (function () {
          "use strict";
          // Rendering budget: every message only updates a record in a Map; one requestAnimationFrame
          // flush per frame writes the DOM (no layout reads), touching at most ROWS_PER_FLUSH rows,
          // newest first, updating rows in place and adding/removing rows in one batch.
          // A flush costs about the same whatever it changes (the table's layout and paint), so flushes
          // are at least MIN_FLUSH_MS apart: under load the page renders 10 times a second, not 60
          // (at 1,000 tasks/s: 30 new rows a flush, newest first; the rest are evicted unseen).
          // New rows cost most (the rows below move), so a flush adds at most NEW_ROWS_PER_FLUSH and
          // updates at most ROWS_PER_FLUSH rows in place, newest first; the rest wait for the next
          // flush or are evicted unseen.
          var MAX_ROWS = 500, ROWS_PER_FLUSH = 200, NEW_ROWS_PER_FLUSH = 30, MIN_FLUSH_MS = 100, IDS_PER_MESSAGE = 100;
          var FINAL = { SUCCESS: 1, FAILURE: 1, REVOKED: 1 };
          var counters = { messages: 0, flushes: 0, rows: 0 };
          window.celerisDashboard = counters;
          var $ = function (id) { return document.getElementById(id); };
          var tbody = $("tasks");
          var tasks = new Map();     // id -> record (insertion order: oldest first)
          var dirty = new Set();     // records awaiting the next flush
          var flushQueued = false, lastFlush = -Infinity, pendingUnsubscribe = [], seq = 0;
          var ws = null, wsBackoff = 500, wsTimer = null;
          var stats = null, statsTimer = null;

          function token() { return localStorage.getItem("celeris.token") || ""; }
          function headers(json) {
            var h = {};
            if (json) h["Content-Type"] = "application/json";
            if (token()) h["Authorization"] = "Bearer " + token();
            return h;
          }
          function showError(text) { $("error").textContent = new Date().toLocaleTimeString() + "  " + text; }
          function clearError() { $("error").textContent = ""; }
          function short(v) {
            var s = typeof v === "string" ? v : JSON.stringify(v);
            return s === undefined ? "" : (s.length > 300 ? s.slice(0, 300) + "…" : s);
          }

          // ---- task records and the coalesced flush ----
          // A record: what the task is now (state, steps, total, result) and, once it has a row,
          // what the row shows (`shown`), so a flush writes only what changed.
          function record(id, name) {
            var r = tasks.get(id);
            if (!r) {
              r = { id: id, name: name || "", seq: ++seq, state: "PENDING", steps: [], total: null, done: null,
                    result: undefined, resultRev: 0, own: false, row: null, shown: null };
              tasks.set(id, r);
            } else if (name && !r.name) {
              r.name = name;
            }
            return r;
          }
          function touch(r) {
            dirty.add(r);
            scheduleFlush();
          }
          function scheduleFlush() {
            if (flushQueued) return;
            flushQueued = true;
            var wait = lastFlush + MIN_FLUSH_MS - performance.now();
            if (wait > 1) setTimeout(function () { requestAnimationFrame(flush); }, wait);
            else requestAnimationFrame(flush);
          }
          // Over MAX_ROWS: the oldest final tasks go first, then the oldest unfinished ones.
          function evict() {
            var excess = tasks.size - MAX_ROWS;
            if (excess <= 0) return;
            var gone = [];
            for (var r of tasks.values()) {
              if (excess === 0) break;
              if (FINAL[r.state]) { gone.push(r); tasks.delete(r.id); excess--; }
            }
            for (var o of tasks.values()) {
              if (excess === 0) break;
              gone.push(o); tasks.delete(o.id); excess--;
              if (o.own) pendingUnsubscribe.push(o.id);
            }
            for (var i = 0; i < gone.length; i++) {
              var g = gone[i];
              dirty.delete(g);
              if (g.row) { g.row.remove(); g.row = null; counters.rows--; }
            }
          }
          // One row: tr > td.name, td.id, td.state, td.bar > progress.progress, td.result; each text
          // cell keeps one Text node whose data is rewritten (no node churn).
          var rowTemplate = (function () {
            var tr = document.createElement("tr");
            tr.className = "task";
            ["name", "id", "state", "bar", "result"].forEach(function (cls) {
              var td = document.createElement("td");
              td.className = cls;
              td.appendChild(cls === "bar" ? document.createElement("progress") : document.createTextNode(""));
              tr.appendChild(td);
            });
            tr.cells[3].firstChild.className = "progress";
            tr.cells[3].firstChild.max = 1;
            tr.cells[3].firstChild.value = 0;
            tr.dataset.state = "PENDING";
            tr.dataset.progressSteps = "";
            return tr;
          })();
          function build(r) {
            var tr = rowTemplate.cloneNode(true);
            tr.dataset.taskId = r.id;
            tr._seq = r.seq;
            tr.cells[1].firstChild.data = r.id;
            r.row = tr;
            r.shown = { name: tr.cells[0].firstChild, state: tr.cells[2].firstChild, bar: tr.cells[3].firstChild,
                        result: tr.cells[4].firstChild, nameText: "", stateText: "PENDING", steps: 0,
                        max: 1, value: 0, resultRev: 0 };
            return tr;
          }
          function paint(r) {
            var tr = r.row, s = r.shown;
            if (s.nameText !== r.name) { s.name.data = r.name; s.nameText = r.name; }
            if (s.stateText !== r.state) { tr.dataset.state = r.state; s.state.data = r.state; s.stateText = r.state; }
            if (s.steps !== r.steps.length) { tr.dataset.progressSteps = r.steps.join(","); s.steps = r.steps.length; }
            var max = 1, value = 0;
            if (r.state === "SUCCESS") value = 1;
            else if (r.total > 0 && r.done !== null) { max = r.total; value = Math.min(r.done, r.total); }
            else if (!FINAL[r.state] && r.state !== "PENDING") value = null;  // running, size unknown: indeterminate
            if (s.max !== max) { s.bar.max = max; s.max = max; }
            if (s.value !== value) {
              if (value === null) s.bar.removeAttribute("value"); else s.bar.value = value;
              s.value = value;
            }
            if (s.resultRev !== r.resultRev) {
              var text = short(r.result);
              s.result.data = text;
              s.resultRev = r.resultRev;
              if (FINAL[r.state]) tr.cells[4].title = text;
            }
          }
          function newestFirst(a, b) { return b.seq - a.seq; }
          function flush() {
            flushQueued = false;
            lastFlush = performance.now();
            counters.flushes++;
            evict();
            var list = Array.from(dirty);
            list.sort(newestFirst);
            var fresh = [], painted = 0;
            for (var i = 0; i < list.length; i++) {
              var r = list[i];
              if (r.row) {
                if (painted === ROWS_PER_FLUSH) continue;
                painted++;
                paint(r);
              } else {
                if (fresh.length === NEW_ROWS_PER_FLUSH) continue;
                fresh.push(r);
              }
              dirty.delete(r);
            }
            if (fresh.length) {
              // Rows stay newest first: usually all new rows go on top in one fragment; rows held back
              // by the per-flush budget are merged into their place.
              fresh.sort(newestFirst);
              var top = tbody.firstChild;
              if (!top || fresh[fresh.length - 1].seq > top._seq) {
                var frag = document.createDocumentFragment();
                for (var j = 0; j < fresh.length; j++) { frag.appendChild(build(fresh[j])); paint(fresh[j]); }
                tbody.insertBefore(frag, top);
              } else {
                var cur = top;
                for (var n = 0; n < fresh.length; n++) {
                  var f = fresh[n];
                  while (cur && cur._seq > f.seq) cur = cur.nextSibling;
                  tbody.insertBefore(build(f), cur);
                  paint(f);
                }
              }
              counters.rows += fresh.length;
            }
            if (dirty.size) scheduleFlush();  // the rest next time
            if (pendingUnsubscribe.length) {
              var ids = pendingUnsubscribe.splice(0);
              for (var k = 0; k < ids.length; k += IDS_PER_MESSAGE) send({ unsubscribe: ids.slice(k, k + IDS_PER_MESSAGE) });
            }
          }

          // A message from /ws: a subscribed task's state {"task_id","status","state","meta"|"result"},
          // or a task_status firehose update {"task_id","state","progress","total",...}.
          function onMessage(text) {
            counters.messages++;
            var m;
            try { m = JSON.parse(text); } catch (e) { return; }
            if (!m || typeof m !== "object") return;
            if (m.error) { showError("WebSocket: " + m.error + (m.detail ? ": " + m.detail : "") + (m.task_id ? " (" + m.task_id + ")" : "")); return; }
            if (typeof m.task_id !== "string" || typeof m.state !== "string") return;
            var r = tasks.get(m.task_id) || record(m.task_id, "");
            if (FINAL[r.state]) return;  // nothing after a final state
            var step = null;
            if (m.state === "PROGRESS") {
              if (m.meta && typeof m.meta === "object" && typeof m.meta.progress === "number") step = m.meta.progress;
              else if (typeof m.progress === "number") step = m.progress;
              if (m.meta && typeof m.meta.total === "number") r.total = m.meta.total;
            }
            if (typeof m.total === "number") r.total = m.total;
            if (step !== null) {
              if (r.steps[r.steps.length - 1] !== step) r.steps.push(step);
              r.done = step + 1;
            }
            r.state = m.state;
            // The result is kept as sent and turned into text only when its row is painted.
            if ("result" in m) { r.result = m.result; r.resultRev++; }
            else if (m.state !== "PROGRESS" && "meta" in m && m.meta !== null) { r.result = m.meta; r.resultRev++; }
            if (FINAL[r.state] && r.own) pendingUnsubscribe.push(r.id);
            touch(r);
          }

          // ---- WebSocket with backoff; the page's unfinished tasks are subscribed again on every connect ----
          // The socket lives in a small Web Worker (from a blob: URL) that hands the page its messages in
          // batches every RELAY_MS, so the page's thread runs one event per batch instead of one per
          // message (2,000/s at 1,000 tasks/s). Without workers the page holds the socket itself.
          var RELAY_MS = 30;
          var RELAY_SOURCE = [
            "var ws = null, buf = [], timer = null;",
            "function post() { timer = null; if (buf.length) { postMessage({ type: 'batch', texts: buf }); buf = []; } }",
            "function drop() { if (ws) { ws.onclose = null; ws.onmessage = null; ws.close(); ws = null; } clearTimeout(timer); timer = null; buf = []; }",
            "onmessage = function (e) {",
            "  var d = e.data;",
            "  if (d.type === 'connect') {",
            "    drop();",
            "    var s;",
            "    try { s = new WebSocket(d.url); } catch (x) { postMessage({ type: 'close', code: 0, reason: String(x) }); return; }",
            "    ws = s;",
            "    s.onopen = function () { if (ws === s) postMessage({ type: 'open' }); };",
            "    s.onmessage = function (m) {",
            "      if (ws !== s || typeof m.data !== 'string') return;",
            "      buf.push(m.data);",
            "      if (!timer) timer = setTimeout(post, " + RELAY_MS + ");",
            "    };",
            "    s.onclose = function (c) { if (ws !== s) return; clearTimeout(timer); post(); ws = null; postMessage({ type: 'close', code: c.code, reason: c.reason }); };",
            "  } else if (d.type === 'send') { if (ws && ws.readyState === 1) ws.send(d.text); }",
            "  else if (d.type === 'drop') { drop(); }",
            "};",
          ].join("\n");
          var relay = null, live = false;
          try {
            relay = new Worker(URL.createObjectURL(new Blob([RELAY_SOURCE], { type: "text/javascript" })));
            relay.onmessage = function (e) {
              var d = e.data;
              if (d.type === "batch") { for (var i = 0; i < d.texts.length; i++) onMessage(d.texts[i]); }
              else if (d.type === "open") opened();
              else if (d.type === "close") closed(d.code, d.reason);
            };
            relay.onerror = function () { relay = null; connect(); };  // no worker after all: the page holds the socket
          } catch (e) { relay = null; }

          function setConnection(on) {
            var el = $("connection");
            el.dataset.state = on ? "live" : "offline";
            el.textContent = on ? "live" : "offline";
          }
          function send(obj) {
            if (!live) return;
            if (relay) relay.postMessage({ type: "send", text: JSON.stringify(obj) });
            else if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj));
          }
          function subscribe(ids) {
            for (var i = 0; i < ids.length; i += IDS_PER_MESSAGE) send({ subscribe: ids.slice(i, i + IDS_PER_MESSAGE) });
          }
          function opened() {
            wsBackoff = 500;
            live = true;
            setConnection(true);
            var open = [];
            tasks.forEach(function (r) { if (r.own && !FINAL[r.state]) open.push(r.id); });
            subscribe(open);
          }
          function closed(code, reason) {
            live = false;
            setConnection(false);
            if (code === 1008) showError("WebSocket closed: " + (reason || "policy violation (token?)"));
            retry();
          }
          function connect() {
            clearTimeout(wsTimer);
            live = false;
            if (ws) { ws.onclose = null; ws.close(); ws = null; }
            var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
            if (token()) url += "?token=" + encodeURIComponent(token());
            if (relay) { relay.postMessage({ type: "connect", url: url }); return; }
            var sock;
            try { sock = new WebSocket(url); } catch (e) { showError("WebSocket: " + e); return retry(); }
            ws = sock;
            sock.onopen = function () { if (ws === sock) opened(); };
            sock.onmessage = function (ev) { if (typeof ev.data === "string") onMessage(ev.data); };
            sock.onclose = function (ev) {
              if (ws !== sock) return;
              ws = null;
              closed(ev.code, ev.reason);
            };
          }
          function retry() {
            clearTimeout(wsTimer);
            var wait = wsBackoff * (0.75 + Math.random() / 2);
            wsBackoff = Math.min(wsBackoff * 2, 10000);
            wsTimer = setTimeout(connect, wait);
          }

          // ---- sending work ----
          function describe(resp, body) {
            if (body && body.error) return resp.status + " " + body.error + (body.detail ? ": " + body.detail : "");
            return "HTTP " + resp.status;
          }
          function post(path, payload, name) {
            return fetch(path, { method: "POST", headers: headers(true), body: JSON.stringify(payload) })
              .then(function (resp) {
                return resp.json().catch(function () { return null; }).then(function (body) {
                  if (!resp.ok || !body || typeof body.task_id !== "string") throw new Error(describe(resp, body));
                  clearError();
                  var r = record(body.task_id, name);
                  r.own = true;
                  if (typeof r.total !== "number" && name === "create_task" && typeof payload.args[0] === "number") r.total = payload.args[0];
                  touch(r);
                  subscribe([body.task_id]);
                  return body.task_id;
                });
              })
              .catch(function (e) { showError(path + ": " + (e && e.message ? e.message : e)); });
          }
          function parseJSON(text, what, check) {
            var v;
            try { v = JSON.parse(text); } catch (e) { throw new Error(what + " is not JSON: " + e.message); }
            if (!check(v)) throw new Error(what + " has the wrong shape");
            return v;
          }
          $("task-form").addEventListener("submit", function (ev) {
            ev.preventDefault();
            var name = $("task-name").value.trim(), args, kwargs;
            try {
              args = parseJSON($("task-args").value || "[]", "args", Array.isArray);
              kwargs = parseJSON($("task-kwargs").value || "{}", "kwargs", function (v) { return v && typeof v === "object" && !Array.isArray(v); });
            } catch (e) { return showError(e.message); }
            post("/tasks", { task: name, args: args, kwargs: kwargs }, name);
          });
          $("process-form").addEventListener("submit", function (ev) {
            ev.preventDefault();
            var payload = { blob_path: $("blob-path").value.trim() };
            var t = $("threshold").value.trim();
            if (t !== "") {
              payload.threshold = Number(t);
              if (!isFinite(payload.threshold)) return showError("threshold must be a number from 0 to 1");
            }
            post("/process", payload, "process");
          });
          $("token-save").addEventListener("click", function () {
            var t = $("token").value.trim();
            if (t) localStorage.setItem("celeris.token", t); else localStorage.removeItem("celeris.token");
            clearError();
            wsBackoff = 500;
            connect();
            pollStats();
          });

          // ---- /stats: queues, workers, throughput chart (redrawn only on /stats or a resize) ----
          function rows(tbody, items, key, attr, fill) {
            var seen = new Set(), have = new Map();
            for (var i = 0; i < tbody.rows.length; i++) have.set(tbody.rows[i].dataset[attr], tbody.rows[i]);
            items.forEach(function (item) {
              var k = item[key];
              seen.add(k);
              var tr = have.get(k);
              if (!tr) { tr = document.createElement("tr"); tr.dataset[attr] = k; tbody.appendChild(tr); }
              fill(tr, item);
            });
            have.forEach(function (tr, k) { if (!seen.has(k)) tr.remove(); });
          }
          function cells(tr, list) {
            while (tr.cells.length < list.length) tr.appendChild(document.createElement("td"));
            list.forEach(function (c, i) {
              var td = tr.cells[i];
              if (td.className !== c[0]) td.className = c[0];
              if (td.textContent !== c[1]) td.textContent = c[1];
            });
          }
          function renderStats(s) {
            var queues = Object.keys(s.queues || {}).sort().map(function (q) { return { name: q, depth: s.queues[q] }; });
            rows($("queues"), queues, "name", "queue", function (tr, q) {
              tr.className = "queue";
              cells(tr, [["name", q.name], ["depth", String(q.depth)]]);
            });
            rows($("workers"), s.workers || [], "hostname", "hostname", function (tr, w) {
              tr.className = "worker";
              cells(tr, [["hostname", w.hostname], ["queues", (w.queues || []).join(", ")], ["concurrency", String(w.concurrency)],
                         ["active", String(w.active)], ["processed", String(w.processed)], ["software", w.software || ""]]);
            });
            drawChart(s);
          }
          // The canvas's CSS size comes from a ResizeObserver, so drawing never reads layout.
          var chartSize = null;
          if (window.ResizeObserver) {
            new ResizeObserver(function (entries) {
              var box = entries[entries.length - 1].contentRect;
              chartSize = { w: box.width, h: box.height };
              if (stats) drawChart(stats);
            }).observe($("throughput-chart"));
          }
          function drawChart(s) {
            var canvas = $("throughput-chart"), ctx = canvas.getContext && canvas.getContext("2d");
            if (!ctx) return;
            var w = chartSize ? chartSize.w : 800, h = chartSize ? chartSize.h : 180, dpr = window.devicePixelRatio || 1;
            if (!(w > 0 && h > 0)) return;
            if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
              canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
            }
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            ctx.clearRect(0, 0, w, h);
            var hist = s.history || [], step = s.interval || 2, now = s.time || Date.now() / 1000;
            var span = hist.length ? Math.min(600, Math.max(60, Math.ceil((now - hist[0].t) / 60) * 60)) : 60;
            var series = [
              { color: "#1a7f37", v: hist.map(function (p) { return p.processed / step; }) },
              { color: "#2f6fdf", v: hist.map(function (p) { return p.submitted / step; }) },
              { color: "#b26b00", v: hist.map(function (p) { var n = 0; for (var q in p.queues) n += p.queues[q]; return n; }) },
            ];
            var top = 1;
            series.forEach(function (se) { se.v.forEach(function (x) { if (x > top) top = x; }); });
            var left = 44, bottom = h - 18, right = w - 6, height = bottom - 8;
            ctx.strokeStyle = "#e3e6eb"; ctx.fillStyle = "#667085"; ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
            for (var g = 0; g <= 4; g++) {
              var y = bottom - height * g / 4;
              ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
              var label = top * g / 4;
              ctx.fillText(label >= 10 ? String(Math.round(label)) : String(Math.round(label * 100) / 100), 2, y + 4);
            }
            ctx.fillText("-" + Math.round(span / 60) + " min", left, h - 4);
            ctx.fillText("now", right - 22, h - 4);
            function x(t) { return left + (right - left) * (1 - Math.min(span, Math.max(0, now - t)) / span); }
            series.forEach(function (se) {
              ctx.strokeStyle = se.color; ctx.lineWidth = 1.5; ctx.beginPath();
              se.v.forEach(function (val, i) {
                var px = x(hist[i].t), py = bottom - height * val / top;
                if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
              });
              ctx.stroke();
            });
          }
          function pollStats() {
            clearTimeout(statsTimer);
            fetch("/stats", { headers: headers(false), cache: "no-store" })
              .then(function (resp) {
                return resp.json().catch(function () { return null; }).then(function (body) {
                  if (!resp.ok || !body) throw new Error(describe(resp, body));
                  stats = body;
                  requestAnimationFrame(function () { renderStats(body); });
                });
              })
              .catch(function (e) { showError("/stats: " + (e && e.message ? e.message : e)); })
              .then(function () { statsTimer = setTimeout(pollStats, 2000); });
          }

          $("token").value = token();
          connect();
          pollStats();
        })();
        </script>
        </body>
        </html>
        """##
}
