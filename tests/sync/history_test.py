#!/usr/bin/env python3
"""End-to-end history: a real qis and qic daemons on loopback (the helpers of sync_test.py),
driven through `qic history show|download|rollback`. Usage: history_test.py QIS QIC TEST with
TEST one of versions, storage, gc."""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_test as st  # noqa: E402  (parses the same argv: QIS QIC TEST)

fail, write, converge, tree = st.fail, st.write, st.converge, st.tree


def sha(b):
    return hashlib.sha256(b).hexdigest()


def history(c, path, *extra):
    r = c.qic("history", "show", "--path", path, "--json", *extra)
    return json.loads(r.stdout)["versions"]


def wait_version(c, path, version, timeout=60):
    """Waits until the server's newest version of path is at least version."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.qic("history", "show", "--path", path, "--json", "--from-head", "1", check=False)
        if r.returncode == 0:
            v = json.loads(r.stdout)["versions"]
            if v and v[-1]["version"] >= version:
                return v[-1]
        time.sleep(0.1)
    fail("%s never reached version %d" % (path, version))


def download(c, path, version, out):
    c.qic("history", "download", "--path", path, "--version", str(version), "--out", out)
    with open(out, "rb") as f:
        return f.read()


def content(i, rng):
    """Version i's bytes: small (inline) and multi-chunk contents alternate."""
    if i % 2:
        return rng.randbytes(1000 * i + 7)
    return rng.randbytes((3 << 20) // 2 + i)


def test_versions():
    srv, port, fpr, cs = st.setup(3)
    a, b, c = cs
    rng = random.Random(5)
    path = os.path.join(a.dir, "doc.bin")
    written = {}
    for i in range(1, 21):
        data = content(i, rng)
        write(path, data)
        written[i] = data
        converge(cs, timeout=60, expect=lambda t, h=sha(data): t.get("doc.bin", ("",) * 3)[2] == h)
        wait_version(a, path, i)
    vs = history(b, os.path.join(b.dir, "doc.bin"))
    if [v["version"] for v in vs] != list(range(1, 21)):
        fail("history is not versions 1..20 in order: %s" % [v["version"] for v in vs])
    for v in vs:
        data = written[v["version"]]
        if v["size"] != len(data) or v["kind"] != "file":
            fail("version %d: size %d, wrote %d" % (v["version"], v["size"], len(data)))
        op = "create" if v["version"] == 1 else "modify"
        if v["operation"] != op or v["client_id"] == 0 or not v["client_name"]:
            fail("version %d: %s" % (v["version"], v))
    if [v["version"] for v in history(a, path, "--from-head", "3")] != [18, 19, 20]:
        fail("--from-head 3 is not the 3 newest")
    text = a.qic("history", "show", "--path", path).stdout
    if "OPERATION" not in text or "modify" not in text or "create" not in text:
        fail("the table lacks the operation: " + text)
    # Every version downloads byte-exact, from two clients (the path relative to the cwd too).
    out_dir = os.path.join(st.tmp, "downloads")
    os.makedirs(out_dir)
    for i in range(1, 21):
        got = download(b if i % 2 else c, os.path.join((b if i % 2 else c).dir, "doc.bin"), i,
                       os.path.join(out_dir, "v%d" % i))
        if got != written[i]:
            fail("version %d downloaded %d bytes that differ from the %d written" %
                 (i, len(got), len(written[i])))
    r = subprocess.run([st.QIC, "history", "download", "--path", "sync/doc.bin", "--version",
                        "4"], env=a.env, cwd=a.home, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    with open(os.path.join(a.home, "doc.bin.v4"), "rb") as f:
        if r.returncode != 0 or f.read() != written[4]:
            fail("default output name: %s" % r.stdout)
    r = a.qic("history", "download", "--path", path, "--version", "4", "--out",
              os.path.join(out_dir, "v4"), check=False)
    if r.returncode == 0:
        fail("download over an existing file succeeded")
    r = a.qic("history", "download", "--path", path, "--version", "99", "--out",
              os.path.join(out_dir, "v99"), check=False)
    if r.returncode == 0 or os.path.exists(os.path.join(out_dir, "v99")):
        fail("download of a version that does not exist: %s" % r.stdout)
    # Rollback to version 3 from the third client: every client gets version 3's bytes.
    out = json.loads(c.qic("history", "rollback", "--path", os.path.join(c.dir, "doc.bin"),
                           "--version", "3", "--json").stdout)
    if out["version"] != 21:
        fail("rollback made version %s, not 21" % out)
    converge(cs, timeout=60, expect=lambda t: t.get("doc.bin", ("",) * 3)[2] == sha(written[3]))
    last = history(a, path)[-1]
    if last["version"] != 21 or last["operation"] != "rollback" or last["size"] != len(written[3]):
        fail("history after the rollback: %s" % last)
    # Delete, then roll the deleted file back: it comes back on every client.
    os.remove(os.path.join(b.dir, "doc.bin"))
    converge(cs, expect=lambda t: "doc.bin" not in t)
    wait_version(a, path, 22)
    if history(a, path)[-1]["operation"] != "delete":
        fail("the deletion is not in the history")
    r = a.qic("history", "download", "--path", path, "--version", "22", "--out",
              os.path.join(out_dir, "v22"), check=False)
    if r.returncode == 0:
        fail("a deletion downloaded as content")
    a.qic("history", "rollback", "--path", path, "--version", "20")
    converge(cs, timeout=60, expect=lambda t: t.get("doc.bin", ("",) * 3)[2] == sha(written[20]))
    ops = [v["operation"] for v in history(a, path)[-3:]]
    if ops != ["rollback", "delete", "rollback"]:
        fail("operations of the last three versions: %s" % ops)
    # A symlink's version downloads as a symlink (its target travels in the FileState).
    os.symlink("doc.bin", os.path.join(a.dir, "ln"))
    converge(cs, expect=lambda t: t.get("ln") == ("link", "doc.bin"))
    wait_version(a, os.path.join(a.dir, "ln"), 1)
    c.qic("history", "download", "--path", os.path.join(c.dir, "ln"), "--version", "1",
          "--out", os.path.join(out_dir, "ln1"))
    if os.readlink(os.path.join(out_dir, "ln1")) != "doc.bin":
        fail("the symlink version did not download as the symlink")
    # Nothing happened to other paths, and the clients still sync normally afterwards.
    write(os.path.join(c.dir, "after.txt"), b"after\n")
    converge(cs, expect=lambda t: "after.txt" in t)
    print("versions: 20 versions listed and downloaded; rollbacks propagated")


def store_bytes():
    total = 0
    for dirpath, _, files in os.walk(os.path.join(st.tmp, "server", "chunks")):
        for f in files:
            if not f.startswith("index.db"):
                total += os.path.getsize(os.path.join(dirpath, f))
    return total


def test_storage():
    srv, port, fpr, cs = st.setup(1)
    a = cs[0]
    path = os.path.join(a.dir, "big.bin")
    size = 256 << 20
    rng = random.Random(7)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(rng.randbytes(1 << 20))
    wait_version(a, path, 1, timeout=300)
    before = store_bytes()
    t0 = time.time()
    edits = 100
    for i in range(edits):
        with open(path, "r+b") as f:
            f.seek(size // 2 - 512)
            f.write(rng.randbytes(1024))
        wait_version(a, path, i + 2, timeout=120)
    grown = store_bytes() - before
    print("storage: %d edits of 1 KiB in the middle of a 256 MiB file grew the chunk store by "
          "%d bytes (%.2f MiB, %.1f KiB per edit; limit %d MiB) in %.0f s" %
          (edits, grown, grown / 1048576, grown / 1024 / edits, edits * 4, time.time() - t0))
    if grown > edits * (4 << 20):
        fail("the store grew by more than 4 MiB per edit")
    got = download(a, path, edits + 1, os.path.join(st.tmp, "last"))
    with open(path, "rb") as f:
        if got != f.read():
            fail("the last version does not download byte-exact")


def start_qis_keep(port, keep):
    """qis with retention "last keep" and no grace period for unreferenced chunks."""
    env = dict(os.environ, QUICS_TEST_FAST_HASH="1", QUICS_GC_GRACE="0",
               QUICS_KEEP_VERSIONS=str(keep))
    log_path = os.path.join(st.tmp, "server-keep.log")
    p = subprocess.Popen([st.QIS, "run", "--addr", "127.0.0.1", "--quic-port", str(port),
                          "--data", os.path.join(st.tmp, "server"), "--password", st.PASSWORD],
                         stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)
    st.procs.append(p)
    deadline = time.time() + 20
    while time.time() < deadline:
        with open(log_path) as f:
            if re.search(r"--port (\d+) ", f.read()):
                return p
        time.sleep(0.05)
    fail("qis did not restart")


def test_gc():
    srv, port, fpr, cs = st.setup(2)
    a, b = cs
    path = os.path.join(a.dir, "g.bin")
    rng = random.Random(9)
    written = {}
    for i in range(1, 13):  # 12 versions of 3 MiB each, sharing no chunk
        written[i] = rng.randbytes(3 << 20)
        write(path, written[i])
        wait_version(a, path, i)
    write(os.path.join(a.dir, "small.txt"), b"small\n")  # one version only: kept
    converge(cs, timeout=60, expect=lambda t: t.get("g.bin", ("",) * 3)[2] == sha(written[12])
             and "small.txt" in t)
    before = store_bytes()
    srv.send_signal(signal.SIGTERM)
    srv.wait(timeout=30)
    start_qis_keep(port, 5)
    wait_version(a, path, 12)
    wait_version(b, os.path.join(b.dir, "g.bin"), 12)  # b is back on the restarted server too
    after = store_bytes()
    print("gc: chunk store %d -> %d bytes with retention 'last 5'" % (before, after))
    if after > before - 6 * (3 << 20):
        fail("the store did not shrink by the 7 pruned versions: %d -> %d" % (before, after))
    vs = history(b, os.path.join(b.dir, "g.bin"))
    if [v["version"] for v in vs] != [8, 9, 10, 11, 12]:
        fail("retained versions: %s" % [v["version"] for v in vs])
    for i in range(8, 13):
        got = download(b, os.path.join(b.dir, "g.bin"), i, os.path.join(st.tmp, "g%d" % i))
        if got != written[i]:
            fail("retained version %d does not download byte-exact" % i)
    r = b.qic("history", "download", "--path", os.path.join(b.dir, "g.bin"), "--version", "3",
              "--out", os.path.join(st.tmp, "g3"), check=False)
    if r.returncode == 0:
        fail("a pruned version downloaded")
    if [v["version"] for v in history(a, os.path.join(a.dir, "small.txt"))] != [1]:
        fail("a path's only version was pruned")
    # Syncing goes on: a new version after the GC (it reuses no collected chunk).
    write(path, written[2])
    converge(cs, timeout=60, expect=lambda t: t.get("g.bin", ("",) * 3)[2] == sha(written[2]))
    print("gc: old chunks freed, retained versions intact")


def main():
    try:
        {"versions": test_versions, "storage": test_storage, "gc": test_gc}[st.TEST]()
        print("PASS", st.TEST)
    finally:
        st.stop_all()


if __name__ == "__main__":
    main()
