#!/usr/bin/env python3
"""test_steady.py — a proof never comes and goes, even on a loaded machine
(scripts/soak steady; the suite runs it briefly as `steady`).

Starts the rule-4 leak fixtures (chanverdicts: eventfd_gone,
socketpair_gone, pipe_writer_gone, poll_gone) side by side with CPU-burning processes, then
asks each one `threads --json` ASKS times (default 300) while the load runs.
Once a fixture's victim is proven leaked, every later report must say so
too: a proof that flickers back to `waiting` means some input of the proof
was measured inconsistently. (Found this way: channel ages were measured at
a later instant than thread ages; on a loaded machine the main thread then
looked born after a channel made just after start, a possible waker of it.)
Every report is also checked to be measured at one instant
(lwtest.check_one_instant, via Process.threads).

    test_steady.py [ASKS]
"""
import multiprocessing
import os
import sys
import threading

from lwtest import Process, check, fixture, run_test, thread_by_tid

MODES = {"eventfd_gone": "waiter", "socketpair_gone": "reader", "pipe_writer_gone": "reader",
         "poll_gone": "poller"}   # mode: its victim's name in the READY line


def burn(stop):
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) & 0xffffffff


def watch(mode, asks, failures, done):
    """Ask one fixture asks times; what went wrong goes to failures (a
    thread's exception must not vanish), a clean finish to done."""
    try:
        with Process([fixture("chanverdicts"), mode]) as p:
            victim = int(p.read_line("READY")[MODES[mode]])
            proven_at = None
            for k in range(asks):
                t = thread_by_tid(p.threads(), victim)
                leaked = t is not None and t["verdict"] == "leaked"
                if leaked and proven_at is None:
                    proven_at = k
                elif proven_at is not None and not leaked:
                    failures.append("%s: proven leaked at ask %d, then %r at ask %d: %r"
                                    % (mode, proven_at, t and t["verdict"], k, t and t.get("reason")))
                    return
            if proven_at is None:
                failures.append("%s: never proven in %d asks" % (mode, asks))
                return
            done.append(mode)
    except Exception as e:   # noqa: BLE001 -- reported by main
        failures.append("%s: %s: %s" % (mode, type(e).__name__, e))


def main():
    asks = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=burn, args=(stop,)) for _ in range(4 * (os.cpu_count() or 2))]
    for b in burners:
        b.start()
    failures, done = [], []
    try:
        watchers = [threading.Thread(target=watch, args=(m, asks, failures, done)) for m in sorted(MODES)]
        for w in watchers:
            w.start()
        for w in watchers:
            w.join()
    finally:
        stop.set()
        for b in burners:
            b.join()
    check(not failures and len(done) == len(MODES), "; ".join(failures) or "finished: %r" % done)
    print("%d fixtures x %d asks under %d CPU burners: every proof held" % (len(MODES), asks, len(burners)))


if __name__ == "__main__":
    run_test(main)
