#!/usr/bin/env python3
"""Blocking fd calls return exactly what they return bare, and a parked one
is still reported in full (issue 19: a call that does not park costs a few
stores; before the server runs it is tried without blocking, or known not
to block from the bytes counted in a pipe). argv[1]:

  single    fixtures/fdsemantics single, bare and preloaded: every case
            (pipes, sockets stream and datagram, eventfd, FIFO, pty,
            regular file; ready, partial, EOF, errors, EFAULT, EPIPE,
            MSG_PEEK, MSG_WAITALL, SO_RCVLOWAT, SO_RCVTIMEO, non-blocking
            fds, a blocking write larger than the pipe, a cancellation
            pending at entry) in a fresh single-threaded process with no
            signal handler; the outputs must be the same line for line,
            and the process must still have one thread after its calls
            that never block (no server started for them).
  threads   the same cases in processes with a second thread (the server
            runs: calls are recorded around the real call), plus a signal
            interrupting a parked read, recv and a partial write, with
            and without SA_RESTART, and a cancellation while parked and
            pending at entry: the same line for line.
  park-W    fixtures/fdsemantics park W under the preload (W: read, readv,
            write, write_packets (a packet-mode pipe full with 16 bytes),
            recv in a single-threaded process, whose server starts only
            because the call would block; nested: a signal handler
            parked in a read while the main thread is parked in another):
            the parked thread is reported with the wait kind, fd, its
            channel (type, inode, the other end) and a wait stack naming
            park_W, the same in two reports a while apart; for nested,
            the handler's wait (its stack through the signal frame down to
            park_nested), then, once the handler returned, the outer wait
            again with its own stack. park-cancelled: a thread cancelled in
            a read, whose cleanup handler then spins, is reported with no
            record of the read left.

`test_fdsemantics.py --modes MODE...` checks tests/meson.build's list
against this driver's."""
import concurrent.futures
import shutil
import sys
import time
import re
import subprocess
from lwtest import Process, check, fixture, functions, private_dir, run_program, run_test, sanitized, thread_by_tid, until

MODES = ["single", "threads", "park-read", "park-readv", "park-write", "park-write_packets", "park-recv",
         "park-nested", "park-cancelled"]
# park mode: (wait kind, channel type)
PARKS = {"read": ("fd-read", "pipe"), "readv": ("fd-read", "pipe"), "write": ("fd-write", "pipe"),
         "write_packets": ("fd-write", "pipe"), "recv": ("fd-read", "socketpair"), "nested": ("fd-read", "pipe")}


def compare(mode):
    tmp, lwdir = private_dir()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_program, [fixture("fdsemantics"), mode], preload, lwdir, timeout=240)
                    for preload in (False, True)]
            bare, pre = [r.result() for r in runs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = bare[1].splitlines()
    check(bare[0] == 0 and lines and lines[-1] == mode + ": END", "the bare run itself failed (exit %d):\n%s\n%s"
          % (bare[0], bare[1], bare[2]))
    ends = [l for l in lines if re.match(r"^\w+: \w+ (end (exit|signal)=\d+|HUNG)$", l)]
    bad = [l for l in ends if not l.endswith(" end exit=0")]
    check(ends, "no case ended in the bare run: %r" % lines)
    check(not bad, "bare cases that did not end well: %r" % bad)
    if pre[:2] != bare[:2]:
        diff = ["bare:      %s\npreloaded: %s" % (b, p) for b, p in zip(lines, pre[1].splitlines()) if b != p]
        check(False, "the preloaded run differs (exit %d vs %d bare; %d vs %d lines):\n%s\n--- preloaded stderr:\n%s"
              % (pre[0], bare[0], len(pre[1].splitlines()), len(lines), "\n".join(diff), pre[2][-3000:]))
    if mode == "single":
        check("single: threads after calls that never block=1" in lines,
              "the single-threaded process had more threads than one: %r" % [l for l in lines if "threads after" in l])
    print("%s: %d lines, bare and preloaded the same" % (mode, len(lines)))


def check_parked(r, ready, kind, ctype, top, what):
    """The parked main thread in report r: wait kind, fd, channel, stack."""
    t = thread_by_tid(r, ready["tid"])
    check(t is not None, "%s: tid %s not reported" % (what, ready["tid"]))
    w = t.get("wait") or {}
    check(t.get("state") == "parked" and w.get("source") == "hook" and w.get("kind") == kind,
          "%s: state %r, wait %r, wanted a hooked %s wait" % (what, t.get("state"), w, kind))
    check(w.get("fd") == int(ready["fd"]), "%s: fd %r, wanted %s" % (what, w.get("fd"), ready["fd"]))
    ch = w.get("channel") or {}
    check(ch.get("type") == ctype and ch.get("inode") == int(ready["inode"]) and ch.get("name") == ready["link"],
          "%s: channel %r, wanted a %s, inode %s, %s" % (what, ch, ctype, ready["inode"], ready["link"]))
    check(int(ready["other"]) in ((ch.get("other_end") or {}).get("fds") or []),
          "%s: channel.other_end %r lacks fd %s" % (what, ch.get("other_end"), ready["other"]))
    fns = functions(t.get("wait_stack"))
    first = fns[1:] if sanitized() and fns and fns[0] != top else fns   # (ASan's interceptor, then the program)
    check(first and first[0] == top and "main" in fns, "%s: wait stack %r, wanted %s first, then on to main"
          % (what, fns, top))
    return fns


def cancelled():
    """A thread cancelled in a read runs a cleanup handler that spins: no
    record of the read may be left behind (the hook's own cleanup ran as
    the cancellation unwound its frame)."""
    with Process([fixture("fdsemantics"), "park", "cancelled"]) as p:
        ready = p.read_line("READY", timeout=30)
        p.wait_socket(timeout=10)

        def unrecorded():
            r = p.threads()
            t = thread_by_tid(r, ready["tid"])
            check(t is not None, "the cancelled thread %s is not reported" % ready["tid"])
            w = t.get("wait") or {}
            check(w.get("source") != "hook", "the cancelled thread still has the read's record: %r" % w)
            return t
        until(unrecorded, 5, "the cancelled thread without a record")
        print("park cancelled: no record left of the read the cancellation unwound")


def park(what):
    if what == "cancelled":
        return cancelled()
    kind, ctype = PARKS[what]
    env = {"FDSEMANTICS_INNER_S": "4"} if what == "nested" else None
    with Process([fixture("fdsemantics"), "park", what], env=env) as p:
        ready = p.read_line("READY", timeout=30)
        p.wait_socket(timeout=10)
        if what == "nested":
            inner = p.read_line("INNER", timeout=30)
            r = until(lambda: (lambda r: r if (thread_by_tid(r, inner["tid"]) or {}).get("wait", {}).get("fd")
                               == int(inner["fd"]) else None)(p.threads()), 10, "the handler's wait reported")
            fns = check_parked(r, inner, kind, ctype, "park_inner", "inner wait")
            check("on_usr1" in fns and "park_nested" in fns and fns.index("on_usr1") < fns.index("park_nested"),
                  "inner wait: stack %r, wanted on_usr1, then (past the signal frame) park_nested" % fns)
            # The handler comes back once the feeder writes: the outer wait again.
            r = until(lambda: (lambda r: r if (thread_by_tid(r, ready["tid"]) or {}).get("wait", {}).get("fd")
                               == int(ready["fd"]) else None)(p.threads()), 20, "the outer wait back")
            fns = check_parked(r, ready, kind, ctype, "park_nested", "outer wait after the handler")
            check("on_usr1" not in fns, "outer wait: stack %r still shows the handler" % fns)
        else:
            first = check_parked(p.threads(), ready, kind, ctype, "park_" + what, what)
            time.sleep(1.0)
            again = check_parked(p.threads(), ready, kind, ctype, "park_" + what, what + ", asked again")
            check(first == again, "%s: the stack changed between two reports: %r, then %r" % (what, first, again))
        print("park %s: %s wait on fd %s (%s) reported with its stack" % (what, kind, ready["fd"], ctype))


def main():
    if sys.argv[1] == "--modes":
        check(sorted(sys.argv[2:]) == sorted(MODES), "tests/meson.build's fdsemantics modes %r != the driver's %r"
              % (sorted(sys.argv[2:]), sorted(MODES)))
        listed = [l.split()[0] for l in
                  subprocess.run([fixture("fdsemantics"), "list"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()]
        check(listed, "fdsemantics list printed nothing")
        print("%d modes; the fixture has %d cases" % (len(MODES), len(listed)))
        return
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    if mode.startswith("park-"):
        park(mode[len("park-"):])
    else:
        compare(mode)


if __name__ == "__main__":
    run_test(main)
