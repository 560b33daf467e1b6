#!/usr/bin/env python3
"""End-to-end conflicts (issue 5): real qis + qic daemons on loopback, driven through the qic
CLI. A conflict is made deterministically: a client is stopped, the file changes on another
client (the server accepts it), the stopped client's copy changes too, and the client starts:
its proposal is based on the old version, so the server keeps its version and stores the
proposal as a candidate. Usage: conflict_test.py QIS QIC TEST."""
import hashlib
import json
import os
import shutil
import sys
import time

import sync_test as h

TEST = sys.argv[3]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def conflicts(c):
    return json.loads(c.qic("conflict", "list", "--json").stdout)["conflicts"]


def wait_conflict(c, path, ncand, timeout=30):
    """Waits until client c sees an open conflict on root-relative path with ncand
    candidates; returns it."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        r = c.qic("conflict", "list", "--json", check=False)
        if r.returncode != 0:  # e.g. not connected yet after a start
            last = r.stdout
            time.sleep(0.1)
            continue
        last = [x for x in json.loads(r.stdout)["conflicts"] if x["path"] == path]
        if last and len(last[0]["candidates"]) == ncand:
            return last[0]
        time.sleep(0.1)
    h.fail("%s: no conflict on %s with %d candidates: %s" % (c.name, path, ncand, last))


def content_of(c, rel):
    return sha(read(os.path.join(c.dir, rel)))


def settle(clients, rel, want, timeout=30):
    h.converge(clients, timeout=timeout,
               expect=lambda t: (want is None and rel not in t) or
               (want is not None and rel in t and t[rel][0] == "file" and t[rel][2] == sha(want)))


def offline_edit(cs, stopped, rel, online_writes, offline_writes):
    """Stops the clients in `stopped`, applies online_writes (client, bytes or None = delete)
    and waits until the running clients agree, then applies offline_writes to the stopped
    clients' folders and starts them one by one (in the given order)."""
    running = [c for c in cs if c not in stopped]
    for c in stopped:
        c.stop()
    for c, data in online_writes:
        p = os.path.join(c.dir, rel)
        if data is None:
            os.remove(p)
        else:
            h.write(p, data)
        settle(running, rel, data)
    for c, data in offline_writes:
        p = os.path.join(c.dir, rel)
        if data is None:
            os.remove(p)
        else:
            h.write(p, data)
    for c in stopped:
        c.start()
        time.sleep(1.0)  # the server sees the proposals in this order


def check_untouched(c, rel, data):
    p = os.path.join(c.dir, rel)
    if data is None:
        if os.path.exists(p):
            h.fail("%s: a deleted conflicted path came back before the user chose" % c.name)
    elif not os.path.exists(p) or read(p) != data:
        h.fail("%s: the user's conflicted copy of %s was changed" % (c.name, rel))


_dl = [0]


def retrievable(c, rel):
    """Hashes of every content the server holds for rel: each stored version and each open
    conflict candidate, downloaded byte by byte through the client (deletions have none)."""
    path = os.path.join(c.dir, rel)
    got = set()
    out_dir = os.path.join(h.tmp, "downloads")
    os.makedirs(out_dir, exist_ok=True)
    r = c.qic("history", "show", "--path", path, "--json")
    for v in json.loads(r.stdout)["versions"]:
        if v.get("kind") in ("deleted", "tombstone", "dir"):
            continue
        _dl[0] += 1
        out = os.path.join(out_dir, "v%d" % _dl[0])
        c.qic("history", "download", "--path", path, "--version", str(v["version"]), "--out", out)
        got.add(sha(read(out)))
    for con in conflicts(c):
        if con["path"] != rel:
            continue
        for cand in con["candidates"]:
            if cand["kind"] == "deleted":
                continue
            _dl[0] += 1
            out = os.path.join(out_dir, "c%d" % _dl[0])
            c.qic("conflict", "download", "--path", path, "--candidate", str(cand["id"]),
                  "--out", out)
            got.add(sha(read(out)))
    return got


def nothing_lost(c, rel, written):
    """Every byte sequence any client wrote to rel is still on the server."""
    got = retrievable(c, rel)
    for data in written:
        if sha(data) not in got:
            h.fail("%r written to %s is not retrievable from the server" % (data[:40], rel))


def choose(c, rel, cand):
    r = c.qic("conflict", "choose", "--path", os.path.join(c.dir, rel), "--candidate",
              str(cand), "--json")
    return json.loads(r.stdout)


def test_two_way():
    srv, port, fpr, cs = h.setup(3)
    a, b, c = cs
    h.write(os.path.join(a.dir, "doc.txt"), b"first\n")
    settle(cs, "doc.txt", b"first\n")
    a_bytes, b_bytes = b"edited on a\n", b"edited on b, offline\n"
    offline_edit(cs, [b], "doc.txt", [(a, a_bytes)], [(b, b_bytes)])
    # Every client sees exactly one conflict: the server keeps a's version, b's is a
    # candidate; b keeps its own bytes, the others keep the server's.
    for cl in cs:
        con = wait_conflict(cl, "doc.txt", 1)
    cand = con["candidates"][0]
    if cand["client_id"] == 0 or cand["size"] != len(b_bytes) or cand["base_version"] != 1:
        h.fail("unexpected candidate: %s" % cand)
    if con["server_version"] != 2:
        h.fail("the server should keep version 2: %s" % con)
    time.sleep(1)
    check_untouched(b, "doc.txt", b_bytes)
    check_untouched(a, "doc.txt", a_bytes)
    check_untouched(c, "doc.txt", a_bytes)
    # A restart reconnects with a full scan, and the server pushes its newer version to b:
    # it must not replace b's conflicted copy either.
    b.stop()
    b.start()
    wait_conflict(b, "doc.txt", 1)
    time.sleep(1.5)
    check_untouched(b, "doc.txt", b_bytes)
    # the server admin sees it too
    r = h.subprocess.run([h.QIS, "show", "conflict", "--json"], stdout=h.subprocess.PIPE,
                         text=True, timeout=30)
    listed = json.loads(r.stdout)["candidates"] if r.returncode == 0 else None
    if not listed or listed[0]["path"] != "doc.txt" or listed[0]["id"] != cand["id"]:
        h.fail("qis show conflict does not list the candidate: %r" % r.stdout)
    mine = [x for x in conflicts(b)[0]["candidates"] if x["mine"]]
    if len(mine) != 1:
        h.fail("b does not see its own candidate as its own")
    # b keeps editing: its candidate follows, and other paths still sync meanwhile
    b_bytes = b"edited on b again\n"
    h.write(os.path.join(b.dir, "doc.txt"), b_bytes)
    h.write(os.path.join(b.dir, "other.txt"), b"other paths still sync\n")
    h.converge([a, c], expect=lambda t: "other.txt" in t)
    deadline = time.time() + 20
    while conflicts(a)[0]["candidates"][0]["size"] != len(b_bytes):
        if time.time() > deadline:
            h.fail("b's further edit did not update its candidate")
        time.sleep(0.1)
    if len(conflicts(a)[0]["candidates"]) != 1:
        h.fail("a further edit made a second candidate")
    # nothing lost: every version and candidate downloads byte-exact (from any client)
    nothing_lost(c, "doc.txt", [b"first\n", a_bytes, b_bytes])
    nothing_lost(b, "doc.txt", [b"first\n", a_bytes, b_bytes])
    # c chooses b's candidate: version 3 everywhere, b's file untouched but agreed
    out = choose(c, "doc.txt", cand["id"])
    if out["version"] != 3:
        h.fail("the choice should be version 3: %s" % out)
    settle(cs, "doc.txt", b_bytes)
    if conflicts(a):
        h.fail("the conflict is still open after the choice")
    ops = [(v["version"], v.get("operation")) for v in json.loads(
        a.qic("history", "show", "--path", os.path.join(a.dir, "doc.txt"), "--json").stdout)["versions"]]
    if [v for v, _ in ops] != [1, 2, 3] or ops[-1][1] != "resolve":
        h.fail("history should show versions 1, 2 and the resolution 3: %s" % ops)
    # a stale or unknown choice is refused with one line
    r = c.qic("conflict", "choose", "--path", os.path.join(c.dir, "doc.txt"), "--candidate",
              "1", check=False)
    if r.returncode == 0 or len(r.stdout.strip().splitlines()) != 1:
        h.fail("choosing on a path without conflict: %d %r" % (r.returncode, r.stdout))
    # afterwards the path syncs normally again from any client
    h.write(os.path.join(b.dir, "doc.txt"), b"after the conflict\n")
    settle(cs, "doc.txt", b"after the conflict\n")
    print("two_way: resolved and converged")


def test_three_way():
    srv, port, fpr, cs = h.setup(3)
    a, b, c = cs
    h.write(os.path.join(a.dir, "plan.txt"), b"v1\n")
    settle(cs, "plan.txt", b"v1\n")
    data = {a: b"plan by a\n", b: b"plan by b\n", c: b"plan by c, the longest\n"}
    offline_edit(cs, [b, c], "plan.txt", [(a, data[a])], [(b, data[b]), (c, data[c])])
    con = wait_conflict(a, "plan.txt", 2)
    sizes = sorted(x["size"] for x in con["candidates"])
    if sizes != sorted([len(data[b]), len(data[c])]):
        h.fail("candidates do not hold b's and c's proposals: %s" % con)
    check_untouched(b, "plan.txt", data[b])
    check_untouched(c, "plan.txt", data[c])
    nothing_lost(a, "plan.txt", [b"v1\n", data[a], data[b], data[c]])
    pick = [x for x in con["candidates"] if x["size"] == len(data[c])][0]
    choose(a, "plan.txt", pick["id"])
    settle(cs, "plan.txt", data[c])
    print("three_way: resolved and converged")


def test_modify_delete():
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    h.write(os.path.join(a.dir, "gone.txt"), b"will be deleted on a\n")
    h.write(os.path.join(a.dir, "kept.txt"), b"will be deleted on b\n")
    settle(cs, "gone.txt", b"will be deleted on a\n")
    settle(cs, "kept.txt", b"will be deleted on b\n")
    # modify-vs-delete: a deletes, b (offline) modifies; b's edit wins by choice
    offline_edit(cs, [b], "gone.txt", [(a, None)], [(b, b"b still needs this\n")])
    con = wait_conflict(a, "gone.txt", 1)
    check_untouched(b, "gone.txt", b"b still needs this\n")
    nothing_lost(a, "gone.txt", [b"will be deleted on a\n", b"b still needs this\n"])
    choose(a, "gone.txt", con["candidates"][0]["id"])
    settle(cs, "gone.txt", b"b still needs this\n")
    # delete-vs-modify: a modifies, b (offline) deletes; the server's version is kept
    offline_edit(cs, [b], "kept.txt", [(a, b"a changed it\n")], [(b, None)])
    con = wait_conflict(a, "kept.txt", 1)
    if con["candidates"][0]["kind"] != "deleted":
        h.fail("the candidate should be a deletion: %s" % con)
    check_untouched(b, "kept.txt", None)
    choose(b, "kept.txt", 0)
    settle(cs, "kept.txt", b"a changed it\n")
    print("modify_delete: both orders resolved")


def create_both(cs, rel):
    """Two clients create rel, b while stopped: returns b's create-vs-create conflict."""
    a, b = cs
    h.write(os.path.join(a.dir, "seed.txt"), b"seed\n")
    settle(cs, "seed.txt", b"seed\n")
    b.stop()
    h.write(os.path.join(a.dir, rel), b"created on a\n")
    h.converge([a], expect=lambda t: rel in t)
    time.sleep(1)
    h.write(os.path.join(b.dir, rel), b"created on b too\n")
    b.start()
    return wait_conflict(b, rel, 1)


def test_create_create():
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    con = create_both(cs, "new.txt")
    if con["candidates"][0]["base_version"] != 0:
        h.fail("a create-vs-create candidate has base 0: %s" % con)
    check_untouched(b, "new.txt", b"created on b too\n")
    nothing_lost(a, "new.txt", [b"created on a\n", b"created on b too\n"])
    choose(b, "new.txt", 0)
    settle(cs, "new.txt", b"created on a\n")
    print("create_create: resolved")


def wait_deleted_candidate(c, rel, why):
    """Until c sees rel's one candidate as a deletion; returns the conflict."""
    deadline = time.time() + 30
    while True:
        con = wait_conflict(c, rel, 1)
        if con["candidates"][0]["kind"] == "deleted":
            return con
        if time.time() > deadline:
            h.fail("%s: %s" % (why, con))
        time.sleep(0.2)


def test_candidate_deleted():
    # The user deletes the conflicted copy on the client that holds the candidate (chaos
    # seeds 1254, 1256, ...: a directory removed with a conflict inside it). The delete is a
    # change like any other: the client's candidate becomes "deleted" on the server, and
    # choosing it deletes the file everywhere. Before the fix the delete was dropped, the
    # candidate stayed the old bytes, and choosing it left that client conflicted forever.
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    con = create_both(cs, "both.txt")
    if con["candidates"][0]["kind"] != "file":
        h.fail("b's first candidate is its file: %s" % con)
    nothing_lost(a, "both.txt", [b"created on a\n", b"created on b too\n"])
    os.unlink(os.path.join(b.dir, "both.txt"))
    con = wait_deleted_candidate(a, "both.txt", "b's delete of its conflicted copy did not "
                                 "reach the server")
    # b's delete replaced its candidate (one per client, as an edit would); a's version stays.
    nothing_lost(a, "both.txt", [b"created on a\n"])
    choose(a, "both.txt", con["candidates"][0]["id"])
    settle(cs, "both.txt", None)
    for c in cs:
        if conflicts(c):
            h.fail("%s: conflicts left after the choice: %s" % (c.name, conflicts(c)))
    print("candidate_deleted: the delete became the candidate, choosing it deleted everywhere")


def test_renamed_over():
    # The user renames the conflicted copy over another synced file (chaos seed 33031: the
    # rename's new name was known, so only it was looked at, and the conflicted copy's
    # deletion was never proposed: the conflict stayed after every choice). The old name is
    # now a deleted candidate, and the other file takes the renamed content.
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    h.write(os.path.join(a.dir, "other.txt"), b"another synced file\n")
    settle(cs, "other.txt", b"another synced file\n")
    create_both(cs, "both.txt")  # b holds the candidate
    os.rename(os.path.join(b.dir, "both.txt"), os.path.join(b.dir, "other.txt"))
    wait_deleted_candidate(a, "both.txt", "b's conflicted copy renamed over other.txt did not "
                           "become a deleted candidate")
    want = sha(b"created on b too\n")
    wait_path(cs, "other.txt", h.tree(b.dir).get("other.txt"), "other.txt takes the content "
              "renamed over it")
    if h.tree(a.dir)["other.txt"][2] != want:
        h.fail("other.txt on a is not the renamed content")
    nothing_lost(a, "both.txt", [b"created on a\n"])
    print("renamed_over: the old name a deleted candidate, the new name the renamed content")


def test_dir_moved_out():
    # A directory is moved out of the root on the client that holds a conflict candidate
    # below it (chaos seed 8039). The watcher reports only the directory, and a conflict
    # below it keeps it from being one subtree delete: each path below it must then be
    # proposed deleted on its own. Before the fix only the directory's tombstone went, and
    # the other client kept every file of it for good.
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    kept = {"d/keep.txt": b"in the directory moved out\n",
            "d/s/deep.txt": b"one level further down\n"}
    for rel, data in kept.items():
        h.write(os.path.join(a.dir, rel), data)
    for rel, data in kept.items():
        settle(cs, rel, data)
    create_both(cs, "d/both.txt")  # b holds the candidate
    shutil.move(os.path.join(b.dir, "d"), os.path.join(h.tmp, "d-moved-out"))
    deadline = time.time() + 30
    while any(rel in h.tree(a.dir) for rel in kept):
        if time.time() > deadline:
            h.fail("the files of a directory moved out on b are still on a: %s" %
                   sorted(k for k in h.tree(a.dir) if k.startswith("d")))
        time.sleep(0.1)
    wait_deleted_candidate(a, "d/both.txt", "b's conflicted copy moved out did not become a "
                           "deleted candidate")
    check_untouched(a, "d/both.txt", b"created on a\n")  # the server's version stays
    if any(k == "d" or k.startswith("d/") for k in h.tree(b.dir)):
        h.fail("the directory b moved out came back: %s" % sorted(h.tree(b.dir)))
    for rel, data in kept.items():
        nothing_lost(a, rel, [data])
    print("dir_moved_out: every path below the directory deleted, the candidate a deletion")


def choose_refused(c, rel, cand, why):
    """A choice the server must refuse as a kind conflict; nothing may change."""
    r = c.qic("conflict", "choose", "--path", os.path.join(c.dir, rel), "--candidate",
              str(cand), check=False)
    if r.returncode == 0 or "holds paths" not in r.stdout:
        h.fail("choosing %s %d (%s) must be refused as a kind conflict: %d %s" %
               (rel, cand, why, r.returncode, r.stdout))


def wait_path(cs, rel, want, why):
    """Until every client holds want (a tree() value) at rel: the other paths may differ."""
    deadline = time.time() + 30
    while not all(h.tree(c.dir).get(rel) == want for c in cs):
        if time.time() > deadline:
            h.fail("%s: %s" % (why, [h.tree(c.dir).get(rel) for c in cs]))
        time.sleep(0.1)


def test_kind():
    # The tree the server holds stays one every client can hold (chaos seeds 8, 556, 567,
    # 1003): no path lives below a file, and a file never covers paths below it.
    srv, port, fpr, cs = h.setup(2)
    a, b = cs
    h.write(os.path.join(a.dir, "seed.txt"), b"seed\n")
    settle(cs, "seed.txt", b"seed\n")
    b.stop()
    h.write(os.path.join(a.dir, "d", "in.txt"), b"in a's directory\n")  # d: a directory
    h.write(os.path.join(a.dir, "q"), b"a's file q\n")                    # q: a file
    h.write(os.path.join(a.dir, "r", "in.txt"), b"in a's directory r\n")  # r: a directory
    h.converge([a], expect=lambda t: "d/in.txt" in t and "q" in t and "r/in.txt" in t)
    time.sleep(1)
    h.write(os.path.join(b.dir, "d"), b"b's file d\n")
    h.write(os.path.join(b.dir, "q", "below.txt"), b"below b's directory q\n")
    h.write(os.path.join(b.dir, "r"), b"b's file r\n")
    b.start()
    r_con = wait_conflict(b, "r", 1)
    d_con = wait_conflict(b, "d", 1)
    q_con = wait_conflict(b, "q", 1)
    # b's file below its directory q is kept as a candidate: it cannot live below a's file.
    below = wait_conflict(b, "q/below.txt", 1)
    if below["server_version"] != 0:
        h.fail("q/below.txt never existed on the server: %s" % below)
    time.sleep(1)
    ta = h.tree(a.dir)
    if ta.get("q", ("?",))[0] != "file" or "q/below.txt" in ta or \
            ta.get("d", ("?",))[0] != "dir" or "d/in.txt" not in ta:
        h.fail("a's tree changed before any choice: %s" % sorted(ta))
    check_untouched(b, "d", b"b's file d\n")
    check_untouched(b, "q/below.txt", b"below b's directory q\n")
    nothing_lost(a, "q/below.txt", [b"below b's directory q\n"])
    nothing_lost(a, "d", [b"b's file d\n"])

    # A file over a directory that holds a path, and a path below a file: refused.
    choose_refused(b, "d", d_con["candidates"][0]["id"], "file over d/in.txt")
    choose_refused(a, "q/below.txt", below["candidates"][0]["id"], "below the file q")
    # Once q is b's directory, the path below it may be chosen.
    choose(a, "q", q_con["candidates"][0]["id"])
    choose(a, "q/below.txt", below["candidates"][0]["id"])
    # d and r still differ (their conflicts are open): q only here
    wait_path(cs, "q", h.tree(b.dir)["q"], "q did not become b's directory everywhere")
    wait_path(cs, "q/below.txt", ("file", 420, sha(b"below b's directory q\n")),
              "q/below.txt did not arrive everywhere")
    # Once d holds nothing, b's file may replace it.
    os.unlink(os.path.join(a.dir, "d", "in.txt"))
    h.converge([a], expect=lambda t: "d/in.txt" not in t)
    d_con = wait_conflict(a, "d", 1)
    deadline = time.time() + 30
    while True:
        r = a.qic("conflict", "choose", "--path", os.path.join(a.dir, "d"), "--candidate",
                  str(d_con["candidates"][0]["id"]), check=False)
        if r.returncode == 0:
            break
        if time.time() > deadline:  # the delete of d/in.txt is on its way meanwhile
            h.fail("choosing b's file d once d is empty: %s" % r.stdout)
        time.sleep(0.2)
        d_con = wait_conflict(a, "d", 1)
    wait_path(cs, "d", ("file", 420, sha(b"b's file d\n")), "b's file d did not arrive")
    # The server's directory r chosen over b's file: the file below it, which could not be
    # applied on b while r was a file there, arrives now (chaos seed 7017).
    choose(b, "r", 0)
    wait_path(cs, "r/in.txt", ("file", 420, sha(b"in a's directory r\n")),
              "r/in.txt did not reach b once r became the directory there")
    h.converge(cs)
    if r_con["candidates"][0]["kind"] != "file":
        h.fail("b's candidate for r is its file: %s" % r_con)
    for c in cs:
        if conflicts(c):
            h.fail("%s: conflicts left after the choices: %s" % (c.name, conflicts(c)))
    print("kind: refused while the tree forbids it, accepted once it allows it")


def main():
    try:
        {"two_way": test_two_way, "three_way": test_three_way,
         "modify_delete": test_modify_delete, "create_create": test_create_create,
         "candidate_deleted": test_candidate_deleted, "kind": test_kind,
         "dir_moved_out": test_dir_moved_out, "renamed_over": test_renamed_over}[TEST]()
        print("PASS", TEST)
    finally:
        h.stop_all()


if __name__ == "__main__":
    main()
