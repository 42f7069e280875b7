#!/usr/bin/env python3
"""test_steady.py — a verdict never comes and goes, even on a loaded machine
(scripts/soak steady; the suite runs it briefly as `steady`).

Starts rule-4 fixtures (chanverdicts) side by side with CPU-burning
processes, then asks each one `threads --json` ASKS times (default 300)
while the load runs: four channel waits whose every counterpart exited,
main alive (eventfd_gone, socketpair_gone, pipe_writer_gone, poll_gone:
`suspect` past a 1.5 s stall threshold, never `leaked`), and one process
that is wholly asleep (asleep_pipe: its reader `leaked`). Once a fixture's
victim has its verdict, every later report must say so too: a verdict that
flickers back to `waiting` means some input was measured inconsistently.
(Found this way: channel ages were measured at a later instant than thread
ages.) Every report is also checked to be measured at one instant
(lwtest.check_one_instant, via Process.threads).

    test_steady.py [ASKS]
"""
import multiprocessing
import os
import sys
import threading

from lwtest import Process, check, fixture, run_test, thread_by_tid

# mode: its victim's name in the READY line, the verdict it must reach and keep
MODES = {"eventfd_gone": ("waiter", "suspect"), "socketpair_gone": ("reader", "suspect"),
         "pipe_writer_gone": ("reader", "suspect"), "poll_gone": ("poller", "suspect"),
         "asleep_pipe": ("reader", "leaked")}
STALL_MS = "1500"


def burn(stop):
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) & 0xffffffff


def watch(mode, asks, failures, done):
    """Ask one fixture asks times; what went wrong goes to failures (a
    thread's exception must not vanish), a clean finish to done."""
    name, want = MODES[mode]
    try:
        with Process([fixture("chanverdicts"), mode], env={"LEAKWATCH_STALL_MS": STALL_MS}) as p:
            victim = int(p.read_line("READY")[name])
            reached_at = None
            for k in range(asks):
                t = thread_by_tid(p.threads(), victim)
                verdict = t and t["verdict"]
                if verdict not in (want, "waiting"):
                    failures.append("%s: %r at ask %d (wanted %s): %r" % (mode, verdict, k, want, t and t.get("reason")))
                    return
                if verdict == want and reached_at is None:
                    reached_at = k
                elif reached_at is not None and verdict != want:
                    failures.append("%s: %s at ask %d, then %r at ask %d: %r"
                                    % (mode, want, reached_at, verdict, k, t and t.get("reason")))
                    return
            if reached_at is None:
                failures.append("%s: never %s in %d asks" % (mode, want, asks))
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
    print("%d fixtures x %d asks under %d CPU burners: every verdict held" % (len(MODES), asks, len(burners)))


if __name__ == "__main__":
    run_test(main)
