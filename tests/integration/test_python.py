#!/usr/bin/env python3
"""Debian's own interpreter (/usr/bin/python3, not whatever python3 is first
on PATH) running the scripts of tests/realprog/ unmodified under the
preload; argv[1] is the mode.

  stuck_sigint_ignored  queue_stuck.py started with SIGINT ignored: Python
                        then installs no handler of its own, so nothing can
                        end the consumer's queue.get() or main's join: both
                        threads `leaked` by rule 2, the reason saying all
                        threads are asleep; `status` fails.
  stuck                 queue_stuck.py started normally: Python's SIGINT
                        handler could end main's lock wait (KeyboardInterrupt),
                        so there is no proof: never `leaked` or `deadlocked`,
                        and past the stall threshold (LEAKWATCH_STALL_MS=2000)
                        both threads are `suspect`, the reason saying all
                        threads are asleep and naming SIGINT. A SIGINT then
                        really does end main's wait: KeyboardInterrupt.
  healthy               queue_healthy.py: a producer feeding an untimed
                        queue.get() and a get(timeout=...) loop, main joining
                        the producer: watched past the stall threshold, never
                        leaked, deadlocked or suspect, while the items keep
                        coming; main's join is `waiting`.
"""
import contextlib
import os
import signal
import sys
import time

from lwtest import brief, SLOW, Process, check, functions, run_test, thread_by_tid, until

PYTHON = "/usr/bin/python3"   # Debian's, whatever PATH says
REALPROG = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "realprog"))
STALL_MS = 2000
STUCK_VERDICTS = ("leaked", "deadlocked")


@contextlib.contextmanager
def sigint_ignored():
    """SIGINT ignored in this process while a child is started: an ignored
    disposition survives exec, so the child starts with it ignored."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def start(script):
    check(os.access(PYTHON, os.X_OK), "%s is missing: scripts/setup installs Debian's python3" % PYTHON)
    # -I: isolated (no PYTHON* variables, no user site), the script itself unchanged.
    p = Process([PYTHON, "-I", os.path.join(REALPROG, script)], env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    ready = p.read_line("READY", timeout=30)
    return p, {k: int(v) for k, v in ready.items()}


def roles_in(report, roles):
    ts = {name: thread_by_tid(report, tid) for name, tid in roles.items()}
    missing = [name for name, t in ts.items() if t is None]
    check(not missing, "threads %r not in the report: %r" % (missing, [t["tid"] for t in report["threads"]]))
    return ts


def check_lock_waits(ts):
    """Both threads wait in CPython's lock acquire (a glibc semaphore)."""
    for t in ts.values():
        check(t["wait"]["kind"] == "sem" and t["wait"]["timeout"] is False, "wait %r" % t["wait"])
        check("PyThread_acquire_lock_timed" in functions(t["wait_stack"]),
              "wait stack %r" % functions(t["wait_stack"]))


def stuck_sigint_ignored():
    with sigint_ignored():
        p, roles = start("queue_stuck.py")
    with p:
        def judged():
            r = p.threads()
            ts = roles_in(r, roles)
            check(all(t["verdict"] == "leaked" for t in ts.values()), "%r" % [brief(t) for t in ts.values()])
            return r, ts

        r, ts = until(judged, 10, "both threads leaked")
        check_lock_waits(ts)
        for t in ts.values():
            check("all threads are asleep" in t["reason"], t["reason"])
        check(any("all threads are asleep" in n for n in r["notes"]), "notes %r" % r["notes"])
        p.cli("status", str(p.pid), check_rc=1)


def stuck():
    p, roles = start("queue_stuck.py")
    with p:
        def judged():
            r = p.threads()
            ts = roles_in(r, roles)
            bad = [brief(t) for t in ts.values() if t["verdict"] in STUCK_VERDICTS]
            if bad:   # a proof where a signal handler can still end the wait: fail at once
                raise RuntimeError("python with a SIGINT handler judged stuck: %r" % bad)
            check(all(t["verdict"] == "suspect" for t in ts.values()), "%r" % [brief(t) for t in ts.values()])
            return r, ts

        r, ts = until(judged, 15, "both threads suspect past the stall threshold")
        check_lock_waits(ts)
        for t in ts.values():
            check(t["wait"]["seconds"] >= STALL_MS / 1000.0, "suspect before the stall threshold: %r" % t["wait"])
            check("asleep" in t["reason"] and "SIGINT" in t["reason"], t["reason"])
        p.cli("status", str(p.pid), check_rc=0)   # suspect is not a failure
        # The handler really can end main's wait: the reason not to prove it leaked.
        os.kill(p.pid, signal.SIGINT)
        until(lambda: "KeyboardInterrupt" in p.stderr_so_far(), 10, "KeyboardInterrupt after SIGINT")


def healthy():
    p, roles = start("queue_healthy.py")
    with p:
        # Watched until main (joining the producer, its siblings' longest
        # wait) has been parked a second past the stall threshold (the
        # stuck siblings are suspect at it, leaked at the settle time),
        # then one more ask; every report checked.
        deadline = time.time() + 20 * SLOW
        samples = past = 0
        while past < 2 or samples < 3:
            r = p.threads()
            roles_in(r, roles)
            bad = [brief(t) for t in r["threads"] if t["verdict"] in STUCK_VERDICTS + ("suspect",)]
            check(not bad, "healthy python judged stuck: %r" % bad)
            samples += 1
            w = (thread_by_tid(r, roles["main"]) or {}).get("wait") or {}
            past += w.get("seconds", 0) >= STALL_MS / 1000.0 + 1.0
            check(time.time() < deadline, "main never parked %.1fs: %r" % (STALL_MS / 1000.0 + 1.0, w))
            time.sleep(0.3)
        main = thread_by_tid(r, roles["main"])
        check(main["verdict"] == "waiting" and main["wait"]["kind"] == "sem" and main["wait"]["seconds"] >= 1.0,
              "main joining the producer: %s %r" % (brief(main), main["wait"]))
        got = [line.split() for line in p.more_output(wait=0.5) if line.startswith("GOT ")]
        check(len(got) >= 2, "the items stopped coming: %r" % p.lines)
        values = [dict(w.split("=") for w in g[1:]) for g in got]
        check(int(values[-1]["poller"]) > int(values[0]["poller"]) and int(values[-1]["timeouts"]) > 0,
              "no progress: %r" % values)
        p.cli("status", str(p.pid), check_rc=0)


MODES = {"stuck_sigint_ignored": stuck_sigint_ignored, "stuck": stuck, "healthy": healthy}

if __name__ == "__main__":
    if sys.argv[1:] and sys.argv[1] not in MODES:
        raise SystemExit("usage: test_python.py %s" % "|".join(MODES))
    run_test(MODES[sys.argv[1]])
