#!/usr/bin/env python3
"""Sync benchmark (issue 4): a real qis and two qic daemons on loopback.
  latency: 200 small files written one by one into client A's folder; for each, the time from
           its close on A to its appearance (complete) on B; p50 / p99.
  burst:   10,000 files of 4 KiB in 100 directories created at once on A; time until B has all.
  idle:    total CPU time of the three daemons over 60 s with nothing changing.
Usage: bench/sync_bench.py BUILD_DIR [latency|burst|idle|all]"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
what = sys.argv[2] if len(sys.argv) > 2 else "all"
QIS = os.path.join(build, "src/server/qis")
QIC = os.path.join(build, "src/client/qic")
tmp = tempfile.mkdtemp(prefix="qs-sync-bench-")
procs = []


def start_all():
    log = open(os.path.join(tmp, "server.log"), "w")
    srv = subprocess.Popen([QIS, "run", "--addr", "127.0.0.1", "--quic-port", "0", "--port", "0",
                            "--data", os.path.join(tmp, "server"), "--password", "pw"], stdout=log,
                           stderr=subprocess.STDOUT,
                           env=dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "server-config")))
    procs.append(srv)
    while True:
        m = re.search(r"--port (\d+) .* --fingerprint (\w+)", open(os.path.join(tmp, "server.log")).read())
        if m:
            break
        time.sleep(0.05)
    port, fpr = m.group(1), m.group(2)
    dirs = []
    for name in ("a", "b"):
        env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, name, "config"),
                   XDG_DATA_HOME=os.path.join(tmp, name, "data"))
        p = subprocess.Popen([QIC, "start", "--rest-port", "0"], env=env,
                             stdout=open(os.path.join(tmp, name + ".log"), "w"),
                             stderr=subprocess.STDOUT)
        procs.append(p)
        while not os.path.exists(os.path.join(tmp, name, "config", "quics", "qic.api")):
            time.sleep(0.02)
        subprocess.run([QIC, "connect", "server", "--host", "127.0.0.1", "--port", port,
                        "--password", "pw", "--fingerprint", fpr], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        d = os.path.join(tmp, name, "sync")
        if name == "a":
            os.makedirs(d)
            args = ["--local", d, "--name", "bench"]
        else:
            args = ["--remote", "bench", "--dir", d]
        subprocess.run([QIC, "connect", "root"] + args + ["--password", "rp"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        dirs.append(d)
    return dirs


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def latency(a, b):
    lat = []
    for i in range(200):
        data = (b"%d " % i) * 100
        path_a, path_b = os.path.join(a, "f%03d.txt" % i), os.path.join(b, "f%03d.txt" % i)
        with open(path_a, "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        while True:
            try:
                with open(path_b, "rb") as f:
                    if f.read() == data:
                        break
            except FileNotFoundError:
                pass
            if time.perf_counter() - t0 > 10:
                raise SystemExit("latency: file %d never arrived" % i)
            time.sleep(0.0005)
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
    print("latency_ms p50=%.1f p99=%.1f max=%.1f (n=200, close on A -> complete on B)" %
          (pct(lat, 50), pct(lat, 99), max(lat)))


def burst(a, b):
    payload = os.urandom(4096)
    t0 = time.perf_counter()
    for d in range(100):
        os.makedirs(os.path.join(a, "burst", "d%02d" % d))
        for f in range(100):
            with open(os.path.join(a, "burst", "d%02d" % d, "f%02d" % f), "wb") as fh:
                fh.write(payload)
    t_written = time.perf_counter() - t0
    while True:
        n = sum(len(fs) for _, _, fs in os.walk(os.path.join(b, "burst")))
        if n >= 10000:
            break
        if time.perf_counter() - t0 > 300:
            raise SystemExit("burst: only %d of 10000 arrived" % n)
        time.sleep(0.05)
    print("burst_10000x4KiB seconds=%.2f (writing on A took %.2f s)" %
          (time.perf_counter() - t0, t_written))


def cpu_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle():
    time.sleep(2)
    before = sum(cpu_of(p.pid) for p in procs)
    time.sleep(60)
    after = sum(cpu_of(p.pid) for p in procs)
    print("idle_cpu_seconds_60s=%.2f (server + 2 clients)" % (after - before))


def main():
    try:
        a, b = start_all()
        if what in ("latency", "all"):
            latency(a, b)
        if what in ("burst", "all"):
            burst(a, b)
        if what in ("idle", "all"):
            idle()
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
