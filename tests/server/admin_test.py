#!/usr/bin/env python3
"""End-to-end tests of the qis admin REST API and the qis commands on it: start the real
server with --port 0 and its own XDG directories, create data with qis-probe, then drive
`qis show|password|stop` as a user would. Usage: admin_test.py QIS PROBE."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

QIS, PROBE = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="qs-admin-test-")
procs = []
PASSWORD = "server-secret"
ENV = dict(os.environ, QUICS_TEST_FAST_HASH="1", XDG_CONFIG_HOME=os.path.join(tmp, "config"),
           XDG_DATA_HOME=os.path.join(tmp, "xdg-data"), HOME=os.path.join(tmp, "home"))
for k in ("QUICS_PORT", "QUICS_QUIC_PORT", "QUICS_ADDR", "QUICS_DATA", "QUICS_PASSWORD"):
    ENV.pop(k, None)
ENDPOINT = os.path.join(tmp, "config", "quics", "qis.api")
BIG = 9 << 20


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg)


def start_qis(data="data"):
    p = subprocess.Popen([QIS, "run", "--addr", "127.0.0.1", "--quic-port", "0", "--port", "0",
                          "--data", os.path.join(tmp, data), "--password", PASSWORD],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
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
            # Keep reading the daemon's log so it never blocks on a full pipe.
            p.log = [seen]
            p.reader = threading.Thread(target=lambda: p.log.extend(p.stdout), daemon=True)
            p.reader.start()
            return p, int(m.group(1)), m.group(2)
    fail("qis did not start: " + seen)


def qis(*args, stdin=None, env=None):
    r = subprocess.run([QIS] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=dict(ENV, **(env or {})),
                       timeout=60)
    print("$ qis", " ".join(args), "->", r.returncode)
    print(r.stdout[-3000:], end="")
    print(r.stderr[-2000:], end="")
    return r


def qis_json(*args, env=None):
    r = qis(*args, "--json", env=env)
    if r.returncode != 0:
        fail("qis %s failed: %s" % (" ".join(args), r.stderr))
    return json.loads(r.stdout)


def probe(port, fpr, scenario, password=PASSWORD):
    r = subprocess.run([PROBE, "--port", str(port), "--fingerprint", fpr, "--password", password,
                        "--scenario", scenario], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=240)
    # Its FAIL lines are expected when a test checks that a password is refused.
    print("".join("  probe| " + line for line in r.stdout[-2000:].splitlines(True)))
    return r


def one_line_error(r, what):
    """A failed command: non-zero status, nothing on stdout, one line on stderr."""
    check(r.returncode != 0 and r.stdout == "" and len(r.stderr.splitlines()) == 1 and
          r.stderr.startswith("qis"), what)


def http_status(port, path, token=None, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_endpoint_and_auth():
    st = os.stat(ENDPOINT)
    check(st.st_mode & 0o077 == 0, "the endpoint file is private (mode %o)" % (st.st_mode & 0o777))
    ep = json.load(open(ENDPOINT))
    port, token = ep["port"], ep["token"]
    check(port > 0 and len(token) == 64, "the endpoint file names the bound port and a token")
    status, body = http_status(port, "/v1/clients")
    check(status == 401 and body["error"]["code"] == "unauthorized",
          "a request without the token gets 401")
    status, _ = http_status(port, "/v1/clients", token="0" * 64)
    check(status == 401, "a request with a wrong token gets 401")
    status, _ = http_status(port, "/v1/stop", method="POST")
    check(status == 401, "an unauthenticated stop gets 401")
    status, body = http_status(port, "/v1/clients", token=token)
    check(status == 200 and "clients" in body, "the same request with the token gets 200")
    return port, token


def test_show(port, token):
    clients = qis_json("show", "client", "--all")["clients"]
    names = sorted(c["name"] for c in clients)
    check(names == ["a", "b"], "show client --all lists the probe's clients a and b")
    check(all(c["created_unix_ms"] > 0 and c["connected"] == (c["sessions"] > 0)
              for c in clients), "clients have a creation time and a connection state")
    a = [c for c in clients if c["name"] == "a"][0]
    # The probe exited without closing its connections: the server may still count them
    # until they time out, so only the consistency of the two lists is certain.
    connected = qis_json("show", "client")["clients"]
    check(all(c["connected"] and c["id"] in [x["id"] for x in clients] for c in connected),
          "show client lists only connected clients")
    one = qis_json("show", "client", "--id", str(a["id"]))
    check(one["name"] == "a" and [r["name"] for r in one["roots"]] == ["photos"],
          "show client --id shows a's roots")
    r = qis("show", "client", "--all")
    check(r.returncode == 0 and re.search(r"\ba\b", r.stdout) and "CONNECTED" in r.stdout,
          "show client --all prints a table")
    one_line_error(qis("show", "client", "--id", "999"), "an unknown client id is one line")
    r = qis("show", "client", "--id", "1", "--all")
    check(r.returncode == 2, "--id with --all is a usage error")

    d = qis_json("show", "dir", "--root", "photos")
    files = {f["path"]: f for f in d["files"]}
    check(sorted(files) == ["big.bin", "notes/hello.txt"], "show dir lists every file")
    check(files["big.bin"]["version"] == 2 and files["big.bin"]["size"] == BIG and
          files["big.bin"]["kind"] == "file" and files["big.bin"]["modified_by"] == a["id"],
          "big.bin is version 2, 9 MiB, by a")
    check(files["notes/hello.txt"]["version"] == 1 and files["notes/hello.txt"]["size"] == 13,
          "notes/hello.txt is version 1, 13 bytes")
    d = qis_json("show", "dir", "--root", str(d["root"]), "--path", "notes/")
    check([f["path"] for f in d["files"]] == ["notes/hello.txt"],
          "show dir --path lists only what is below the directory (root given by id)")
    r = qis("show", "dir", "--root", "photos")
    check(r.returncode == 0 and "big.bin" in r.stdout and "9.0 MiB" in r.stdout and
          "a (%d)" % a["id"] in r.stdout, "show dir prints a table with sizes and modifiers")

    h = qis_json("show", "history", "--root", "photos", "--path", "big.bin")
    check([v["version"] for v in h["versions"]] == [1, 2], "show history has versions 1 and 2")
    check(all(v["size"] == BIG and v["kind"] == "file" for v in h["versions"]) and
          h["versions"][0]["content_hash"] != h["versions"][1]["content_hash"],
          "both versions are 9 MiB files with different content")
    r = qis("show", "history", "--root", "photos", "--path", "big.bin")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 3, "history prints two rows")
    f = qis_json("show", "file", "--root", "photos", "--path", "big.bin")
    check(f["version"] == 2 and f["content_hash"] == h["versions"][1]["content_hash"],
          "show file is the current version")

    # Paging: the API answers at most `limit` items and a cursor; the CLI follows it.
    status, body = http_status(port, "/v1/roots/%d/history?path=big.bin&limit=1" % d["root"],
                               token=token)
    check(status == 200 and len(body["versions"]) == 1 and body["next_after"] == 1,
          "a page of one version has a cursor")
    status, body = http_status(port, "/v1/roots/%d/history?path=big.bin&limit=1&after=1" %
                               d["root"], token=token)
    check(body["versions"][0]["version"] == 2 and body["next_after"] is None,
          "the last page has no cursor")

    status, body = http_status(port, "/v1/roots/%d/files?dir=../x" % d["root"], token=token)
    check(status == 400 and body["error"]["code"] == "invalid_path", "a hostile dir gets 400")
    status, body = http_status(port, "/v1/roots/999/files", token=token)
    check(status == 404 and body["error"]["code"] == "root_not_found", "an unknown root gets 404")
    small = {"QUICS_TEST_PAGE_LIMIT": "1"}
    check(qis_json("show", "dir", "--root", "photos", env=small) ==
          qis_json("show", "dir", "--root", "photos"), "show dir follows the pages")
    check(qis_json("show", "history", "--root", "photos", "--path", "big.bin", env=small) == h,
          "show history follows the pages")
    check(qis_json("show", "client", "--all", env=small)["clients"] ==
          qis_json("show", "client", "--all")["clients"], "show client follows the pages")
    one_line_error(qis("show", "dir", "--root", "nosuch"), "an unknown root is one line")
    one_line_error(qis("show", "history", "--root", "photos", "--path", "nope"),
                   "an unknown path is one line")
    one_line_error(qis("show", "file", "--root", "photos", "--path", "../x"),
                   "a hostile path is one line")
    r = qis("show", "dir")
    check(r.returncode == 2 and "--root" in r.stderr, "a missing --root is a usage error")


def registers(port, fpr, password):
    """Whether a new client can register with password (the persisted scenario registers a
    client, then checks the root and big.bin from the upload scenario)."""
    r = probe(port, fpr, "persisted", password)
    if r.returncode == 0:
        return True
    if "register c" not in r.stdout:
        fail("the probe failed for another reason than registration")
    return False


def test_password(port, fpr):
    r = qis("password", "set", "--password", "new-secret")
    check(r.returncode == 0, "password set succeeds")
    check(registers(port, fpr, "new-secret"), "a client registers with the new password")
    check(not registers(port, fpr, PASSWORD), "the old password no longer registers")
    r = qis("password", "set", stdin="from-stdin\n")
    check(r.returncode == 0, "password set reads the password from stdin")
    check(registers(port, fpr, "from-stdin"), "the password from stdin registers")
    reset = qis_json("password", "reset")
    check(len(reset["password"]) == 32, "password reset returns a generated password")
    check(registers(port, fpr, reset["password"]), "the generated password registers")
    check(not registers(port, fpr, "from-stdin"), "the replaced password no longer registers")
    one_line_error(qis("password", "set", stdin=""), "password set without a password")
    one_line_error(qis("password", "set", "--password="), "an empty password is refused")


def test_stop(srv):
    r = qis("stop")
    check(r.returncode == 0 and "stopped" in r.stdout, "qis stop succeeds")
    try:
        srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("qis did not exit after qis stop")
    srv.reader.join(timeout=10)
    out = "".join(srv.log)
    print(out[-2000:])
    check(srv.returncode == 0, "the daemon exited with status 0")
    check("AddressSanitizer" not in out and "runtime error" not in out, "no sanitizer report")
    check(not os.path.exists(ENDPOINT), "the endpoint file is gone")
    r = qis("show", "client")
    one_line_error(r, "show client without a daemon is one line")
    check("not running" in r.stderr, "... saying that the server is not running")


def test_stale_endpoint():
    srv, _, _ = start_qis("data2")
    srv.kill()
    srv.wait()
    r = qis("show", "client", "--all")
    one_line_error(r, "show client after a kill -9 is one line")
    check("not running" in r.stderr and "stale" in r.stderr, "... naming the stale file")
    one_line_error(qis("stop"), "stop without a daemon is one line")


def main():
    try:
        r = qis("--help")
        check(r.returncode == 0 and "show history" in r.stdout, "qis --help lists the commands")
        r = qis("show", "client", "--bogus")
        check(r.returncode == 2 and len(r.stderr.splitlines()) == 1, "an unknown option is exit 2")
        srv, quic_port, fpr = start_qis()
        port, token = test_endpoint_and_auth()
        r = probe(quic_port, fpr, "upload")
        if r.returncode != 0:
            fail("the upload scenario failed")
        test_show(port, token)
        test_password(quic_port, fpr)
        test_stop(srv)
        test_stale_endpoint()
        print("PASS admin")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
