#!/usr/bin/env python3
"""End-to-end tests of qis: start the real server on a free port in a temporary data dir,
run qis-probe scenarios against it, check what lands on disk. Usage: qis_test.py QIS PROBE TEST."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

QIS, PROBE, TEST = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = tempfile.mkdtemp(prefix="qs-qis-test-")
procs = []
PASSWORD = "server-secret"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start_qis(data="data", extra=()):
    env = dict(os.environ, QUICS_TEST_FAST_HASH="1")
    p = subprocess.Popen([QIS, "run", "--addr", "127.0.0.1", "--quic-port", "0", "--data",
                          os.path.join(tmp, data), "--password", PASSWORD] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    procs.append(p)
    seen = ""
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
        m = re.search(r"connect a client: .* --port (\d+) .* --fingerprint (\w+)", line)
        if m:
            return p, int(m.group(1)), m.group(2)
    fail("qis did not start: " + seen)


def probe(port, fpr, scenario, env=None):
    r = subprocess.run([PROBE, "--port", str(port), "--fingerprint", fpr, "--password", PASSWORD,
                        "--scenario", scenario], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=240,
                       env=dict(os.environ, **(env or {})))
    print(r.stdout[-4000:])
    return r


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        out = p.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        fail("qis did not stop on SIGTERM")
    print(out[-3000:])
    if p.returncode != 0:
        fail("qis exited with %d" % p.returncode)
    if "AddressSanitizer" in out or "runtime error" in out:
        fail("sanitizer report")


def files_outside(data):
    """Every file the test created outside the data dir (there must be none)."""
    return [f for f in os.listdir(tmp) if f not in (data,)]


def test_scenario(name):
    srv, port, fpr = start_qis()
    r = probe(port, fpr, name)
    if r.returncode != 0:
        fail("scenario %s failed" % name)
    stop(srv)
    if files_outside("data"):
        fail("files written outside the data dir: %s" % files_outside("data"))
    st = os.stat(os.path.join(tmp, "data"))
    if st.st_mode & 0o077:
        fail("data dir is open to others: %o" % st.st_mode)


def test_restart():
    # Versions acknowledged before a kill -9 are there after a restart.
    srv, port, fpr = start_qis()
    r = probe(port, fpr, "upload")
    if r.returncode != 0:
        fail("upload before the restart failed")
    srv.kill()
    srv.wait()
    srv2, port2, fpr2 = start_qis()
    if fpr2 != fpr:
        fail("the certificate changed across a restart")
    r = probe(port2, fpr2, "persisted")
    if r.returncode != 0:
        fail("acknowledged versions did not survive kill -9")
    stop(srv2)


def memory_kib(pid):
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def test_abuse():
    # Connection storm, idle streams, slow-loris uploads (qis-probe --scenario abuse): a
    # well-behaved client's round trips stay fast, the server's memory stays bounded, and
    # transactions that stall are canceled by the server after its stall timeout (4 s here,
    # QS_ABUSE_STALL_S under the sanitizers).
    stall = os.environ.get("QS_ABUSE_STALL_S", "4")
    srv, port, fpr = start_qis(extra=["--stall-timeout", stall])
    before = memory_kib(srv.pid)
    r = probe(port, fpr, "abuse", env={"QS_STALL_TIMEOUT_S": stall})
    after = memory_kib(srv.pid)
    print("qis memory: RSS %d KiB before, %d KiB after, peak %d KiB" %
          (before["VmRSS"], after["VmRSS"], after["VmHWM"]))
    if r.returncode != 0:
        fail("scenario abuse failed")
    if after["VmHWM"] - before["VmRSS"] > 512 * 1024:
        fail("qis grew by more than 512 MiB under abuse")
    stop(srv)


def test_port_taken():
    # A second qis on a UDP port another one holds says so and exits, leaving the first
    # serving (a kill -9 and restart raced another program for the port in a chaos run, and
    # the message said only "input/output error").
    srv, port, fpr = start_qis()
    env = dict(os.environ, QUICS_TEST_FAST_HASH="1")
    r = subprocess.run([QIS, "run", "--addr", "127.0.0.1", "--quic-port", str(port), "--data",
                        os.path.join(tmp, "other"), "--password", PASSWORD],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                       timeout=30)
    print(r.stdout)
    if r.returncode == 0 or "UDP port %d is in use" % port not in r.stdout:
        fail("a taken port: exit %d, %r" % (r.returncode, r.stdout))
    if probe(port, fpr, "accounts").returncode != 0:
        fail("the first server stopped serving")
    stop(srv)


def main():
    try:
        if TEST == "restart":
            test_restart()
        elif TEST == "port_taken":
            test_port_taken()
        elif TEST == "abuse":
            test_abuse()
        else:
            test_scenario(TEST)
        print("PASS", TEST)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
