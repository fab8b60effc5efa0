#!/usr/bin/env python3
"""Celeris on many hosts: network namespaces behind HAProxy, with failures injected.

  many_hosts.py --bin-dir .build/debug --out result.json [--tasks 3000] [--clients 32] [--deadline 230]
                [--durable auto|on|off] [--failover-clients N] [--keep-logs]

Runs as root. Every host is a network namespace (`cel<pid>-<host>`) on a bridge (`cel-br<pid>`,
itself in the namespace `cel<pid>-br`), 10.88.0.x addresses on veth pairs: nothing leaves the
machine and nothing is configured in the root namespace.

  redis   10.88.0.11  redis-server (master), sentinel :26379
  redis2  10.88.0.12  redis-server (replica), sentinel :26379
  redis3  10.88.0.13  redis-server (replica, replica-priority 0), sentinel :26379  (two replicas: after
                      the failover the new master redis2 still has one, so a durable enqueue's WAIT 1
                      can succeed; the failover list of the fallback broker URL names redis and redis2)
  fe1/fe2 10.88.0.21/22  celeris-frontend :8000 (broker sentinel://... when the binaries know it,
                      else the ';' failover list of both servers; see "broker" in the report)
  lb      10.88.0.30  haproxy :8000 (GET /health checks, option redispatch, retries)
  w-fetch/w-extract/w-compare  celeris-worker per queue (the scaling guide's concurrency)
  w-celery/w-celery2           celeris-worker on the celery queue (two hosts: one gets killed)
  client  10.88.0.50  drives all load through the lb address

Scenario: (1) POST /tasks load and a /process document workflow through the lb; (2) kill -9
every process of w-celery while it runs tasks; (3) partition fe1 for 5 s; (4) kill -9 the Redis
master (sentinels promote the replica). Then the invariants are checked and a JSON report
written (also printed last on stdout). Exit status 0 when the run completed (whatever the
invariants say: the caller asserts on the report), 2 when the machine cannot run it (the
report's "skip" says why), 1 on an error.
"""
import argparse
import base64
import ctypes
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
SUBNET = "10.88.0"
HOSTS = {
    "redis": 11, "redis2": 12, "redis3": 13, "fe1": 21, "fe2": 22, "lb": 30,
    "w-fetch": 41, "w-extract": 42, "w-compare": 43, "w-celery": 44, "w-celery2": 45, "client": 50,
}
MASTER_NAME = "celeris"
SENTINELS = (("redis", 26379), ("redis2", 26379), ("redis3", 26379))
T0 = time.monotonic()
# When every wait must have ended (T0 + --deadline - TEARDOWN_S): wait_for never waits past it,
# so the run and its teardown (net.down: <= 5 s of SIGTERM grace, then SIGKILL) fit --deadline.
TEARDOWN_S = 15
DEADLINE = [float("inf")]


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def addr(host):
    return f"{SUBNET}.{HOSTS[host]}"


def enter_ns(ns):
    """Move the calling thread into network namespace `ns` (setns: per thread)."""
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {ns}: {os.strerror(e)}")
    finally:
        os.close(fd)


def in_ns(ns, fn, *args, timeout=30):
    """Run fn(*args) on a fresh thread inside `ns`; its result or its exception."""
    box = {}

    def run():
        try:
            enter_ns(ns)
            box["v"] = fn(*args)
        except BaseException as e:  # handed back to the caller
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"{getattr(fn, '__name__', fn)} in {ns} took over {timeout} s")
    if "e" in box:
        raise box["e"]
    return box.get("v")


# ---------------------------------------------------------------- minimal RESP client
class Resp:
    def __init__(self, host, port, timeout=2.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError(f"bad RESP {line!r}")

    def pipeline(self, cmds):
        self.s.sendall(b"".join(self.encode(c) for c in cmds))
        return [self.read() for _ in cmds]

    def cmd(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RuntimeError):
            raise r
        return r


# ---------------------------------------------------------------- the hosts
class Net:
    def __init__(self, run_dir):
        self.pid = os.getpid()
        self.prefix = f"cel{self.pid}"
        self.bridge_ns = f"{self.prefix}-br"
        self.bridge = f"cel-br{self.pid}"
        self.made = []
        self.procs = []  # (name, ns, Popen)
        self.run_dir = run_dir

    def ns(self, host):
        return f"{self.prefix}-{host}"

    @staticmethod
    def remove_stale():
        """Namespaces left by runs whose process is gone (a SIGKILLed orchestrator)."""
        for line in ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith("cel") and "-" in name and name[3:name.index("-")].isdigit():
                pid = int(name[3:name.index("-")])
                if not os.path.exists(f"/proc/{pid}"):
                    Net.kill_ns_pids(name)
                    ip("netns", "del", name, check=False)

    @staticmethod
    def kill_ns_pids(ns):
        r = ip("netns", "pids", ns, check=False)
        pids = [int(p) for p in r.stdout.split() if p.isdigit()]
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def up(self):
        ip("netns", "add", self.bridge_ns)
        self.made.append(self.bridge_ns)
        ip("-n", self.bridge_ns, "link", "set", "lo", "up")
        ip("-n", self.bridge_ns, "link", "add", self.bridge, "type", "bridge")
        ip("-n", self.bridge_ns, "link", "set", self.bridge, "up")
        for i, host in enumerate(HOSTS):
            ns = self.ns(host)
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", self.bridge_ns, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", self.bridge_ns, "link", "set", f"v{i}", "master", self.bridge, "up")
            ip("-n", ns, "addr", "add", f"{addr(host)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def spawn(self, host, args, name, env=None):
        logf = open(os.path.join(self.run_dir, f"{name}.log"), "wb")
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), *args], stdout=logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env={**os.environ, **(env or {})})
        logf.close()
        self.procs.append((name, host, p))
        return p

    def log_tail(self, name, n=30):
        try:
            with open(os.path.join(self.run_dir, f"{name}.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def kill_host(self, host):
        """kill -9 every process in the host's namespace."""
        return self.kill_ns_pids(self.ns(host))

    def down(self):
        for _, _, p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + 5
        for _, _, p in self.procs:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for ns in reversed(self.made):
            self.kill_ns_pids(ns)
            ip("netns", "del", ns, check=False)
        for _, _, p in self.procs:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass
        left = [ns for ns in self.made if ip("netns", "pids", ns, check=False).returncode == 0]
        self.made = []
        return left


# ---------------------------------------------------------------- HTTP through the lb
class Client:
    """One keep-alive HTTP/1.1 connection to the lb (reopened after any error)."""

    def __init__(self, host, port=8000, timeout=10):
        self.host, self.port, self.timeout = host, port, timeout
        self.c = None

    def request(self, method, path, body=None):
        if self.c is None:
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            self.c.request(method, path, body=body, headers=headers)
            r = self.c.getresponse()
            data = r.read()
            if r.getheader("connection", "").lower() == "close":
                self.c.close()
                self.c = None
            return r.status, data
        except (OSError, http.client.HTTPException) as e:
            self.c.close()
            self.c = None
            return None, str(e).encode()


class Load:
    """Clients in the client namespace POSTing /tasks through the lb. Every 200 with a
    task_id is an acknowledged task; every other answer (or none) is a failure, timestamped."""

    def __init__(self, net, lb, clients, length):
        self.net, self.lb, self.clients, self.length = net, lb, clients, length
        self.lock = threading.Lock()
        self.acked = []  # task ids
        self.ack_times = []
        self.failures = []  # (time, status or error)
        self.stop = threading.Event()
        self.remaining = 0
        self.pace = 0.0
        self.threads = []

    def _take(self):
        with self.lock:
            if self.remaining == 0:
                return False
            if self.remaining > 0:
                self.remaining -= 1
            return True

    def _run(self):
        enter_ns(self.net.ns("client"))
        c = Client(self.lb)
        body = json.dumps({"task": "create_task", "args": [self.length]}).encode()
        while not self.stop.is_set() and self._take():
            status, data = c.request("POST", "/tasks", body)
            now = time.monotonic()
            tid = None
            if status == 200:
                try:
                    tid = json.loads(data).get("task_id")
                except ValueError:
                    tid = None
            with self.lock:
                if tid:
                    self.acked.append(tid)
                    self.ack_times.append(now)
                else:
                    self.failures.append((now, status if status is not None else data.decode(errors="replace")))
            if self.pace and (status != 200 or not tid):
                self.stop.wait(0.05)  # a refused or failed POST: retry after a beat, not in a spin
            elif self.pace:
                self.stop.wait(self.pace)

    def burst(self, n):
        """n POSTs spread over the clients, as fast as they go; returns the elapsed seconds."""
        self.remaining, self.pace = n, 0.0
        start = time.monotonic()
        ts = [threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.monotonic() - start

    def background(self, clients, pace):
        """Steady load until stop_background(): each client POSTs then waits `pace` s."""
        self.remaining, self.pace = -1, pace
        self.stop.clear()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def stop_background(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)


# ---------------------------------------------------------------- task events (duplicates)
class Events:
    """task-started events by task id, read on the replica's pub/sub (a master's PUBLISH reaches
    its replicas; after the failover the replica is the master): who ran each task, when."""

    def __init__(self, net):
        self.net = net
        self.started = {}  # uuid -> [(hostname, time)]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error = None
        self.conn = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            enter_ns(self.net.ns("redis2"))
            r = Resp(addr("redis2"), 6379, timeout=2.0)
            r.s.settimeout(None)  # blocking reads (a timed-out makefile cannot be read again)
            self.conn = r
            r.s.sendall(Resp.encode(["PSUBSCRIBE", "*celeryev*"]))
            r.read()
            self.ready.set()
            while not self.stop.is_set():
                msg = r.read()
                if isinstance(msg, list) and len(msg) == 4 and msg[0] == b"pmessage":
                    self._event(msg[3])
        except BaseException as e:
            if not self.stop.is_set():
                self.error = repr(e)
            self.ready.set()

    def close(self):
        self.stop.set()
        if self.conn:
            try:
                self.conn.s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()

    def _event(self, raw):
        try:
            env = json.loads(raw)
            body = env.get("body")
            if env.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            ev = json.loads(body)
        except (ValueError, TypeError, AttributeError):
            return
        evs = ev if isinstance(ev, list) else [ev]
        for e in evs:
            if isinstance(e, dict) and e.get("type") == "task-started" and e.get("uuid"):
                with self.lock:
                    self.started.setdefault(e["uuid"], []).append((e.get("hostname", "?"), time.monotonic()))


# ---------------------------------------------------------------- the run
def sentinel_parses(bin_dir):
    """Whether these binaries accept sentinel:// URLs at all (the refusal text is gone once they do)."""
    with open(os.path.join(bin_dir, "celeris-frontend"), "rb") as f:
        return b"Redis Sentinel (sentinel://) is not supported yet" not in f.read()


def durable_flag(bin_dir):
    h = subprocess.run([os.path.join(bin_dir, "celeris-frontend"), "--help"], capture_output=True, text=True).stdout
    return ["--durable-enqueue", "1"] if "--durable-enqueue" in h else []


def wait_for(what, cond, timeout, interval=0.05):
    """Poll cond() until truthy, for `timeout` s but never past the run's deadline."""
    end = min(time.monotonic() + timeout, DEADLINE[0])
    if end < time.monotonic() + timeout:
        timeout = f"{max(0.0, end - time.monotonic()):.1f} (the rest of --deadline)"
    last = None
    while time.monotonic() < end:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # a not-yet-up service: keep waiting until the deadline
            last = e
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout} s" + (f" (last error: {last!r})" if last else ""))


def tcp_open(host, port):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def haproxy_states(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "frontends" and row.get("svname") in ("fe1", "fe2"):
            out[row["svname"]] = row.get("status", "")
    return out


def master_addr(net):
    """The master the sentinels name now, asked from inside redis2."""

    def ask():
        for host, port in SENTINELS:
            try:
                r = Resp(addr(host), port)
                a = r.cmd("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
                r.close()
                if a:
                    return a[0].decode(), int(a[1])
            except (OSError, ConnectionError, RuntimeError):
                continue
        return None

    return in_ns(net.ns("redis2"), ask)


def redis_do(net, host, port, cmds):
    def go():
        r = Resp(host, port, timeout=5)
        try:
            return r.pipeline(cmds)
        finally:
            r.close()

    return in_ns(net.ns("redis2"), go)


def http_get(net, path):
    return in_ns(net.ns("client"), lambda: Client(addr("lb")).request("GET", path))


def http_post(net, path):
    return in_ns(net.ns("client"), lambda: Client(addr("lb")).request("POST", path))


def scrape(net, host):
    def go():
        c = http.client.HTTPConnection(addr(host), 9808, timeout=3)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        vals = {}
        for line in text.splitlines():
            if not line.startswith("#") and " " in line:
                k, _, v = line.rpartition(" ")
                try:
                    vals[k] = float(v)
                except ValueError:
                    pass
        return vals

    return in_ns(net.ns(host), go)


def run(a, report):
    deadline = T0 + a.deadline - TEARDOWN_S
    DEADLINE[0] = deadline
    run_dir = tempfile.mkdtemp(prefix="celeris-many-hosts-")
    report["logs"] = run_dir
    net = Net(run_dir)
    Net.remove_stale()
    try:
        net.up()
    except RuntimeError as e:
        net.down()
        report["skip"] = f"cannot build network namespaces here: {e}"
        return 2
    bin_dir = os.path.join(run_dir, "bin")
    exe = lambda n: os.path.join(bin_dir, n)  # noqa: E731
    try:
        # The binaries copied first: a build relinking them mid-run does not pull them away
        # (removed at the end whatever happens: only the logs are kept).
        os.makedirs(bin_dir)
        for n in ("celeris-frontend", "celeris-worker"):
            src = os.path.join(os.path.abspath(a.bin_dir), n)
            if not os.access(src, os.X_OK):
                raise RuntimeError(f"{src} not built")
            shutil.copy2(src, bin_dir)
        # ---- Redis: master, replica, 3 sentinels over the two redis hosts
        rdir = os.path.join(run_dir, "redis")
        for d in ("m", "r", "r3", "s1", "s2", "s3"):
            os.makedirs(os.path.join(rdir, d))
        base = ["--protected-mode", "no", "--save", "", "--appendonly", "no", "--bind", "0.0.0.0"]
        net.spawn("redis", ["redis-server", "--port", "6379", "--dir", f"{rdir}/m", *base], "redis-master")
        net.spawn(
            "redis2", ["redis-server", "--port", "6379", "--dir", f"{rdir}/r", "--replicaof", addr("redis"), "6379",
                       *base], "redis-replica")
        net.spawn(
            "redis3", ["redis-server", "--port", "6379", "--dir", f"{rdir}/r3", "--replicaof", addr("redis"), "6379",
                       "--replica-priority", "0", *base], "redis-replica3")  # never promoted: redis2 is
        for name, host, port in (("s1", "redis", 26379), ("s2", "redis2", 26379), ("s3", "redis3", 26379)):
            conf = os.path.join(rdir, name, "sentinel.conf")
            with open(conf, "w") as f:
                f.write(
                    f"port {port}\nbind 0.0.0.0\nprotected-mode no\ndir {rdir}/{name}\n"
                    f"sentinel announce-ip {addr(host)}\n"
                    f"sentinel monitor {MASTER_NAME} {addr('redis')} 6379 2\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                    f"sentinel failover-timeout {MASTER_NAME} 4000\n"
                    f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            net.spawn(host, ["redis-sentinel", conf], f"sentinel-{name}")

        def replica_synced():
            for h in ("redis2", "redis3"):
                info = redis_do(net, addr(h), 6379, [["INFO", "replication"]])[0]
                if not (isinstance(info, bytes) and b"master_link_status:up" in info):
                    return False
            return True

        wait_for("replica in sync", replica_synced, 20)

        def sentinels_see_all():
            for host, port in SENTINELS:
                m = redis_do(net, addr(host), port, [["SENTINEL", "master", MASTER_NAME]])[0]
                if not isinstance(m, list):
                    return False
                d = dict(zip(m[0::2], m[1::2]))
                if int(d.get(b"num-other-sentinels", 0)) < 2 or int(d.get(b"num-slaves", 0)) < 2:
                    return False
            return True

        wait_for("sentinels to know each other and the replica", sentinels_see_all, 30, 0.2)
        log("redis master + 2 replicas + 3 sentinels up")

        # ---- broker URL: sentinel:// when these binaries follow sentinels (probed: a frontend given
        # the sentinel URL enqueues a task on the master), else the ';' failover list of both servers.
        sentinel_url = ";".join(
            f"sentinel://{addr(h)}:{p}" for h, p in SENTINELS)
        sentinel_url += f"/0?master_name={MASTER_NAME}"
        report["broker"], broker, why = "failover-list", None, ""
        if sentinel_parses(bin_dir):
            probe = net.spawn("fe1", [exe("celeris-frontend"), "-b", sentinel_url, "--host", "0.0.0.0", "--port",
                                      "8000", "--loops", "1"], "sentinel-probe")

            def probe_post():
                st, data = in_ns(net.ns("client"), lambda: Client(addr("fe1"), timeout=3).request(
                    "POST", "/tasks", json.dumps({"task": "add", "args": [1, 1]}).encode()))
                return (st, data) if st is not None else None

            try:
                st, data = wait_for("the sentinel probe frontend", probe_post, 15, 0.1)
                if st == 200:
                    report["broker"], broker = "sentinel", sentinel_url
                else:
                    why = f"a frontend with {sentinel_url} answered POST /tasks {st} {data[:120]!r}"
            except TimeoutError as e:
                why = str(e)
            os.killpg(probe.pid, signal.SIGKILL)
            probe.wait(5)
            net.procs = [x for x in net.procs if x[2] is not probe]
        else:
            why = "sentinel:// refused by these binaries"
        if broker is None:
            broker = f"redis://{addr('redis')}:6379/0;redis://{addr('redis2')}:6379/0"
            report["broker_fallback_reason"] = why
            log(f"broker: the failover list ({why})")
        report["broker_url"] = broker
        durable = durable_flag(bin_dir) if a.durable != "off" else []
        if a.durable == "on" and not durable:
            raise RuntimeError("--durable on: this celeris-frontend has no --durable-enqueue")
        report["durable_enqueue"] = bool(durable)

        # ---- documents
        docs = os.path.join(run_dir, "documents")
        corpus = os.path.join(docs, "corpus")
        os.makedirs(docs)
        subprocess.run(
            [sys.executable, os.path.join(a.repo, "scripts/make_corpus.py"), corpus, "30", "--pairs", "3"],
            check=True, capture_output=True)

        # ---- workers (compose.yaml's per-queue services), then frontends, then the lb
        wflags = ["-b", broker, "-E", "--metrics-port", "9808", "--visibility-timeout", str(a.visibility),
                  "--step-seconds", str(a.step), "--documents-root", docs]
        workers = {
            "w-fetch": ["-Q", "fetch_queue", "-c", "4", "-n", "fetch@w-fetch"],
            "w-extract": ["-Q", "extract_queue", "-c", "8", "-n", "extract@w-extract"],
            "w-compare": ["-Q", "compare_queue", "-c", "2", "-n", "compare@w-compare"],
            "w-celery": ["-Q", "celery", "-c", "8", "-n", "celery@w-celery"],
            "w-celery2": ["-Q", "celery", "-c", "8", "-n", "celery@w-celery2"],
        }
        for host, args in workers.items():
            net.spawn(host, [exe("celeris-worker"), *wflags, *args], host)
        for fe in ("fe1", "fe2"):
            net.spawn(
                fe, [exe("celeris-frontend"), "-b", broker, "--host", "0.0.0.0", "--port", "8000", "--loops", "1",
                     "--redis-timeout-ms", "2000", *durable], fe)
        sock = os.path.join(run_dir, "haproxy.sock")
        cfg = os.path.join(run_dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 4096
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 500ms
    timeout client 30s
    timeout server 10s
    timeout queue 10s
    retries 3
    option redispatch 1
    option http-server-close
frontend http
    bind 0.0.0.0:8000
    default_backend frontends
backend frontends
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 300ms fastinter 300ms downinter 300ms fall 2 rise 2
    server fe1 {addr('fe1')}:8000 check
    server fe2 {addr('fe2')}:8000 check
""")
        net.spawn("lb", ["haproxy", "-W", "-db", "-f", cfg], "haproxy")

        def all_ready():
            for host in workers:
                scrape(net, host)
            return haproxy_states(sock) == {"fe1": "UP", "fe2": "UP"}

        wait_for("workers' metrics and both frontends UP in haproxy", all_ready, 40, 0.2)
        for name, host, p in net.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited {p.returncode}:\n{net.log_tail(name)}")
        ev = Events(net)
        if not ev.ready.wait(5):
            raise RuntimeError("event reader: not subscribed to the task events within 5 s")
        if ev.error:
            raise RuntimeError(f"event reader: {ev.error}")
        log(f"{len(HOSTS)} hosts up; broker {report['broker']}; durable enqueue {bool(durable)}")

        load = Load(net, addr("lb"), a.clients, a.task_length)

        # ---- (1) load through the lb, and a document workflow
        st, data = http_post(net, f"/process?blob_path={corpus}")
        if st != 200:
            raise RuntimeError(f"POST /process: {st} {data[:200]!r}")
        workflow_id = json.loads(data)["task_id"]
        elapsed = load.burst(a.tasks)
        n1 = len(load.acked)
        report["load"] = {
            "posts": a.tasks, "acknowledged": n1, "failed": len(load.failures), "seconds": round(elapsed, 3),
            "posts_per_s_through_lb": round(n1 / elapsed, 1), "clients": a.clients}
        first = set(load.acked)

        def burst_done():
            vals = redis_do(net, *master_addr(net), [["EXISTS", f"celery-task-meta-{t}"] for t in first])
            return sum(1 for v in vals if v == 1) == len(first)

        t_burst = time.monotonic()
        wait_for("the burst's results", burst_done, max(5, deadline - time.monotonic() - 100), 0.1)
        done_s = time.monotonic() - T0
        report["load"]["completed_within_s"] = round(time.monotonic() - t_burst + elapsed, 3)
        report["load"]["tasks_per_s_end_to_end"] = round(n1 / (time.monotonic() - t_burst + elapsed), 1)

        def workflow_done():
            st, data = http_get(net, f"/status/{workflow_id}")
            if st != 200:
                return None
            s = json.loads(data)
            return s if s.get("status") in ("Completed", "Failed") else None

        wf = wait_for("the document workflow", workflow_done, 60, 0.1)
        report["workflow"] = {
            "task_id": workflow_id, "status": wf.get("status"),
            "documents": (wf.get("result") or {}).get("documents") if isinstance(wf.get("result"), dict) else None,
            "pairs": len((wf.get("result") or {}).get("pairs") or []) if isinstance(wf.get("result"), dict) else None}
        log(f"(1) {n1} tasks acknowledged through the lb in {elapsed:.2f} s ({n1 / elapsed:.0f}/s), all done at "
            f"{done_s:.1f}s; workflow {wf.get('status')}")

        # ---- (2) kill the w-celery host while it runs tasks
        load.background(4, 0.05)
        slow_body = json.dumps({"task": "create_task", "args": [a.slow_length]}).encode()
        slow = []

        def post_slow():
            c = Client(addr("lb"))
            for _ in range(a.slow_tasks):
                st, data = c.request("POST", "/tasks", slow_body)
                if st == 200:
                    slow.append(json.loads(data)["task_id"])

        in_ns(net.ns("client"), post_slow)
        load.acked.extend(slow)
        load.ack_times.extend([time.monotonic()] * len(slow))

        def killed_host_busy():
            m = scrape(net, "w-celery")
            return m.get("celeris_tasks_in_flight", 0) >= 2

        wait_for("w-celery running tasks", killed_host_busy, 20, 0.05)
        before = scrape(net, "w-celery")
        t_kill = time.monotonic()
        killed = net.kill_host("w-celery")
        in_flight_killed = int(before.get("celeris_tasks_in_flight", 0))
        log(f"(2) killed w-celery ({len(killed)} processes) with {in_flight_killed} tasks in flight")

        def slow_done():
            vals = redis_do(net, *master_addr(net), [["GET", f"celery-task-meta-{t}"] for t in slow])
            return all(isinstance(v, bytes) and b'"SUCCESS"' in v for v in vals)

        wait_for("the killed host's tasks completing elsewhere", slow_done, a.visibility * 4 + 20, 0.1)
        report["worker_host_kill"] = {
            "in_flight_at_kill": in_flight_killed, "slow_tasks": len(slow),
            "recovered_s": round(time.monotonic() - t_kill, 3), "visibility_timeout_s": a.visibility}
        log(f"(2) every task of the killed host done elsewhere {time.monotonic() - t_kill:.2f} s after the kill")

        # ---- (3) partition fe1 for 5 s
        f0 = len(load.failures)
        a0 = len(load.acked)
        t_cut = time.monotonic()
        ip("-n", net.ns("fe1"), "link", "set", "eth0", "down")
        wait_for("haproxy marking fe1 down", lambda: haproxy_states(sock).get("fe1", "").startswith("DOWN"), 10, 0.02)
        marked_down = time.monotonic() - t_cut
        time.sleep(max(0.0, 5 - (time.monotonic() - t_cut)))  # the partition lasts 5 s
        ip("-n", net.ns("fe1"), "link", "set", "eth0", "up")
        t_heal = time.monotonic()
        wait_for("haproxy marking fe1 up", lambda: haproxy_states(sock).get("fe1") == "UP", 30, 0.02)
        back_up = time.monotonic() - t_heal
        report["partition"] = {
            "seconds": 5, "marked_down_s": round(marked_down, 3), "back_up_after_heal_s": round(back_up, 3),
            "acknowledged_during": len(load.acked) - a0, "failed_during": len(load.failures) - f0,
            "failures": [str(x[1])[:80] for x in load.failures[f0:f0 + 5]]}
        log(f"(3) fe1 partitioned: down in haproxy after {marked_down:.2f} s, up {back_up:.2f} s after healing; "
            f"{len(load.acked) - a0} POSTs acknowledged, {len(load.failures) - f0} failed meanwhile")

        # ---- (4) Redis failover (with --failover-clients, that many more clients POST unpaced
        # around the kill: acknowledged writes the dying master had not streamed yet show as lost)
        f0 = len(load.failures)
        old_master = master_addr(net)
        rush = Load(net, addr("lb"), a.failover_clients, a.task_length)
        if a.failover_clients:
            rush.background(a.failover_clients, 1e-9)
            wait_for("the failover clients' first acknowledgements", lambda: len(rush.acked) >= 200, 20, 0.02)
        t_fail = time.monotonic()
        for name, host, p in net.procs:
            if name == "redis-master":
                os.kill(p.pid, signal.SIGKILL)
        new_master = wait_for(
            "sentinels promoting the replica", lambda: (m := master_addr(net)) and m != old_master and m, 30, 0.05)
        promoted = time.monotonic() - t_fail

        def posts_ok_again():
            with load.lock:
                after = [t for t in load.ack_times if t > t_fail]
                last_fail = max([t for t, _ in load.failures[f0:]], default=t_fail)
            return [t for t in after if t > last_fail][:20] if len([t for t in after if t > last_fail]) >= 20 else None

        try:
            ok = wait_for("POSTs succeeding again after the failover", posts_ok_again, 45, 0.05)
        except TimeoutError:
            ok = [None]
        with load.lock:
            last_fail = max([t for t, _ in load.failures[f0:]], default=t_fail)
        report["redis_failover"] = {
            "old_master": f"{old_master[0]}:{old_master[1]}", "new_master": f"{new_master[0]}:{new_master[1]}",
            "promoted_s": round(promoted, 3), "posts_ok_again_s": round(ok[0] - t_fail, 3) if ok[0] else None,
            "last_failed_post_s": round(last_fail - t_fail, 3), "failed_posts": len(load.failures) - f0,
            "failures": sorted({str(x[1])[:100] for x in load.failures[f0:]})[:5]}
        log(f"(4) master killed: replica promoted after {promoted:.2f} s, POSTs succeed again "
            f"{report['redis_failover']['posts_ok_again_s']} s after the kill ({len(load.failures) - f0} failed)")
        if ok[0]:  # some more load on the new master, then stop
            a1 = len(load.acked)
            wait_for("load on the new master", lambda: len(load.acked) >= a1 + 100, 30, 0.05)
        load.stop_background()
        rush.stop_background()
        report["redis_failover"]["failover_clients"] = a.failover_clients
        report["redis_failover"]["failover_clients_acknowledged"] = len(rush.acked)
        report["redis_failover"]["failover_clients_failed"] = len(rush.failures)

        # ---- invariants
        acked = list(dict.fromkeys(load.acked + rush.acked))
        ids = acked + [workflow_id]
        results = {}

        def all_final():
            host, port = master_addr(net)
            missing = [t for t in ids if t not in results]
            for i in range(0, len(missing), 500):
                chunk = missing[i:i + 500]
                vals = redis_do(net, host, port, [["MGET", *[f"celery-task-meta-{t}" for t in chunk]]])[0]
                for t, v in zip(chunk, vals):
                    if isinstance(v, bytes):
                        try:
                            s = json.loads(v).get("status")
                        except ValueError:
                            s = "UNPARSABLE"
                        if s in ("SUCCESS", "FAILURE", "REVOKED", "UNPARSABLE"):
                            results[t] = (s, v)
            return len(results) == len(ids)

        # Until every result is in, or none came for 30 s (then the rest count as lost), within the deadline.
        progress = {"n": -1, "at": time.monotonic()}

        def all_final_or_stalled():
            if all_final():
                return True
            if len(results) != progress["n"]:
                progress["n"], progress["at"] = len(results), time.monotonic()
            return time.monotonic() - progress["at"] > 30

        try:
            wait_for("every acknowledged task's result", all_final_or_stalled,
                     max(10, deadline - time.monotonic() - 10), 0.2)
        except TimeoutError:
            pass
        states = {}
        for s, _ in results.values():
            states[s] = states.get(s, 0) + 1
        failures = [json.loads(v).get("result") for s, v in results.values() if s == "FAILURE"][:5]
        host, port = master_addr(net)
        keys = redis_do(net, host, port, [
            ["HLEN", "unacked"], ["ZCARD", "unacked_index"], ["ZCARD", "celeris.claiming"],
            ["KEYS", "celeris.claiming:*"], ["LLEN", "celeris.dead_letter"],
            *[["LLEN", q] for q in ("celery", "fetch_queue", "extract_queue", "compare_queue")]])
        ev.close()
        # Runs by (task id, worker role): a /process chain's stages may share one id across queues.
        starts = {}
        for u, hs in dict(ev.started).items():
            for h, t in hs:
                starts.setdefault((u, h.split("@")[0]), []).append((h, t))
        dup = {f"{u} ({role})": hs for (u, role), hs in starts.items() if len(hs) > 1}
        explained = {u for u, hs in dup.items() if hs[0][0] == "celery@w-celery" and hs[0][1] <= t_kill}
        # A run whose acknowledgement the old master had not yet streamed to the replica when it
        # died: the new master still holds its delivery, and it runs again after the visibility
        # timeout (async replication; WAIT on the enqueue does not cover the worker's writes).
        at_failover = {u for u, hs in dup.items() if u not in explained and t_fail - 5 <= hs[0][1] <= t_fail}
        others = {u: [(h, round(t - t_fail, 2)) for h, t in hs] for u, hs in dup.items()
                  if u not in explained and u not in at_failover}
        counters = {}
        for h in ("w-celery2",):
            m = scrape(net, h)
            counters[h] = int(sum(v for k, v in m.items() if k.startswith("celeris_tasks_received_total")))
        counters["w-celery (before its kill)"] = int(
            sum(v for k, v in before.items() if k.startswith("celeris_tasks_received_total")))
        lost = [t for t in ids if t not in results]
        report["counts"] = {
            "acknowledged": len(ids), "completed": len(results), "lost": len(lost), "states": states,
            "failure_reasons": [str(f)[:120] for f in failures], "lost_ids": lost[:10],
            "duplicated": len(dup), "duplicated_explained_by_host_kill": len(explained),
            "duplicated_at_redis_failover": len(at_failover), "duplicated_unexplained": len(others),
            "duplicated_unexplained_runs": dict(list(others.items())[:5]),
            "duplicated_at_redis_failover_runs": {u: [(h, round(t - t_fail, 2)) for h, t in dup[u]]
                                                  for u in list(at_failover)[:5]},
            "runs_with_start_events": len(starts), "celery_queue_received_counters": counters}
        report["leftovers"] = {
            "unacked": keys[0], "unacked_index": keys[1], "claiming_registry": keys[2],
            "claiming_lists": len(keys[3]) if isinstance(keys[3], list) else keys[3], "dead_letter": keys[4],
            "queued": dict(zip(("celery", "fetch_queue", "extract_queue", "compare_queue"), keys[5:9]))}
        report["unacked"] = sum(x if isinstance(x, int) else 1 for x in keys[0:3]) + (
            len(keys[3]) if isinstance(keys[3], list) else 1)
        report["total_s"] = round(time.monotonic() - T0, 1)
        log(f"invariants: {len(ids)} acknowledged, {len(results)} with a result, {len(lost)} lost, "
            f"{len(dup)} duplicated ({len(explained)} by the host kill, {len(at_failover)} at the Redis failover, "
            f"{len(others)} otherwise), unacked {report['unacked']}")
        return 0
    finally:
        left = net.down()
        report["namespaces_left"] = left
        shutil.rmtree(bin_dir, ignore_errors=True)
        if not a.keep_logs and not left and report.get("counts", {}).get("lost", 1) == 0:
            shutil.rmtree(run_dir, ignore_errors=True)
            report["logs"] = None


def _terminated(*_):
    raise KeyboardInterrupt("SIGTERM")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(here)))
    ap.add_argument("--bin-dir", default=os.environ.get("CELERIS_BIN_DIR", ".build/debug"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--task-length", type=int, default=2, help="create_task steps of the load")
    ap.add_argument("--step", type=float, default=0.01, help="worker --step-seconds")
    ap.add_argument("--slow-tasks", type=int, default=40)
    ap.add_argument("--slow-length", type=int, default=150, help="steps of the tasks the killed host runs")
    ap.add_argument("--visibility", type=float, default=4, help="workers' --visibility-timeout")
    ap.add_argument("--deadline", type=float, default=230)
    ap.add_argument("--failover-clients", type=int, default=0,
                    help="clients POSTing unpaced around the Redis master's kill (default none)")
    ap.add_argument("--durable", choices=["auto", "on", "off"], default="auto",
                    help="frontends' --durable-enqueue 1 (auto: when celeris-frontend has it)")
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args()
    report = {"ok": False}
    # SIGTERM (the Swift test's timeout) unwinds through the finally blocks: namespaces removed.
    signal.signal(signal.SIGTERM, _terminated)
    rc = 1
    try:
        if os.geteuid() != 0:
            report["skip"] = "needs root (network namespaces)"
            rc = 2
        elif not shutil.which("haproxy") or not shutil.which("redis-sentinel"):
            report["skip"] = "haproxy or redis-sentinel missing (make test installs them: TEST_APT_PKGS)"
            rc = 2
        else:
            rc = run(a, report)
            report["ok"] = rc == 0
    except BaseException as e:
        report["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    text = json.dumps(report, indent=1, default=str)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print("REPORT " + json.dumps(report, default=str), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
