#!/usr/bin/env python3
"""Rule 3 in GLib programs (fixtures/glib_leak.c), asked once as a person
asks. argv[1] is a mode, PATTERN-VARIANT[-malloc]: the fixture's pattern
(queue, gate) and variant (leak, global, list); "-malloc" runs it with
G_SLICE=always-malloc, without GLib's slice allocator.

With GSlice (GLib 2.74's default), GThread's own record (which holds the
worker's data) and GList nodes live in GSlice's slabs, and a gate is a
slice itself: the scan must see each slice as a block of its own, or one
pointer into a slab keeps every object in it, and no GLib worker is ever
proven leaked.

Leaks: ASK_AFTER after READY, ONE `leakwatch threads PID --json`: the worker
is `leaked`, confirmed, its counterpart a heap block (for a gate, the slice)
holding the object. Twins (global: the object in g_keep; list: the object in
a GList held by g_jobs, its node a slice): asked at random moments before
and after a leak would have been proven, the worker is `waiting`, reachable,
and reach_path goes from g_keep, or from g_jobs through the list node.
Under the sanitizer pass malloc is ASan's: `waiting`, and the note says why.

`test_glib.py --modes MODE...` checks tests/meson.build's list against the
fixture's and this driver's."""
import random
import sys
import time

from askonce import (Findings, ask_once_after, check_proven, check_waiting_sanitized, no_other_stuck, second_ask,
                     tids, watch_twin)
from lwtest import (Process, addr, brief, check, check_modes_agree, fixture, fixture_modes, run_test, sanitized,
                    thread_by_tid)

MODES = ["queue-leak", "queue-global", "queue-list", "gate-leak", "gate-global", "gate-list",
         "queue-leak-malloc", "gate-leak-malloc", "gate-list-malloc"]


def expected_path(variant, ready):
    if variant == "global":
        return dict(kind="data", module="glib_leak", symbol=r"^g_keep(\+(0x)?[0-9a-f]+)?$")
    return dict(kind="data", module="glib_leak", symbol=r"^g_jobs(\+(0x)?[0-9a-f]+)?$",
                via=[(addr(ready["via"]), int(ready["viaoff"]))])


def leak(mode, p, ready, ready_at):
    victims = tids(ready, "victims")
    obj, size = addr(ready["obj"]), int(ready["size"])
    f = Findings(mode)
    r = ask_once_after(p, ready_at)
    asked = time.time() - ready_at
    t = thread_by_tid(r, victims[0])
    if sanitized():
        check_waiting_sanitized(f, [t], r, mode)
        no_other_stuck(f, r, set(), mode)
        f.fail_if_any()
        return
    check_proven(f, t, obj, size, "futex", "%s worker %d" % (mode, victims[0]))
    no_other_stuck(f, r, set(victims), mode)
    if f.first:
        f.fail_if_any("  (the single ask came %.1fs after READY; notes %r)\n  %s"
                      % (asked, r.get("notes"), second_ask(p, victims)))
    print("%s: proven on the single ask %.1fs after READY: %s; notes %r" % (mode, asked, brief(t), r.get("notes")))


def healthy(mode, variant, p, ready, ready_at):
    victims = tids(ready, "victims")
    obj, size = addr(ready["obj"]), int(ready["size"])
    f = Findings(mode)
    reports = watch_twin(f, p, ready_at, victims, expected_path(variant, ready), obj, size, mode, random.Random(),
                         allowed_kinds=("futex",))
    f.fail_if_any("  (asked at %r s after READY)" % [m for m, _ in reports])


def main():
    mode = sys.argv[1]
    check(mode in MODES, "unknown mode %r" % mode)
    parts = mode.split("-")
    pattern, variant = parts[0], parts[1]
    env = {"G_SLICE": "always-malloc"} if parts[-1] == "malloc" else {}
    with Process([fixture("glib_leak"), pattern, variant], env=env) as p:
        ready = p.read_line("READY", timeout=30)
        ready_at = time.time()
        if variant == "leak":
            leak(mode, p, ready, ready_at)
        else:
            healthy(mode, variant, p, ready, ready_at)


def check_modes(meson_modes):
    plain = [m for m in MODES if not m.endswith("-malloc")]
    check(all(m[:-len("-malloc")] in plain for m in MODES if m.endswith("-malloc")), "a -malloc mode without its own")
    check_modes_agree(plain, fixture_modes("glib_leak"), [m for m in meson_modes if not m.endswith("-malloc")],
                      "glib_modes")
    check(sorted(meson_modes) == sorted(MODES), "tests/meson.build's glib_modes and the driver's differ in %r"
          % sorted(set(meson_modes) ^ set(MODES)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: test_glib.py MODE | --modes MODE...")
    if sys.argv[1] == "--modes":
        run_test(lambda: check_modes(sys.argv[2:]))
    else:
        run_test(main)
