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


def certificates(tmp):
    """A CA and a server certificate it signs for 127.0.0.1 / localhost (EC P-256), with the openssl
    CLI, in `tmp`: ca.pem, server.pem, server.key."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    run = lambda args: subprocess.run(["openssl"] + args, check=True, capture_output=True)  # noqa: E731
    run(["req", "-x509"] + ec + ["-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=bench CA"])
    run(["req"] + ec + ["-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost"])
    open(p("ext.cnf"), "w").write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
         "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf")])


def wait_redis(port, timeout=10):
    """Return once the redis-server on plaintext 127.0.0.1:`port` answers PING."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout
        if out.strip() == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"redis-server on {port} did not start")


def build_running():
    """Whether a Swift build runs on the machine now (its CPU use skews the figures)."""
    return subprocess.run(["pgrep", "-f", "swift-build"], capture_output=True).returncode == 0


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

    def tls_redis(self, port, tls_port, certs):
        """A redis-server with a plaintext port and a TLS port (the `certificates(certs)` server
        certificate, no client certificates asked); returns once PING answers on `port`."""
        p = self.start(["redis-server", "--port", str(port), "--tls-port", str(tls_port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--tls-cert-file", f"{certs}/server.pem",
                        "--tls-key-file", f"{certs}/server.key", "--tls-ca-cert-file", f"{certs}/ca.pem",
                        "--tls-auth-clients", "no"])
        wait_redis(port)
        return p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
