#!/usr/bin/env python3
"""Move and delete benchmark (issue 6, S5 and S6): a real qis and two qic daemons on loopback
(the setup of bench/sync_bench.py).
  S5: a directory of 1,000 files of 4 KiB renamed on A; seconds until B has the new name with
      all 1,000 files and the old name is gone; bytes A sent and B received meanwhile.
  S6: the 1,000 files deleted on A (the directory removed); seconds until B has none left.
Usage: bench/move_bench.py BUILD_DIR [rounds]"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_bench as sb  # noqa: E402  (reads BUILD_DIR from sys.argv[1])

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def traffic(name):
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(sb.tmp, name, "config"),
               XDG_DATA_HOME=os.path.join(sb.tmp, name, "data"))
    out = subprocess.run([sb.QIC, "sync", "status", "--json"], env=env, check=True,
                         stdout=subprocess.PIPE).stdout
    st = json.loads(out)
    return st["traffic"]["udp_sent"], st["traffic"]["udp_received"]


def count(d):
    try:
        return len(os.listdir(d))
    except FileNotFoundError:
        return -1


def wait_for(cond, what, limit=120):
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > limit:
            raise SystemExit(what + ": timed out")
        time.sleep(0.002)
    return time.perf_counter() - t0


def one_round(a, b, r):
    old, new = "dir%d" % r, "moved%d" % r
    payload = os.urandom(4096)
    os.makedirs(os.path.join(a, old))
    for i in range(1000):
        with open(os.path.join(a, old, "f%04d" % i), "wb") as f:
            f.write(payload + b"%d" % i)
    wait_for(lambda: count(os.path.join(b, old)) == 1000, "create")
    time.sleep(1)  # let both sides settle (durability batch, watchers)
    a0, b0 = traffic("a"), traffic("b")
    t0 = time.perf_counter()
    os.rename(os.path.join(a, old), os.path.join(a, new))
    wait_for(lambda: count(os.path.join(b, new)) == 1000 and count(os.path.join(b, old)) == -1,
             "S5")
    s5 = time.perf_counter() - t0
    time.sleep(0.5)
    a1, b1 = traffic("a"), traffic("b")
    time.sleep(0.5)
    t0 = time.perf_counter()
    shutil.rmtree(os.path.join(a, new))
    wait_for(lambda: count(os.path.join(b, new)) <= 0, "S6")
    s6 = time.perf_counter() - t0
    print("round %d: S5 rename 1000 files seconds=%.3f (A sent %d B, B received %d B); "
          "S6 delete 1000 files seconds=%.3f" % (r, s5, a1[0] - a0[0], b1[1] - b0[1], s6))
    return s5, s6


def main():
    try:
        a, b = sb.start_all()
        res = [one_round(a, b, r) for r in range(ROUNDS)]
        print("S5 median=%.3f s  S6 median=%.3f s  (target <= 0.5 s each)" %
              (sorted(x[0] for x in res)[len(res) // 2], sorted(x[1] for x in res)[len(res) // 2]))
    finally:
        for p in sb.procs:
            p.send_signal(signal.SIGTERM)
        for p in sb.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not os.environ.get("QS_KEEP_TMP"):
            shutil.rmtree(sb.tmp, ignore_errors=True)
        else:
            print("kept", sb.tmp)


if __name__ == "__main__":
    main()
