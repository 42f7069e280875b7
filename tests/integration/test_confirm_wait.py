#!/usr/bin/env python3
"""A question that waits for a confirming scan holds no other client up,
and gets the confirmed answer (issue 15, item 7). A `threads` or `status`
request whose scan finds an object unreachable, with the confirming scan
due within 1.2 s, waits for that scan; the server once slept through the
wait, every other client queued behind it. Now the waiting question is a
connection of its own.

fixtures/reachfix fetch_cond leaks a worker whose condvar becomes
unreachable. From READY on, `status` is asked every 100 ms and `ping`
every 50 ms, each on a fresh connection of its own thread, for a few
seconds past the moment the leak is proven. Some status request must have
waited (taken WAIT_S or more); each such answer must prove the leak (the
question that waited got the confirmed answer), and every ping sent in the
first half of its wait must have been answered within half of it (behind
a sleeping server, it would have waited for the rest). Not in a sanitizer
pass: rule 3 proves nothing on ASan's heap, so no question waits there."""
import json
import socket
import sys
import threading
import time
from lwtest import SLOW, Process, check, fixture, run_test, sanitized

WAIT_S = 0.6        # a status answer this slow waited for its confirming scan
WATCH_S = 8.0       # how long the questions go on (settle, a tick, the confirmation, a margin)


def timed(path, data, results):
    start = time.monotonic()
    out = b""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20 * SLOW)
    try:
        s.connect(path)
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError as e:
        out = str(e).encode()
    finally:
        s.close()
    results.append((start, time.monotonic(), out))


def ask_repeatedly(path, data, every, until, results, threads):
    while time.monotonic() < until:
        t = threading.Thread(target=timed, args=(path, data, results), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(every)


def main():
    if sanitized():
        print("SKIP: rule 3 proves nothing on ASan's heap: no question waits for a confirming scan")
        sys.exit(77)
    with Process([fixture("reachfix"), "fetch_cond"]) as p:
        p.read_line("READY")
        path = p.wait_socket()
        statuses, pings, threads = [], [], []
        until = time.monotonic() + WATCH_S * SLOW
        askers = [threading.Thread(target=ask_repeatedly, args=(path, b"status\n", 0.1, until, statuses, threads)),
                  threading.Thread(target=ask_repeatedly, args=(path, b"ping\n", 0.05, until, pings, threads))]
        for t in askers:
            t.start()
        for t in askers:
            t.join()
        for t in threads:
            t.join(timeout=30 * SLOW)

        waited = [(a, b, out) for a, b, out in statuses if b - a >= WAIT_S]
        check(waited, "no status question waited for a confirming scan (slowest %.2fs of %d)"
              % (max(b - a for a, b, _ in statuses), len(statuses)))
        for a, b, out in waited:
            reply = json.loads(out)
            check(reply.get("summary", {}).get("leaked", 0) >= 1, "a question waited %.2fs and was answered "
                  "without the proof: %r" % (b - a, out[:300]))
            half = (b - a) / 2
            behind = [(pa, pb) for pa, pb, _ in pings if a < pa < a + half]
            check(behind, "no ping was sent while a question waited")
            slowest = max(pb - pa for pa, pb in behind)
            check(slowest < half, "a ping sent while a status question waited %.2fs for its confirming scan took "
                  "%.2fs: held up behind it" % (b - a, slowest))
        bad = [out for _, _, out in pings if b'"ok":true' not in out]
        check(not bad, "%d pings got no answer: %r" % (len(bad), bad[:3]))
        print("%d status questions, %d waited (%.2fs to %.2fs), all proven; %d pings, the slowest %.3fs"
              % (len(statuses), len(waited), min(b - a for a, b, _ in waited), max(b - a for a, b, _ in waited),
                 len(pings), max(b - a for a, b, _ in pings)))


if __name__ == "__main__":
    run_test(main)
