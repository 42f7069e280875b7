#!/usr/bin/env python3
"""Rule 4 (fd channels) and the `suspect` verdict on real processes (argv[1]
is a mode of fixtures/chanverdicts). A channel wait is never proven while
another thread can run: main, alive in pause(), could use any fd. So the
waits on a pipe, eventfd, socketpair or poll set whose every counterpart
(the channel's creator, the threads that used the other end) has exited,
or is deadlocked, are `suspect` past a lowered stall threshold, with that
history as the reason, and never `leaked`; the same programs with main
returning are `leaked` in `leakwatch run --check`'s exit report; a process
where nothing can run is asleep, `leaked`. Healthy twins (the other end
held by a child, a self-pipe written by a signal handler, a channel only
the waiter ever touched, a flat-out pipeline, a writer whose idle reader
lives) are never leaked or suspect. Asserted through the CLI: verdicts,
reasons, counterparts.

`test_chanverdicts.py --modes MODE...` checks tests/meson.build's list
against the fixture's and this driver's."""
import json
import os
import signal
import sys
import time
from lwtest import (brief, check_modes_agree, fixture_modes, SLOW, Process, TestFailure, always, check, fixture,
                    run_check, run_test, thread_by_tid, until)

MODES = ["pipe_writer_gone", "pipe_reader_gone", "eventfd_gone", "socketpair_gone", "poll_gone",
         "peer_deadlocked", "asleep_pipe", "child_holds", "self_pipe", "born_after", "pipeline_fd",
         "idle_reader"]

STUCK = ("leaked", "deadlocked")
BAD = ("leaked", "deadlocked", "suspect")

# The leak situations: the thread that is stuck, what it waits on, the
# channel type, the threads that used the other end and what became of
# them (as the reason says it), what a thread would have to do to end the
# wait (and the same, done; and as a user's past), and how many threads
# are leaked or deadlocked at exit.
READER = dict(verb="write to it", done="written to it", used="wrote to it")
WRITER = dict(verb="read from it", done="read from it", used="read from it")
LEAKS = {
    "pipe_writer_gone": dict(READER, victim="reader", kind="fd-read", direction="read", ctype="pipe",
                             users=[("writer", "exited")]),
    "pipe_reader_gone": dict(WRITER, victim="writer", kind="fd-write", direction="write", ctype="pipe",
                             users=[("reader", "exited")]),
    "eventfd_gone": dict(READER, victim="waiter", kind="fd-read", direction="read", ctype="eventfd",
                         users=[("poster", "exited")]),
    "socketpair_gone": dict(READER, victim="reader", kind="fd-read", direction="read", ctype="socketpair",
                            users=[("peer", "exited")]),
    "poll_gone": dict(victim="poller", kind="poll", direction=None, ctype="pipe", verb="use it", done="used it",
                      used="used it", users=[("writer1", "exited"), ("writer2", "exited")]),
    "peer_deadlocked": dict(WRITER, victim="writer", kind="fd-write", direction="write", ctype="pipe",
                            users=[("reader", "is deadlocked")], stuck_at_exit=3),   # the reader and its partner
}


# Handlers the preload ignores (they never end an application wait):
# glibc's own (SIGCANCEL 32, SIGSETXID 33) and synchronous faults (SIGILL 4,
# SIGTRAP 5, SIGBUS 7, SIGFPE 8, SIGSEGV 11, SIGSYS 31: the sanitizer
# runtime's, crash reporters').
IGNORED_SIGNALS = sum(1 << (n - 1) for n in (32, 33, 4, 5, 7, 8, 11, 31))


def foreign_handlers(pid):
    """The signals with a handler in the fixture that the preload counts, as
    a list of numbers. Only self_pipe installs one."""
    with open("/proc/%d/status" % pid) as f:
        line = [x for x in f if x.startswith("SigCgt:")]
    mask = int(line[0].split()[1], 16) & ~IGNORED_SIGNALS if line else 0
    return [n + 1 for n in range(64) if mask >> n & 1]


def proofs_possible(p, mode):
    """Rule 4 proves nothing in a process with a signal handler; the fixture
    installs none in this mode."""
    sigs = foreign_handlers(p.pid)
    check(not sigs, "%s: the fixture has signal handlers %r it never installed" % (mode, sigs))
    return True


def fd_link(pid, fd):
    try:
        return os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError as e:
        raise TestFailure("readlink /proc/%d/fd/%d: %s" % (pid, fd, e))


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def settle_s(report):
    return report["settings"]["settle_ms"] / 1000.0


def start(mode, env=None):
    p = Process([fixture("chanverdicts"), mode], env=env)
    ready = p.read_line("READY")
    ids = {k: int(v) for k, v in ready.items()
           if k not in ("fd", "other", "fd2", "other2", "child")}
    return p, ready, ids


def kill_child(pid):
    """The child leaves when the fixture is gone; make sure."""
    end = time.time() + 2 * SLOW
    while time.time() < end:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except OSError:
            return
        time.sleep(0.05)
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"chanverdicts" in f.read():
                os.kill(pid, signal.SIGKILL)
                print("warning: the fixture's child %d outlived it; killed" % pid, file=sys.stderr)
    except OSError:
        pass


def wait_verdict(p, tid, want, what, timeout=8, early_ok=("waiting",)):
    """Poll until thread tid has verdict `want`; the report. Before the
    settle time its verdict must be one of early_ok (a wait is judged only
    once it has lasted that long): a violation fails at once."""
    early = []

    def ok():
        r = p.threads()
        t = thread_by_tid(r, tid)
        check(t is not None, "%s: tid %d not reported" % (what, tid))
        w = t.get("wait") or {}
        if number(w.get("seconds")) and w["seconds"] < 0.9 * settle_s(r) and t["verdict"] not in early_ok:
            early.append(t)
            return r   # stop polling: fails below
        check(t["verdict"] == want, "%s: %s" % (what, brief(t)))
        return r
    r = until(ok, timeout, "%s %s" % (what, want))
    check(not early, "%s judged before the settle time (%.1fs): %s"
          % (what, settle_s(r), brief(early[0] if early else None)))
    return r


def waker_map(cp):
    check(isinstance(cp, dict) and isinstance(cp.get("wakers"), list), "counterpart %r, wanted wakers" % (cp,))
    return {w["tid"]: w for w in cp["wakers"]}


def check_exited_waker(cp, tid, role, name):
    wakers = waker_map(cp)
    w = wakers.get(tid)
    check(w is not None, "counterpart.wakers %r lacks %s (tid %d, %s)" % (cp["wakers"], name, tid, role))
    check(w["role"] == role and w["exited"] is True and w["verdict"] is None,
          "waker %s (tid %d): %r, wanted role %r, exited, verdict null" % (name, tid, w, role))
    check(number(w["exited_ago"]) and 0 <= w["exited_ago"] < 60,
          "waker %s (tid %d): exited_ago %r, wanted seconds" % (name, tid, w["exited_ago"]))


def check_proof_wakers(cp, victim_tid):
    """A proof: every waker listed has exited or is itself stuck for ever."""
    for w in cp["wakers"]:
        if w["tid"] == victim_tid:
            continue
        check(w["exited"] is True or w["verdict"] in STUCK,
              "a leak proof lists a waker that can still run: %r (all: %r)" % (w, cp["wakers"]))


def check_channel(ch, what, pid, fd, ctype, creator_tid, other=None):
    check(isinstance(ch, dict), "%s: channel %r" % (what, ch))
    check(ch.get("type") == ctype, "%s: channel type %r, wanted %r" % (what, ch.get("type"), ctype))
    link = fd_link(pid, fd)
    if ctype != "eventfd":   # an eventfd's link names no inode
        check(ch.get("name") == link, "%s: channel name %r, wanted %r" % (what, ch.get("name"), link))
    check(ch.get("tracked") is True, "%s: channel not tracked: %r" % (what, ch))
    creator = ch.get("creator") or {}
    check(creator.get("tid") == creator_tid and creator.get("exited") is (creator_tid != pid),
          "%s: creator %r, wanted tid %d (%s)" % (what, creator, creator_tid,
                                                 "alive" if creator_tid == pid else "exited"))
    oe = ch.get("other_end") or {}
    if other is not None:
        check(other in (oe.get("fds") or []), "%s: other_end %r lacks fd %d" % (what, oe, other))
    return ch


def check_peer(ch, tid, name, exited, what):
    peers = [x for x in ch.get("peers") or [] if x.get("tid") == tid]
    check(peers, "%s: channel peers %r lack %s (tid %d)" % (what, ch.get("peers"), name, tid))
    check(peers[0].get("exited") is exited and number(peers[0].get("idle")),
          "%s: peer %s %r, wanted exited=%r and idle seconds" % (what, name, peers[0], exited))
    return peers[0]


# ---- the leaks: suspect while main lives, leaked at exit ----

STALL_MS = 1500   # LEAKWATCH_STALL_MS of the leak runs


def check_suspect_reason(what, spec, t, ready, ids):
    """The evidence, clause by clause: who made and used the channel and
    what became of them, how long nobody has used the other end, and why
    it is no proof."""
    reason, w = t["reason"], t["wait"]
    fd, other = int(ready["fd"]), int(ready["other"])
    if spec["kind"] == "poll":
        head = "polls 2 fds, parked for "
        ends = "fd %d or fd %s" % (other, ready["other2"])
    else:
        verb = "reads" if spec["direction"] == "read" else "writes"
        head = "%s fd %d (%s), parked for " % (verb, fd, w["channel"]["name"])
        ends = "fd %d" % other + (", the other end," if spec["ctype"] != "eventfd" else "")
    want = [head, "; its creator, tid %d (setup), exited " % ids["setup"],
            "; no thread has %s for " % spec["done"],
            "; not a proof: a live thread holding %s could still %s" % (ends, spec["verb"])]
    for user, state in spec["users"]:
        want.append("; tid %d (%s), which %s, %s" % (ids[user], user, spec["used"], state))
    missing = [x for x in want if x not in reason]
    proof = want[3]
    check(reason.startswith(head) and reason.endswith(proof) and not missing,
          "%s: reason %r lacks %r" % (what, reason, missing))


def check_suspect_counterpart(what, spec, t, ready, ids):
    cp = t["counterpart"]
    check_exited_waker(cp, ids["setup"], "creator", "setup")
    for user, state in spec["users"]:
        if state == "exited":
            check_exited_waker(cp, ids[user], "user", user)
        else:
            wk = waker_map(cp).get(ids[user])
            check(wk and wk["role"] == "user" and wk["exited"] is False and wk["verdict"] == "deadlocked",
                  "%s: waker %s: %r" % (what, user, cp["wakers"]))
    others = {int(ready["other"])} | ({int(ready["other2"])} if "other2" in ready else set())
    check(set(cp.get("other_end_fds") or []) & others, "%s: counterpart %r, other ends %r" % (what, cp, others))


def leak(mode):
    spec = LEAKS[mode]
    p, ready, ids = start(mode, env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    with p:
        proofs_possible(p, mode)
        victim = ids[spec["victim"]]
        what = "%s: %s (tid %d)" % (mode, spec["victim"], victim)
        rep = wait_suspect(p, victim, what)
        t = thread_by_tid(rep, victim)
        w = t["wait"]
        check(w["kind"] == spec["kind"] and w["class"] == "in-process" and w["timeout"] is False and
              w["seconds"] >= STALL_MS / 1000.0, "%s: wait %r" % (what, w))
        main = thread_by_tid(rep, ids["main"])
        check(main["verdict"] == "waiting", "%s: main (in pause) %s" % (mode, brief(main)))
        check(not any("asleep" in n for n in rep["notes"]), "%s: main is live, yet notes %r" % (mode, rep["notes"]))
        if spec["kind"] == "poll":
            fds = {e["fd"]: e for e in w.get("fds") or []}
            pairs = ((int(ready["fd"]), int(ready["other"]), "writer1"), (int(ready["fd2"]), int(ready["other2"]), "writer2"))
            check(sorted(fds) == sorted(f for f, _, _ in pairs), "%s: poll set %r" % (what, w.get("fds")))
            for f, o, user in pairs:
                ch = check_channel(fds[f]["channel"], "%s fd %d" % (what, f), p.pid, f, "pipe", ids["setup"], o)
                check_peer(ch, ids[user], user, True, "%s fd %d" % (what, f))
        else:
            check(w["fd"] == int(ready["fd"]) and w["direction"] == spec["direction"], "%s: wait %r" % (what, w))
            ch = check_channel(w["channel"], what, p.pid, int(ready["fd"]), spec["ctype"], ids["setup"],
                               int(ready["other"]))
            for user, state in spec["users"]:
                check_peer(ch, ids[user], user, state == "exited", what)
        check_suspect_reason(what, spec, t, ready, ids)
        check_suspect_counterpart(what, spec, t, ready, ids)
        # A suspicion holds, never becomes a proof, and fails nothing (the
        # deadlock of peer_deadlocked's reader does).
        watch(p, 1, never_bad(mode + " (past the stall)", ("leaked",)))
        again = thread_by_tid(p.threads(), victim)
        check(again["verdict"] == "suspect", "%s: no longer suspect: %s" % (what, brief(again)))
        s = p.status()
        deadlocked = spec.get("stuck_at_exit", 1) - 1
        check(s["summary"]["suspect"] == 1 and s["summary"]["leaked"] == 0 and s["summary"]["deadlocked"] == deadlocked,
              "%s: status --json %r" % (mode, s))
        p.cli("status", str(p.pid), check_rc=1 if deadlocked else 0)
    leaked_at_exit(mode, spec)


def wait_suspect(p, tid, what):
    """Poll until tid is suspect; at every report before, it must be
    waiting (and nobody in the process leaked), and never suspect before
    its wait has lasted the stall threshold."""
    early = []

    def ok():
        r = p.threads()
        always(never_bad(what, ("leaked",)), r)
        t = thread_by_tid(r, tid)
        check(t is not None, "%s: tid %d not reported" % (what, tid))
        w = t.get("wait") or {}
        if t["verdict"] == "suspect" and number(w.get("seconds")) and w["seconds"] < STALL_MS / 1000.0:
            early.append(t)
            return r
        check(t["verdict"] == "suspect", "%s: %s" % (what, brief(t)))
        return r
    r = until(ok, 10, "%s suspect" % what)
    check(not early, "%s: suspect before the stall threshold: %s" % (what, brief(early[0] if early else None)))
    return r


def leaked_at_exit(mode, spec):
    """The same program, main returning after READY, under `leakwatch run
    --check`: the exiting thread counts as gone, nothing else can run, and
    the exit report proves the victim leaked (rule 2), naming the
    channel's history."""
    rc, err = run_check([fixture("chanverdicts"), mode, "exit"])
    check(rc == 1, "%s exit: run --check exited %d, wanted 1:\n%s" % (mode, rc, err[-3000:]))
    stuck = spec.get("stuck_at_exit", 1)
    check("FAILED: %d thread%s leaked or deadlocked at exit" % (stuck, "s" if stuck > 1 else "") in err,
          "%s exit: the report's last line:\n%s" % (mode, err[-3000:]))
    verb = {"read": "reads", "write": "writes"}.get(spec["direction"], "polls")
    group = [line for line in err.splitlines() if "leaked, %s" % spec["kind"] in line and '"%s")' % spec["victim"] in line]
    check(group, "%s exit: no group of the leaked %s:\n%s" % (mode, spec["victim"], err[-3000:]))
    reason = err.split(group[0], 1)[1].splitlines()[1].strip()
    want = ["no thread that could %s can run again: all threads are asleep; its creator, tid " % spec["verb"],
            "(setup), exited "]
    missing = [x for x in want if x not in reason]
    check(reason.startswith(verb) and not missing, "%s exit: reason %r lacks %r" % (mode, reason, missing))
    for user, state in spec["users"]:
        check("(%s), which %s, %s" % (user, spec["used"], state) in reason, "%s exit: reason %r lacks %s"
              % (mode, reason, user))


def asleep_pipe():
    p, ready, ids = start("asleep_pipe")
    with p:
        proofs_possible(p, "asleep_pipe")
        main_tid, reader = ids["main"], ids["reader"]
        wait_verdict(p, reader, "leaked", "asleep_pipe: reader (tid %d)" % reader)
        rep = wait_verdict(p, main_tid, "leaked", "asleep_pipe: main (tid %d)" % main_tid, timeout=3)
        check(thread_by_tid(rep, reader)["verdict"] == "leaked", brief(thread_by_tid(rep, reader)))
        check(any("all threads are asleep" in n for n in rep["notes"]), "notes %r" % rep["notes"])
        r = thread_by_tid(rep, reader)
        m = thread_by_tid(rep, main_tid)
        check(r["wait"]["kind"] == "fd-read" and r["wait"]["fd"] == int(ready["fd"]), brief(r))
        want = "reads fd %s (%s), and no thread that could write to it can run again: all threads are asleep; " \
               "its creator, tid %d (setup), exited " % (ready["fd"], r["wait"]["channel"]["name"], ids["setup"])
        check(r["reason"].startswith(want) and "tid %d (writer), which wrote to it, exited " % ids["writer"] in r["reason"]
              and "fd %s, the other end, stays open here, so it will never see end-of-file either" % ready["other"]
              in r["reason"], "reason %r, wanted %r..." % (r["reason"], want))
        check_proof_wakers(r["counterpart"], reader)
        check(m["wait"]["kind"] == "join" and "join" in m["reason"] and "asleep" in m["reason"], brief(m))
        check(rep["summary"]["leaked"] == 2, "summary %r" % rep["summary"])
        p.cli("status", str(p.pid), check_rc=1)


# ---- healthy twins ----

def watch(p, seconds, fn, min_samples=3):
    """Call fn(report) on reports taken over `seconds` (not scaled under a
    sanitizer: the tool's thresholds are wall time there too) and at least
    min_samples of them; the last report."""
    end = time.time() + seconds
    samples, rep = 0, None
    while time.time() < end or samples < min_samples:
        rep = p.threads()
        fn(rep)
        samples += 1
        time.sleep(0.2)
    return rep


# How long a healthy twin's wait is watched: past the stall threshold of the
# runs that set one (1.5 s: the leaky siblings are suspect there), past the
# settle time (rule 2's proofs come then), with a second of margin.
TWIN_WAIT = 2.5


def watch_parked(p, tid, kind, seconds, fn, what, min_samples=3):
    """Call fn(report) on every report (the checks a healthy twin must pass
    at every ask: a failure fails at once) until tid has been parked on kind
    for at least `seconds` (its own wait's age, as the tool measures it),
    then one more ask; the last report."""
    deadline = time.time() + (seconds + 6) * SLOW
    samples = after = 0
    while True:
        rep = p.threads()
        fn(rep)
        samples += 1
        t = thread_by_tid(rep, tid)
        w = (t or {}).get("wait") or {}
        if w.get("kind") == kind and number(w.get("seconds")) and w["seconds"] >= seconds:
            after += 1
        if after >= 2 and samples >= min_samples:
            return rep
        check(time.time() < deadline, "%s: not parked on %s for %.1fs within %.0fs: %s"
              % (what, kind, seconds, (seconds + 6) * SLOW, brief(t)))
        time.sleep(0.2)


def never_bad(mode, bad=BAD):
    def fn(rep):
        worse = [brief(t) for t in rep["threads"] if t["verdict"] in bad]
        check(not worse, "healthy %s judged %s:\n  %s" % (mode, "/".join(bad), "\n  ".join(worse)))
    return fn


def child_holds():
    p, ready, ids = start("child_holds", env={"LEAKWATCH_STALL_MS": "1500"})
    child = int(ready["child"])
    try:
        with p:
            reader = ids["reader"]
            rep = watch_parked(p, reader, "fd-read", TWIN_WAIT, never_bad("child_holds"), "child_holds: reader")
            t = thread_by_tid(rep, reader)
            w = t["wait"]
            check(t["verdict"] == "waiting" and w["class"] == "external" and w["fd"] == int(ready["fd"]),
                  "child_holds: %s" % brief(t))
            ch = w["channel"]
            check(ch and ch["type"] == "pipe" and ch["name"] == fd_link(p.pid, int(ready["fd"])), "channel %r" % ch)
            procs = ch["other_end"]["processes"]
            check(any(x.get("pid") == child for x in procs), "other_end.processes %r lacks the child %d" % (procs, child))
            check(ch["other_end"]["fds"] == [], "other_end.fds %r: setup closed its write end" % ch["other_end"]["fds"])
            check(str(child) in t["reason"], "reason %r does not name the child %d" % (t["reason"], child))
            p.cli("status", str(p.pid), check_rc=0)
    finally:
        kill_child(child)


def self_pipe():
    """Run once with the default stall threshold and once with 1.5 s (both
    fixtures at once): a reader of a self-pipe in a process with a signal
    handler is never judged stuck, nor suspect. Then the handler really
    ends the wait."""
    envs = ({}, {"LEAKWATCH_STALL_MS": "1500"})
    runs = [start("self_pipe", env=env) for env in envs]
    try:
        for env, (p, ready, ids) in zip(envs, runs):
            self_pipe_run(env, p, ready, ids)
    finally:
        for p, _, _ in runs:
            p.close()


def self_pipe_run(env, p, ready, ids):
    reader, fd = ids["reader"], int(ready["fd"])
    what = "self_pipe %r: reader (tid %d)" % (env, reader)
    rep = watch_parked(p, reader, "fd-read", TWIN_WAIT, never_bad("self_pipe %r" % env), what)
    t = thread_by_tid(rep, reader)
    check(t["verdict"] == "waiting" and t["wait"]["fd"] == fd and t["wait"]["class"] == "in-process",
          "%s: %s" % (what, brief(t)))
    check(t["wait"]["channel"]["peers"] == [], "%s: nobody wrote yet, peers %r"
          % (what, t["wait"]["channel"]["peers"]))
    p.cli("status", str(p.pid), check_rc=0)
    if not env:
        return
    # A byte per signal, and the reader parks again, still healthy.
    for _ in range(2):
        os.kill(p.pid, signal.SIGUSR1)
        p.read_line("WOKE", timeout=5)
    extra = [x for x in p.more_output(0.3) if x.startswith(("WOKE", "UNEXPECTED"))]
    check(not extra, "self_pipe: two signals, more output %r" % extra)

    def parked_again():
        t = thread_by_tid(p.threads(), reader)
        w = t.get("wait") or {}
        check(w.get("kind") == "fd-read" and t["verdict"] == "waiting", "after the signals: %s" % brief(t))
        return t
    t = until(parked_again, 5, "the reader parked again")
    peers = t["wait"]["channel"]["peers"]
    check([x for x in peers if x["exited"] is False and x["idle"] < 5 * SLOW],
          "self_pipe: the handler's writes are not recorded: peers %r" % peers)
    watch_parked(p, reader, "fd-read", TWIN_WAIT, never_bad("self_pipe after the signals"), what)
    p.cli("status", str(p.pid), check_rc=0)


def born_after():
    """Watched with a short stall threshold and with the default one (both
    fixtures at once: each waits while the other is looked at). The setup
    thread that made the pipe exited, the producer born after it never
    touched it: nobody but the reader ever did, the shape of a wakeup fd,
    so never suspect, and with the producer alive never leaked."""
    short = start("born_after", env={"LEAKWATCH_STALL_MS": "1500"})
    default = start("born_after")
    with short[0], default[0]:
        for (p, ready, ids), what in ((short, "born_after (stall 1.5s)"), (default, "born_after")):
            proofs_possible(p, what)
            reader = ids["reader"]
            rep = watch_parked(p, reader, "fd-read", TWIN_WAIT, never_bad(what), "%s: reader" % what)
            t = thread_by_tid(rep, reader)
            w = t["wait"]
            check(t["verdict"] == "waiting" and w["class"] == "in-process" and w["seconds"] >= TWIN_WAIT,
                  "%s: %s" % (what, brief(t)))
            check(w["channel"]["creator"] == {"tid": ids["setup"], "name": "setup", "exited": True},
                  "%s: creator %r" % (what, w["channel"]["creator"]))
            check(w["channel"]["peers"] == [], "%s: nobody wrote, yet peers %r" % (what, w["channel"]["peers"]))
            p.cli("status", str(p.pid), check_rc=0)


def task_io(pid, tid):
    """syscr + syscw of one thread: grows while it reads or writes."""
    try:
        with open("/proc/%d/task/%d/io" % (pid, tid)) as f:
            d = dict(line.split(":") for line in f if ":" in line)
        return int(d["syscr"]) + int(d["syscw"])
    except (OSError, KeyError, ValueError):
        return None


PIPELINE_STALL_MS = 2000


def pipeline_fd():
    p, ready, ids = start("pipeline_fd", env={"LEAKWATCH_STALL_MS": str(PIPELINE_STALL_MS)})
    with p:
        prod, cons = ids["producer"], ids["consumer"]
        fd, other = int(ready["fd"]), int(ready["other"])
        first = {t: task_io(p.pid, t) for t in (prod, cons)}
        stats = {"samples": 0, "parked": 0}

        def fn(rep):
            never_bad("pipeline_fd")(rep)
            for name, tid in (("producer", prod), ("consumer", cons)):
                t = thread_by_tid(rep, tid)
                check(t is not None, "pipeline_fd: %s (tid %d) not reported" % (name, tid))
                w = t.get("wait") or {}
                if t["state"] == "parked":
                    stats["parked"] += 1
                    # "syscall" (seen in /proc only): a snapshot can read the
                    # registry just after one call returned and /proc just
                    # after the next began.
                    check(w.get("kind") in ("fd-read", "fd-write", "syscall") and w.get("fd") in (fd, other),
                          "pipeline_fd: %s parked on %s (fd %r)" % (name, brief(t), w.get("fd")))
                    check(w["seconds"] < 1.0 * SLOW, "pipeline_fd: %s stuck: %s" % (name, brief(t)))
            stats["samples"] += 1
        # Watched on the process's own clock past the stall threshold and
        # the settle time (a suspect or a rule-4 proof would have shown by
        # then), with a second of margin, and over 10 reports at least.
        until_up = p.threads()["uptime"] + PIPELINE_STALL_MS / 1000.0 + 1.0 + 1.0
        deadline = time.time() + 20 * SLOW
        while True:
            rep = p.threads()
            fn(rep)
            if rep["uptime"] >= until_up and stats["samples"] >= 10:
                break
            check(time.time() < deadline, "pipeline_fd: 4 s on the process's clock and 10 reports took over %.0fs"
                  % (20 * SLOW))
            time.sleep(0.2)
        check(p.alive(), "pipeline_fd: the fixture died (a gap in the sequence?): %s" % p.stderr_so_far())
        last = {t: task_io(p.pid, t) for t in (prod, cons)}
        for name, tid in (("producer", prod), ("consumer", cons)):
            if first[tid] is not None and last[tid] is not None:
                check(last[tid] > first[tid] + 1000, "pipeline_fd: %s made no progress: %d -> %d calls"
                      % (name, first[tid], last[tid]))
        p.cli("status", str(p.pid), check_rc=0)


IDLE_STALL_MS = 2000


def idle_reader():
    """main made the pipe and lives; the reader read a byte and then only
    sleeps, idle longer than the stall threshold before the writer even
    blocks. Its counterparts are alive, however idle: either could still
    read. Watched until the writer has been blocked a second past the
    threshold: never suspect, never leaked."""
    p, ready, ids = start("idle_reader", env={"LEAKWATCH_STALL_MS": str(IDLE_STALL_MS)})
    with p:
        proofs_possible(p, "idle_reader")
        writer, reader = ids["writer"], ids["reader"]
        what = "idle_reader: writer (tid %d)" % writer
        rep = watch_parked(p, writer, "fd-write", IDLE_STALL_MS / 1000.0 + 1.0, never_bad("idle_reader"), what,
                           min_samples=8)
        t = thread_by_tid(rep, writer)
        w = t["wait"]
        check(t["verdict"] == "waiting" and w["class"] == "in-process" and w["fd"] == int(ready["fd"]),
              "%s: %s" % (what, brief(t)))
        ch = check_channel(w["channel"], what, p.pid, int(ready["fd"]), "pipe", ids["main"], int(ready["other"]))
        peer = check_peer(ch, reader, "reader", False, what)
        # The test means something: the reader had been idle past the
        # threshold, and the writer blocked past it, at the last report.
        check(peer["idle"] >= w["seconds"] + 2.0 and w["seconds"] >= IDLE_STALL_MS / 1000.0 + 1.0,
              "%s: the reader's idle %r, the writer's wait %.1fs" % (what, peer, w["seconds"]))
        p.cli("status", str(p.pid), check_rc=0)


def check_modes(meson_modes):
    check_modes_agree(MODES, fixture_modes("chanverdicts"), meson_modes, "chan_verdict_modes")


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    if mode in LEAKS:
        leak(mode)
    else:
        globals()[mode]()


if __name__ == "__main__":
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
