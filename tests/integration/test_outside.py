#!/usr/bin/env python3
"""Issue 13's six rule-3 leak patterns, written outside the project's own
fixtures (fixtures/outside.c, fixtures/outside_cpp.cc), asked as a person
asks: once. argv[1] is a mode, PATTERN-VARIANT.

Leaks (VARIANT leak, and chain-reaper): READY comes once the giver-up has
exited or moved on and the victims are parked; ASK_AFTER (settle 1 s +
confirmation 1 s + a margin, scaled under sanitizers) later the driver asks
ONE time `leakwatch threads PID --json`, and:
  - each victim is `leaked`, wait.reach "confirmed", the reason says no live
    thread can reach the object, the counterpart names a heap block that
    holds the object (address and size from READY), no reach_path;
  - chain: the reaper and the supervisor are `leaked` by rule 1's chain, the
    reason naming the thread each joins;
  - no other thread (main, live in pause or sleep) is stuck.
If the single ask fails, a second ask 1.5 s later and a census of the
object's address in the process's memory are added to the message, as
diagnostics only (they never make the test pass).

Healthy twins (global, interior, tls, maintls, stack, registry): asked at
three random moments before and one after the moment a leak would have been
proven; never leaked or deadlocked, victims `waiting`, settled ones
`reachable`, and wait.reach_path names the root that keeps the object (data
and the global's symbol, a thread's TLS or stack and that thread) and the
chain of heap blocks down to it, checked word by word in /proc/PID/mem.

Under the sanitizer pass (LEAKWATCH_PRELOAD_PREFIX set) malloc is ASan's and
rule 3 proves nothing: every victim stays `waiting` and the reachability note
says why; reach_path is not checked there.

`test_outside.py --modes MODE...` checks tests/meson.build's list against the
two fixtures' and this driver's."""
import random
import sys
import time

from askonce import (ASK_AFTER, Findings, ask_once_after, census, check_chained, check_proven, check_waiting_sanitized,
                     no_other_stuck, second_ask, tids, watch_twin)
from lwtest import (Process, addr, brief, check, check_modes_agree, fixture, fixture_modes, run_test, sanitized,
                    thread_by_tid)

LEAK_VARIANTS = ("leak", "reaper")
MODES = [
    "fetch-leak", "fetch-global", "fetch-interior", "fetch-tls", "fetch-stack",
    "handoff-leak", "handoff-global", "handoff-stack",
    "generator-leak", "generator-registry", "generator-tls", "generator-maintls",
    "chain-leak", "chain-reaper", "chain-global",
    "pool-leak", "pool-global", "pool-stack",
    "firstprintf-leak", "firstprintf-global",
    "cpp-leak", "cpp-global", "cpp-interior", "cpp-stack",
]
POOL_WORKERS = 500


def fixture_of(mode):
    return "outside_cpp" if mode.startswith("cpp-") else "outside"


def expected_path(mode, ready, pid):
    """What wait.reach_path must say keeps a twin's object reachable."""
    name = fixture_of(mode)
    variant = mode.split("-", 1)[1]
    if variant == "global":
        return dict(kind="data", module=name, symbol=r"^g_keep(\+(0x)?[0-9a-f]+)?$")
    if variant == "interior":
        return dict(kind="data", module=name, symbol=r"^g_keep_inner(\+(0x)?[0-9a-f]+)?$")
    if variant == "registry":
        return dict(kind="data", module=name, symbol=r"^g_streams(\+(0x)?[0-9a-f]+)?$",
                    via=[(addr(ready["via"]), int(ready["viaoff"]))])
    if variant == "tls":
        return dict(kind="tls", tid=int(ready["holder"]))
    if variant == "maintls":
        return dict(kind="tls", tid=pid)
    if variant == "stack":
        return dict(kind="stack", tid=int(ready["holder"]), function=ready.get("holder_fn"))
    raise AssertionError(mode)


def diagnose(p, victims, before):
    return "\n".join("  " + x for x in [second_ask(p, victims), before])


def leak(mode, p, ready, ready_at):
    pattern = mode.split("-", 1)[0]
    victims = tids(ready, "victims")
    joiners = tids(ready, "joiners")
    obj, size, kind = addr(ready["obj"]), int(ready["size"]), ready["waitkind"]
    f = Findings(mode)
    f.check("victims", len(victims) == (POOL_WORKERS if pattern == "pool" else 1),
            "%s: %d victims in READY" % (mode, len(victims)))
    # Where copies of the object's address are, read before any ask (our
    # own reading of /proc/PID/mem, not the tool's): shown only on failure.
    before = ("census of the process's memory at READY, before the ask: " +
              census(p.pid, obj, obj + size, victims)) if len(victims) < 50 and not sanitized() else ""
    r = ask_once_after(p, ready_at)
    asked = time.time() - ready_at
    ts = [thread_by_tid(r, tid) for tid in victims]
    if sanitized():
        check_waiting_sanitized(f, ts + [thread_by_tid(r, tid) for tid in joiners], r, mode)
        no_other_stuck(f, r, set(), mode)
        f.fail_if_any()
        return
    for k, t in enumerate(ts):
        check_proven(f, t, obj, size, kind, "%s victim %d (%d of %d)" % (mode, victims[k], k + 1, len(victims)))
    if len(ts) > 1:
        blocks = {(t.get("counterpart") or {}).get("block") for t in ts if t and t["verdict"] == "leaked"}
        f.check("one_block", len(blocks) <= 1, "%s: %d workers of one pool, %d blocks reported" % (mode, len(ts),
                                                                                                    len(blocks)))
    if joiners:
        reaper, supervisor = joiners
        check_chained(f, thread_by_tid(r, reaper), victims[0], "%s reaper %d" % (mode, reaper))
        check_chained(f, thread_by_tid(r, supervisor), reaper, "%s supervisor %d" % (mode, supervisor))
    no_other_stuck(f, r, set(victims) | set(joiners), mode)
    main = thread_by_tid(r, int(ready["main"]))
    f.check("main", main is not None and main["verdict"] == "waiting", "%s: main should be live (waiting): %s"
            % (mode, main and main.get("verdict")))
    if f.first:
        f.fail_if_any("  (the single ask came %.1fs after READY; notes %r)\n%s"
                      % (asked, r.get("notes"), diagnose(p, victims + joiners, before)))
    t = ts[0]
    print("%s: proven on the single ask %.1fs after READY: %s; notes %r"
          % (mode, asked, brief(t), r.get("notes")))


def healthy(mode, p, ready, ready_at):
    victims = tids(ready, "victims")
    obj, size = addr(ready["obj"]), int(ready["size"])
    kind = ready["waitkind"]
    f = Findings(mode)
    rng = random.Random()
    joiners = tids(ready, "joiners")

    def joiners_waiting(r):
        for tid in joiners:
            t = thread_by_tid(r, tid)
            f.check("joiner", t is not None and t["verdict"] == "waiting" and t["wait"]["kind"] == "join",
                    "%s: joiner %d should wait on its join: %s" % (mode, tid, t and t.get("verdict")))

    reports = watch_twin(f, p, ready_at, victims, expected_path(mode, ready, p.pid), obj, size, mode, rng,
                         allowed_kinds=(kind,), extra=joiners_waiting)
    holder = int(ready.get("holder") or 0)
    if holder and holder != p.pid:
        h = thread_by_tid(reports[-1][1], holder)
        f.check("holder", h is not None and h["verdict"] == "waiting" and h["wait"]["kind"] in ("sleep", "signal"),
                "%s: the holder %d should be live (asleep): %s" % (mode, holder, h and h.get("verdict")))
    f.fail_if_any("  (asked at %r s after READY)" % [m for m, _ in reports])


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    pattern, variant = mode.split("-", 1)
    with Process([fixture(fixture_of(mode)), pattern, variant]) as p:
        ready = p.read_line("READY", timeout=120 if pattern == "pool" else 30)
        ready_at = time.time()
        (leak if variant in LEAK_VARIANTS else healthy)(mode, p, ready, ready_at)


def check_modes(meson_modes):
    check_modes_agree(MODES, fixture_modes("outside") + fixture_modes("outside_cpp"), meson_modes, "outside_modes")
    check(ASK_AFTER >= 3.0, "ASK_AFTER %r" % ASK_AFTER)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: test_outside.py MODE | --modes MODE...")
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
