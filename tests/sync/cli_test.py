#!/usr/bin/env python3
"""End-to-end tests of the qic command line against a real qis server and real qic daemons
(each client with its own XDG directories), reusing sync_test.py's processes and helpers:
config show/server, connect list-remote, start --daemon / stop and the single-instance lock,
sync status --path with transfer progress, and --help / usage errors of every command.
Usage: cli_test.py QIS QIC TEST."""
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_test as st  # noqa: E402  (reads the same QIS QIC TEST arguments)

QIS, QIC, TEST = st.QIS, st.QIC, st.TEST
fail = st.fail
detached = []  # pids of daemons started with --daemon (not children of this script)


def qic(c, *args, check=True, cwd=None):
    """Runs qic as client c; stdout and stderr apart."""
    r = subprocess.run([QIC] + list(args), env=c.env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60, cwd=cwd)
    if check and r.returncode != 0:
        fail("%s: qic %s -> %d: %s%s" % (c.name, " ".join(args), r.returncode, r.stdout,
                                         r.stderr))
    return r


def qjson(c, *args):
    return json.loads(qic(c, *(list(args) + ["--json"])).stdout)


def one_line_error(r, what, status=None):
    """A failed command: non-zero status (or the one given), one line on stderr."""
    if r.returncode == 0 or (status is not None and r.returncode != status):
        fail("%s: exit status %d, stdout %r" % (what, r.returncode, r.stdout))
    lines = r.stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith("qic"):
        fail("%s: expected one error line, got %r" % (what, r.stderr))
    return lines[0]


def connected(c, port, fpr):
    c.start()
    qic(c, "connect", "server", "--host", "127.0.0.1", "--port", str(port), "--password",
        st.PASSWORD, "--fingerprint", fpr)


def test_config():
    srv, port, fpr = st.start_qis()
    a = st.Client("a")
    a.start()
    s = qjson(a, "config", "server")
    if s["configured"] or s["connected"] or s["host"] is not None or s["client_id"] is not None:
        fail("an unregistered client reports a server: %s" % s)
    # A mistyped server password is one line of refusal; the daemon lives on (regression: it
    # crashed) and the right password works next.
    line = one_line_error(qic(a, "connect", "server", "--host", "127.0.0.1", "--port",
                              str(port), "--password", "wrong", "--fingerprint", fpr,
                              check=False), "wrong server password", 1)
    if "password" not in line:
        fail("wrong server password said %r" % line)
    if a.proc.poll() is not None or qjson(a, "config", "server")["configured"]:
        fail("the daemon died or kept a refused registration")
    qic(a, "connect", "server", "--host", "127.0.0.1", "--port", str(port), "--password",
        st.PASSWORD, "--fingerprint", fpr)
    os.makedirs(a.dir)
    qic(a, "connect", "root", "--local", a.dir, "--name", "docs", "--password", st.ROOT_PW)
    api = json.load(open(os.path.join(a.home, "config", "quics", "qic.api")))
    c = qjson(a, "config", "show")
    want = {"config_dir": os.path.join(a.home, "config", "quics"),
            "data_dir": os.path.join(a.home, "data", "quics"), "rest_port": api["port"],
            "pid": a.proc.pid, "log": None}
    for k, v in want.items():
        if c[k] != v:
            fail("config show: %s is %r, want %r" % (k, c[k], v))
    if not isinstance(c["client_id"], int) or c["client_id"] <= 0 or not c["client_name"]:
        fail("config show: no client id or name: %s" % c)
    if c["server"] != {"host": "127.0.0.1", "port": port, "fingerprint": fpr, "connected": True}:
        fail("config show: server is %s" % c["server"])
    if len(c["roots"]) != 1 or c["roots"][0]["dir"] != a.dir or c["roots"][0]["name"] != "docs" \
            or c["roots"][0]["root_id"] <= 0:
        fail("config show: roots are %s" % c["roots"])
    text = qic(a, "config", "show").stdout
    for needle in [r"client id:\s+%d" % c["client_id"], r"config dir:\s+" + want["config_dir"],
                   r"rest port:\s+%d" % api["port"], r"fingerprint:\s+" + fpr,
                   r"name:\s+docs", r"- dir:\s+" + re.escape(a.dir)]:
        if not re.search(needle, text):
            fail("config show text lacks %r:\n%s" % (needle, text))
    s = qjson(a, "config", "server")
    if (s["host"], s["port"], s["fingerprint"], s["client_id"], s["connected"]) != \
            ("127.0.0.1", port, fpr, c["client_id"], True):
        fail("config server: %s" % s)
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s["connected_since"] or ""):
        fail("config server: connected_since is %r" % s["connected_since"])
    text = qic(a, "config", "server").stdout
    if "connected:       yes" not in text or "connected since: " not in text:
        fail("config server text:\n" + text)
    # The server goes away: not connected any more, and the reason is kept.
    srv.kill()
    srv.wait()
    deadline = time.time() + 30
    while qjson(a, "config", "server")["connected"]:
        if time.time() > deadline:
            fail("config server still says connected after the server died")
        time.sleep(0.1)
    s = qjson(a, "config", "server")
    if s["connected_since"] is not None or not s["last_error"] or not s["last_error_at"]:
        fail("config server after a disconnect: %s" % s)
    print("config: ok")


def test_remote():
    srv, port, fpr = st.start_qis()
    a, b, c = st.Client("a"), st.Client("b"), st.Client("c")
    connected(a, port, fpr)
    connected(b, port, fpr)
    c.start()  # never connected
    one_line_error(qic(c, "connect", "list-remote", check=False), "list-remote offline", 1)
    os.makedirs(a.dir)
    qic(a, "connect", "root", "--local", a.dir, "--name", "shared", "--password", st.ROOT_PW)
    roots = qjson(b, "connect", "list-remote")["roots"]
    if [(r["name"], r["joined"], r["dir"]) for r in roots] != [("shared", False, None)]:
        fail("list-remote before joining: %s" % roots)
    text = qic(b, "connect", "list-remote").stdout
    if not re.search(r"^shared\s+\d+\s+no\s+-$", text, re.M):
        fail("list-remote text:\n" + text)
    qic(b, "connect", "root", "--remote", "shared", "--dir", b.dir, "--password", st.ROOT_PW)
    roots = qjson(b, "connect", "list-remote")["roots"]
    if [(r["name"], r["joined"], r["dir"]) for r in roots] != [("shared", True, b.dir)]:
        fail("list-remote after joining: %s" % roots)
    # More roots than one LIST_ROOTS page (50): the pages join up in name order.
    for i in range(50):
        d = os.path.join(a.home, "r%03d" % i)
        os.makedirs(d)
        qic(a, "connect", "root", "--local", d, "--name", "r%03d" % i, "--password", "pw")
    roots = qjson(b, "connect", "list-remote")["roots"]
    names = [r["name"] for r in roots]
    if names != sorted(names) or len(names) != 51 or len(set(names)) != 51:
        fail("list-remote over two pages: %d roots, %s..." % (len(names), names[:5]))
    if [r["name"] for r in roots if r["joined"]] != ["shared"]:
        fail("list-remote joined flags: %s" % [r for r in roots if r["joined"]])
    if not all(r["joined"] for r in qjson(a, "connect", "list-remote")["roots"]):
        fail("the registering client is not shown as joined")
    print("remote: ok")


def start_daemon(c, *extra):
    r = qic(c, "start", "--daemon", "--rest-port", "0", *extra, check=False)
    return r


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_daemon():
    d = st.Client("d")
    t0 = time.time()
    r = start_daemon(d)
    if r.returncode != 0:
        fail("start --daemon: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    m = re.search(r"pid (\d+), REST API on 127\.0\.0\.1:(\d+), .* log (\S+)$", r.stdout.strip())
    if not m:
        fail("start --daemon printed %r" % r.stdout)
    pid, log = int(m.group(1)), m.group(3)
    detached.append(pid)
    if log != os.path.join(d.home, "data", "quics", "qic.log") or not os.path.exists(log):
        fail("the log is not where it was said: %s" % log)
    if os.getsid(pid) != pid:
        fail("the daemon did not start its own session")
    if os.readlink("/proc/%d/cwd" % pid) != "/":
        fail("the daemon did not move to /")
    # The parent returned once the REST API answered: it answers now, without waiting.
    cfg = qjson(d, "config", "show")
    if cfg["pid"] != pid or cfg["log"] != log or cfg["rest_port"] != int(m.group(2)):
        fail("config show of the daemon: %s" % cfg)
    print("start --daemon returned after %.2f s" % (time.time() - t0))
    # A second daemon, detached or not, refuses clearly and leaves the first one alone.
    for args in (["--daemon"], []):
        r2 = qic(d, "start", "--rest-port", "0", *args, check=False)
        line = one_line_error(r2, "second start " + " ".join(args), 1)
        if "already running" not in line or str(pid) not in line:
            fail("second start said %r" % line)
    if not pid_alive(pid) or qjson(d, "config", "show")["pid"] != pid:
        fail("the first daemon was disturbed by the second start")
    # stop: the daemon exits cleanly, removes its endpoint file, and a new one can start.
    r = qic(d, "stop")
    if "stopped" not in r.stdout:
        fail("stop printed %r" % r.stdout)
    if pid_alive(pid) and open("/proc/%d/stat" % pid).read().split()[2] != "Z":
        fail("the daemon still runs after qic stop returned")
    if os.path.exists(os.path.join(d.home, "config", "quics", "qic.api")):
        fail("the endpoint file is left after stop")
    if "event=stopping" not in open(log).read():
        fail("the log does not show a clean stop")
    one_line_error(qic(d, "stop", check=False), "stop with no daemon", 1)
    one_line_error(qic(d, "config", "show", check=False), "config show with no daemon", 1)
    r = start_daemon(d, "--json")
    info = json.loads(r.stdout)
    detached.append(info["pid"])
    if info["log"] != log or info["pid"] == pid:
        fail("start --daemon --json: %s" % info)
    out = qjson(d, "stop")
    if out != {"result": "stopped", "pid": info["pid"]}:
        fail("stop --json: %s" % out)
    # Stopping while a request waits on the network (a registration with a server that does
    # not answer): the waiting command gets one line, the daemon stops cleanly (regression:
    # the canceled request was completed after it was freed; ASan builds caught it).
    silent = subprocess.Popen([sys.executable, "-c", "import socket,time; s=socket.socket("
                               "socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1',0)); "
                               "print(s.getsockname()[1], flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    st.procs.append(silent)
    udp = silent.stdout.readline().strip()
    info = json.loads(start_daemon(d, "--json").stdout)
    detached.append(info["pid"])
    waiting = subprocess.Popen([QIC, "connect", "server", "--host", "127.0.0.1", "--port", udp,
                                "--password", "x"], env=d.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(0.1)
    qic(d, "stop")
    out, err = waiting.communicate(timeout=30)
    if waiting.returncode == 0 or len(err.splitlines()) != 1:
        fail("connect server during stop: %d %r" % (waiting.returncode, err))
    text = open(log).read()
    if "AddressSanitizer" in text or not text.rstrip().endswith("event=stopped"):
        fail("the daemon did not stop cleanly:\n" + text[-3000:])
    # A daemon that cannot start says why in one line and exits non-zero.
    blocker = subprocess.Popen([sys.executable, "-c", "import socket,time; s=socket.socket();"
                                "s.bind(('127.0.0.1',0)); s.listen(); print(s.getsockname()[1],"
                                " flush=True); time.sleep(60)"], stdout=subprocess.PIPE,
                               text=True)
    st.procs.append(blocker)
    busy = blocker.stdout.readline().strip()
    r = qic(d, "start", "--daemon", "--rest-port", busy, check=False)
    line = one_line_error(r, "start on a busy port", 1)
    if "REST API" not in line:
        fail("start on a busy port said %r" % line)
    print("daemon: ok")


def tty_run(c, *args):
    """Runs qic with stdout on a pseudo-terminal; returns what it printed."""
    master, slave = pty.openpty()
    p = subprocess.Popen([QIC] + list(args), env=c.env, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    p.wait(timeout=30)
    return out.decode("utf-8", "replace")


BAR = re.compile(r"\[[#.]{30}\]\s+\d+%")


def test_status():
    srv, port, fpr, cs = st.setup(2)
    a, b = cs
    other = os.path.join(a.home, "other")
    os.makedirs(os.path.join(other, "sub"))
    qic(a, "connect", "root", "--local", other, "--name", "other", "--password", "pw")
    os.makedirs(os.path.join(a.dir, "deep/er"))
    st.converge(cs, expect=lambda t: "deep/er" in t)
    # --path: the root holding the path, given relative to the working directory or not.
    for path, cwd, want in [(a.dir, None, "shared"), ("deep/er", a.dir, "shared"),
                            ("sub", other, "other"), (other, "/", "other")]:
        roots = json.loads(qic(a, "sync", "status", "--path", path, "--json", cwd=cwd).stdout)
        roots = roots["roots"]
        if [r["name"] for r in roots] != [want]:
            fail("sync status --path %s (in %s): %s" % (path, cwd, roots))
    if len(qjson(a, "sync", "status")["roots"]) != 2:
        fail("sync status without --path does not list both roots")
    one_line_error(qic(a, "sync", "status", "--path", a.home, check=False), "--path outside", 1)
    text = qic(a, "sync", "status", "--path", other).stdout
    if "shared" in text or not re.search(r"other\s+%s\s+0\s+0\s+0\s+0\s+connected" %
                                         re.escape(other), text):
        fail("sync status --path text:\n" + text)
    # A 200 MiB file: while it travels, A reports its upload and B its download with bytes
    # and bytes done; a terminal gets a bar, a pipe does not.
    big = os.urandom(200 << 20)
    st.write(os.path.join(a.dir, "big.bin"), big)
    seen_up = seen_down = seen_bar = False
    deadline = time.time() + 120
    while time.time() < deadline and not (seen_down and seen_up and seen_bar):
        for c in (a, b):
            r = qic(c, "sync", "status", "--path", c.dir, "--json", check=False)
            if r.returncode != 0:
                continue
            ro = json.loads(r.stdout)["roots"][0]
            t = ro["uploads" if c is a else "downloads"]
            if t["files"] >= 1 and t["bytes"] > 0 and 0 <= t["bytes_done"] < t["bytes"]:
                if c is a:
                    seen_up = True
                else:
                    seen_down = True
                    if t["bytes"] != 200 << 20:
                        fail("download bytes %d, want the file's size" % t["bytes"])
                    screen = tty_run(b, "sync", "status", "--path", b.dir)
                    plain = qic(b, "sync", "status", "--path", b.dir).stdout
                    if BAR.search(plain):
                        fail("a bar was drawn into a pipe:\n" + plain)
                    if BAR.search(screen) and "down" in screen:
                        seen_bar = True
        if os.path.exists(os.path.join(b.dir, "big.bin")) and not seen_down:
            break
        time.sleep(0.02)
    if not (seen_up and seen_down and seen_bar):
        fail("transfer progress not seen: upload %s, download %s, bar %s" %
             (seen_up, seen_down, seen_bar))
    st.converge(cs, timeout=120, expect=lambda t: "big.bin" in t)
    # Done: every counter is back to zero (each transfer took back what it added).
    deadline = time.time() + 30
    while True:
        idle = [qjson(c, "sync", "status")["roots"] for c in (a, b)]
        if all(t["files"] == 0 and t["bytes"] == 0 and t["bytes_done"] == 0
               for roots in idle for r in roots for t in (r["uploads"], r["downloads"])):
            break
        if time.time() > deadline:
            fail("transfer counters stayed up after the sync: %s" % idle)
        time.sleep(0.1)
    if qjson(b, "sync", "status", "--path", b.dir)["roots"][0]["files"] != 1:
        fail("B does not count the received file")
    print("status: ok")


def commands():
    """Every command that `qic --help` lists, as lists of words."""
    r = subprocess.run([QIC, "--help"], stdout=subprocess.PIPE, text=True)
    cmds = [m.group(1).split() for m in re.finditer(r"^  qic (\S+(?: \S+)*?)  ", r.stdout, re.M)]
    if len(cmds) < 11:
        fail("qic --help lists too few commands: %r" % r.stdout)
    return cmds


def test_help():
    e = st.Client("e")  # no daemon: usage errors come before any REST call
    for words in commands():
        name = " ".join(words)
        r = qic(e, *(words + ["--help"]))
        if not r.stdout.startswith("usage: qic %s" % name) or "--json" not in r.stdout:
            fail("qic %s --help printed %r" % (name, r.stdout))
        one_line_error(qic(e, *(words + ["--no-such-option"]), check=False),
                       "qic %s --no-such-option" % name, 2)
        one_line_error(qic(e, *(words + ["stray-argument"]), check=False),
                       "qic %s stray-argument" % name, 2)
    for bad in (["connect", "root", "--password", "x"],
                ["connect", "root", "--remote", "r", "--password", "x"],
                ["connect", "server", "--host", "h", "--password", "p", "--port", "70000"],
                ["sync", "status", "--path"], ["start", "--rest-port", "x"],
                ["disconnect", "root"], ["no-such-command"], ["sync"]):
        one_line_error(qic(e, *bad, check=False), "qic " + " ".join(bad), 2)
    # Without a daemon every REST command fails with one line naming the problem.
    for words in (["sync", "status"], ["config", "show"], ["connect", "list-remote"],
                  ["stop"], ["sync", "rescan"]):
        line = one_line_error(qic(e, *words, check=False), " ".join(words), 1)
        if "not running" not in line:
            fail("qic %s without a daemon: %r" % (" ".join(words), line))
    print("help: ok")


def main():
    try:
        {"config": test_config, "remote": test_remote, "daemon": test_daemon,
         "status": test_status, "help": test_help}[TEST]()
        print("PASS", TEST)
    finally:
        for pid in detached:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        st.stop_all()


if __name__ == "__main__":
    main()
