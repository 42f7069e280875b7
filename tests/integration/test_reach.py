#!/usr/bin/env python3
"""Rule 3 (reachability) on real processes (argv[1] is a mode of
fixtures/reachfix): a thread parked, untimed, on a condvar, semaphore or
futex word inside a heap block (a thread arena's, the main arena's, an
mmapped chunk) that no thread that may still run can reach is `leaked` on a
single ask made about 3 s after the leak happened (askonce.ASK_AFTER: settle
+ confirmation + a margin; the tool, not the test, must make the two scans at
least a second apart that agree), stays leaked when asked again (the only
asking again here), and has a reason saying no live thread can reach it and a counterpart naming the
block that holds the object; the healthy twins (the same object still
referenced from a live thread's stack, a global, a chain of heap blocks, the
last word of a heap block, an mmap'd region, or waited on with a timeout; an
object reachable only from the stack or TLS of a parked thread that can
itself still be woken) are never leaked, over several samples.

Under the sanitizer pass (LEAKWATCH_PRELOAD_PREFIX set) the scan can prove
nothing (malloc is ASan's, not glibc's, and ASan's shadow memory is too large
to read): every mode must then stay `waiting`, and the report's
reachability note must say why (a mapping too large to scan, or a heap that
could not be walked).

`test_reach.py --modes MODE...` checks tests/meson.build's list against the
fixture's and this driver's."""
import re
import sys
import time
from askonce import ask_once_after
from lwtest import (brief, always, check_modes_agree, fixture_modes, SLOW, Process, TestFailure, addr, check, fixture, run_test, sanitized,
                    thread_by_tid, watch_every_chance)

MODES = ["fetch_cond", "ready_sem", "futex_chan", "big_block", "pool_dropped", "stack_ref", "global_ref",
         "heap_chain", "tail_ref", "mmap_ref", "timed", "relay_stack", "relay_tls", "pshared_heap", "pshared_mapped",
         "arena_heaps", "arena_heaps_ref", "register_ref", "register_parked_ref", "dangling", "dangling_ref",
         "cancel_handle", "cancel_disabled"]

# The leaks: which thread is stuck (READY's key, or a thread name for the
# pool) and on what kind of wait.
LEAKS = {
    "fetch_cond": dict(victim="worker", kind="cond"),
    "ready_sem": dict(victim="worker", kind="sem"),
    "futex_chan": dict(victim="worker", kind="futex"),
    "big_block": dict(victim="worker", kind="cond"),   # the block is an mmapped chunk
    "pool_dropped": dict(name="pool-worker", kind="cond", count=1000),
    "pshared_heap": dict(victim="worker", kind="sem"),   # process-shared, but in private memory
    "arena_heaps": dict(victim="worker", kind="cond"),   # in an arena's first heap, closed by fenceposts
    "dangling": dict(victim="worker", kind="cond"),   # dangling pointers into leakwatch's own blocks
    "cancel_disabled": dict(victim="worker", kind="cond"),   # its pthread_t is live, its cancellation off
}

# The healthy twins: the thread that must stay `waiting`, its wait kind, and
# what the scan must say about its object once the wait has settled (None:
# not a candidate at all, as for a timed wait).
HEALTHY = {
    "stack_ref": dict(victim="worker", kind="cond", reach="reachable"),
    "global_ref": dict(victim="worker", kind="cond", reach="reachable"),
    "heap_chain": dict(victim="worker", kind="cond", reach="reachable"),
    "arena_heaps_ref": dict(victim="worker", kind="cond", reach="reachable"),   # kept from the second heap
    # kept in a running thread's register: never confirmed, and the note says why
    "register_ref": dict(victim="worker", kind="cond", reach="unproven"),
    # kept in a parked thread's callee-saved register: the hook's frame holds it
    "register_parked_ref": dict(victim="worker", kind="cond", reach="reachable"),
    "tail_ref": dict(victim="worker", kind="cond", reach="reachable"),
    "mmap_ref": dict(victim="worker", kind="cond", reach="reachable"),
    "timed": dict(victim="worker", kind="cond", reach=None),
    "relay_stack": dict(victim="worker", kind="cond", reach="reachable"),
    "relay_tls": dict(victim="worker", kind="cond", reach="reachable"),
    "pshared_mapped": dict(victim="worker", kind="sem", reach=None, shared=True),
    "dangling_ref": dict(victim="worker", kind="cond", reach="reachable"),   # a program's block among ours
    # kept by its own frame, which a pthread_cancel through the live pthread_t would run
    "cancel_handle": dict(victim="worker", kind="cond", reach="reachable", by_handle=True),
}

STUCK = ("leaked", "deadlocked")
NOTE = re.compile(r"^reachability: (\d+) candidate waits?, ([0-9.]+) MiB scanned in ([0-9.]+) ms")
NO_PROOF_NOTES = ("too large to scan", "could not be walked")   # why a sanitized scan proves nothing
SETTLE = 1.0   # LEAKWATCH_SETTLE_MS's default, in seconds


def reach_note(report):
    notes = [n for n in report.get("notes") or [] if n.startswith("reachability:")]
    check(len(notes) == 1, "expected one 'reachability:' note, got %r" % report.get("notes"))
    return notes[0]


def check_note_scanned(report):
    """The note of a report in which the scan ran: candidates, MiB, ms."""
    note = reach_note(report)
    m = NOTE.match(note)
    check(m and int(m.group(1)) >= 1 and float(m.group(2)) > 0,
          "the reachability note does not say what a scan did: %r" % note)
    return note


def no_false_proof(report, where):
    """A rule-3 leak is a proof: confirmed by two scans at least a second apart."""
    for t in report["threads"]:
        w = t.get("wait") or {}
        cp = t.get("counterpart") or {}
        if t["verdict"] == "leaked" and cp.get("unreachable"):
            check(w.get("reach") == "confirmed" and cp.get("unreachable_for", 0) >= 1.0,
                  "%s: a rule-3 leak before two scans a second apart agreed: %r" % (where, brief(t)))
        if w.get("reach") in ("unreachable", "reachable"):
            check(t["verdict"] not in STUCK or not cp.get("unreachable"),
                  "%s: leaked on an unconfirmed scan: %r" % (where, brief(t)))


def victims(report, spec, ids):
    if "name" in spec:
        return [t for t in report["threads"] if t["name"] == spec["name"]]
    t = thread_by_tid(report, ids[spec["victim"]])
    return [t] if t else []


class Problems:
    """Failed checks, kept so that one run reports every problem it saw
    (the first message of each kind), not only the first."""

    def __init__(self, what):
        self.what = what
        self.first = {}

    def check(self, kind, cond, message):
        if not cond and kind not in self.first:
            self.first[kind] = message
        return cond

    def run(self, kind, fn, *args):
        try:
            return fn(*args)
        except TestFailure as e:
            self.first.setdefault(kind, str(e))
            return None

    def fail_if_any(self):
        if self.first:
            raise TestFailure("%s: %d problem%s:\n  - %s" % (self.what, len(self.first), "" if len(self.first) == 1
                                                              else "s", "\n  - ".join(self.first.values())))


def check_leak_details(mode, spec, t, ready):
    w, cp = t["wait"], t.get("counterpart") or {}
    check(w["kind"] == spec["kind"] and w["timeout"] is False and w["shared"] is False,
          "%s: wait %r" % (mode, brief(t)))
    check(w["reach"] == "confirmed", "%s: wait.reach %r" % (mode, w["reach"]))
    check("no live thread can reach" in t["reason"] and "heap block" in t["reason"],
          "%s: reason %r" % (mode, t["reason"]))
    check(cp.get("unreachable") is True, "%s: counterpart %r" % (mode, cp))
    check(isinstance(cp.get("unreachable_for"), (int, float)) and cp["unreachable_for"] >= 1.0,
          "%s: unreachable_for %r (two scans at least a second apart)" % (mode, cp.get("unreachable_for")))
    block, size = addr(cp.get("block")), cp.get("block_size")
    check(block is not None and isinstance(size, int) and size > 0, "%s: counterpart block %r" % (mode, cp))
    obj, obj_size = addr(ready["obj"]), int(ready["size"])
    wobj = addr(w["object"])
    check(block <= wobj < block + size, "%s: the waited object %#x is outside the reported block %#x (+%d)"
          % (mode, wobj, block, size))
    # The block is what the program allocated: the reported block must hold
    # the whole object (as malloc returned it, obj, of sizeof obj_size).
    check(block <= obj and obj + obj_size <= block + size,
          "%s: the reported heap block [%#x, %#x) (block %#x, block_size %d) does not hold the object the "
          "program allocated, [%#x, %#x) (malloc returned %#x, %+d bytes from the reported block; sizeof %d)"
          % (mode, block, block + size, block, size, obj, obj + obj_size, obj, obj - block, obj_size))


def leak(mode):
    spec = LEAKS[mode]
    with Process([fixture("reachfix"), mode]) as p:
        ready = p.read_line("READY", timeout=60 if mode == "pool_dropped" else 10)
        ready_at = time.time()
        ids = {k: int(v) for k, v in ready.items() if k in ("main", "caller", "worker") and int(v) > 0}
        count = spec.get("count", 1)
        want = "waiting" if sanitized() else "leaked"

        # Asked once, as a person asks: settle + confirmation + a margin
        # after the leak happened (askonce.ASK_AFTER), never before.
        r = ask_once_after(p, ready_at)
        asked = time.time() - ready_at
        always(no_false_proof, r, mode)
        vs = victims(r, spec, ids)
        check(len(vs) == count, "%s: %d victim threads, want %d" % (mode, len(vs), count))
        verdicts = {}
        for t in vs:
            verdicts[t["verdict"]] = verdicts.get(t["verdict"], 0) + 1
        if sanitized():
            # Nothing can be proven there; the single ask comes when the
            # waits are well past the settle time and two scans could have agreed.
            check(all((t["wait"] or {}).get("seconds", 0) >= SETTLE + 2.0 for t in vs),
                  "%s: the single ask came before the waits were settle + 2 s old" % mode)
        check(verdicts == {want: count}, "%s: verdicts %r on the single ask (%.1fs after READY), want %d %s; e.g. %r"
              % (mode, verdicts, asked, count, want, brief(next((t for t in vs if t["verdict"] != want), vs[0]))))
        problems = Problems(mode)
        main = thread_by_tid(r, ids["main"])
        problems.check("main", main and main["verdict"] == "waiting" and main["wait"]["kind"] == "signal",
                       "%s: main (live, in pause) %r" % (mode, brief(main)))
        if "caller" in ids:
            problems.check("caller", thread_by_tid(r, ids["caller"]) is None, "%s: the caller has not exited" % mode)

        if sanitized():
            note = reach_note(r)
            problems.check("note", any(x in note for x in NO_PROOF_NOTES),
                           "%s under ASan: the note should say why nothing is proven (%s): %r"
                           % (mode, " or ".join(NO_PROOF_NOTES), note))
            problems.check("reach", all(t["wait"]["reach"] != "confirmed" for t in vs), "%s under ASan: confirmed"
                           % mode)
            problems.run("status", lambda: p.cli("status", str(p.pid), check_rc=0))
            problems.fail_if_any()
            return

        problems.run("note", check_note_scanned, r)
        for t in vs:
            problems.run("details", check_leak_details, mode, spec, t, ready)
        if count > 1:
            blocks = {(t.get("counterpart") or {}).get("block") for t in vs}
            problems.check("blocks", len(blocks) == 1, "%s: %d workers on one pool, %d blocks reported"
                           % (mode, count, len(blocks)))
            # Asked again, in text: the proof stays, as one group.
            text = p.cli("threads", str(p.pid)).stdout
            if problems.check("text", "%d threads leaked, cond" % count in text,
                              "%s: the text view has no group of %d leaked: %s" % (mode, count, text[:3000])):
                problems.check("groups", text.count(" leaked, ") == 1, "%s: more than one leaked group:\n%s"
                               % (mode, text[:3000]))

        # A proof does not come and go: later reports (each one scans
        # again) keep every victim leaked.
        end = time.time() + 2.0 * SLOW
        samples = 0
        while time.time() < end or samples < 3:
            time.sleep(0.3)
            r2 = p.threads()
            problems.run("proof", no_false_proof, r2, mode)
            vs2 = victims(r2, spec, ids)
            back = [brief(t) for t in vs2 if t["verdict"] != "leaked"]
            problems.check("stable", len(vs2) == count and not back,
                           "%s: proven leaked, then no longer leaked %d samples later in %d of %d threads, e.g. %r"
                           % (mode, samples + 1, len(back), count, back[:1]))
            samples += 1
        problems.run("status", lambda: p.cli("status", str(p.pid), check_rc=1))
        problems.fail_if_any()


def healthy(mode):
    spec = HEALTHY[mode]
    with Process([fixture("reachfix"), mode]) as p:
        ready = p.read_line("READY")
        ids = {k: int(v) for k, v in ready.items() if k in ("main", "caller", "worker") and int(v) > 0}
        problems = Problems("healthy " + mode)
        start = time.time()
        seen = {"samples": 0, "judged": 0, "report": None}

        def look(r):
            """The checks every report of a healthy twin must pass."""
            seen["report"] = r
            problems.run("proof", no_false_proof, r, mode)
            bad = [brief(t) for t in r["threads"] if t["verdict"] in STUCK]
            problems.check("stuck", not bad, "healthy %s judged stuck (sample %d, %.1fs after READY): %r"
                           % (mode, seen["samples"] + 1, time.time() - start, bad))
            v = thread_by_tid(r, ids[spec["victim"]])
            check(v is not None, "%s: no thread %r in the report" % (mode, spec["victim"]))
            problems.check("verdict", v["verdict"] == "waiting" and v["wait"]["kind"] == spec["kind"],
                           "%s: %s %r" % (mode, spec["victim"], brief(v)))
            if v["wait"]["seconds"] >= SETTLE + 0.2 and not sanitized():
                # Settled: the scan judged it (or, timed, it is no candidate).
                if spec["reach"] == "unproven":
                    problems.check("reach", v["wait"]["reach"] in ("reachable", "unreachable"),
                                   "%s: wait.reach %r, want anything but a proof: %r" % (mode, v["wait"]["reach"],
                                                                                       brief(v)))
                    if v["wait"]["reach"] == "unreachable":
                        problems.check("note", "registers cannot be read" in reach_note(r),
                                       "%s: found unreachable, the note should say why it proves nothing: %r"
                                       % (mode, reach_note(r)))
                else:
                    problems.check("reach", v["wait"]["reach"] == spec["reach"], "%s: wait.reach %r, want %r: %r"
                                   % (mode, v["wait"]["reach"], spec["reach"], brief(v)))
                if spec["reach"]:
                    problems.run("note", check_note_scanned, r)
                seen["judged"] += 1
            elif sanitized():
                problems.check("reach", v["wait"]["reach"] != "confirmed", "%s under ASan: %r" % (mode, brief(v)))
            seen["samples"] += 1

        # Watched until the scan has had every chance to prove the leak it
        # proves in the leaky siblings (two real scans a second apart found
        # the settled wait, or the time those take: the sibling is proven at
        # the second), then half a second more (the relay's own wait
        # included: it is one of the roots).
        watched = [ids["worker"]] + ([ids["caller"]] if mode.startswith("relay_") else [])
        watch_every_chance(p, look, tids=watched, min_reports=5, pause=0.3, margin=0.5)
        while not sanitized() and seen["judged"] < 3 and time.time() < start + 20:
            time.sleep(0.3)
            look(p.threads())
        r = seen["report"]
        v = thread_by_tid(r, ids[spec["victim"]])
        if sanitized():
            note = reach_note(r)
            problems.check("note", any(x in note for x in NO_PROOF_NOTES) or spec["reach"] is None,
                           "%s under ASan: the note should say why nothing is proven (%s): %r"
                           % (mode, " or ".join(NO_PROOF_NOTES), note))
        else:
            problems.check("samples", seen["judged"] >= 3, "%s: only %d samples after the settle time"
                           % (mode, seen["judged"]))
        if mode == "timed":
            problems.check("timed", v["wait"]["timeout"] is True, "timed: %r" % brief(v))
        if spec.get("by_handle") and not sanitized():
            path = v["wait"].get("reach_path") or {}
            problems.check("handle", path.get("by_handle") is True,
                           "%s: the path should say the thread is kept by its pthread_t: %r" % (mode, path))
        problems.check("shared", v["wait"]["shared"] is spec.get("shared", False),
                       "%s: wait.shared %r: %r" % (mode, v["wait"]["shared"], brief(v)))
        if mode == "stack_ref":
            c = thread_by_tid(r, ids["caller"])
            problems.check("caller", c and c["verdict"] == "waiting" and c["wait"]["kind"] == "sleep",
                           "stack_ref: the caller should sleep holding the reference: %r" % brief(c))
        if mode.startswith("relay_"):
            c = thread_by_tid(r, ids["caller"])
            problems.check("relay", c and c["verdict"] == "waiting" and c["wait"]["kind"] == "cond" and
                           (sanitized() or c["wait"]["reach"] == "reachable"),
                           "%s: the relay should wait on the global condvar, reachable: %r" % (mode, brief(c)))
            # What keeps the downstream object is the relay's own frame or
            # __thread variable: a parked thread's part, a root only because
            # it may run (the path search reads those last).
            root = ((v["wait"].get("reach_path") or {}).get("root") or {})
            problems.check("relay path", sanitized() or (root.get("kind") == mode[len("relay_"):] and
                                                         root.get("tid") == ids["caller"]),
                           "%s: the downstream path should start in the relay's %s: %r"
                           % (mode, mode[len("relay_"):], v["wait"].get("reach_path")))
        problems.run("status", lambda: p.cli("status", str(p.pid), check_rc=0))
        problems.fail_if_any()


def check_modes(meson_modes):
    check_modes_agree(MODES, fixture_modes("reachfix"), meson_modes, "reach_modes")
    check(set(LEAKS) | set(HEALTHY) == set(MODES) and not set(LEAKS) & set(HEALTHY),
          "the driver's LEAKS and HEALTHY do not split MODES")


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    if mode in LEAKS:
        leak(mode)
    else:
        healthy(mode)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: test_reach.py MODE | --modes MODE...")
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
