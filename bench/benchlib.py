"""Helpers the bench scripts share: free loopback ports, waiting for a server,
RSS of a process, and child processes that are always cleaned up."""
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


BUILD = os.path.join(ROOT, ".build", "bench")


def native_client(name):
    """Compile bench/<name>/<name>.c (a hiredis load client) into .build/bench; its path."""
    os.makedirs(BUILD, exist_ok=True)
    path = os.path.join(BUILD, name)
    subprocess.run(["cc", "-O2", "-o", path, os.path.join(HERE, name, name + ".c"), "-lhiredis", "-lpthread"], check=True)
    return path


def free_port():
    """A loopback port nobody listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout=30):
    """Return once `url` answers at all (any status)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def rss_kb(pid):
    """Resident set size of a process, in kB (0 once it is gone)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User + system CPU time a process has used so far, in seconds (0 once it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Children:
    """Child processes of one bench run; `with Children() as kids:` kills leftovers on exit."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, quiet=True, **kw):
        if quiet:
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, grace=10):
        """SIGTERM, then SIGKILL after `grace` seconds."""
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()

    def redis(self, port, *extra):
        """An embedded redis-server on 127.0.0.1:`port`, nothing persisted."""
        p = self.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra])
        time.sleep(0.5)
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
