#!/usr/bin/env python3
"""Traps for rule 4 from real event-loop libraries (argv[1] is a mode):
healthy programs whose loop thread parks, untimed, on a wakeup fd nobody has
written yet, made by that thread and kept in a global, while main lives in
timed sleeps and could use it at any moment. That is what every idle event
loop looks like: history (who made the fd, who ever used it) says nothing
about who may use it next, so no report may ever call a thread `leaked`,
`deadlocked` or `suspect` here.

  glib      fixtures/glib_idle: a GMainLoop in a thread of its own, in poll()
            on its context's eventfd; main then g_main_context_invoke's a
            callback, which runs in the loop thread and quits the loop
  zmq       fixtures/zmq_rep: a REP thread in zmq_recv() on a socket bound to
            tcp://127.0.0.1, in poll() on its mailbox eventfd; a client
            process (not preloaded) then connects and is served
  libuv     fixtures/uv_idle: uv_run() with an async handle, in epoll_wait();
            main then uv_async_send's, and the callback runs in the loop
  libevent  fixtures/event_idle: event_base_loop(EVLOOP_NO_EXIT_ON_EMPTY)
            with pthreads enabled, in epoll_wait() on the base's notify fd;
            main then adds a one-shot event, and it runs in the loop

Each runs with LEAKWATCH_STALL_MS=1500 and is asked again and again until
its loop thread has been parked well past the stall threshold and the
settle time (where a false `suspect` or `leaked` would show) and at least
eight reports were taken; the loop thread's wait must be untimed and
in-process (else the trap proves nothing), the fixture must have no signal
handler (one would make every fd wait live). Then the loop is really used,
and must answer: the wait was never dead."""
import os
import subprocess
import sys
import time
from lwtest import SLOW, Process, brief, check, fixture, run_test, thread_by_tid

STALL_MS = 1500
WATCH_PAST = STALL_MS / 1000.0 + 2.5   # parked this long at the last report: past the stall and settle times
BAD = ("leaked", "deadlocked", "suspect")

MODES = {
    # fixture arguments, the READY key of the thread in the loop, the line proving it woke
    "glib": dict(argv=["glib_idle"], loop="loop", woke="CALLED"),
    "zmq": dict(argv=["zmq_rep", "serve"], loop="server", woke="SERVED"),
    "libuv": dict(argv=["uv_idle"], loop="loop", woke="CALLED"),
    "libevent": dict(argv=["event_idle"], loop="loop", woke="CALLED"),
}

# Handlers the preload does not count (glibc's own, synchronous faults').
IGNORED_SIGNALS = sum(1 << (n - 1) for n in (32, 33, 4, 5, 7, 8, 11, 31))


def counted_handlers(pid):
    with open("/proc/%d/status" % pid) as f:
        line = [x for x in f if x.startswith("SigCgt:")]
    mask = int(line[0].split()[1], 16) & ~IGNORED_SIGNALS if line else 0
    return [n + 1 for n in range(64) if mask >> n & 1]


def never_bad(mode, report):
    bad = [brief(t) for t in report["threads"] if t["verdict"] in BAD]
    check(not bad, "%s: a healthy event loop judged %s:\n  %s" % (mode, "/".join(BAD), "\n  ".join(bad)))
    s = report["summary"]
    check(s["leaked"] == s["deadlocked"] == s["suspect"] == 0, "%s: summary %r" % (mode, s))


def watch(mode, p, loop_tid):
    """Every report clean, until the loop thread has been parked WATCH_PAST
    seconds (its own wait's age) in at least 8 reports' time; the last."""
    deadline = time.time() + (WATCH_PAST + 10) * SLOW
    reports = 0
    while True:
        r = p.threads()
        never_bad(mode, r)
        reports += 1
        t = thread_by_tid(r, loop_tid)
        check(t is not None, "%s: the loop thread %d is not reported" % (mode, loop_tid))
        w = t.get("wait") or {}
        check(t["state"] == "parked" and w.get("kind") == "poll", "%s: the loop thread is not in its poll: %s"
              % (mode, brief(t)))
        if w["seconds"] >= WATCH_PAST and reports >= 8:
            return r, t
        check(time.time() < deadline, "%s: the loop thread was not parked %.1fs within %.0fs: %s"
              % (mode, WATCH_PAST, (WATCH_PAST + 10) * SLOW, brief(t)))
        time.sleep(0.25)


def check_trap(mode, t):
    """The wait is one rule 4 would have to judge: untimed, all in-process."""
    w = t["wait"]
    check(w["timeout"] is False and w["class"] == "in-process", "%s: the loop thread's wait is no trap: %s"
          % (mode, brief(t)))
    kinds = [(x.get("channel") or {}).get("type") for x in w.get("fds") or []]
    check(kinds and w.get("fds_complete") is True and all(k in ("eventfd", "pipe", "socketpair") for k in kinds),
          "%s: the loop thread's poll set %r" % (mode, w.get("fds")))


def wake(mode, p, ready):
    """Use the loop as the program would; it must answer."""
    if mode == "zmq":
        client = subprocess.run([fixture("zmq_rep"), "client", ready["port"]], capture_output=True, text=True,
                                timeout=30 * SLOW, env=dict((k, v) for k, v in os.environ.items() if k != "LD_PRELOAD"))
        check(client.returncode == 0 and "REPLY pong" in client.stdout, "zmq: the client was not served: exit %d, %r %r"
              % (client.returncode, client.stdout, client.stderr))
    p.send("go\n")


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    spec = MODES[mode]
    with Process([fixture(spec["argv"][0])] + spec["argv"][1:], env={"LEAKWATCH_STALL_MS": str(STALL_MS)},
                 stdin=True) as p:
        ready = p.read_line("READY", timeout=20)
        loop_tid = int(ready[spec["loop"]])
        sigs = counted_handlers(p.pid)
        check(not sigs, "%s: the fixture has signal handlers %r: every fd wait would be live" % (mode, sigs))
        r, t = watch(mode, p, loop_tid)
        check_trap(mode, t)
        p.cli("status", str(p.pid), check_rc=0)
        wake(mode, p, ready)
        woke = p.read_line(spec["woke"], timeout=10)
        if "tid" in woke:
            check(int(woke["tid"]) == loop_tid, "%s: the callback ran in tid %s, not the loop thread %d"
                  % (mode, woke["tid"], loop_tid))
        p.read_line("DONE", timeout=10)
        p.proc.wait(timeout=10 * SLOW)
        check(p.proc.returncode == 0, "%s: exit status %r" % (mode, p.proc.returncode))
        print("%s: %d threads never leaked or suspect while the loop idled %.1fs; then it answered"
              % (mode, len(r["threads"]), t["wait"]["seconds"]))


if __name__ == "__main__":
    run_test(main)
