#!/usr/bin/env python3
"""The property test of rule 3 (issue 13 item 4): whatever the heap layout,
a leak is proven on a single ask and a healthy twin never is.

For each seed, fixtures/layouts runs a random allocation history (main arena
for even seeds, a thread arena for odd ones) and parks a leaking worker at a
random point of it (its object and its DTV anywhere; in three seeds out of
four the object, the DTV or both are made last, right below the top chunk:
PLAN's top=, READY's obj_below_top and dtv_below_top say what the layout
ended as). Each seed runs two variants, as separate processes:
  - a leak: `leak` (seeds 0, 1 mod 4) or `stale` (2, 3 mod 4: freed chunks
    first held the object's address). READY, then ASK_AFTER (settle +
    confirmation + margin) later ONE `leakwatch threads PID --json`: the
    worker `leaked`, reach "confirmed", the reason, a counterpart block that
    holds the object, no reach_path;
  - a healthy twin, by seed mod 3: `global` (g_keep), `interior`
    (g_keep_inner, a pointer inside the object), `tls` (a live holder
    thread's __thread variable): asked at random moments, one after a leak
    would have been proven; never leaked or deadlocked, reachable once
    settled, and wait.reach_path names the root (data with the global's
    symbol, or the holder's TLS) and the block holding the object, checked
    against /proc/PID/mem.
Under a sanitizer nothing can be proven (malloc is ASan's): every variant
must stay `waiting` and the reachability note must say why.

A failing run prints its seed, variant and plan, what the single ask said,
diagnostics (a second ask; where copies of the object's and the worker's
DTV's addresses lie in the process, read before the ask, with the heap
chunks they lie in classified and words equal to the next chunk's header
counted apart) and the commands that replay it.

    test_layouts.py --seeds 1-5[,9,12-14] [--variants leak,tls] [--jobs N]
    test_layouts.py --check-variants     (the fixture's variants against this driver's)

scripts/soak layouts runs 500 seeds (SEEDS, JOBS)."""
import argparse
import os
import random
import shlex
import sys
import threading
import time

import lwtest
from askonce import (Findings, ask_once_after, census, check_proven, check_waiting_sanitized, no_other_stuck,
                     second_ask, tids, watch_twin)
from lwtest import CLI, FIXTURES, PRELOAD, PRELOAD_PREFIX, Process, addr, check, fixture, fixture_modes, run_test, \
    sanitized, thread_by_tid

VARIANTS = ["leak", "stale", "global", "interior", "tls"]
LEAKS = ("leak", "stale")


def variants_of(seed):
    return ["stale" if seed % 4 >= 2 else "leak", ["global", "interior", "tls"][seed % 3]]


def expected_path(variant, ready, pid):
    if variant == "global":
        return dict(kind="data", module="layouts", symbol=r"^g_keep(\+(0x)?[0-9a-f]+)?$")
    if variant == "interior":
        return dict(kind="data", module="layouts", symbol=r"^g_keep_inner(\+(0x)?[0-9a-f]+)?$")
    return dict(kind="tls", tid=int(ready["holder"]))


def replay(seed, variant):
    env = "LEAKWATCH_PRELOAD=%s LEAKWATCH_CLI=%s FIXTURES=%s" % (shlex.quote(PRELOAD), shlex.quote(CLI),
                                                                 shlex.quote(FIXTURES))
    if PRELOAD_PREFIX:
        env = "LEAKWATCH_PRELOAD_PREFIX=%s %s" % (shlex.quote(PRELOAD_PREFIX), env)
    by_hand = "LD_PRELOAD=%s %s %d %s & sleep 4; %s threads $! --json" % (
        shlex.quote(lwtest.preload_value()), shlex.quote(os.path.join(FIXTURES, "layouts")), seed, variant,
        shlex.quote(CLI))
    return ("replay: %s python3 %s --seeds %d --variants %s\n    by hand: %s"
            % (env, shlex.quote(os.path.abspath(__file__)), seed, variant, by_hand))


def run_one(seed, variant):
    """One process: None when it passed, else what went wrong."""
    what = "seed %d %s" % (seed, variant)
    p = Process([fixture("layouts"), str(seed), variant])
    plan = ""
    try:
        plan = " ".join("%s=%s" % kv for kv in p.read_line("PLAN", timeout=30).items())
        ready = p.read_line("READY", timeout=60)
        ready_at = time.time()
        plan += " obj_below_top=%s dtv_below_top=%s" % (ready.get("obj_below_top"), ready.get("dtv_below_top"))
        victims = tids(ready, "victims")
        obj, size = addr(ready["obj"]), int(ready["size"])
        f = Findings(what)
        if variant in LEAKS:
            before = ""   # where copies of the object's (and the DTV's) address lie, read before the ask
            if not sanitized():
                dtv = addr(ready.get("dtv"))
                before = census(p.pid, obj, obj + size, victims) + (
                    "\nand of the worker's DTV block %#x: %s" % (dtv, census(p.pid, dtv, dtv + 16, victims))
                    if dtv else "")
            r = ask_once_after(p, ready_at)
            asked = time.time() - ready_at
            t = thread_by_tid(r, victims[0])
            if sanitized():
                check_waiting_sanitized(f, [t], r, what)
            else:
                check_proven(f, t, obj, size, "cond", what)
            no_other_stuck(f, r, set(victims) if not sanitized() else set(), what)
            if f.first and not sanitized():
                f.first["diagnostics"] = ("the single ask came %.1fs after READY; notes %r\n%s\ncensus of the "
                                          "process's memory at READY, before the ask: %s"
                                          % (asked, r.get("notes"), second_ask(p, victims), before))
        else:
            rng = random.Random(seed * 7919 + len(variant))
            reports = watch_twin(f, p, ready_at, victims, expected_path(variant, ready, p.pid), obj, size, what, rng)
            if f.first:
                f.first["moments"] = "asked at %r s after READY" % [m for m, _ in reports]
        if f.first:
            return "%s (PLAN %s):\n%s" % (what, plan, "\n".join(
                "  - " + m.replace("\n", "\n    ") for m in f.first.values()))
        return None
    except Exception as e:   # noqa: BLE001 -- one run's failure is reported with its seed, the others go on
        return "%s (PLAN %s): %s: %s\n    fixture stderr: %s" % (what, plan, type(e).__name__, e,
                                                                 p.stderr_so_far()[-1000:] or "(empty)")
    finally:
        p.close()
        try:
            lwtest._processes.remove(p)   # reported here, with its seed: not again by run_test
        except ValueError:
            pass


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            seeds.extend(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def run_all(seeds, variants, jobs):
    work = [(s, v) for s in seeds for v in (variants or variants_of(s))]
    failures, lock, done = [], threading.Lock(), [0]
    it = iter(work)
    started = time.time()

    def worker():
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            problem = run_one(*item)
            with lock:
                done[0] += 1
                if problem:
                    failures.append((item, problem))
                    print("FAILED %s\n  %s" % (problem, replay(*item)), flush=True)
                if len(work) >= 50 and done[0] % 50 == 0:
                    print("%d of %d runs, %d failed, %.0fs" % (done[0], len(work), len(failures),
                                                               time.time() - started), flush=True)

    threads = [threading.Thread(target=worker) for _ in range(min(jobs, len(work)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed_seeds = sorted({s for (s, _), _ in failures})
    print("%d runs (%d seeds) in %.0fs: %d failed%s" % (len(work), len(seeds), time.time() - started, len(failures),
                                                        (", seeds %s" % ",".join(map(str, failed_seeds)))
                                                        if failures else ""), flush=True)
    check(not failures, "%d of %d runs failed: %s" % (len(failures), len(work), "; ".join(
        "seed %d %s" % item for item, _ in failures)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--variants", default="")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "0")) or (3 if sanitized() else 6))
    ap.add_argument("--check-variants", action="store_true")
    args = ap.parse_args()
    if args.check_variants:
        run_test(lambda: check(sorted(fixture_modes("layouts")) == sorted(VARIANTS),
                               "the fixture's variants %r, the driver's %r" % (fixture_modes("layouts"), VARIANTS)))
    variants = [v for v in args.variants.split(",") if v]
    run_test(lambda: (check(all(v in VARIANTS for v in variants), "unknown variant in %r" % variants),
                      run_all(parse_seeds(args.seeds), variants, args.jobs)))


if __name__ == "__main__":
    sys.exit(main())
