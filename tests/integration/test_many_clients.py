#!/usr/bin/env python3
"""100 concurrent clients against a busy host (fixtures/busy_host.c: two
workers stirring a table under a shared mutex, 20 parked threads): each
client connects the way the CLI does (a blocking connect bounded by
SO_SNDTIMEO, so a full listen backlog makes it wait, not fail) and asks
`threads`, `status`, `threads`, over and over until the loaded window
(WINDOW_S, at least 2 s) has passed. Every reply must be complete, valid
JSON of the right kind (a data reply, never an error), describing the
host's 20 parked threads and no leaked, deadlocked or suspect thread (the
host is healthy).

Meanwhile the host must stay responsive: its main thread keeps printing its
100 ms OPS line (no gap of seconds), and its workers make progress in
proportion to the CPU time they were given. That is measured, not assumed:
a quiet window of the same length before the clients start gives the ops
per CPU-second the workers achieve alone (their CPU time from
/proc/PID/task/TID/schedstat), and in the loaded window they must get CPU
and achieve at least a quarter of that rate per CPU-second. (A window as
short as the replies are fast once measured whether the scheduler gave the
workers any CPU at all, not whether leakwatch blocked them.) Afterwards the
host answers a ping, is alive, and printed nothing of ours. Timing beyond
these generous bounds is scripts/bench-clients' business.
LEAKWATCH_SETTLE_MS is set so high that no wait becomes a candidate: each
reply would otherwise also run a reachability scan of the whole heap and
every stack (~30 ms of CPU here, many times over), which is the benchmark's
business, not this test's."""
import json
import os
import socket
import struct
import threading
import time
from lwtest import SLOW, Process, check, fixture, ping, run_test

CLIENTS = 100
PARKED = 20
REQUESTS = (b"threads\n", b"status\n", b"threads\n")
NEVER = "86400000"   # LEAKWATCH_SETTLE_MS no wait reaches: no candidate, no reachability scan
MAX_OPS_GAP_S = 3.0   # the host's 100 ms OPS line, late by seconds: the host stalled
WINDOW_S = 2.5        # each window, quiet and loaded: long enough for the scheduler to be fair
MIN_WORKER_CPU_S = 0.05   # the CPU the workers must get in the loaded window (of 2 x 2.5 s)
MIN_RATE_RATIO = 0.25     # loaded ops per worker CPU-second, at least this part of the quiet rate


def cli_like_request(path, data, timeout):
    """One request on a fresh blocking socket whose connect, sends and
    receives are bounded by SO_SNDTIMEO/SO_RCVTIMEO, as cli/client.c does;
    everything answered until the server closes."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        s.connect(path)
        s.sendall(data)
        out = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                return b"".join(out)
            out.append(chunk)
    finally:
        s.close()


def reply_problem(data, request):
    """Why a reply to request is not a complete, valid data reply; None if it is."""
    if not data.endswith(b"\n") or data.count(b"\n") != 1:
        return "not exactly one complete line (%d bytes)" % len(data)
    try:
        obj = json.loads(data)
    except ValueError as e:
        return "not JSON (%s)" % e
    if obj.get("version") != 1 or "error" in obj:
        return "not a versioned data reply: %r" % data[:300]
    summary = obj.get("summary") or {}
    if summary.get("parked", 0) < PARKED:
        return "only %r parked threads in the summary" % summary.get("parked")
    bad = {k: summary.get(k) for k in ("leaked", "deadlocked", "suspect") if summary.get(k)}
    if bad:
        return "a healthy host reported as %r" % bad
    if request.startswith(b"threads"):
        if not isinstance(obj.get("threads"), list) or len(obj["threads"]) < PARKED + 2:
            return "a threads reply without the host's threads"
    elif "threads" in obj:
        return "a status reply with threads"
    return None


def client(path, start, until, results, index):
    """The requests, again and again until `until` (a time.monotonic()
    value) has passed, at least once; (replies, problems)."""
    start.wait()
    problems, replies = [], 0
    while True:
        for request in REQUESTS:
            try:
                data = cli_like_request(path, request, 60 * SLOW)
            except OSError as e:
                problems.append("%s: %s" % (request.strip().decode(), e))
                continue
            replies += 1
            why = reply_problem(data, request)
            if why:
                problems.append("%s: %s" % (request.strip().decode(), why))
        if time.monotonic() >= until[0]:
            break
    results[index] = (replies, problems)


def ops_lines(p):
    """(ops, ns) of every OPS line printed since the last call."""
    out = []
    for line in p.more_output():
        if line.startswith("OPS "):
            words = dict(w.split("=", 1) for w in line.split()[1:])
            out.append((int(words["n"]), int(words["ns"])))
    return out


def worker_cpu_s(pid):
    """CPU seconds used so far by the host's threads other than main and
    leakwatch's own (the workers; the parked threads use none), from
    /proc/PID/task/TID/schedstat (its first field: ns on a CPU)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue   # a thread that ended meanwhile
        if int(tid) != pid and comm != "leakwatch":
            total += ns
    return total / 1e9


class Window:
    """The host's work (from its OPS lines) and its workers' CPU time over
    one window."""

    def __init__(self, p):
        self.p, self.cpu0, self.samples = p, worker_cpu_s(p.pid), []

    def sample(self):
        self.samples += ops_lines(self.p)

    def close(self):
        self.sample()
        self.cpu = worker_cpu_s(self.p.pid) - self.cpu0
        check(len(self.samples) >= 2, "the host printed %d OPS lines in a window" % len(self.samples))
        first, last = self.samples[0], self.samples[-1]
        self.ops = last[0] - first[0]
        self.seconds = (last[1] - first[1]) / 1e9
        self.gaps = [(b[1] - a[1]) / 1e9 for a, b in zip(self.samples, self.samples[1:])]
        return self

    def per_cpu_s(self):
        return self.ops / self.cpu if self.cpu > 0 else 0.0


def quiet_window(p):
    ops_lines(p)
    w = Window(p)
    end = time.monotonic() + WINDOW_S
    while time.monotonic() < end:
        time.sleep(0.25)
        w.sample()
    return w.close()


def loaded_window(p, path):
    """CLIENTS clients asking until WINDOW_S has passed; the window and the
    clients' results."""
    results = [None] * CLIENTS
    start = threading.Barrier(CLIENTS + 1)
    until = [float("inf")]
    threads = [threading.Thread(target=client, args=(path, start, until, results, i), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    ops_lines(p)
    w = Window(p)
    began = time.monotonic()
    until[0] = began + WINDOW_S
    start.wait()
    for t in threads:
        while t.is_alive() and time.monotonic() - began < 240 * SLOW:
            t.join(timeout=0.25)
            w.sample()
        check(not t.is_alive(), "a client was still waiting after %.0fs" % (time.monotonic() - began))
    return w.close(), results, time.monotonic() - began


def main():
    with Process([fixture("busy_host"), "2", str(PARKED)], env={"LEAKWATCH_SETTLE_MS": NEVER}) as p:
        p.read_line("READY", timeout=30)
        path = p.wait_socket()
        ping(path)

        quiet = quiet_window(p)
        loaded, results, took = loaded_window(p, path)

        check(all(r is not None for r in results), "a client thread died without a result")
        failures = ["client %d: %s" % (i, why) for i, (_, problems) in enumerate(results) for why in problems]
        replies = sum(n for n, _ in results)
        check(not failures, "%d of %d replies were bad:\n  %s" % (len(failures), replies, "\n  ".join(failures[:20])))

        check(max(loaded.gaps) < MAX_OPS_GAP_S * SLOW,
              "the host's main thread went %.1fs without printing its 100 ms line" % max(loaded.gaps))
        check(quiet.ops > 0 and quiet.cpu > 0, "the host's workers did no work even without clients "
              "(%d ops, %.3fs of CPU in %.1fs)" % (quiet.ops, quiet.cpu, quiet.seconds))
        check(loaded.cpu >= MIN_WORKER_CPU_S, "the host's workers got %.3fs of CPU in %.1fs of queries"
              % (loaded.cpu, loaded.seconds))
        check(loaded.ops > 0, "the host's workers made no progress in %.1fs of queries, with %.3fs of CPU"
              % (loaded.seconds, loaded.cpu))
        ratio = loaded.per_cpu_s() / quiet.per_cpu_s()
        check(ratio >= MIN_RATE_RATIO, "the host's workers did %.0f ops per CPU-second during the queries, %.0f "
              "without (%.2f of it)" % (loaded.per_cpu_s(), quiet.per_cpu_s(), ratio))
        print("%d clients, %d replies in %.1fs; workers quiet: %d ops on %.2f CPU-s; during the queries: %d ops on "
              "%.2f CPU-s (%.2f of the quiet rate per CPU-second); longest OPS gap %.2fs"
              % (CLIENTS, replies, took, quiet.ops, quiet.cpu, loaded.ops, loaded.cpu, ratio, max(loaded.gaps)))

        ping(path)
        check(p.alive(), "the host died")
        err = p.stderr_so_far()
        check(err == "", "the host's stderr: %r" % err[-1000:])


if __name__ == "__main__":
    run_test(main)
