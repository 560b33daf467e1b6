#!/usr/bin/env python3
"""Integration tests of qs-impair: a UDP echo server runs on loopback behind the proxy and
a client checks what comes back (which datagrams, how often, in what order, with which
bytes) against the impairments asked for and against the counters the proxy prints on
SIGTERM. Every process runs on 127.0.0.1 or ::1 with free ports and is always stopped.

Usage: impair_test.py PATH_TO_QS_IMPAIR args|proxy"""
import collections
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

PROXY = ""
BUF = 4 * 1024 * 1024
QUIET_S = 0.5  # a client stops waiting after this long without a datagram


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def payload(seq, size):
    """size bytes made of 8-byte groups (seq, group index), so a datagram with a byte or
    two flipped can still be told apart by majority vote over its groups."""
    groups = (size + 7) // 8
    data = b"".join(struct.pack("!II", seq, i) for i in range(groups))
    return data[:size]


def identify(data):
    votes = collections.Counter(struct.unpack_from("!I", data, off)[0]
                                for off in range(0, len(data) - 7, 8))
    return votes.most_common(1)[0][0]


def udp_socket(family):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    return s


class Echo:
    """A UDP echo server in a thread; remembers every datagram it received."""

    def __init__(self, family=socket.AF_INET, port=0):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
        self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                continue
            data, addr = self.sock.recvfrom(65536)
            self.received.append(data)
            self.sock.sendto(data, addr)

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def addr_text(family, port):
    return f"[::1]:{port}" if family == socket.AF_INET6 else f"127.0.0.1:{port}"


class Proxy:
    """qs-impair as a child process. stop() sends a signal, checks a clean exit and
    returns the counters it printed, after checking that they add up."""

    def __init__(self, upstream, *args, listen="127.0.0.1:0", read_port=True):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([PROXY, "--listen", listen, "--upstream", upstream,
                                      *args], stdout=subprocess.PIPE, stderr=self.err,
                                     text=True)
        self.port = None
        if read_port:
            try:
                line = self.first_line()
                check(line.startswith("listening "), f"first line {line!r}")
                self.port = int(line.rsplit(":", 1)[1])
            except BaseException:
                self.kill()
                raise

    def first_line(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        check(ready, "qs-impair printed nothing within 10 s")
        return self.proc.stdout.readline().strip()

    def stderr_text(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("qs-impair did not exit within 10 s of a signal")
        check(self.proc.returncode == 0,
              f"qs-impair exited {self.proc.returncode}: {self.stderr_text()}")
        stats = parse_stats(out)
        for d in ("c2s", "s2c"):
            st = stats[d]
            # Every datagram read or made is sent, dropped on purpose, or accounted for.
            check(st["received"] + st["duplicated"] ==
                  st["forwarded"] + st["dropped"] + st["overflow"] + st["send_errors"] +
                  st["stale"] + st["pending"], f"{d} counters do not add up: {st}")
        return stats

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def parse_stats(out):
    stats = {}
    for line in out.splitlines():
        words = line.split()
        if not words or words[0] != "stats":
            continue
        kv = dict(w.split("=", 1) for w in words[1:])
        key = kv.pop("dir", "sessions")
        stats[key] = {k: int(v) for k, v in kv.items()}
    check(set(stats) == {"c2s", "s2c", "sessions"}, f"stats lines missing in {out!r}")
    return stats


def receive_until_quiet(sock, quiet=QUIET_S):
    got = []
    while True:
        ready, _, _ = select.select([sock], [], [], quiet)
        if not ready:
            return got
        got.append(sock.recv(65536))


def receive_ready(sock):
    got = []
    while select.select([sock], [], [], 0)[0]:
        got.append(sock.recv(65536))
    return got


def exchange(sock, dest, datagrams, burst=32):
    """Sends datagrams to dest in paced bursts and returns everything that came back."""
    got = []
    for i in range(0, len(datagrams), burst):
        for d in datagrams[i:i + burst]:
            sock.sendto(d, dest)
        time.sleep(0.002)
        got += receive_ready(sock)
    return got + receive_until_quiet(sock)


class Setup:
    """Echo server + proxy + client socket, cleaned up by the with statement."""

    def __init__(self, *args, family=socket.AF_INET, up_family=None):
        self.echo = Echo(up_family or family)
        self.proxy = None
        self.client = None
        try:
            self.proxy = Proxy(addr_text(up_family or family, self.echo.port), *args,
                               listen=addr_text(family, 0))
            self.client = udp_socket(family)
        except BaseException:
            self.__exit__()
            raise
        self.dest = ("::1" if family == socket.AF_INET6 else "127.0.0.1", self.proxy.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.client:
            self.client.close()
        if self.proxy:
            self.proxy.kill()
        self.echo.close()


def near(value, expected, tolerance, what):
    check(abs(value - expected) <= tolerance,
          f"{what}: {value} is not within {tolerance} of {expected}")


# ---- proxy behaviour ----

def clean_sizes(n):
    """Sizes from 0 to 65,000 bytes, few large ones: everything a test sends fits in the
    socket buffers (8 MiB) at once, so a busy machine cannot make the kernel drop any."""
    sizes = [0, 1, 7, 8, 100, 500, 1200, 1452]
    special = {25: 4096, 75: 9000}
    out = []
    for i in range(n):
        size = special.get(i % 100, sizes[i % len(sizes)])
        out.append(65000 if i % 250 == 125 else size)
    return out


def same_stream(got, sent, what):
    """Checks got == sent and says how they differ if not."""
    if got == sent:
        return
    missing = sum((collections.Counter(sent) - collections.Counter(got)).values())
    extra = sum((collections.Counter(got) - collections.Counter(sent)).values())
    first = next((i for i, (a, b) in enumerate(zip(got, sent)) if a != b), None)
    raise Failure(f"{what}: {len(got)} of {len(sent)} came back, {missing} missing, "
                  f"{extra} unexpected, first difference at {first}")


def run_clean(family, up_family=None):
    n = 1000
    sent = [payload(i, size) for i, size in enumerate(clean_sizes(n))]
    with Setup(family=family, up_family=up_family) as s:
        got = exchange(s.client, s.dest, sent)
        stats = s.proxy.stop()
    same_stream(got, sent, "without impairments")
    for d in ("c2s", "s2c"):
        st = stats[d]
        check(st["received"] == n and st["forwarded"] == n, f"{d} counters {st}")
        others = {k: v for k, v in st.items() if k not in ("received", "forwarded")}
        check(not any(others.values()), f"{d} impairment counters not zero: {st}")
    check(stats["sessions"]["sessions_opened"] == 1, f"sessions {stats['sessions']}")


def test_clean_ipv4():
    run_clean(socket.AF_INET)


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_clean_ipv6():
    if not ipv6_available():
        print("  skipped: no ::1 on this machine")
        return
    run_clean(socket.AF_INET6)
    run_clean(socket.AF_INET, socket.AF_INET6)


def run_drop(seed):
    n = 2000
    sent = [payload(i, 64) for i in range(n)]
    with Setup("--seed", str(seed), "--drop", "0.3") as s:
        got = exchange(s.client, s.dest, sent)
        stats = s.proxy.stop()
        echoed = list(s.echo.received)
    return n, sent, got, echoed, stats


def test_drop():
    n, sent, got, echoed, stats = run_drop(7)
    seqs = [identify(d) for d in got]
    check(all(d == sent[q] for d, q in zip(got, seqs)), "a datagram changed under --drop")
    check(len(set(seqs)) == len(seqs), "a datagram arrived twice under --drop")
    echoed_seqs = {identify(d) for d in echoed}
    check(set(seqs) <= echoed_seqs, "a reply arrived for a request that never reached echo")
    # 30 % lost each way: 70 % reach the echo server, 49 % make the round trip.
    near(len(echoed) / n, 0.70, 0.05, "fraction reaching the server")
    near(len(got) / n, 0.49, 0.05, "fraction making the round trip")
    check(stats["c2s"]["forwarded"] == len(echoed), f"c2s forwarded vs echo {stats}")
    check(stats["s2c"]["received"] == len(echoed), f"s2c received vs echo {stats}")
    check(stats["s2c"]["forwarded"] == len(got), f"s2c forwarded vs client {stats}")
    check(stats["c2s"]["dropped"] + stats["c2s"]["forwarded"] == n, f"c2s {stats}")
    # The same seed drops the same datagrams; another seed drops others.
    _, _, got_again, _, _ = run_drop(7)
    check([identify(d) for d in got_again] == seqs, "seed 7 is not deterministic")
    _, _, got_other, _, _ = run_drop(8)
    check([identify(d) for d in got_other] != seqs, "seeds 7 and 8 dropped the same")


def test_dup():
    n = 2000
    sent = [payload(i, 64) for i in range(n)]
    with Setup("--seed", "3", "--dup", "0.1") as s:
        got = exchange(s.client, s.dest, sent)
        stats = s.proxy.stop()
    counts = collections.Counter(identify(d) for d in got)
    check(all(d == sent[identify(d)] for d in got), "a duplicate differs from its original")
    check(set(counts) == set(range(n)), "a datagram was lost under --dup alone")
    check(max(counts.values()) <= 4, "more than one copy per direction")
    extra = len(got) - n
    check(extra > 0, "--dup 0.1 produced no duplicates")
    # Each direction doubles 10 %: 1.1 * 1.1 = 1.21 copies per datagram.
    near(len(got) / n, 1.21, 0.05, "copies per datagram")
    check(stats["c2s"]["forwarded"] == n + stats["c2s"]["duplicated"], f"{stats}")
    check(stats["s2c"]["forwarded"] == len(got), f"{stats}")
    near(stats["c2s"]["duplicated"] / n, 0.1, 0.03, "c2s duplicated fraction")


def test_corrupt():
    n = 2000
    sent = [payload(i, 64) for i in range(n)]
    with Setup("--seed", "5", "--corrupt", "0.2") as s:
        got = exchange(s.client, s.dest, sent)
        stats = s.proxy.stop()
    check(len(got) == n, f"{len(got)} of {n} came back under --corrupt alone")
    changed = 0
    seen = set()
    for d in got:
        seq = identify(d)
        seen.add(seq)
        check(len(d) == 64, "corruption changed a length")
        diff = sum(1 for a, b in zip(d, sent[seq]) if a != b)
        # One byte at most per direction.
        check(diff <= 2, f"datagram {seq} has {diff} changed bytes")
        changed += diff > 0
    check(seen == set(range(n)), "not every datagram came back")
    check(changed > 0, "--corrupt 0.2 changed no bytes")
    # 1 - 0.8 * 0.8 = 36 % of round trips see at least one flip.
    near(changed / n, 0.36, 0.05, "fraction of corrupted round trips")
    total = stats["c2s"]["corrupted"] + stats["s2c"]["corrupted"]
    check(changed <= total, f"{changed} corrupted seen, {total} counted")


def test_reorder():
    n = 1000
    sent = [payload(i, 64) for i in range(n)]
    with Setup("--seed", "11", "--reorder-c2s", "0.1", "--reorder-gap", "3") as s:
        got = exchange(s.client, s.dest, sent, burst=8)
        stats = s.proxy.stop()
    seqs = [identify(d) for d in got]
    check(sorted(seqs) == list(range(n)), "reordering lost or duplicated datagrams")
    check(all(d == sent[q] for d, q in zip(got, seqs)), "reordering changed bytes")
    passed_by = {}
    arrived = set()
    for q in seqs:
        passed_by[q] = sum(1 for later in arrived if later > q)
        arrived.add(q)
    late = {q for q, k in passed_by.items() if k > 0}
    held = stats["c2s"]["reordered"]
    check(held > 0 and late, "--reorder 0.1 reordered nothing")
    # Every held datagram is passed by the later ones, except a held last datagram, and
    # by no more than --reorder-gap of them: it goes out after the third one.
    check(len(late) in (held, held - 1), f"{len(late)} arrived late, {held} were held")
    check(max(passed_by.values()) <= 3, f"a datagram was passed by {max(passed_by.values())}")
    near(held / n, 0.1, 0.03, "held fraction")
    check(stats["s2c"]["reordered"] == 0, "s2c reordered though only c2s was asked")
    # With a gap nobody reaches, the timer releases held datagrams (after 20 ms).
    sent = sent[:200]
    with Setup("--seed", "11", "--reorder", "0.1", "--reorder-gap", "1000",
               "--reorder-ms", "20") as s:
        got = exchange(s.client, s.dest, sent, burst=8)
        stats = s.proxy.stop()
    check(sorted(got) == sorted(sent), "the reorder timer lost datagrams")
    check(got != sent and stats["c2s"]["reordered"] > 0, "nothing was held by the timer")


def test_delay_keeps_order():
    """A fixed delay queues every datagram; the queue keeps their order."""
    n = 1000
    sent = [payload(i, size) for i, size in enumerate(clean_sizes(n))]
    with Setup("--delay-ms", "5") as s:
        got = exchange(s.client, s.dest, sent)
        stats = s.proxy.stop()
    same_stream(got, sent, "with a fixed delay")
    check(stats["c2s"]["forwarded"] == n and stats["s2c"]["forwarded"] == n, f"{stats}")


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def ping_times(s, count):
    rtts = []
    for i in range(count):
        start = time.monotonic()
        s.client.sendto(payload(i, 32), s.dest)
        ready, _, _ = select.select([s.client], [], [], 5)
        check(ready, "no reply within 5 s")
        check(identify(s.client.recv(65536)) == i, "a reply to another ping")
        rtts.append(time.monotonic() - start)
    return rtts


def test_delay():
    with Setup("--delay-ms", "40") as s:
        rtts = ping_times(s, 10)
        s.proxy.stop()
    # The lower bound is exact; the upper one (on the median) leaves room for a busy machine.
    check(min(rtts) >= 0.080, f"round trip {min(rtts):.4f} s under 2 x 40 ms")
    check(median(rtts) < 0.080 + 0.040, f"round trip {median(rtts):.4f} s far over 2 x 40 ms")
    with Setup("--seed", "2", "--delay-ms", "20", "--jitter-ms", "10") as s:
        rtts = ping_times(s, 30)
        s.proxy.stop()
    check(min(rtts) >= 0.020, f"round trip {min(rtts):.4f} s under 2 x (20 - 10) ms")
    check(median(rtts) < 0.060 + 0.040, f"round trip {median(rtts):.4f} s far over 2 x 30 ms")
    check(max(rtts) - min(rtts) > 0.005, "jitter 10 ms barely changed the round trips")


def test_rate():
    n, size = 200, 1000
    sent = [payload(i, size) for i in range(n)]
    # 8000 kbit/s is 1 MB/s: 200 kB take 0.2 s to cross the capped direction.
    with Setup("--rate-kbit-c2s", "8000") as s:
        start = time.monotonic()
        for d in sent:
            s.client.sendto(d, s.dest)
        got = []
        last = start
        while len(got) < n:
            ready, _, _ = select.select([s.client], [], [], 2)
            check(ready, f"only {len(got)} of {n} came back under --rate-kbit")
            got.append(s.client.recv(65536))
            last = time.monotonic()
        s.proxy.stop()
    same_stream(got, sent, "with a rate cap")
    elapsed = last - start
    check(elapsed >= 0.19, f"200 kB at 1 MB/s took only {elapsed:.3f} s")
    check(elapsed < 0.2 + 0.3, f"200 kB at 1 MB/s took {elapsed:.3f} s")


def test_queue_bound():
    sent = [payload(i, 64) for i in range(50)]
    with Setup("--delay-ms", "300", "--queue-max", "10") as s:
        for d in sent:
            s.client.sendto(d, s.dest)
        got = receive_until_quiet(s.client, 1.0)
        stats = s.proxy.stop()
    check(got == sent[:10], f"{len(got)} came back; expected the first 10 of 50")
    check(stats["c2s"]["overflow"] == 40, f"overflow not counted: {stats['c2s']}")


def test_clients():
    echo = Echo()
    proxy = Proxy(addr_text(socket.AF_INET, echo.port))
    clients = [udp_socket(socket.AF_INET) for _ in range(3)]
    try:
        dest = ("127.0.0.1", proxy.port)
        sent = {c: [] for c in clients}
        for i in range(200):
            for k, c in enumerate(clients):
                d = payload(k * 1000 + i, 48)
                sent[c].append(d)
                c.sendto(d, dest)
            if i % 16 == 0:
                time.sleep(0.002)
        for c in clients:
            got = receive_until_quiet(c)
            check(got == sent[c], "a client got replies that were not its own, or lost some")
        stats = proxy.stop()
        check(stats["sessions"]["sessions_opened"] == 3, f"{stats['sessions']}")
    finally:
        for c in clients:
            c.close()
        proxy.kill()
        echo.close()


def test_eviction():
    echo = Echo()
    proxy = Proxy(addr_text(socket.AF_INET, echo.port), "--max-clients", "2")
    clients = [udp_socket(socket.AF_INET) for _ in range(3)]
    try:
        dest = ("127.0.0.1", proxy.port)
        # a, b, c, a: c evicts a (the idlest), then a comes back and evicts b.
        for k in (0, 1, 2, 0):
            d = payload(k, 32)
            clients[k].sendto(d, dest)
            ready, _, _ = select.select([clients[k]], [], [], 5)
            check(ready, f"client {k} got no reply")
            check(clients[k].recv(65536) == d, f"client {k} got another client's reply")
        stats = proxy.stop()
        check(stats["sessions"] == {"sessions_opened": 4, "sessions_evicted": 2},
              f"{stats['sessions']}")
    finally:
        for c in clients:
            c.close()
        proxy.kill()
        echo.close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_upstream_down_then_up():
    """Datagrams to a server that is not there yet fail quietly; the proxy keeps going."""
    port = free_udp_port()
    proxy = Proxy(addr_text(socket.AF_INET, port))
    client = udp_socket(socket.AF_INET)
    echo = None
    try:
        dest = ("127.0.0.1", proxy.port)
        for i in range(20):
            client.sendto(payload(i, 32), dest)
            time.sleep(0.002)
        check(receive_until_quiet(client, 0.2) == [], "a reply from nowhere")
        echo = Echo(port=port)
        d = payload(99, 32)
        client.sendto(d, dest)
        ready, _, _ = select.select([client], [], [], 5)
        check(ready and client.recv(65536) == d, "no reply once the server is up")
        stats = proxy.stop()
        check(stats["c2s"]["received"] == 21, f"{stats['c2s']}")
    finally:
        client.close()
        proxy.kill()
        if echo:
            echo.close()


def test_port_file_and_signals():
    echo = Echo()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "port")
        proxy = Proxy(addr_text(socket.AF_INET, echo.port), "--port-file", path,
                      read_port=False)
        client = udp_socket(socket.AF_INET)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(path):
                check(time.monotonic() < deadline, "no port file within 10 s")
                time.sleep(0.01)
            with open(path, encoding="ascii") as f:
                port = int(f.read())
            line = proxy.first_line()
            check(line == f"listening 127.0.0.1:{port}", f"port file {port}, stdout {line!r}")
            d = payload(1, 40)
            client.sendto(d, ("127.0.0.1", port))
            ready, _, _ = select.select([client], [], [], 5)
            check(ready and client.recv(65536) == d, "no echo through the port-file port")
            # SIGUSR1 prints the counters and the proxy goes on.
            proxy.proc.send_signal(signal.SIGUSR1)
            line = proxy.first_line()
            check(line.startswith("stats dir=c2s received=1 forwarded=1"), line)
            client.sendto(d, ("127.0.0.1", port))
            ready, _, _ = select.select([client], [], [], 5)
            check(ready and client.recv(65536) == d, "no echo after SIGUSR1")
            stats = proxy.stop(signal.SIGINT)
            check(stats["c2s"]["forwarded"] == 2 and stats["s2c"]["forwarded"] == 2,
                  f"{stats}")
        finally:
            client.close()
            proxy.kill()
            echo.close()


# ---- arguments ----

BAD_ARGS = [
    (["--upstream", "127.0.0.1:9", "--drop", "1.5"], "--drop: \"1.5\" is greater than 1"),
    (["--upstream", "127.0.0.1:9", "--drop", "abc"], "--drop: \"abc\" is not a probability"),
    (["--upstream", "127.0.0.1:9", "--drop=-0.1"], "is not a probability"),
    (["--upstream", "127.0.0.1:9", "--drop", "0.1234567891"], "at most 9 decimals"),
    (["--upstream", "127.0.0.1:9", "--drop", "1e-3"], "is not a probability"),
    (["--upstream", "127.0.0.1:9", "--drop", ".5"], "is not a probability"),
    (["--upstream", "127.0.0.1:9", "--drop", "0."], "is not a probability"),
    (["--upstream", "127.0.0.1:9", "--drop", ""], "is not a probability"),
    (["--upstream", "127.0.0.1:9", "--dup-s2c", " 0.1"], "--dup-s2c: \" 0.1\""),
    (["--upstream", "127.0.0.1:9", "--corrupt", "2"], "greater than 1"),
    (["--upstream", "127.0.0.1:9", "--drop"], "option --drop needs a value"),
    (["--upstream", "127.0.0.1:9", "--listen", "nonsense"], "--listen: \"nonsense\" is not an address"),
    (["--upstream", "127.0.0.1:9", "--listen", "127.0.0.1"], "is not an address"),
    (["--upstream", "127.0.0.1:9", "--listen", "[::1"], "is not an address"),
    (["--upstream", "127.0.0.1:9", "--listen", "::1:5"], "not a numeric IPv4 address"),
    (["--upstream", "127.0.0.1:9", "--listen", "localhost:5"], "not a numeric IPv4 address"),
    (["--upstream", "127.0.0.1:9", "--listen", "127.0.0.1:65536"], "port \"65536\""),
    (["--upstream", "127.0.0.1:0"], "--upstream: port \"0\" is not a number in [1, 65535]"),
    (["--upstream", "[::1]:-1"], "port \"-1\""),
    (["--upstream", "300.1.1.1:5"], "not a numeric IPv4 address"),
    (["--drop", "0.1"], "--upstream is required"),
    ([], "--upstream is required"),
    (["--upstream", "127.0.0.1:9", "--seed", "x"], "--seed: \"x\" is not a whole number"),
    (["--upstream", "127.0.0.1:9", "--seed", "18446744073709551616"], "--seed"),
    (["--upstream", "127.0.0.1:9", "--delay-ms", "-5"], "--delay-ms: \"-5\""),
    (["--upstream", "127.0.0.1:9", "--delay-ms", "60001"], "[0, 60000]"),
    (["--upstream", "127.0.0.1:9", "--reorder-gap", "0"], "[1, 1000]"),
    (["--upstream", "127.0.0.1:9", "--queue-max", "0"], "--queue-max"),
    (["--upstream", "127.0.0.1:9", "--max-clients", "5000"], "--max-clients"),
    (["--upstream", "127.0.0.1:9", "--port-file", ""], "--port-file: the path is empty"),
    (["--upstream", "127.0.0.1:9", "--log-level", "loud"], "--log-level"),
    (["--upstream", "127.0.0.1:9", "--drop-x2y", "0.1"], "unknown option --drop-x2y"),
    (["--upstream", "127.0.0.1:9", "--frobnicate"], "unknown option --frobnicate"),
    (["--upstream", "127.0.0.1:9", "extra"], "unexpected argument \"extra\""),
]

GOOD_ARGS = [
    ["--drop", "0"], ["--drop", "1"], ["--drop", "1.000000000"], ["--drop", "0.000000001"],
    ["--drop-c2s=0.5", "--drop-s2c", "0.25"], ["--seed", "18446744073709551615"],
    ["--listen", "[::1]:0"], ["--reorder", "0.05", "--reorder-gap", "1000", "--reorder-ms", "1"],
    ["--delay-ms", "60000", "--jitter-ms", "60000", "--rate-kbit", "100000000"],
    ["--queue-max", "1", "--max-clients", "1024", "--log-level", "debug"],
]


def test_bad_args():
    for args, message in BAD_ARGS:
        r = subprocess.run([PROXY, *args], capture_output=True, text=True, timeout=10)
        check(r.returncode == 2, f"{args}: exit {r.returncode}, expected 2")
        check(r.stdout == "", f"{args}: printed {r.stdout!r} on stdout")
        lines = r.stderr.splitlines()
        check(len(lines) == 1 and lines[0].startswith("qs-impair: "),
              f"{args}: stderr {r.stderr!r}")
        check(message in lines[0], f"{args}: {lines[0]!r} does not say {message!r}")


def test_good_args():
    for args in GOOD_ARGS:
        if "[::1]:0" in args and not ipv6_available():
            continue
        proxy = Proxy("127.0.0.1:9", *args, listen=args[1] if args[0] == "--listen"
                      else "127.0.0.1:0")
        try:
            proxy.stop()
        finally:
            proxy.kill()
    r = subprocess.run([PROXY, "--help"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith("Usage: qs-impair"), "--help")


SUITES = {
    "args": [test_bad_args, test_good_args],
    "proxy": [test_clean_ipv4, test_clean_ipv6, test_drop, test_dup, test_corrupt,
              test_reorder, test_delay, test_delay_keeps_order, test_rate, test_queue_bound, test_clients,
              test_eviction, test_upstream_down_then_up, test_port_file_and_signals],
}


def main():
    global PROXY
    if len(sys.argv) < 3 or sys.argv[2] not in SUITES:
        print(__doc__, file=sys.stderr)
        return 2
    PROXY = sys.argv[1]
    only = sys.argv[3:]
    failed = 0
    for test in SUITES[sys.argv[2]]:
        if only and test.__name__ not in only:
            continue
        start = time.monotonic()
        try:
            test()
            print(f"ok   {test.__name__} ({time.monotonic() - start:.2f} s)", flush=True)
        except Exception as e:  # pylint: disable=broad-except
            failed += 1
            print(f"FAIL {test.__name__}: {type(e).__name__}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
