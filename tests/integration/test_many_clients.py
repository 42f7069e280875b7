#!/usr/bin/env python3
"""100 concurrent clients against a busy host (fixtures/busy_host.c: two
workers stirring a table under a shared mutex, 20 parked threads): each
client connects the way the CLI does (a blocking connect bounded by
SO_SNDTIMEO, so a full listen backlog makes it wait, not fail) and asks
`threads`, `status`, `threads`. Every one of the 300 replies must be
complete, valid JSON
of the right kind (a data reply, never an error), describing the host's 20
parked threads and no leaked, deadlocked or suspect thread (the host is
healthy). Meanwhile the host must stay responsive: its workers keep
counting and its main thread keeps printing its 100 ms OPS line (no gap of
seconds); afterwards it answers a ping, is alive, and printed nothing of ours.
Timing is not judged here beyond those generous bounds: scripts/bench-clients
measures the slowdown. LEAKWATCH_SETTLE_MS is set so high that no wait
becomes a candidate: each reply would otherwise also run a reachability scan
of the whole heap and every stack (~30 ms of CPU here, 300 times over),
which is the benchmark's business, not this test's."""
import json
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


def client(path, start, results, index):
    start.wait()
    problems = []
    for request in REQUESTS:
        try:
            data = cli_like_request(path, request, 60 * SLOW)
        except OSError as e:
            problems.append("%s: %s" % (request.strip().decode(), e))
            continue
        why = reply_problem(data, request)
        if why:
            problems.append("%s: %s" % (request.strip().decode(), why))
    results[index] = problems


def ops_lines(p):
    """(ops, ns) of every OPS line printed since the last call."""
    out = []
    for line in p.more_output():
        if line.startswith("OPS "):
            words = dict(w.split("=", 1) for w in line.split()[1:])
            out.append((int(words["n"]), int(words["ns"])))
    return out


def main():
    with Process([fixture("busy_host"), "2", str(PARKED)], env={"LEAKWATCH_SETTLE_MS": NEVER}) as p:
        p.read_line("READY", timeout=30)
        path = p.wait_socket()
        ping(path)
        ops_lines(p)

        results = [None] * CLIENTS
        start = threading.Barrier(CLIENTS + 1)
        threads = [threading.Thread(target=client, args=(path, start, results, i), daemon=True)
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        began = time.time()
        start.wait()
        samples = []
        for t in threads:
            while t.is_alive() and time.time() - began < 240 * SLOW:
                t.join(timeout=0.5)
                samples += ops_lines(p)
            check(not t.is_alive(), "a client was still waiting after %.0fs" % (time.time() - began))
        took = time.time() - began
        samples += ops_lines(p)

        failures = ["client %d: %s" % (i, why) for i, problems in enumerate(results) for why in problems or []]
        check(all(r is not None for r in results), "a client thread died without a result")
        check(not failures, "%d of %d replies were bad:\n  %s"
              % (len(failures), CLIENTS * len(REQUESTS), "\n  ".join(failures[:20])))

        check(len(samples) >= 2, "the host printed %d OPS lines during %.1fs of queries" % (len(samples), took))
        gaps = [(b[1] - a[1]) / 1e9 for a, b in zip(samples, samples[1:])]
        check(max(gaps) < MAX_OPS_GAP_S * SLOW,
              "the host's main thread went %.1fs without printing its 100 ms line" % max(gaps))
        check(samples[-1][0] > samples[0][0], "the host's workers made no progress during the queries")
        rate = (samples[-1][0] - samples[0][0]) / ((samples[-1][1] - samples[0][1]) / 1e9)
        print("%d clients x %d requests: %.1fs; host ops/s during it %.0f; longest OPS gap %.2fs"
              % (CLIENTS, len(REQUESTS), took, rate, max(gaps)))

        ping(path)
        check(p.alive(), "the host died")
        err = p.stderr_so_far()
        check(err == "", "the host's stderr: %r" % err[-1000:])


if __name__ == "__main__":
    run_test(main)
