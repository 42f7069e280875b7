#!/usr/bin/env python3
"""The three classic thread leaks (fixtures/classic.c: fetch, wait_ready,
generator), each over every handoff mechanism (cond, sem, futex, pipe,
eventfd, socketpair), and their fixed twins, judged through the real CLI.
argv[1] is a mode, PATTERN-MECHANISM-VARIANT:

  leak   the three workers, blocked delivering to callers that walked away.
         Memory handoffs: `leaked` by rule 3 while main lives (the reason
         says no live thread can reach the heap block, confirmed by two
         scans, and the block reported holds the one the program
         allocated); the text view shows one group of three; `status`
         exits 1; the verdict holds in later reports. fd handoffs: never a
         proof while main lives (it could use any fd): the generators, whose
         channel the exited request thread made and wrote to, are `suspect`
         past the stall threshold (2 s here), the reason giving that
         history; fetch and wait_ready workers, whose channel nobody ever
         wrote to (a wakeup fd looks the same), stay `waiting`; `status`
         exits 0. Then the same program with main returning after READY,
         under `leakwatch run --check`: the three are `leaked` at exit, the
         reason naming the request thread that made the channel.
  stall  (fd handoffs) main is the caller and lives on, holding the
         channel it made: `waiting` (never suspect, never leaked) while it
         lives; `leaked` at exit under `run --check`, main named as the
         creator that exited.
  fixed  the same requests with a buffered slot (fetch) or cancellation
         (wait_ready, generator): every worker exits by itself, and no
         thread is ever leaked, deadlocked or suspect while the tool has
         every chance to prove something (lwtest.watch_every_chance: every
         parked thread's wait settled after the last worker exited, in two
         reports a second apart for the memory handoffs, then one more ask
         a margin later): longer than a leak takes to be proven, or a
         generator to be suspect. fd handoffs: `run --check` passes at exit.

Under the sanitizer pass the reachability scan proves nothing (ASan's
malloc is not glibc's): the memory leaks must stay `waiting` there, with a
note saying why; the fd verdicts are the same.

`test_classic.py --modes MODE...` checks tests/meson.build's list against
the fixture's and this driver's."""
import sys
import time
from lwtest import (brief, always, check_modes_agree, fixture_modes, Process, addr, check, fixture, functions, run_check,
                    run_test, sanitized, thread_by_tid, until, watch_every_chance)

PATTERNS = {
    # worker thread name, its start routine, the function that delivers, the caller's outcome
    "fetch": dict(worker="fetcher", start="fetch_worker", deliver="deliver_result", outcome="timeout"),
    "wait_ready": dict(worker="verifier", start="verifier", deliver="announce_ready", outcome="gave-up"),
    "generator": dict(worker="generator", start="generator", deliver="yield_value", outcome="sum-15"),
}
MEMORY = {"cond": "cond", "sem": "sem", "futex": "futex"}   # mechanism: wait kind
FDS = {"pipe": "pipe", "eventfd": "eventfd", "socketpair": "socketpair"}   # mechanism: channel type
VARIANTS = ["leak", "fixed", "stall"]
MODES = ["%s-%s-%s" % (p, m, v) for p in PATTERNS for m in list(MEMORY) + list(FDS) for v in VARIANTS
         if v != "stall" or m in FDS]

REQUESTS = 3
STALL_MS = 2000          # LEAKWATCH_STALL_MS for every variant: `suspect` means something in `fixed`
SETTLE = 1.0             # LEAKWATCH_SETTLE_MS's default, in seconds
# A fixed twin is watched until the tool has had every chance to judge its
# parked threads (lwtest.watch_every_chance) counted from the moment its last
# worker exited, where the leak variant's last worker parks: every parked
# thread settled after that, in two reports a second apart for the memory
# handoffs (a leak there needs two scans a second apart), then one more ask
# FIXED_MARGIN past the earliest moment the leak would be proven: at least
# 3.5 s past the last exit for the memory handoffs (4.5 s under the
# sanitizer pass, where the leak variant is watched until its waits are 3 s
# old), 3 s for the fd handoffs (a generator is suspect once its wait and
# the last use of its channel are 2 s old, the stall threshold). Measured
# after READY (the workers park or exit about 0.3 s after it), on the shared
# 2-core machine, 4 tests at once: the memory leaks proven at 2.2 to 3.3 s
# (3.3 to 3.8 s sanitized); their fixed twins watched until 3.3 to 3.9 s
# (4.3 to 5.0 s) with a 1 s margin: the memory margin is 1.5 s, for room
# above the slowest proof seen.
FIXED_MARGIN = {"memory": 1.5, "fd": 2.0}
STUCK = ("leaked", "deadlocked")
BAD = STUCK + ("suspect",)
NO_PROOF_NOTES = ("too large to scan", "could not be walked")   # why a sanitized scan proves nothing


class Run:
    """One fixture run: its Process, the requests' lines, main's tid."""

    def __init__(self, mode):
        self.mode = mode
        self.pattern, self.mechanism, self.variant = mode.split("-")
        self.spec = PATTERNS[self.pattern]
        self.memory = self.mechanism in MEMORY
        self.argv = [fixture("classic"), self.pattern, self.mechanism, self.variant]
        self.p = Process(self.argv, env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
        self.requests = [self.p.read_line("REQUEST") for _ in range(REQUESTS)]
        self.main = int(self.p.read_line("READY")["main"])
        self.ready_at = time.time()
        self.workers = [int(r["worker"]) for r in self.requests]
        for r in self.requests:
            check(r["outcome"] == self.spec["outcome"], "%s: request %s: outcome %r, wanted %r (a caller must give "
                  "up before its worker delivers)" % (mode, r["n"], r["outcome"], self.spec["outcome"]))
            check(int(r["worker"]) > 0 and int(r["caller"]) > 0, "%s: request line %r" % (mode, r))

    def victims(self, report):
        ts = [thread_by_tid(report, w) for w in self.workers]
        missing = [w for w, t in zip(self.workers, ts) if t is None]
        check(not missing, "%s: workers %r not reported" % (self.mode, missing))
        return ts


def no_false_proof(report, mode):
    """A rule-3 leak is a proof: two scans at least a second apart agreed."""
    for t in report["threads"]:
        w, cp = t.get("wait") or {}, t.get("counterpart") or {}
        if t["verdict"] == "leaked" and cp.get("unreachable"):
            check(w.get("reach") == "confirmed" and cp.get("unreachable_for", 0) >= 1.0,
                  "%s: a rule-3 leak before two scans a second apart agreed: %s" % (mode, brief(t)))


def check_wait_stack(run, t):
    fns = functions(t.get("wait_stack"))
    for fn in (run.spec["deliver"], run.spec["start"]):
        check(fn in fns, "%s: the wait stack of tid %d lacks %s: %r" % (run.mode, t["tid"], fn, fns))


def check_memory_leak(run, t, request):
    w, cp = t["wait"], t.get("counterpart") or {}
    what = "%s: %s" % (run.mode, brief(t))
    check(w["kind"] == MEMORY[run.mechanism] and w["timeout"] is False and w["shared"] is False, what)
    check(w["reach"] == "confirmed" and cp.get("unreachable") is True and cp.get("unreachable_for", 0) >= 1.0, what)
    check("no live thread can reach" in t["reason"] and "heap block" in t["reason"], what)
    block, size = addr(cp.get("block")), cp.get("block_size")
    obj, obj_size = addr(request["obj"]), int(request["size"])
    check(block is not None and isinstance(size, int) and block <= obj and obj + obj_size <= block + size,
          "%s: the reported block %r (+%r) does not hold the handoff the program allocated, %#x (+%d)"
          % (run.mode, cp.get("block"), size, obj, obj_size))
    check(obj <= addr(w["object"]) < obj + obj_size, "%s: waits on %s, outside its handoff %#x (+%d)"
          % (run.mode, w["object"], obj, obj_size))


def check_channel_wait(run, t, request):
    w = t["wait"]
    fd, other = int(request["fd"]), int(request["other"])
    what = "%s: %s" % (run.mode, brief(t))
    check(w["kind"] == "fd-read" and w["fd"] == fd and w["class"] == "in-process" and w["timeout"] is False, what)
    ch = w.get("channel") or {}
    check(ch.get("type") == FDS[run.mechanism] and other in ((ch.get("other_end") or {}).get("fds") or []),
          "%s: channel %r, wanted a %s whose other end is fd %d" % (run.mode, ch, FDS[run.mechanism], other))
    check(t["reason"].startswith("reads fd %d (" % fd), what)
    return ch


def leak(run):
    """The memory handoffs: rule 3 proves the workers leaked while main
    lives (waiting under the sanitizer pass, where no scan can prove)."""
    p = run.p
    proven = not sanitized()
    want = "leaked" if proven else "waiting"

    def judged():
        r = p.threads()
        always(no_false_proof, r, run.mode)   # at every sample, not just the last
        vs = run.victims(r)
        if not proven:
            always(check, all(t["verdict"] not in STUCK for t in vs),
                   "%s under ASan: %r" % (run.mode, [brief(t) for t in vs]))
            check(all((t["wait"] or {}).get("seconds", 0) >= SETTLE + 2.0 for t in vs), "waits not yet settled")
        bad = [brief(t) for t in vs if t["verdict"] != want]
        check(not bad, "%s: want %d workers %s: %s" % (run.mode, REQUESTS, want, "\n  ".join(bad)))
        return r

    r = until(judged, 12, "%s: %d workers %s" % (run.mode, REQUESTS, want))
    took = time.time() - run.ready_at
    main = thread_by_tid(r, run.main)
    check(main and main["verdict"] == "waiting" and main["wait"]["kind"] == "signal",
          "%s: main (in pause) %s" % (run.mode, brief(main)))
    for req in run.requests:
        check(thread_by_tid(r, int(req["caller"])) is None, "%s: request thread %s still there" % (run.mode, req))
    for t, req in zip(run.victims(r), run.requests):
        check_wait_stack(run, t)
        if proven:
            check_memory_leak(run, t, req)
        else:
            check(t["wait"]["kind"] == MEMORY[run.mechanism] and t["wait"]["reach"] != "confirmed",
                  "%s under ASan: %s" % (run.mode, brief(t)))
    if not proven:
        notes = [n for n in r.get("notes") or [] if n.startswith("reachability:")]
        check(notes and any(x in notes[0] for x in NO_PROOF_NOTES), "%s under ASan: the note should say why "
              "nothing is proven: %r" % (run.mode, r.get("notes")))
    check_text_group(run, "%d threads %s, %s" % (REQUESTS, want, MEMORY[run.mechanism]))
    p.cli("status", str(p.pid), check_rc=1 if proven else 0)
    # A proof does not come and go.
    time.sleep(0.5)
    back = [brief(t) for t in run.victims(p.threads()) if t["verdict"] != want]
    check(not back, "%s: %s, then no longer: %s" % (run.mode, want, back))
    print("%s: %d workers %s %.1fs after READY" % (run.mode, REQUESTS, want, took))


def check_text_group(run, group):
    text = run.p.cli("threads", str(run.p.pid)).stdout
    check(group in text and run.spec["deliver"] in text.split(group, 1)[1],
          "%s: the text view lacks a group %r whose wait stack shows %s:\n%s"
          % (run.mode, group, run.spec["deliver"], text[:3000]))


def fd_history_verdict(run):
    """What history makes of a worker's channel while main lives: suspect
    when the request thread that made it also wrote to it (the
    generator's acknowledgements) and exited; waiting when nobody ever
    wrote to it (fetch, wait_ready: a wakeup fd looks the same) or its
    creator, main, lives (stall)."""
    return "suspect" if run.variant == "leak" and run.pattern == "generator" else "waiting"


def check_fd_suspect(run, t, request):
    reason, caller = t["reason"], int(request["caller"])
    other = request["other"] + (", the other end," if run.mechanism != "eventfd" else "")
    want = ["reads fd %s (" % request["fd"], "), parked for ", "; its creator, tid %d (request), exited " % caller,
            "; no thread has written to it for ", "; not a proof: a live thread holding fd %s could still write to it"
            % other]
    missing = [x for x in want if x not in reason]
    check(reason.startswith(want[0]) and reason.endswith(want[-1][2:]) and not missing,
          "%s: reason %r lacks %r" % (run.mode, reason, missing))
    wakers = (t.get("counterpart") or {}).get("wakers") or []
    check([w for w in wakers if w["tid"] == caller and w["role"] == "creator" and w["exited"] is True],
          "%s: the request thread as the exited creator among %r" % (run.mode, wakers))


def leak_fd(run):
    """The fd handoffs (leak and stall): never proven while main lives;
    what history shows (fd_history_verdict) once the workers' waits are
    past the stall threshold and a margin; then the same program, main
    returning after READY, under `leakwatch run --check`: all leaked."""
    p, want = run.p, fd_history_verdict(run)
    stall = STALL_MS / 1000.0

    def judged():
        r = p.threads()
        vs = run.victims(r)
        always(check, not [t for t in r["threads"] if t["verdict"] in STUCK],
               "%s: a proof while main lives: %r" % (run.mode, [brief(t) for t in r["threads"] if t["verdict"] in STUCK]))
        always(check, not [t for t in vs if t["verdict"] == "suspect" and t["wait"]["seconds"] < stall],
               "%s: suspect before the stall threshold: %r" % (run.mode, [brief(t) for t in vs]))
        if want == "waiting":
            always(check, not [t for t in r["threads"] if t["verdict"] == "suspect"],
                   "%s: suspect: %r" % (run.mode, [brief(t) for t in r["threads"] if t["verdict"] == "suspect"]))
        bad = [brief(t) for t in vs if t["verdict"] != want or t["wait"]["seconds"] < stall + 1.0]
        check(not bad, "%s: want %d workers %s, parked %.1fs: %s" % (run.mode, REQUESTS, want, stall + 1.0,
                                                                        "\n  ".join(bad)))
        return r

    r = until(judged, 15, "%s: %d workers %s past the stall threshold" % (run.mode, REQUESTS, want))
    took = time.time() - run.ready_at
    for t, req in zip(run.victims(r), run.requests):
        check_wait_stack(run, t)
        check_channel_wait(run, t, req)
        if want == "suspect":
            check_fd_suspect(run, t, req)
        else:
            check(t["reason"] == "reads fd %s (%s)" % (req["fd"], t["wait"]["channel"]["name"]),
                  "%s: reason %r" % (run.mode, t["reason"]))
    check_text_group(run, "%d threads %s, fd-read" % (REQUESTS, want))
    p.cli("status", str(p.pid), check_rc=0)   # a suspicion is no proof
    print("%s: %d workers %s %.1fs after READY" % (run.mode, REQUESTS, want, took))
    leaked_at_exit(run)


def leaked_at_exit(run):
    rc, err = run_check(run.argv + ["exit"], env={"LEAKWATCH_STALL_MS": str(STALL_MS)})
    check(rc == 1 and "FAILED: %d threads leaked or deadlocked at exit" % REQUESTS in err,
          "%s exit: run --check exited %d:\n%s" % (run.mode, rc, err[-3000:]))
    group = "%d threads leaked, fd-read" % REQUESTS
    check(group in err and run.spec["deliver"] in err.split(group, 1)[1],
          "%s exit: no group %r whose wait stack shows %s:\n%s" % (run.mode, group, run.spec["deliver"], err[-3000:]))
    reason = err.split(group, 1)[1].splitlines()[1].strip()
    creator = "(classic)" if run.variant == "stall" else "(request)"
    want = ["no thread that could write to it can run again: all threads are asleep; its creator, tid ",
            " %s, exited " % creator]
    missing = [x for x in want if x not in reason]
    check(reason.startswith("reads fd ") and not missing, "%s exit: reason %r lacks %r" % (run.mode, reason, missing))
    print("%s: %d workers leaked at exit" % (run.mode, REQUESTS))


def fixed(run):
    p = run.p
    seen = []

    def never_bad(r):
        no_false_proof(r, run.mode)
        bad = [brief(t) for t in r["threads"] if t["verdict"] in BAD]
        check(not bad, "fixed %s judged %s (%.1fs after READY):\n  %s"
              % (run.mode, "/".join(BAD), time.time() - run.ready_at, "\n  ".join(bad)))
        s = r["summary"]
        check(s["leaked"] == s["deadlocked"] == s["suspect"] == 0, "%s: summary %r" % (run.mode, s))
        seen.append(r)

    def workers_gone():
        r = p.threads()
        always(never_bad, r)   # at every sample, not just the last
        left = [brief(thread_by_tid(r, w)) for w in run.workers if thread_by_tid(r, w)]
        check(not left, "%s: the fix should let every worker exit; still there: %s" % (run.mode, left))
        return r

    r = until(workers_gone, 8, "%s: the workers exit" % run.mode)
    # When the last worker exited, on the process's clock (exited_ago), or
    # at the latest when it was seen gone.
    ago = [t["exited_ago"] for t in r.get("exited_threads") or [] if t["tid"] in run.workers]
    last_exit = r["uptime"] - (min(ago) if len(ago) == len(run.workers) else 0.0)
    watch_every_chance(p, never_bad, margin=FIXED_MARGIN["memory" if run.memory else "fd"], since=last_exit,
                       by_scan=run.memory, min_reports=6)
    text = p.cli("threads", str(p.pid)).stdout
    check(not any(" %s, " % v in text for v in BAD), "%s: the text view:\n%s" % (run.mode, text[:3000]))
    p.cli("status", str(p.pid), check_rc=0)
    print("%s: no worker left and nothing stuck over %.1fs (%d reports)"
          % (run.mode, time.time() - run.ready_at, len(seen)))
    if not run.memory:   # the leak variants' exit check, on the fixed twin
        rc, err = run_check(run.argv + ["exit"])
        check(rc == 0 and "leakwatch run: ok: no thread leaked or deadlocked at exit" in err,
              "%s exit: run --check exited %d:\n%s" % (run.mode, rc, err[-3000:]))


def check_modes(meson_modes):
    check_modes_agree(MODES, fixture_modes("classic"), meson_modes, "classic modes")


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    run = Run(mode)
    with run.p:
        if run.variant == "fixed":
            fixed(run)
        else:
            (leak if run.memory else leak_fd)(run)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: test_classic.py MODE | --modes MODE...")
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
