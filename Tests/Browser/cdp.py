"""A small Chrome DevTools Protocol driver: headless Chromium over the `websockets` package.

    with Browser.launch() as b:
        page = b.page()
        page.navigate("http://127.0.0.1:8000/")
        page.wait_for("document.readyState === 'complete'", timeout=10)
        print(page.evaluate("document.title"))
        page.screenshot("/tmp/shot.png")

Chromium runs with a temporary profile and --remote-debugging-port=0; the port it picked is
read from the profile's DevToolsActivePort file. The browser process group is killed when
the `with` block ends, when the Python process exits normally (atexit), or on SIGTERM/SIGINT;
the browser gets SIGKILL from the kernel (PR_SET_PDEATHSIG) when the Python process is killed.
"""
import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from websockets.sync.client import connect

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class CDPError(Exception):
    """A failed CDP command, a page exception, or a condition that did not become true in time."""


def find_chromium():
    """The Chromium executable: $CHROMIUM, else the first of CANDIDATES on PATH; None when absent."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


_live = []  # browsers to kill at exit


def _kill_all(*_):
    for b in list(_live):
        b.close()


atexit.register(_kill_all)


def _on_signal(signum, _frame):
    _kill_all()
    raise SystemExit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT):
    try:
        signal.signal(_sig, _on_signal)
    except ValueError:  # not the main thread
        pass


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent):
    """A preexec_fn: the child gets SIGKILL when this Python process dies, however it dies
    (a SIGKILL from a test harness runs no atexit handler; Linux sends it when the launching
    thread ends, so launch from the thread that outlives the browser); the browser's helpers, which
    watch their IPC channel to it, then end too."""
    def preexec():
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl: nobody would kill us
            os._exit(1)
    return preexec


class Browser:
    """One headless Chromium process and its temporary profile."""

    def __init__(self, proc, profile, port):
        self.proc, self.profile, self.port = proc, profile, port
        _live.append(self)

    @classmethod
    def launch(cls, executable=None, timeout=30, width=1280, height=900, extra_args=()):
        exe = executable or find_chromium()
        if not exe:
            raise CDPError("chromium not found (apt-get install chromium, or set $CHROMIUM); `make test` installs it")
        profile = tempfile.mkdtemp(prefix="celeris-chromium-")
        args = [exe, "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows", "--mute-audio", "--disable-crash-reporter",
                "--disable-breakpad",
                f"--window-size={width},{height}", f"--user-data-dir={profile}",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", *extra_args, "about:blank"]
        log = open(os.path.join(profile, "chromium.log"), "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent(os.getpid()))
        log.close()
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        port = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with open(port_file) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    port = int(first)
                    break
            except OSError:
                pass
            time.sleep(0.05)
        b = cls(proc, profile, port)
        if port is None:
            tail = b.log_tail()
            b.close()
            raise CDPError(f"chromium did not open its DevTools port within {timeout}s:\n{tail}")
        return b

    def log_tail(self, n=4000):
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _http(self, path, method="GET"):
        import urllib.request
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def page(self):
        """A new tab (target), attached over its own WebSocket."""
        info = self._http("/json/new?about:blank", method="PUT")
        return Page(info["webSocketDebuggerUrl"], info["id"])

    def renderer_pids(self):
        """Pids of the browser's renderer processes (children in its process group with --type=renderer)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.getpgid(int(d)) != self.proc.pid:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if any(b"--type=renderer" in part for part in cmd):  # zygote children rewrite argv into one string
                pids.append(int(d))
        return pids

    def group_pids(self):
        """Every pid in the browser's process group."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.getpgid(int(d)) == self.proc.pid:
                        out.append(int(d))
                except OSError:
                    pass
        return out

    def close(self):
        if self in _live:
            _live.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # helpers left in the group
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab: send CDP commands, evaluate JavaScript, wait for conditions."""

    def __init__(self, ws_url, target_id):
        self.target_id = target_id
        self.ws = connect(ws_url, max_size=256 * 1024 * 1024, open_timeout=10)
        self.next_id = 0
        self.events = []  # (method, params) received while waiting for replies
        self.exceptions = []  # Runtime.exceptionThrown descriptions
        self.console = []  # Runtime.consoleAPICalled (type, text)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method, params=None, timeout=30):
        """Run one CDP command; its result, or CDPError."""
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"{method}: no reply within {timeout}s")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                raise CDPError(f"{method}: no reply within {timeout}s") from None
            msg = json.loads(raw)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._event(msg["method"], msg.get("params", {}))

    def _event(self, method, params):
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append((params.get("type"), text))
        else:
            self.events.append((method, params))
            del self.events[:-200]

    def evaluate(self, expression, timeout=30, await_promise=True):
        """The JSON value of a JavaScript expression (promises awaited); CDPError when it throws."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise}, timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError(f"evaluate threw: {d.get('exception', {}).get('description') or d.get('text')}")
        return r.get("result", {}).get("value")

    def navigate(self, url, timeout=30):
        """Load `url` and wait until document.readyState is complete."""
        r = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if r.get("errorText"):
            raise CDPError(f"navigate {url}: {r['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout=timeout)

    def wait_for(self, expression, timeout=30, interval=0.05, what=None):
        """Poll `expression` until it is truthy; its value. CDPError with the last value at the deadline."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.evaluate(expression, timeout=max(1, deadline - time.monotonic()))
                if last:
                    return last
            except CDPError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                raise CDPError(f"timed out after {timeout}s waiting for {what or expression} (last: {last!r})")
            time.sleep(interval)

    def screenshot(self, path):
        """Write a PNG of the page (full page height) to `path`."""
        m = self.send("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m.get("contentSize") or {}
        params = {"format": "png", "captureBeyondViewport": True}
        if size.get("width") and size.get("height"):
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def metrics(self):
        """Performance.getMetrics as a dict (Performance.enable is sent on first use)."""
        if not getattr(self, "_perf", False):
            self.send("Performance.enable", {"timeDomain": "threadTicks"})
            self._perf = True
        return {m["name"]: m["value"] for m in self.send("Performance.getMetrics")["metrics"]}

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
