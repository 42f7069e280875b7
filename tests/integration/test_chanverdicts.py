#!/usr/bin/env python3
"""Rule 4 (fd channels) and the `suspect` verdict on real processes (argv[1]
is a mode of fixtures/chanverdicts): threads parked on a pipe, eventfd,
socketpair or poll set whose every possible waker has exited are `leaked`,
with a reason naming those wakers and a counterpart listing them; a process
where nothing can run is asleep; healthy twins (the other end held by a
child, a self-pipe written by a signal handler, a thread born after the
channel that may hold the fd, a flat-out pipeline, a slow consumer) never
are. A long stall whose counterparts are alive but idle is `suspect`, never
`leaked`. Asserted through the CLI's JSON: verdicts, reasons, counterparts.

`test_chanverdicts.py --modes MODE...` checks tests/meson.build's list
against the fixture's and this driver's."""
import json
import os
import signal
import sys
import time
from lwtest import brief, check_modes_agree, fixture_modes, SLOW, Process, TestFailure, check, fixture, run_test, thread_by_tid, until

MODES = ["pipe_writer_gone", "pipe_reader_gone", "eventfd_gone", "socketpair_gone", "poll_gone",
         "asleep_pipe", "child_holds", "self_pipe", "born_after", "pipeline_fd", "suspect_full_pipe",
         "suspect_twin"]

STUCK = ("leaked", "deadlocked")
BAD = ("leaked", "deadlocked", "suspect")

# The leak situations: the thread that is stuck, what it waits on, the
# channel type, the thread that used the other end and exited, and the
# words of its reason.
LEAKS = {
    "pipe_writer_gone": dict(victim="reader", kind="fd-read", direction="read", ctype="pipe",
                             users=["writer"], verb="write to it", eof=True),
    "pipe_reader_gone": dict(victim="writer", kind="fd-write", direction="write", ctype="pipe",
                             users=["reader"], verb="read from it", eof=False),
    "eventfd_gone": dict(victim="waiter", kind="fd-read", direction="read", ctype="eventfd",
                         users=["poster"], verb="write to it", eof=False),
    "socketpair_gone": dict(victim="reader", kind="fd-read", direction="read", ctype="socketpair",
                            users=["peer"], verb="write to it", eof=True),
    "poll_gone": dict(victim="poller", kind="poll", direction=None, ctype="pipe",
                      users=["writer1", "writer2"], verb="use it", eof=False),
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


# ---- the leaks ----

def leak(mode):
    spec = LEAKS[mode]
    p, ready, ids = start(mode)
    with p:
        proofs_possible(p, mode)
        victim = ids[spec["victim"]]
        what = "%s: %s (tid %d)" % (mode, spec["victim"], victim)
        rep = wait_verdict(p, victim, "leaked", what)
        t = thread_by_tid(rep, victim)
        w = t["wait"]
        fd, other = int(ready["fd"]), int(ready["other"])
        check(w["kind"] == spec["kind"] and w["class"] == "in-process" and w["timeout"] is False,
              "%s: wait %r" % (what, w))
        check(thread_by_tid(rep, ids["main"])["verdict"] == "waiting",
              "%s: main (in pause) %s" % (mode, brief(thread_by_tid(rep, ids["main"]))))
        check(not rep["notes"] or not any("asleep" in n for n in rep["notes"]),
              "%s: main is live, yet notes %r" % (mode, rep["notes"]))
        reason, cp = t["reason"], t["counterpart"]
        if spec["kind"] == "poll":
            fds = {e["fd"]: e for e in w.get("fds") or []}
            fd2, other2 = int(ready["fd2"]), int(ready["other2"])
            check(sorted(fds) == sorted([fd, fd2]), "%s: poll set %r, wanted fds %r" % (what, w.get("fds"), [fd, fd2]))
            for f, o, user in ((fd, other, "writer1"), (fd2, other2, "writer2")):
                ch = check_channel(fds[f]["channel"], "%s fd %d" % (what, f), p.pid, f, "pipe", ids["setup"], o)
                check_peer(ch, ids[user], user, True, "%s fd %d" % (what, f))
            check(reason.startswith("polls 2 fds, "), "%s: reason %r" % (what, reason))
            chname = fds[fd]["channel"]["name"]
            check(cp.get("channel") in (chname, fds[fd2]["channel"]["name"]), "%s: counterpart %r" % (what, cp))
            check(set(cp.get("other_end_fds") or []) & {other, other2}, "%s: counterpart %r" % (what, cp))
        else:
            check(w["fd"] == fd and w["direction"] == spec["direction"], "%s: wait %r" % (what, w))
            ch = check_channel(w["channel"], what, p.pid, fd, spec["ctype"], ids["setup"], other)
            for user in spec["users"]:
                check_peer(ch, ids[user], user, True, what)
            chname = ch["name"]
            verb = "reads" if spec["direction"] == "read" else "writes"
            check(reason.startswith("%s fd %d (%s), " % (verb, fd, chname)), "%s: reason %r" % (what, reason))
            check(cp.get("channel") == chname, "%s: counterpart channel %r, wanted %r" % (what, cp.get("channel"), chname))
            check(other in (cp.get("other_end_fds") or []), "%s: counterpart.other_end_fds %r lacks %d"
                  % (what, cp.get("other_end_fds"), other))
        want = ["no thread that could %s can run again: " % spec["verb"]]
        eof = "fd %d, the other end, stays open here, so it will never see end-of-file either" % other
        if spec["eof"]:
            want.append(eof)
        missing = [x for x in want if x not in reason]
        check(not missing, "%s: reason %r lacks %r" % (what, reason, missing))
        # One clause per waker, each saying who it is, what it was and that it exited.
        clauses = reason.split("can run again: ", 1)[1].split("; ")
        for tid, name, role in [(ids["setup"], "setup", "creator")] + [(ids[u], u, "") for u in spec["users"]]:
            mine = [c for c in clauses if "tid %d (%s)" % (tid, name) in c]
            check(mine and "exited" in mine[0] and role in mine[0],
                  "%s: reason %r: no clause says that %s (tid %d%s) exited" % (what, reason, name, tid,
                                                                               ", the creator" if role else ""))
        if not spec["eof"]:
            check("end-of-file" not in reason, "%s: end-of-file promised where none applies: %r" % (what, reason))
        if "the other end, stays open here" in reason:
            check("fd %d, the other end, stays open here" % other in reason,
                  "%s: reason %r names the wrong fd as the other end (wanted %d)" % (what, reason, other))
        check_exited_waker(cp, ids["setup"], "creator", "setup")
        for u in spec["users"]:
            check_exited_waker(cp, ids[u], "user", u)
        check_proof_wakers(cp, victim)
        # The verdict holds, and every way of asking says so.
        time.sleep(0.5)
        report = p.threads()
        again = thread_by_tid(report, victim)
        check(again["verdict"] == "leaked", "%s: the verdict did not hold: %s\n  the report: %s"
              % (what, brief(again), json.dumps(report)[:6000]))
        s = p.status()
        check(s.get("pid") == p.pid and s["summary"]["leaked"] == 1 and s["summary"]["suspect"] == 0,
              "%s: status --json %r" % (mode, s))
        out = p.cli("status", str(p.pid), check_rc=1).stdout
        check(str(p.pid) in out, "%s: status lacks our pid: %r" % (mode, out))
        text = p.cli("threads", str(p.pid), "--all", check_rc=0).stdout
        if not ('tid %d "%s": leaked' % (victim, spec["victim"]) in text and chname in text):
            report = p.threads()
            check(False, "%s: text dump lacks the leaked %s and %s:\n%s\n  a report just after: %s"
                  % (mode, spec["victim"], chname, text, json.dumps(report)[:6000]))


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
        check(r["reason"].startswith("reads fd %s (pipe:[" % ready["fd"]) and "asleep" in r["reason"], brief(r))
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
# runs that set one (1.5 s, so a `suspect` would have shown), past the
# settle time (a rule-4 proof, the leaky siblings', comes then), with a
# second of margin.
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
    """Two fixtures at once (each waits while the other is looked at): with
    a short stall threshold (judged from READY on, before and after the
    settle time), then with the default one (watched past TWIN_WAIT)."""
    short = start("born_after", env={"LEAKWATCH_STALL_MS": "1500"})
    default = start("born_after")
    with short[0], default[0]:
        born_after_short_stall(*short)
        born_after_default(*default)


def born_after_default(p, ready, ids):
    # Default stall threshold: the producer, born after the pipe to its
    # creator, may hold the write end; the reader is just waiting.
    reader = ids["reader"]
    rep = watch_parked(p, reader, "fd-read", TWIN_WAIT, never_bad("born_after"), "born_after: reader")
    t = thread_by_tid(rep, reader)
    check(t["verdict"] == "waiting" and t["wait"]["class"] == "in-process", "born_after: %s" % brief(t))
    check(t["wait"]["channel"]["creator"] == {"tid": ids["setup"], "name": "setup", "exited": True},
          "born_after: creator %r" % t["wait"]["channel"]["creator"])
    p.cli("status", str(p.pid), check_rc=0)


def born_after_short_stall(p, ready, ids):
    # Past a short stall threshold it is suspect (nobody ever wrote), with the
    # producer as the thread that may still do so -- and still never leaked.
    if not proofs_possible(p, "born_after (stall 1.5s)"):
        return   # a reader in a process with handlers is never suspect (a self-pipe, maybe)
    reader = ids["reader"]
    rep = wait_verdict(p, reader, "suspect", "born_after (stall 1.5s): reader")
    t = thread_by_tid(rep, reader)
    check("no live thread has ever done a write to it" in t["reason"] and
          t["reason"].endswith("Not a proof: a live thread may still write to it"), brief(t))
    w = waker_map(t["counterpart"]).get(ids["producer"])
    check(w and w["role"] == "born-after" and w["exited"] is False and w["verdict"] == "waiting",
          "born_after: the producer as a waker: %r" % t["counterpart"])
    watch(p, 1, never_bad("born_after (stall 1.5s)", STUCK))
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


def suspect_full_pipe():
    p, ready, ids = start("suspect_full_pipe", env={"LEAKWATCH_STALL_MS": "2000"})
    with p:
        writer, reader, main_tid = ids["writer"], ids["reader"], ids["main"]
        fd, other = int(ready["fd"]), int(ready["other"])
        what = "suspect_full_pipe: writer (tid %d)" % writer
        before, wrong = [], []

        def ok():
            r = p.threads()
            t = thread_by_tid(r, writer)
            check(t is not None, "%s not reported" % what)
            if t["verdict"] in STUCK:
                wrong.append("a live reader, yet %s" % brief(t))
                return r   # stop polling: fails below
            if t["wait"]["seconds"] < 1.9:
                if t["verdict"] != "waiting":
                    wrong.append("before the stall threshold (2s): %s" % brief(t))
                    return r
                # The reader has been idle for longer than the threshold
                # already (it read 2.5 s before the writer blocked): only
                # the writer's own time parked keeps it from suspect here.
                idle = [x.get("idle") for x in ((t["wait"] or {}).get("channel") or {}).get("peers") or []
                        if x.get("tid") == reader]
                if t["wait"]["seconds"] >= settle_s(r) and idle and number(idle[0]) and idle[0] >= 2.0:
                    before.append(t["wait"]["seconds"])
            check(t["verdict"] == "suspect", "%s: %s" % (what, brief(t)))
            return r
        rep = until(ok, 8, "%s suspect" % what)
        check(not wrong, "%s: %s" % (what, wrong[0] if wrong else ""))
        check(before, "%s: never sampled past the settle time, before the stall threshold, with the reader "
              "idle past it" % what)
        t = thread_by_tid(rep, writer)
        w = t["wait"]
        check(w["kind"] == "fd-write" and w["fd"] == fd and w["class"] == "in-process" and w["seconds"] >= 2.0,
              "%s: wait %r" % (what, w))
        ch = check_channel(w["channel"], what, p.pid, fd, "pipe", main_tid, other)
        peer = check_peer(ch, reader, "reader", False, what)
        check(peer["idle"] >= w["seconds"] + 2.0, "%s: the reader's idle %r, wanted >= 2.5 s more than the "
              "writer's %.1fs parked" % (what, peer, w["seconds"]))
        reason = t["reason"]
        want = ["writes fd %d (%s), parked for " % (fd, ch["name"]),
                "the threads that could read from it are alive, but the last one to do so was ",
                "Not a proof: a live thread may still read from it"]
        missing = [x for x in want if x not in reason]
        check(not missing, "%s: reason %r lacks %r" % (what, reason, missing))
        cp = t["counterpart"]
        check(cp.get("channel") == ch["name"] and other in (cp.get("other_end_fds") or []), "counterpart %r" % cp)
        wk = waker_map(cp)
        r, m = wk.get(reader), wk.get(main_tid)
        check(r and r["role"] == "user" and r["exited"] is False and r["exited_ago"] is None and
              r["verdict"] == "waiting" and number(r["idle"]) and r["idle"] >= 2.0,
              "%s: the reader as a waker: %r" % (what, cp["wakers"]))
        check(m and m["role"] == "creator" and m["exited"] is False and m["verdict"] == "waiting",
              "%s: main (creator) as a waker: %r" % (what, cp["wakers"]))
        s = p.status()
        check(s.get("pid") == p.pid and s["summary"]["suspect"] == 1 and s["summary"]["leaked"] == 0,
              "status --json %r" % s)
        p.cli("status", str(p.pid), check_rc=0)   # suspect is not a proof: no failure
        # It stays a suspicion, never a proof.
        watch(p, 1, never_bad("suspect_full_pipe", STUCK))
        check(thread_by_tid(p.threads(), writer)["verdict"] == "suspect", "%s: no longer suspect" % what)


def suspect_twin():
    p, ready, ids = start("suspect_twin", env={"LEAKWATCH_STALL_MS": "2000"})
    with p:
        writer, reader = ids["writer"], ids["reader"]
        what = "suspect_twin: writer (tid %d)" % writer
        # Watched until the writer has been blocked a second past the stall
        # threshold (its sibling, suspect_full_pipe, is suspect at it).
        rep = watch_parked(p, writer, "fd-write", 2.0 + 1.0, never_bad("suspect_twin"), what, min_samples=8)
        t = thread_by_tid(rep, writer)
        w = t["wait"]
        # Blocked past the stall threshold (the test means something), yet
        # its reader keeps reading: just slow.
        check(w["kind"] == "fd-write" and w["seconds"] >= 2.5 and t["verdict"] == "waiting",
              "%s: %s" % (what, brief(t)))
        peer = check_peer(w["channel"], reader, "reader", False, what)
        check(peer["idle"] < 1.5, "%s: the slow reader's idle %r" % (what, peer))
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
