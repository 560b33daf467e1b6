"""A QUIC-S cluster on loopback for the benchmark (bench/run) and the large-file tests
(tests/large): one qis and any number of qic daemons, each with its own XDG directories and
free ports, driven through the qic CLI and the daemons' REST APIs (byte counters, status).
Owns every process it starts and its temporary directory; close() ends them all."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

SERVER_PW = "bench-server-pw"
ROOT_PW = "bench-root-pw"
ROOT_NAME = "bench"


class ClusterError(Exception):
    pass


def vm_hwm_kib(pid):
    """Peak resident set size of pid in KiB (VmHWM), or 0 if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


def reset_hwm(pid):
    """Resets pid's VmHWM to its current RSS (clear_refs value 5, Linux 4.0+)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
    except OSError:
        pass


def rest(config_dir, prog, method, path, timeout=30):
    """Calls a daemon's REST API as its CLI does (endpoint file + bearer token)."""
    with open(os.path.join(config_dir, "quics", prog + ".api")) as f:
        ep = json.load(f)
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (ep["port"], path), method=method,
                                 headers={"Authorization": "Bearer " + ep["token"]})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


class Client:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.home = os.path.join(cluster.tmp, name)
        self.config = os.path.join(self.home, "config")
        self.env = dict(cluster.env, XDG_CONFIG_HOME=self.config,
                        XDG_DATA_HOME=os.path.join(self.home, "data"), HOME=self.home)
        os.makedirs(self.home)
        self.dir = os.path.join(self.home, "sync")
        self.proc = None
        self.log_path = os.path.join(cluster.tmp, name + ".log")

    def start(self):
        api = os.path.join(self.config, "quics", "qic.api")
        if os.path.exists(api):
            os.unlink(api)  # left by a killed daemon
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([self.cluster.qic, "start", "--rest-port", "0"],
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + 20
        while not os.path.exists(api):
            if time.time() > deadline or self.proc.poll() is not None:
                raise ClusterError("%s: qic start did not come up" % self.name)
            time.sleep(0.02)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None

    def qic(self, *args):
        r = subprocess.run([self.cluster.qic] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise ClusterError("%s: qic %s -> %d: %s" % (self.name, " ".join(args),
                                                         r.returncode, r.stdout))
        return r.stdout

    def status(self):
        return rest(self.config, "qic", "GET", "/v1/status")

    def traffic(self):
        """The transport's counters since this daemon connected (struct qs_quic_bytes)."""
        return self.status()["traffic"]

    def wait_connected(self, timeout=30):
        deadline = time.time() + timeout
        while not self.status().get("connected"):
            if time.time() > deadline:
                raise ClusterError("%s: not connected" % self.name)
            time.sleep(0.05)

    def wait_idle(self, timeout=60):
        """Until nothing is queued or in flight (the engine's own view)."""
        deadline = time.time() + timeout
        while True:
            st = self.status()
            if st.get("connected") and st["queued"] == 0 and st["in_flight"] == 0:
                return
            if time.time() > deadline:
                raise ClusterError("%s: still busy: %s" % (self.name, st))
            time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None


class Cluster:
    """qis + clients named in `names`; the first registers the root, the others join it."""

    def __init__(self, qis, qic, names=("a", "b"), tmp_parent=None, keep=False):
        self.qis, self.qic = qis, qic
        self.tmp = tempfile.mkdtemp(prefix="qs-cluster-", dir=tmp_parent)
        self.keep = keep
        self.env = dict(os.environ, QUICS_TEST_FAST_HASH="1")
        for k in ("QUICS_PORT", "QUICS_QUIC_PORT", "QUICS_ADDR", "QUICS_DATA",
                  "QUICS_PASSWORD", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
            self.env.pop(k, None)
        self.server = None
        self.server_config = os.path.join(self.tmp, "server-config")
        self.server_data = os.path.join(self.tmp, "server")
        self.port = self.fpr = None
        self.clients = [Client(self, n) for n in names]

    def start_server(self):
        log_path = os.path.join(self.tmp, "server.log")
        log = open(log_path, "a")
        start = log.tell()
        self.server = subprocess.Popen(
            [self.qis, "run", "--addr", "127.0.0.1", "--quic-port", str(self.port or 0),
             "--port", "0", "--data", self.server_data, "--password", SERVER_PW],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(self.env, XDG_CONFIG_HOME=self.server_config))
        log.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(log_path) as f:
                f.seek(start)
                m = re.search(r"--port (\d+) .* --fingerprint (\w+)", f.read())
            if m and os.path.exists(os.path.join(self.server_config, "quics", "qis.api")):
                self.port, self.fpr = int(m.group(1)), m.group(2)
                return
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        raise ClusterError("qis did not start")

    def start(self):
        self.start_server()
        for i, c in enumerate(self.clients):
            c.start()
            c.qic("connect", "server", "--host", "127.0.0.1", "--port", str(self.port),
                  "--password", SERVER_PW, "--fingerprint", self.fpr)
            if i == 0:
                os.makedirs(c.dir)
                c.qic("connect", "root", "--local", c.dir, "--name", ROOT_NAME, "--password",
                      ROOT_PW)
            else:
                c.qic("connect", "root", "--remote", ROOT_NAME, "--dir", c.dir, "--password",
                      ROOT_PW)
        for c in self.clients:
            c.wait_connected()
        return self

    def server_traffic(self):
        return rest(self.server_config, "qis", "GET", "/v1/traffic")

    def pids(self):
        """name -> pid of every running daemon ("server" and the client names)."""
        out = {"server": self.server.pid} if self.server else {}
        for c in self.clients:
            if c.proc is not None:
                out[c.name] = c.proc.pid
        return out

    def log_tail(self, n=4000):
        out = []
        for name in ["server"] + [c.name for c in self.clients]:
            p = os.path.join(self.tmp, name + ".log")
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    out.append("--- %s.log\n%s" % (name, f.read()[-n:]))
        return "\n".join(out)

    def close(self):
        procs = [c.proc for c in self.clients if c.proc is not None]
        if self.server is not None:
            procs.append(self.server)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
